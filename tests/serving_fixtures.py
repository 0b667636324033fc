"""Fixtures of the serving tests (tests/api, tests/serving), imported by tests/conftest.py.

(Not a tests/api/conftest.py: a second module named ``conftest`` would shadow the root one for
tests that import helpers from it.)

A small shop graph in the session's real Neo4j, a model trained on it, the API over real HTTP.

The shop: 4 categories of 10 products, 24 users who each favour one category, friendships mostly
inside a taste group. The "model" is a truncated SVD of the user x product purchase matrix (real
factorisation of the real graph, not constants), saved with :func:`graphrec.artifact.save_artifact`
exactly as training saves its artifacts.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from neo4j import Driver
from pydantic import SecretStr

from api.main import create_app
from graphrec import schema
from graphrec.artifact import save_artifact
from graphrec.config import Settings
from graphrec.neo4j.server import free_port

CATEGORIES = {"c1": "Rock", "c2": "Jazz", "c3": "Folk", "c4": "Electro"}
API_KEY = "test-analyst-key-0123456789"


@dataclass
class Shop:
    users: list[dict[str, Any]]
    products: list[dict[str, Any]]
    bought: list[tuple[str, str, int]]  # (user, product, day)
    friends: list[tuple[str, str]]  # stored direction (smaller id first)
    follows: list[tuple[str, str]]


def make_shop(seed: int = 7) -> Shop:
    rng = np.random.default_rng(seed)
    cats = list(CATEGORIES)
    products = [{"id": f"p{c[1]}{i:02d}", "name": f"{CATEGORIES[c]} item {i}", "price": float(5 + 3 * i),
                 "category": c} for c in cats for i in range(10)]
    users = [{"id": f"u{i:02d}", "name": (f"Name{i:02d}" if i % 2 == 0 else None), "taste": cats[i % 4]}
             for i in range(24)]
    bought: set[tuple[str, str, int]] = set()
    for u in users:
        mine = [p["id"] for p in products if p["category"] == u["taste"]]
        # Popular items inside a taste (low index) are bought more often: a real signal for SVD.
        weights = np.linspace(2.0, 0.3, len(mine))
        picks = rng.choice(len(mine), size=4, replace=False, p=weights / weights.sum())
        for j in picks:
            bought.add((u["id"], mine[j], int(rng.integers(1, 28))))
        other = products[int(rng.integers(len(products)))]["id"]
        bought.add((u["id"], other, int(rng.integers(1, 28))))
    friends: set[tuple[str, str]] = set()
    for i, u in enumerate(users):
        same = [v for v in users if v["taste"] == u["taste"] and v["id"] != u["id"]]
        for v in same[:2]:
            friends.add(tuple(sorted((u["id"], v["id"]))))
        if i % 5 == 0:
            friends.add(tuple(sorted((u["id"], users[(i + 1) % len(users)]["id"]))))
    follows = {(users[i]["id"], users[(i + 3) % 24]["id"]) for i in range(0, 24, 6)}
    return Shop(users, products, sorted(bought), sorted(friends), sorted(follows))


def write_shop(driver: Driver, shop: Shop) -> None:
    U, P, C = schema.USER, schema.PRODUCT, schema.CATEGORY
    with driver.session() as s:
        s.run(f"UNWIND $rows AS r CREATE (:{C.label} {{id: r.id, name: r.name}})",
              rows=[{"id": k, "name": v} for k, v in CATEGORIES.items()]).consume()
        s.run(f"UNWIND $rows AS r MATCH (c:{C.label} {{id: r.category}}) "
              f"CREATE (p:{P.label} {{id: r.id, name: r.name, price: r.price}}) "
              f"CREATE (p)-[:{schema.IN_CATEGORY.type} {{primary: true}}]->(c)", rows=shop.products).consume()
        s.run(f"UNWIND $rows AS r CREATE (u:{U.label} {{id: r.id}}) SET u.name = r.name",
              rows=shop.users).consume()
        s.run(f"UNWIND $rows AS r MATCH (u:{U.label} {{id: r[0]}}), (p:{P.label} {{id: r[1]}}) "
              f"CREATE (u)-[:{schema.BOUGHT.type} {{weight: 1.0, split: 'train', "
              f"ts: datetime({{year: 2024, month: 3, day: r[2]}})}}]->(p)",
              rows=[list(b) for b in shop.bought]).consume()
        s.run(f"UNWIND $rows AS r MATCH (a:{U.label} {{id: r[0]}}), (b:{U.label} {{id: r[1]}}) "
              f"CREATE (a)-[:{schema.FRIEND.type}]->(b)", rows=[list(f) for f in shop.friends]).consume()
        s.run(f"UNWIND $rows AS r MATCH (a:{U.label} {{id: r[0]}}), (b:{U.label} {{id: r[1]}}) "
              f"CREATE (a)-[:{schema.FOLLOWS.type}]->(b)", rows=[list(f) for f in shop.follows]).consume()


def svd_artifact(shop: Shop, out: Path, dim: int = 6) -> Path:
    """Truncated SVD of the purchase matrix, saved as a model artifact."""
    user_ids = [u["id"] for u in shop.users]
    product_ids = [p["id"] for p in shop.products]
    cat_ids = list(CATEGORIES)
    ui = {u: i for i, u in enumerate(user_ids)}
    pi = {p: i for i, p in enumerate(product_ids)}
    matrix = np.zeros((len(user_ids), len(product_ids)))
    for u, p, _ in shop.bought:
        matrix[ui[u], pi[p]] = 1.0
    left, sing, right = np.linalg.svd(matrix, full_matrices=False)
    root = np.sqrt(sing[:dim])
    user_emb, product_emb = left[:, :dim] * root, right[:dim].T * root
    product_cats = [[cat_ids.index(p["category"])] for p in shop.products]
    category_emb = np.stack([product_emb[[i for i, pc in enumerate(product_cats) if pc == [c]]].mean(0)
                             for c in range(len(cat_ids))])
    return save_artifact(out, model="svd-test", snapshot_id="small-shop", config={"dim": dim}, metrics={},
                         user_ids=user_ids, product_ids=product_ids, category_ids=cat_ids,
                         user_emb=user_emb, product_emb=product_emb, category_emb=category_emb,
                         product_categories=product_cats, popularity=matrix.sum(0).astype(np.int64))


@pytest.fixture(scope="session")
def shop() -> Shop:
    return make_shop()


@pytest.fixture(scope="session")
def shop_artifact(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return svd_artifact(shop, tmp_path_factory.mktemp("artifact") / "svd")


@pytest.fixture
def shop_db(empty_db: Driver, shop: Shop) -> Driver:
    """The session's Neo4j holding exactly the small shop (rewritten for each test)."""
    write_shop(empty_db, shop)
    return empty_db


class LiveServer:
    """A real uvicorn server on a free loopback port, in a thread; ``client`` speaks HTTP to it,
    sending ``key`` (the admin key of ``settings_for``) unless told otherwise; ``anonymous`` sends none."""

    def __init__(self, app: Any, key: str | None = API_KEY) -> None:
        self.key = key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> "LiveServer":
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self.client = httpx.Client(base_url=self.url, timeout=30,
                                   headers={"X-API-Key": self.key} if self.key else {})
        self.anonymous = httpx.Client(base_url=self.url, timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()
        self.anonymous.close()
        self.server.should_exit = True
        self.thread.join(timeout=15)


def cli_env(settings: Settings) -> dict[str, str]:
    """Environment that points a ``graphrec`` CLI run at the server of ``settings``."""
    if settings.neo4j_uri is not None:
        return {"NEO4J_URI": settings.neo4j_uri}
    return {"GRAPHREC_HOME": str(settings.home), "GRAPHREC_BOLT_PORT": str(settings.bolt_port),
            "NEO4J_PASSWORD": settings.neo4j_password.get_secret_value()}


def settings_for(neo4j_settings: Settings, api_key: str | None = API_KEY) -> Settings:
    return neo4j_settings.model_copy(update={"api_key": SecretStr(api_key) if api_key else None})


def path_exists(driver: Driver, path: list[dict[str, Any]]) -> bool:
    """Walk a returned path hop by hop in Neo4j: each node by label and id, each relationship by
    type and direction. Labels and types must be the schema's."""
    return not missing_paths(driver, [path])


# Paths walked per query: a soak at a million users returns hundreds of thousands.
PATHS_PER_QUERY = 2000


def missing_paths(driver: Driver, paths: Iterable[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The paths of which some hop is not in Neo4j, in their given order. Paths of one shape
    (labels, types, directions) are walked together, ``PATHS_PER_QUERY`` to a query."""
    paths = list(paths)
    by_shape: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        by_shape.setdefault(_walk_query(path), []).append(i)
    found: set[int] = set()
    with driver.session() as s:
        for query, members in by_shape.items():
            for start in range(0, len(members), PATHS_PER_QUERY):
                rows = [{"i": i, "ids": [n["id"] for n in paths[i][0::2]]}
                        for i in members[start:start + PATHS_PER_QUERY]]
                found.update(r["i"] for r in s.run(query, rows=rows))
    return [p for i, p in enumerate(paths) if i not in found]


def _walk_query(path: list[dict[str, Any]]) -> str:
    """The query that returns ``r.i`` for each row ``r`` of ``$rows`` whose path of this shape exists."""
    nodes, rels = path[0::2], path[1::2]
    assert len(nodes) == len(rels) + 1 and nodes and all("label" in n for n in nodes)
    parts = ["UNWIND $rows AS r"]
    for i, node in enumerate(nodes):
        label = schema.node_type(node["label"]).label  # KeyError for anything not in the schema
        parts.append(f"MATCH (n{i}:{label} {{id: r.ids[{i}]}})")
    for i, rel in enumerate(rels):
        rtype = schema.rel_type(rel["type"]).type
        assert rel["direction"] in ("out", "in")
        arrow = f"-[:{rtype}]->" if rel["direction"] == "out" else f"<-[:{rtype}]-"
        parts.append(f"MATCH (n{i}){arrow}(n{i + 1})")
    return " ".join(parts) + " RETURN DISTINCT r.i AS i"


@pytest.fixture
def live(shop_db: Driver, shop_artifact: Path, neo4j_settings: Settings) -> Iterator[LiveServer]:
    """The API over the small shop and its SVD model, answering on a real port."""
    app = create_app(settings_for(neo4j_settings), shop_artifact)
    with LiveServer(app) as server:
        yield server


@pytest.fixture
def walk():
    """``walk(driver, path) -> bool``: does every hop of an explanation path exist in Neo4j?"""
    return path_exists


@pytest.fixture
def kit():
    """Helpers for tests that start their own server or CLI: ``kit.LiveServer``, ``kit.settings_for``,
    ``kit.cli_env``, ``kit.API_KEY``."""
    import types

    return types.SimpleNamespace(API_KEY=API_KEY, LiveServer=LiveServer, settings_for=settings_for,
                                 cli_env=cli_env)


# -- the Last.fm graph and a model trained on it (fixtures of tests/conftest.py) -----------------------
LASTFM_TEST_PREFIX = "serving-test-"


@pytest.fixture(scope="module")
def lastfm_live(lastfm_driver: Driver, lastfm_settings: Settings, lastfm_model: Path) -> Iterator[LiveServer]:
    """The API over the Last.fm graph and model. Tests here write (new users, RECOMMENDED edges);
    everything they add is removed afterwards, so the session's Last.fm graph is as loaded."""
    app = create_app(settings_for(lastfm_settings), lastfm_model)
    try:
        with LiveServer(app) as server:
            yield server
    finally:
        with lastfm_driver.session() as s:
            s.run(f"MATCH (u:{schema.USER.label}) WHERE u.id STARTS WITH $prefix DETACH DELETE u",
                  prefix=LASTFM_TEST_PREFIX).consume()
            s.run(f"MATCH ()-[r:{schema.RECOMMENDED.type}]->() CALL (r) {{ DELETE r }} IN TRANSACTIONS OF 10000 ROWS").consume()
