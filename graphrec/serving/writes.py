"""The service's writes to Neo4j: new users, interactions, friendships, products.

Each public function checks that every referenced node exists (so the caller can name the missing
one), then writes everything in one transaction and returns what was stored, for the in-memory
index to mirror. Labels and types come from :mod:`graphrec.schema` (never from a request); all data
travels as parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import neo4j
from neo4j import Driver

from graphrec import schema

WRITE_TIMEOUT_S = 10.0
# Edges written live feed the next training run: they are training data, not held-out data.
LIVE_SPLIT = "train"

U, P, C = schema.USER, schema.PRODUCT, schema.CATEGORY


class MissingNodes(LookupError):
    """Referenced ids that are not in the graph, per request field."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        self.missing = missing
        field, ids = next(iter(missing.items()))
        super().__init__(f"{field}: not found: {', '.join(map(str, ids[:10]))}")


class AlreadyExists(ValueError):
    pass


@dataclass(frozen=True)
class Interaction:
    product_id: str
    kind: str = "purchase"  # a key of schema.INTERACTION_KINDS
    ts: str | None = None  # ISO 8601; None = now
    weight: float = 1.0


_MISSING = f"""
RETURN [x IN $users WHERE NOT EXISTS {{ MATCH (:{U.label} {{{U.key}: x}}) }}] AS users,
       [x IN $products WHERE NOT EXISTS {{ MATCH (:{P.label} {{{P.key}: x}}) }}] AS products,
       [x IN $categories WHERE NOT EXISTS {{ MATCH (:{C.label} {{{C.key}: x}}) }}] AS categories
"""


def _check(tx: neo4j.ManagedTransaction, fields: dict[str, tuple[str, Sequence[str]]]) -> None:
    """Raise MissingNodes naming the request field of the first ids not in the graph."""
    by_kind: dict[str, list[str]] = {"users": [], "products": [], "categories": []}
    for kind, ids in fields.values():
        by_kind[kind].extend(ids)
    rec = tx.run(_MISSING, by_kind).single()
    missing_of = {kind: set(rec[kind]) for kind in by_kind}
    missing = {field: [i for i in ids if i in missing_of[kind]] for field, (kind, ids) in fields.items()}
    missing = {f: ids for f, ids in missing.items() if ids}
    if missing:
        raise MissingNodes(missing)


def _friend_pairs(tx: neo4j.ManagedTransaction, user_id: str, others: Sequence[str]) -> list[tuple[str, str]]:
    # FRIEND is undirected and stored once per pair, from the smaller id to the larger; the
    # undirected MERGE finds a pair stored either way and returns how it is actually stored.
    pairs = [sorted((user_id, o)) for o in others if o != user_id]
    result = tx.run(
        f"UNWIND $pairs AS pair "
        f"MATCH (a:{U.label} {{{U.key}: pair[0]}}), (b:{U.label} {{{U.key}: pair[1]}}) "
        f"MERGE (a)-[r:{schema.FRIEND.type}]-(b) "
        f"RETURN startNode(r).{U.key} AS s, endNode(r).{U.key} AS e",
        pairs=pairs,
    )
    return [(r["s"], r["e"]) for r in result]


def _follows(tx: neo4j.ManagedTransaction, user_id: str, targets: Sequence[str]) -> list[str]:
    result = tx.run(
        f"MATCH (a:{U.label} {{{U.key}: $user}}) UNWIND $targets AS t "
        f"MATCH (b:{U.label} {{{U.key}: t}}) WHERE b <> a "
        f"MERGE (a)-[:{schema.FOLLOWS.type}]->(b) RETURN b.{U.key} AS id",
        user=user_id, targets=list(targets),
    )
    return [r["id"] for r in result]


def _interactions(tx: neo4j.ManagedTransaction, user_id: str,
                  interactions: Sequence[Interaction]) -> list[tuple[str, str, Any]]:
    """MERGE one edge per (user, product, kind); returns (type, product id, stored ts)."""
    stored: list[tuple[str, str, Any]] = []
    for kind, rel in schema.INTERACTION_KINDS.items():
        rows = [{"product_id": i.product_id, "ts": i.ts, "weight": float(i.weight)}
                for i in interactions if i.kind == kind]
        if not rows:
            continue
        result = tx.run(
            f"MATCH (u:{U.label} {{{U.key}: $user}}) UNWIND $rows AS row "
            f"MATCH (p:{P.label} {{{P.key}: row.product_id}}) "
            f"MERGE (u)-[r:{rel.type}]->(p) "
            f"ON CREATE SET r.weight = row.weight, r.split = $split "
            f"ON MATCH SET r.weight = coalesce(r.weight, 0) + row.weight "
            f"SET r.ts = CASE WHEN row.ts IS NULL THEN datetime() ELSE datetime(row.ts) END "
            f"RETURN p.{P.key} AS id, r.ts AS ts",
            user=user_id, rows=rows, split=LIVE_SPLIT,
        )
        stored += [(rel.type, r["id"], r["ts"]) for r in result]
    return stored


@dataclass
class UserWrite:
    friend_edges: list[tuple[str, str]]
    follows: list[str]
    interactions: list[tuple[str, str, Any]]


def create_user(driver: Driver, database: str, user_id: str, name: str | None,
                friends: Sequence[str], interests: Sequence[str],
                interactions: Sequence[Interaction], follows: Sequence[str] = ()) -> UserWrite:
    """A new user with their friendships, follows and interactions; fails if the id is taken."""

    @neo4j.unit_of_work(timeout=WRITE_TIMEOUT_S)
    def work(tx: neo4j.ManagedTransaction) -> UserWrite:
        if tx.run(f"MATCH (u:{U.label} {{{U.key}: $id}}) RETURN count(u) AS n", id=user_id).single()["n"]:
            raise AlreadyExists(f"user {user_id!r} already exists")
        _check(tx, {
            "friends": ("users", list(friends)),
            "follows": ("users", list(follows)),
            "interactions.product_id": ("products", [i.product_id for i in interactions]),
            "categories": ("categories", list(interests)),
        })
        props: dict[str, Any] = {U.key: user_id}
        if name is not None:
            props["name"] = name
        if interests:
            props["interests"] = list(interests)  # declared interests, for later fold-ins
        tx.run(f"CREATE (u:{U.label}) SET u = $props", props=props).consume()
        return UserWrite(_friend_pairs(tx, user_id, friends), _follows(tx, user_id, follows),
                         _interactions(tx, user_id, interactions))

    with driver.session(database=database) as session:
        return session.execute_write(work)


def add_interactions(driver: Driver, database: str, user_id: str,
                     interactions: Sequence[Interaction]) -> list[tuple[str, str, Any]]:
    @neo4j.unit_of_work(timeout=WRITE_TIMEOUT_S)
    def work(tx: neo4j.ManagedTransaction) -> list[tuple[str, str, Any]]:
        _check(tx, {"user_id": ("users", [user_id]),
                    "product_id": ("products", [i.product_id for i in interactions])})
        return _interactions(tx, user_id, interactions)

    with driver.session(database=database) as session:
        return session.execute_write(work)


def add_social(driver: Driver, database: str, user_id: str, other_id: str, kind: str) -> UserWrite:
    """A FRIEND (undirected) or FOLLOWS (user -> other) edge; idempotent."""

    @neo4j.unit_of_work(timeout=WRITE_TIMEOUT_S)
    def work(tx: neo4j.ManagedTransaction) -> UserWrite:
        _check(tx, {"user_id": ("users", [user_id]), "other_user_id": ("users", [other_id])})
        if kind == "friend":
            return UserWrite(_friend_pairs(tx, user_id, [other_id]), [], [])
        return UserWrite([], _follows(tx, user_id, [other_id]), [])

    with driver.session(database=database) as session:
        return session.execute_write(work)


def create_product(driver: Driver, database: str, product_id: str, name: str, category_id: str,
                   price: float | None, brand: str | None = None) -> None:
    """A new product in one (existing) category; fails if the id is taken."""

    @neo4j.unit_of_work(timeout=WRITE_TIMEOUT_S)
    def work(tx: neo4j.ManagedTransaction) -> None:
        if tx.run(f"MATCH (p:{P.label} {{{P.key}: $id}}) RETURN count(p) AS n", id=product_id).single()["n"]:
            raise AlreadyExists(f"product {product_id!r} already exists")
        _check(tx, {"category_id": ("categories", [category_id])})
        props: dict[str, Any] = {P.key: product_id, "name": name}
        if price is not None:
            props["price"] = float(price)
        if brand is not None:
            props["brand"] = brand
        tx.run(
            f"MATCH (c:{C.label} {{{C.key}: $category}}) CREATE (p:{P.label}) SET p = $props "
            f"CREATE (p)-[:{schema.IN_CATEGORY.type} {{primary: true}}]->(c)",
            props=props, category=category_id,
        ).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)
