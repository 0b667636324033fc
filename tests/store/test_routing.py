"""A ``neo4j://`` routing URI (what Neo4j clusters and Aura give) works for every command.

The session's single server answers routing requests too, so the commands run through the
driver's routing here exactly as against a cluster. Whether writes take the writer's route is
checked by the server itself: it refuses a write in a transaction opened for reading (what a
cluster's follower would get), so a load that succeeds through ``neo4j://`` sent its writes with
the WRITE access mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import neo4j
import pytest
from neo4j.exceptions import ClientError

from graphrec.config import Settings
from graphrec.store.driver import connect, neo4j_uri
from graphrec.store.loader import database_counts, load_directory
from graphrec.store.query import run_read

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from shop import BASE_NODES, BASE_RELS, write_shop  # noqa: E402

pytestmark = pytest.mark.integration


def routing_uri(settings: Settings) -> str:
    return neo4j_uri(settings).replace("bolt://", "neo4j://", 1)


@pytest.fixture
def routing_settings(empty_db, neo4j_settings, tmp_path) -> Settings:
    return Settings(neo4j_uri=routing_uri(neo4j_settings), neo4j_password=neo4j_settings.neo4j_password,
                    home=tmp_path / "home")


def test_library_load_and_read_through_the_routing_driver(routing_settings, tmp_path):
    assert routing_settings.neo4j_uri.startswith("neo4j://")
    with connect(routing_settings) as driver:
        assert isinstance(driver, neo4j.Neo4jDriver)  # the routing driver, not a direct bolt connection
        # The server enforces the access mode: a write routed for reading is refused ...
        with driver.session(default_access_mode=neo4j.READ_ACCESS) as session, pytest.raises(ClientError) as err:
            session.run("CREATE (:User {id: 'routed-as-read'})").consume()
        assert "read" in err.value.message.lower()
        # ... so the loader's writes (lock, schema, batches) all went out for the writer.
        result = load_directory(driver, write_shop(tmp_path / "shop"), progress=False)
        assert result.nodes == BASE_NODES and result.relationships == BASE_RELS
        assert database_counts(driver) == (BASE_NODES, BASE_RELS)
        rows = run_read(driver, "MATCH (u:User)-[:FRIEND]-(f:User) WHERE u.id = $id RETURN f.id AS f ORDER BY f",
                        {"id": "u2"}).rows
        assert rows == [["u1"]]  # u2 follows u3: not a FRIEND


def graphrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphrec", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_commands_through_a_routing_uri(routing_settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "GRAPHREC_"))}
    env.update(NEO4J_URI=routing_settings.neo4j_uri, GRAPHREC_HOME=str(routing_settings.home),
               NEO4J_PASSWORD=routing_settings.neo4j_password.get_secret_value())
    applied = graphrec(env, "schema", "apply")
    assert applied.returncode == 0, applied.stderr
    loaded = graphrec(env, "load", str(write_shop(tmp_path / "shop")))
    assert loaded.returncode == 0, loaded.stderr
    assert json.loads(loaded.stdout)["relationships"] == BASE_RELS

    read = graphrec(env, "query", "MATCH (u:User {id: $id})-[:BOUGHT]->(p) RETURN p.id AS p ORDER BY p",
                    "--param", "id=u1", "--format", "csv")
    assert read.returncode == 0, read.stderr
    assert read.stdout.splitlines() == ["p", "p1", "p2"]
    named = graphrec(env, "queries", "run", "user_neighbourhood", "--param", "user_id=u1")
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout)["columns"]

    exported = graphrec(env, "export", "--out", str(tmp_path / "snapshot"))
    assert exported.returncode == 0, exported.stderr
    meta = json.loads(exported.stdout)
    assert (tmp_path / "snapshot" / "meta.json").exists()
    assert meta["counts"]["edges"]["bought"] == BASE_RELS["BOUGHT"]
    assert meta["counts"]["nodes"]["user"] == BASE_NODES["User"]
