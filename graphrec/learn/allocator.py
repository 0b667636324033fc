"""Keep a training loop's freed memory for its next step.

A full-graph training step allocates and frees the same large tensors every step (embeddings
propagated per layer, their gradients, the batch's score matrix). glibc serves each allocation over
its mmap threshold with a fresh mapping and hands it back to the kernel on free, so every step
faults gigabytes back in, zero-filled page by page: at a million users that was 45% of a step's
CPU time, in the kernel. Serving them from the heap and never trimming it lets each step reuse the
last one's pages. The price is fragmentation, so only the training loop runs that way: afterwards
glibc's default limits are back and the free pages are handed back (measured in docs/scale.md).
"""

from __future__ import annotations

import ctypes
from contextlib import contextmanager
from typing import Any, Iterator

# glibc's mallopt parameters and their defaults (malloc.h, mallopt(3)).
M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD = -1, 128 * 1024
M_MMAP_MAX, DEFAULT_MMAP_MAX = -4, 65536


def _libc(name: str, argtypes: list[Any]) -> Any | None:
    """A function of the process's own C library, or None where it is not glibc."""
    try:
        fn = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    fn.argtypes, fn.restype = argtypes, ctypes.c_int
    return fn


@contextmanager
def freed_memory_kept() -> Iterator[bool]:
    """Within the block every allocation comes from the heap and the heap never shrinks; after it,
    glibc's default limits again and the heap's free pages returned to the kernel. (Two differences
    stay: once these are set, glibc's mmap threshold no longer adapts to the sizes freed, it keeps
    the value it had reached; and the free chunks the block left in the heap serve later requests
    that fit in them.) Yields False (and changes nothing) where the C library is not glibc."""
    mallopt, trim = _libc("mallopt", [ctypes.c_int, ctypes.c_int]), _libc("malloc_trim", [ctypes.c_size_t])
    if mallopt is None or trim is None:
        yield False
        return
    # 0 mappings: no allocation bypasses the heap; -1: "disables trimming completely" (mallopt(3)).
    mallopt(M_MMAP_MAX, 0)
    mallopt(M_TRIM_THRESHOLD, -1)
    try:
        yield True
    finally:
        mallopt(M_MMAP_MAX, DEFAULT_MMAP_MAX)
        mallopt(M_TRIM_THRESHOLD, DEFAULT_TRIM_THRESHOLD)
        trim(0)
