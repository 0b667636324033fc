"""GET /campaigns/{id}/report: the measured result of a campaign (Marketer role).

Per variant the funnel and the money, the lift of treatment over control on conversion and on
revenue per user with 95% intervals and p-values, the sample-ratio check and the segments; see
:mod:`graphrec.campaigns.report` for every rule.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.deps import Marketer, ServiceDep, json_response
from api.errors import ApiError
from api.routes.campaigns import graph
from api.schemas import ErrorOut
from graphrec.campaigns.events import EventStore
from graphrec.campaigns.report import campaign_report
from graphrec.serving.db import GraphUnavailable
from graphrec.serving.service import Service

router = APIRouter(tags=["campaigns"])


def _report(service: Service, events: EventStore | None, campaign_id: str, min_group: int) -> dict[str, Any]:
    if events is None:
        raise GraphUnavailable("the event store is not open (its file is held by another process); "
                               "see the server log")
    with graph(service) as driver:
        return campaign_report(driver, events, campaign_id, database=service.database, min_group=min_group)


@router.get("/campaigns/{campaign_id}/report",
            responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                       422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def report(
    campaign_id: Annotated[str, Path(min_length=1, max_length=200)],
    service: ServiceDep,
    who: Marketer,
    request: Request,
    min_group: Annotated[int | None, Query(ge=1, le=1_000_000, description=(
        "Segments with fewer users than this in a variant are suppressed (privacy); never below the "
        "server's GRAPHREC_MIN_GROUP_SIZE, which is the default"))] = None,
):
    """The campaign's report: ``variants`` (users, exposed_users, impressions, clicks, buyers,
    purchases, revenue, cost, ctr, cvr, aov, roi), ``lift`` (cvr and revenue_per_user: absolute,
    relative, ci95, p_value), ``srm`` (p_value, ok), ``segments``, ``timeline`` and ``funnel``.
    Undefined ratios are null."""
    floor = request.app.state.settings.min_group_size
    if min_group is not None and min_group < floor:
        raise ApiError(422, f"min_group: at least {floor} (smaller groups are never shown)", "min_group")
    # An unknown campaign raises UnknownCampaign: 404 naming campaign_id.
    return json_response(await run_in_threadpool(_report, service, request.app.state.events, campaign_id,
                                                 min_group or floor))
