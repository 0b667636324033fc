"""Targeting backtest on the real Last.fm split: the model policy finds future buyers; the offline
policies choose exactly the audiences the Neo4j targeting path chooses."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from neo4j import Driver
from typer.testing import CliRunner

from graphrec.artifact import Artifact
from graphrec.campaigns.backtest import BacktestError, audience, backtest, category_products, load_data, resolve_category
from graphrec.campaigns.model import Audience
from graphrec.campaigns.targeting import select_audience

pytestmark = pytest.mark.integration

# Last.fm tags with a few hundred eligible users (the biggest tags, e.g. rock, leave almost no one
# who has not listened to one of their artists already).
CATEGORIES = ["jazz", "hip-hop", "metal"]
SIZES = [50, 100]


@pytest.fixture(scope="module")
def data(lastfm_model: Path):
    return load_data(lastfm_model.parent / "snapshot")


@pytest.fixture(scope="module")
def artifact(lastfm_model: Path) -> Artifact:
    return Artifact.load(lastfm_model)


@pytest.fixture(scope="module")
def result(data, artifact):
    return backtest(data, artifact, CATEGORIES, SIZES)


def rows(result, policy: str) -> list[dict]:
    return [r for r in result["rows"] if r["policy"] == policy]


def test_model_beats_random_and_popular(result) -> None:
    model, popular, random = rows(result, "model"), rows(result, "popular"), rows(result, "random")
    assert len(model) == len(CATEGORIES) * len(SIZES)
    for m in model:
        # The exact expected precision of a random audience is the eligible users' conversion rate.
        assert m["random_expected_precision"] == pytest.approx(m["eligible_converters"] / m["eligible_users"])
        assert m["lift_over_random"] >= 1.5, m
    # Averaged over categories and sizes, the model finds clearly more future listeners.
    mean = {name: np.mean([r["precision"] for r in rs]) for name, rs in
            (("model", model), ("popular", popular), ("random", random))}
    assert mean["model"] > 1.2 * mean["popular"], mean
    assert mean["model"] > 1.5 * mean["random"], mean


def test_precision_is_converters_over_size(result, data, artifact) -> None:
    for r in result["rows"]:
        assert r["precision"] == r["converters"] / r["size"]
        assert r["audience"] <= r["size"] and r["converters"] <= r["audience"]
    # Recount one row by hand from the snapshot's test interactions.
    c = resolve_category(data, "jazz")
    promoted = category_products(data, c)
    product_ids = set(data.product_ids[promoted].tolist())
    chosen = [u for u, _ in audience(data, artifact, promoted, "model", 50)]
    tested = {(data.user_ids[u], data.product_ids[p]) for u, p in zip(data.test["src"], data.test["dst"])}
    trained = {(data.user_ids[u], data.product_ids[p]) for u, p in zip(data.train["src"], data.train["dst"])}
    converters = sum(any((u, p) in tested for p in product_ids) for u in chosen)
    row = next(r for r in result["rows"] if r["category"] == "jazz" and r["size"] == 50 and r["policy"] == "model")
    assert row["converters"] == converters
    # Nobody in the audience had already listened to a promoted artist in training.
    assert not any((u, p) in trained for u in chosen for p in product_ids)


@pytest.mark.parametrize("policy", ["model", "friends_bought", "popular", "random"])
def test_offline_audience_equals_the_neo4j_targeting(policy: str, data, artifact, lastfm_driver: Driver) -> None:
    """The backtest's array version of each policy picks the same users, in the same order, as
    graphrec.campaigns.targeting over the real Neo4j graph restricted to training edges."""
    c = resolve_category(data, "hip-hop")
    promoted = category_products(data, c)
    offline = audience(data, artifact, promoted, policy, 100, salt="same-salt")
    online = select_audience(lastfm_driver, data.product_ids[promoted].tolist(), Audience(policy=policy, size=100),
                             salt="same-salt", artifact=artifact, splits=["train"])
    assert [u for u, _ in offline] == [u for u, _ in online]
    assert [s for _, s in offline] == pytest.approx([s for _, s in online])


def test_bad_inputs(data, artifact) -> None:
    with pytest.raises(BacktestError, match="no such id or name"):
        backtest(data, artifact, ["no-such-tag"], [10])
    with pytest.raises(BacktestError, match="unknown policy"):
        backtest(data, artifact, ["jazz"], [10], ["best"])
    with pytest.raises(BacktestError, match="model artifact"):
        backtest(data, None, ["jazz"], [10], ["model"])
    with pytest.raises(BacktestError, match="not a snapshot"):
        load_data(Path("/nonexistent"))


def test_cli_backtest(lastfm_model: Path, result) -> None:
    from graphrec.cli import app

    snapshot = lastfm_model.parent / "snapshot"
    args = ["campaign", "backtest", "--snapshot", str(snapshot), "--model", str(lastfm_model), "--size", "50",
            "--size", "100"] + [x for c in CATEGORIES for x in ("--category", c)]
    out = CliRunner().invoke(app, args + ["--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["rows"] == result["rows"]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0 and "| jazz (" in table.stdout and "lift over random" in table.stdout
    bad = CliRunner().invoke(app, ["campaign", "backtest", "--snapshot", str(snapshot), "--category", "jazz",
                                   "--size", "10"])
    assert bad.exit_code == 1 and "--model" in bad.output


def test_table_has_one_row_per_category_and_size() -> None:
    from graphrec.campaigns.backtest import table

    def row(policy: str, size: int, precision: float) -> dict:
        return {"category": "jazz", "products": 3, "size": size, "policy": policy, "audience": size,
                "converters": int(precision * size), "precision": precision, "random_expected_precision": 0.1,
                "lift_over_random": precision / 0.1, "eligible_users": 100, "eligible_converters": 10}

    result = {"policies": ["model", "random"],
              "rows": [row("model", 10, 0.5), row("random", 10, 0.1), row("model", 20, 0.3), row("random", 20, 0.05)]}
    lines = table(result).splitlines()
    assert lines[0] == "| category (products; eligible users, converters) | size | model | random | random, expected |"
    assert lines[2] == "| jazz (3; 100, 10) | 10 | 0.500 (5.00x) | 0.100 (1.00x) | 0.100 |"
    assert lines[3] == "| jazz (3; 100, 10) | 20 | 0.300 (3.00x) | 0.050 (0.50x) | 0.100 |"
