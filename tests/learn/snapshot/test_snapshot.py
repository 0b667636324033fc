"""Export round trip against a real Neo4j, snapshot loading, splits and the no-leakage rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from graphrec import schema
from graphrec.datasets.synthetic import generate_shop
from graphrec.learn.snapshot import (EDGE_FILES, NODE_TYPE_OF_LABEL, SnapshotError, assign_split, export_snapshot,
                                     load_snapshot, to_interactions)
from graphrec.learn.interactions import SPLIT_CODES, VALID_PAIRS
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


def test_export_has_every_relationship_once_in_src_dst_order(driver, shop_snapshot):
    # batch_size 500: dozens of batches, two queries in flight, handed over in key order
    snap, _ = shop_snapshot
    users = pd.read_parquet(snap / "nodes" / "user.parquet")["id"].tolist()
    products = pd.read_parquet(snap / "nodes" / "product.parquet")["id"].tolist()
    bought = pd.read_parquet(snap / "edges" / "bought.parquet")
    pairs = list(zip(bought["src"], bought["dst"]))
    assert pairs == sorted(pairs)
    with driver.session() as s:
        stored = sorted((r["u"], r["p"]) for r in s.run("MATCH (u:User)-[:BOUGHT]->(p:Product) RETURN u.id AS u, p.id AS p"))
    assert sorted((users[a], products[b]) for a, b in pairs) == stored


def test_a_relationship_to_a_node_not_exported_is_refused():
    from graphrec.learn.snapshot import _NodeIndex

    products = _NodeIndex("Product", ["p1", "p2", "p3"], np.array([0, 1, 2]))
    assert products.of_keys(["p3", "p1", "p3"]).tolist() == [2, 0, 2]
    with pytest.raises(SnapshotError, match="Product 'p9'.*changed during the export"):
        products.of_keys(["p1", "p9"])


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
    # Nothing the models do not read (graphrec.learn.models.inputs): no features, no dead relations.
    assert data.edge_types == [("user", "bought", "product"), ("product", "rev_bought", "user"),
                               ("user", "friend", "user"), ("user", "follows", "user"),
                               ("product", "in_category", "category")]
    assert all(set(data[t].keys()) == {"num_nodes", "ids"} for t in data.node_types)
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
    from graphrec.learn.models import bipartite_adjacency

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


# -- pseudonymised export (graphrec.privacy) ----------------------------------------------------------

PSEUDONYM_KEY = "7c1e5a9f3b2d4e6a8c0f1e3d5b7a9c2e4f6a8b0d2c4e6f8a1b3d5e7f9a0c2e4b"


def _by_id(snap: Path) -> dict[str, pd.DataFrame]:
    """Every edge file with node indices replaced by node ids, rows in a canonical order."""
    ids = {name: pd.read_parquet(snap / "nodes" / f"{name}.parquet")["id"].to_numpy()
           for name in ("user", "product", "category")}
    out = {}
    for rel_name, file in EDGE_FILES.items():
        rel = schema.rel_type(rel_name)
        frame = pd.read_parquet(snap / "edges" / f"{file}.parquet")
        frame["src"] = ids[NODE_TYPE_OF_LABEL[rel.start]][frame["src"].to_numpy()]
        frame["dst"] = ids[NODE_TYPE_OF_LABEL[rel.end]][frame["dst"].to_numpy()]
        out[file] = frame.sort_values(list(frame.columns)).reset_index(drop=True)
    return out


def test_pseudonymised_export_is_the_same_graph_under_pseudonyms(shop_snapshot, driver, tmp_path):
    from graphrec.privacy import PseudonymKey

    snap, meta = shop_snapshot
    key = PseudonymKey(PSEUDONYM_KEY)
    pmeta = export_snapshot(driver, tmp_path, batch_size=77, pseudonym_key=key)
    assert pmeta["pseudonymised"] is True and pmeta["pseudonym_key_fingerprint"] == key.fingerprint
    assert meta["pseudonymised"] is False and pmeta["counts"] == meta["counts"]
    assert pmeta["snapshot_id"] != meta["snapshot_id"]
    plain_users = pd.read_parquet(snap / "nodes" / "user.parquet")["id"]
    users = pd.read_parquet(tmp_path / "nodes" / "user.parquet")
    assert list(users.columns) == ["index", "id"]
    assert users["id"].tolist() == sorted(key.pseudonym(u) for u in plain_users)
    # Every edge, mapped back through the pseudonyms of the plain export's ids, is the same edge.
    plain, pseudo = _by_id(snap), _by_id(tmp_path)
    to_pseudonym = {u: key.pseudonym(u) for u in plain_users}
    for file, frame in plain.items():
        rel = schema.rel_type(next(r for r, f in EDGE_FILES.items() if f == file))
        for end, label in (("src", rel.start), ("dst", rel.end)):
            if label == schema.USER.label:
                frame[end] = frame[end].map(to_pseudonym)
        frame = frame.sort_values(list(frame.columns)).reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, pseudo[file], check_dtype=False, obj=file)
    # Files with user endpoints are in column order, not in Neo4j's (load) order.
    bought = pd.read_parquet(tmp_path / "edges" / "bought.parquet")
    assert bought.equals(bought.sort_values(list(bought.columns)).reset_index(drop=True))
    # Training sees pseudonyms and the fingerprint; a plain snapshot has none.
    inter = to_interactions(load_snapshot(tmp_path))
    assert inter.pseudonym_fingerprint == key.fingerprint and inter.user_ids == users["id"].tolist()
    assert to_interactions(load_snapshot(snap)).pseudonym_fingerprint is None


def test_same_key_same_snapshot_id(shop_snapshot, driver, tmp_path):
    from graphrec.privacy import PseudonymKey

    key = PseudonymKey(PSEUDONYM_KEY)
    first = export_snapshot(driver, tmp_path / "a", pseudonym_key=key)
    again = export_snapshot(driver, tmp_path / "b", batch_size=13, pseudonym_key=PseudonymKey(PSEUDONYM_KEY))
    other = export_snapshot(driver, tmp_path / "c", pseudonym_key=PseudonymKey(PSEUDONYM_KEY[::-1]))
    assert first["snapshot_id"] == again["snapshot_id"] != other["snapshot_id"]


def test_pseudonymised_meta_without_fingerprint_is_refused(shop_snapshot, driver, tmp_path):
    from graphrec.privacy import PseudonymKey

    export_snapshot(driver, tmp_path, pseudonym_key=PseudonymKey(PSEUDONYM_KEY))
    meta = json.loads((tmp_path / "meta.json").read_text())
    del meta["pseudonym_key_fingerprint"]
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(SnapshotError, match="pseudonym_key_fingerprint"):
        load_snapshot(tmp_path)


def test_interrupted_export_over_an_old_snapshot_leaves_no_snapshot(shop_snapshot, driver, tmp_path):
    export_snapshot(driver, tmp_path)
    with pytest.raises(Exception):
        export_snapshot(driver, tmp_path, database="nosuchdatabase")  # fails at its first read
    with pytest.raises(SnapshotError, match="no meta.json"):
        load_snapshot(tmp_path)
