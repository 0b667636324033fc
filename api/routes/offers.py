"""GET /users/{user_id}/offers: what to show the user now, from their treatment campaigns, capped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Reader, ServiceDep, json_response
from api.routes.recommendations import catch_up
from api.schemas import ErrorOut, OffersOut
from graphrec.campaigns.offers import offer_payload, offers_for

router = APIRouter(tags=["campaigns"])


@router.get("/users/{user_id}/offers", response_model=OffersOut,
            responses={422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def offers(
    request: Request,
    service: ServiceDep,
    who: Reader,
    user_id: Annotated[str, Path(min_length=1, max_length=200)],
    k: Annotated[int, Query(ge=1, le=20, description="At most this many offers")] = 3,
):
    """For each active campaign with the user in treatment, its promoted products the model ranks
    best for them, with the offer and explanatory graph paths; at most ``k``, within the per-user
    caps of the UTC day (each campaign's and the global one). A user in no audience gets an empty
    list; control users get none from that campaign (``control_campaigns`` lists them).

    On the event loop: memory only (campaign registry, cap counter, model, graph index)."""
    await catch_up(service)
    registry = request.app.state.campaigns
    if registry.reload_due():
        await run_in_threadpool(registry.try_load, service.driver, service.database)
    result = offers_for(service, registry, request.app.state.offer_caps, user_id, k)
    return json_response(offer_payload(result, service.index.product_price))
