"""DELETE /users/{user_id}: erase a user everywhere GraphRec keeps them (admin only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from api.deps import Admin, AuditDep, ServiceDep
from api.errors import ApiError
from api.schemas import Erased, ErrorOut

router = APIRouter(tags=["privacy"])


@router.delete("/users/{user_id}", response_model=Erased,
               responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut}, 404: {"model": ErrorOut},
                          503: {"model": ErrorOut}})
def erase_user(request: Request, service: ServiceDep, who: Admin, audit: AuditDep,
               user_id: Annotated[str, Path(min_length=1, max_length=200)]) -> dict:
    """The user's node and every relationship in Neo4j, their row in the loaded model, the serving
    index (explanations naming them as a friend disappear at once), and every other store that
    registered an erasure hook (campaign events and served offers). Idempotent: erasing again
    answers 404 and changes nothing."""
    existed = service.erase_user(user_id)
    erased = {"graph": int(existed)}
    for name, hook in request.app.state.erasure_hooks.items():
        erased[name] = int(hook(user_id))
    audit.record(who, "users.erase", user_id=user_id, erased=erased)
    if not any(erased.values()):
        raise ApiError(404, f"user {user_id!r} is not known to GraphRec", "user_id")
    return {"user_id": user_id, "erased": erased}
