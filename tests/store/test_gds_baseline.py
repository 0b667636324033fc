"""The gds_fastrp baseline (issue 10 section 1): FastRP computed in the real Neo4j from the training
pairs only, ranked by `graphrec evaluate --baselines gds_fastrp`, no in-memory graph left behind."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from graphrec.learn.baselines.gds import GdsBaselineError, fastrp_embeddings
from graphrec.cli import app as cli
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration


def graphs(driver) -> list[str]:
    return [row[0] for row in run_read(driver, "CALL gds.graph.list() YIELD graphName RETURN graphName").rows]


def test_only_the_given_pairs_are_projected(shop_db, shop):
    users = [u["id"] for u in shop.users]
    items = [p["id"] for p in shop.products]
    pairs = sorted({(users.index(u), items.index(p)) for u, p, _ in shop.bought})
    held_out = items.index(shop.bought[0][1])  # bought in the graph, but left out of the "training" pairs
    train = np.array([pair for pair in pairs if pair[1] != held_out]).T
    user_emb, item_emb = fastrp_embeddings(shop_db, users, items, train)
    assert user_emb.shape == (len(users), 256) and item_emb.shape == (len(items), 256)
    assert not item_emb[held_out].any()  # its BOUGHT edges in Neo4j were not used
    trained = sorted(set(train[1].tolist()))
    assert all(np.linalg.norm(item_emb[i]) > 0 for i in trained)
    assert graphs(shop_db) == []
    # The same seed gives the same vectors.
    again, _ = fastrp_embeddings(shop_db, users, items, train)
    np.testing.assert_allclose(again, user_emb, atol=1e-5)


def test_pairs_missing_from_the_graph_are_an_error(shop_db, shop):
    users = [u["id"] for u in shop.users] + ["not-in-the-graph"]
    items = [p["id"] for p in shop.products]
    with pytest.raises(GdsBaselineError, match="training pairs are in Neo4j"):
        fastrp_embeddings(shop_db, users, items, np.array([[0, len(users) - 1], [0, 1]]))
    assert graphs(shop_db) == []


def test_evaluate_runs_the_gds_baseline(shop_db, shop_artifact, neo4j_settings, kit, tmp_path):
    from graphrec.learn.snapshot import export_snapshot

    export_snapshot(shop_db, tmp_path / "snapshot")
    out = CliRunner().invoke(cli, ["evaluate", "--model", str(shop_artifact), "--snapshot", str(tmp_path / "snapshot"),
                                   "--baselines", "popular,gds_fastrp", "--split", "random", "--format", "json",
                                   "--no-progress"],
                             env=kit.cli_env(neo4j_settings))
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    fastrp, popular = report["baselines"]["gds_fastrp"], report["baselines"]["popular"]
    assert fastrp["overall"]["n_users"] == popular["overall"]["n_users"] > 0
    assert 0 <= fastrp["overall"]["recall@20"] <= 1 and fastrp["config"]["embeddingDimension"] == 256
    assert graphs(shop_db) == []
    # Without Neo4j the baseline says so in one line.
    down = CliRunner().invoke(cli, ["evaluate", "--model", str(shop_artifact), "--snapshot", str(tmp_path / "snapshot"),
                                    "--baselines", "gds_fastrp", "--no-progress"],
                              env={**kit.cli_env(neo4j_settings), "NEO4J_URI": "bolt://127.0.0.1:1",
                                   "NEO4J_PASSWORD": "whatever-123"})
    assert down.exit_code == 1 and "baseline gds_fastrp: Neo4j is not reachable" in down.output
    assert "Traceback" not in down.output
