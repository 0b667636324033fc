"""What an analyst key may run, over real HTTP against a real Neo4j (issue 8, items 1 and 8):
graph reads and allow-listed procedures, decided from the plan; admin commands are a 403 and
change nothing; results are bounded in bytes; named queries withhold small groups; the CLI's
``--param`` values are strings unless typed."""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from api.main import create_app
from graphrec.cli import app as cli
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration


@contextmanager
def api(kit: Any, neo4j_settings: Any, artifact: Path, **settings: Any) -> Iterator[Any]:
    """The API with these settings; a generous query rate so one test may send many queries."""
    conf = kit.settings_for(neo4j_settings).model_copy(update={"query_burst": 1000, **settings})
    with kit.LiveServer(create_app(conf, artifact)) as server:
        yield server


@contextmanager
def running_load(driver: Any) -> Iterator[tuple[Any, str, str]]:
    """An open write transaction of another client (as a ``graphrec load`` holds), with its
    transaction and connection ids."""
    with driver.session() as session:
        tx = session.begin_transaction(metadata={"app": "loader"})
        tx.run("CREATE (:User {id: 'loading'})").consume()
        tx_id, conn = run_read(driver, "SHOW TRANSACTIONS YIELD transactionId, connectionId, metaData "
                                       "WHERE metaData.app = 'loader' RETURN transactionId, connectionId").rows[0]
        try:
            yield tx, tx_id, conn
        finally:
            if not tx.closed():
                tx.rollback()


def post(server: Any, cypher: str, params: dict | None = None) -> Any:
    return server.client.post("/graph/query", json={"query": cypher, "params": params or {}})


def test_the_probed_admin_commands_are_403_and_change_nothing(shop_db, shop_artifact, neo4j_settings, kit):
    with api(kit, neo4j_settings, shop_artifact) as server, running_load(shop_db) as (tx, tx_id, conn):
        for cypher, params, why in [
            (f"TERMINATE TRANSACTIONS '{tx_id}'", None, "TERMINATE TRANSACTIONS is an administration command"),
            ("CALL dbms.killConnections([$c])", {"c": conn}, "dbms.killConnections is not on the analysts' allow-list"),
            ("SHOW TRANSACTIONS", None, "SHOW TRANSACTIONS is an administration command"),
            ("SHOW USERS", None, "administration commands"),
            ("CALL dbms.listConfig()", None, "dbms.listConfig is not on the analysts' allow-list"),
            ("CALL db.clearQueryCaches()", None, "db.clearQueryCaches is not on the analysts' allow-list"),
        ]:
            r = post(server, cypher, params)
            body = r.json()
            assert r.status_code == 403, (cypher, r.text)
            assert why in body["detail"] and body["field"] == "query" and body["refusal"] == "forbidden", body
            assert "Traceback" not in r.text and "org.neo4j" not in r.text
        # The load was neither terminated nor disconnected: its work commits.
        tx.run("CREATE (:User {id: 'loaded'})").consume()
        tx.commit()
    assert run_read(shop_db, "MATCH (u:User) WHERE u.id IN ['loading', 'loaded'] RETURN count(u)").rows == [[2]]


def test_reads_and_allowed_procedures_work(live):
    r = live.client.post("/graph/query", json={"query": "MATCH (u:User {id: $id})-[:FRIEND]-(f) RETURN f.id AS f "
                                                        "ORDER BY f", "params": {"id": "u00"}})
    assert r.status_code == 200 and r.json()["rows"] and set(r.json()) == {"columns", "rows", "truncated"}
    labels = live.client.post("/graph/query", json={"query": "CALL db.labels() YIELD label RETURN label ORDER BY label"})
    assert labels.status_code == 200 and ["User"] in labels.json()["rows"]
    schema = live.client.post("/graph/query", json={"query": "CALL db.schema.visualization()"})
    assert schema.status_code == 200 and schema.json()["columns"] == ["nodes", "relationships"]


def test_the_allow_list_comes_from_the_settings(shop_db, shop_artifact, neo4j_settings, kit):
    with api(kit, neo4j_settings, shop_artifact, analyst_procedures=("db.ping",)) as server:
        assert post(server, "CALL db.ping()").json()["rows"] == [[True]]
        r = post(server, "CALL db.labels()")
        assert r.status_code == 403 and "GRAPHREC_ANALYST_PROCEDURES: db.ping" in r.json()["detail"]


def test_results_are_bounded_in_bytes(shop_db, shop_artifact, neo4j_settings, kit):
    pad = "y" * 500
    with api(kit, neo4j_settings, shop_artifact, analyst_max_bytes=50_000) as server:
        r = post(server, "UNWIND range(1, 10000) AS i RETURN i, $pad AS pad", {"pad": pad})
        assert r.status_code == 200 and r.json()["truncated"] and r.json()["truncated_by"] == "bytes"
        assert 40_000 < len(r.content) < 51_000 and r.json()["rows"][0] == [1, pad]
    with api(kit, neo4j_settings, shop_artifact) as server:
        rows = post(server, "UNWIND range(1, 20000) AS i RETURN i")
        assert rows.json()["truncated_by"] == "rows" and len(rows.json()["rows"]) == 10_000
        # The probe's query: 97 MB in one row. Now a clear 413, and the API is fine afterwards.
        huge = post(server, "RETURN range(1, 12000000) AS xs")
        assert huge.status_code == 413 and "first row alone is over the 16,777,216-byte" in huge.json()["detail"]
        assert huge.json()["refusal"] == "too_large" and len(huge.content) < 1000
        assert post(server, "RETURN 1 AS one").json()["rows"] == [[1]]


def test_neo4j_memory_limit_is_a_422(live):
    r = live.client.post("/graph/query", json={"query": "UNWIND range(1, 30000000) AS x RETURN collect(x) AS xs"})
    assert r.status_code == 422, r.text
    assert "more memory than one query may use" in r.json()["detail"] and r.json()["refusal"] == "over_memory"
    assert live.client.post("/graph/query", json={"query": "RETURN 1 AS one"}).status_code == 200


def test_named_queries_withhold_small_groups(shop_db, shop_artifact, neo4j_settings, kit):
    listed = {}
    runs = {}
    for k in (1, 10):
        with api(kit, neo4j_settings, shop_artifact, min_group_size=k) as server:
            listed = {q["name"]: q for q in server.client.get("/graph/queries").json()}
            runs[k] = server.client.post("/graph/queries/friends_bought_in_category",
                                         json={"params": {"category_id": "c1", "limit": 50}}).json()
    assert listed["friends_bought_in_category"]["group_size"] == ["users_reached", "friends_who_bought"]
    assert listed["recommendation_coverage_by_category"]["group_size"] == []
    everything, safe = runs[1], runs[10]
    assert everything["suppressed"] == 0 and everything["min_group_size"] == 1 and everything["rows"]
    cols = everything["columns"]
    small = [row for row in everything["rows"]
             if row[cols.index("users_reached")] < 10 or row[cols.index("friends_who_bought")] < 10]
    assert small, "the small shop has groups under 10: the test must see some withheld"
    assert safe["min_group_size"] == 10 and safe["suppressed"] == len(small)
    assert safe["rows"] == [row for row in everything["rows"] if row not in small]


def test_cli_params_are_strings_unless_typed(empty_db, neo4j_settings, kit):
    with empty_db.session() as s:
        s.run("CREATE (:User {id: '2'})-[:FRIEND]->(:User {id: '3'})").consume()
    runner = CliRunner()
    env = kit.cli_env(neo4j_settings)
    # The README's example, verbatim: id=2 is the id "2".
    result = runner.invoke(cli, ["query", "MATCH (u:User {id: $id})-[:FRIEND]-(f) RETURN f.id", "--param", "id=2",
                                 "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == [["3"]]
    typed = runner.invoke(cli, ["query", "RETURN $n + 1 AS n, $x * 2 AS x, NOT $b AS b, size($l) AS l",
                                "-p", "n:int=5", "-p", "x:float=1.5", "-p", "b:bool=false", "-p", 'l:json=["a", 1]'],
                          env=env)
    assert typed.exit_code == 0, typed.output
    assert json.loads(typed.stdout)["rows"] == [[6, 3.0, True, 2]]
    bad = runner.invoke(cli, ["query", "RETURN $n", "-p", "n:int=five"], env=env)
    assert bad.exit_code != 0 and "'five' is not a valid int" in bad.output


def test_cli_refuses_admin_commands(empty_db, neo4j_settings, kit):
    runner = CliRunner()
    env = kit.cli_env(neo4j_settings)
    for cypher, why in [("CALL dbms.listConfig()", "dbms.listConfig is not on the analysts' allow-list"),
                        ("SHOW TRANSACTIONS", "SHOW TRANSACTIONS is an administration command"),
                        ("SHOW USERS", "administration commands")]:
        result = runner.invoke(cli, ["query", cypher], env=env)
        assert result.exit_code == 2 and why in result.output and "Traceback" not in result.output, result.output
    allowed = runner.invoke(cli, ["query", "CALL db.labels()"], env=env)
    assert allowed.exit_code == 0, allowed.output


def test_cli_named_queries_type_their_params_and_withhold(shop_db, neo4j_settings, kit):
    runner = CliRunner()
    env = {**kit.cli_env(neo4j_settings), "GRAPHREC_MIN_GROUP_SIZE": "10"}
    result = runner.invoke(cli, ["queries", "run", "friends_bought_in_category", "-p", "category_id=c1",
                                 "-p", "limit=50"], env=env)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["suppressed"] > 0 and out["min_group_size"] == 10 and "withheld" in result.stderr
    loose = runner.invoke(cli, ["queries", "run", "friends_bought_in_category", "-p", "category_id=c1",
                                "-p", "limit=50"], env={**env, "GRAPHREC_MIN_GROUP_SIZE": "1"})
    assert len(json.loads(loose.stdout)["rows"]) == len(out["rows"]) + out["suppressed"]
    wrong = runner.invoke(cli, ["queries", "run", "trendsetters", "-p", "limit=ten"], env=env)
    assert wrong.exit_code == 2 and "'ten' is not a valid int" in wrong.output
    listed = runner.invoke(cli, ["queries", "list"], env=env)
    assert {q["name"]: q["group_size"] for q in json.loads(listed.stdout)}["trendsetters"] == ["followers"]
