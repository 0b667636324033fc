"""``Server-Timing: app;dur=<ms>`` on every response: the time from the request reaching the app to
its response starting, so a client (or a load test on the same machine) can tell the server's share
of a latency from the network's and its own; then the parts serving timed
(:mod:`graphrec.serving.timing`: ``db``, ``lock``, ``mirror``, ``rank``, ``explain``)."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from graphrec.serving import timing


class ServerTiming:
    """Pure ASGI (no BaseHTTPMiddleware task hop): adds one header when the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        parts = timing.record()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                ms = (time.perf_counter() - started) * 1000
                value = ", ".join(f"{name};dur={dur:.2f}" for name, dur in [("app", ms), *parts.items()])
                message = {**message, "headers": [*message.get("headers", []), (b"server-timing", value.encode())]}
            await send(message)

        await self.app(scope, receive, timed)
