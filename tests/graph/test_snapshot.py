"""Export round trip against a real Neo4j, snapshot loading, splits and the no-leakage rule."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec import schema
from graphrec.datasets.synthetic import generate_shop
from graphrec.graph import SnapshotError, assign_split, export_snapshot, load_snapshot, to_interactions
from graphrec.interactions import SPLIT_CODES, VALID_PAIRS
from graphrec.store.loader import load_directory


@pytest.fixture(scope="module")
def shop_snapshot(driver, tmp_path_factory) -> tuple[Path, dict]:
    from tests.conftest import wipe

    wipe(driver)
    shop = tmp_path_factory.mktemp("shop")
    generate_shop(300, shop, seed=7)
    load_directory(driver, shop, progress=False)
    snap = tmp_path_factory.mktemp("snap")
    meta = export_snapshot(driver, snap, batch_size=500)  # small batches: many flushes
    return snap, meta


def _count(driver, query: str) -> int:
    with driver.session() as s:
        return s.run(query).single()[0]


def test_export_counts_equal_neo4j(driver, shop_snapshot):
    snap, meta = shop_snapshot
    for node in schema.NODE_TYPES:
        name = node.label.lower()
        assert meta["counts"]["nodes"][name] == _count(driver, f"MATCH (n:{node.label}) RETURN count(n)")
    for rel, file in [("BOUGHT", "bought"), ("FRIEND", "friend"), ("IN_CATEGORY", "in_category"),
                      ("SUBCATEGORY_OF", "subcategory_of"), ("FOLLOWS", "follows")]:
        assert meta["counts"]["edges"][file] == _count(driver, f"MATCH ()-[r:{rel}]->() RETURN count(r)")
    assert meta["counts"]["edges"]["bought"] > 0 and meta["counts"]["edges"]["friend"] > 0


def test_export_sample_of_edges_equals_neo4j(driver, shop_snapshot):
    snap, _ = shop_snapshot
    users = pd.read_parquet(snap / "nodes" / "user.parquet")["id"].tolist()
    products = pd.read_parquet(snap / "nodes" / "product.parquet")["id"].tolist()
    bought = pd.read_parquet(snap / "edges" / "bought.parquet")
    sample = bought.sample(50, random_state=0)
    with driver.session() as s:
        for row in sample.itertuples():
            rec = s.run("MATCH (u:User {id: $u})-[r:BOUGHT]->(p:Product {id: $p}) "
                        "RETURN r.weight AS w, r.ts.epochMillis AS ts",
                        u=users[row.src], p=products[row.dst]).single()
            assert rec is not None, (users[row.src], products[row.dst])
            assert rec["w"] == pytest.approx(row.weight)
            assert rec["ts"] == (None if pd.isna(row.ts) else int(row.ts))


def test_export_is_deterministic(driver, shop_snapshot, tmp_path):
    _, meta = shop_snapshot
    again = export_snapshot(driver, tmp_path)
    assert again["snapshot_id"] == meta["snapshot_id"]


def test_load_snapshot_heterodata(shop_snapshot):
    snap, meta = shop_snapshot
    data = load_snapshot(snap)
    assert data["user"].num_nodes == meta["counts"]["nodes"]["user"]
    assert data["product"].num_nodes == meta["counts"]["nodes"]["product"]
    bought = data["user", "bought", "product"]
    assert bought.edge_index.shape[1] == meta["counts"]["edges"]["bought"]
    assert set(bought.split.unique().tolist()) == {0, 1, 2}
    friend = data["user", "friend", "user"].edge_index
    assert friend.shape[1] == 2 * meta["counts"]["edges"]["friend"]
    assert data["product"].x.shape[0] == data["product"].num_nodes
    assert data.snapshot_id == meta["snapshot_id"]


def test_no_test_edge_in_training_structures(shop_snapshot):
    """Leakage: valid/test pairs appear neither in message passing nor in training pairs."""
    data = load_snapshot(shop_snapshot[0])
    inter = to_interactions(data)

    def keys(pairs: torch.Tensor) -> set[int]:
        return set((pairs[0] * inter.num_items + pairs[1]).tolist())

    held_out = keys(inter.test) | keys(inter.valid)
    assert held_out and not (held_out & keys(inter.train))
    rev = data["product", "rev_bought", "user"].edge_index.flip(0)
    assert not (held_out & keys(rev))
    from graphrec.models import bipartite_adjacency

    adj = bipartite_adjacency(inter.train[0], inter.train[1], inter.num_users, inter.num_items)
    rows = torch.repeat_interleave(torch.arange(adj.shape[0]), adj.crow_indices().diff())
    cols = adj.col_indices()
    user_side = rows < inter.num_users
    adj_pairs = torch.stack([rows[user_side], cols[user_side] - inter.num_users])
    assert keys(adj_pairs) == keys(inter.train)


def test_split_property_decides_and_valid_is_carved_from_train():
    bought = pd.DataFrame({"src": [0, 0, 0, 0, 0, 1, 1, 1], "dst": [0, 1, 2, 3, 4, 0, 1, 2],
                           "split": ["train"] * 4 + ["test", "train", "train", "test"]})
    codes = assign_split(bought, 2, valid_fraction=0.3, seed=0)
    assert codes[4] == SPLIT_CODES["test"] and codes[7] == SPLIT_CODES["test"]
    assert (codes[:4] == SPLIT_CODES["valid"]).sum() in (1, 2)  # 4 * 0.3, stochastically rounded
    with pytest.raises(SnapshotError):
        assign_split(bought.assign(split=["bogus"] * 8), 2)


@pytest.mark.parametrize("users,per_user", [(100, 20), (2000, 100)])
def test_default_validation_is_ten_percent_capped_at_valid_pairs(users, per_user):
    bought = pd.DataFrame({"src": np.repeat(np.arange(users), per_user),
                           "dst": np.tile(np.arange(per_user), users), "split": "train"})
    valid = int((assign_split(bought, users, seed=3) == SPLIT_CODES["valid"]).sum())
    expected = min(0.1 * len(bought), VALID_PAIRS)  # 200 of 2,000; 20,000 of 200,000 (not 10%)
    assert abs(valid - expected) < 0.05 * expected, (valid, expected)


def test_temporal_split_holds_out_latest():
    bought = pd.DataFrame({"src": [0] * 5, "dst": range(5), "ts": [50, 10, 40, 20, 30],
                           "split": [None] * 5})
    codes = assign_split(bought, 1, split="temporal", test_fraction=0.4, valid_fraction=0)
    assert codes.tolist() == [2, 0, 2, 0, 0]


def test_random_split_is_per_user_and_seeded():
    bought = pd.DataFrame({"src": np.repeat(np.arange(20), 10), "dst": np.tile(np.arange(10), 20)})
    a = assign_split(bought, 20, seed=1, valid_fraction=0)
    assert (a == 2).reshape(20, 10).sum(1).tolist() == [2] * 20  # 10 * 0.2 exactly
    assert (a == assign_split(bought, 20, seed=1, valid_fraction=0)).all()
