"""Read-only queries against the real server: writes are refused and change nothing."""

from __future__ import annotations

import pytest

from graphrec.store.query import QueryRefused, run_read

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
