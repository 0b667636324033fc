"""Dependencies shared by the routes: the service, keys with roles, rate limits, the audit log."""

from __future__ import annotations

import json
from typing import Annotated, Callable, Coroutine, Any

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyHeader

from api.errors import ApiError
from graphrec.serving.analyst import NamedQuery
from graphrec.serving.auth import AuditLog, AuthError, Principal, RateLimited, Role
from graphrec.serving.service import Service

# Shown in OpenAPI as the security scheme; auto_error=False so that our own 401/403 speak.
api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="An API key; its roles decide which endpoints it may call")


# Dependencies are ``async def`` though they never await: FastAPI runs a plain ``def`` dependency
# in a worker thread, a hop that costs more than the whole recommendation on a busy 2-core machine.
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_queries(request: Request) -> dict[str, NamedQuery]:
    return request.app.state.queries


async def get_audit(request: Request) -> AuditLog:
    return request.app.state.audit


def require(role: Role, *, rate_limited: bool = False) -> Callable[..., Coroutine[Any, Any, Principal]]:
    """A dependency: the caller's :class:`Principal` if their key has ``role`` (401/403 if not);
    ``rate_limited`` spends a token of the key's bucket (429 with Retry-After when empty)."""

    async def dependency(request: Request, key: Annotated[str | None, Depends(api_key_header)] = None) -> Principal:
        try:
            principal = request.app.state.keys.authorize(key, role)
            if rate_limited:
                request.app.state.query_limiter.take(principal.name)
        except AuthError as err:
            raise ApiError(err.status, err.message, field="X-API-Key") from None
        except RateLimited as err:
            raise ApiError(429, str(err), headers={"Retry-After": str(max(1, round(err.retry_after + 0.5)))}) from None
        return principal

    dependency.__name__ = f"require_{role.value}"
    return dependency


ServiceDep = Annotated[Service, Depends(get_service)]
QueriesDep = Annotated[dict[str, NamedQuery], Depends(get_queries)]
AuditDep = Annotated[AuditLog, Depends(get_audit)]
Reader = Annotated[Principal, Depends(require(Role.READER))]
Writer = Annotated[Principal, Depends(require(Role.WRITER))]
Marketer = Annotated[Principal, Depends(require(Role.MARKETER))]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST, rate_limited=True))]
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]


def json_response(content: dict, status_code: int = 200) -> Response:
    """JSON for the hot paths, serialised once without re-validation against the response model
    (which still documents it in OpenAPI; tests validate real responses against it)."""
    return Response(json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False),
                    media_type="application/json", status_code=status_code)
