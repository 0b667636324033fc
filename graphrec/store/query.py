"""Read-only Cypher for analysts, scripts and tests.

Two entry points:

* :func:`run_read` is for GraphRec's own code and tests: any query, in a READ transaction.
* :func:`run_analyst` is for text an analyst typed (``graphrec query``, ``/graph/query``, the named
  queries). Neo4j Community has no roles and GraphRec connects as its admin user, so the analyst's
  rights are enforced here, from the query's own plan: ``EXPLAIN`` first, then run only if the
  plan is a plain read of the graph (query type ``r``), calls only allow-listed procedures
  (:class:`AnalystPolicy`, configured by ``GRAPHREC_ANALYST_PROCEDURES``), and holds no command
  operator (``SHOW TRANSACTIONS``, ``TERMINATE TRANSACTIONS``, administration commands on the
  system database) and no ``LOAD CSV`` (which reads files and URLs, not the graph). A query whose
  plan cannot be obtained is refused. It still runs in a READ transaction, so Neo4j itself refuses
  any write the plan check missed.

Results are plain JSON values, bounded in rows and in bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from fnmatch import fnmatchcase
from typing import Any, Iterable

import neo4j
from neo4j import Driver
from neo4j.exceptions import BrokenRecordError, ClientError, CypherSyntaxError, Neo4jError
from neo4j.graph import Node, Path, Relationship
from neo4j.spatial import Point
from neo4j.time import Date, DateTime, Duration, Time

from graphrec.config import DEFAULT_ANALYST_PROCEDURES, Settings

DEFAULT_ROW_LIMIT = 10_000
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_BYTES = 16 * 2**20
# Records fetched per round trip: small, so a result of large rows is not buffered far past the byte cap.
FETCH_SIZE = 100

# Procedures refused to analysts whatever GRAPHREC_ANALYST_PROCEDURES allows (lower case): Graph
# Data Science's modes that write the database or files, and projections that run Cypher given as a
# string, which the plan check never sees.
NEVER_ALLOWED_PROCEDURES = ("gds.*.write", "gds.*.write.*", "gds.*cypher*", "gds.graph.export*", "gds.backup*",
                            "gds.restore*", "gds.*writenodeproperties*", "gds.*writerelationship*")
# SHOW commands that only describe the schema and the callable procedures and functions; every
# other SHOW (TRANSACTIONS, SETTINGS, USERS, DATABASES, ...) describes the server and its clients.
SCHEMA_SHOW_OPERATORS = frozenset({"ShowIndexes", "ShowConstraints", "ShowProcedures", "ShowFunctions"})
# Operators of commands rather than graph reads: refused unless in SCHEMA_SHOW_OPERATORS.
_COMMAND_OPERATOR = re.compile(r"^(Show|Terminate|AdministrationCommand|SystemProcedureCall)")
_NAME_PART = re.compile(r"`([^`]+)`|([A-Za-z_][\w$]*)")
_PROCEDURE_NAME = re.compile(r"^\s*((?:`[^`]+`|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:`[^`]+`|[A-Za-z_][\w$]*))*)\s*\(")


class Refusal(str, Enum):
    """Why a query did not run; the API maps each to a status code."""

    FORBIDDEN = "forbidden"        # writes, admin commands, procedures not allowed to analysts
    INVALID = "invalid"            # syntax errors, failures inside Neo4j, unreadable values
    TIMEOUT = "timeout"            # over the time limit
    TOO_LARGE = "too_large"        # a single row over the byte limit
    OVER_MEMORY = "over_memory"    # over Neo4j's per-transaction memory limit


class QueryRefused(ValueError):
    """The query was refused or failed; ``reason`` is safe to show a client, ``kind`` says why."""

    def __init__(self, reason: str, code: str | None = None, kind: Refusal = Refusal.INVALID) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.kind = kind


@dataclass(frozen=True)
class AnalystPolicy:
    """What an analyst's query may do: call ``procedures`` (shell-style patterns, ``gds.*.stream``)
    and return at most ``max_bytes`` of JSON."""

    procedures: tuple[str, ...] = DEFAULT_ANALYST_PROCEDURES
    max_bytes: int = DEFAULT_MAX_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> "AnalystPolicy":
        return cls(tuple(settings.analyst_procedures), settings.analyst_max_bytes)

    def allows_procedure(self, name: str) -> bool:
        if any(fnmatchcase(name.lower(), pattern) for pattern in NEVER_ALLOWED_PROCEDURES):
            return False
        return any(fnmatchcase(name, pattern) for pattern in self.procedures)


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    truncated: bool = False
    # "rows" or "bytes": which limit cut the result short (None when complete).
    truncated_by: str | None = None
    # Rows a named query withheld because their group was smaller than the minimum group size.
    suppressed: int = 0

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


def json_size(value: Any, budget: int) -> int:
    """About how many bytes ``value`` takes as JSON (within a few per cent), computed on the driver's
    values before converting them; stops counting once over ``budget`` so a 12-million-element
    list costs no more than its first ``budget`` bytes."""
    total = 0
    stack: list[Any] = [value]
    while stack:
        if total > budget:
            return total
        v = stack.pop()
        if v is None or isinstance(v, bool):
            total += 5
        elif isinstance(v, (int, float)):
            total += len(repr(v)) + 1
        elif isinstance(v, str):
            total += len(v) + 3  # quotes and separator; non-ASCII and escapes undercount slightly
        elif isinstance(v, (list, tuple)):
            total += 2
            stack.extend(v)
        elif isinstance(v, dict):
            total += 2
            for k, item in v.items():
                total += len(str(k)) + 4
                stack.append(item)
        elif isinstance(v, (Node, Relationship)):
            total += 120  # element ids, labels or type, keys
            stack.append(dict(v))
            if isinstance(v, Node):
                stack.extend(v.labels)
        elif isinstance(v, Path):
            stack.extend(v.nodes)
            stack.extend(v.relationships)
        elif isinstance(v, (bytes, bytearray)):
            total += 2 * len(v) + 3
        else:
            total += len(str(v)) + 3
    return total


def _operators(plan: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    """(operator, database, arguments) of every operator of an EXPLAIN plan, depth first."""
    stack = [plan]
    while stack:
        node = stack.pop()
        operator, _, database = str(node.get("operatorType", "")).partition("@")
        yield operator, database, node.get("args") or {}
        stack.extend(node.get("children") or [])


def procedure_name(details: str) -> str | None:
    """``db.labels() :: (label :: STRING)`` -> ``db.labels`` (backticks removed)."""
    m = _PROCEDURE_NAME.match(details or "")
    if m is None:
        return None
    return ".".join(quoted or plain for quoted, plain in _NAME_PART.findall(m.group(1)))


def plan_refusal(query_type: str | None, plan: dict[str, Any] | None, database: str,
                 policy: AnalystPolicy) -> str | None:
    """Why an analyst may not run a query with this EXPLAIN summary, or None if it is a plain read."""
    if not plan:
        return "refused: Neo4j gave no plan for this query, so it cannot be checked"
    for operator, db, args in _operators(plan):
        if db and db != database:
            return f"refused: administration commands (database {db!r}) are not allowed to analysts"
        if operator == "ProcedureCall":
            name = procedure_name(str(args.get("Details", "")))
            if name is None:
                return "refused: a procedure call whose name cannot be read from the plan"
            if not policy.allows_procedure(name):
                return (f"refused: procedure {name} is not on the analysts' allow-list "
                        f"(GRAPHREC_ANALYST_PROCEDURES: {', '.join(policy.procedures) or 'none'})")
        elif _COMMAND_OPERATOR.match(operator) and operator not in SCHEMA_SHOW_OPERATORS:
            return f"refused: {_command_words(operator)} is an administration command, not a graph read"
        elif operator.startswith("LoadCSV"):
            return "refused: LOAD CSV reads files and URLs, not the graph"
    if query_type != "r":
        kind = {"w": "writes to the graph", "rw": "writes to the graph", "s": "changes the schema or the server"}
        return f"refused: read-only: this query {kind.get(query_type or '', 'is not a plain read')}"
    return None


def _command_words(operator: str) -> str:
    """``TerminateTransactions`` -> ``TERMINATE TRANSACTIONS``."""
    if operator == "AdministrationCommand":
        return "this"
    return " ".join(re.findall(r"[A-Z][a-z]*", operator)).upper()


def run_read(
    driver: Driver,
    cypher: str,
    params: dict[str, Any] | None = None,
    *,
    database: str = "neo4j",
    limit: int = DEFAULT_ROW_LIMIT,
    timeout: float = DEFAULT_TIMEOUT_S,
    max_bytes: int | None = None,
) -> QueryResult:
    """Run trusted ``cypher`` (GraphRec's own code) in a READ transaction: at most ``limit`` rows,
    ``max_bytes`` of JSON (unbounded by default) and ``timeout`` seconds."""
    return _run(driver, cypher, params, database, limit, timeout, max_bytes, None)


def run_analyst(
    driver: Driver,
    cypher: str,
    params: dict[str, Any] | None = None,
    *,
    policy: AnalystPolicy,
    database: str = "neo4j",
    limit: int = DEFAULT_ROW_LIMIT,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> QueryResult:
    """Run an analyst's ``cypher`` if its plan is a plain read (see the module's docstring);
    :class:`QueryRefused` with kind FORBIDDEN otherwise, before anything runs."""
    return _run(driver, cypher, params, database, limit, timeout, policy.max_bytes, policy)


def _run(driver: Driver, cypher: str, params: dict[str, Any] | None, database: str, limit: int,
         timeout: float, max_bytes: int | None, policy: AnalystPolicy | None) -> QueryResult:
    params = params or {}
    try:
        # An explicit transaction: the driver retries nothing (a retried 15 s query is a 30 s one,
        # and an out-of-memory query would only fail again).
        # Notifications off: the EXPLAIN would log each warning a second time.
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS, fetch_size=FETCH_SIZE,
                            notifications_min_severity="OFF") as session:
            with session.begin_transaction(timeout=timeout) as tx:
                if policy is not None:
                    summary = tx.run("EXPLAIN " + cypher, params).consume()
                    refusal = plan_refusal(summary.query_type, summary.plan, database, policy)
                    if refusal is not None:
                        raise QueryRefused(refusal, kind=Refusal.FORBIDDEN)
                return _collect(tx.run(cypher, params), limit, max_bytes)
    except CypherSyntaxError as err:
        raise QueryRefused(f"Cypher syntax error: {_first_line(err.message)}", err.code) from None
    except BrokenRecordError:
        raise QueryRefused("a value in the result cannot be read by the driver "
                           "(for example a date outside the years 1 to 9999)") from None
    except Neo4jError as err:
        raise _refusal(err, timeout) from None


def _collect(result: neo4j.Result, limit: int, max_bytes: int | None) -> QueryResult:
    out = QueryResult(columns=list(result.keys()))
    used = 2  # the brackets around the rows
    for record in result:
        if len(out.rows) == limit:
            out.truncated, out.truncated_by = True, "rows"
            break
        values = record.values()
        if max_bytes is not None:
            size = json_size(values, max_bytes - used)
            if used + size > max_bytes:
                if not out.rows:
                    raise QueryRefused(f"the first row alone is over the {max_bytes:,}-byte result limit; "
                                       "return less per row (a slice, size() or a count)",
                                       kind=Refusal.TOO_LARGE)
                out.truncated, out.truncated_by = True, "bytes"
                break
            used += size
        out.rows.append([to_jsonable(v) for v in values])
    return out


def _refusal(err: Neo4jError, timeout: float) -> QueryRefused:
    code = err.code or ""
    if "MemoryPoolOutOfMemoryError" in code or "MemoryLimit" in code:
        return QueryRefused("query needs more memory than one query may use on this server "
                            "(db.memory.transaction.max); aggregate earlier, collect less or add a LIMIT",
                            code, Refusal.OVER_MEMORY)
    if "TransactionTimedOut" in code or "Terminated" in code:
        return QueryRefused(f"query exceeded the {timeout:g} s time limit and was stopped", code, Refusal.TIMEOUT)
    if isinstance(err, ClientError) and ("AccessMode" in code or "Forbidden" in code or "Security" in code):
        return QueryRefused("read-only: this query would write to the graph and was refused", code,
                            Refusal.FORBIDDEN)
    if isinstance(err, ClientError) or code.startswith("Neo.ClientError"):
        if "ArgumentError" in code and "execution mode" in (err.message or ""):
            return QueryRefused("PROFILE and EXPLAIN cannot be combined with the analysts' plan check; "
                                "send the query without them", code)
        return QueryRefused(f"query failed: {_first_line(err.message)}", code)
    raise err


def _first_line(message: str | None) -> str:
    return (message or "").strip().splitlines()[0] if message else "unknown error"
