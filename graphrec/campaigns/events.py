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

import logging
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import duckdb
import pandas as pd
import pyarrow as pa

log = logging.getLogger("graphrec.campaigns")

EVENT_TYPES = ("impression", "click", "purchase")
EVENT_COLUMNS = ["event_id", "type", "user_id", "product_id", "campaign_id", "ts", "value"]

_ARROW_TYPES = {"event_id": pa.string(), "type": pa.string(), "user_id": pa.string(), "product_id": pa.string(),
                "campaign_id": pa.string(), "ts": pa.timestamp("us", tz="UTC"), "value": pa.float64()}

def _frame_table(frame: pd.DataFrame) -> pa.Table:
    """:meth:`EventStore.to_table` for a pandas frame (missing columns and NaN are null)."""
    frame = frame.reindex(columns=EVENT_COLUMNS)
    arrays = {c: pa.array(frame[c].astype(object).where(frame[c].notna(), None).tolist(), pa.string())
              for c in ("event_id", "type", "user_id", "product_id", "campaign_id")}
    ts = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    if ts.isna().any():
        raise ValueError("every event needs a ts (ISO-8601 date-time)")
    arrays["ts"] = pa.array(ts.astype("datetime64[us, UTC]"), type=_ARROW_TYPES["ts"])
    arrays["value"] = pa.array(pd.to_numeric(frame["value"]).astype("float64"), type=pa.float64(), from_pandas=True)
    return pa.table({c: arrays[c] for c in EVENT_COLUMNS})


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
-- Accepted purchases whose BOUGHT edge is not written to Neo4j yet (retried on the next batch).
CREATE TABLE IF NOT EXISTS graph_pending (event_id VARCHAR PRIMARY KEY);
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


class _Closed:
    """Stands in for the connection of a closed store: any use says so."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("the event store is closed")

    def close(self) -> None:  # closing twice is harmless
        pass


class EventStore:
    """Events and served offers in the DuckDB file at ``path`` (created if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(str(self.path))
        self._con.execute("SET TimeZone = 'UTC'")
        # One thread: batches are small, and on a small machine DuckDB's worker threads would take
        # cores from the API's event loop (the offers hot path) for no gain.
        self._con.execute("SET threads = 1")
        self._con.execute(_SCHEMA)
        self._lock = threading.Lock()
        # Held while pending purchases go to Neo4j: two batches must not write the same pending
        # purchase twice (BOUGHT weights would double), nor deadlock on the same edges.
        self.graph_lock = threading.Lock()

    @classmethod
    def try_open(cls, path: str | Path) -> "EventStore | None":
        """The store, or ``None`` (logged) when another process holds the file: DuckDB allows one
        writing process per file, so one API process owns an events file."""
        try:
            return cls(path)
        except duckdb.IOException as err:
            log.error("event store %s not opened: %s", path, str(err).splitlines()[0])
            return None

    def close(self) -> None:
        with self._lock:
            self._con.close()
            # Dropped as well as closed: FastAPI's caches keep every app (and so its store) alive to
            # the interpreter's teardown, and a connection object alive then, even closed, is what
            # nanobind reports as "leaked" after a test run.
            self._con = _Closed()  # type: ignore[assignment]

    def _df(self, sql: str, params: list[Any]) -> pd.DataFrame:
        """A query's rows as a pandas frame, through Arrow (call with the lock held)."""
        return self._con.sql(sql, params=params or None).to_arrow_table().to_pandas()

    def __enter__(self) -> "EventStore":
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- events ----------------------------------------------------------------------------------
    @staticmethod
    def to_table(events: Sequence[Mapping[str, Any]] | pd.DataFrame) -> pa.Table:
        """Events (dicts with the fields of :data:`EVENT_COLUMNS`; ``ts`` a datetime or ISO-8601 text,
        naive = UTC; ``campaign_id`` and ``value`` may be missing) as a typed Arrow table: the bulk
        path into DuckDB, with no per-row SQL."""
        if isinstance(events, pd.DataFrame):
            return _frame_table(events)
        columns: dict[str, list[Any]] = {c: [e.get(c) for e in events] for c in EVENT_COLUMNS}
        columns["ts"] = [_as_utc(t) for t in columns["ts"]]
        if any(t is None for t in columns["ts"]):
            raise ValueError("every event needs a ts (ISO-8601 date-time)")
        columns["value"] = [None if v is None or v != v else float(v) for v in columns["value"]]
        return pa.table({c: pa.array(columns[c], type=_ARROW_TYPES[c]) for c in EVENT_COLUMNS})

    def append(self, events: Sequence[Mapping[str, Any]] | pd.DataFrame) -> tuple[int, int]:
        """Store new events in one bulk insert; returns ``(accepted, duplicates)``.

        Ids already stored, or repeated inside ``events``, count as duplicates and are not stored
        again (the first copy wins). Validation is the caller's (:func:`validate_events`); this only
        needs the columns to have the right types. Committed (durable) when it returns."""
        accepted, duplicates = self.append_new(events)
        return len(accepted), duplicates

    def append_new(self, events: Sequence[Mapping[str, Any]] | pd.DataFrame, *,
                   graph_pending: bool = True) -> tuple[list[str], int]:
        """:meth:`append`, returning the ids actually stored; with ``graph_pending`` the stored
        purchases are also queued (same transaction) for their BOUGHT edge."""
        table = self.to_table(events)
        if table.num_rows == 0:
            return [], 0
        table = table.append_column("received_at", pa.array([datetime.now(timezone.utc)] * table.num_rows,
                                                            type=pa.timestamp("us", tz="UTC")))
        with self._lock:
            con = self._con
            con.register("incoming", table)
            try:
                con.execute("BEGIN TRANSACTION")
                rows = con.execute(
                    "INSERT INTO events SELECT event_id, type, user_id, product_id, campaign_id, ts, value, "
                    "received_at FROM incoming ON CONFLICT (event_id) DO NOTHING RETURNING event_id, type"
                ).fetchall()
                purchases = pd.DataFrame({"event_id": [e for e, t in rows if t == "purchase"]}, dtype=object)
                if graph_pending and len(purchases):
                    con.register("bought", purchases)
                    con.execute("INSERT INTO graph_pending SELECT event_id FROM bought ON CONFLICT DO NOTHING").fetchall()
                    con.unregister("bought")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("incoming")
        return [e for e, _ in rows], table.num_rows - len(rows)

    def pending_purchases(self, limit: int = 10_000) -> pd.DataFrame:
        """Stored purchases whose BOUGHT edge is not written yet (oldest first)."""
        with self._lock:
            return self._df("SELECT e.event_id, e.user_id, e.product_id, e.ts, e.value FROM graph_pending g "
                            "JOIN events e USING (event_id) ORDER BY e.received_at, e.event_id LIMIT ?", [limit])

    def pending_count(self) -> int:
        with self._lock:
            return int(self._con.execute("SELECT count(*) FROM graph_pending").fetchall()[0][0])

    def mark_written(self, event_ids: Sequence[str]) -> None:
        """Their BOUGHT edges are in Neo4j: take them off the pending list."""
        if not event_ids:
            return
        with self._lock:
            self._con.execute("DELETE FROM graph_pending WHERE list_contains(?, event_id)",
                              [list(event_ids)]).fetchall()

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
            frame = self._df(sql, params)
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
        table = pa.table({
            "user_id": pa.array([s.user_id for s in served], pa.string()),
            "campaign_id": pa.array([s.campaign_id for s in served], pa.string()),
            "product_id": pa.array([s.product_id for s in served], pa.string()),
            "day": pa.array([s.day for s in served], pa.date32()),
            "served_at": pa.array([s.served_at for s in served], pa.timestamp("us", tz="UTC")),
        })
        with self._lock:
            self._con.register("served", table)
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
            return self._df(sql + " ORDER BY served_at", params)

    # -- privacy ---------------------------------------------------------------------------------
    def erase_user(self, user_id: str) -> int:
        """Delete every event and served offer of ``user_id`` (one transaction); returns rows deleted."""
        with self._lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                con.execute("DELETE FROM graph_pending WHERE event_id IN "
                            "(SELECT event_id FROM events WHERE user_id = ?)", [user_id]).fetchall()
                n = con.execute("DELETE FROM events WHERE user_id = ?", [user_id]).fetchall()[0][0]
                n += con.execute("DELETE FROM served_offers WHERE user_id = ?", [user_id]).fetchall()[0][0]
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return int(n)


# -- a batch from clients: validated whole, then stored whole -------------------------------------------
@dataclass(frozen=True)
class EventError:
    index: int
    field: str
    message: str

    @property
    def path(self) -> str:
        """``events[3].user_id``: the request field at fault."""
        return f"events[{self.index}].{self.field}"


class InvalidEvents(ValueError):
    """A batch with invalid events: nothing of it was stored; ``errors`` names each (index, field)."""

    def __init__(self, errors: list[EventError]) -> None:
        self.errors = errors
        first = errors[0]
        more = f" ({len(errors) - 1} more invalid)" if len(errors) > 1 else ""
        super().__init__(f"{first.path}: {first.message}{more}; nothing of the batch was stored")


def _as_utc(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else parsed
    return None


def validate_events(events: Sequence[Mapping[str, Any]], *, has_user: Callable[[str], bool],
                    has_product: Callable[[str], bool], campaign: Callable[[str], Any]) -> list[EventError]:
    """Every problem of the batch, in order: unknown type, user, product or campaign, a missing
    campaign on an impression/click, an impression/click outside its campaign's window or on a
    product the campaign does not promote, a missing or negative value. ``campaign(id)`` returns a
    :class:`~graphrec.campaigns.model.Campaign` or ``None``."""
    errors: list[EventError] = []
    for i, e in enumerate(events):
        def bad(field_name: str, message: str) -> None:
            errors.append(EventError(i, field_name, message))

        if not isinstance(e.get("event_id"), str) or not e["event_id"]:
            bad("event_id", "required (a non-empty string)")
        kind = e.get("type")
        if kind not in EVENT_TYPES:
            bad("type", f"unknown type {kind!r} (one of {', '.join(EVENT_TYPES)})")
        user, product, cid = e.get("user_id"), e.get("product_id"), e.get("campaign_id")
        if not isinstance(user, str) or not has_user(user):
            bad("user_id", f"unknown user {user!r}")
        if not isinstance(product, str) or not has_product(product):
            bad("product_id", f"unknown product {product!r}")
        ts = _as_utc(e.get("ts"))
        if ts is None:
            bad("ts", "required: an ISO-8601 date-time")
        value = e.get("value")
        if value is not None and (not isinstance(value, (int, float)) or value != value or value < 0):
            bad("value", f"must be a number >= 0, not {value!r}")
        if kind == "purchase" and value is None:
            bad("value", "a purchase needs its order value")
        found = None
        if cid is not None:
            found = campaign(cid)
            if found is None:
                bad("campaign_id", f"unknown campaign {cid!r}")
        elif kind in ("impression", "click"):
            bad("campaign_id", f"an {kind} needs the campaign it belongs to")
        if found is not None and kind in ("impression", "click"):
            if ts is not None and not (found.start <= ts < found.end):  # [start, end), as the report
                bad("ts", f"{ts.isoformat()} is outside campaign {cid!r} "
                          f"({found.start.isoformat()} to {found.end.isoformat()})")
            if isinstance(product, str) and product not in found.promoted:
                bad("product_id", f"campaign {cid!r} does not promote product {product!r}")
    return errors


@dataclass
class Ingested:
    accepted: int
    duplicates: int
    graph_pending: int = 0  # purchases stored but whose BOUGHT edge is not in Neo4j yet


def ingest(store: EventStore, events: Sequence[Mapping[str, Any]], *, has_user: Callable[[str], bool],
           has_product: Callable[[str], bool], campaign: Callable[[str], Any],
           record_purchases: Callable[[pd.DataFrame], Any] | None = None) -> Ingested:
    """Validate the whole batch (:class:`InvalidEvents`, nothing stored, if any event is bad), store
    it (durable), then write the new purchases' BOUGHT edges through ``record_purchases(frame)``
    (columns ``event_id, user_id, product_id, ts, value``). If that fails (Neo4j down), the events
    stay stored and those purchases stay pending: the next batch retries them."""
    errors = validate_events(events, has_user=has_user, has_product=has_product, campaign=campaign)
    if errors:
        raise InvalidEvents(errors)
    accepted, duplicates = store.append_new(events, graph_pending=record_purchases is not None)
    result = Ingested(len(accepted), duplicates)
    if record_purchases is None:
        return result
    with store.graph_lock:
        pending = store.pending_purchases()
        if len(pending):
            try:
                record_purchases(pending)
                store.mark_written(pending["event_id"].tolist())
            except Exception as err:
                log.warning("BOUGHT edges of %d purchases not written yet (%s); kept pending",
                            len(pending), type(err).__name__)
        result.graph_pending = store.pending_count()
    return result
