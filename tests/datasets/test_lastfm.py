"""The real HetRec Last.fm data, converted and loaded into a real Neo4j: the issue's exact numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from graphrec import schema
from graphrec.datasets.lastfm import convert_lastfm
from graphrec.store.loader import InvalidInput, database_counts, load_directory
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration

EXPECTED_NODES = {"User": 1_892, "Product": 17_632}
EXPECTED_RELS = {"BOUGHT": 92_834, "FRIEND": 12_717}


def test_conversion_reports_what_was_dropped(shared_data, tmp_path):
    report = convert_lastfm(shared_data / "lastfm-hetrec2011", tmp_path)
    assert report["written"]["users"] == 1_892 and report["written"]["products"] == 17_632
    assert report["written"]["interactions"] == 92_834
    assert report["dropped"]["tag_assignments_unknown_artist"] == 1_538
    assert report["dropped"]["unknown_artists_in_tag_assignments"] == 390
    assert "split" not in pd.read_csv(tmp_path / "interactions.csv", nrows=1).columns
    # tags.dat is Latin-1: its accented tags arrive as proper text in UTF-8 output.
    names = pd.read_csv(tmp_path / "categories.csv", dtype=str, keep_default_na=False)["name"]
    assert not names.str.contains("\ufffd").any()


def test_lastfm_graph_has_the_exact_counts(lastfm_driver):
    nodes, rels = database_counts(lastfm_driver)
    assert {k: nodes[k] for k in EXPECTED_NODES} == EXPECTED_NODES
    assert {k: rels[k] for k in EXPECTED_RELS} == EXPECTED_RELS
    assert nodes["Category"] > 0 and rels["IN_CATEGORY"] > nodes["Product"] - 6_000


def test_split_matches_the_published_socialgn_split(lastfm_driver):
    rows = run_read(lastfm_driver, f"MATCH ()-[r:{schema.BOUGHT.type}]->() RETURN r.split AS s, count(*) AS n").rows
    assert dict(rows) == {"train": 74_267, "test": 18_567}
    # A spot check against the raw split files: user index 646 x item index 703 is a training pair.
    one = run_read(lastfm_driver, "MATCH (u:User)-[r:BOUGHT]->(p:Product) RETURN r.weight AS w, r.split AS s "
                                  "ORDER BY u.id, p.id LIMIT 1").rows[0]
    assert isinstance(one[0], float) and one[1] in ("train", "test")


def test_friendship_is_stored_once_per_pair_smaller_id_first(lastfm_driver):
    rows = run_read(lastfm_driver, "MATCH (a:User)-[:FRIEND]->(b:User) WHERE a.id >= b.id RETURN count(*)").rows
    assert rows == [[0]]
    both = run_read(lastfm_driver, "MATCH (a:User)-[:FRIEND]->(b:User)-[:FRIEND]->(a) RETURN count(*)").rows
    assert both == [[0]]


def test_second_load_changes_no_count(lastfm_driver, lastfm_dir):
    before = database_counts(lastfm_driver)
    result = load_directory(lastfm_driver, lastfm_dir, progress=False)
    assert database_counts(lastfm_driver) == before
    assert (result.nodes, result.relationships) == before and result.rejected == 0


def test_copy_with_one_dangling_id_near_the_end_is_refused(lastfm_driver, lastfm_dir, tmp_path):
    broken = tmp_path / "lastfm-broken"
    shutil.copytree(lastfm_dir, broken)
    lines = (broken / "interactions.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    target = len(lines) - 3  # 0-based index; the line number in the file is target + 1
    fields = lines[target].split(",")
    fields[1] = "999999"
    lines[target] = ",".join(fields)
    (broken / "interactions.csv").write_text("".join(lines), encoding="utf-8")
    before = database_counts(lastfm_driver)
    with pytest.raises(InvalidInput) as refused:
        load_directory(lastfm_driver, broken, progress=False)
    assert str(refused.value).splitlines()[0] == (
        f"interactions.csv:{target + 1}: product_id '999999' is not defined in products.csv")
    assert database_counts(lastfm_driver) == before


def test_dataset_command_prints_the_report(shared_data, tmp_path):
    import json

    from typer.testing import CliRunner

    from graphrec.cli import app as cli

    result = CliRunner().invoke(cli, ["dataset", "lastfm", "--raw", str(shared_data / "lastfm-hetrec2011"),
                                      "--out", str(tmp_path), "--split", str(shared_data / "lastfm-sociallgn-split")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["split"] == {"test": 18_567, "train": 74_267}
    missing = CliRunner().invoke(cli, ["dataset", "lastfm", "--raw", str(tmp_path / "nowhere"), "--out", str(tmp_path)])
    assert missing.exit_code == 1 and "artists.dat: missing" in missing.stderr
