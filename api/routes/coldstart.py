"""Live writes: new users, interactions, friendships and products, recommendable at once."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, status

from api.deps import ServiceDep
from api.errors import ApiError
from api.schemas import ErrorOut, NewInteractions, NewProduct, NewSocial, NewUser, UserCreated, Written
from graphrec.serving.writes import Interaction

router = APIRouter(tags=["cold start"])

ERRORS = {404: {"model": ErrorOut}, 409: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}}


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


@router.post("/users", response_model=UserCreated, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_user(service: ServiceDep, body: NewUser) -> dict:
    """Write the user, their friendships and interactions to Neo4j; they are recommendable at once."""
    interactions = [Interaction(i.product_id, i.kind.value, _iso(i.ts), i.weight) for i in body.interactions]
    source = service.create_user(body.user_id, body.name, body.friends, body.categories, interactions,
                                 body.follows)
    return {"user_id": body.user_id, "source": source,
            "recommendations_url": f"/users/{body.user_id}/recommendations"}


@router.post("/interactions", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def add_interaction(service: ServiceDep, body: NewInteractions) -> dict:
    """A purchase, view or rating; the user's next recommendations reflect it."""
    n = service.add_interactions(body.user_id, [Interaction(body.product_id, body.kind.value, _iso(body.ts),
                                                            body.weight)])
    return {"written": n}


@router.post("/social", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def add_social(service: ServiceDep, body: NewSocial) -> dict:
    """A friendship (undirected) or a follow; both users' next recommendations reflect it."""
    if body.user_id == body.other_user_id:
        raise ApiError(422, "other_user_id: a user cannot befriend or follow themselves", "other_user_id")
    return {"written": service.add_social(body.user_id, body.other_user_id, body.kind.value)}


@router.post("/products", response_model=Written, status_code=status.HTTP_201_CREATED, responses=ERRORS)
def create_product(service: ServiceDep, body: NewProduct) -> dict:
    """A new product in an existing category; recommendable at once from its category."""
    service.create_product(body.product_id, body.name, body.category_id, body.price, body.brand)
    return {"written": 1}
