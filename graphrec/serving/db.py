"""Neo4j access for a long-running service: fail fast when the database is down, say so clearly.

The store's :func:`graphrec.store.connect` suits commands (verify, then work). A service instead
starts whether or not Neo4j is up, keeps serving model-only answers while it is down, and must
answer "unavailable" in about a second rather than after the driver's default 30 s of retries.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from neo4j import Driver
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from graphrec.config import Settings
from graphrec.store.driver import StoreUnavailable, connect

CONNECTION_TIMEOUT_S = 2.0
RETRY_TIME_S = 1.0


class GraphUnavailable(RuntimeError):
    """Neo4j cannot be reached right now; the message is safe to show a client."""


def open_driver(settings: Settings) -> Driver | None:
    """A driver with short timeouts, unverified, or None when not even the credentials can be found."""
    try:
        return connect(
            settings,
            verify=False,
            connection_timeout=CONNECTION_TIMEOUT_S,
            connection_acquisition_timeout=CONNECTION_TIMEOUT_S * 2,
            max_transaction_retry_time=RETRY_TIME_S,
            # Warnings such as "relationship type VIEWED does not exist" on a shop without views are noise.
            notifications_min_severity="OFF",
        )
    except StoreUnavailable:
        return None


UNAVAILABLE_MESSAGE = "the graph database (Neo4j) is unavailable right now; try again later"


@contextmanager
def graph_call(driver: Driver | None) -> Iterator[Driver]:
    """Run Neo4j work, turning every connectivity failure into :class:`GraphUnavailable`."""
    if driver is None:
        raise GraphUnavailable(UNAVAILABLE_MESSAGE + " (no credentials configured)")
    try:
        yield driver
    except (ServiceUnavailable, SessionExpired, StoreUnavailable, OSError) as err:
        raise GraphUnavailable(UNAVAILABLE_MESSAGE) from err


def reachable(driver: Driver | None) -> bool:
    if driver is None:
        return False
    try:
        driver.verify_connectivity()
        return True
    except Exception:  # any failure means "not reachable" for a health check
        return False
