"""Live writes: new users, interactions, friendships and products, recommendable at once."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status

from api.deps import AuditDep, ServiceDep, Writer
from api.errors import ApiError
from api.schemas import ErrorOut, NewInteractions, NewProduct, NewSocial, NewUser, UserCreated, Written
from graphrec.serving.writes import Interaction

router = APIRouter(tags=["cold start"])

ERRORS = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_user(service: ServiceDep, body: NewUser, who: Writer, audit: AuditDep) -> dict:
    """Write the user, their friendships and interactions to Neo4j; they are recommendable at once."""
    interactions = [Interaction(i.product_id, i.kind.value, _iso(i.ts), i.weight) for i in body.interactions]
    source = service.create_user(body.user_id, body.name, body.friends, body.categories, interactions,
                                 body.follows)
    audit.record(who, "users.create", user_id=body.user_id, friends=len(body.friends),
                 follows=len(body.follows), interactions=len(interactions))
    return {"user_id": body.user_id, "source": source,
            "recommendations_url": f"/users/{body.user_id}/recommendations"}


@router.post("/interactions", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def add_interaction(service: ServiceDep, body: NewInteractions, who: Writer, audit: AuditDep) -> dict:
    """A purchase, view or rating; the user's next recommendations reflect it."""
    n = service.add_interactions(body.user_id, [Interaction(body.product_id, body.kind.value, _iso(body.ts),
                                                            body.weight)])
    audit.record(who, "interactions.create", user_id=body.user_id, product_id=body.product_id, kind=body.kind.value)
    return {"written": n}


@router.post("/social", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def add_social(service: ServiceDep, body: NewSocial, who: Writer, audit: AuditDep) -> dict:
    """A friendship (undirected) or a follow; both users' next recommendations reflect it."""
    if body.user_id == body.other_user_id:
        raise ApiError(422, "other_user_id: a user cannot befriend or follow themselves", "other_user_id")
    written = service.add_social(body.user_id, body.other_user_id, body.kind.value)
    audit.record(who, "social.create", user_id=body.user_id, other_user_id=body.other_user_id, kind=body.kind.value)
    return {"written": written}


@router.post("/products", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_product(service: ServiceDep, body: NewProduct, who: Writer, audit: AuditDep) -> dict:
    """A new product in an existing category; recommendable at once from its category."""
    service.create_product(body.product_id, body.name, body.category_id, body.price, body.brand)
    audit.record(who, "products.create", product_id=body.product_id, category_id=body.category_id)
    return {"written": 1}
