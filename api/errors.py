"""Errors as clients see them: a status, one clear sentence, the field at fault; never internals.

Stack traces and Neo4j's messages (which can quote Cypher, ids, server paths) go to the server log
only; the client gets a generic 500. Neo4j being down is a 503 that says so.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrec.serving.analyst import QueryParamError
from graphrec.serving.db import GraphUnavailable
from graphrec.serving.service import UnknownId
from graphrec.serving.writes import AlreadyExists, MissingNodes
from graphrec.store.query import QueryRefused, Refusal

log = logging.getLogger("graphrec.api")


class ApiError(Exception):
    def __init__(self, status: int, detail: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers


def _error(status: int, detail: str, field: str | None = None, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if field is not None:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    """("body", "friends", 0) -> "friends[0]"; ("query", "k") -> "k"."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(loc[0] if loc else "body")


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.detail, exc.field, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return _error(422, f"{first['field']}: {first['message']}", first["field"], errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(UnknownId)
    async def unknown(_: Request, exc: UnknownId) -> JSONResponse:
        return _error(404, exc.message, exc.field)

    @app.exception_handler(MissingNodes)
    async def missing(_: Request, exc: MissingNodes) -> JSONResponse:
        field, ids = next(iter(exc.missing.items()))
        return _error(404, f"{field}: not in the graph: {', '.join(ids[:10])}", field)

    @app.exception_handler(AlreadyExists)
    async def exists(_: Request, exc: AlreadyExists) -> JSONResponse:
        return _error(409, str(exc))

    @app.exception_handler(QueryParamError)
    async def bad_param(_: Request, exc: QueryParamError) -> JSONResponse:
        return _error(422, exc.message, f"params.{exc.field}")

    @app.exception_handler(QueryRefused)
    async def refused(_: Request, exc: QueryRefused) -> JSONResponse:
        # QueryRefused.reason is written to be shown: the first line of Neo4j's message at most.
        status = {Refusal.FORBIDDEN: 403, Refusal.TIMEOUT: 408, Refusal.TOO_LARGE: 413,
                  Refusal.OVER_MEMORY: 422}.get(exc.kind, 400)
        return _error(status, exc.reason, "query", refusal=exc.kind.value)

    @app.exception_handler(GraphUnavailable)
    async def unavailable(_: Request, exc: GraphUnavailable) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _error(500, "internal error; the server log has the details")


class BodyLimit:
    """Reject request bodies over ``max_bytes`` with 413, by Content-Length or while streaming.

    A chunked body (no Content-Length) is only found too big while the app reads it. Raising from
    ``receive`` stops the read, but whatever the app makes of that error (FastAPI answers 400,
    "error parsing the body") must not reach the client: once the limit is passed, every response
    the app starts is replaced by this 413, and an error escaping the app becomes the 413 too."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    await self._reject(send)
                    return
        seen = 0
        over = False
        started = False

        async def limited() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    over = True
                    raise _BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                if message["type"] == "http.response.start" and not started:
                    started = True
                    await self._reject(send)
                return  # the app's own answer to the aborted read is dropped
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, guarded_send)
        except Exception:
            if not over:
                raise
            if not started:
                await self._reject(send)

    async def _reject(self, send: Send) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes", "field": "body"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(Exception):
    """Raised from ``receive`` to stop the app reading a body over the limit (see :class:`BodyLimit`)."""
