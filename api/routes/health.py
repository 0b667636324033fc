"""GET /health: model version, graph counts, whether Neo4j answers."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter

from api.deps import ServiceDep, json_response
from api.schemas import HealthOut
from graphrec.serving.service import Service

router = APIRouter(tags=["health"])

# Health probes get their own thread: when every request worker is busy, /health still answers.
_PROBE = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphrec-health")
PROBE_TIMEOUT_S = 1.5


async def neo4j_reachable(service: Service) -> bool:
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.run_in_executor(_PROBE, service.breaker.reachable), PROBE_TIMEOUT_S)
    except asyncio.TimeoutError:
        return False


@router.get("/health", response_model=HealthOut)
async def health(service: ServiceDep):
    """Always 200 while the process serves, within about a second; ``status`` is "degraded" when
    Neo4j is unreachable. Open to everyone (it names no user)."""
    up = await neo4j_reachable(service)
    if up and service.reload_due():
        await asyncio.get_running_loop().run_in_executor(_PROBE, service.try_load_index)
    return json_response(service.health(up))
