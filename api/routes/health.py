"""GET /health: model version, graph counts, whether Neo4j answers."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import ServiceDep
from api.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
def health(service: ServiceDep) -> dict:
    """Always 200 while the process serves; ``status`` is "degraded" when Neo4j is unreachable."""
    return service.health()
