"""`graphrec serve` as users run it: a separate process answering on a port, stopped by SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from graphrec.cli import app as cli
from graphrec.neo4j.server import free_port

pytestmark = pytest.mark.integration


def test_graphrec_serve_answers_and_stops(shop_db, shop_artifact, neo4j_settings, tmp_path, kit):
    port = free_port()
    env = {**os.environ, "GRAPHREC_API_KEY": "k" * 20, **kit.cli_env(neo4j_settings)}
    exe = Path(sys.executable).with_name("graphrec")
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(exe), "serve", "--model", str(shop_artifact), "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.3)
        assert health["graph_loaded"] and health["model"]["kind"] == "svd-test"
        r = httpx.get(f"http://127.0.0.1:{port}/users/u00/recommendations", params={"k": 3},
                      headers={"X-API-Key": "k" * 20})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the exit status tells why.
        assert proc.wait(timeout=30) in (0, -15)
    text = log.read_text()
    assert "Finished server process" in text, text
    assert "k" * 20 not in text  # the API key is never logged
    bad = CliRunner().invoke(cli, ["serve", "--model", str(tmp_path)], env=env)
    assert bad.exit_code == 1 and "not a model artifact" in bad.output and "Traceback" not in bad.output


def test_serve_check_answers_over_http(shop_db, shop_artifact, neo4j_settings, kit):
    env = kit.cli_env(neo4j_settings)
    result = CliRunner().invoke(cli, ["serve", "--model", str(shop_artifact), "--port", str(free_port()),
                                      "--check", "--log-level", "warning"], env=env)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output[result.output.index("{"):])
    assert answer["health"]["status"] == "ok" and len(answer["recommendations"]["items"]) == 5
    assert answer["recommendations"]["items"][0]["explanations"]
