"""The LightGCN Gowalla split in the canonical layout: the published numbers, valid input."""

from __future__ import annotations

import pandas as pd
import pytest

from graphrec.datasets.gowalla import convert_gowalla
from graphrec.ingest import validate_directory

pytestmark = pytest.mark.integration


def test_gowalla_converts_with_the_published_split(shared_data, tmp_path):
    report = convert_gowalla(shared_data / "gowalla-lightgcn", tmp_path)
    assert report["written"]["users"] == 29_858 and report["written"]["products"] == 40_981
    assert report["split"] == {"test": 217_242, "train": 810_128}
    graph, validation = validate_directory(tmp_path)
    assert validation.ok, validation.messages()[:5]
    assert graph.expected_counts()["relationships"]["BOUGHT"] == 1_027_370
    first = pd.read_csv(tmp_path / "interactions.csv", nrows=1, dtype=str).iloc[0]
    assert (first["user_id"], first["split"]) == ("0", "train")
