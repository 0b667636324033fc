"""The raw event log (impressions, clicks, purchases) and the served-offers log, in DuckDB.

Why DuckDB and not Neo4j: events are append-only, many and read in bulk by the reports (group-bys
over millions of rows); an embedded columnar store ingests a 1,000-event batch in one bulk insert
and answers those scans in milliseconds, while one Neo4j node per event would cost a write
transaction's worth of work per event and a full scan per report. Purchases still become BOUGHT
edges in Neo4j (the API does that through the serving layer), so the graph sees them.

Every event is kept as sent (nothing collapsed); ``event_id`` is the primary key, so a batch sent
twice, or an id repeated inside one batch, is stored once (the first copy wins). ``append`` returns
only after DuckDB committed (its write-ahead log is on disk): durable before the API answers 2xx.

One connection per store, guarded by a lock: DuckDB allows a single writing process per file, and
its connection object is not meant for concurrent use across threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd

EVENT_TYPES = ("impression", "click", "purchase")
EVENT_COLUMNS = ["event_id", "type", "user_id", "product_id", "campaign_id", "ts", "value"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY,
    type VARCHAR NOT NULL,
    user_id VARCHAR NOT NULL,
    product_id VARCHAR NOT NULL,
    campaign_id VARCHAR,
    ts TIMESTAMPTZ NOT NULL,
    value DOUBLE,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS served_offers (
    user_id VARCHAR NOT NULL,
    campaign_id VARCHAR NOT NULL,
    product_id VARCHAR NOT NULL,
    day DATE NOT NULL,
    served_at TIMESTAMPTZ NOT NULL
);
"""


@dataclass(frozen=True)
class Served:
    """One offer shown: the frequency cap counts these per user per UTC day."""

    user_id: str
    campaign_id: str
    product_id: str
    served_at: datetime

    @property
    def day(self) -> date:
        return self.served_at.astimezone(timezone.utc).date()


def utc_day(at: datetime) -> date:
    """The cap's day: the UTC calendar date of ``at``."""
    return at.astimezone(timezone.utc).date() if at.tzinfo else at.date()


def _utc_series(values: Any) -> pd.Series:
    return pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")


class EventStore:
    """Events and served offers in the DuckDB file at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute("SET TimeZone = 'UTC'")
        self._con.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- events ----------------------------------------------------------------------------------
    @staticmethod
    def to_frame(events: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pd.DataFrame:
        """Events (dicts with the fields of :data:`EVENT_COLUMNS`, ``ts`` ISO-8601 or datetime) as a
        frame with typed columns; ``campaign_id`` and ``value`` may be missing (null)."""
        frame = events.copy() if isinstance(events, pd.DataFrame) else pd.DataFrame.from_records(list(events))
        for col in EVENT_COLUMNS:
            if col not in frame:
                frame[col] = None
        frame = frame[EVENT_COLUMNS]
        frame["ts"] = _utc_series(frame["ts"]).to_numpy() if len(frame) else pd.Series([], dtype="datetime64[us, UTC]")
        frame["value"] = pd.to_numeric(frame["value"], errors="raise").astype("float64")
        for col in ("event_id", "type", "user_id", "product_id", "campaign_id"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
        return frame

    def append(self, events: Sequence[Mapping[str, Any]] | pd.DataFrame) -> tuple[int, int]:
        """Store new events in one bulk insert; returns ``(accepted, duplicates)``.

        Ids already stored, or repeated inside ``events``, count as duplicates and are not stored
        again. Validation is the caller's (see :mod:`graphrec.campaigns.ingest`); this only needs
        the columns to have the right types. Committed (durable) when it returns."""
        frame = self.to_frame(events)
        if frame.empty:
            return 0, 0
        frame["received_at"] = pd.Timestamp.now(tz="UTC")
        with self._lock:
            con = self._con
            con.register("incoming", frame)
            try:
                con.execute("BEGIN TRANSACTION")
                accepted = con.execute(
                    "INSERT INTO events SELECT event_id, type, user_id, product_id, campaign_id, ts, value, "
                    "received_at FROM incoming ON CONFLICT (event_id) DO NOTHING").fetchall()[0][0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("incoming")
        return int(accepted), len(frame) - int(accepted)

    def known_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Which of ``event_ids`` are already stored."""
        ids = pd.DataFrame({"event_id": list(event_ids)})
        with self._lock:
            self._con.register("probe", ids)
            try:
                rows = self._con.execute("SELECT e.event_id FROM events e JOIN probe USING (event_id)").fetchall()
            finally:
                self._con.unregister("probe")
        return {r[0] for r in rows}

    def frame(self, user_ids: Iterable[str] | None = None, product_ids: Iterable[str] | None = None,
              campaign_id: str | None = None, start: datetime | None = None,
              end: datetime | None = None) -> pd.DataFrame:
        """Events as a frame (``event_id, type, user_id, product_id, campaign_id, ts, value``; ``ts`` in
        UTC), ordered by ``ts`` then ``event_id``; each filter applies when given (``start`` <= ts <
        ``end``)."""
        where, params = [], []
        if user_ids is not None:
            where.append("list_contains(?, user_id)")
            params.append(list(user_ids))
        if product_ids is not None:
            where.append("list_contains(?, product_id)")
            params.append(list(product_ids))
        if campaign_id is not None:
            where.append("campaign_id = ?")
            params.append(campaign_id)
        if start is not None:
            where.append("ts >= ?")
            params.append(start)
        if end is not None:
            where.append("ts < ?")
            params.append(end)
        sql = f"SELECT {', '.join(EVENT_COLUMNS)} FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts, event_id"
        with self._lock:
            frame = self._con.execute(sql, params).df()
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        return frame

    def count(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM events").fetchall()[0][0])

    # -- served offers (the frequency cap's log) --------------------------------------------------------
    def log_served(self, served: Sequence[Served]) -> None:
        """Append served offers (one bulk insert, committed when it returns)."""
        if not served:
            return
        frame = pd.DataFrame({
            "user_id": [s.user_id for s in served], "campaign_id": [s.campaign_id for s in served],
            "product_id": [s.product_id for s in served], "day": [s.day for s in served],
            "served_at": pd.to_datetime([s.served_at for s in served], utc=True),
        })
        with self._lock:
            self._con.register("served", frame)
            try:
                self._con.execute("INSERT INTO served_offers SELECT user_id, campaign_id, product_id, day, "
                                  "served_at FROM served").fetchall()
            finally:
                self._con.unregister("served")

    def served_counts(self, day: date) -> dict[tuple[str, str], int]:
        """Offers served on ``day`` (UTC) per (user id, campaign id)."""
        with self._lock:
            rows = self._con.execute("SELECT user_id, campaign_id, count(*) FROM served_offers WHERE day = ? "
                                     "GROUP BY ALL", [day]).fetchall()
        return {(u, c): int(n) for u, c, n in rows}

    def served_frame(self, user_id: str | None = None) -> pd.DataFrame:
        sql = "SELECT user_id, campaign_id, product_id, day, served_at FROM served_offers"
        params: list[Any] = []
        if user_id is not None:
            sql += " WHERE user_id = ?"
            params.append(user_id)
        with self._lock:
            return self._con.execute(sql + " ORDER BY served_at", params).df()

    # -- privacy ---------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> int:
        """Delete every event and served offer of ``user_id`` (one transaction); returns rows deleted."""
        with self._lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                n = con.execute("DELETE FROM events WHERE user_id = ?", [user_id]).fetchall()[0][0]
                n += con.execute("DELETE FROM served_offers WHERE user_id = ?", [user_id]).fetchall()[0][0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(n)
