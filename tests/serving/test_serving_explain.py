"""Explanations from the in-memory index: kinds in order of informativeness, correct directions."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.artifact import Artifact, save_artifact
from graphrec.serving.explain import Explainer
from graphrec.serving.graph_index import GraphIndex
from graphrec.serving.promos import friends_bought
from graphrec.serving.recommender import Recommender


@pytest.fixture
def setup(tmp_path):
    users, products = ["a", "b", "c", "d"], ["p1", "p2", "p3", "p4"]
    save_artifact(tmp_path, model="unit", snapshot_id="s", config={}, metrics={}, user_ids=users,
                  product_ids=products, category_ids=["rock", "jazz"],
                  user_emb=np.eye(4, 3, dtype=np.float32), product_emb=np.eye(4, 3, dtype=np.float32),
                  category_emb=np.eye(2, 3, dtype=np.float32), product_categories=[[0], [0], [1], []],
                  popularity=np.array([2, 1, 1, 0]))
    art = Artifact.load(tmp_path)
    idx = GraphIndex()
    for u in users:
        idx.add_user(u, "Bea" if u == "b" else None)
    idx.add_category("rock", "Rock")
    idx.add_category("jazz", "Jazz")
    for p, cats in zip(products, [["rock"], ["rock"], ["jazz"], []]):
        idx.add_product(p, f"Name {p}", None, cats)
    # a bought p1; b (a friend, stored b->a) bought p2 and p1; c bought p1 and p3; d only p4.
    for u, p, ts in [("a", "p1", 1.0), ("b", "p2", 5.0), ("b", "p1", 2.0), ("c", "p1", 3.0), ("c", "p3", 4.0),
                     ("d", "p4", 6.0)]:
        idx.add_interaction(u, p, "BOUGHT", ts)
    idx.add_friend("b", "a")
    idx.add_follow("a", "d")
    return art, idx


def test_kinds_order_and_directions(setup):
    art, idx = setup
    rec = Recommender(art)
    exps = Explainer(idx, rec).explain("a", art.user_emb[0], ["p2", "p3"])
    p2, p3 = exps
    # Not also co_purchase: its only path would reuse p1 (used by same_category) and b (named).
    assert [e.kind for e in p2] == ["friend_bought", "same_category"]
    assert p2[0].path == [{"label": "User", "id": "a"}, {"type": "FRIEND", "direction": "in"},
                          {"label": "User", "id": "b"}, {"type": "BOUGHT", "direction": "out"},
                          {"label": "Product", "id": "p2"}]
    assert "Bea" in p2[0].text and "Name p2" in p2[0].text
    assert p2[1].path[4] == {"label": "Category", "id": "rock"} and p2[1].path[5]["direction"] == "in"
    # p3: nobody close bought it in a shared category; c bought p1 like a, and p3.
    assert [e.kind for e in p3][0] == "co_purchase"
    assert p3[0].path[4] == {"label": "User", "id": "c"} and p3[0].path[3] == {"type": "BOUGHT", "direction": "in"}


def test_follows_and_fallbacks(setup):
    art, idx = setup
    rec = Recommender(art)
    (p4,) = Explainer(idx, rec).explain("a", art.user_emb[0], ["p4"])
    assert p4[0].kind == "friend_bought" and p4[0].path[1] == {"type": "FOLLOWS", "direction": "out"}
    # A user with nothing in the graph gets the product's category, or nothing: never a made-up path.
    idx.add_user("e", None, ["jazz"])
    (p3,) = Explainer(idx, rec).explain("e", None, ["p3"])
    assert [e.kind for e in p3] == ["category"] and "a category you chose" in p3[0].text
    assert Explainer(idx, rec).explain("e", None, ["p4"]) == [[]]


def test_friends_bought_promos(setup):
    art, idx = setup
    rec = Recommender(art)
    promos = friends_bought(idx, rec, "a", k=10, user_vector=art.user_emb[0])
    assert [p.product_id for p in promos] == ["p4", "p2"]  # one friend each; p4 bought later (ts 6 > 5)
    assert promos[1].friends == [("b", "Bea")] and promos[1].text == "Bea bought Name p2"
    assert [p.product_id for p in friends_bought(idx, rec, "a", k=10, since=5.5)] == ["p4"]
    assert friends_bought(idx, rec, "c", k=10) == []
