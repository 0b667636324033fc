"""Handing a read of the graph from the reader process to the service without copying its arrays.

The reader pickles its answer with protocol 5, keeping every numpy buffer out of band, and writes
those buffers into one file after each other (aligned), the pickle last. The service maps the file
read-only and unpickles over the mapping: numpy builds its arrays on the mapped pages, so taking
a read of hundreds of megabytes costs the service's interpreter (and its requests, which share the
GIL) no copy at all, and the arrays cannot be written in place. The file is unlinked as soon as it
is mapped; the mapping keeps its pages for as long as an array uses them.
"""

from __future__ import annotations

import mmap
import os
import pickle
import tempfile
from typing import Any

ALIGN = 64  # bytes; every buffer starts on a cache line, so no array is misaligned


def dump(obj: Any) -> str:
    """Write ``obj`` to a new temporary file; its path, for :func:`load` (which removes it)."""
    buffers: list[pickle.PickleBuffer] = []
    meta = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    fd, path = tempfile.mkstemp(prefix="graphrec-read-", suffix=".bin")
    spans = []
    with os.fdopen(fd, "wb") as out:
        for buffer in buffers:
            raw = buffer.raw()
            out.write(b"\0" * (-out.tell() % ALIGN))
            spans.append((out.tell(), raw.nbytes))
            out.write(raw)
        trailer = pickle.dumps((meta, spans), protocol=5)
        out.write(trailer)
        out.write(len(trailer).to_bytes(8, "little"))
    return path


def load(path: str) -> Any:
    """The object :func:`dump` wrote, its arrays on a read-only mapping of the file; removes the file."""
    try:
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    finally:
        os.unlink(path)
    view = memoryview(mapped)
    size = int.from_bytes(view[-8:], "little")
    meta, spans = pickle.loads(view[-8 - size:-8])
    return pickle.loads(meta, buffers=[view[at:at + n] for at, n in spans])
