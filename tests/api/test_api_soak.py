"""Thirty seconds of bench/soak.py in the suite: explained reads at 200/s, writes at 10/s, a refresh
every 5 s and a purchase written behind the service's back every 5 s, against a real ``graphrec
serve`` process and the real Neo4j. Zero errors; the graph was re-read after the foreign writes; every
explanation path returned is a path in Neo4j afterwards.
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
                          [p["id"] for p in shop.products], duration=30, read_rate=200, write_rate=10,
                          foreign_every=5)
    finally:
        server.terminate()
        server.wait(30)
    print(report_table(report))
    assert report.reads.sent == 6000 and report.writes.sent == 300
    assert report.errors == 0, report_table(report)
    # The index really was re-read under the load, after the writes behind the service's back. Not
    # once per foreign write: a read in the reader process runs at a lower priority, and on a busy
    # machine it can take long enough for two foreign writes to land before the next refresh; at
    # most twice each (one that lands while a read runs is read again). That the service's own
    # writes cause no read is tests/serving/test_serving_changes.py's business.
    assert report.foreign_writes >= 5, report_table(report)
    assert 2 <= report.reloads <= 2 * report.foreign_writes, report_table(report)
    assert report.paths_seen > 50 and report.paths_missing == [], report.paths_missing[:3]
