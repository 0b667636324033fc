"""Applying the schema of :mod:`graphrec.schema` to a database (idempotent)."""

from __future__ import annotations

from neo4j import Driver

from graphrec import schema


def apply_schema(driver: Driver, database: str = "neo4j") -> list[str]:
    """Create every constraint and index that is missing and wait until they are online."""
    statements = schema.constraint_statements() + schema.index_statements()
    with driver.session(database=database) as session:
        for statement in statements:
            session.run(statement).consume()
        session.run("CALL db.awaitIndexes(300)").consume()
    return statements
