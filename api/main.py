"""The FastAPI application: ``create_app(settings, artifact_path)``; ``graphrec serve`` runs it.

The artifact is loaded and the graph index read once, here; the app never trains. Neo4j may be
down at startup: the app still starts and serves model-only recommendations (see
:class:`graphrec.serving.service.Service`).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator, Iterator

from fastapi import FastAPI

from api import errors
from api.timing import ServerTiming
from api.routes import campaigns, events, offers, reports
from api.routes import browse, coldstart, graph, health, privacy, promos, recommendations, ui
from graphrec import __version__
from graphrec.campaigns.events import EventStore
from graphrec.campaigns.offers import Caps
from graphrec.campaigns.offers import erase_user as erase_campaign_user
from graphrec.campaigns.registry import Registry
from graphrec.config import Settings
from graphrec.serving.analyst import ANALYST_DIR, load_queries
from graphrec.serving.auth import AuditLog, KeyRing, RateLimiter
from graphrec.serving.blas import limit_blas_threads
from graphrec.serving.service import Service

log = logging.getLogger("graphrec.api")

MAX_BODY_BYTES = 256 * 1024
# Explained recommendations run on the event loop (a few ms of numpy and Python each); writes run in
# worker threads and need the GIL back after every Neo4j round trip. With Python's default 5 ms
# switch interval each of those hand-backs can wait 5 ms behind the loop; 1 ms cut the soak's read
# and write p99 by 2-3x (bench/soak.py, alternating A/B runs).
GIL_SWITCH_S = 0.001
# A garbage collection holds the GIL for its whole pass, i.e. it stalls every request: one longer
# than this is logged (with its generation), so a latency spike in the service's log has a name.
SLOW_GC_S = 0.05
_gc_started: list[float] = []


@contextlib.contextmanager
def slow_collections_logged() -> Iterator[None]:
    """Log every garbage collection slower than SLOW_GC_S while ``graphrec serve`` runs. The hook
    is removed when serving ends: left in place, it ran in the interpreter's final collections and
    those then left objects alive (DuckDB connections, reported as "nanobind: leaked" at exit)."""
    gc.callbacks.append(_log_slow_collections)
    try:
        yield
    finally:
        gc.callbacks.remove(_log_slow_collections)


def _log_slow_collections(phase: str, info: dict) -> None:
    if phase == "start":
        _gc_started[:] = [time.perf_counter()]
    elif _gc_started:
        took = time.perf_counter() - _gc_started.pop()
        if took > SLOW_GC_S:
            log.warning("garbage collection of generation %d took %.2f s (%d objects collected)",
                        info.get("generation", -1), took, info.get("collected", 0))


def create_app(settings: Settings, artifact_path: str | Path, *, service: Service | None = None,
               analyst_dir: Path = ANALYST_DIR, max_body_bytes: int = MAX_BODY_BYTES,
               refresh_s: float = 0.0) -> FastAPI:
    """The app over the artifact at ``artifact_path`` (or an already opened ``service``).

    ``refresh_s`` > 0 re-reads the in-memory graph index that often, for graphs that also change
    behind the service's back (a new ``graphrec load``); its own writes never need it."""
    limit_blas_threads(1)
    sys.setswitchinterval(GIL_SWITCH_S)
    # A service that refreshes reads the graph in a child process: reloads then cost requests
    # almost nothing (see graphrec.serving.reader).
    service = service or Service.open(settings, artifact_path, read_in_process=refresh_s > 0)
    # Promotions: campaigns in memory (the offers path never waits on Neo4j), the DuckDB event log
    # and the per-user-per-day offer counter over it.
    campaign_registry = Registry()
    campaign_registry.try_load(service.driver, service.database)
    event_store = EventStore.try_open(settings.events_path)
    offer_caps = Caps(event_store, settings.offers_per_user_per_day)

    async def refresh_forever() -> None:
        # The reload runs in its own thread, off to the side: requests and writes never wait on it.
        # It reads the graph only when someone else wrote to it (Service.refresh).
        while True:
            await asyncio.sleep(refresh_s)
            await asyncio.to_thread(service.refresh)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(refresh_forever()) if refresh_s > 0 else None
        campaign_registry.watch(service.driver, service.database)  # campaigns created by the CLI, too
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        campaign_registry.close()
        service.close()
        offer_caps.close()
        if event_store is not None:
            event_store.close()

    app = FastAPI(
        title="GraphRec",
        version=__version__,
        description="Recommendations with explanatory graph paths, live cold start, friends-bought "
                    "promotions and read-only analyst queries over the GraphRec Neo4j graph.",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # /docs is served from local files (api.routes.ui); no ReDoc
    )
    app.state.settings = settings
    app.state.service = service
    app.state.queries = load_queries(analyst_dir)
    app.state.keys = KeyRing.from_settings(settings)
    app.state.query_limiter = RateLimiter(settings.query_rate, settings.query_burst)
    app.state.audit = AuditLog(settings.audit_path)
    app.state.campaigns, app.state.events, app.state.offer_caps = campaign_registry, event_store, offer_caps
    # Stores beside the graph that hold user data register here; DELETE /users/{id} calls each.
    app.state.erasure_hooks = {
        "events": lambda user_id: erase_campaign_user(user_id, store=event_store, caps=offer_caps,
                                                      registry=campaign_registry)}
    errors.install(app)
    app.add_middleware(events.BodyLimits, max_bytes=max_body_bytes)  # /events allows larger batches
    app.add_middleware(ServerTiming)  # outermost: the whole app's time, limits and errors included
    for module in (health, recommendations, promos, coldstart, graph, privacy, campaigns, offers, events, reports,
                   browse):
        app.include_router(module.router)
    ui.install(app)  # the /ui dashboard and the offline /docs
    log.info("serving model %s (%s) from %s; %s", service.artifact.model, service.artifact.snapshot_id,
             artifact_path, "API keys configured" if app.state.keys.configured else
             "no API keys configured: reads are open, every write and analyst query is refused")
    return app
