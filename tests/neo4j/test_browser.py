"""Neo4j Browser from the embedded server (issue 10 section 1): `graphrec neo4j start --browser`
serves Browser's page over real HTTP on loopback, with auth on and telemetry off, and says where."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from neo4j import GraphDatabase

from graphrec.neo4j.server import _port_in_use, free_port

pytestmark = pytest.mark.integration


def graphrec(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "graphrec", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def home_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "GRAPHREC_BROWSER"))}
    env.update(GRAPHREC_HOME=str(tmp_path / "home"), GRAPHREC_BOLT_PORT=str(free_port()))
    yield env
    graphrec(env, "neo4j", "stop")


def test_browser_is_served_on_loopback_with_auth(home_env):
    port = free_port()
    started = graphrec(home_env, "neo4j", "start", "--browser", "--browser-port", str(port))
    assert started.returncode == 0, started.stderr
    url = f"http://127.0.0.1:{port}/browser/"
    assert json.loads(started.stdout)["browser"] == url
    assert f"Neo4j Browser at {url}" in started.stderr
    assert json.loads(graphrec(home_env, "neo4j", "status").stdout)["browser"] == url

    page = httpx.get(url, timeout=30)
    assert page.status_code == 200 and "<title>Neo4j Browser</title>" in page.text
    # Its scripts and styles come from the server itself, not from the internet.
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and not [s for s in sources if re.match(r"(https?:)?//", s)], sources
    assert httpx.get(url + sources[-1], timeout=30).status_code == 200

    # Auth on: the HTTP API answers only with the admin's password.
    home = Path(home_env["GRAPHREC_HOME"]) / "neo4j"
    password = (home / "password").read_text().strip()
    tx = f"http://127.0.0.1:{port}/db/neo4j/tx/commit"
    body = {"statements": [{"statement": "RETURN 1 AS one"}]}
    assert httpx.post(tx, json=body, timeout=30).status_code == 401
    assert httpx.post(tx, json=body, auth=("neo4j", "not-the-password"), timeout=30).status_code == 401
    ok = httpx.post(tx, json=body, auth=("neo4j", password), timeout=30)
    assert ok.status_code == 200 and ok.json()["results"][0]["data"][0]["row"] == [1]

    conf = (home / "conf" / "neo4j.conf").read_text()
    assert f"server.http.listen_address=127.0.0.1:{port}" in conf
    bolt = f"bolt://127.0.0.1:{home_env['GRAPHREC_BOLT_PORT']}"
    with GraphDatabase.driver(bolt, auth=("neo4j", password)) as drv:
        records, _, _ = drv.execute_query("CALL dbms.clientConfig() YIELD name, value "
                                          "WHERE name = 'client.allow_telemetry' RETURN value")
        assert [r["value"] for r in records] == ["false"]

    # Without --browser (and no GRAPHREC_BROWSER_PORT) HTTP is off again.
    assert graphrec(home_env, "neo4j", "stop").returncode == 0
    again = graphrec(home_env, "neo4j", "start")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["browser"] is None
    assert not _port_in_use(port)
    assert "server.http.enabled=false" in (home / "conf" / "neo4j.conf").read_text()


def test_browser_port_taken_is_a_clear_error(home_env):
    bolt = int(home_env["GRAPHREC_BOLT_PORT"])
    out = graphrec({**home_env, "GRAPHREC_BROWSER_PORT": str(bolt)}, "neo4j", "start")
    assert out.returncode == 1 and "Neo4j Browser is taken" in out.stderr and "Traceback" not in out.stderr
