"""HTTP load test of the GraphRec API: p50/p95/p99 latency and throughput at a fixed request rate.

    python bench/api.py --model MODEL_DIR [--rate 200] [--duration 20] [--url http://host:port]

Without ``--url`` it starts ``graphrec serve --model MODEL_DIR`` in its own process on a free
loopback port (Neo4j settings from the environment, as for every ``graphrec`` command) and stops it
afterwards; this process is only the load generator. Load is open-loop: request i is sent at
``start + i / rate`` whether or not earlier ones have answered, so a slow server cannot slow the
load down and hide its own latency (no coordinated omission). Latency is measured from the
scheduled send time; "late" counts requests this client could not send within 5 ms of schedule.
The default client is a lean HTTP/1.1 keep-alive client (``--client httpx`` for httpx.AsyncClient,
which costs more CPU per request than the server on a 2-core machine).

Scenarios: recommendations with explanations (random trained users), friends-bought promotions,
cold start (POST /users with 3 friends and 1 purchase, then GET its recommendations), and offers
(GET /users/{id}/offers?k=3 for treatment users of a live campaign the script creates,
``bench-offers-<run>``: model audience over the category with the most products; the server it
starts has a fresh events file and a global cap high enough that every request does the full work).
Users created by the cold-start scenario are named ``bench-<run>-<i>``; ``--cleanup`` deletes them
and the offers campaign. Requests carry ``--api-key`` (an admin key: campaigns need the marketer role).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


class Client:
    """What the scenarios need from an HTTP client: GET with a query, POST with JSON."""

    async def get(self, path: str, params: dict | None = None) -> tuple[int, Any]:
        raise NotImplementedError

    async def post(self, path: str, body: dict) -> tuple[int, Any]:
        raise NotImplementedError

    async def close(self) -> None:
        pass


class HttpxClient(Client):
    """httpx.AsyncClient: the reference client (about 2-3 ms of CPU per request)."""

    def __init__(self, url: str, key: str | None = None) -> None:
        limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
        self.client = httpx.AsyncClient(base_url=url, timeout=30, limits=limits,
                                        headers={"X-API-Key": key} if key else {})

    async def get(self, path: str, params: dict | None = None) -> tuple[int, Any]:
        r = await self.client.get(path, params=params)
        return r.status_code, r.json()

    async def post(self, path: str, body: dict) -> tuple[int, Any]:
        r = await self.client.post(path, json=body)
        return r.status_code, r.json()

    async def close(self) -> None:
        await self.client.aclose()


class RawClient(Client):
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (a pool of connections).

    On a 2-core machine the load generator competes with the server for CPU; httpx spends more
    CPU per request than the server does, which would measure the client. This one spends a
    tenth of that. It speaks just what the API answers: Content-Length bodies, JSON.
    """

    def __init__(self, url: str, connections: int = 64, key: str | None = None) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.auth = f"X-API-Key: {key}\r\n" if key else ""
        self.size = connections
        self.pool: asyncio.Queue = asyncio.Queue()
        self.opened = 0
        # The server's own time per request (its Server-Timing header), by method: GET, POST; and
        # the parts it names (db, lock, mirror, rank, explain), by method and part.
        self.server_ms: dict[str, list[float]] = {}
        self.server_parts: dict[str, dict[str, list[float]]] = {}

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.pool.empty() and self.opened < self.size:
            self.opened += 1
            return await asyncio.open_connection(self.host, self.port)
        return await self.pool.get()

    async def _request(self, method: str, target: str, body: bytes = b"") -> tuple[int, Any]:
        reader, writer = await self._conn()
        try:
            head = (f"{method} {target} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(body)}\r\n"
                    + self.auth + ("Content-Type: application/json\r\n" if body else "") + "\r\n")
            writer.write(head.encode() + body)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"server-timing" and b"dur=" in value:
                    self._timing(method, value)
            payload = await reader.readexactly(length)
        except Exception:
            writer.close()
            self.opened -= 1
            raise
        self.pool.put_nowait((reader, writer))
        return status, json.loads(payload) if payload else None

    def _timing(self, method: str, value: bytes) -> None:
        """``app;dur=12.5, db;dur=3.1, ...``: the whole (app) and its parts."""
        for entry in value.decode().split(","):
            name, _, dur = entry.strip().partition(";dur=")
            if name == "app":
                self.server_ms.setdefault(method, []).append(float(dur))
            elif dur:
                self.server_parts.setdefault(method, {}).setdefault(name, []).append(float(dur))

    async def get(self, path: str, params: dict | None = None) -> tuple[int, Any]:
        query = ("?" + urllib.parse.urlencode(params)) if params else ""
        return await self._request("GET", path + query)

    async def post(self, path: str, body: dict) -> tuple[int, Any]:
        return await self._request("POST", path, json.dumps(body).encode())

    async def close(self) -> None:
        while not self.pool.empty():
            _, writer = self.pool.get_nowait()
            writer.close()


Request = Callable[[Client, int], Awaitable[dict[str, float]]]


@dataclass
class Result:
    name: str
    rate: float
    sent: int = 0
    errors: int = 0
    late: int = 0
    wall_s: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=dict)  # part -> ms
    error_samples: list[str] = field(default_factory=list)


async def run_open_loop(client: Client, name: str, request: Request, rate: float,
                        duration: float, offset: int = 0) -> Result:
    """Send ``rate * duration`` requests on schedule (numbered from ``offset``); latencies in ms."""
    loop = asyncio.get_running_loop()
    result = Result(name, rate)
    n = int(rate * duration)
    start = loop.time() + 0.05

    async def one(i: int, scheduled: float) -> None:
        try:
            parts = await request(client, offset + i)
            total = (loop.time() - scheduled) * 1000
            result.latencies.setdefault("total", []).append(total)
            for part, ms in parts.items():
                result.latencies.setdefault(part, []).append(ms)
        except Exception as err:  # a failed request is counted and sampled, not fatal
            result.errors += 1
            if len(result.error_samples) < 3:
                result.error_samples.append(f"{type(err).__name__}: {err}"[:200])

    tasks = []
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            result.late += 1
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    result.sent = n
    result.wall_s = loop.time() - start
    return result


async def timed_get(client: Client, url: str, **params) -> tuple[dict, float]:
    t0 = time.perf_counter()
    status, body = await client.get(url, params)
    ms = (time.perf_counter() - t0) * 1000
    if status != 200:
        raise RuntimeError(f"GET {url} -> {status} {str(body)[:120]}")
    return body, ms


def scenarios(users: list[str], products: list[str], run: str, k: int,
              treated: list[str] | None = None) -> dict[str, Request]:
    rng = random.Random(2024)
    picks = [rng.choice(users) for _ in range(100_000)]
    offer_picks = [rng.choice(treated) for _ in range(100_000)] if treated else []

    async def recommendations(client: Client, i: int) -> dict[str, float]:
        user = picks[i % len(picks)]
        body, ms = await timed_get(client, f"/users/{user}/recommendations", k=k, explain="true")
        if not any(item["explanations"] for item in body["items"]):
            raise RuntimeError(f"no explained items for user {user}")
        return {"GET": ms}

    async def friends_bought(client: Client, i: int) -> dict[str, float]:
        _, ms = await timed_get(client, f"/users/{picks[i % len(picks)]}/promos/friends-bought", k=k)
        return {"GET": ms}

    async def cold_start(client: Client, i: int) -> dict[str, float]:
        r_ = random.Random(i)
        user = f"bench-{run}-{i}"
        body = {"user_id": user, "friends": r_.sample(users, 3),
                "interactions": [{"product_id": r_.choice(products), "kind": "purchase"}]}
        t0 = time.perf_counter()
        status, answer = await client.post("/users", body)
        post_ms = (time.perf_counter() - t0) * 1000
        if status != 201:
            raise RuntimeError(f"POST /users -> {status} {str(answer)[:120]}")
        recs, get_ms = await timed_get(client, f"/users/{user}/recommendations", k=k, explain="true")
        if recs["source"] != "fold_in" or not recs["items"]:
            raise RuntimeError(f"new user {user} not recommendable: {recs['source']}")
        return {"POST /users": post_ms, "then GET recommendations": get_ms}

    async def offers(client: Client, i: int) -> dict[str, float]:
        user = offer_picks[i % len(offer_picks)]
        body, ms = await timed_get(client, f"/users/{user}/offers", k=3)
        if not body["offers"] and not body["capped"]:
            raise RuntimeError(f"treatment user {user} got no offer")
        return {"GET": ms}

    out: dict[str, Request] = {"recommendations+explanations": recommendations, "friends-bought": friends_bought,
                               "cold start (POST /users + GET recs)": cold_start}
    if treated:
        out["offers (treatment users, k=3)"] = offers
    return out


async def create_offers_campaign(client: Client, artifact: Any, run: str, size: int) -> tuple[str, list[str]]:
    """A live campaign over the category with the most products, ``model`` audience of ``size``;
    returns its id and its treatment users (the offers scenario asks for theirs)."""
    from datetime import datetime, timedelta, timezone

    counts = np.bincount([c for cats in artifact.product_categories for c in cats[:1]],
                         minlength=len(artifact.category_ids))
    now = datetime.now(timezone.utc)
    campaign_id = f"bench-offers-{run}"
    spec = {"campaign_id": campaign_id, "name": "bench offers",
            "category_id": artifact.category_ids[int(np.argmax(counts))],
            "offer": {"kind": "percent_off", "value": 10},
            "start": (now - timedelta(days=1)).isoformat(), "end": (now + timedelta(days=1)).isoformat(),
            # Buyers stay eligible: a bench graph may have bought the whole category already.
            "audience": {"policy": "model", "size": size, "exclude_buyers": False}, "control_fraction": 0.1,
            "cap": {"per_user_per_day": 1000}}
    status, body = await client.post("/campaigns", spec)
    if status != 201:
        raise SystemExit(f"POST /campaigns -> {status}: {str(body)[:300]} (a key with the marketer role: --api-key)")
    treated: list[str] = []
    cursor = None
    while True:
        params = {"variant": "treatment", "limit": 10_000, **({"cursor": cursor} if cursor else {})}
        status, page = await client.get(f"/campaigns/{campaign_id}/audience", params)
        treated += page["user_ids"]
        cursor = page["next_cursor"]
        if cursor is None:
            if not treated:
                raise SystemExit(f"campaign {campaign_id} has no treatment users (does the model know the users?)")
            return campaign_id, treated


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def table(results: list[Result]) -> str:
    head = ("scenario", "rate/s", "sent", "errors", "late", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms")
    rows = []
    for r in results:
        for part, values in r.latencies.items():
            label = r.name if part == "total" else f"  {part} (from send)"
            ok = len(values)
            rows.append((label, f"{r.rate:g}" if part == "total" else "", str(r.sent) if part == "total" else "",
                         str(r.errors) if part == "total" else "", str(r.late) if part == "total" else "",
                         f"{ok / r.wall_s:.1f}" if part == "total" and r.wall_s else "",
                         f"{percentile(values, 50):.1f}", f"{percentile(values, 95):.1f}",
                         f"{percentile(values, 99):.1f}", f"{max(values):.1f}"))
        if not r.latencies:
            rows.append((r.name, f"{r.rate:g}", str(r.sent), str(r.errors), str(r.late), "0", "-", "-", "-", "-"))
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(head)]
    fmt = lambda cells: " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    return "\n".join([fmt(head), "-+-".join("-" * w for w in widths), *(fmt(r) for r in rows)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, env: dict[str, str] | None = None,
                 extra: list[str] | None = None) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("graphrec")
    cmd = [str(exe) if exe.exists() else "graphrec", "serve", "--model", str(model), "--port", str(port),
           "--log-level", os.environ.get("BENCH_SERVER_LOG_LEVEL", "warning"), *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=REPO, env={**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})})
    deadline = time.monotonic() + 600  # a million-user graph takes minutes to read
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"graphrec serve exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.terminate()
    raise SystemExit("graphrec serve did not answer /health within 180 s")


def cleanup(run: str) -> int:
    from graphrec.config import Settings
    from graphrec.store.driver import connect

    driver = connect(Settings())
    try:
        with driver.session() as s:
            s.run("MATCH (c:Campaign) WHERE c.id = $id DETACH DELETE c", id=f"bench-offers-{run}").consume()
            return s.run("MATCH (u:User) WHERE u.id STARTS WITH $prefix DETACH DELETE u RETURN count(*) AS n",
                         prefix=f"bench-{run}-").single()["n"]
    finally:
        driver.close()


def server_times(client: Client) -> dict[str, list[float]]:
    """Copies of the Server-Timing values a raw client has collected, as "GET app", "GET explain"..."""
    whole = {f"{m} app": list(v) for m, v in getattr(client, "server_ms", {}).items()}
    return {**whole, **{f"{m} {part}": list(v) for m, parts in getattr(client, "server_parts", {}).items()
                        for part, v in parts.items()}}


async def main_async(args: argparse.Namespace, url: str, users: list[str], products: list[str], run: str,
                     artifact: Any = None) -> list[Result]:
    client: Client = RawClient(url, key=args.api_key) if args.client == "raw" else HttpxClient(url, args.api_key)
    try:
        _, health = await client.get("/health")
        print(f"server: model {health['model']['kind']} ({health['model']['snapshot_id']}), graph {health['graph']}",
              file=sys.stderr)
        treated = None
        if not args.only or any("offers" in o for o in args.only):
            _, treated = await create_offers_campaign(client, artifact, run, args.offers_audience)
            print(f"offers campaign bench-offers-{run}: {len(treated)} treatment users", file=sys.stderr)
        all_scenarios = scenarios(users, products, run, args.k, treated)
        results = []
        for name, request in all_scenarios.items():
            if args.only and not any(o in name for o in args.only):
                continue
            rate = args.cold_rate if name.startswith("cold") else args.rate
            warm = await run_open_loop(client, name, request, rate, min(args.warmup, args.duration))
            seen = server_times(client)
            result = await run_open_loop(client, name, request, rate, args.duration, offset=warm.sent)
            print(f"{name}: {result.sent} sent, {result.errors} errors {result.error_samples}", file=sys.stderr)
            for part, values in server_times(client).items():  # the server's own time, this scenario's
                new = values[len(seen.get(part, [])):]
                if new:
                    print(f"  server {part}: p50 {percentile(new, 50):.1f} / p99 {percentile(new, 99):.1f} ms",
                          file=sys.stderr)
            results.append(result)
        return results
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="model artifact directory")
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second (read scenarios)")
    parser.add_argument("--cold-rate", type=float, default=50.0, help="cold starts per second")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before measuring")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--only", nargs="*", help="run only scenarios whose name contains one of these")
    parser.add_argument("--cleanup", action="store_true", help="delete the users cold start created")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--api-key", default=os.environ.get("GRAPHREC_API_KEY"),
                        help="an admin key (default: $GRAPHREC_API_KEY; a server this script starts gets its own)")
    parser.add_argument("--offers-audience", type=int, default=1000, help="audience of the offers campaign")
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator's HTTP client (raw: a lean keep-alive client; httpx: httpx.AsyncClient)")
    args = parser.parse_args()

    from graphrec.artifact import Artifact

    artifact = Artifact.load(args.model)
    users = list(artifact.user_ids)
    # Cold-start purchases among the 500 most popular products: realistic, and always in the graph.
    products = [artifact.product_ids[i] for i in np.argsort(-artifact.popularity, kind="stable")[:500]]
    run = time.strftime("%H%M%S")
    proc = None
    url = args.url
    tmp = None
    if url is None:
        import secrets
        import tempfile

        # Its own admin key, and its own events file: the offers cap counts served offers per
        # user per UTC day, and earlier runs must not have used the day's allowance up.
        tmp = tempfile.TemporaryDirectory(prefix="graphrec-bench-api-")
        args.api_key = args.api_key or secrets.token_urlsafe(24)
        port = free_port()
        proc = start_server(args.model, port, env={
            "GRAPHREC_API_KEY": args.api_key, "GRAPHREC_EVENTS_DB": str(Path(tmp.name) / "events.duckdb"),
            "GRAPHREC_OFFERS_PER_USER_PER_DAY": "1000000"})
        url = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    try:
        results = asyncio.run(main_async(args, url, users, products, run, artifact))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if tmp is not None:
            tmp.cleanup()
        if args.cleanup:
            print(f"cleanup: deleted {cleanup(run)} bench users", file=sys.stderr)
    # Other work on the machine shares the cores with the server and this client: say how much.
    load = f"load average {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after"
    print(f"\nGraphRec API, {os.cpu_count()} cores ({load}), {args.duration:g} s per scenario, open loop, "
          f"{args.client} client, "
          f"latency from scheduled send time unless noted\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps([{
            "scenario": r.name, "rate": r.rate, "sent": r.sent, "errors": r.errors, "late": r.late,
            "throughput": len(r.latencies.get("total", [])) / r.wall_s if r.wall_s else 0,
            **{f"{part} p{q}": percentile(v, q) for part, v in r.latencies.items() for q in (50, 95, 99)},
        } for r in results], indent=2))


if __name__ == "__main__":
    main()
