"""Keep a training process's freed memory for its next step.

A full-graph training step allocates and frees the same large tensors every step (embeddings
propagated per layer, their gradients, the batch's score matrix). glibc serves each allocation over
its mmap threshold with a fresh mapping and hands it back to the kernel on free, so every step
faults gigabytes back in, zero-filled page by page: at a million users that was 45% of a step's
CPU time, in the kernel. Serving them from the heap and never trimming it lets each step reuse the
last one's pages, at the price of a higher peak RSS (measured in docs/scale.md).
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameters (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4


def retain_freed_memory() -> bool:
    """Serve every allocation from the heap and never shrink it; False where the C library is not
    glibc (nothing changed then)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # -1: "disables trimming completely" (mallopt(3)); 0 mappings: no allocation bypasses the heap.
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, -1))
