"""Thirty seconds of bench/soak.py in the suite: explained reads at 200/s, writes at 10/s and a
graph reload every 5 s against a real ``graphrec serve`` process and the real Neo4j. Zero errors,
reloads really happened, and every explanation path returned is a path in Neo4j afterwards.
(The latency targets are the benchmark's business: a timed assertion on a shared 2-core machine
would measure the neighbours.)"""

from __future__ import annotations

import pytest

from bench.api import free_port, start_server
from bench.soak import report_table, run_soak

pytestmark = pytest.mark.integration


def test_soak_30_seconds(shop_db, shop, shop_artifact, neo4j_settings, kit):
    port = free_port()
    env = {**kit.cli_env(neo4j_settings), "GRAPHREC_API_KEY": kit.API_KEY}
    server = start_server(shop_artifact, port, env=env, extra=["--refresh-every", "5"])
    try:
        report = run_soak(f"http://127.0.0.1:{port}", kit.API_KEY, shop_db, [u["id"] for u in shop.users],
                          [p["id"] for p in shop.products], duration=30, read_rate=200, write_rate=10)
    finally:
        server.terminate()
        server.wait(30)
    print(report_table(report))
    assert report.reads.sent == 6000 and report.writes.sent == 300
    assert report.errors == 0, report_table(report)
    assert report.reloads >= 4  # the index really was re-read under the load
    assert report.paths_seen > 50 and report.paths_missing == [], report.paths_missing[:3]
