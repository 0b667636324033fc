"""Read-only Cypher for analysts, scripts and tests.

Queries run in a READ transaction, so Neo4j itself refuses any write (``CREATE``, ``MERGE``,
``SET``, ``DELETE``, schema or admin commands) before it changes anything; results are turned into
plain JSON values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import neo4j
from neo4j import Driver
from neo4j.exceptions import ClientError, CypherSyntaxError, Neo4jError
from neo4j.graph import Node, Path, Relationship
from neo4j.spatial import Point
from neo4j.time import Date, DateTime, Duration, Time

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIMEOUT_S = 30.0


class QueryRefused(ValueError):
    """The query is a write, malformed, or failed in Neo4j; ``reason`` is safe to show a client."""

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def to_jsonable(value: Any) -> Any:
    """Neo4j values (nodes, paths, temporal, spatial) as plain JSON types."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Node):
        return {"element_id": value.element_id, "labels": sorted(value.labels), "properties": to_jsonable(dict(value))}
    if isinstance(value, Relationship):
        return {
            "element_id": value.element_id,
            "type": value.type,
            "start": value.start_node.element_id if value.start_node else None,
            "end": value.end_node.element_id if value.end_node else None,
            "properties": to_jsonable(dict(value)),
        }
    if isinstance(value, Path):
        return {"nodes": [to_jsonable(n) for n in value.nodes], "relationships": [to_jsonable(r) for r in value.relationships]}
    if isinstance(value, (DateTime, Date, Time)):
        return value.iso_format()
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, (Duration, timedelta)):
        return str(value)
    if isinstance(value, Point):
        return {"srid": value.srid, "coordinates": list(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def run_read(
    driver: Driver,
    cypher: str,
    params: dict[str, Any] | None = None,
    *,
    database: str = "neo4j",
    limit: int = DEFAULT_ROW_LIMIT,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run ``cypher`` in a read transaction; at most ``limit`` rows, at most ``timeout`` seconds."""

    @neo4j.unit_of_work(timeout=timeout)
    def work(tx: neo4j.ManagedTransaction) -> QueryResult:
        result = tx.run(cypher, params or {})
        out = QueryResult(columns=list(result.keys()))
        for record in result:
            if len(out.rows) == limit:
                out.truncated = True
                break
            out.rows.append([to_jsonable(v) for v in record.values()])
        return out

    try:
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            return session.execute_read(work)
    except CypherSyntaxError as err:
        raise QueryRefused(f"Cypher syntax error: {_first_line(err.message)}", err.code) from None
    except ClientError as err:
        code = err.code or ""
        if "AccessMode" in code or "Forbidden" in code or "Security" in code:
            raise QueryRefused("read-only: this query would write to the graph and was refused", code) from None
        if "TransactionTimedOut" in code or "Terminated" in code:
            raise QueryRefused(f"query exceeded the {timeout:g} s time limit and was stopped", code) from None
        raise QueryRefused(f"query failed: {_first_line(err.message)}", code) from None
    except Neo4jError as err:
        if "TransactionTimedOut" in (err.code or "") or "Terminated" in (err.code or ""):
            raise QueryRefused(f"query exceeded the {timeout:g} s time limit and was stopped", err.code) from None
        raise


def _first_line(message: str | None) -> str:
    return (message or "").strip().splitlines()[0] if message else "unknown error"
