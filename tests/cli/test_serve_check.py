"""`graphrec serve --check` for people (a table and a closing summary) and for pipes (JSON)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from graphrec.cli import app as cli
from graphrec.neo4j.server import free_port

pytestmark = pytest.mark.integration


def test_serve_check_table_and_json(shop_db, shop_artifact, neo4j_settings, kit):
    # With a key configured, the check still reads recommendations (it sends the configured key).
    env = {**kit.cli_env(neo4j_settings), "GRAPHREC_API_KEY": "k" * 20}
    port = free_port()
    result = CliRunner().invoke(cli, ["serve", "--model", str(shop_artifact), "--port", str(port), "--check",
                                      "--log-level", "warning", "--format", "table"], env=env)
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert out[0] == f"GraphRec API answered on http://127.0.0.1:{port}: status ok, Neo4j reachable"
    assert out[1].startswith("model: svd-test (snapshot ")
    header = next(i for i, line in enumerate(out) if line.startswith("# | product"))
    assert [c.strip() for c in out[header].split(" | ")] == ["#", "product", "name", "score", "because"]
    rows = out[header + 2:]
    assert [row.split(" | ")[0].strip() for row in rows] == ["1", "2", "3", "4", "5"]
    assert all(row.split(" | ")[4].strip() for row in rows)  # every item explained
    assert "{" not in result.stdout  # no JSON for people
    assert f"graphrec serve --model {shop_artifact}" in result.stderr
    assert "graphrec neo4j stop" in result.stderr  # the fixture's local Neo4j keeps running
    assert "k" * 20 not in result.output

    piped = CliRunner().invoke(cli, ["serve", "--model", str(shop_artifact), "--port", str(free_port()),
                                     "--check", "--log-level", "warning"], env=env)
    assert piped.exit_code == 0, piped.output
    answer = json.loads(piped.stdout)  # not a terminal: one JSON document, nothing else on stdout
    assert answer["health"]["status"] == "ok" and len(answer["recommendations"]["items"]) == 5
