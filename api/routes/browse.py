"""Read-only look-ups for people browsing the graph (the /ui dashboard uses them; Reader role).

``GET /users?q=`` finds users by id or name, ``GET /users/{id}`` gives a user's friends and
recent purchases, ``GET /names`` turns the ids of an explanation path into names, and ``GET /model``
describes the loaded model with the metrics stored in its artifact. All are answered from the
in-memory graph index and the artifact: no Neo4j round trip, and they keep answering while Neo4j is
down (once the index was loaded).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from api.deps import Reader, ServiceDep, json_response
from api.routes.recommendations import catch_up
from api.schemas import ErrorOut, FriendOut, ModelInfo
from graphrec.serving.graph_index import GraphIndex
from graphrec.serving.service import Service, UnknownId

router = APIRouter(tags=["browse"], responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                                               503: {"model": ErrorOut}})

MAX_NAMES = 200


class UserHit(BaseModel):
    user_id: str
    name: str | None
    friends: int
    purchases: int


class UserSearchOut(BaseModel):
    users: list[UserHit]


class PurchaseOut(BaseModel):
    product_id: str
    name: str | None
    ts: datetime | None = Field(description="When, if the graph knows")


class UserProfileOut(BaseModel):
    user_id: str
    name: str | None
    friend_count: int
    follow_count: int = Field(description="Users they follow who are not also friends")
    purchase_count: int
    friends: list[FriendOut]
    follows: list[FriendOut]
    purchases: list[PurchaseOut] = Field(description="Most recent first")


class NamesOut(BaseModel):
    users: dict[str, str]
    products: dict[str, str]
    categories: dict[str, str]


class ModelCardOut(ModelInfo):
    categories: int
    dim: int
    config: dict[str, Any]
    metrics: dict[str, Any] = Field(description="As saved by training: best_epoch, valid, test (when computed), ...")


async def _index(service: Service) -> GraphIndex:
    await catch_up(service)
    return service.graph_index(reload=False)  # 503 while the graph was never loaded


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def search_users(index: GraphIndex, q: str, limit: int) -> list[dict[str, Any]]:
    """The exact id first, then ids starting with ``q``, then names containing it (case-insensitive);
    each group in id order."""
    return [{"user_id": u, "name": index.user_name(u), "friends": len(index.friends(u)),
             "purchases": len(index.bought(u))} for u in index.search_users(q, limit)]


@router.get("/users", response_model=UserSearchOut)
async def find_users(
    service: ServiceDep,
    who: Reader,
    q: Annotated[str, Query(min_length=1, max_length=200, description="A user id, the start of one, or part of a name")],
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
):
    """Users whose id is or starts with ``q``, or whose name contains it."""
    # The first search of a read decodes every user's id and name (a second at a million users):
    # in a worker thread, so the event loop keeps answering other requests meanwhile.
    return json_response({"users": await run_in_threadpool(search_users, await _index(service), q, limit)})


@router.get("/users/{user_id}", response_model=UserProfileOut, responses={404: {"model": ErrorOut}})
async def profile(
    service: ServiceDep,
    who: Reader,
    user_id: Annotated[str, Path(min_length=1, max_length=200)],
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many friends and purchases")] = 50,
):
    """The user's name, friends (FRIEND either way, then the users they FOLLOW) and purchases, most
    recent first (purchases without a time last, by product id)."""
    index = await _index(service)
    if not index.has_user(user_id):
        raise UnknownId("user_id", f"user {user_id!r} is not in the graph")
    friends = sorted(index.friends(user_id))
    follows = sorted(index.follows(user_id) - set(friends))
    bought = index.bought(user_id)
    recent = sorted(bought.items(), key=lambda kv: (kv[1] is None, -(kv[1] or 0.0), kv[0]))
    return json_response({
        "user_id": user_id, "name": index.user_name(user_id),
        "friend_count": len(friends), "follow_count": len(follows), "purchase_count": len(bought),
        "friends": [{"user_id": f, "name": index.user_name(f)} for f in friends[:limit]],
        "follows": [{"user_id": f, "name": index.user_name(f)} for f in follows[:limit]],
        "purchases": [{"product_id": p, "name": index.product_name(p), "ts": _iso(ts)}
                      for p, ts in recent[:limit]],
    })


@router.get("/names", response_model=NamesOut)
async def names(
    service: ServiceDep,
    who: Reader,
    user: Annotated[list[str], Query(max_length=MAX_NAMES, description="User ids (repeat the parameter)")] = [],  # noqa: B006
    product: Annotated[list[str], Query(max_length=MAX_NAMES, description="Product ids")] = [],  # noqa: B006
    category: Annotated[list[str], Query(max_length=MAX_NAMES, description="Category ids")] = [],  # noqa: B006
):
    """Display names of the nodes of explanation paths: the name, or "user 42" when it has none;
    ids the graph does not know are left out."""
    index = await _index(service)
    return json_response({
        "users": {u: index.user_label(u) for u in user if index.has_user(u)},
        "products": {p: index.product_label(p) for p in product if index.has_product(p)},
        "categories": {c: index.category_label(c) for c in category if index.has_category(c)},
    })


@router.get("/model", response_model=ModelCardOut)
async def model_card(service: ServiceDep, who: Reader):
    """The loaded model: kind, snapshot, size, training configuration and the metrics saved in its
    artifact by ``graphrec train`` (validation and, when computed, test)."""
    artifact = service.artifact
    manifest = artifact.manifest
    return json_response({
        "kind": artifact.model, "snapshot_id": artifact.snapshot_id,
        "created_at": manifest.get("created_at"), "format_version": manifest.get("format_version"),
        "users": len(artifact.user_ids), "products": len(artifact.product_ids),
        "categories": len(artifact.category_ids), "dim": int(artifact.user_emb.shape[1]),
        "config": manifest.get("config") or {}, "metrics": artifact.metrics,
    })
