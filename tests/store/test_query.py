"""Read-only queries against the real server: writes are refused and change nothing; analysts run
graph reads and allow-listed procedures only, decided from the plan, with bounded results."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

import neo4j
import pytest

from graphrec.config import Settings
from graphrec.store.query import (AnalystPolicy, QueryRefused, QueryResult, Refusal, json_size, procedure_name,
                                  run_analyst, run_read)

pytestmark = pytest.mark.integration


def node_count(driver) -> int:
    return run_read(driver, "MATCH (n) RETURN count(n) AS c").rows[0][0]


def test_reads_return_columns_and_json_values(empty_db):
    with empty_db.session() as s:
        s.run("CREATE (:User {id: 'u1', name: 'Alice'})-[:FRIEND]->(:User {id: 'u2'})").consume()
    result = run_read(empty_db, "MATCH (a:User {id: $id})-[r:FRIEND]->(b) RETURN a, r, b.id AS other, date('2024-01-02') AS d",
                      {"id": "u1"})
    assert result.columns == ["a", "r", "other", "d"]
    a, r, other, d = result.rows[0]
    assert a["labels"] == ["User"] and a["properties"] == {"id": "u1", "name": "Alice"}
    assert r["type"] == "FRIEND" and other == "u2" and d == "2024-01-02"


@pytest.mark.parametrize("cypher", [
    "CREATE (:User {id: 'evil'})",
    "MATCH (n) DETACH DELETE n",
    "MATCH (n:User) SET n.name = 'x'",
    "MERGE (:Product {id: 'p-evil'})",
    "CREATE INDEX evil IF NOT EXISTS FOR (n:User) ON (n.name)",
])
def test_writes_are_refused_and_change_nothing(empty_db, cypher):
    with empty_db.session() as s:
        s.run("CREATE (:User {id: 'u1', name: 'Alice'})").consume()
    with pytest.raises(QueryRefused, match="read-only"):
        run_read(empty_db, cypher)
    assert node_count(empty_db) == 1
    assert run_read(empty_db, "MATCH (n:User {id: 'u1'}) RETURN n.name").rows == [["Alice"]]
    assert run_read(empty_db, "SHOW INDEXES YIELD name WHERE name = 'evil' RETURN name").rows == []


def test_row_limit_truncates(empty_db):
    result = run_read(empty_db, "UNWIND range(1, 50) AS x RETURN x", limit=10)
    assert [row[0] for row in result.rows] == list(range(1, 11)) and result.truncated


def test_timeout_stops_long_queries(empty_db):
    with pytest.raises(QueryRefused, match="time limit"):
        run_read(empty_db, "UNWIND range(1, 100000000) AS x WITH x WHERE x % 7 = 123 RETURN count(x)", timeout=0.2)


def test_syntax_errors_are_reported_without_internals(empty_db):
    with pytest.raises(QueryRefused) as err:
        run_read(empty_db, "MATC (n) RETURN n")
    assert err.value.reason.startswith("Cypher syntax error") and "Traceback" not in err.value.reason


# -- analysts: decided from the query's plan ------------------------------------------------------

POLICY = AnalystPolicy()


def analyst(driver, cypher: str, params: dict | None = None, policy: AnalystPolicy = POLICY, **kw) -> QueryResult:
    return run_analyst(driver, cypher, params, policy=policy, **kw)


@contextmanager
def other_client_transaction(driver, node_id: str = "in-flight") -> Iterator[tuple[neo4j.Transaction, str]]:
    """An open write transaction of another client (a running load, say) and its id as SHOW
    TRANSACTIONS gives it."""
    with driver.session() as session:
        tx = session.begin_transaction(metadata={"app": "other-client"})
        tx.run("CREATE (:User {id: $id})", id=node_id).consume()
        rows = run_read(driver, "SHOW TRANSACTIONS YIELD transactionId, metaData "
                                "WHERE metaData.app = 'other-client' RETURN transactionId").rows
        assert len(rows) == 1
        try:
            yield tx, rows[0][0]
        finally:
            if not tx.closed():
                tx.rollback()


# Every command the probe ran as an analyst, and neighbours of the same kind.
ADMIN_COMMANDS = [
    ("SHOW TRANSACTIONS", "SHOW TRANSACTIONS is an administration command"),
    ("SHOW USERS", "administration commands"),
    ("CALL dbms.listConfig()", "procedure dbms.listConfig is not on the analysts' allow-list"),
    ("CALL db.clearQueryCaches()", "procedure db.clearQueryCaches is not on the analysts' allow-list"),
    ("SHOW SETTINGS", "SHOW SETTINGS is an administration command"),
    ("SHOW DATABASES", "administration commands"),
    ("CREATE USER mallory SET PASSWORD 'long-enough-pw'", "administration commands"),
    ("CALL dbms.components()", "procedure dbms.components is not on"),
    # A refused procedure hidden in a subquery, and one called with backticks.
    ("MATCH (n) CALL (n) { CALL db.clearQueryCaches() YIELD value RETURN value } RETURN count(*)",
     "procedure db.clearQueryCaches"),
    ("CALL `dbms`.`listConfig`() YIELD name RETURN name", "procedure dbms.listConfig"),
    ("SHOW TRANSACTIONS YIELD transactionId AS t TERMINATE TRANSACTIONS t YIELD message RETURN message",
     "TERMINATE TRANSACTIONS is an administration command"),
    ("MATCH (n) RETURN n UNION CALL db.clearQueryCaches() YIELD value RETURN value AS n", "db.clearQueryCaches"),
    ("LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS line RETURN line", "LOAD CSV reads files and URLs"),
    ("CREATE INDEX evil IF NOT EXISTS FOR (n:User) ON (n.name)", "read-only"),
]


@pytest.mark.parametrize("cypher, why", ADMIN_COMMANDS)
def test_analysts_cannot_run_admin_commands(empty_db, cypher, why):
    with pytest.raises(QueryRefused) as err:
        analyst(empty_db, cypher)
    assert err.value.kind is Refusal.FORBIDDEN and why in err.value.reason, err.value.reason
    assert run_read(empty_db, "SHOW USERS YIELD user WHERE user = 'mallory' RETURN user").rows == []
    assert run_read(empty_db, "SHOW INDEXES YIELD name WHERE name = 'evil' RETURN name").rows == []


def test_analysts_cannot_terminate_another_clients_transaction(empty_db):
    with other_client_transaction(empty_db) as (tx, tx_id):
        with pytest.raises(QueryRefused, match="TERMINATE TRANSACTIONS is an administration command") as err:
            analyst(empty_db, f"TERMINATE TRANSACTIONS '{tx_id}'")
        assert err.value.kind is Refusal.FORBIDDEN
        with pytest.raises(QueryRefused, match="TERMINATE TRANSACTIONS"):
            analyst(empty_db, "TERMINATE TRANSACTIONS $id", {"id": tx_id})
        tx.run("CREATE (:User {id: 'still-running'})").consume()
        tx.commit()  # it was not terminated: its work lands
    assert run_read(empty_db, "MATCH (u:User) RETURN u.id ORDER BY u.id").rows == [["in-flight"], ["still-running"]]
    # The same command as trusted code would run it: proof the refusal above is what saved it.
    with other_client_transaction(empty_db, "second") as (tx, tx_id):
        run_read(empty_db, f"TERMINATE TRANSACTIONS '{tx_id}'")
        with pytest.raises(neo4j.exceptions.Neo4jError):
            tx.run("RETURN 1").consume()


def test_analysts_cannot_kill_connections(empty_db):
    with other_client_transaction(empty_db) as (tx, _):
        connection = run_read(empty_db, "SHOW TRANSACTIONS YIELD connectionId, metaData "
                                        "WHERE metaData.app = 'other-client' RETURN connectionId").rows[0][0]
        with pytest.raises(QueryRefused, match="procedure dbms.killConnections is not on") as err:
            analyst(empty_db, "CALL dbms.killConnections([$c])", {"c": connection})
        assert err.value.kind is Refusal.FORBIDDEN
        tx.commit()
    assert run_read(empty_db, "MATCH (u:User) RETURN count(u)").rows == [[1]]


def test_reads_and_allowed_procedures_still_work(empty_db):
    with empty_db.session() as s:
        s.run("CREATE (:User {id: '2', name: 'Bo'})-[:FRIEND]->(:User {id: '3'})").consume()
    assert analyst(empty_db, "MATCH (u:User {id: $id})-[:FRIEND]-(f) RETURN f.id", {"id": "2"}).rows == [["3"]]
    assert ["User"] in analyst(empty_db, "CALL db.labels() YIELD label RETURN label").rows
    assert analyst(empty_db, "CALL db.relationshipTypes() YIELD relationshipType AS t WHERE t = 'FRIEND' "
                             "RETURN t").rows == [["FRIEND"]]
    assert analyst(empty_db, "CALL db.schema.visualization()").columns == ["nodes", "relationships"]
    # Schema listings are reads of the schema, not of the server.
    assert analyst(empty_db, "SHOW CONSTRAINTS YIELD name RETURN count(*) > 0 AS any").rows == [[True]]
    # A plain read that mentions a forbidden name as data is a plain read (no string matching).
    assert analyst(empty_db, "RETURN 'CALL dbms.killConnections([])' AS text").rows == [["CALL dbms.killConnections([])"]]


def test_the_procedure_allow_list_is_configuration(empty_db):
    with pytest.raises(QueryRefused, match="db.ping is not on"):
        analyst(empty_db, "CALL db.ping()")
    settings = Settings(analyst_procedures="db.ping, db.schema.*")
    policy = AnalystPolicy.from_settings(settings)
    assert policy.procedures == ("db.ping", "db.schema.*")
    assert analyst(empty_db, "CALL db.ping()", policy=policy).rows == [[True]]
    assert analyst(empty_db, "CALL db.schema.nodeTypeProperties()", policy=policy).columns
    with pytest.raises(QueryRefused, match="db.labels is not on"):
        analyst(empty_db, "CALL db.labels()", policy=policy)
    # Even an allow-listed procedure must be a read: dbms.* procedures of query type 's' are refused.
    wide = AnalystPolicy(procedures=("*",))
    with pytest.raises(QueryRefused, match="read-only") as err:
        analyst(empty_db, "CALL db.clearQueryCaches()", policy=wide)
    assert err.value.kind is Refusal.FORBIDDEN
    assert AnalystPolicy().allows_procedure("gds.pageRank.stream")
    assert not AnalystPolicy().allows_procedure("gds.pageRank.write")


def test_analyst_writes_are_refused_before_they_run(empty_db):
    for cypher in ("CREATE (:User {id: 'evil'})", "MERGE (p:Product {id: 'p'}) RETURN p",
                   "MATCH (n) DETACH DELETE n", "CALL () { CREATE (:User {id: 'sub'}) } RETURN 1"):
        with pytest.raises(QueryRefused, match="read-only") as err:
            analyst(empty_db, cypher)
        assert err.value.kind is Refusal.FORBIDDEN
    assert node_count(empty_db) == 0


def test_profile_cannot_hide_a_query_from_the_plan_check(empty_db):
    with pytest.raises(QueryRefused, match="PROFILE"):
        analyst(empty_db, "PROFILE CALL dbms.listConfig()")
    # EXPLAIN of a refused call is refused too (its plan is the call's plan).
    with pytest.raises(QueryRefused, match="db.clearQueryCaches"):
        analyst(empty_db, "EXPLAIN CALL db.clearQueryCaches()")


def test_result_bytes_are_bounded(empty_db):
    pad = "x" * 1000
    result = analyst(empty_db, "UNWIND range(1, 5000) AS i RETURN i, $pad AS pad", {"pad": pad},
                     policy=AnalystPolicy(max_bytes=100_000))
    assert result.truncated and result.truncated_by == "bytes"
    size = len(json.dumps(result.rows, separators=(",", ":")))
    assert 0.9 * 100_000 < size <= 100_000 and result.rows[0] == [1, pad]
    complete = analyst(empty_db, "UNWIND range(1, 50) AS i RETURN i", policy=AnalystPolicy(max_bytes=100_000))
    assert not complete.truncated and complete.truncated_by is None and len(complete.rows) == 50


def test_one_huge_row_is_refused_not_returned(empty_db):
    # The probe: 12 million integers in one row (97 MB of JSON) went to the client whole.
    with pytest.raises(QueryRefused, match="first row alone is over the 16,777,216-byte") as err:
        analyst(empty_db, "RETURN range(1, 12000000) AS xs")
    assert err.value.kind is Refusal.TOO_LARGE


def test_neo4j_memory_limit_is_a_clear_refusal(empty_db):
    # collect() of 30 million integers needs far more than db.memory.transaction.max (256m) allows.
    with pytest.raises(QueryRefused, match="more memory than one query may use") as err:
        analyst(empty_db, "UNWIND range(1, 30000000) AS x RETURN collect(x) AS xs")
    assert err.value.kind is Refusal.OVER_MEMORY
    assert analyst(empty_db, "RETURN 1 AS ok").rows == [[1]]  # the server is fine afterwards


def test_unreadable_values_are_a_clear_refusal(empty_db):
    with pytest.raises(QueryRefused, match="cannot be read by the driver") as err:
        analyst(empty_db, "RETURN datetime({epochMillis: 10000000000000000}) AS t")
    assert err.value.kind is Refusal.INVALID


@pytest.mark.parametrize("value", [
    12345, -3.25, None, True, "plain", 'quote " and \\ and é', [1, [2, 3], {"a": "b"}], {"k": [None, 1.5]},
    list(range(1000)), ["word"] * 300,
])
def test_json_size_tracks_the_json(value):
    exact = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))  # as the API sends it
    estimate = json_size(value, 10**9)
    assert abs(estimate - exact) <= max(6, 0.15 * exact), (estimate, exact)


def test_json_size_stops_early():
    assert json_size(list(range(10**6)), 1000) <= 1100


def test_procedure_names_from_plan_details():
    assert procedure_name("db.labels() :: (label :: STRING)") == "db.labels"
    assert procedure_name("`db`.`schema`.visualization() :: (nodes :: LIST<NODE>)") == "db.schema.visualization"
    assert procedure_name("gds.pageRank.stream($autostring_0) :: (nodeId :: INTEGER)") == "gds.pageRank.stream"
    assert procedure_name("no parentheses") is None
