"""DELETE /users/{id}: a user erased from the graph, the serving index and the loaded model."""

from __future__ import annotations

import pytest

from api.main import create_app
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration


def mentions(body: dict, user_id: str) -> bool:
    paths = any(step.get("id") == user_id for item in body["items"] for e in item.get("explanations", ())
                for step in e["path"])
    named = any(f["user_id"] == user_id for item in body["items"] for f in item.get("friends", ()))
    return paths or named


def test_erased_user_disappears_everywhere(live, shop_db, shop_artifact, neo4j_settings, kit, walk):
    # u02's friends get "your friend Name02 bought this" before the erasure.
    friends = [r[0] for r in run_read(shop_db, "MATCH (:User {id: 'u02'})-[:FRIEND]-(f) RETURN f.id").rows]
    before = {f: live.client.get(f"/users/{f}/recommendations", params={"k": 10}).json() for f in friends}
    promos = {f: live.client.get(f"/users/{f}/promos/friends-bought", params={"k": 20}).json() for f in friends}
    assert any(mentions(b, "u02") for b in [*before.values(), *promos.values()])

    r = live.client.delete("/users/u02")
    assert r.status_code == 200 and r.json()["erased"]["graph"] == 1
    assert run_read(shop_db, "MATCH (u:User {id: 'u02'}) RETURN count(u)").rows == [[0]]
    assert live.client.get("/users/u02/recommendations").status_code == 404  # the model row is gone too
    for f in friends:
        body = live.client.get(f"/users/{f}/recommendations", params={"k": 10}).json()
        assert not mentions(body, "u02"), body
        for item in body["items"]:
            for exp in item["explanations"]:
                assert walk(shop_db, exp["path"]), exp
        assert not mentions(live.client.get(f"/users/{f}/promos/friends-bought", params={"k": 20}).json(), "u02")
    assert live.client.delete("/users/u02").status_code == 404  # idempotent: nothing left to erase

    # A restarted service over the same (unchanged) model never serves the erased row again.
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings), shop_artifact)) as fresh:
        assert fresh.client.get("/users/u02/recommendations").status_code == 404
