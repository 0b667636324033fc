"""Cold start without retraining: new users, interactions, friendships, products (small shop)."""

from __future__ import annotations

import time

import pytest

from api.main import create_app
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration


def ids(body) -> list[str]:
    return [i["product_id"] for i in body["items"]]


def friends_purchases(driver, friends: list[str]) -> set[str]:
    rows = run_read(driver, "MATCH (u:User)-[:BOUGHT]->(p) WHERE u.id IN $f RETURN DISTINCT p.id", {"f": friends}).rows
    return {r[0] for r in rows}


def test_new_user_is_recommendable_at_once_from_friends(live, shop_db, walk):
    friends = ["u02", "u06", "u10"]  # all favour Folk (c3)
    r = live.client.post("/users", json={"user_id": "new1", "name": "Newcomer", "friends": friends,
                                         "categories": ["c3"]})
    assert r.status_code == 201, r.text
    # Written to Neo4j: the node and one FRIEND edge per friend.
    assert run_read(shop_db, "MATCH (:User {id: 'new1'})-[:FRIEND]-(f) RETURN count(f)").rows == [[3]]
    body = live.client.get("/users/new1/recommendations", params={"k": 5}).json()
    assert body["source"] == "fold_in"
    popular = ids(live.client.get("/products/popular", params={"k": 5}).json())
    assert ids(body) != popular
    assert set(ids(body)) & friends_purchases(shop_db, friends)
    named = [e for item in body["items"] for e in item["explanations"] if e["kind"] == "friend_bought"]
    assert named, body
    for item in body["items"]:
        for exp in item["explanations"]:
            assert walk(shop_db, exp["path"]), exp


def test_new_user_errors(live):
    r = live.client.post("/users", json={"user_id": "new2", "friends": ["u01", "ghost"]})
    assert r.status_code == 404 and r.json()["field"] == "friends" and "ghost" in r.json()["detail"]
    r = live.client.post("/users", json={"user_id": "u01"})
    assert r.status_code == 409
    r = live.client.post("/users", json={"user_id": "new3", "interactions": [{"product_id": "p101", "kind": "steal"}]})
    assert r.status_code == 422 and r.json()["field"] == "interactions[0].kind"
    r = live.client.post("/users", json={"user_id": "new4", "unexpected": 1})
    assert r.status_code == 422 and r.json()["field"] == "unexpected"
    # Nothing of the failed requests reached the graph or the service.
    assert live.client.get("/users/new2/recommendations").status_code == 404


def test_interaction_changes_next_recommendation(live, shop_db):
    before = live.client.get("/users/u03/recommendations", params={"k": 5}).json()
    top = ids(before)[0]
    r = live.client.post("/interactions", json={"user_id": "u03", "product_id": top, "ts": "2024-05-01T10:00:00Z"})
    assert r.status_code == 201, r.text
    after = live.client.get("/users/u03/recommendations", params={"k": 5}).json()
    assert top not in ids(after) and ids(after) != ids(before)
    assert run_read(shop_db, "MATCH (:User {id: 'u03'})-[r:BOUGHT]->(:Product {id: $p}) RETURN r.split",
                    {"p": top}).rows == [["train"]]
    assert live.client.post("/interactions", json={"user_id": "u03", "product_id": "nope"}).json()["field"] == "product_id"


def test_new_friendship_shows_in_promos_and_explanations(live, shop_db, walk):
    # u01 (Jazz) befriends u08 (Rock): u08's purchases become u01's friends-bought promotions.
    before = live.client.get("/users/u01/promos/friends-bought", params={"k": 50}).json()
    r = live.client.post("/social", json={"user_id": "u01", "other_user_id": "u08", "kind": "friend"})
    assert r.status_code == 201, r.text
    after = live.client.get("/users/u01/promos/friends-bought", params={"k": 50}).json()
    newly = {i["product_id"] for i in after["items"]} - {i["product_id"] for i in before["items"]}
    u08_only = friends_purchases(shop_db, ["u08"]) - friends_purchases(shop_db, ["u01"])
    assert newly and newly <= u08_only
    assert any(f["user_id"] == "u08" for i in after["items"] for f in i["friends"])
    recs = live.client.get("/users/u01/recommendations", params={"k": 40}).json()
    via_u08 = [e for i in recs["items"] for e in i["explanations"]
               if e["kind"] == "friend_bought" and e["path"][2]["id"] == "u08"]
    assert via_u08 and all(walk(shop_db, e["path"]) for e in via_u08)
    assert live.client.post("/social", json={"user_id": "u01", "other_user_id": "u01"}).status_code == 422


def test_new_product_is_recommendable_from_its_category(live, shop_db):
    r = live.client.post("/products", json={"product_id": "pnew", "name": "Fresh Folk", "category_id": "c3",
                                            "price": 9.5})
    assert r.status_code == 201, r.text
    recs = live.client.get("/users/u02/recommendations", params={"k": 10, "category": "c3"}).json()
    assert "pnew" in ids(recs)
    item = next(i for i in recs["items"] if i["product_id"] == "pnew")
    assert item["name"] == "Fresh Folk" and item["explanations"]
    assert live.client.post("/products", json={"product_id": "pnew2", "name": "x", "category_id": "c9"}).json()["field"] == "category_id"
    assert live.client.post("/products", json={"product_id": "pnew", "name": "x", "category_id": "c3"}).status_code == 409


def test_friends_bought_names_only_real_friends_who_bought(live, shop_db):
    for user in ("u00", "u04", "u07"):
        body = live.client.get(f"/users/{user}/promos/friends-bought", params={"k": 10}).json()
        assert body["items"], user
        counts = [i["friend_count"] for i in body["items"]]
        assert counts == sorted(counts, reverse=True)
        mine = {r[0] for r in run_read(shop_db, "MATCH (:User {id: $u})-[:BOUGHT]->(p) RETURN p.id", {"u": user}).rows}
        for item in body["items"]:
            assert item["product_id"] not in mine
            for friend in item["friends"]:
                rows = run_read(shop_db, "MATCH (u:User {id: $u})-[:FRIEND|FOLLOWS]-(f:User {id: $f}) "
                                         "WHERE (u)-[:FRIEND]-(f) OR (u)-[:FOLLOWS]->(f) "
                                         "MATCH (f)-[:BOUGHT]->(:Product {id: $p}) RETURN count(*)",
                                {"u": user, "f": friend["user_id"], "p": item["product_id"]}).rows
                assert rows[0][0] > 0, (user, friend, item)
    since = live.client.get("/users/u00/promos/friends-bought", params={"since": "2024-03-20"}).json()
    assert all(i["last_bought"] >= "2024-03-20" for i in since["items"])
    assert live.client.get("/users/ghost/promos/friends-bought").status_code == 404


def test_refresh_picks_up_writes_behind_the_service(shop_db, shop_artifact, neo4j_settings, kit):
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings), shop_artifact, refresh_s=0.5)) as server:
        assert server.client.post("/users", json={"user_id": "via-api", "friends": ["u01"]}).status_code == 201
        with shop_db.session() as s:  # a load that the service does not see: straight into Neo4j
            s.run("CREATE (n:User {id: 'behind'}) WITH n MATCH (f:User {id: 'u02'}) CREATE (n)-[:FRIEND]->(f)").consume()
        assert server.client.get("/users/behind/recommendations").status_code == 404
        deadline = time.monotonic() + 20
        while server.client.get("/users/behind/recommendations").status_code != 200:
            assert time.monotonic() < deadline, "the refresh never picked the new user up"
            time.sleep(0.2)
        body = server.client.get("/users/behind/recommendations", params={"k": 5}).json()
        assert body["source"] == "fold_in" and body["items"]
        # What the service wrote itself survives every refresh.
        assert server.client.get("/users/via-api/recommendations").status_code == 200


def _server_timing(response) -> dict[str, float]:
    parts = [p.strip().split(";dur=") for p in response.headers["server-timing"].split(",")]
    return {name: float(ms) for name, ms in parts}


def test_server_timing_names_the_parts_of_a_read_and_of_a_write(live):
    """A slow request is explained by its header: ranking and explanations for a read; Neo4j, the
    writers' lock and the in-memory update for a write. Parts are within the whole."""
    read = live.client.get("/users/u04/recommendations", params={"k": 5, "explain": "true"})
    parts = _server_timing(read)
    assert {"app", "rank", "explain"} <= set(parts) and "mirror" not in parts, parts
    assert parts["rank"] + parts["explain"] <= parts["app"]
    write = live.client.post("/interactions", json={"user_id": "u04", "product_id": ids(read.json())[0]})
    assert write.status_code == 201, write.text
    parts = _server_timing(write)
    assert set(parts) == {"app", "db", "lock", "mirror"}, parts
    assert parts["db"] > 0 and parts["db"] + parts["lock"] + parts["mirror"] <= parts["app"]
