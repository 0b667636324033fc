"""The service's writes to Neo4j: new users, interactions, friendships, products.

Each write is one Cypher statement in one transaction (a single round trip: cold start is on the
request path) and returns what was actually stored, for the in-memory index to mirror. Referenced
ids are checked first: by the service against its index (no round trip), or here with
``check=True`` (one read in the same transaction) for callers without an index. Labels and types
come from :mod:`graphrec.schema`, never from a request; all data travels as parameters.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import neo4j
from neo4j import Driver
from neo4j.exceptions import ConstraintError, TransientError

from graphrec import schema
from graphrec.serving.changes import OwnCommits

WRITE_TIMEOUT_S = 10.0
TRANSIENT_RETRIES = 3
SLOW_WRITE_S = 0.5  # logged: the time a write spent in Neo4j, retries included
log = logging.getLogger("graphrec.serving")
# Edges written live feed the next training run: they are training data, not held-out data.
LIVE_SPLIT = "train"

U, P, C = schema.USER, schema.PRODUCT, schema.CATEGORY


class MissingNodes(LookupError):
    """Referenced ids that are not in the graph, per request field (first field first)."""

    def __init__(self, missing: dict[str, list[str]]) -> None:
        self.missing = missing
        field_name, ids = next(iter(missing.items()))
        super().__init__(f"{field_name}: not found: {', '.join(map(str, ids[:10]))}")


class AlreadyExists(ValueError):
    pass


@dataclass(frozen=True)
class Interaction:
    product_id: str
    kind: str = "purchase"  # a key of schema.INTERACTION_KINDS
    ts: str | None = None  # ISO 8601; None = now
    weight: float = 1.0


@dataclass(frozen=True)
class Purchase:
    """A purchase reported by an event: becomes (or reinforces) a BOUGHT edge."""

    user_id: str
    product_id: str
    ts: str | None = None  # ISO 8601; None = now
    value: float | None = None  # order value (kept with the event, not on the edge)


@dataclass
class Stored:
    """What a write stored: FRIEND edges as (start, end), FOLLOWS targets, interactions as
    (relationship type, product id, ts)."""

    friend_edges: list[tuple[str, str]] = field(default_factory=list)
    follows: list[str] = field(default_factory=list)
    interactions: list[tuple[str, str, Any]] = field(default_factory=list)


# -- Cypher fragments: subqueries over the user bound as `u` -----------------------------------------
_FRIENDS = f"""
CALL (u) {{
  UNWIND $pairs AS pair
  MATCH (a:{U.label} {{{U.key}: pair[0]}}), (b:{U.label} {{{U.key}: pair[1]}})
  MERGE (a)-[r:{schema.FRIEND.type}]-(b)
  RETURN collect([startNode(r).{U.key}, endNode(r).{U.key}]) AS friend_edges
}}"""
# FRIEND is undirected and stored once per pair, from the smaller id to the larger (pairs are
# sorted in Python); the undirected MERGE also finds a pair stored the other way, and
# startNode/endNode report how it really is stored.

_FOLLOWS = f"""
CALL (u) {{
  UNWIND $follows AS target
  MATCH (b:{U.label} {{{U.key}: target}}) WHERE b <> u
  MERGE (u)-[:{schema.FOLLOWS.type}]->(b)
  RETURN collect(b.{U.key}) AS follows
}}"""


def _interactions_fragment(kind: str, rel: schema.RelType) -> str:
    return f"""
CALL (u) {{
  UNWIND $interactions_{kind} AS row
  MATCH (p:{P.label} {{{P.key}: row.product_id}})
  MERGE (u)-[r:{rel.type}]->(p)
  ON CREATE SET r.weight = row.weight, r.split = $split
  ON MATCH SET r.weight = coalesce(r.weight, 0) + row.weight
  SET r.ts = CASE WHEN row.ts IS NULL THEN datetime() ELSE datetime(row.ts) END
  RETURN collect([p.{P.key}, r.ts]) AS stored_{kind}
}}"""


_EDGES = (_FRIENDS + _FOLLOWS + "".join(_interactions_fragment(k, r) for k, r in schema.INTERACTION_KINDS.items())
          + "\nRETURN friend_edges, follows, "
          + ", ".join(f"stored_{k}" for k in schema.INTERACTION_KINDS))

_CREATE_USER = f"CREATE (u:{U.label}) SET u = $props WITH u" + _EDGES
_EXISTING_USER = f"MATCH (u:{U.label} {{{U.key}: $user}}) WITH u" + _EDGES

_MISSING = f"""
RETURN [x IN $users WHERE NOT EXISTS {{ MATCH (:{U.label} {{{U.key}: x}}) }}] AS users,
       [x IN $products WHERE NOT EXISTS {{ MATCH (:{P.label} {{{P.key}: x}}) }}] AS products,
       [x IN $categories WHERE NOT EXISTS {{ MATCH (:{C.label} {{{C.key}: x}}) }}] AS categories
"""

_CREATE_PRODUCT = (
    f"MATCH (c:{C.label} {{{C.key}: $category}}) CREATE (p:{P.label}) SET p = $props "
    f"CREATE (p)-[:{schema.IN_CATEGORY.type} {{primary: true}}]->(c) RETURN p.{P.key} AS id"
)


def _edge_params(user_id: str, friends: Sequence[str], follows: Sequence[str],
                 interactions: Sequence[Interaction]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "pairs": [sorted((user_id, f)) for f in dict.fromkeys(friends) if f != user_id],
        "follows": list(dict.fromkeys(follows)),
        "split": LIVE_SPLIT,
    }
    for kind in schema.INTERACTION_KINDS:
        params[f"interactions_{kind}"] = [{"product_id": i.product_id, "ts": i.ts, "weight": float(i.weight)}
                                          for i in interactions if i.kind == kind]
    return params


def _stored(record: neo4j.Record) -> Stored:
    out = Stored([tuple(e) for e in record["friend_edges"]], list(record["follows"]))
    for kind, rel in schema.INTERACTION_KINDS.items():
        out.interactions += [(rel.type, pid, ts) for pid, ts in record[f"stored_{kind}"]]
    return out


def check_exists(tx: neo4j.ManagedTransaction, fields: dict[str, tuple[str, Sequence[str]]]) -> None:
    """Raise MissingNodes naming the request field of ids not in the graph.

    ``fields`` maps a request field to ("users" | "products" | "categories", ids)."""
    by_kind: dict[str, list[str]] = {"users": [], "products": [], "categories": []}
    for kind, ids in fields.values():
        by_kind[kind].extend(ids)
    rec = tx.run(_MISSING, by_kind).single()
    missing_of = {kind: set(rec[kind]) for kind in by_kind}
    missing = {f: [i for i in ids if i in missing_of[kind]] for f, (kind, ids) in fields.items()}
    missing = {f: ids for f, ids in missing.items() if ids}
    if missing:
        raise MissingNodes(missing)


# Every statement here finds its nodes by key (index seeks), so its plan never depends on the
# graph's statistics. By default Neo4j replans a cached statement once a label's count drifts far
# enough (live sign-ups do that all day) and requests arriving meanwhile wait for the planner:
# 0.3-0.9 s stalls of every write in the soak. ``replan=skip`` keeps the first plan.
KEEP_PLAN = "CYPHER replan=skip "


@functools.lru_cache(maxsize=None)
def _in_one_map(query: str) -> str:
    """``query`` with every parameter ``$name`` read from the one map parameter ``$p``."""
    return KEEP_PLAN + re.sub(r"\$(\w+)", r"$p.\1", query)


class _KeepPlans:
    """The transaction as the writes see it: every statement runs with :data:`KEEP_PLAN`, and its
    parameters travel inside one map parameter. Neo4j keys its plan cache on each top-level
    parameter's type *and size class*: an id of 6 characters and one of 12, an empty list and a
    full one, a batch of 1 and of 100 are planned separately (measured: 0.15-0.2 s each, the first
    time, with every concurrent write of that statement waiting). A map is one key whatever it
    holds, so each statement has one plan, compiled at warm-up."""

    def __init__(self, tx: Any) -> None:
        self._tx = tx

    def run(self, query: str, parameters: dict[str, Any] | None = None, **kwargs: Any) -> neo4j.Result:
        return self._tx.run(_in_one_map(query), {"p": {**(parameters or {}), **kwargs}})


# Set by warm_up: _write runs the work and rolls it back (the plans are cached, nothing is written).
_ROLL_BACK: contextvars.ContextVar[bool] = contextvars.ContextVar("graphrec_write_roll_back", default=False)


def _write(driver: Driver, database: str, work: Any, commits: OwnCommits | None) -> Any:
    """One write transaction. Transient errors (a deadlock between concurrent MERGEs) are retried
    here, a few times; connectivity errors are not (the service's breaker answers those at once).
    The commit is recorded in ``commits`` (so a refresh knows the write was the service's own)."""
    if _ROLL_BACK.get():  # each statement first in a transaction of its own: see warm_up
        with driver.session(database=database) as session, session.begin_transaction() as tx:
            result = work(_KeepPlans(tx))
            tx.rollback()
            return result
    started = time.monotonic()
    for attempt in range(TRANSIENT_RETRIES + 1):
        with driver.session(database=database) as session:
            try:
                result = session.execute_write(
                    neo4j.unit_of_work(timeout=WRITE_TIMEOUT_S)(lambda tx: work(_KeepPlans(tx))))
                if commits is not None:
                    commits.add(session.last_bookmarks())
                took = time.monotonic() - started
                if took > SLOW_WRITE_S:
                    log.warning("slow write: %.2f s in Neo4j (%d attempt%s)", took, attempt + 1,
                                "s" if attempt else "")
                return result
            except ConstraintError as err:  # the uniqueness constraint on ids: a concurrent create
                raise AlreadyExists("the id already exists") from err
            except TransientError:
                if attempt == TRANSIENT_RETRIES:
                    raise
                time.sleep(0.05 * (2 ** attempt) * (1 + random.random()))


def create_user(driver: Driver, database: str, user_id: str, name: str | None, friends: Sequence[str],
                interests: Sequence[str], interactions: Sequence[Interaction], follows: Sequence[str] = (),
                check: bool = True, commits: OwnCommits | None = None) -> Stored:
    """A new user with their friendships, follows and interactions, in one statement."""
    props: dict[str, Any] = {U.key: user_id}
    if name is not None:
        props["name"] = name
    if interests:
        props["interests"] = list(interests)  # declared interests, for later fold-ins

    def work(tx: neo4j.ManagedTransaction) -> Stored:
        if check:
            if tx.run(f"MATCH (u:{U.label} {{{U.key}: $id}}) RETURN count(u) AS n", id=user_id).single()["n"]:
                raise AlreadyExists(f"user {user_id!r} already exists")
            check_exists(tx, {"friends": ("users", list(friends)), "follows": ("users", list(follows)),
                              "interactions.product_id": ("products", [i.product_id for i in interactions]),
                              "categories": ("categories", list(interests))})
        record = tx.run(_CREATE_USER, props=props, **_edge_params(user_id, friends, follows, interactions)).single()
        return _stored(record)

    return _write(driver, database, work, commits)


def add_edges(driver: Driver, database: str, user_id: str, *, friends: Sequence[str] = (),
              follows: Sequence[str] = (), interactions: Sequence[Interaction] = (),
              check: bool = True, commits: OwnCommits | None = None) -> Stored:
    """Friendships, follows and interactions of an existing user, in one statement; idempotent
    for edges (an interaction again adds its weight and moves its time)."""

    def work(tx: neo4j.ManagedTransaction) -> Stored:
        if check:
            check_exists(tx, {"user_id": ("users", [user_id]), "other_user_id": ("users", [*friends, *follows]),
                              "product_id": ("products", [i.product_id for i in interactions])})
        record = tx.run(_EXISTING_USER, user=user_id,
                        **_edge_params(user_id, friends, follows, interactions)).single()
        return Stored() if record is None else _stored(record)

    return _write(driver, database, work, commits)


def create_product(driver: Driver, database: str, product_id: str, name: str, category_id: str,
                   price: float | None, brand: str | None = None, check: bool = True,
                   commits: OwnCommits | None = None) -> bool:
    """A new product in one existing category; False if the category was not there."""
    props: dict[str, Any] = {P.key: product_id, "name": name}
    if price is not None:
        props["price"] = float(price)
    if brand is not None:
        props["brand"] = brand

    def work(tx: neo4j.ManagedTransaction) -> bool:
        if check:
            if tx.run(f"MATCH (p:{P.label} {{{P.key}: $id}}) RETURN count(p) AS n", id=product_id).single()["n"]:
                raise AlreadyExists(f"product {product_id!r} already exists")
            check_exists(tx, {"category_id": ("categories", [category_id])})
        return tx.run(_CREATE_PRODUCT, props=props, category=category_id).single() is not None

    return _write(driver, database, work, commits)


_PURCHASES = f"""
UNWIND $rows AS row
MATCH (u:{U.label} {{{U.key}: row.user_id}}), (p:{P.label} {{{P.key}: row.product_id}})
MERGE (u)-[r:{schema.BOUGHT.type}]->(p)
ON CREATE SET r.weight = 1.0, r.split = $split
ON MATCH SET r.weight = coalesce(r.weight, 0) + 1.0
SET r.ts = CASE WHEN row.ts IS NULL THEN datetime() ELSE datetime(row.ts) END
RETURN u.{U.key} AS user_id, p.{P.key} AS product_id, r.ts AS ts
"""


def record_purchases(driver: Driver, database: str, purchases: Sequence[Purchase],
                     commits: OwnCommits | None = None) -> list[tuple[str, str, str, Any]]:
    """Purchases as BOUGHT edges in one transaction; returns ``(user, product, type, ts)`` as stored
    (a purchase whose user or product is not in the graph is not stored)."""
    rows = [{"user_id": p.user_id, "product_id": p.product_id, "ts": p.ts} for p in purchases]

    def work(tx: neo4j.ManagedTransaction) -> list[tuple[str, str, str, Any]]:
        return [(r["user_id"], r["product_id"], schema.BOUGHT.type, r["ts"])
                for r in tx.run(_PURCHASES, rows=rows, split=LIVE_SPLIT)]

    return _write(driver, database, work, commits)


def delete_user(driver: Driver, database: str, user_id: str, commits: OwnCommits | None = None) -> bool:
    """Erase a user: the node and every relationship it has (campaign assignments included)."""

    def work(tx: neo4j.ManagedTransaction) -> bool:
        rec = tx.run(f"MATCH (u:{U.label} {{{U.key}: $id}}) DETACH DELETE u RETURN count(*) AS n", id=user_id).single()
        return bool(rec["n"])

    return _write(driver, database, work, commits)


# Connections the pool opens at start: more writes than this at once is a burst the pool then grows
# for (each new connection costs Neo4j an authentication, about 10 ms on an idle server and more
# under load, and the write that asked for it waits).
WARM_CONNECTIONS = 16


def open_connections(driver: Driver, database: str, n: int = WARM_CONNECTIONS) -> None:
    """Make the driver's pool hold ``n`` authenticated connections: ``n`` transactions open at once
    (each holds its own connection until it ends), then rolled back."""
    with contextlib.ExitStack() as stack:
        for _ in range(n):
            tx = stack.enter_context(driver.session(database=database)).begin_transaction()
            stack.callback(tx.close)  # rolls back (nothing was written)
            tx.run("RETURN 1").consume()


def warm_up(driver: Driver, database: str) -> float:
    """Ready the write path before the first request: the pool's connections opened
    (:func:`open_connections`), and the plan of every statement the service writes with compiled
    and cached, in transactions that are rolled back, so the first live writes do not queue behind
    the planner (about 0.2 s a statement, and all concurrent requests for it wait). Each statement
    runs in a transaction of its own that has written nothing yet: Neo4j does not cache a plan
    compiled in a transaction with pending writes (measured: the first live write then still took
    0.17 s). Returns the seconds it took."""
    started = time.monotonic()
    open_connections(driver, database)
    nobody, nothing = "graphrec-warm-up", "graphrec-warm-up-product"
    interactions = [Interaction(nothing, kind) for kind in schema.INTERACTION_KINDS]
    token = _ROLL_BACK.set(True)
    try:
        for check in (False, True):
            for run in (
                lambda: create_user(driver, database, nobody, "warm-up", [nobody + "-friend"], [],
                                    interactions, [nobody + "-followed"], check=check),
                lambda: add_edges(driver, database, nobody, friends=[nobody + "-friend"],
                                  follows=[nobody + "-followed"], interactions=interactions, check=check),
                lambda: create_product(driver, database, nothing, "warm-up", "graphrec-warm-up-category",
                                       1.0, "brand", check=check),
            ):
                try:
                    run()
                except (MissingNodes, AlreadyExists):  # check=True stops at the missing ids: fine
                    pass
        record_purchases(driver, database, [Purchase(nobody, nothing)])
        delete_user(driver, database, nobody)
    finally:
        _ROLL_BACK.reset(token)
    return time.monotonic() - started
