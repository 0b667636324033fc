"""Soak: explained recommendations and live writes at once, while the graph index reloads.

    python bench/soak.py --model MODEL_DIR [--duration 600] [--read-rate 200] [--write-rate 10]
                         [--refresh-every 5] [--foreign-write-every 0] [--api-key KEY]

Starts ``graphrec serve --model MODEL_DIR --refresh-every 5`` in its own process (Neo4j from the
environment, as for every ``graphrec`` command) and drives it open-loop (see ``bench/api.py``):
GET /users/{id}/recommendations?explain=true for random trained users at ``--read-rate``, and at
``--write-rate`` a mix of writes: a purchase by a trained user (POST /interactions), a new user
with two friends and a purchase (POST /users), a friendship between two trained users (POST
/social). With ``--foreign-write-every S``, every S seconds a purchase is also written straight to
Neo4j, behind the service's back (as a ``graphrec load`` would): a refresh reads the graph only
after such a write, since the service's own writes are in its index already. Then every distinct
explanation path the reads returned is walked in Neo4j: each one must still exist. Prints a table (p50/p95/p99 for reads and writes, errors, paths checked) and
exits 1 on any error or missing path. Users it creates are named ``soak-<run>-<i>``; they and the
edges it wrote stay in the graph (they are real data), unless ``--cleanup``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.api import Client, RawClient, Result, free_port, percentile, run_open_loop, start_server, table  # noqa: E402


@dataclass
class SoakReport:
    reads: Result
    writes: Result
    paths_seen: int
    paths_missing: list[list[dict[str, Any]]]
    reloads: int
    foreign_writes: int
    server_ms: dict[str, list[float]]  # the server's own time (Server-Timing), GET = reads, POST = writes
    server_parts: dict[str, dict[str, list[float]]]  # its parts (db, lock, mirror, rank, explain), same keys

    @property
    def errors(self) -> int:
        return self.reads.errors + self.writes.errors

    def p99(self, result: Result) -> float:
        values = sorted(result.latencies.get("total", [0.0]))
        return values[min(len(values) - 1, int(0.99 * len(values)))]


_FOREIGN_PURCHASE = """
MATCH (u:User {id: $user}), (p:Product {id: $product})
MERGE (u)-[r:BOUGHT]->(p)
ON CREATE SET r.weight = 1.0, r.split = 'train'
ON MATCH SET r.weight = coalesce(r.weight, 0) + 1.0
SET r.ts = datetime()
"""


async def soak(client: Client, users: list[str], products: list[str], run: str, *, duration: float,
               read_rate: float, write_rate: float, driver: Any = None,
               foreign_every: float = 0.0) -> tuple[Result, Result, set[str], int]:
    """Reads and writes side by side (and, every ``foreign_every`` seconds, a purchase written with
    ``driver`` behind the service's back); returns both results, every distinct path (as JSON) and
    the number of foreign writes."""
    rng = random.Random(7)
    paths: set[str] = set()
    foreign = 0

    async def foreign_writes() -> None:
        nonlocal foreign
        end = time.monotonic() + duration
        while time.monotonic() + foreign_every < end:
            await asyncio.sleep(foreign_every)
            user, product = rng.choice(users), rng.choice(products)
            await asyncio.to_thread(lambda: driver.execute_query(_FOREIGN_PURCHASE, user=user, product=product))
            foreign += 1

    async def read(c: Client, i: int) -> dict[str, float]:
        status, body = await c.get(f"/users/{rng.choice(users)}/recommendations", {"k": 10, "explain": "true"})
        if status != 200:
            raise RuntimeError(f"recommendations -> {status} {str(body)[:160]}")
        for item in body["items"]:
            for exp in item["explanations"]:
                paths.add(json.dumps(exp["path"], sort_keys=True))
        return {}

    async def write(c: Client, i: int) -> dict[str, float]:
        kind = i % 3
        if kind == 0:
            path, body = "/interactions", {"user_id": rng.choice(users), "product_id": rng.choice(products)}
        elif kind == 1:
            path, body = "/users", {"user_id": f"soak-{run}-{i}", "friends": rng.sample(users, 2),
                                    "interactions": [{"product_id": rng.choice(products)}]}
        else:
            a, b = rng.sample(users, 2)
            path, body = "/social", {"user_id": a, "other_user_id": b, "kind": "friend"}
        status, answer = await c.post(path, body)
        if status != 201:
            raise RuntimeError(f"POST {path} -> {status} {str(answer)[:160]}")
        return {}

    reads, writes, *_ = await asyncio.gather(
        run_open_loop(client, "reads: recommendations, explained", read, read_rate, duration),
        run_open_loop(client, "writes: interactions, users, friendships", write, write_rate, duration),
        *([foreign_writes()] if foreign_every > 0 else []))
    return reads, writes, paths, foreign


def missing_paths(driver: Any, paths: set[str]) -> list[list[dict[str, Any]]]:
    """The paths (as JSON) of which some hop is not in Neo4j (walked in batches of one shape)."""
    from tests.serving_fixtures import missing_paths as walk_all

    return walk_all(driver, map(json.loads, sorted(paths)))


def run_soak(url: str, key: str | None, driver: Any, users: list[str], products: list[str], *,
             duration: float, read_rate: float, write_rate: float, foreign_every: float = 0.0,
             run: str | None = None) -> SoakReport:
    """Soak the server at ``url``, then check every path in Neo4j (library entry for the test)."""
    run = run or f"{int(time.time())}"

    async def go() -> tuple[Result, Result, set[str], int, int, int, dict[str, list[float]]]:
        client = RawClient(url, connections=64, key=key)
        try:
            _, before = await client.get("/health")
            reads, writes, paths, foreign = await soak(
                client, users, products, run, duration=duration, read_rate=read_rate, write_rate=write_rate,
                driver=driver, foreign_every=foreign_every)
            _, after = await client.get("/health")
            return (reads, writes, paths, foreign, before["generation"], after["generation"], client.server_ms,
                    client.server_parts)
        finally:
            await client.close()

    reads, writes, paths, foreign, gen0, gen1, server_ms, server_parts = asyncio.run(go())
    return SoakReport(reads, writes, len(paths), missing_paths(driver, paths), gen1 - gen0, foreign, server_ms,
                      server_parts)


def report_table(report: SoakReport) -> str:
    lines = [table([report.reads, report.writes]), "",
             f"graph reads during the run: {report.reloads} (writes behind the service's back: "
             f"{report.foreign_writes}; its own writes need none)",
             f"distinct explanation paths returned: {report.paths_seen}; missing in Neo4j afterwards: "
             f"{len(report.paths_missing)}",
             f"p99 reads {report.p99(report.reads):.1f} ms, writes {report.p99(report.writes):.1f} ms "
             f"(target <= 50 ms); errors {report.errors} (target 0)"]
    # The client shares the machine: the server's own share of each latency, from Server-Timing.
    for method, name in (("GET", "reads"), ("POST", "writes")):
        values = report.server_ms.get(method, [])
        if values:
            lines.append(f"server's own time, {name}: p50 {percentile(values, 50):.1f} / p95 "
                         f"{percentile(values, 95):.1f} / p99 {percentile(values, 99):.1f} / max {max(values):.1f} ms")
        for part, times in sorted(report.server_parts.get(method, {}).items()):
            lines.append(f"  of which {part}: p50 {percentile(times, 50):.1f} / p99 {percentile(times, 99):.1f} / "
                         f"max {max(times):.1f} ms ({len(times)} requests)")
    for result in (report.reads, report.writes):
        lines += [f"  {result.name}: {sample}" for sample in result.error_samples]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="Model artifact directory")
    parser.add_argument("--duration", type=float, default=600, help="Seconds (default 600)")
    parser.add_argument("--read-rate", type=float, default=200, help="Explained recommendations per second")
    parser.add_argument("--write-rate", type=float, default=10, help="Writes per second")
    parser.add_argument("--refresh-every", type=float, default=5, help="Server's graph reload period, s")
    parser.add_argument("--foreign-write-every", type=float, default=0,
                        help="Also write a purchase straight to Neo4j this often, s (0: never)")
    parser.add_argument("--api-key", default=os.environ.get("GRAPHREC_API_KEY"),
                        help="Admin key (env GRAPHREC_API_KEY; the server started here gets it)")
    args = parser.parse_args()

    from graphrec.artifact import Artifact
    from graphrec.config import Settings
    from graphrec.store.driver import connect

    if not args.api_key:
        raise SystemExit("--api-key or GRAPHREC_API_KEY is needed: writes require a key")
    artifact = Artifact.load(args.model)
    driver = connect(Settings())
    with driver.session() as s:
        graph_users = {r[0] for r in s.run("MATCH (u:User) RETURN u.id")}
        products = [r[0] for r in s.run("MATCH (p:Product) RETURN p.id ORDER BY p.id LIMIT 5000")]
    users = [u for u in artifact.user_ids if u in graph_users]
    port = free_port()
    server = start_server(args.model, port, env={"GRAPHREC_API_KEY": args.api_key},
                          extra=["--refresh-every", str(args.refresh_every)])
    try:
        print(f"soak: {args.duration:.0f} s, {args.read_rate:g} reads/s + {args.write_rate:g} writes/s, "
              f"refresh every {args.refresh_every:g} s, a write behind its back every "
              f"{args.foreign_write_every:g} s (0: none), {len(users)} users", file=sys.stderr, flush=True)
        report = run_soak(f"http://127.0.0.1:{port}", args.api_key, driver, users, products,
                          duration=args.duration, read_rate=args.read_rate, write_rate=args.write_rate,
                          foreign_every=args.foreign_write_every)
    finally:
        server.terminate()
        server.wait(30)
        driver.close()
    print(report_table(report))
    sys.exit(1 if report.errors or report.paths_missing else 0)


if __name__ == "__main__":
    main()
