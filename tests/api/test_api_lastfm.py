"""Done-when, on the real Last.fm graph and a model trained on it through the real pipeline."""

from __future__ import annotations

import random

import pytest
from typer.testing import CliRunner

from graphrec.cli import app as cli
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-analyst-key-0123456789"}  # tests/api/conftest.py API_KEY
PREFIX = "serving-test-"  # conftest.LASTFM_TEST_PREFIX: removed after this module


def sample_users(driver, n: int, seed: int = 11) -> list[str]:
    ids = sorted(r[0] for r in run_read(driver, "MATCH (u:User) RETURN u.id").rows)
    return random.Random(seed).sample(ids, n)


def test_every_explanation_path_exists_in_neo4j(lastfm_live, lastfm_driver, walk):
    items = explained = paths = 0
    for user in sample_users(lastfm_driver, 30):
        r = lastfm_live.client.get(f"/users/{user}/recommendations", params={"k": 10, "explain": "true"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["items"]) == 10
        bought = {row[0] for row in run_read(lastfm_driver, "MATCH (:User {id: $u})-[:BOUGHT]->(p) RETURN p.id",
                                             {"u": user}).rows}
        assert not bought & {i["product_id"] for i in body["items"]}
        for item in body["items"]:
            items += 1
            assert len(item["explanations"]) <= 3
            explained += bool(item["explanations"])
            for exp in item["explanations"]:
                paths += 1
                assert walk(lastfm_driver, exp["path"]), (user, item["product_id"], exp)
                ids = {step.get("id") for step in exp["path"]}
                assert item["product_id"] in ids and exp["text"]
    # A handful of products have no short path to a user (one buyer, no category); all else do.
    assert explained >= 0.98 * items and paths >= items, (explained, items, paths)


def test_new_user_with_three_friends_gets_a_personal_list(lastfm_live, lastfm_driver):
    # Three friends of one real user: a real social circle.
    hub = run_read(lastfm_driver, "MATCH (u:User)-[:FRIEND]-(f) WITH u, collect(f.id) AS fs WHERE size(fs) >= 3 "
                                  "RETURN u.id, fs ORDER BY u.id LIMIT 1").rows[0]
    friends = sorted(hub[1])[:3]
    user = f"{PREFIX}newcomer"
    r = lastfm_live.client.post("/users", json={"user_id": user, "name": "Newcomer", "friends": friends})
    assert r.status_code == 201, r.text
    recs = lastfm_live.client.get(f"/users/{user}/recommendations", params={"k": 10}).json()
    assert recs["source"] == "fold_in" and len(recs["items"]) == 10
    got = [i["product_id"] for i in recs["items"]]
    popular = [i["product_id"] for i in lastfm_live.client.get("/products/popular", params={"k": 10}).json()["items"]]
    assert got != popular and len(set(got) - set(popular)) >= 3
    friends_bought = {row[0] for row in run_read(
        lastfm_driver, "MATCH (u:User)-[:BOUGHT]->(p) WHERE u.id IN $f RETURN DISTINCT p.id", {"f": friends}).rows}
    assert len(set(got) & friends_bought) >= 3, (got, len(friends_bought))
    # A purchase moves the next list: the product is excluded and the list changes.
    r = lastfm_live.client.post("/interactions", json={"user_id": user, "product_id": got[0]})
    assert r.status_code == 201
    after = [i["product_id"] for i in lastfm_live.client.get(f"/users/{user}/recommendations").json()["items"]]
    assert got[0] not in after and after != got


def test_friends_bought_names_only_real_friends_who_bought(lastfm_live, lastfm_driver):
    checked = 0
    for user in sample_users(lastfm_driver, 15, seed=5):
        body = lastfm_live.client.get(f"/users/{user}/promos/friends-bought", params={"k": 10}).json()
        for item in body["items"]:
            named = [f["user_id"] for f in item["friends"]]
            assert named and item["friend_count"] >= len(named)
            rows = run_read(lastfm_driver,
                            "MATCH (u:User {id: $u}), (p:Product {id: $p}) "
                            "UNWIND $friends AS fid MATCH (f:User {id: fid}) "
                            "RETURN fid, (EXISTS { (u)-[:FRIEND]-(f) } OR EXISTS { (u)-[:FOLLOWS]->(f) }) AS friend, "
                            "EXISTS { (f)-[:BOUGHT]->(p) } AS bought, EXISTS { (u)-[:BOUGHT]->(p) } AS mine",
                            {"u": user, "p": item["product_id"], "friends": named}).rows
            assert len(rows) == len(named) and all(friend and bought and not mine for _, friend, bought, mine in rows), rows
            checked += len(rows)
    assert checked > 50


def test_write_through_graph_query_is_refused_and_changes_nothing(lastfm_live, lastfm_driver):
    count = "MATCH (n) RETURN count(n) AS nodes, COUNT { ()-[]->() } AS rels"
    before = run_read(lastfm_driver, count).rows
    for cypher in ("MATCH (u:User) DETACH DELETE u", "MATCH (p:Product) SET p.name = 'x'",
                   "CREATE (:User {id: 'intruder'})"):
        r = lastfm_live.client.post("/graph/query", json={"query": cypher}, headers=KEY)
        assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert run_read(lastfm_driver, count).rows == before
    assert run_read(lastfm_driver, "MATCH (p:Product {name: 'x'}) RETURN count(p)").rows == [[0]]


def test_publish_then_analyst_queries(lastfm_live, lastfm_driver, lastfm_settings, lastfm_model, kit):
    env = kit.cli_env(lastfm_settings)
    k = 5
    result = CliRunner().invoke(cli, ["publish", "--model", str(lastfm_model), "--k", str(k)], env=env)
    assert result.exit_code == 0, result.output
    users, wrong = run_read(lastfm_driver, "MATCH (u:User) WHERE NOT u.id STARTS WITH $prefix "
                                           "OPTIONAL MATCH (u)-[r:RECOMMENDED]->() WITH u, count(r) AS n "
                                           "RETURN count(u), sum(CASE WHEN n = $k THEN 0 ELSE 1 END)",
                            {"k": k, "prefix": PREFIX}).rows[0]
    assert users == 1892 and wrong == 0
    # The named queries analysts need, on the real graph (recommendation coverage needs the edges).
    args = {
        "friends_bought_in_category": {"category_id": run_read(
            lastfm_driver, "MATCH (c:Category)<-[:IN_CATEGORY]-() RETURN c.id, count(*) AS n ORDER BY n DESC LIMIT 1").rows[0][0]},
        "trendsetters": {"limit": 10},
        "category_copurchase_pairs": {"min_users": 20, "limit": 10},
        "user_neighbourhood": {"user_id": sample_users(lastfm_driver, 1)[0]},
        "recommendation_coverage_by_category": {"limit": 10},
    }
    listed = {q["name"] for q in lastfm_live.client.get("/graph/queries", headers=KEY).json()}
    assert set(args) <= listed
    for name, params in args.items():
        r = lastfm_live.client.post(f"/graph/queries/{name}", json={"params": params}, headers=KEY)
        assert r.status_code == 200, (name, r.text)
        assert r.json()["rows"], name
    cov = lastfm_live.client.post("/graph/queries/recommendation_coverage_by_category",
                                  json={"params": {"limit": 5}}, headers=KEY).json()
    slots = cov["columns"].index("slots")
    assert all(row[slots] > 0 for row in cov["rows"])
