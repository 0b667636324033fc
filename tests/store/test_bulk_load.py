"""``graphrec load --bulk``: Neo4j's offline importer gives the graph the online load gives.

Each bulk load runs in its own home on a free port (it stops and starts that server); the online
load of the same directory goes into the session's server, and the two graphs are compared in full:
every node and relationship with every property, its value and its type.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.config import Settings
from graphrec.datasets.synthetic import generate_shop
from graphrec.neo4j.server import LocalNeo4j, free_port
from graphrec.store.driver import connect, neo4j_uri
from graphrec.store.loader import database_counts, load_directory

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from shop import write_shop  # noqa: E402

pytestmark = pytest.mark.integration
PASSWORD = "bulk-test-password"


def graphrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphrec", *args], env=env, capture_output=True, text=True,
                          timeout=600)


def _value(v: object) -> tuple[str, str]:
    return type(v).__name__, repr(v) if isinstance(v, float) else str(v)


def dump(driver) -> tuple[list, list]:
    """Every node and relationship with its properties, as (type, text) pairs, in a stable order."""
    nodes, _, _ = driver.execute_query("MATCH (n) RETURN labels(n) AS l, properties(n) AS p")
    rels, _, _ = driver.execute_query("MATCH (a)-[r]->(b) RETURN labels(a) AS la, a.id AS a, type(r) AS t, "
                                      "labels(b) AS lb, b.id AS b, properties(r) AS p")
    return (sorted((tuple(r["l"]), sorted((k, *_value(v)) for k, v in r["p"].items())) for r in nodes),
            sorted((tuple(r["la"]), r["a"], r["t"], tuple(r["lb"]), r["b"],
                    sorted((k, *_value(v)) for k, v in r["p"].items())) for r in rels))


@pytest.fixture
def home(tmp_path):
    """An own home on a free port, never started; stopped at the end whatever happened."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(GRAPHREC_HOME=str(tmp_path / "home"), GRAPHREC_BOLT_PORT=env_port(), NEO4J_PASSWORD=PASSWORD)
    settings = Settings(home=tmp_path / "home", bolt_port=int(env["GRAPHREC_BOLT_PORT"]), neo4j_password=PASSWORD,
                        neo4j_uri=None)
    yield env, settings
    LocalNeo4j(settings).stop()


def env_port() -> str:
    return str(free_port())


def test_bulk_load_into_a_never_started_home_equals_the_online_load_and_refuses_a_second(empty_db, home, tmp_path):
    env, settings = home
    shop = tmp_path / "shop"
    generate_shop(300, shop, seed=3)
    online = load_directory(empty_db, shop, progress=False)

    out = graphrec(env, "load", str(shop), "--bulk", "--no-progress")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["nodes"] == online.nodes and summary["relationships"] == online.relationships
    assert summary["rejected"] == 0 and sum(online.relationships.values()) > 2000
    server = LocalNeo4j(settings)
    assert server.is_running()  # started for the schema and left running
    with connect(settings) as bulk:
        assert dump(bulk) == dump(empty_db)
        constraints, _, _ = bulk.execute_query("SHOW CONSTRAINTS YIELD name RETURN collect(name) AS c")
        assert "user_id_unique" in constraints[0]["c"] and "product_id_unique" in constraints[0]["c"]

    # A database holding data is refused, and stays as it was, server running.
    pid = server.pid()
    again = graphrec(env, "load", str(shop), "--bulk", "--no-progress")
    assert again.returncode == 1 and again.stdout == ""
    assert "is not empty" in again.stderr and "without --bulk" in again.stderr and "Traceback" not in again.stderr
    assert server.pid() == pid
    with connect(settings) as bulk:
        assert database_counts(bulk) == (online.nodes, online.relationships)


def test_bulk_load_stops_a_running_server_and_accounts_for_rejected_rows(empty_db, home, tmp_path):
    env, settings = home
    # Values the importer's CSV must carry exactly: quotes, commas, a line break, non-ASCII text,
    # missing properties, and rows to reject (a conflicting product, a bad timestamp, a dangling user).
    shop = write_shop(tmp_path / "shop", append={
        "users.csv": 'u5,"Quote ""q"", comma,\nand a line",\nu6,Ünïcödé ☃,7\n',
        "products.csv": "p1,Dune,c2,12.50,Ace\np5,\"Mug, \"\"big\"\"\",c3,0.1,\n",
        "interactions.csv": "u2,p3,yesterday,,,\nu9,p3,,,,\nu5,p5,0001-01-01T00:00:00Z,1e6,purchase,test\n",
        "social.csv": "u4,u4,friend\n",
    })
    online_rejects, bulk_rejects = tmp_path / "online-rejects.csv", tmp_path / "bulk-rejects.csv"
    online = load_directory(empty_db, shop, skip_invalid=True, rejects=online_rejects, progress=False)

    server = LocalNeo4j(settings)
    server.start()
    pid = server.pid()
    out = graphrec(env, "load", str(shop), "--bulk", "--skip-invalid", "--rejects", str(bulk_rejects),
                   "--no-progress")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["nodes"] == online.nodes and summary["relationships"] == online.relationships
    assert summary["rejected"] == online.rejected == 10
    assert bulk_rejects.read_text() == online_rejects.read_text()
    # loaded + rejected = input, file by file
    for line in out.stderr.splitlines():
        if " rows, " in line:
            name, counts = line.split(": ", 1)
            rows, loaded, rejected = (int(part.split()[0]) for part in counts.split(", "))
            with open(shop / name, newline="", encoding="utf-8") as f:
                assert loaded + rejected == rows == sum(1 for _ in csv.reader(f)) - 1, name
    assert server.is_running() and server.pid() != pid  # stopped for the import, started again
    with connect(settings) as bulk:
        assert dump(bulk) == dump(empty_db)
        names, _, _ = bulk.execute_query("MATCH (u:User {id: 'u5'}) RETURN u.name AS n")
        assert names[0]["n"] == 'Quote "q", comma,\nand a line'


def test_bulk_load_refuses_an_external_server(empty_db, neo4j_settings, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "GRAPHREC_"))}
    env.update(NEO4J_URI=neo4j_uri(neo4j_settings), NEO4J_PASSWORD=neo4j_settings.neo4j_password.get_secret_value(),
               GRAPHREC_HOME=str(tmp_path / "home"))
    out = graphrec(env, "load", str(write_shop(tmp_path / "shop")), "--bulk")
    assert out.returncode == 1 and "NEO4J_URI points at an external server" in out.stderr
    assert "Traceback" not in out.stderr
    assert sum(database_counts(empty_db)[0].values()) == 0
