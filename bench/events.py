"""Event ingestion through the real HTTP API: events/s in batches of 1,000 (POST /events).

    python bench/events.py --model MODEL_DIR [--batches 50] [--concurrency 4] [--url URL --api-key KEY]

Without ``--url`` it starts ``graphrec serve --model MODEL_DIR`` on a free port with a fresh
DuckDB events file in a temporary directory and an admin key of its own (Neo4j settings from the
environment, as for every ``graphrec`` command). It creates a campaign (``bench-events-<run>``,
random audience over the category with the most products) so impressions and clicks have one,
then posts ``--batches`` batches of ``--batch-size`` new events from ``--concurrency`` clients at
once, each event a fresh id: impressions and clicks of promoted products by audience members and,
with ``--purchase-share`` > 0, purchases. **Purchases become BOUGHT edges in the graph** (that is
the point of them): use ``--purchase-share 0`` on a graph you do not want written, and
``--cleanup`` to delete the bench campaign afterwards. Finally it re-posts one batch and checks
that every event of it counts as a duplicate.

Prints events/s (all accepted events over the wall time of the posting phase) and the batch
latency percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np



def _bench_api():
    """bench/api.py (its server harness), loaded by path: the name ``api`` is the app's package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_api", Path(__file__).resolve().with_name("api.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_api"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def make_batches(run: str, members: list[str], promoted: list[str], n: int, size: int,
                 purchase_share: float, seed: int = 7) -> list[list[dict]]:
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    batches = []
    for b in range(n):
        batch = []
        for i in range(size):
            r = rng.random()
            kind = "purchase" if r < purchase_share else ("click" if r < purchase_share + 0.08 else "impression")
            event = {"event_id": f"bench-{run}-{b}-{i}", "type": kind, "user_id": rng.choice(members),
                     "product_id": rng.choice(promoted), "campaign_id": f"bench-events-{run}",
                     "ts": iso(now - timedelta(seconds=rng.randint(1, 3000)))}
            if kind == "purchase":
                event["value"] = round(rng.uniform(5, 80), 2)
            batch.append(event)
        batches.append(batch)
    return batches


async def post_all(url: str, key: str, batches: list[list[dict]], concurrency: int) -> tuple[float, list[float], int, int]:
    """Post every batch, ``concurrency`` at a time; (wall s, batch latencies ms, accepted, duplicates)."""
    queue: asyncio.Queue = asyncio.Queue()
    for batch in batches:
        queue.put_nowait(json.dumps({"events": batch}).encode())
    latencies: list[float] = []
    totals = [0, 0]

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, timeout=60, headers={"X-API-Key": key,
                                                                        "Content-Type": "application/json"}) as c:
            while not queue.empty():
                body = queue.get_nowait()
                t0 = time.perf_counter()
                r = await c.post("/events", content=body)
                latencies.append((time.perf_counter() - t0) * 1000)
                if r.status_code != 200:
                    raise SystemExit(f"POST /events -> {r.status_code}: {r.text[:300]}")
                answer = r.json()
                totals[0] += answer["accepted"]
                totals[1] += answer["duplicates"]

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - t0, latencies, totals[0], totals[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model artifact directory")
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--api-key", default=os.environ.get("GRAPHREC_API_KEY"),
                        help="a key with the marketer and writer roles (default: $GRAPHREC_API_KEY)")
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--purchase-share", type=float, default=0.02,
                        help="share of purchases (they write BOUGHT edges; 0 leaves the graph untouched)")
    parser.add_argument("--audience", type=int, default=1000, help="campaign audience size")
    parser.add_argument("--cleanup", action="store_true", help="delete the bench campaign afterwards")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    run = time.strftime("%H%M%S")
    proc, url, key = None, args.url, args.api_key
    tmp = tempfile.TemporaryDirectory(prefix="graphrec-bench-events-")
    if url is None:
        key = key or secrets.token_urlsafe(24)
        harness = _bench_api()
        port = harness.free_port()
        proc = harness.start_server(args.model, port, env={"GRAPHREC_API_KEY": key,
                                                   "GRAPHREC_EVENTS_DB": str(Path(tmp.name) / "events.duckdb")})
        url = f"http://127.0.0.1:{port}"
    if not key:
        raise SystemExit("--api-key (or GRAPHREC_API_KEY) is needed with --url")
    client = httpx.Client(base_url=url, timeout=120, headers={"X-API-Key": key})
    campaign_id = f"bench-events-{run}"
    try:
        from graphrec.artifact import Artifact

        art = Artifact.load(args.model)
        counts = np.bincount([c for cats in art.product_categories for c in cats[:1]],
                             minlength=len(art.category_ids))
        category = art.category_ids[int(np.argmax(counts))]
        now = datetime.now(timezone.utc)
        spec = {"campaign_id": campaign_id, "name": "bench events", "category_id": category,
                "offer": {"kind": "percent_off", "value": 10}, "start": iso(now - timedelta(days=1)),
                "end": iso(now + timedelta(days=1)),
                "audience": {"policy": "random", "size": args.audience, "exclude_buyers": False}}
        r = client.post("/campaigns", json=spec)
        if r.status_code != 201:
            raise SystemExit(f"POST /campaigns -> {r.status_code}: {r.text[:300]}")
        promoted = r.json()["promoted"]
        members = client.get(f"/campaigns/{campaign_id}/audience", params={"limit": 10_000}).json()["user_ids"]
        batches = make_batches(run, members, promoted, args.batches, args.batch_size, args.purchase_share)
        print(f"campaign {campaign_id}: {len(members)} members, {len(promoted)} promoted products; "
              f"posting {args.batches} x {args.batch_size} events, {args.concurrency} at a time", file=sys.stderr)
        load_before = os.getloadavg()
        wall, latencies, accepted, duplicates = asyncio.run(post_all(url, key, batches, args.concurrency))
        again = client.post("/events", json={"events": batches[0]}).json()
        if again.get("accepted") != 0 or again.get("duplicates") != len(batches[0]):
            raise SystemExit(f"a re-posted batch was not all duplicates: {again}")
        sent = args.batches * args.batch_size
        result = {"events": sent, "accepted": accepted, "duplicates": duplicates, "wall_s": wall,
                  "events_per_s": accepted / wall if wall else 0.0,
                  "batch_ms_p50": float(np.percentile(latencies, 50)),
                  "batch_ms_p99": float(np.percentile(latencies, 99)), "concurrency": args.concurrency,
                  "batch_size": args.batch_size, "purchase_share": args.purchase_share}
        print(f"\nGraphRec POST /events, {os.cpu_count()} cores (load average {load_before[0]:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after)")
        print(f"  {accepted:,} events accepted of {sent:,} in {wall:.2f} s: {result['events_per_s']:,.0f} events/s")
        print(f"  batch latency p50 {result['batch_ms_p50']:.1f} ms, p99 {result['batch_ms_p99']:.1f} ms "
              f"({args.batch_size} events per batch, {args.concurrency} concurrent clients)")
        print(f"  re-posted batch: {again['duplicates']} duplicates, {again['accepted']} accepted")
        if args.json:
            args.json.write_text(json.dumps(result, indent=2))
    finally:
        if args.cleanup:
            from graphrec.config import Settings
            from graphrec.store.driver import connect

            driver = connect(Settings())
            with driver.session() as s:
                s.run("MATCH (c:Campaign {id: $id}) DETACH DELETE c", id=campaign_id).consume()
            driver.close()
        client.close()
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        tmp.cleanup()


if __name__ == "__main__":
    main()
