"""The local server's lifecycle, through the real ``graphrec`` command: start, status, data kept across stop/start."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from graphrec.neo4j.server import free_port

pytestmark = pytest.mark.integration


def graphrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphrec", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def home_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(GRAPHREC_HOME=str(tmp_path / "home"), GRAPHREC_BOLT_PORT=str(free_port()))
    yield env
    graphrec(env, "neo4j", "stop")


def test_start_status_stop_keeps_data_and_generated_password(home_env):
    started = graphrec(home_env, "neo4j", "start")
    assert started.returncode == 0, started.stderr
    status = json.loads(started.stdout)
    assert status["running"] and status["version"].startswith("5.26")
    assert status["uri"] == f"bolt://127.0.0.1:{home_env['GRAPHREC_BOLT_PORT']}"

    # Transaction logs sized for the data: Neo4j's defaults preallocated 256 MiB per database (system
    # included), 515 of a fresh home's 516 MB.
    home = Path(home_env["GRAPHREC_HOME"]) / "neo4j"
    logs = sum(f.stat().st_size for f in (home / "data" / "transactions").rglob("*") if f.is_file())
    assert logs < 8 * 2**20, logs
    assert sum(f.stat().st_size for f in home.rglob("*") if f.is_file()) < 64 * 2**20

    password_file = os.path.join(home_env["GRAPHREC_HOME"], "neo4j", "password")
    assert stat.S_IMODE(os.stat(password_file).st_mode) == 0o600

    again = graphrec(home_env, "neo4j", "start")  # a no-op while running
    assert again.returncode == 0 and json.loads(again.stdout)["pid"] == status["pid"]

    # Analysts' queries are read-only, so write through the driver with the stored password.
    from neo4j import GraphDatabase

    with open(password_file) as f, GraphDatabase.driver(status["uri"], auth=("neo4j", f.read().strip())) as drv:
        drv.execute_query("CREATE (:User {id: 'kept-1', name: 'Zoë'})")

    assert graphrec(home_env, "neo4j", "stop").returncode == 0
    stopped = json.loads(graphrec(home_env, "neo4j", "status").stdout)
    assert not stopped["running"] and stopped["store_bytes"] > 0

    assert graphrec(home_env, "neo4j", "start").returncode == 0
    out = graphrec(home_env, "query", "MATCH (u:User {id: $id}) RETURN u.name AS name", "--param", "id=kept-1")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["rows"] == [["Zoë"]]


def test_external_uri_is_used_and_start_is_refused(neo4j_settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHREC_")}
    from graphrec.store.driver import neo4j_uri

    env.update(NEO4J_URI=neo4j_uri(neo4j_settings), NEO4J_USER="neo4j",
               NEO4J_PASSWORD=neo4j_settings.neo4j_password.get_secret_value())
    out = graphrec(env, "query", "RETURN 40 + $n AS v", "-p", "n:int=2", "--format", "csv")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["v", "42"]
    refused = graphrec(env, "neo4j", "start")
    assert refused.returncode == 1 and "NEO4J_URI is set" in refused.stderr


def test_unreachable_server_gives_one_clear_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(NEO4J_URI=f"bolt://127.0.0.1:{free_port()}", NEO4J_PASSWORD="x", GRAPHREC_HOME=str(tmp_path))
    out = graphrec(env, "query", "RETURN 1")
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: Neo4j is not reachable at bolt://127.0.0.1:")
    assert "Traceback" not in out.stderr


def test_short_password_is_refused_before_neo4j_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEO4J_")}
    env.update(GRAPHREC_HOME=str(tmp_path / "home"), GRAPHREC_BOLT_PORT=str(free_port()), NEO4J_PASSWORD="short")
    out = graphrec(env, "neo4j", "start")
    assert out.returncode == 1
    assert "NEO4J_PASSWORD must have at least 8 characters" in out.stderr
    assert not json.loads(graphrec(env, "neo4j", "status").stdout)["running"]


def test_a_password_starting_with_a_dash_is_the_password(home_env):
    """neo4j-admin reads an argument starting with "-" as an option; a generated password starts
    with one 1 time in 64 (token_urlsafe), so the password follows "--"."""
    from neo4j import GraphDatabase

    env = {**home_env, "NEO4J_PASSWORD": "-starts-with-a-dash"}
    started = graphrec(env, "neo4j", "start")
    assert started.returncode == 0, started.stderr
    uri = json.loads(started.stdout)["uri"]
    with GraphDatabase.driver(uri, auth=("neo4j", "-starts-with-a-dash")) as driver:
        assert driver.execute_query("RETURN 1 AS one").records[0]["one"] == 1
