"""The named analyst queries: headers parse, parameters are checked, names come from the schema."""

from __future__ import annotations

import re

import pytest

from graphrec import schema
from graphrec.serving.analyst import ANALYST_DIR, QueryParamError, load_queries, parse


def test_every_file_has_a_documented_header():
    queries = load_queries()
    assert len(queries) >= 5 and len(queries) == len(list(ANALYST_DIR.glob("*.cypher")))
    for q in queries.values():
        assert q.path.stem == q.name and q.description and q.cypher
        for p in q.params:
            assert p.description and f"${p.name}" in q.cypher, (q.name, p.name)
        used = set(re.findall(r"\$([A-Za-z_]\w*)", q.cypher))
        assert used <= {p.name for p in q.params}, (q.name, used)


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
    path.write_text("// name: q\n// description: d\n// param: who: string - a user\n"
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
