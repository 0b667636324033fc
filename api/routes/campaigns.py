"""Campaigns: POST/GET /campaigns, GET /campaigns/{id}, GET /campaigns/{id}/audience (Marketer role)."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any, Iterator, Literal

from fastapi import APIRouter, Path, Query, Request
from neo4j import Driver
from neo4j.exceptions import ServiceUnavailable, SessionExpired
from starlette.concurrency import run_in_threadpool

from api.deps import AuditDep, Marketer, ServiceDep, json_response
from api.errors import ApiError
from api.schemas import AudiencePage, CampaignList, CampaignOut, ErrorOut
from graphrec.campaigns import store
from graphrec.campaigns.model import Campaign, CampaignSpec
from graphrec.campaigns.registry import Registry
from graphrec.campaigns.targeting import launch_campaign
from graphrec.serving.db import GraphUnavailable
from graphrec.serving.service import Service

router = APIRouter(tags=["campaigns"])

CampaignIdPath = Annotated[str, Path(min_length=1, max_length=200)]


@contextmanager
def graph(service: Service) -> Iterator[Driver]:
    """The driver, with Neo4j being unreachable reported as 503."""
    if service.driver is None:
        raise GraphUnavailable("the graph database (Neo4j) is not configured")
    try:
        yield service.driver
    except (ServiceUnavailable, SessionExpired, OSError):
        raise GraphUnavailable("the graph database (Neo4j) is unavailable right now; try again later") from None


def campaign_json(campaign: Campaign, now: datetime | None = None) -> dict[str, Any]:
    out = campaign.model_dump(mode="json")
    out["active"] = campaign.active(now or datetime.now(timezone.utc))
    return out


def registry_of(request: Request) -> Registry:
    return request.app.state.campaigns


def _create(service: Service, spec: CampaignSpec) -> tuple[Campaign, list]:
    with graph(service) as driver:
        try:
            store.get_campaign(driver, spec.campaign_id, database=service.database)
        except store.UnknownCampaign:
            pass
        else:  # before targeting, which can take a while on a large graph
            raise store.CampaignExists(f"campaign_id: campaign {spec.campaign_id!r} already exists")
        try:
            return launch_campaign(driver, spec, artifact=service.artifact, database=service.database)
        except store.UnknownReference as err:
            raise ApiError(422, err.message, err.field) from None


@router.post("/campaigns", status_code=201, response_model=CampaignOut,
             responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 409: {"model": ErrorOut},
                        422: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def create(spec: CampaignSpec, service: ServiceDep, who: Marketer, audit: AuditDep, request: Request):
    """Create a campaign: resolve the promoted products, choose the audience by its policy, split it
    into treatment and control (deterministic hash of salt and user id) and store it all in Neo4j
    in one transaction. 201 with the campaign and the audience counts per variant."""
    campaign, members = await run_in_threadpool(_create, service, spec)
    registry_of(request).add(campaign, members)
    audit.record(who, "campaigns.create", campaign_id=campaign.campaign_id, counts=campaign.counts,
                 policy=campaign.audience.policy)
    return json_response(campaign_json(campaign), status_code=201)


def _list(service: Service) -> list[Campaign]:
    with graph(service) as driver:
        return store.list_campaigns(driver, database=service.database)


@router.get("/campaigns", response_model=CampaignList, responses={503: {"model": ErrorOut}})
async def list_all(service: ServiceDep, who: Marketer, request: Request):
    """Every campaign, newest first. Campaigns created elsewhere (the CLI) reach the offers too."""
    campaigns = await run_in_threadpool(_list, service)
    registry = registry_of(request)
    if any(registry.get(c.campaign_id) is None for c in campaigns):
        await run_in_threadpool(registry.try_load, service.driver, service.database)
    now = datetime.now(timezone.utc)
    return json_response({"campaigns": [campaign_json(c, now) for c in campaigns]})


def _get(service: Service, campaign_id: str) -> Campaign:
    with graph(service) as driver:
        return store.get_campaign(driver, campaign_id, database=service.database)


@router.get("/campaigns/{campaign_id}", response_model=CampaignOut,
            responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def show(campaign_id: CampaignIdPath, service: ServiceDep, who: Marketer):
    return json_response(campaign_json(await run_in_threadpool(_get, service, campaign_id)))


def _page(service: Service, campaign_id: str, variant: str | None, cursor: str | None,
          limit: int) -> tuple[list[str], str | None]:
    with graph(service) as driver:
        return store.audience_page(driver, campaign_id, variant, cursor, limit, database=service.database)


@router.get("/campaigns/{campaign_id}/audience", response_model=AudiencePage,
            responses={404: {"model": ErrorOut}, 503: {"model": ErrorOut}})
async def audience(
    campaign_id: CampaignIdPath,
    service: ServiceDep,
    who: Marketer,
    variant: Annotated[Literal["treatment", "control"] | None, Query(description="Only this variant")] = None,
    cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
):
    """The audience by user id, a page at a time."""
    ids, next_cursor = await run_in_threadpool(_page, service, campaign_id, variant, cursor, limit)
    return json_response({"user_ids": ids, "next_cursor": next_cursor})
