"""Dependencies shared by the routes: the service, the analyst API key."""

from __future__ import annotations

import hmac
import json
from typing import Annotated

from fastapi import Depends, Header, Request, Response

from api.errors import ApiError
from graphrec.serving.analyst import NamedQuery
from graphrec.serving.service import Service


# Dependencies are ``async def`` though they never await: FastAPI runs a plain ``def`` dependency
# in a worker thread, a hop that costs more than the whole recommendation on a busy 2-core machine.
async def get_service(request: Request) -> Service:
    return request.app.state.service


async def get_queries(request: Request) -> dict[str, NamedQuery]:
    return request.app.state.queries


async def require_api_key(
    request: Request,
    x_api_key: Annotated[str | None, Header(alias="X-API-Key", description="The analyst API key")] = None,
) -> None:
    """Analyst endpoints: disabled without a configured key; the key compared in constant time."""
    configured = request.app.state.settings.api_key
    if configured is None or not configured.get_secret_value():
        raise ApiError(403, "analyst queries are disabled: no GRAPHREC_API_KEY is configured")
    if x_api_key is None:
        raise ApiError(401, "missing X-API-Key header", field="X-API-Key")
    if not hmac.compare_digest(x_api_key.encode(), configured.get_secret_value().encode()):
        raise ApiError(401, "invalid API key", field="X-API-Key")


ServiceDep = Annotated[Service, Depends(get_service)]
QueriesDep = Annotated[dict[str, NamedQuery], Depends(get_queries)]
ApiKey = Depends(require_api_key)


def json_response(content: dict) -> Response:
    """JSON for the hot paths, serialised once without re-validation against the response model
    (which still documents it in OpenAPI; tests validate real responses against it)."""
    return Response(json.dumps(content, ensure_ascii=False, separators=(",", ":"), allow_nan=False),
                    media_type="application/json")
