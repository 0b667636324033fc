"""The /ui dashboard and /docs in a real headless Chromium (Debian's package, driven by Playwright)
against the real API over the real Last.fm graph and a model trained on it.

Every request the browser makes is recorded, and anything not addressed to this machine is
aborted and fails the test: the pages work offline. Each test saves a screenshot in its tmp dir.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
from neo4j import Driver
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from api.main import create_app
from graphrec.config import Settings
from graphrec.store.query import run_read
from serving_fixtures import LiveServer, settings_for

pytestmark = pytest.mark.integration

KEY = "test-analyst-key-0123456789"  # tests/serving_fixtures.API_KEY: the admin key of settings_for
CAMPAIGN = "ui-test-campaign"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
TIMEOUT_MS = 60_000  # the machine is shared: generous, the assertions are exact


def chromium_path() -> str:
    path = os.environ.get("GRAPHREC_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: apt-get install chromium (.ci/run does), or set GRAPHREC_CHROMIUM")
    return path


@pytest.fixture(scope="module")
def dash(lastfm_driver: Driver, lastfm_settings: Settings, lastfm_model: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The API over Last.fm with its own event store; what the tests add to the graph (a campaign,
    its purchases) is removed afterwards."""
    tmp = tmp_path_factory.mktemp("ui-api")
    settings = settings_for(lastfm_settings).model_copy(update={
        "events_db": tmp / "events.duckdb", "audit_log": tmp / "audit.log", "query_rate": 50.0, "query_burst": 100})
    server = LiveServer(create_app(settings, lastfm_model))
    server.bought = []  # (user, product) BOUGHT edges the campaign test created
    try:
        with server:
            yield server
    finally:
        with lastfm_driver.session() as s:
            s.run("UNWIND $pairs AS pair MATCH (:User {id: pair[0]})-[r:BOUGHT]->(:Product {id: pair[1]}) DELETE r",
                  pairs=[list(p) for p in server.bought]).consume()
            s.run("MATCH (c:Campaign) WHERE c.id STARTS WITH 'ui-test-' DETACH DELETE c").consume()


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


class Session:
    """One browser tab with every request recorded; non-local requests are aborted."""

    def __init__(self, browser: Browser, base: str, shots: Path) -> None:
        self.base = base
        self.shots = shots
        self.requests: list[str] = []
        self.console_errors: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        self.context.route("**/*", self._route)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.page.on("pageerror", lambda e: self.console_errors.append(str(e)))

    def _route(self, route: Route, request: Request) -> None:
        self.requests.append(request.url)
        if is_local(request.url):
            route.continue_()
        else:
            route.abort()

    def open(self, path: str) -> Page:
        self.page.goto(self.base + path)
        return self.page

    def use_key(self, key: str = KEY) -> None:
        """Sets the key the way a person does: typed into the header form."""
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Use key").click()
        expect(self.page.locator("#key-state")).to_have_text("key set for this session")

    def wait_ready(self, page_name: str) -> None:
        """Until the page of the current address is drawn (its data loaded)."""
        self.page.wait_for_function("(name) => document.body.dataset.ready === name && "
                                    "document.body.dataset.route === window.location.hash", arg=page_name)

    def finish(self, name: str) -> Path:
        shot = self.shots / f"{name}.png"
        self.page.screenshot(path=str(shot), full_page=True)
        foreign = [u for u in self.requests if not is_local(u)]
        assert not foreign, f"requests left the machine: {foreign[:5]}"
        assert self.requests, "no request was recorded: the interception is not working"
        assert not self.console_errors, self.console_errors
        return shot


def is_local(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "blob", "about"):
        return True
    return parts.scheme in ("http", "https") and (parts.hostname or "") in LOCAL_HOSTS


@pytest.fixture
def browser(chromium: Browser, dash, tmp_path: Path) -> Iterator[Session]:
    session = Session(chromium, dash.url, tmp_path)
    try:
        yield session
    finally:
        session.context.close()


# -- reading what the page drew ------------------------------------------------------------------------
# The steps of a drawn path, read back from the SVG: nodes' label/id, edges' type/direction.
PATH_STEPS = """(svg) => {
  const nodes = [...svg.querySelectorAll('g.node')], edges = [...svg.querySelectorAll('g.edge')], steps = [];
  nodes.forEach((n, i) => {
    steps.push({label: n.dataset.label, id: n.dataset.id});
    if (i < edges.length) steps.push({type: edges[i].dataset.type, direction: edges[i].dataset.direction});
  });
  return steps;
}"""
DRAWN_PATHS = """(root) => [...root.querySelectorAll('li.rec')].map(li => ({
  product: li.dataset.productId,
  paths: [...li.querySelectorAll('svg.path-graph')].map(svg => ({
    steps: (""" + PATH_STEPS + """)(svg),
    names: [...svg.querySelectorAll('g.node')].map(n => n.dataset.name)}))}))"""

UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
  .filter(el => el.type !== 'hidden' && el.labels.length === 0 && !el.getAttribute('aria-label'))
  .map(el => el.id || el.name || el.outerHTML.slice(0, 60))"""


def pick_user(dash, driver: Driver) -> str:
    """A user whose recommendations are explained both through a friend and through a category."""
    ids = sorted(r[0] for r in run_read(driver, "MATCH (u:User)-[:FRIEND]-() RETURN DISTINCT u.id").rows)
    for user in random.Random(3).sample(ids, 40):
        body = dash.client.get(f"/users/{user}/recommendations", params={"k": 10, "explain": "true"}).json()
        kinds = {e["kind"] for i in body["items"] for e in i["explanations"]}
        if {"friend_bought", "same_category"} <= kinds:
            return user
    pytest.fail("no sampled Last.fm user has both friend and category explanations")


# -- the user page -----------------------------------------------------------------------------------
def test_user_page_draws_the_api_paths(browser: Session, dash, lastfm_driver: Driver):
    user = pick_user(dash, lastfm_driver)
    page = browser.open("/ui/")
    browser.use_key()
    # Keyboard only: Tab from the key form to the search field, type the id, Enter; then the result link.
    page.locator("#key-forget").focus()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "user-q":
            break
    assert page.evaluate("document.activeElement.id") == "user-q", "the search field is not reachable by Tab"
    page.keyboard.type(user)
    page.keyboard.press("Enter")
    link = page.locator(f"table a[href='#/users/{user}']")
    expect(link).to_be_visible()
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/#/users/{user}")
    browser.wait_ready("users")

    api = dash.client.get(f"/users/{user}/recommendations", params={"k": 10, "explain": "true"}).json()
    drawn = page.evaluate(DRAWN_PATHS, page.locator("main").element_handle())
    assert [d["product"] for d in drawn] == [i["product_id"] for i in api["items"]]
    names = dash.client.get("/names", params={
        "user": [s["id"] for i in api["items"] for e in i["explanations"] for s in e["path"] if s.get("label") == "User"],
        "product": [i["product_id"] for i in api["items"]] + [
            s["id"] for i in api["items"] for e in i["explanations"] for s in e["path"] if s.get("label") == "Product"],
        "category": [s["id"] for i in api["items"] for e in i["explanations"] for s in e["path"] if s.get("label") == "Category"],
    }).json()
    kinds = set()
    for item, shown in zip(api["items"], drawn):
        assert [p["steps"] for p in shown["paths"]] == [e["path"] for e in item["explanations"]], item["product_id"]
        for exp, path in zip(item["explanations"], shown["paths"]):
            kinds.add(exp["kind"])
            assert path["names"][0] == "you" and path["names"][-1] == names["products"][item["product_id"]]
            for step, name in zip(exp["path"][2::2], path["names"][1:]):
                table = {"User": names["users"], "Product": names["products"], "Category": names["categories"]}[step["label"]]
                assert name == table[step["id"]]
    assert {"friend_bought", "same_category"} <= kinds

    # Friends and recent purchases, as the graph has them.
    friends = {r[0] for r in run_read(lastfm_driver, "MATCH (:User {id: $u})-[:FRIEND]-(f) RETURN f.id", {"u": user}).rows}
    shown_friends = set(page.locator("ul.people a").evaluate_all("as => as.map(a => decodeURIComponent(a.hash.split('/')[2]))"))
    assert shown_friends == friends or (len(friends) > 50 and len(shown_friends) == 50 and shown_friends <= friends)
    bought = run_read(lastfm_driver, "MATCH (:User {id: $u})-[:BOUGHT]->(p) RETURN count(p)", {"u": user}).rows[0][0]
    timed = run_read(lastfm_driver, "MATCH (:User {id: $u})-[r:BOUGHT]->() WHERE r.ts IS NOT NULL RETURN count(r)",
                     {"u": user}).rows[0][0]
    heading = "Recent purchases" if timed else "Purchases"
    expect(page.get_by_role("heading", name=f"{heading} ({bought:,})")).to_be_visible()
    assert page.evaluate(UNLABELLED) == []
    browser.finish("user-page")

    # The first path as Cypher, opened and run in the analysts' page: the same nodes come back drawn.
    first = api["items"][0]["explanations"][0]["path"]
    page.locator("details.cypher summary").first.click()
    page.locator("details.cypher a.button-link").first.click()
    browser.wait_ready("queries")
    page.get_by_role("button", name="Run Cypher").click()
    graph = page.locator("svg.result-graph")
    expect(graph).to_be_visible()
    drawn_nodes = graph.locator("g.node").evaluate_all("ns => ns.map(n => [n.dataset.label, n.dataset.id])")
    assert sorted(drawn_nodes) == sorted([s["label"], s["id"]] for s in first[0::2])
    assert graph.locator("g.edge").count() == len(first) // 2
    browser.finish("path-as-cypher")


# -- campaigns -----------------------------------------------------------------------------------------
def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_campaign_report_renders_its_charts(browser: Session, dash, lastfm_driver: Driver, walk):
    now = datetime.now(timezone.utc)
    category = run_read(lastfm_driver, "MATCH (c:Category)<-[:IN_CATEGORY]-(p) RETURN c.id, count(p) AS n "
                                       "ORDER BY n DESC, c.id LIMIT 1").rows[0][0]
    r = dash.client.post("/campaigns", json={
        "campaign_id": CAMPAIGN, "name": "Dashboard test week", "category_id": category,
        "offer": {"kind": "percent_off", "value": 15}, "start": iso(now - timedelta(hours=6)),
        "end": iso(now + timedelta(days=1)), "audience": {"policy": "model", "size": 300}, "control_fraction": 0.5})
    assert r.status_code == 201, r.text
    promoted = r.json()["promoted"]
    members = {}
    for variant in ("treatment", "control"):
        members[variant] = dash.client.get(f"/campaigns/{CAMPAIGN}/audience",
                                           params={"variant": variant, "limit": 1000}).json()["user_ids"]
    rng = random.Random(5)
    events, n = [], 0
    for variant, rate in (("treatment", 0.3), ("control", 0.15)):
        for user in members[variant]:
            product = rng.choice(promoted)
            ts = now - timedelta(minutes=rng.randint(5, 300))
            if variant == "treatment":
                events.append({"event_id": f"ui-{n}", "type": "impression", "user_id": user, "product_id": product,
                               "campaign_id": CAMPAIGN, "ts": iso(ts)})
                n += 1
                if rng.random() < 0.5:
                    events.append({"event_id": f"ui-{n}", "type": "click", "user_id": user, "product_id": product,
                                   "campaign_id": CAMPAIGN, "ts": iso(ts + timedelta(seconds=30))})
                    n += 1
            if rng.random() < rate:
                events.append({"event_id": f"ui-{n}", "type": "purchase", "user_id": user, "product_id": product,
                               "campaign_id": CAMPAIGN, "ts": iso(ts + timedelta(minutes=2)), "value": 10.0})
                dash.bought.append((user, product))
                n += 1
    r = dash.client.post("/events", json={"events": events})
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text
    report = dash.client.get(f"/campaigns/{CAMPAIGN}/report").json()

    page = browser.open("/ui/")
    browser.use_key()
    page.get_by_role("link", name="Campaigns").click()
    page.get_by_role("link", name=CAMPAIGN).click()
    browser.wait_ready("campaigns")
    expect(page.locator("#campaign-title")).to_have_text(f"Dashboard test week ({CAMPAIGN})")
    t, c = report["variants"]["treatment"], report["variants"]["control"]
    assert t["buyers"] > 0 and c["buyers"] > 0
    expect(page.locator("#headline")).to_contain_text(f"{t['buyers']} of {t['users']} users bought")

    conversion = page.locator("#chart-conversion svg")
    series = conversion.locator("g.series")
    assert series.count() == 2
    for i, variant in enumerate(("treatment", "control")):
        assert series.nth(i).get_attribute("data-series").startswith(variant)
        assert int(series.nth(i).get_attribute("data-points")) == len(report["timeline"]["ts"])
        assert series.nth(i).locator("path.band").count() == 1 and series.nth(i).locator("path.line").count() == 1
    bars = page.locator("#chart-funnel g.bar").evaluate_all(
        "bs => bs.map(b => [b.dataset.group, b.dataset.series, Number(b.dataset.value)])")
    assert sorted(bars) == sorted([stage, variant, report["funnel"][variant][stage]]
                                  for variant in ("treatment", "control") for stage in ("impressions", "clicks", "purchases"))
    rows = page.locator("section:has(h2:text('Per group')) tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(0).locator("td").nth(6).inner_text() == f"{t['buyers']:,}"
    browser.finish("campaign-report")

    # A treatment user's offers, on request, each explained by paths that exist in the graph.
    user = members["treatment"][0]
    page.goto(f"{dash.url}/ui/#/users/{user}")
    browser.wait_ready("users")
    page.get_by_role("button", name="Show this user's offers").click()
    offers = page.locator("li.offer")
    expect(offers.first).to_be_visible()
    assert 1 <= offers.count() <= 3
    for li in offers.all():
        assert "Dashboard test week" in li.inner_text() and "15% off" in li.inner_text()
        drawn = li.locator("svg.path-graph").evaluate_all(f"svgs => svgs.map({PATH_STEPS})")
        assert drawn and all(walk(lastfm_driver, path) for path in drawn), drawn
        # From the user to the promoted product, or (a product nobody bought yet) from the promoted
        # product to its category.
        assert all(path[0] == {"label": "User", "id": user} and path[-1]["id"] in promoted
                   or path[0]["label"] == "Product" and path[0]["id"] in promoted for path in drawn), drawn
    browser.finish("offers")


# -- analyst queries -----------------------------------------------------------------------------------
def js_text(value: Any) -> str:
    """A JSON value as the page writes it in a cell (JavaScript's String / JSON.stringify)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def test_named_query_renders_a_table_and_exports_csv(browser: Session, dash):
    params = {"min_users": 20, "limit": 10}
    api = dash.client.post("/graph/queries/category_copurchase_pairs", json={"params": params}).json()
    assert api["rows"], api
    page = browser.open("/ui/")
    browser.use_key()
    page.get_by_role("link", name="Analyst queries").click()
    browser.wait_ready("queries")
    page.get_by_label("Named query").select_option("category_copurchase_pairs")
    page.get_by_label("min_users").fill("20")
    page.get_by_label("limit").fill("10")
    page.get_by_role("button", name="Run query").click()
    result = page.locator(".result")
    expect(result).to_have_attribute("data-rows", str(len(api["rows"])))
    headers = result.locator("thead th").all_inner_texts()
    assert headers == api["columns"]
    cells = result.locator("tbody tr").evaluate_all("trs => trs.map(tr => [...tr.cells].map(td => td.textContent))")
    assert cells == [[js_text(v) for v in row] for row in api["rows"]]
    with page.expect_download() as download:
        result.get_by_role("button", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    exported = list(csv.reader(io.StringIO(text)))
    assert exported[0] == api["columns"] and exported[1:] == cells
    assert page.evaluate(UNLABELLED) == []
    browser.finish("named-query")


# -- model health and /docs ------------------------------------------------------------------------------
def test_health_page_shows_model_and_graph(browser: Session, dash):
    health = dash.client.get("/health").json()
    model = dash.client.get("/model").json()
    page = browser.open("/ui/")
    browser.use_key()
    page.get_by_role("link", name="Model and graph").click()
    browser.wait_ready("health")
    expect(page.locator("#status")).to_contain_text("Everything answers")
    main = page.locator("main").inner_text()
    assert f"{health['graph']['users']:,}" in main and f"{health['graph']['products']:,}" in main
    assert model["kind"] in main and model["snapshot_id"] in main
    assert page.locator("#chart-metrics g.bar").count() == len(
        [k for k in model["metrics"]["valid"] if "@" in k])
    browser.finish("health")


def test_docs_render_offline(browser: Session):
    page = browser.open("/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("GraphRec")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 20
    assert any(u.endswith("/docs/static/swagger-ui-bundle.js") for u in browser.requests)
    browser.finish("docs")
