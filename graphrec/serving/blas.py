"""One BLAS thread per serving process.

Scoring one user is a small matrix-vector product (products x dim, ~0.05 ms on one core). OpenBLAS
splits it over every core by default; on a machine whose cores are busy (Neo4j, other requests,
anything else) the split waits for a free core and one product takes milliseconds. A service gets
its parallelism from concurrent requests, so it pins BLAS to one thread. ``OPENBLAS_NUM_THREADS=1``
does the same when set before numpy loads; this works after.
"""

from __future__ import annotations

import ctypes
import logging

log = logging.getLogger("graphrec.serving")

_SETTERS = ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads")


def limit_blas_threads(threads: int = 1) -> bool:
    """Set the thread count of every OpenBLAS loaded in this process; False if none was found."""
    import numpy  # noqa: F401  (loads numpy's OpenBLAS)

    done = False
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line}
    except OSError:  # not Linux: leave the environment variables to do it
        return False
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(lib, name, None)
            if setter is not None:
                setter(ctypes.c_int(threads))
                done = True
                break
    if not done:
        log.info("no OpenBLAS found to limit; set OPENBLAS_NUM_THREADS=1 for steady latency")
    return done
