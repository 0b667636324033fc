"""POST /events: impressions, clicks and purchases, in batches (Writer role).

A batch is validated whole and stored whole: if any event is invalid, the answer is 422 naming
every invalid event's index and field, and nothing of the batch is stored (resending the fixed
batch is safe: events are idempotent by ``event_id``). Stored events are durable (DuckDB commit)
before the 200; purchases also become BOUGHT edges in Neo4j.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import AuditDep, ServiceDep, Writer, json_response
from api.errors import BodyLimit
from api.schemas import ErrorOut, EventsIn, EventsOut
from graphrec.campaigns.events import EventStore, Ingested, InvalidEvents, ingest
from graphrec.campaigns.registry import Registry
from graphrec.serving.db import GraphUnavailable
from graphrec.serving.service import Service
from graphrec.serving.writes import Purchase

router = APIRouter(tags=["campaigns"])

PATH = "/events"
# A batch of 1,000 events is ~200 KB with uuid ids: more than the API's general body limit allows
# comfortably, so /events has its own.
MAX_BODY_BYTES = 2 * 1024 * 1024


class BodyLimits:
    """The API's body limit, with a larger one for POST /events (it wraps :class:`BodyLimit`)."""

    def __init__(self, app: ASGIApp, max_bytes: int, events_max_bytes: int = MAX_BODY_BYTES) -> None:
        self.default = BodyLimit(app, max_bytes)
        self.events = BodyLimit(app, events_max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = self.events if scope["type"] == "http" and scope.get("path") == PATH else self.default
        await limit(scope, receive, send)


def _record(service: Service, pending: pd.DataFrame) -> None:
    purchases = [Purchase(u, p, ts.isoformat(), None if v != v else float(v))
                 for u, p, ts, v in zip(pending["user_id"], pending["product_id"], pending["ts"], pending["value"])]
    service.record_purchases(purchases)


def _ingest(service: Service, registry: Registry, store: EventStore | None, events: list[dict[str, Any]]) -> Ingested:
    if store is None:
        raise GraphUnavailable("the event store is not open (its file is held by another process); "
                               "see the server log")
    index = service.graph_index(reload=True)  # 503 while the graph (who exists) is unknown
    return ingest(store, events, has_user=index.has_user, has_product=index.has_product,
                  campaign=registry.get, record_purchases=lambda frame: _record(service, frame))


@router.post(PATH, response_model=EventsOut,
             responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 413: {"model": ErrorOut},
                        422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def post_events(batch: EventsIn, request: Request, service: ServiceDep, who: Writer, audit: AuditDep):
    """Store a batch of up to 1,000 events; ``{"accepted", "duplicates"}``."""
    events = [e.model_dump() for e in batch.events]
    try:
        result = await run_in_threadpool(_ingest, service, request.app.state.campaigns,
                                         request.app.state.events, events)
    except InvalidEvents as err:
        errors = [{"field": e.path, "message": e.message} for e in err.errors[:100]]
        return JSONResponse({"detail": str(err), "field": errors[0]["field"], "errors": errors}, status_code=422)
    audit.record(who, "events.append", accepted=result.accepted, duplicates=result.duplicates)
    return json_response({"accepted": result.accepted, "duplicates": result.duplicates,
                          "graph_pending": result.graph_pending})
