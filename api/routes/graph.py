"""Analyst access: read-only Cypher and the library of named queries (API key required).

What an analyst may run is decided from the query's plan (:func:`graphrec.store.query.run_analyst`):
graph reads and the procedures of ``GRAPHREC_ANALYST_PROCEDURES``; everything else is a 403 before
it runs. Results are bounded in rows, bytes (``GRAPHREC_ANALYST_MAX_BYTES``) and time; named queries
withhold rows about groups smaller than ``GRAPHREC_MIN_GROUP_SIZE``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import Field

from api.deps import Analyst, AuditDep, QueriesDep, ServiceDep
from api.errors import ApiError
from api.schemas import ErrorOut, NamedParamsIn, NamedQueryOut, QueryIn, QueryOut
from graphrec.serving.analyst import run_named
from graphrec.store.query import AnalystPolicy, QueryResult, run_analyst

router = APIRouter(prefix="/graph", tags=["analysts"],
                   responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut},
                              503: {"model": ErrorOut}})

ROW_LIMIT = 10_000
TIMEOUT_S = 15.0
REFUSALS = {400: {"model": ErrorOut, "description": "Cypher syntax error or a failure inside Neo4j"},
            403: {"model": ErrorOut, "description": "not a plain read: a write, an administration command, "
                                                    "or a procedure outside the allow-list"},
            408: {"model": ErrorOut, "description": "over the time limit"},
            413: {"model": ErrorOut, "description": "a single row over the byte limit"},
            422: {"model": ErrorOut, "description": "over Neo4j's per-query memory limit, or a bad parameter"}}


class AnalystQueryOut(QueryOut):
    truncated_by: Literal["rows", "bytes"] | None = Field(
        None, description="The limit that cut the result short: 10,000 rows, or the byte limit")


class NamedResultOut(AnalystQueryOut):
    suppressed: int = Field(0, description="Rows withheld because their group of people was smaller "
                                           "than the minimum group size")
    min_group_size: int


class NamedQueryInfoOut(NamedQueryOut):
    group_size: list[str] = Field(description="Columns counting people; rows below the minimum group size "
                                              "in any of them are withheld")


def _out(result: QueryResult) -> dict:
    out = {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}
    if result.truncated_by is not None:
        out["truncated_by"] = result.truncated_by
    return out


@router.post("/query", response_model=AnalystQueryOut, response_model_exclude_none=True, responses=REFUSALS)
def query(service: ServiceDep, body: QueryIn, who: Analyst, audit: AuditDep) -> dict:
    """Run read-only Cypher: graph reads and allow-listed procedures (decided from the query's plan),
    at most 10,000 rows, the configured bytes, 15 s."""
    audit.record(who, "graph.query", query=body.query, params=sorted(body.params))
    with service.breaker.call() as driver:  # fails fast (503) while Neo4j is down
        result = run_analyst(driver, body.query, body.params, policy=AnalystPolicy.from_settings(service.settings),
                             database=service.database, limit=ROW_LIMIT, timeout=TIMEOUT_S)
    return _out(result)


@router.get("/queries", response_model=list[NamedQueryInfoOut])
def list_queries(queries: QueriesDep, who: Analyst) -> list[dict]:
    """The named queries of cypher/analyst/, with their parameters."""
    return [{"name": q.name, "description": q.description, "group_size": list(q.group_size),
             "params": [{"name": p.name, "type": p.type, "required": p.required, "default": p.default,
                         "description": p.description} for p in q.params]}
            for q in queries.values()]


@router.post("/queries/{name}", response_model=NamedResultOut, response_model_exclude_none=True,
             responses={404: {"model": ErrorOut}, **REFUSALS})
def run_named_query(service: ServiceDep, queries: QueriesDep, name: Annotated[str, Path(max_length=100)],
                    who: Analyst, audit: AuditDep, body: NamedParamsIn | None = None) -> dict:
    """Run one named query with its parameters (checked against its header); rows about groups
    smaller than the minimum group size are withheld and counted in ``suppressed``."""
    named = queries.get(name)
    if named is None:
        raise ApiError(404, f"no analyst query named {name!r} (GET /graph/queries lists them)", "name")
    audit.record(who, "graph.named_query", name=name, params=sorted((body.params if body else {})))
    params = named.bind(body.params if body else {})
    k = service.settings.min_group_size
    with service.breaker.call() as driver:
        result = run_named(driver, named, params, policy=AnalystPolicy.from_settings(service.settings),
                           min_group_size=k, database=service.database, limit=ROW_LIMIT, timeout=TIMEOUT_S)
    return {**_out(result), "suppressed": result.suppressed, "min_group_size": k}
