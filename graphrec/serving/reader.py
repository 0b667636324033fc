"""Reading the graph for the serving index: in the service's own thread, or in a process of its own.

A reload reads the whole graph (users, products, categories and their relations) every time into
flat arrays (:mod:`graphrec.serving.graph_arrays`), and, when the service's index is built on the
reader's previous read, also says which users and products differ from it
(:func:`graphrec.serving.graph_arrays.compare`, vectorised): the users to re-stamp and the products
to tell the recommender about.

:class:`ThreadReader` reads in the calling thread: simplest, right for one-shot commands and for
services that never refresh. :class:`ProcessReader` reads in a child process, for services that
refresh on a schedule (``graphrec serve --refresh-every``): decoding a whole graph from the driver
is a second or more of Python, and in a thread of the service it would hold the GIL away from
requests for that long (p99 latencies of over a second were measured with reloads every 5 s).
In a child process it costs the service only the mapping of a file (:mod:`graphrec.serving.transfer`):
the arrays are not even copied. The child runs at a lower CPU priority than the service.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from dataclasses import dataclass
from typing import Protocol

from neo4j import Driver
from neo4j.exceptions import ServiceUnavailable

from graphrec.config import Settings
from graphrec.serving import transfer
from graphrec.serving.graph_arrays import Changes, GraphArrays, compare
from graphrec.serving.graph_index import GraphIndex


# Nice increment of the reader process: on a busy machine the requests get the CPU first.
READER_NICENESS = 10
# A read that takes longer is given up (the child is stopped; the service keeps its state).
READ_TIMEOUT_S = 600.0


@dataclass
class Update:
    """One read of the graph.

    ``read`` numbers the reader's reads; ``changes`` (relative to read ``read - 1``) is only given
    when the caller said its index is built on that read; without it the caller rebuilds everything."""

    read: int
    arrays: GraphArrays
    changes: Changes | None = None


class Reads:
    """The reader's memory: its previous read, which the next one is compared with."""

    def __init__(self) -> None:
        self.previous: GraphArrays | None = None
        self.count = 0

    def next(self, driver: Driver, database: str, base: int) -> Update:
        arrays = GraphIndex.load(driver, database).base
        previous, self.previous = self.previous, arrays
        self.count += 1
        if previous is None or base != self.count - 1:
            return Update(self.count, arrays)
        return Update(self.count, arrays, compare(previous, arrays))


class GraphReader(Protocol):
    def read(self, driver: Driver, database: str, base: int) -> Update:
        """Read the graph. ``base``: the read the caller's index is built on (0: none).
        Connectivity failures raise the driver's errors."""

    def close(self) -> None: ...


class ThreadReader:
    """Reads with the caller's driver, in the caller's thread."""

    def __init__(self) -> None:
        self._reads = Reads()

    def read(self, driver: Driver, database: str, base: int) -> Update:
        return self._reads.next(driver, database, base)

    def close(self) -> None:
        self._reads.previous = None


class ReaderFailed(RuntimeError):
    """The reader process failed for a reason other than Neo4j being unreachable."""


class ProcessReader:
    """Reads in a child process with its own driver; started on first use, restarted if it dies."""

    def __init__(self, settings: Settings, timeout_s: float = READ_TIMEOUT_S) -> None:
        self._settings = settings
        self._timeout_s = timeout_s
        self._ctx = multiprocessing.get_context("spawn")  # never fork a threaded server
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn = None
        self._lock = threading.Lock()  # one read in flight (the service's reloads are single-flight)

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._process = self._ctx.Process(target=_serve_reads, args=(child, self._settings),
                                          name="graphrec-graph-reader", daemon=True)
        self._process.start()
        child.close()
        self._conn = parent

    def read(self, driver: Driver, database: str, base: int) -> Update:
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()  # a new process has no previous read: it answers with a full read
            try:
                self._conn.send((database, base))
                if not self._conn.poll(self._timeout_s):
                    self._stop(kill=True)
                    raise ReaderFailed(f"reading the graph took over {self._timeout_s:.0f} s; gave up")
                status, payload = self._conn.recv()
            except (EOFError, OSError) as err:
                self._stop()
                raise ReaderFailed(f"the graph reader process stopped: {err}") from None
        if status == "ok":
            try:
                return transfer.load(payload)
            except (OSError, ValueError, EOFError) as err:  # a file gone or cut short: no read, say so
                raise ReaderFailed(f"the graph reader's answer could not be read: {err}") from None
        if status == "unavailable":
            raise ServiceUnavailable(payload)  # the service's breaker counts it like its own failures
        raise ReaderFailed(payload)

    def _stop(self, kill: bool = False) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            if kill:
                self._process.terminate()
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.terminate()
            self._process = None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.send(None)
                except OSError:
                    pass
            self._stop()


def _serve_reads(conn, settings: Settings) -> None:  # noqa: ANN001 (a multiprocessing Connection)
    """The child: answer each ``(database, base)`` with ``("ok", path of the Update)`` or a failure."""
    from graphrec.serving.db import CONNECTIVITY, open_driver

    try:
        os.nice(READER_NICENESS)
    except OSError:
        pass
    driver = open_driver(settings)
    reads = Reads()
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if message is None:
                return
            database, base = message
            try:
                if driver is None:
                    raise ServiceUnavailable("no Neo4j credentials configured")
                gc.disable()  # a read creates many objects; collections mid-read only cost time
                try:
                    answer = ("ok", transfer.dump(reads.next(driver, database, base)))
                finally:
                    gc.enable()
            except CONNECTIVITY as err:
                reads.previous = None  # the next read is a full one
                answer = ("unavailable", f"{type(err).__name__}: {err}")
            except Exception as err:  # reported to the service, which logs it; never a traceback to clients
                reads.previous = None
                answer = ("error", f"{type(err).__name__}: {err}")
            try:
                conn.send(answer)
            except (OSError, ValueError):
                return
    finally:
        if driver is not None:
            driver.close()
