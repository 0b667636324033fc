"""Analyst access: read-only Cypher and the library of named queries (API key required)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import Analyst, AuditDep, QueriesDep, ServiceDep
from api.errors import ApiError
from api.schemas import ErrorOut, NamedParamsIn, NamedQueryOut, QueryIn, QueryOut

router = APIRouter(prefix="/graph", tags=["analysts"],
                   responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 429: {"model": ErrorOut},
                              503: {"model": ErrorOut}})

ROW_LIMIT = 10_000
TIMEOUT_S = 15.0


@router.post("/query", response_model=QueryOut, responses={400: {"model": ErrorOut}, 408: {"model": ErrorOut}})
def query(service: ServiceDep, body: QueryIn, who: Analyst, audit: AuditDep) -> dict:
    """Run Cypher in a read transaction (writes are refused by Neo4j), at most 10,000 rows, 15 s."""
    audit.record(who, "graph.query", query=body.query, params=sorted(body.params))
    result = service.run_query(body.query, body.params, ROW_LIMIT, TIMEOUT_S)
    return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}


@router.get("/queries", response_model=list[NamedQueryOut])
def list_queries(queries: QueriesDep, who: Analyst) -> list[dict]:
    """The named queries of cypher/analyst/, with their parameters."""
    return [{"name": q.name, "description": q.description,
             "params": [{"name": p.name, "type": p.type, "required": p.required, "default": p.default,
                         "description": p.description} for p in q.params]}
            for q in queries.values()]


@router.post("/queries/{name}", response_model=QueryOut, responses={404: {"model": ErrorOut}})
def run_named(service: ServiceDep, queries: QueriesDep, name: Annotated[str, Path(max_length=100)],
              who: Analyst, audit: AuditDep, body: NamedParamsIn | None = None) -> dict:
    """Run one named query with its parameters (checked against its header)."""
    named = queries.get(name)
    if named is None:
        raise ApiError(404, f"no analyst query named {name!r} (GET /graph/queries lists them)", "name")
    audit.record(who, "graph.named_query", name=name, params=sorted((body.params if body else {})))
    params = named.bind(body.params if body else {})
    result = service.run_query(named.cypher, params, ROW_LIMIT, TIMEOUT_S)
    return {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}
