"""A promotion end to end on the loaded graph, over the real API: what `make demo` runs.

    python examples/campaign_demo.py --model MODEL_DIR [--category jazz] [--size 300] [--out DIR]

1. starts ``graphrec serve --model MODEL_DIR`` (Neo4j from the environment, like every command),
2. creates a campaign (POST /campaigns): 15% off the category's products, audience chosen by the
   model, 20% control;
3. asks for offers (GET /users/{id}/offers) for every treatment user and prints one with its
   explanations;
4. posts events (POST /events): an impression per offer served, a click for about a third of them,
   and a purchase for every assigned user (treatment *or* control) who has a held-out (test-split)
   purchase of a promoted product: real behaviour the model never saw;
5. prints the report (GET /campaigns/{id}/report) and writes its plot with
   ``graphrec campaign report ID --url ... --plot``.

The held-out purchases happened without any offer, so there is no true effect to find: whatever
lift the report shows is chance, and at alpha = 0.05 about one run in twenty (each run's campaign
id salts a new split) will call it significant. ``graphrec campaign simulate`` plants a known
effect instead, and its tests check that the intervals cover it.
The purchases become BOUGHT edges like any live purchase; the campaign stays in the graph.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def start_api(model: Path, key: str) -> tuple[subprocess.Popen, str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    exe = Path(sys.executable).with_name("graphrec")
    proc = subprocess.Popen([str(exe), "serve", "--model", str(model), "--port", str(port), "--log-level", "warning"],
                            env={**os.environ, "GRAPHREC_API_KEY": key})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"graphrec serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.terminate()
    raise SystemExit("graphrec serve did not answer within 180 s")


def check(r: httpx.Response) -> dict:
    if r.status_code >= 400:
        raise SystemExit(f"{r.request.method} {r.request.url.path} -> {r.status_code}: {r.text[:300]}")
    return r.json()


def held_out_buyers(category_id: str, users: list[str]) -> list[tuple[str, str]]:
    """(user, product) of test-split purchases of the category's products by these users."""
    from graphrec.config import Settings
    from graphrec.store.driver import connect
    from graphrec.store.query import run_read

    driver = connect(Settings())
    try:
        return [tuple(r) for r in run_read(driver, """
            MATCH (c:Category {id: $c})<-[:SUBCATEGORY_OF*0..]-(:Category)<-[:IN_CATEGORY]-(p:Product)
            MATCH (u:User)-[b:BOUGHT {split: 'test'}]->(p) WHERE u.id IN $users
            RETURN DISTINCT u.id, p.id ORDER BY u.id, p.id""", {"c": category_id, "users": users}).rows]
    finally:
        driver.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--category", default="jazz", help="Category id or name to promote (default jazz)")
    parser.add_argument("--size", type=int, default=300, help="Audience size")
    parser.add_argument("--out", type=Path, default=Path(".graphrec/work"), help="Where the plot goes")
    args = parser.parse_args()

    key = os.environ.get("GRAPHREC_API_KEY") or secrets.token_urlsafe(24)
    proc, url = start_api(args.model, key)
    try:
        api = httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60)
        category = check(api.post("/graph/query", json={
            "query": "MATCH (c:Category) WHERE c.id = $c OR toLower(c.name) = toLower($c) RETURN c.id ORDER BY c.id LIMIT 1",
            "params": {"c": args.category}}))["rows"]
        if not category:
            raise SystemExit(f"no category {args.category!r} in the graph")
        now = datetime.now(timezone.utc).replace(microsecond=0)
        campaign_id = f"demo-{args.category}-{now:%Y%m%d%H%M%S}"
        created = check(api.post("/campaigns", json={
            "campaign_id": campaign_id, "name": f"15% off {args.category}", "category_id": category[0][0],
            "offer": {"kind": "percent_off", "value": 15},
            "start": (now - timedelta(hours=1)).isoformat(), "end": (now + timedelta(days=7)).isoformat(),
            # Buyers stay eligible: on a data set with a test split, "has bought" would also exclude
            # everyone whose held-out purchase is the outcome measured below.
            "audience": {"policy": "model", "size": args.size, "exclude_buyers": False},
            "control_fraction": 0.2}))
        print(f"campaign {campaign_id}: {created['counts']} users, {len(created['promoted'])} promoted products")

        def audience(variant: str) -> list[str]:
            users, cursor = [], None
            while True:
                page = check(api.get(f"/campaigns/{campaign_id}/audience",
                                     params={"variant": variant, **({"cursor": cursor} if cursor else {})}))
                users += page["user_ids"]
                if not (cursor := page["next_cursor"]):
                    return users

        treated, control = audience("treatment"), audience("control")
        def when(event_id: str) -> str:
            """Spread the events over the hour the campaign has run (deterministically)."""
            h = int(hashlib.sha256(event_id.encode()).hexdigest(), 16)
            return (now - timedelta(seconds=60 + h % 3400)).isoformat()

        events, shown = [], None
        for user in treated:
            body = check(api.get(f"/users/{user}/offers", params={"k": 3}))
            for offer in body["offers"]:
                shown = shown or (user, offer)
                eid = f"{campaign_id}:{user}:{offer['product_id']}"
                events.append({"event_id": eid + ":imp", "type": "impression", "user_id": user,
                               "product_id": offer["product_id"], "campaign_id": campaign_id, "ts": when(eid)})
                if int(hashlib.sha256(eid.encode()).hexdigest(), 16) % 3 == 0:
                    events.append({**events[-1], "event_id": eid + ":click", "type": "click", "ts": when(eid + "c")})
        if shown:
            user, offer = shown
            print(f"\noffer for {user}: {offer.get('name') or offer['product_id']}")
            for exp in offer.get("explanations", []):
                print(f"  - {exp['text']}")
        for user, product in held_out_buyers(category[0][0], treated + control):
            events.append({"event_id": f"{campaign_id}:{user}:{product}:buy", "type": "purchase", "user_id": user,
                           "product_id": product, "ts": when(f"{user}:{product}"), "value": 9.99})
        for start in range(0, len(events), 1000):
            check(api.post("/events", json={"events": events[start:start + 1000]}))
        again = check(api.post("/events", json={"events": events[:1000]}))
        print(f"\n{len(events)} events posted (sent again: {again['accepted']} accepted, {again['duplicates']} duplicates)")

        report = check(api.get(f"/campaigns/{campaign_id}/report"))
        lift = report["lift"]["cvr"]
        for variant, v in report["variants"].items():
            print(f"{variant:>9}: users {v['users']}, impressions {v['impressions']}, clicks {v['clicks']}, "
                  f"buyers {v['buyers']}, cvr {v['cvr']}, revenue {v['revenue']}")
        print(f"lift on conversion: {lift['absolute']} (95% CI {lift['ci95']}, p = {lift['p_value']}); "
              f"sample ratio ok: {report['srm']['ok']}")
        print("(the held-out purchases never saw an offer: any lift here is chance; see --help)")
        args.out.mkdir(parents=True, exist_ok=True)
        plot = args.out / f"{campaign_id}.png"
        exe = Path(sys.executable).with_name("graphrec")
        subprocess.run([str(exe), "campaign", "report", campaign_id, "--url", url, "--plot", str(plot),
                        "--format", "json"], env={**os.environ, "GRAPHREC_API_KEY": key}, check=True,
                       stdout=subprocess.DEVNULL)
        print(f"plot: {plot}")
        json.dump(report, open(args.out / f"{campaign_id}.json", "w"), indent=2)
    finally:
        proc.terminate()
        proc.wait(30)


if __name__ == "__main__":
    main()
