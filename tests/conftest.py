"""Shared fixtures: one real Neo4j server per test session, started by GraphRec itself.

Nothing here mocks Neo4j. If the server cannot start, every test that needs it errors (never
skips): a skipped integration test proves nothing. Set ``GRAPHREC_TEST_NEO4J_URI`` (with
``NEO4J_USER``/``NEO4J_PASSWORD``) to run the suite against an existing server instead.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
from neo4j import Driver

from graphrec.config import Settings
from graphrec.neo4j.server import LocalNeo4j, free_port
from graphrec.store.driver import connect
from graphrec.store.schema import apply_schema

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GRAPHREC_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_PASSWORD = "graphrec-test-password"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data sets beside the repository (read-only)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data sets are missing at {SHARED_DATA}")
    return SHARED_DATA


@contextmanager
def _session_server(tmp_path_factory: pytest.TempPathFactory, name: str, external_env: str) -> Iterator[Settings]:
    """A real Neo4j for this test session: the server of ``$external_env`` if set, else a local
    one started in a temporary home on a free port and stopped afterwards."""
    external = os.environ.get(external_env)
    if external:
        yield Settings(neo4j_uri=external, home=tmp_path_factory.mktemp(f"{name}-home"))
        return
    home = tmp_path_factory.mktemp(f"{name}-home")
    settings = Settings(home=home, bolt_port=free_port(), neo4j_password=TEST_PASSWORD, neo4j_uri=None)
    server = LocalNeo4j(settings)
    server.start()
    try:
        yield settings
    finally:
        server.stop()


@pytest.fixture(scope="session")
def neo4j_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings pointing at a fresh, real Neo4j for this test session."""
    with _session_server(tmp_path_factory, "graphrec", "GRAPHREC_TEST_NEO4J_URI") as settings:
        yield settings


@pytest.fixture(scope="session")
def driver(neo4j_settings: Settings) -> Iterator[Driver]:
    drv = connect(neo4j_settings)
    apply_schema(drv)
    try:
        yield drv
    finally:
        drv.close()


def wipe(driver: Driver) -> None:
    """Delete every node and relationship (schema stays), in batches so large graphs fit in memory."""
    with driver.session() as session:
        # Relationships first: detaching a popular product at once would hold all its edges in one transaction.
        session.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 10000 ROWS").consume()
        session.run("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


@pytest.fixture
def empty_db(driver: Driver) -> Driver:
    """The session's driver over an empty database."""
    wipe(driver)
    return driver


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With GRAPHREC_FORBID_SKIPS=1 (make test, CI) a skipped test fails the run: it proved nothing."""
    if os.environ.get("GRAPHREC_FORBID_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"GRAPHREC_FORBID_SKIPS=1: {skipped} test(s) skipped; failing the run", red=True)
        session.exitstatus = 1


# -- Last.fm, converted and loaded once per session -----------------------------------------------

@pytest.fixture(scope="session")
def lastfm_dir(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real HetRec Last.fm data in the canonical layout, with the SocialLGN train/test split."""
    from graphrec.datasets.lastfm import convert_lastfm

    out = tmp_path_factory.mktemp("lastfm")
    convert_lastfm(shared_data / "lastfm-hetrec2011", out, shared_data / "lastfm-sociallgn-split")
    return out


@pytest.fixture(scope="session")
def lastfm_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A second real Neo4j for the session, holding the Last.fm graph (see ``lastfm_driver``);
    ``empty_db`` never wipes it. ``GRAPHREC_TEST_LASTFM_NEO4J_URI`` points it at an existing server."""
    with _session_server(tmp_path_factory, "lastfm", "GRAPHREC_TEST_LASTFM_NEO4J_URI") as settings:
        yield settings


@pytest.fixture(scope="session")
def lastfm_driver(lastfm_settings: Settings, lastfm_dir: Path) -> Iterator[Driver]:
    """A driver to the Last.fm server, with the Last.fm graph loaded once. Treat it as read-only."""
    from graphrec.store.loader import load_directory

    drv = connect(lastfm_settings)
    try:
        wipe(drv)
        load_directory(drv, lastfm_dir, progress=False)
        yield drv
    finally:
        drv.close()


@pytest.fixture(scope="session")
def lastfm_model(lastfm_driver: Driver, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LightGCN artifact trained on the loaded Last.fm graph through the real pipeline:
    export from Neo4j -> snapshot -> HeteroData -> training (a few epochs) -> artifact."""
    from graphrec.learn.snapshot import export_snapshot, load_snapshot, to_interactions
    from graphrec.learn.config import default_config
    from graphrec.learn.train import build_artifact, train

    root = tmp_path_factory.mktemp("lastfm-model")
    export_snapshot(lastfm_driver, root / "snapshot")
    data = to_interactions(load_snapshot(root / "snapshot"))
    config = default_config("lightgcn", int(data.train.shape[1]), epochs=8, seed=7)
    return build_artifact(train(data, config), data, root / "model")


# -- Serving: the small shop, its SVD model, the API over real HTTP (see tests/serving_fixtures.py) --
from serving_fixtures import kit, lastfm_live, live, shop, shop_artifact, shop_db, walk  # noqa: E402,F401
