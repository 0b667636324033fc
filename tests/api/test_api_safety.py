"""Analyst access and safety: API key, read-only queries, named queries, 503s, limits, OpenAPI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from api.main import create_app
from graphrec.cli import app as cli
from graphrec.config import Settings
from graphrec.neo4j.server import free_port
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration

KEY = {"X-API-Key": "test-analyst-key-0123456789"}  # conftest.API_KEY


def node_count(driver) -> int:
    return run_read(driver, "MATCH (n) RETURN count(n)").rows[0][0]


def test_query_needs_the_key(live):
    q = {"query": "MATCH (u:User) RETURN count(u) AS n"}
    assert live.anonymous.post("/graph/query", json=q).status_code == 401
    assert live.anonymous.post("/graph/query", json=q, headers={"X-API-Key": "wrong"}).status_code == 401
    r = live.client.post("/graph/query", json=q, headers=KEY)
    assert r.status_code == 200 and r.json() == {"columns": ["n"], "rows": [[24]], "truncated": False}


def test_no_configured_key_disables_the_endpoint(shop_db, shop_artifact, neo4j_settings, kit):
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings, api_key=None), shop_artifact)) as server:
        r = server.client.post("/graph/query", json={"query": "RETURN 1"}, headers=KEY)
        assert r.status_code == 403 and "no keys configured" in r.json()["detail"]


@pytest.mark.parametrize("cypher", [
    "CREATE (:User {id: 'evil'})",
    "MATCH (n) DETACH DELETE n",
    "MATCH (p:Product) SET p.price = 0",
    "CALL { MATCH (n:User) SET n.name = 'x' } RETURN 1",
])
def test_writes_are_refused_and_change_nothing(live, shop_db, cypher):
    before = node_count(shop_db)
    r = live.client.post("/graph/query", json={"query": cypher}, headers=KEY)
    assert r.status_code == 403 and "read-only" in r.json()["detail"]
    assert node_count(shop_db) == before
    assert run_read(shop_db, "MATCH (p:Product) WHERE p.price = 0 RETURN count(p)").rows == [[0]]
    assert run_read(shop_db, "MATCH (n:User {name: 'x'}) RETURN count(n)").rows == [[0]]


def test_errors_do_not_leak_internals(live):
    r = live.client.post("/graph/query", json={"query": "MATC (n) RETURN n"}, headers=KEY)
    assert r.status_code == 400 and "Traceback" not in r.text and "org.neo4j" not in r.text
    r = live.client.post("/graph/query", content=b"{not json", headers={**KEY, "content-type": "application/json"})
    assert r.status_code == 422 and "Traceback" not in r.text


def test_named_queries_listed_and_run(live):
    listed = live.client.get("/graph/queries", headers=KEY).json()
    names = {q["name"] for q in listed}
    assert {"friends_bought_in_category", "trendsetters", "category_copurchase_pairs", "user_neighbourhood",
            "recommendation_coverage_by_category"} <= names
    for q in listed:
        assert q["description"] and all(p["description"] for p in q["params"]), q
    r = live.client.post("/graph/queries/user_neighbourhood", json={"params": {"user_id": "u00"}}, headers=KEY)
    assert r.status_code == 200, r.text
    rows = [dict(zip(r.json()["columns"], row)) for row in r.json()["rows"]]
    assert any(row["hops"] == 1 and row["via"] == "BOUGHT" and row["nodes"] == 5 for row in rows)
    r = live.client.post("/graph/queries/friends_bought_in_category", json={"params": {"category_id": "c1", "limit": 3}}, headers=KEY)
    # The small shop's groups are under the minimum group size (10): rows are withheld, and counted.
    assert r.status_code == 200 and len(r.json()["rows"]) <= 3 and 0 < len(r.json()["rows"]) + r.json()["suppressed"]
    missing = live.client.post("/graph/queries/user_neighbourhood", json={"params": {}}, headers=KEY)
    assert missing.status_code == 422 and missing.json()["field"] == "params.user_id"
    wrong = live.client.post("/graph/queries/trendsetters", json={"params": {"limit": "ten"}}, headers=KEY)
    assert wrong.status_code == 422 and wrong.json()["field"] == "params.limit"
    assert live.client.post("/graph/queries/nope", headers=KEY).status_code == 404


def test_body_size_limit(live):
    huge = {"user_id": "big", "friends": ["u01"] * 100_000}
    r = live.client.post("/users", json=huge)
    assert r.status_code == 413
    r = live.client.post("/users", json={"user_id": "big", "friends": ["u01"] * 501})
    assert r.status_code == 422 and r.json()["field"] == "friends"


def test_openapi_is_complete(live):
    spec = live.client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/users/{user_id}/recommendations", "/users/{user_id}/promos/friends-bought",
                 "/users", "/interactions", "/social", "/products", "/graph/query", "/graph/queries",
                 "/graph/queries/{name}"):
        assert path in paths, path
    rec = paths["/users/{user_id}/recommendations"]["get"]
    assert rec["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("RecommendationsOut")
    assert {"PathNode", "PathRel", "ExplanationOut", "NewUser", "PromosOut"} <= set(spec["components"]["schemas"])


def test_neo4j_down_gives_503_while_model_recommendations_work(shop_artifact, tmp_path, kit):
    # A server that is not there: nothing listens on this port.
    down = Settings(neo4j_uri=f"bolt://127.0.0.1:{free_port()}", neo4j_password="x", home=tmp_path,
                    api_key=kit.API_KEY)
    with kit.LiveServer(create_app(down, shop_artifact)) as server:
        r = server.client.get("/users/u01/recommendations", params={"k": 5})
        assert r.status_code == 200 and len(r.json()["items"]) == 5 and r.json()["warnings"]
        health = server.client.get("/health").json()
        assert health["status"] == "degraded" and not health["neo4j_reachable"]
        for method, path, body in [("POST", "/users", {"user_id": "x"}),
                                   ("POST", "/interactions", {"user_id": "u01", "product_id": "p101"}),
                                   ("GET", "/users/u01/promos/friends-bought", None),
                                   ("POST", "/graph/query", {"query": "RETURN 1"})]:
            r = server.client.request(method, path, json=body, headers=KEY)
            assert r.status_code == 503, (path, r.text)
            assert "unavailable" in r.json()["detail"] and "Traceback" not in r.text


def test_publish_leaves_k_recommended_edges_per_user(shop_db, shop_artifact, neo4j_settings, tmp_path, kit):
    runner = CliRunner()
    for k in (5, 3):  # a second run replaces the first
        result = runner.invoke(cli, ["publish", "--model", str(shop_artifact), "--k", str(k)],
                               env=kit.cli_env(neo4j_settings))
        assert result.exit_code == 0, result.output
        per_user = run_read(shop_db, "MATCH (u:User) OPTIONAL MATCH (u)-[r:RECOMMENDED]->(p) "
                                     "RETURN u.id, count(r), count(DISTINCT p), collect(r.rank)").rows
        assert len(per_user) == 24 and all(c == k and d == k and sorted(ranks) == list(range(1, k + 1))
                                           for _, c, d, ranks in per_user), per_user
        assert run_read(shop_db, "MATCH (u:User)-[:RECOMMENDED]->(p)<-[:BOUGHT]-(u) RETURN count(*)").rows == [[0]]
    out = tmp_path / "promos.csv"
    result = runner.invoke(cli, ["promos", "friends-bought", "--model", str(shop_artifact), "--out", str(out)],
                           env=kit.cli_env(neo4j_settings))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["rows"] > 0 and out.read_text().startswith("user_id,rank,product_id")
