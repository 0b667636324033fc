"""The named analyst queries: headers parse, parameters are checked, names come from the schema, rows
about groups smaller than k are withheld (on a real Neo4j)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from graphrec import schema
from graphrec.serving.analyst import (ANALYST_DIR, QueryParamError, coerce_text, load_queries, parse, run_named,
                                      suppress_small_groups)
from graphrec.store.query import AnalystPolicy, QueryRefused, QueryResult, run_read


def test_every_file_has_a_documented_header():
    queries = load_queries()
    assert len(queries) >= 5 and len(queries) == len(list(ANALYST_DIR.glob("*.cypher")))
    for q in queries.values():
        assert q.path.stem == q.name and q.description and q.cypher
        for p in q.params:
            assert p.description and f"${p.name}" in q.cypher, (q.name, p.name)
        used = set(re.findall(r"\$([A-Za-z_]\w*)", q.cypher))
        # gds_graph parameters are filled by the runner (a fresh in-memory graph name), not the caller.
        assert used <= {p.name for p in q.params} | set(q.gds_graphs), (q.name, used)


def test_labels_and_types_are_the_schema_s():
    labels = {n.label for n in schema.NODE_TYPES}
    types = {r.type for r in schema.REL_TYPES}
    for q in load_queries().values():
        for name in re.findall(r"\(\w*:(\w+)", q.cypher):
            assert name in labels, (q.name, name)
        for group in re.findall(r"\[\w*:([\w|]+)", q.cypher):
            assert set(group.split("|")) <= types, (q.name, group)


def test_bind_checks_and_fills(tmp_path):
    path = tmp_path / "q.cypher"
    path.write_text("// name: q\n// description: d\n// param: who: string - a user\n// group_size: none - one user\n"
                    "// param: n: int = 3 - rows\n// param: f: float = null - a number\n"
                    "MATCH (u:User {id: $who}) RETURN u LIMIT $n;\n")
    q = parse(path)
    assert q.cypher.endswith("LIMIT $n") and [p.name for p in q.params] == ["who", "n", "f"]
    assert q.bind({"who": "u1"}) == {"who": "u1", "n": 3, "f": None}
    assert q.bind({"who": "u1", "f": 2}) == {"who": "u1", "n": 3, "f": 2.0}
    for bad, field in [({}, "who"), ({"who": 1}, "who"), ({"who": "u", "n": True}, "n"), ({"who": "u", "x": 1}, "x")]:
        with pytest.raises(QueryParamError) as err:
            q.bind(bad)
        assert err.value.field == field


def header(tmp_path, group_line: str | None, body: str = "RETURN 1 AS n") -> Path:
    path = tmp_path / "g.cypher"
    lines = ["// name: g", "// description: d"] + ([group_line] if group_line is not None else []) + [body]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_group_size_header_is_required_and_checked(tmp_path):
    assert parse(header(tmp_path, "// group_size: users")).group_size == ("users",)
    assert parse(header(tmp_path, "// group_size: users_reached, friends")).group_size == ("users_reached", "friends")
    assert parse(header(tmp_path, "// group_size: none - counts products only")).group_size == ()
    for bad in (None, "// group_size: none", "// group_size: ", "// group_size: a b", "// group_size: a,,b"):
        with pytest.raises(ValueError, match="group_size"):
            parse(header(tmp_path, bad))


def test_shipped_queries_declare_group_columns():
    queries = load_queries()
    assert queries["category_copurchase_pairs"].group_size == ("users",)
    assert queries["friends_bought_in_category"].group_size == ("users_reached", "friends_who_bought")
    assert queries["trendsetters"].group_size == ("followers",)
    assert queries["user_neighbourhood"].group_size == ("people", "through_people")
    for q in queries.values():
        for column in q.group_size:
            assert re.search(rf"\bAS {column}\b|\b{column}\s*$|, {column}\b", q.cypher), (q.name, column)


def test_suppress_small_groups():
    result = QueryResult(["what", "users", "friends"],
                         [["a", 12, 10], ["b", 9, 30], ["c", 40, 3], ["d", 10, None], ["e", "x", 50]])
    out = suppress_small_groups(result, ("users", "friends"), 10, "q.cypher")
    # null counts no people (kept); a non-number in a group column is withheld (fail closed)
    assert [row[0] for row in out.rows] == ["a", "d"] and out.suppressed == 3
    again = QueryResult(["users"], [[1], [2]])
    assert suppress_small_groups(again, ("users",), 1, "q").rows == [[1], [2]]
    with pytest.raises(ValueError, match="group_size column.*people.*not among"):
        suppress_small_groups(QueryResult(["users"], [[50]]), ("people",), 10, "q.cypher")


def test_text_values_take_their_type():
    assert coerce_text("id", "string", "2") == "2"
    assert coerce_text("n", "int", "5") == 5 and coerce_text("x", "float", "2.5") == 2.5
    assert coerce_text("b", "bool", "TRUE") is True and coerce_text("b", "bool", "no") is False
    assert coerce_text("j", "json", '{"a": [1, null]}') == {"a": [1, None]}
    assert coerce_text("l", "list", '["u1", "u2"]') == ["u1", "u2"]
    for type_name, raw in [("int", "five"), ("float", "x"), ("bool", "maybe"), ("json", "{"),
                           ("list", '{"a": 1}'), ("date", "2024")]:
        with pytest.raises(QueryParamError) as err:
            coerce_text("p", type_name, raw)
        assert err.value.field == "p"


# -- on a real Neo4j -----------------------------------------------------------------------------

def people_graph(driver, reached: dict[str, int]) -> None:
    """Category c1 with one product per entry; ``reached[p]`` users each have their own friend who
    bought ``p`` (so p reaches that many users through that many friends)."""
    rows = [{"p": p, "u": f"{p}-u{i}", "f": f"{p}-f{i}"} for p, n in reached.items() for i in range(n)]
    with driver.session() as s:
        s.run("CREATE (:Category {id: 'c1', name: 'Rock'})").consume()
        s.run("UNWIND $ps AS p MATCH (c:Category {id: 'c1'}) CREATE (:Product {id: p, name: p})-[:IN_CATEGORY]->(c)",
              ps=list(reached)).consume()
        s.run("UNWIND $rows AS r MATCH (p:Product {id: r.p}) "
              "CREATE (u:User {id: r.u})-[:FRIEND]->(f:User {id: r.f})-[:BOUGHT]->(p)", rows=rows).consume()


@pytest.mark.integration
def test_named_queries_withhold_small_groups(empty_db):
    people_graph(empty_db, {"big": 12, "mid": 10, "small": 3})
    q = load_queries()["friends_bought_in_category"]
    params = q.bind({"category_id": "c1"})
    result = run_named(empty_db, q, params, policy=AnalystPolicy(), min_group_size=10)
    assert [r["product_id"] for r in result.records()] == ["big", "mid"] and result.suppressed == 1
    everything = run_named(empty_db, q, params, policy=AnalystPolicy(), min_group_size=3)
    assert [r["product_id"] for r in everything.records()] == ["big", "mid", "small"] and everything.suppressed == 0
    assert [r["users_reached"] for r in everything.records()] == [12, 10, 3]


@pytest.mark.integration
def test_user_neighbourhood_withholds_small_groups_of_people(empty_db):
    people_graph(empty_db, {"big": 12, "small": 3})
    q = load_queries()["user_neighbourhood"]
    # big-f0 bought "big" and is a friend of big-u0; through "big" it reaches its 11 other buyers.
    result = run_named(empty_db, q, q.bind({"user_id": "big-f0"}), policy=AnalystPolicy(), min_group_size=10)
    rows = {(r["hops"], r["via"], r["label"]): r for r in result.records()}
    assert rows[(1, "BOUGHT", "Product")]["people"] is None  # the user's own purchase: no other people
    assert rows[(2, "BOUGHT/BOUGHT", "User")]["people"] == 11
    assert (1, "FRIEND", "User") not in rows and result.suppressed >= 1  # one friend: a group of 1
    assert (2, "FRIEND/BOUGHT", "Product") not in rows  # what that one friend bought


@pytest.mark.integration
def test_every_shipped_query_runs_and_has_its_group_columns(shop_db):
    user = run_read(shop_db, "MATCH (u:User) RETURN u.id ORDER BY u.id LIMIT 1").rows[0][0]
    required = {"category_id": "c1", "user_id": user}
    for q in load_queries().values():
        params = q.bind({p.name: required[p.name] for p in q.params if p.required})
        result = run_named(shop_db, q, params, policy=AnalystPolicy(), min_group_size=1)
        assert set(q.group_size) <= set(result.columns), (q.name, result.columns)
        strict = run_named(shop_db, q, params, policy=AnalystPolicy(), min_group_size=10_000)
        assert len(strict.rows) + strict.suppressed == len(result.rows), q.name
        assert q.group_size or strict.suppressed == 0, q.name


@pytest.mark.integration
def test_named_queries_go_through_the_plan_check(empty_db, tmp_path):
    path = tmp_path / "sneaky.cypher"
    path.write_text("// name: sneaky\n// description: d\n// group_size: none - no people\n"
                    "CALL dbms.listConfig() YIELD name RETURN name\n")
    q = parse(path)
    with pytest.raises(QueryRefused, match="dbms.listConfig is not on"):
        run_named(empty_db, q, {}, policy=AnalystPolicy(), min_group_size=10)
