"""GET /users/{user_id}/promos/friends-bought: what friends bought and the user has not."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import Reader, ServiceDep, json_response
from api.routes.recommendations import catch_up
from api.schemas import MAX_K, ErrorOut, PromosOut

router = APIRouter(tags=["promotions"])


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


@router.get(
    "/users/{user_id}/promos/friends-bought",
    response_model=PromosOut,
    responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}, 503: {"model": ErrorOut}},
)
async def friends_bought(
    service: ServiceDep,
    who: Reader,
    user_id: Annotated[str, Path(min_length=1, max_length=200)],
    k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    since: Annotated[datetime | None, Query(description="Only purchases at or after this ISO date/time")] = None,
):
    """Ranked by distinct friends who bought, then most recent purchase, then model score."""
    await catch_up(service)
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    promos = service.friends_bought(user_id, k, since, reload=False)
    return json_response({"user_id": user_id, "items": [
        {"product_id": p.product_id, "name": p.name, "score": p.score,
         "friends": [{"user_id": f, "name": n} for f, n in p.friends], "friend_count": p.friend_count,
         "last_bought": _iso(p.last_bought), "text": p.text}
        for p in promos]})
