"""The schema is defined once: cypher/schema.cypher must equal what graphrec/schema.py generates."""

from __future__ import annotations

from pathlib import Path

import pytest

from graphrec import schema
from graphrec.store.query import run_read
from graphrec.store.schema import apply_schema

SCHEMA_FILE = Path(__file__).resolve().parents[1] / "cypher" / "schema.cypher"


def test_schema_file_is_generated_from_schema_module():
    assert SCHEMA_FILE.read_text() == schema.schema_cypher(), "run: graphrec schema show > cypher/schema.cypher"


def test_every_node_type_has_a_unique_key_constraint():
    statements = "\n".join(schema.constraint_statements())
    for node in schema.NODE_TYPES:
        assert f"FOR (n:{node.label}) REQUIRE n.{node.key} IS UNIQUE" in statements


@pytest.mark.integration
def test_apply_schema_is_idempotent(driver):
    apply_schema(driver)
    first = run_read(driver, "SHOW CONSTRAINTS YIELD name, labelsOrTypes, properties RETURN name ORDER BY name").rows
    apply_schema(driver)
    second = run_read(driver, "SHOW CONSTRAINTS YIELD name RETURN name ORDER BY name").rows
    assert first == second
    assert {row[0] for row in first} >= {f"{n.label.lower()}_id_unique" for n in schema.NODE_TYPES}
