"""The walker that checks explanation paths in Neo4j (used by the API tests and bench/soak.py):
it finds exactly the paths with a hop that is not in the graph, batch by batch, shape by shape."""

from __future__ import annotations

from graphrec import schema
from tests import serving_fixtures
from tests.serving_fixtures import missing_paths, path_exists


def node(kind: schema.NodeType, node_id: str) -> dict:
    return {"label": kind.label, "id": node_id}


def rel(kind: schema.RelType, direction: str = "out") -> dict:
    return {"type": kind.type, "direction": direction}


def test_only_paths_with_a_hop_missing_are_reported(shop_db, shop, monkeypatch):
    monkeypatch.setattr(serving_fixtures, "PATHS_PER_QUERY", 3)  # several batches per shape
    bought = {(u, p) for u, p, _ in shop.bought}
    never = next((u, p["id"]) for u, _, _ in shop.bought for p in shop.products if (u, p["id"]) not in bought)
    (u, p), (a, b) = sorted(bought)[0], shop.friends[0]
    other = next(v for v, q in sorted(bought) if q == p and v != u)
    real = [[node(schema.USER, v), rel(schema.BOUGHT), node(schema.PRODUCT, q)] for v, q in sorted(bought)[:10]]
    real += [[node(schema.USER, a), rel(schema.FRIEND), node(schema.USER, b)],
             [node(schema.USER, b), rel(schema.FRIEND, "in"), node(schema.USER, a)],
             [node(schema.USER, u), rel(schema.BOUGHT), node(schema.PRODUCT, p), rel(schema.BOUGHT, "in"),
              node(schema.USER, other)]]
    fake = [[node(schema.USER, never[0]), rel(schema.BOUGHT), node(schema.PRODUCT, never[1])],  # no such purchase
            [node(schema.USER, u), rel(schema.BOUGHT, "in"), node(schema.PRODUCT, p)],  # wrong direction
            [node(schema.USER, a), rel(schema.FRIEND, "in"), node(schema.USER, b)],
            [node(schema.USER, u), rel(schema.FOLLOWS), node(schema.USER, other)] if (u, other) not in shop.follows
            else [node(schema.USER, "nobody"), rel(schema.FOLLOWS), node(schema.USER, other)],
            [node(schema.PRODUCT, u), rel(schema.BOUGHT), node(schema.PRODUCT, p)]]  # a user's id as a product
    mixed = [x for pair in zip(real, fake) for x in pair] + real[len(fake):]
    assert missing_paths(shop_db, mixed) == fake
    assert all(path_exists(shop_db, x) for x in real) and not any(path_exists(shop_db, x) for x in fake)
