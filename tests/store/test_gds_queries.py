"""Graph Data Science in the embedded server, for analysts (issue 10 section 1): gds.version() through
the CLI and /graph/query, .write modes refused, and the named GDS queries run through the API and the
CLI on the small shop and on Last.fm, each leaving no in-memory graph behind, even when it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from graphrec.cli import app as cli
from graphrec.config import Settings
from graphrec.serving.analyst import GDS_GRAPH_PREFIX, drop_stale_graphs, load_queries, parse, run_named
from graphrec.store.query import AnalystPolicy, QueryRefused, Refusal, run_read

pytestmark = pytest.mark.integration

GDS_QUERIES = ("influencers", "taste_communities", "similar_products", "segment_size_by_community")
# Parameters that make each query return rows on the small shop (24 users, 40 products).
SHOP_PARAMS = {
    "influencers": {"limit": 5},
    "taste_communities": {"top_k": 3},
    "similar_products": {"min_buyers": 2},
    "segment_size_by_community": {"min_users": 1},
}


def graphs(driver) -> list[str]:
    return [row[0] for row in run_read(driver, "CALL gds.graph.list() YIELD graphName RETURN graphName").rows]


def test_gds_version_through_the_cli_and_http(live, shop_db, neo4j_settings, kit):
    out = CliRunner().invoke(cli, ["query", "CALL gds.version()", "--format", "json"], env=kit.cli_env(neo4j_settings))
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["rows"] == [["2.13.9"]]
    r = live.client.post("/graph/query", json={"query": "CALL gds.version() YIELD gdsVersion RETURN gdsVersion"})
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["2.13.9"]]


@pytest.mark.parametrize("cypher, why", [
    ("CALL gds.graph.project('g', 'User', 'FRIEND') YIELD graphName "
     "CALL gds.pageRank.write('g', {writeProperty: 'rank'}) YIELD nodePropertiesWritten RETURN 1",
     "gds.pageRank.write is not on the analysts' allow-list"),
    ("CALL gds.pageRank.write.estimate('g', {writeProperty: 'rank'}) YIELD bytesMin RETURN bytesMin",
     "gds.pageRank.write.estimate is not on the analysts' allow-list"),
    # A Cypher projection runs Cypher given as text, which the plan check never sees.
    ("CALL gds.graph.project.cypher('g', 'MATCH (n) RETURN id(n) AS id', "
     "'MATCH (a)-->(b) RETURN id(a) AS source, id(b) AS target') YIELD graphName RETURN graphName",
     "gds.graph.project.cypher is not on the analysts' allow-list"),
])
def test_gds_modes_that_write_are_refused(live, shop_db, cypher, why):
    r = live.client.post("/graph/query", json={"query": cypher})
    assert r.status_code == 403, r.text
    assert why in r.json()["detail"]
    assert graphs(shop_db) == []
    assert run_read(shop_db, "MATCH (u:User) WHERE u.rank IS NOT NULL RETURN count(u)").rows == [[0]]


def test_write_modes_stay_refused_even_when_allow_listed(shop_db):
    policy = AnalystPolicy(procedures=("gds.*",))
    with pytest.raises(QueryRefused) as err:
        from graphrec.store.query import run_analyst

        run_analyst(shop_db, "CALL gds.pageRank.write('g', {writeProperty: 'r'}) YIELD nodePropertiesWritten "
                             "RETURN nodePropertiesWritten", policy=policy)
    assert err.value.kind is Refusal.FORBIDDEN
    assert policy.allows_procedure("gds.pageRank.stream") and not policy.allows_procedure("gds.graph.export")


def test_named_gds_queries_through_the_api_leave_no_graph(live, shop_db):
    listed = {q["name"]: q for q in live.client.get("/graph/queries").json()}
    for name in GDS_QUERIES:
        assert listed[name]["description"] and listed[name]["group_size"], name
        # The graph's name is the runner's, never a parameter.
        assert "graph" not in {p["name"] for p in listed[name]["params"]}
        r = live.client.post(f"/graph/queries/{name}", json={"params": SHOP_PARAMS[name]})
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert body["rows"] or body["suppressed"], name
        assert graphs(shop_db) == [], name
    # A caller cannot pick the graph's name.
    r = live.client.post("/graph/queries/influencers", json={"params": {"graph": "mine"}})
    assert r.status_code == 422 and "no parameter 'graph'" in r.text


def test_named_gds_queries_through_the_cli(shop_db, neo4j_settings, kit):
    env = {**kit.cli_env(neo4j_settings), "GRAPHREC_MIN_GROUP_SIZE": "1"}
    for name in GDS_QUERIES:
        args = [a for k, v in SHOP_PARAMS[name].items() for a in ("-p", f"{k}={v}")]
        out = CliRunner().invoke(cli, ["queries", "run", name, *args], env=env)
        assert out.exit_code == 0, (name, out.output)
        assert json.loads(out.stdout)["rows"], name
        assert graphs(shop_db) == [], name


def test_similar_products_of_one_product(shop_db, shop):
    bought: dict[str, set[str]] = {}
    for user, product, _ in shop.bought:
        bought.setdefault(product, set()).add(user)
    product = max(bought, key=lambda p: len(bought[p]))
    query = load_queries()["similar_products"]
    result = run_named(shop_db, query, query.bind({"product_id": product, "min_buyers": 1}), policy=AnalystPolicy(),
                       min_group_size=1)
    cols, rows = result.columns, result.rows
    assert rows and all(row[cols.index("product_id")] == product for row in rows)
    for row in rows:  # the common buyers are the graph's own, and the Jaccard index theirs too
        other = bought[row[cols.index("similar_id")]]
        assert row[cols.index("common_buyers")] == len(bought[product] & other)
        assert row[cols.index("jaccard")] == pytest.approx(len(bought[product] & other) / len(bought[product] | other),
                                                           abs=1e-4)
    assert graphs(shop_db) == []


def test_a_failing_query_still_drops_its_graph(shop_db, tmp_path: Path):
    (tmp_path / "broken.cypher").write_text(
        "// name: broken\n// description: projects, then fails inside GDS\n// group_size: none - test\n"
        "// gds_graph: graph\n"
        "MATCH (a:User)-[:FRIEND]-(b:User) WITH gds.graph.project($graph, a, b) AS g\n"
        "CALL gds.pageRank.stream($graph, {dampingFactor: 5.0}) YIELD nodeId RETURN nodeId\n")
    query = parse(tmp_path / "broken.cypher")
    with pytest.raises(QueryRefused) as err:
        run_named(shop_db, query, {}, policy=AnalystPolicy(), min_group_size=1)
    assert "dampingFactor" in err.value.reason
    assert graphs(shop_db) == []


def test_stale_graphs_of_interrupted_runs_are_swept(shop_db):
    run_read(shop_db, "CALL gds.graph.project($a, 'User', 'FRIEND') YIELD graphName "
                      "CALL gds.graph.project($b, 'User', 'FRIEND') YIELD graphName AS other RETURN other",
             {"a": f"{GDS_GRAPH_PREFIX}left_over", "b": "someone_elses"})
    try:
        assert drop_stale_graphs(shop_db, "neo4j", older_than_s=0) == [f"{GDS_GRAPH_PREFIX}left_over"]
        assert graphs(shop_db) == ["someone_elses"]  # only the named queries' own graphs are swept
    finally:
        run_read(shop_db, "CALL gds.graph.drop('someone_elses', false) YIELD graphName RETURN graphName")


def test_named_gds_queries_on_lastfm(lastfm_driver, lastfm_settings: Settings):
    """Default parameters on the real graph: rows, groups at least k, no graph left behind."""
    queries = load_queries()
    k = lastfm_settings.min_group_size
    for name in GDS_QUERIES:
        result = run_named(lastfm_driver, queries[name], queries[name].bind({}), policy=AnalystPolicy(),
                           min_group_size=k, timeout=120)
        assert result.rows, name
        for column in queries[name].group_size:
            assert all(row[result.columns.index(column)] >= k for row in result.rows), (name, column)
        assert graphs(lastfm_driver) == [], name
