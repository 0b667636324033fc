"""GET /campaigns/{id}/report over real HTTP, on a campaign created and fed through the real API
(POST /campaigns, POST /events) against the real Neo4j; the CLI report over the same data."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from typer.testing import CliRunner

from api.main import create_app
from graphrec.serving.auth import hash_key

pytestmark = pytest.mark.integration

KEYS = {"reader": "reader-key-0123456789", "writer": "writer-key-0123456789",
        "marketer": "marketer-key-0123456789"}
NOW = datetime.now(timezone.utc)
ROCK = [f"p1{i:02d}" for i in range(10)]
PRICE = {p: 5.0 + 3 * i for i, p in enumerate(ROCK)}  # the small shop's prices (tests/serving_fixtures.py)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


SPEC = {"campaign_id": "rock-report", "name": "Rock week", "category_id": "c1",
        "offer": {"kind": "percent_off", "value": 20}, "start": iso(NOW - timedelta(days=1)),
        "end": iso(NOW + timedelta(days=6)), "audience": {"policy": "model", "size": 16},
        "control_fraction": 0.5}


@pytest.fixture
def api_settings(neo4j_settings, kit, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("".join(f"{role}:{role}:{hash_key(key)}\n" for role, key in KEYS.items()))
    return kit.settings_for(neo4j_settings).model_copy(update={
        "api_keys_file": keys, "events_db": tmp_path / "events.duckdb", "audit_log": tmp_path / "audit.log"})


@pytest.fixture
def server(shop_db, shop_artifact, api_settings, kit):
    with kit.LiveServer(create_app(api_settings, shop_artifact)) as live:
        yield live


def as_role(server, role: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=60, headers={"X-API-Key": KEYS[role]})


def audience(client: httpx.Client, variant: str) -> list[str]:
    return client.get(f"/campaigns/{SPEC['campaign_id']}/audience", params={"variant": variant}).json()["user_ids"]


def bought(driver, user_id: str) -> set[str]:
    with driver.session() as s:
        return {r["p"] for r in s.run("MATCH (:User {id: $u})-[:BOUGHT]->(p:Product) RETURN p.id AS p", u=user_id)}


def run_campaign(server, driver) -> dict:
    """Create the campaign, post a known set of events, return what the report must say."""
    marketer = as_role(server, "marketer")
    assert marketer.post("/campaigns", json=SPEC).status_code == 201
    treated, control = audience(marketer, "treatment"), audience(marketer, "control")
    assert len(treated) >= 3 and len(control) >= 2
    with driver.session() as s:
        outsider = s.run("MATCH (u:User) WHERE NOT (u)-[:ASSIGNED]->(:Campaign {id: $id}) RETURN u.id AS u "
                         "ORDER BY u LIMIT 1", id=SPEC["campaign_id"]).single()["u"]
    t = NOW - timedelta(hours=2)
    events, n = [], 0

    def add(type_: str, user: str, product: str, campaign: str | None = SPEC["campaign_id"],
            value: float | None = None) -> None:
        nonlocal n
        n += 1
        e = {"event_id": f"rep-{n}", "type": type_, "user_id": user, "product_id": product,
             "ts": iso(t + timedelta(minutes=n))}
        if campaign is not None:
            e["campaign_id"] = campaign
        if value is not None:
            e["value"] = value
        events.append(e)

    def fresh(user: str) -> str:  # a promoted product the user has not bought yet
        return next(p for p in ROCK if p not in bought(driver, user))

    t0, t1, t2 = treated[:3]
    p0, p1 = fresh(t0), fresh(t1)
    add("impression", t0, p0); add("impression", t0, p0); add("click", t0, p0)
    add("purchase", t0, p0, value=PRICE[p0] * 0.8)  # names the campaign
    add("impression", t1, p1)
    add("purchase", t1, p1, campaign=None, value=PRICE[p1] * 0.8)  # does not name it: still counts
    add("impression", t2, fresh(t2))
    c0, c1 = control[:2]
    q0, q1 = fresh(c0), fresh(c1)
    add("purchase", c0, q0, campaign=None, value=PRICE[q0])  # a control purchase: the control's conversion
    add("purchase", c1, q1, campaign=None, value=PRICE[q1])
    add("purchase", c1, "p200", campaign=None, value=7.0)  # not promoted: ignored
    add("purchase", outsider, fresh(outsider), campaign=None, value=9.0)  # not in the audience: ignored
    r = as_role(server, "writer").post("/events", json={"events": events})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    return {"treated": len(treated), "control": len(control),
            "revenue_t": 0.8 * (PRICE[p0] + PRICE[p1]), "revenue_c": PRICE[q0] + PRICE[q1],
            "cost": 0.2 * (PRICE[p0] + PRICE[p1])}


def test_report_over_http(server, shop_db):
    want = run_campaign(server, shop_db)
    r = as_role(server, "marketer").get(f"/campaigns/{SPEC['campaign_id']}/report")
    assert r.status_code == 200, r.text
    body = r.json()
    t, c = body["variants"]["treatment"], body["variants"]["control"]
    assert {k: t[k] for k in ("users", "exposed_users", "impressions", "clicks", "buyers", "purchases")} == \
        {"users": want["treated"], "exposed_users": 3, "impressions": 4, "clicks": 1, "buyers": 2, "purchases": 2}
    assert {k: c[k] for k in ("users", "exposed_users", "impressions", "clicks", "buyers", "purchases")} == \
        {"users": want["control"], "exposed_users": 0, "impressions": 0, "clicks": 0, "buyers": 2, "purchases": 2}
    assert t["revenue"] == pytest.approx(want["revenue_t"]) and c["revenue"] == pytest.approx(want["revenue_c"])
    assert t["cost"] == pytest.approx(want["cost"]) and c["cost"] == 0.0  # 20% of the list price
    incremental = (want["revenue_t"] / want["treated"] - want["revenue_c"] / want["control"]) * want["treated"]
    assert t["roi"] == pytest.approx((incremental - want["cost"]) / want["cost"])
    assert t["ctr"] == pytest.approx(1 / 4) and c["ctr"] is None
    assert t["cvr"] == pytest.approx(2 / want["treated"]) and c["cvr"] == pytest.approx(2 / want["control"])
    assert body["attribution"]["purchases_not_naming_campaign"] == 3
    assert body["attribution"]["cost_basis"].startswith("list price")
    assert {"absolute", "relative", "ci95", "p_value"} <= set(body["lift"]["cvr"])
    assert {"absolute", "relative", "ci95", "p_value"} <= set(body["lift"]["revenue_per_user"])
    assert {"p_value", "ok"} <= set(body["srm"])
    # Fewer than 10 users per variant in every segment of this small audience: all withheld.
    assert all(s["suppressed"] and "variants" not in s for s in body["segments"])
    assert body["privacy"]["min_group"] == 10


def test_report_errors_and_roles(server, shop_db):
    run_campaign(server, shop_db)
    marketer = as_role(server, "marketer")
    missing = marketer.get("/campaigns/no-such-campaign/report")
    assert missing.status_code == 404 and missing.json()["field"] == "campaign_id"
    low = marketer.get(f"/campaigns/{SPEC['campaign_id']}/report", params={"min_group": 2})
    assert low.status_code == 422 and low.json()["field"] == "min_group"
    assert as_role(server, "reader").get(f"/campaigns/{SPEC['campaign_id']}/report").status_code == 403
    assert server.anonymous.get(f"/campaigns/{SPEC['campaign_id']}/report").status_code == 401
    assert server.client.get(f"/campaigns/{SPEC['campaign_id']}/report").status_code == 200  # admin key


def test_cli_report_over_http_and_direct(server, shop_db, api_settings, kit, tmp_path):
    from graphrec.cli import app

    run_campaign(server, shop_db)
    over_http = as_role(server, "marketer").get(f"/campaigns/{SPEC['campaign_id']}/report").json()
    runner = CliRunner()
    out = runner.invoke(app, ["campaign", "report", SPEC["campaign_id"], "--url", server.url, "--format", "json"],
                        env={"GRAPHREC_API_KEY": kit.API_KEY})
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["variants"] == over_http["variants"]
    server.__exit__(None, None, None)  # the API lets go of the event store; the CLI reads it directly
    env = {**kit.cli_env(api_settings), "GRAPHREC_EVENTS_DB": str(api_settings.events_path)}
    plot = tmp_path / "report.png"
    table = runner.invoke(app, ["campaign", "report", SPEC["campaign_id"], "--plot", str(plot)], env=env)
    assert table.exit_code == 0, table.output
    assert "CVR lift" in table.stdout and "Sample ratio" in table.stdout
    assert plot.stat().st_size > 10_000
    direct = runner.invoke(app, ["campaign", "report", SPEC["campaign_id"], "--format", "json"], env=env)
    assert json.loads(direct.stdout)["variants"] == over_http["variants"]
    unknown = runner.invoke(app, ["campaign", "report", "no-such-campaign"], env=env)
    assert unknown.exit_code == 1 and "no-such-campaign" in unknown.output
