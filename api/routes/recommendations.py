"""GET /users/{user_id}/recommendations: the model's list, filtered, with explanatory paths."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from api.deps import Reader, ServiceDep, json_response
from api.schemas import MAX_K, ErrorOut, PopularOut, RecommendationsOut
from graphrec.serving.recommender import Filters
from graphrec.serving.service import Recommendations, Service

router = APIRouter(tags=["recommendations"])


def parse_exclude(exclude: str | None) -> frozenset[str]:
    return frozenset(p.strip() for p in exclude.split(",") if p.strip()) if exclude else frozenset()


async def catch_up(service: Service) -> None:
    """While the graph index is missing (Neo4j was down), retry loading it off the event loop."""
    if service.reload_due():
        await run_in_threadpool(service.try_load_index)


def payload(result: Recommendations) -> dict:
    return {
        "user_id": result.user_id,
        "model": result.model,
        "source": result.source,
        "items": [{"product_id": i.product_id, "name": i.name, "score": i.score, "percentile": i.percentile,
                   "explanations": [e.to_dict() for e in i.explanations]} for i in result.items],
        "warnings": result.warnings,
    }


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationsOut,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def recommendations(
    service: ServiceDep,
    who: Reader,
    user_id: Annotated[str, Path(min_length=1, max_length=200)],
    k: Annotated[int, Query(ge=1, le=MAX_K, description="How many products")] = 10,
    explain: Annotated[bool, Query(description="Add 1-3 explanations with graph paths per item")] = True,
    category: Annotated[str | None, Query(max_length=200, description="Only products in this category (id or name)")] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    exclude: Annotated[str | None, Query(max_length=10_000, description="Comma-separated product ids to leave out")] = None,
    fallback: Annotated[Literal["popular"] | None, Query(description="For an unknown user: the popular list instead of 404")] = None,
):
    """Top-k products for the user, already-bought ones excluded, ties broken by product id.

    Runs on the event loop: it is ~1 ms of in-memory work (no Neo4j round trip), cheaper than a
    hop to a worker thread."""
    await catch_up(service)
    filters = Filters(category=category, min_price=min_price, max_price=max_price, exclude=parse_exclude(exclude))
    result = service.recommend(user_id, k, filters, explain=explain, fallback=fallback, reload=False)
    return json_response(payload(result))


@router.get("/products/popular", response_model=PopularOut)
async def popular(
    service: ServiceDep,
    who: Reader,
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    category: Annotated[str | None, Query(max_length=200)] = None,
) -> dict:
    """The non-personalised baseline: products with the most training interactions."""
    items = service.popular(k, Filters(category=category))
    return {"model": service.artifact.model,
            "items": [{"product_id": i.product_id, "name": i.name, "score": i.score, "percentile": i.percentile}
                      for i in items]}
