"""Neo4j access for a long-running service: fail fast when the database is down, say so clearly.

The store's :func:`graphrec.store.connect` suits commands (verify, then work). A service instead
starts whether or not Neo4j is up, keeps serving model-only answers while it is down, and must
answer "unavailable" in about a second rather than after the driver's default 30 s of retries.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Iterator

from neo4j import Driver
from neo4j.exceptions import ClientError, ConnectionPoolError, ServiceUnavailable, SessionExpired

from graphrec.config import Settings
from graphrec.serving import timing
from graphrec.store.driver import StoreUnavailable, connect

CONNECTION_TIMEOUT_S = 1.0
# No driver-side retries: they would sleep ~1 s per attempt on a dead server. Writes retry
# transient errors (deadlocks) themselves; connectivity failures open the breaker at once.
RETRY_TIME_S = 0.0
# After this many connectivity failures in a row, every graph call fails at once for BREAKER_OPEN_S;
# then one call probes. (More than one: a single slow connect on a busy machine is not an outage.)
BREAKER_FAILURES = 3
BREAKER_OPEN_S = 3.0


class GraphUnavailable(RuntimeError):
    """Neo4j cannot be reached right now; the message is safe to show a client."""


def open_driver(settings: Settings) -> Driver | None:
    """A driver with short timeouts, unverified, or None when not even the credentials can be found."""
    try:
        return connect(
            settings,
            verify=False,
            connection_timeout=CONNECTION_TIMEOUT_S,
            connection_acquisition_timeout=CONNECTION_TIMEOUT_S * 1.5,
            max_transaction_retry_time=RETRY_TIME_S,
            # Warnings such as "relationship type VIEWED does not exist" on a shop without views are noise.
            notifications_min_severity="OFF",
        )
    except StoreUnavailable:
        return None


UNAVAILABLE_MESSAGE = "the graph database (Neo4j) is unavailable right now; try again later"


CONNECTIVITY = (ServiceUnavailable, SessionExpired, StoreUnavailable, OSError)


class Breaker:
    """A circuit breaker around the driver: fail fast while Neo4j is known to be down.

    Without it, every request during an outage waits out connection timeouts and retries, worker
    threads fill up, and even ``/health`` queues behind them. With it, the first failure opens the
    breaker: for ``open_s`` seconds every call raises :class:`GraphUnavailable` at once. Then a single
    call probes (the others still fail fast); its success closes the breaker, its failure re-opens it."""

    def __init__(self, driver: Driver | None, open_s: float = BREAKER_OPEN_S,
                 failures: int = BREAKER_FAILURES) -> None:
        self.driver = driver
        self.open_s = open_s
        self.failures_to_open = failures
        self._failures = 0
        self._open_until = 0.0  # monotonic; 0 = closed
        self._probing = False
        self._lock = threading.Lock()
        self.rejected = 0  # calls answered "unavailable" without touching Neo4j (for tests and /health)

    def _admit(self) -> bool:
        """May this call reach Neo4j? True also makes it the probe of a half-open breaker."""
        with self._lock:
            if self._open_until == 0.0:
                return True
            if time.monotonic() < self._open_until or self._probing:
                self.rejected += 1
                return False
            self._probing = True
            return True

    def _settle(self, ok: bool) -> None:
        with self._lock:
            was_probe, self._probing = self._probing, False
            self._failures = 0 if ok else self._failures + 1
            if ok:
                self._open_until = 0.0
            elif was_probe or self._failures >= self.failures_to_open:
                self._open_until = time.monotonic() + self.open_s

    @contextmanager
    def call(self) -> Iterator[Driver]:
        """Run Neo4j work, turning every connectivity failure into :class:`GraphUnavailable`."""
        if self.driver is None:
            raise GraphUnavailable(UNAVAILABLE_MESSAGE + " (no credentials configured)")
        if not self._admit():
            raise GraphUnavailable(UNAVAILABLE_MESSAGE)
        try:
            with timing.part("db"):  # a request's time in Neo4j (its Server-Timing header)
                yield self.driver
        except ConnectionPoolError as err:  # up, but every pooled connection is busy: not an outage
            self._settle(True)
            raise GraphUnavailable("the graph database (Neo4j) is too busy right now; try again shortly") from err
        except CONNECTIVITY as err:
            self._settle(False)
            raise GraphUnavailable(UNAVAILABLE_MESSAGE) from err
        except ClientError as err:
            self._settle(True)
            if "TransactionTimedOut" in (err.code or ""):  # up, but too slow for this request
                raise GraphUnavailable("the graph database (Neo4j) did not answer in time; try again shortly") from err
            raise
        except BaseException:
            self._settle(True)  # Neo4j answered (with an error of the query's own): it is up
            raise
        self._settle(True)

    def reachable(self) -> bool:
        """A connectivity check for health reports; never blocks while the breaker is open."""
        try:
            with self.call() as driver:
                driver.verify_connectivity()
            return True
        except Exception:  # any failure means "not reachable" for a health check
            return False

