"""Campaigns over real HTTP against the real Neo4j: create/list/show/audience, offers with caps and
explanations, events (idempotent, durable, purchases become BOUGHT), and roles."""

from __future__ import annotations

import concurrent.futures
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from api.main import create_app
from graphrec.campaigns.events import EventStore
from graphrec.serving.auth import hash_key

pytestmark = pytest.mark.integration

KEYS = {"reader": "reader-key-0123456789", "writer": "writer-key-0123456789",
        "marketer": "marketer-key-0123456789"}
NOW = datetime.now(timezone.utc)
ROCK = [f"p1{i:02d}" for i in range(10)]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def spec(**over) -> dict:
    base = {"campaign_id": "rock", "name": "Rock week", "category_id": "c1",
            "offer": {"kind": "percent_off", "value": 20}, "start": iso(NOW - timedelta(days=1)),
            "end": iso(NOW + timedelta(days=6)), "audience": {"policy": "model", "size": 16},
            "control_fraction": 0.5, "cap": {"per_user_per_day": 2}}
    base.update(over)
    return base


@pytest.fixture
def api_settings(neo4j_settings, kit, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("".join(f"{role}:{role}:{hash_key(key)}\n" for role, key in KEYS.items()))
    return kit.settings_for(neo4j_settings).model_copy(update={
        "api_keys_file": keys, "events_db": tmp_path / "events.duckdb", "audit_log": tmp_path / "audit.log",
        "offers_per_user_per_day": 5})


@pytest.fixture
def server(shop_db, shop_artifact, api_settings, kit):
    with kit.LiveServer(create_app(api_settings, shop_artifact)) as live:
        yield live


def as_role(server, role: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": KEYS[role]})


def assigned(driver, campaign_id: str) -> dict[str, str]:
    with driver.session() as s:
        rows = s.run("MATCH (u:User)-[a:ASSIGNED]->(:Campaign {id: $id}) RETURN u.id AS u, a.variant AS v",
                     id=campaign_id).data()
    return {r["u"]: r["v"] for r in rows}


def bought(driver, user_id: str) -> set[str]:
    with driver.session() as s:
        return {r["p"] for r in s.run("MATCH (:User {id: $u})-[:BOUGHT]->(p:Product) RETURN p.id AS p", u=user_id)}


# -- campaigns ---------------------------------------------------------------------------------------
def test_create_list_show_and_audience(server, shop_db):
    r = server.client.post("/campaigns", json=spec())
    assert r.status_code == 201, r.text
    body = r.json()
    members = assigned(shop_db, "rock")
    assert body["counts"] == {"treatment": sum(v == "treatment" for v in members.values()),
                              "control": sum(v == "control" for v in members.values())}
    assert sum(body["counts"].values()) == len(members) > 0 and body["promoted"] == ROCK and body["active"]
    assert not members.keys() & {u for u in members if ROCK and bought(shop_db, u) & set(ROCK)}  # exclude_buyers

    assert [c["campaign_id"] for c in server.client.get("/campaigns").json()["campaigns"]] == ["rock"]
    shown = server.client.get("/campaigns/rock").json()
    assert shown["counts"] == body["counts"] and shown["salt"] == body["salt"]
    assert server.client.get("/campaigns/nope").status_code == 404

    for variant in ("treatment", "control"):
        ids, cursor = [], None
        while True:
            page = server.client.get("/campaigns/rock/audience",
                                     params={"variant": variant, "limit": 2, **({"cursor": cursor} if cursor else {})}).json()
            ids += page["user_ids"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert ids == sorted(u for u, v in members.items() if v == variant)


def test_create_refuses_duplicates_and_unknown_references(server):
    assert server.client.post("/campaigns", json=spec()).status_code == 201
    again = server.client.post("/campaigns", json=spec())
    assert again.status_code == 409
    r = server.client.post("/campaigns", json=spec(campaign_id="x", category_id=None, products=["p100", "ghost"]))
    assert r.status_code == 422 and r.json()["field"] == "products[1]"
    r = server.client.post("/campaigns", json=spec(campaign_id="y", control_fraction=0.9))
    assert r.status_code == 422 and r.json()["field"] == "control_fraction"
    r = server.client.post("/campaigns", json=spec(campaign_id="z", end=spec()["start"]))
    assert r.status_code == 422 and r.json()["field"] == "end"
    assert [c["campaign_id"] for c in server.client.get("/campaigns").json()["campaigns"]] == ["rock"]


# -- offers ------------------------------------------------------------------------------------------
def test_offers_only_for_treatment_with_real_paths(server, shop_db, walk):
    assert server.client.post("/campaigns", json=spec()).status_code == 201
    members = assigned(shop_db, "rock")
    treated = sorted(u for u, v in members.items() if v == "treatment")
    control = sorted(u for u, v in members.items() if v == "control")
    assert treated and control
    reader = as_role(server, "reader")
    for user in treated[:4]:
        body = reader.get(f"/users/{user}/offers", params={"k": 2}).json()
        assert 1 <= len(body["offers"]) <= 2, body
        for offer in body["offers"]:
            assert offer["campaign_id"] == "rock" and offer["product_id"] in ROCK
            assert offer["product_id"] not in bought(shop_db, user)
            assert offer["offer"] == {"kind": "percent_off", "value": 20.0}
            assert offer["price_after_offer"] == pytest.approx(offer["price"] * 0.8, abs=0.01)
            assert offer["explanations"], offer
            for exp in offer["explanations"]:
                assert walk(shop_db, exp["path"]), exp
    for user in control[:3]:
        body = reader.get(f"/users/{user}/offers").json()
        assert body["offers"] == [] and body["control_campaigns"] == ["rock"]
    outsider = next(u for u in (f"u{i:02d}" for i in range(24)) if u not in members)
    body = reader.get(f"/users/{outsider}/offers").json()
    assert body["offers"] == [] and body["control_campaigns"] == []
    assert reader.get("/users/nobody-at-all/offers").json()["offers"] == []


def test_cap_holds_under_concurrency_and_restart(shop_db, shop_artifact, api_settings, kit):
    app = create_app(api_settings, shop_artifact)
    with kit.LiveServer(app) as server:
        assert server.client.post("/campaigns", json=spec()).status_code == 201
        user = sorted(u for u, v in assigned(shop_db, "rock").items() if v == "treatment")[0]

        def one(_: int) -> int:
            with as_role(server, "reader") as c:
                return len(c.get(f"/users/{user}/offers", params={"k": 1}).json()["offers"])

        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            served = list(pool.map(one, range(20)))
        assert sum(served) == 2  # the campaign's cap per user per day
        last = server.client.get(f"/users/{user}/offers").json()
        assert last["offers"] == [] and last["capped"] and last["served_today"] == 2
    with EventStore(api_settings.events_path) as store:  # logged durably
        assert len(store.served_frame(user)) == 2
    with kit.LiveServer(create_app(api_settings, shop_artifact)) as server:  # a restart keeps the day
        assert server.client.get(f"/users/{user}/offers").json()["offers"] == []


# -- events --------------------------------------------------------------------------------------------
def events_for(user: str, product: str, n: int = 3) -> list[dict]:
    t = NOW - timedelta(hours=1)
    return [{"event_id": f"{user}-imp", "type": "impression", "user_id": user, "product_id": product,
             "campaign_id": "rock", "ts": iso(t)},
            {"event_id": f"{user}-click", "type": "click", "user_id": user, "product_id": product,
             "campaign_id": "rock", "ts": iso(t + timedelta(minutes=1))},
            {"event_id": f"{user}-buy", "type": "purchase", "user_id": user, "product_id": product,
             "campaign_id": "rock", "ts": iso(t + timedelta(minutes=5)), "value": 23.0}][:n]


def test_events_idempotent_durable_and_purchases_become_bought(server, shop_db, api_settings):
    assert server.client.post("/campaigns", json=spec()).status_code == 201
    user = sorted(u for u, v in assigned(shop_db, "rock").items() if v == "treatment")[0]
    product = next(p for p in ROCK if p not in bought(shop_db, user))
    writer = as_role(server, "writer")
    batch = {"events": events_for(user, product)}
    r = writer.post("/events", json=batch)
    assert r.status_code == 200 and r.json() == {"accepted": 3, "duplicates": 0, "graph_pending": 0}
    assert writer.post("/events", json=batch).json() == {"accepted": 0, "duplicates": 3, "graph_pending": 0}
    assert product in bought(shop_db, user)
    with shop_db.session() as s:
        weight = s.run("MATCH (:User {id: $u})-[r:BOUGHT]->(:Product {id: $p}) RETURN r.weight AS w",
                       u=user, p=product).single()["w"]
    assert weight == 1.0  # the duplicate purchase did not count twice
    # The serving index sees the purchase at once: no longer recommended, no longer offered.
    recs = server.client.get(f"/users/{user}/recommendations", params={"k": 50}).json()["items"]
    assert product not in {i["product_id"] for i in recs}
    offers = server.client.get(f"/users/{user}/offers", params={"k": 3}).json()["offers"]
    assert product not in {o["product_id"] for o in offers}
    server.__exit__(None, None, None)  # the API stops: what it answered 2xx for is on disk
    with EventStore(api_settings.events_path) as store:
        frame = store.frame(user_ids=[user])
    assert sorted(frame["type"]) == ["click", "impression", "purchase"]


def test_a_1000_event_batch_fits(server, shop_db):
    assert server.client.post("/campaigns", json=spec()).status_code == 201
    user = sorted(assigned(shop_db, "rock"))[0]
    batch = [{"event_id": f"8f14e45f-ceea-467f-a8f5-{i:012d}", "type": "impression", "user_id": user,
              "product_id": "p100", "campaign_id": "rock", "ts": iso(NOW - timedelta(seconds=i))} for i in range(1000)]
    r = as_role(server, "writer").post("/events", json={"events": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 1000
    too_many = batch + [dict(batch[0], event_id="one-more")]
    assert as_role(server, "writer").post("/events", json={"events": too_many}).status_code == 422


def test_bad_events_refused_naming_index_and_field(server, shop_db, api_settings):
    assert server.client.post("/campaigns", json=spec()).status_code == 201
    user = sorted(assigned(shop_db, "rock"))[0]
    good = events_for(user, "p100", 2)
    cases = [
        (dict(good[1], user_id="ghost"), "events[1].user_id"),
        (dict(good[1], product_id="nope"), "events[1].product_id"),
        (dict(good[1], campaign_id="autumn"), "events[1].campaign_id"),
        (dict(good[1], ts=iso(NOW + timedelta(days=30))), "events[1].ts"),
        (dict(good[1], type="purchase", value=-5), "events[1].value"),
        (dict(good[1], type="refund"), "events[1].type"),
    ]
    writer = as_role(server, "writer")
    for bad, field in cases:
        r = writer.post("/events", json={"events": [good[0], bad]})
        assert r.status_code == 422, (field, r.text)
        assert r.json()["field"] == field and "Traceback" not in r.text
    assert writer.post("/events", json={"events": good}).json()["accepted"] == 2  # nothing was half-written


# -- access --------------------------------------------------------------------------------------------
def test_roles(server):
    anon = server.anonymous
    assert anon.post("/campaigns", json=spec()).status_code == 401
    assert anon.get("/campaigns").status_code == 401
    assert anon.post("/events", json={"events": events_for("u00", "p100", 1)}).status_code == 401
    assert anon.get("/users/u00/offers").status_code == 401
    reader, writer, marketer = (as_role(server, r) for r in ("reader", "writer", "marketer"))
    assert reader.post("/campaigns", json=spec()).status_code == 403
    assert writer.get("/campaigns").status_code == 403
    assert reader.post("/events", json={"events": events_for("u00", "p100", 1)}).status_code == 403
    assert marketer.post("/events", json={"events": events_for("u00", "p100", 1)}).status_code == 403
    assert marketer.post("/campaigns", json=spec()).status_code == 201
    assert marketer.get("/campaigns/rock/audience").status_code == 200
    assert reader.get("/users/u00/offers").status_code == 200


def test_campaign_created_elsewhere_reaches_the_offers(server, shop_db, shop_artifact):
    from graphrec.artifact import Artifact
    from graphrec.campaigns.model import CampaignSpec
    from graphrec.campaigns.targeting import launch_campaign

    _, members = launch_campaign(shop_db, CampaignSpec(**spec(control_fraction=0.0)),
                                 artifact=Artifact.load(shop_artifact))  # as the CLI does
    user = members[0][0]
    reader = as_role(server, "reader")
    server.client.get("/campaigns")  # a listing notices campaigns the server has not loaded
    assert reader.get(f"/users/{user}/offers").json()["offers"]


def test_erasing_a_user_erases_their_events_and_offers(server, shop_db, api_settings):
    assert server.client.post("/campaigns", json=spec(control_fraction=0.0)).status_code == 201
    user = sorted(assigned(shop_db, "rock"))[0]
    product = next(p for p in ROCK if p not in bought(shop_db, user))
    assert server.client.get(f"/users/{user}/offers").json()["offers"]
    assert as_role(server, "writer").post("/events", json={"events": events_for(user, product)}).status_code == 200
    r = server.client.delete(f"/users/{user}")
    assert r.status_code == 200, r.text
    assert r.json()["erased"]["events"] >= 3  # the 3 events (and the offers served, once logged)
    assert server.client.get(f"/users/{user}/offers").json()["offers"] == []
    server.__exit__(None, None, None)
    with EventStore(api_settings.events_path) as store:
        assert store.frame(user_ids=[user]).empty and store.served_frame(user).empty
