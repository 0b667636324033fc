"""The read endpoints the dashboard uses (GET /users, /users/{id}, /names, /model) and the /ui and
/docs pages themselves, over real HTTP against the small shop in the real Neo4j."""

from __future__ import annotations

import pytest

from api.main import create_app
from graphrec.serving.auth import hash_key

pytestmark = pytest.mark.integration

KEYS = {"reader": "reader-key-0123456789", "marketer": "marketer-key-0123456789"}


@pytest.fixture
def server(shop_db, shop_artifact, neo4j_settings, kit, tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("".join(f"{role}:{role}:{hash_key(key)}\n" for role, key in KEYS.items()))
    settings = kit.settings_for(neo4j_settings, api_key=None).model_copy(update={
        "api_keys_file": keys, "events_db": tmp_path / "events.duckdb", "audit_log": tmp_path / "audit.log"})
    with kit.LiveServer(create_app(settings, shop_artifact), key=KEYS["reader"]) as live:
        yield live


def test_search_by_id_prefix_and_name(server, shop):
    users = server.client.get("/users", params={"q": "u1"}).json()["users"]
    assert [u["user_id"] for u in users] == sorted(u["id"] for u in shop.users if u["id"].startswith("u1"))
    exact = server.client.get("/users", params={"q": "u10"}).json()["users"]
    assert exact[0]["user_id"] == "u10" and exact[0]["name"] == "Name10"
    bought = sum(1 for u, _, _ in shop.bought if u == "u10")
    assert exact[0]["purchases"] == bought
    named = server.client.get("/users", params={"q": "name0"}).json()["users"]
    assert [u["user_id"] for u in named] == sorted(u["id"] for u in shop.users if u["name"] and u["name"].startswith("Name0"))
    assert server.client.get("/users", params={"q": "nobody"}).json() == {"users": []}
    assert server.client.get("/users", params={"q": "u", "limit": 3}).json()["users"].__len__() == 3
    assert server.client.get("/users", params={"q": ""}).status_code == 422


def test_profile_matches_the_graph(server, shop, shop_db):
    user = "u00"
    body = server.client.get(f"/users/{user}").json()
    with shop_db.session() as s:
        friends = {r["f"] for r in s.run("MATCH (:User {id: $u})-[:FRIEND]-(f) RETURN f.id AS f", u=user)}
        follows = {r["f"] for r in s.run("MATCH (:User {id: $u})-[:FOLLOWS]->(f) RETURN f.id AS f", u=user)}
        bought = s.run("MATCH (:User {id: $u})-[r:BOUGHT]->(p) RETURN p.id AS p, p.name AS name, r.ts AS ts "
                       "ORDER BY r.ts DESC, p.id", u=user).data()
    assert {f["user_id"] for f in body["friends"]} == friends and body["friend_count"] == len(friends)
    assert {f["user_id"] for f in body["follows"]} == follows - friends
    assert body["purchase_count"] == len(bought)
    assert [p["product_id"] for p in body["purchases"]] == [b["p"] for b in bought]  # most recent first
    assert body["purchases"][0]["ts"].startswith(bought[0]["ts"].iso_format()[:10])
    assert body["purchases"][0]["name"] == bought[0]["name"]
    limited = server.client.get(f"/users/{user}", params={"limit": 1}).json()
    assert len(limited["purchases"]) == 1 and limited["purchase_count"] == len(bought)
    missing = server.client.get("/users/ghost")
    assert missing.status_code == 404 and missing.json()["field"] == "user_id"


def test_names_of_path_nodes(server):
    body = server.client.get("/names", params={"user": ["u00", "u01", "ghost"], "product": ["p100"],
                                               "category": ["c2"]}).json()
    # u01 has no name: a label stands in for it; unknown ids are left out.
    assert body == {"users": {"u00": "Name00", "u01": "user u01"}, "products": {"p100": "Rock item 0"},
                    "categories": {"c2": "Jazz"}}


def test_model_card(server, shop_artifact):
    body = server.client.get("/model").json()
    assert body["kind"] == "svd-test" and body["snapshot_id"] == "small-shop"
    assert (body["users"], body["products"], body["categories"], body["dim"]) == (24, 40, 4, 6)
    assert body["config"] == {"dim": 6} and body["metrics"] == {}


def test_reads_need_a_reader_key(server):
    for path in ("/users?q=u", "/users/u00", "/names?user=u00", "/model"):
        assert server.anonymous.get(path).status_code == 401, path
        assert server.anonymous.get(path, headers={"X-API-Key": KEYS["marketer"]}).status_code == 403, path


def test_ui_and_docs_are_served_from_local_files(server):
    page = server.anonymous.get("/ui/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "http" not in page.text.replace('xmlns="http://www.w3.org', "")  # nothing from elsewhere
    assert server.anonymous.get("/ui", follow_redirects=False).status_code in (307, 308)
    for asset in ("app.js", "dom.js", "svg.js", "style.css", "pages/users.js"):
        assert server.anonymous.get(f"/ui/static/{asset}").status_code == 200, asset
    docs = server.anonymous.get("/docs").text
    assert "/docs/static/swagger-ui-bundle.js" in docs and "cdn" not in docs.lower()
    assert server.anonymous.get("/docs/static/swagger-ui-bundle.js").status_code == 200
    assert server.anonymous.get("/docs/static/swagger-ui.css").status_code == 200
    assert server.anonymous.get("/redoc").status_code == 404
