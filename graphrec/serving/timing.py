"""The parts of a request's time, for its ``Server-Timing`` header: what a slow request spent on.

The API opens a record per request (:func:`record`); serving code times its parts with
:func:`part` (the graph database, the wait for the writers' lock, the in-memory update, ranking,
explanations). A record is a dict held in a context variable, so a handler that runs in a worker
thread (which gets a copy of the request's context) adds to the same dict. Outside a request
(commands, tests) :func:`part` costs one context-variable read.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

_RECORD: ContextVar[dict[str, float] | None] = ContextVar("graphrec_server_timing", default=None)


def record() -> dict[str, float]:
    """Start the current request's record: part name -> milliseconds."""
    parts: dict[str, float] = {}
    _RECORD.set(parts)
    return parts


@contextmanager
def part(name: str) -> Iterator[None]:
    """Add the time spent in the block to the request's ``name`` part (summed if repeated)."""
    parts = _RECORD.get()
    if parts is None:
        yield
        return
    t0 = time.perf_counter()
    try:
        yield
    finally:
        parts[name] = parts.get(name, 0.0) + (time.perf_counter() - t0) * 1000
