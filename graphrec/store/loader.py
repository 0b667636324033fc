"""Loading validated canonical input into Neo4j.

Writes go in batches: one parameterised ``UNWIND`` statement per batch (never formatted with
data), each batch in a managed write transaction that the driver retries on transient errors.
Nodes are MERGEd on their id through the uniqueness constraints (applied first) and relationships
MERGEd between nodes found by id, with properties SET (never added to), so loading the same
directory twice leaves the same graph. Loading only adds or updates: it never deletes.

Two measured choices keep Neo4j's work per row low (see ``bench/load.py``):

* a batch travels column-wise: ``$p0``, ``$p1``, ... are lists and row ``i`` reads ``$p0[i]``.
  The driver packs flat lists far faster than one map per row, and Neo4j reads them faster;
* a relationship batch looks each distinct endpoint up once: ``$starts`` / ``$ends`` hold the
  batch's distinct ids and ``$si[i]`` / ``$ei[i]`` index into them, so a user with ten purchases in
  a batch costs one index seek instead of ten (about a quarter less server CPU on the synthetic
  shop). An endpoint that does not exist leaves a null there and MERGE fails loudly instead of
  skipping the row;
* a label or relationship type with nothing in the database when its step starts is written with
  CREATE instead of MERGE: validated rows are unique per id (nodes) and per (start, end) pair
  (relationships), so the result is the same, and Neo4j skips the existence check (about a fifth
  less server CPU for BOUGHT). Any later load finds data there and MERGEs, so loading twice still
  changes nothing, and a load cut short is completed, not duplicated, by running it again.

Batches are bounded in rows and in bytes of text (:data:`DEFAULT_BATCH_BYTES`), so rows with large
properties cannot make one transaction outgrow the server's heap.

One load at a time (:func:`load_lock`): two loads at once would both see an empty label and both
CREATE, and on a fresh database their schema statements collide. The lock lives in Neo4j, not in a
file under ``GRAPHREC_HOME``, because loads from other machines or homes against the same external
``NEO4J_URI`` must see it too. It is a write lock on a :data:`LOCK_LABEL` node that the holder
MERGEs in a transaction it never commits: others block on that node's uniqueness-index entry, no
node is ever visible, and if the holder dies its connection closes, Neo4j rolls the transaction
back and the lock is free (no stale lock to clean up).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from neo4j import Driver, ManagedTransaction
from neo4j.exceptions import DriverError, Neo4jError
from tqdm import tqdm

from graphrec import schema
from graphrec.ingest.validate import Graph, ValidationReport, validate_directory
from graphrec.store.schema import apply_schema

DEFAULT_BATCH_SIZE = 10_000
DEFAULT_BATCH_BYTES = 16 << 20  # text per write transaction, roughly (characters)
LOADED_REL_TYPES = tuple(r for r in schema.REL_TYPES if r is not schema.RECOMMENDED)


class InvalidInput(ValueError):
    """The input directory did not validate; ``report`` holds every problem."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__("\n".join(report.messages()))


@dataclass
class LoadResult:
    nodes: dict[str, int]
    relationships: dict[str, int]
    rejected: int
    seconds: float
    validation_seconds: float = 0.0
    write_seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    files: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``graphrec load``: counts in the database after the load."""
        return {"nodes": self.nodes, "relationships": self.relationships, "rejected": self.rejected,
                "seconds": round(self.seconds, 3)}


def _quote(name: str) -> str:
    """A property name as a Cypher identifier (backticks doubled): names come from file headers."""
    return "`" + name.replace("`", "``") + "`"


def _node_statement(node: schema.NodeType, properties: list[str], verb: str = "MERGE") -> str:
    """Parameters: ``ids``, then ``p0``, ``p1``, ... for ``properties``."""
    sets = ", ".join(f"n.{_quote(p)} = $p{k}[i]" for k, p in enumerate(properties))
    return (f"UNWIND range(0, size($ids) - 1) AS i {verb} (n:{node.label} {{{node.key}: $ids[i]}})"
            + (f" SET {sets}" if sets else ""))


def _rel_statement(rel: schema.RelType, properties: list[str], verb: str = "MERGE") -> str:
    """Parameters: ``starts``/``ends`` (distinct endpoint ids), ``si``/``ei`` (per row, an index
    into them), then ``p0``, ``p1``, ... for ``properties``."""
    start, end = schema.node_type(rel.start), schema.node_type(rel.end)
    assignments = []
    for k, p in enumerate(properties):
        value = f"$p{k}[i]"
        if p == "ts":  # epoch milliseconds -> a UTC datetime
            value = f"CASE WHEN {value} IS NULL THEN null ELSE datetime({{epochMillis: {value}}}) END"
        assignments.append(f"r.{_quote(p)} = {value}")
    return (f"WITH [k IN $starts | head(COLLECT {{ MATCH (a:{start.label} {{{start.key}: k}}) RETURN a }})] AS starts, "
            f"[k IN $ends | head(COLLECT {{ MATCH (b:{end.label} {{{end.key}: k}}) RETURN b }})] AS ends "
            f"UNWIND range(0, size($si) - 1) AS i WITH starts[$si[i]] AS a, ends[$ei[i]] AS b, i "
            f"{verb} (a)-[r:{rel.type}]->(b)"
            + (f" SET {', '.join(assignments)}" if assignments else ""))


def _column(values: pd.Series | np.ndarray, kind: str = "any") -> list[Any]:
    """Plain Python values for the driver, None for missing."""
    array = np.asarray(values)
    if kind == "float":
        floats = array.astype(float)
        out = floats.astype(object)
        out[np.isnan(floats)] = None
        return out.tolist()
    if kind == "ms":
        floats = array.astype(float)
        missing = np.isnan(floats)
        out = np.where(missing, 0, floats).astype(np.int64).astype(object)
        out[missing] = None
        return out.tolist()
    out = array.astype(object)
    out[pd.isna(out)] = None
    return out.tolist()


@dataclass
class _Step:
    """One statement and its rows: node ids, or relationship endpoints, plus property columns."""

    name: str
    merge: str  # the statement for a label or type that already has data
    create: str  # the same with CREATE, for one that is empty when the step starts
    properties: list[list[Any]]
    ids: list[Any] | None = None
    starts: np.ndarray | None = None
    ends: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids) if self.ids is not None else len(self.starts)

    def row_bytes(self) -> np.ndarray | None:
        """About how much text each row carries; None for relationships, whose rows are bounded
        anyway (two ids of at most ``limits.ID_MAX_BYTES``, numbers and a short split)."""
        if self.ids is None:
            return None
        sizes = np.fromiter((len(v) for v in self.ids), dtype=np.int64, count=len(self.ids))
        for values in self.properties:
            sizes += np.fromiter((len(v) if type(v) is str else 8 for v in values), dtype=np.int64, count=len(values))
        return sizes

    def bounds(self, size: int, max_bytes: int) -> Iterator[tuple[int, int]]:
        """(lo, hi) of each batch: at most ``size`` rows and ``max_bytes`` of text, but one row at least."""
        sizes = self.row_bytes()
        cumulative = np.cumsum(sizes) if sizes is not None else None
        lo = 0
        while lo < len(self):
            hi = min(lo + size, len(self))
            if cumulative is not None:
                before = int(cumulative[lo - 1]) if lo else 0
                hi = min(hi, int(np.searchsorted(cumulative, before + max_bytes, side="right")))
            hi = max(hi, lo + 1)
            yield lo, hi
            lo = hi

    def batches(self, size: int, max_bytes: int = DEFAULT_BATCH_BYTES) -> Iterator[dict[str, list[Any]]]:
        for lo, hi in self.bounds(size, max_bytes):
            params = {f"p{k}": values[lo:hi] for k, values in enumerate(self.properties)}
            if self.ids is not None:
                params["ids"] = self.ids[lo:hi]
            else:
                si, starts = pd.factorize(self.starts[lo:hi])
                ei, ends = pd.factorize(self.ends[lo:hi])
                params.update(starts=starts.tolist(), ends=ends.tolist(), si=si.tolist(), ei=ei.tolist())
            yield params


def _node_step(node: schema.NodeType, frame: pd.DataFrame, properties: dict[str, list[Any]]) -> _Step:
    names = list(properties)
    return _Step(node.label, _node_statement(node, names), _node_statement(node, names, "CREATE"),
                 list(properties.values()), ids=_column(frame["id"]))


def _rel_step(rel: schema.RelType, starts: pd.Series, ends: pd.Series, properties: dict[str, list[Any]]) -> _Step:
    names = list(properties)
    return _Step(rel.type, _rel_statement(rel, names), _rel_statement(rel, names, "CREATE"),
                 list(properties.values()),
                 starts=np.asarray(starts, dtype=object), ends=np.asarray(ends, dtype=object))


# How a property's values travel: "float" (NaN -> None), "ms" (epoch ms -> int), else as they are.
_KINDS = {"price": "float", "weight": "float", "ts": "ms"}


def _properties(frame: pd.DataFrame, names: tuple[str, ...] | list[str], key: str | None = None) -> dict[str, list[Any]]:
    return {p: _column(frame[p], _KINDS.get(p, "any")) for p in names if p != key}


def _steps(graph: Graph) -> list[_Step]:
    """The write statements in dependency order (nodes before the relationships between them)."""
    category, product, user = schema.CATEGORY, schema.PRODUCT, schema.USER
    steps = [
        _node_step(category, graph.categories, _properties(graph.categories, category.properties, category.key)),
        _node_step(product, graph.products, _properties(graph.products, product.properties, product.key)),
        _node_step(user, graph.users, _properties(graph.users, list(graph.users.columns), "id")),
        _rel_step(schema.SUBCATEGORY_OF, graph.subcategories["child"], graph.subcategories["parent"], {}),
        _rel_step(schema.IN_CATEGORY, graph.in_category["product"], graph.in_category["category"],
                  {p: [bool(v) for v in graph.in_category[p]] for p in schema.IN_CATEGORY.properties}),
    ]
    for rel_name, frame in graph.social.items():
        steps.append(_rel_step(schema.rel_type(rel_name), frame["start"], frame["end"], {}))
    for rel_name, frame in graph.interactions.items():
        rel = schema.rel_type(rel_name)
        steps.append(_rel_step(rel, frame["user"], frame["product"], _properties(frame, rel.properties)))
    return [s for s in steps if len(s)]


def _run_batch(tx: ManagedTransaction, cypher: str, params: dict[str, list[Any]]) -> None:
    tx.run(cypher, params).consume()


def write_graph(driver: Driver, graph: Graph, *, database: str = "neo4j", batch_size: int = DEFAULT_BATCH_SIZE,
                progress: bool = True, batch_bytes: int = DEFAULT_BATCH_BYTES) -> dict[str, float]:
    """Take the load lock, apply the schema and write ``graph``; returns the seconds per step.

    Raises :class:`LoadInProgress`, before writing anything, while another load holds the lock."""
    if batch_size < 1 or batch_bytes < 1:
        raise ValueError("batch_size and batch_bytes must be at least 1")
    started = time.perf_counter()
    with load_lock(driver, database):
        timings = {"lock": time.perf_counter() - started}
        apply_schema(driver, database)
        timings["schema"] = time.perf_counter() - started - timings["lock"]
        steps = _steps(graph)
        # Each label and type is written by exactly one step (relationship steps only MATCH their
        # endpoints), and no other load runs, so what is empty now is still empty when its step starts.
        nodes, rels = database_counts(driver, database)
        before = {**nodes, **rels}
        with tqdm(total=sum(len(s) for s in steps), unit="row", unit_scale=True, disable=not progress,
                  desc="loading", dynamic_ncols=True) as bar, driver.session(database=database) as session:
            for step in steps:
                bar.set_description(step.name)
                t0 = time.perf_counter()
                cypher = step.create if before[step.name] == 0 else step.merge
                for (lo, hi), params in zip(step.bounds(batch_size, batch_bytes),
                                            step.batches(batch_size, batch_bytes)):
                    session.execute_write(_run_batch, cypher, params)
                    bar.update(hi - lo)
                timings[step.name] = time.perf_counter() - t0
    return timings


# -- one load at a time ---------------------------------------------------------------------------

LOCK_LABEL = "GraphRecLock"
_LOCK_CONSTRAINT = (f"CREATE CONSTRAINT graphrec_lock_name IF NOT EXISTS "
                    f"FOR (l:{LOCK_LABEL}) REQUIRE l.name IS UNIQUE")
_TAKE_LOCK = f"MERGE (:{LOCK_LABEL} {{name: $name}})"
_LOCK_WAIT_S = 2.0
# What Neo4j answers when the probe's transaction timed out waiting for the holder's lock.
_LOCK_BUSY = ("LockClientStopped", "TransactionTimedOut", "Terminated", "LockAcquisitionTimeout")
# What two sessions creating the same schema rule at once can get: retry, it exists by then.
_SCHEMA_RACE = ("EquivalentSchemaRuleAlreadyExists", "ConstraintAlreadyExists", "IndexAlreadyExists",
                "DeadlockDetected", "ConstraintCreationFailed",
                # db.awaitIndexes while the other session's index is still being created
                "ProcedureCallFailed")


class LoadInProgress(RuntimeError):
    """Another load holds the lock on this database; nothing was written."""


def _ensure_lock_constraint(driver: Driver, database: str) -> None:
    for attempt in range(10):
        try:
            with driver.session(database=database) as session:
                session.run(_LOCK_CONSTRAINT).consume()
                session.run("CALL db.awaitIndexes(60)").consume()
            return
        except Neo4jError as err:
            if not any(code in (err.code or "") for code in _SCHEMA_RACE) or attempt == 9:
                raise
            time.sleep(0.05 * (attempt + 1))


def _holder(driver: Driver, database: str) -> str:
    """Who holds the lock, from its transaction's metadata, when the server lets us see it."""
    try:
        with driver.session(database=database) as session:
            record = session.run("SHOW TRANSACTIONS YIELD metaData, startTime "
                                 "WHERE metaData.graphrec = 'load' RETURN metaData, startTime LIMIT 1").single()
    except Neo4jError:
        return ""
    if record is None:
        return ""
    meta = record["metaData"]
    return f" (started {record['startTime']} on {meta.get('host', '?')}, process {meta.get('pid', '?')})"


@contextmanager
def load_lock(driver: Driver, database: str = "neo4j", *, wait_s: float = _LOCK_WAIT_S) -> Iterator[None]:
    """Hold the database's load lock for the block, or raise :class:`LoadInProgress`.

    A short probe transaction (``wait_s``) finds out whether another load holds it; then the
    holding transaction, which has no time limit, takes it. Two loads that probe at the same moment
    both pass the probe; the second then waits for the first to finish instead of failing, which
    is still one load at a time."""
    _ensure_lock_constraint(driver, database)
    with driver.session(database=database) as session:
        probe = session.begin_transaction(timeout=wait_s)
        try:
            probe.run(_TAKE_LOCK, name="load").consume()
        except Neo4jError as err:
            if not any(code in (err.code or "") for code in _LOCK_BUSY):
                raise
            raise LoadInProgress(f"another graphrec load is writing to this database{_holder(driver, database)}; "
                                 "nothing was written: run this load again when that one has finished") from None
        finally:
            probe.close()
    session = driver.session(database=database)
    try:
        holder = session.begin_transaction(metadata={"graphrec": "load", "host": socket.gethostname(),
                                                     "pid": os.getpid()})
        try:
            holder.run(_TAKE_LOCK, name="load").consume()
            yield
        finally:
            try:
                holder.close()  # rolls back: the lock node never existed for anyone else
            except (Neo4jError, DriverError):
                pass  # the server already ended it (a server-wide transaction timeout): released too
    finally:
        session.close()


def database_counts(driver: Driver, database: str = "neo4j") -> tuple[dict[str, int], dict[str, int]]:
    """Nodes per label and relationships per loaded type, as they are in the database now."""
    # Counting a type that was never created is fine here: silence Neo4j's "unknown type" notices.
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        nodes = {n.label: session.run(f"MATCH (n:{n.label}) RETURN count(n) AS c").single()["c"]
                 for n in schema.NODE_TYPES}
        rels = {r.type: session.run(f"MATCH ()-[r:{r.type}]->() RETURN count(r) AS c").single()["c"]
                for r in LOADED_REL_TYPES}
    return nodes, rels


def load_directory(driver: Driver, directory: Path, *, skip_invalid: bool = False, rejects: Path | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE, database: str = "neo4j",
                   progress: bool = True, batch_bytes: int = DEFAULT_BATCH_BYTES) -> LoadResult:
    """Validate ``directory`` completely, then write it; invalid input raises :class:`InvalidInput`
    before anything is written (unless ``skip_invalid``, which loads the valid rows and writes the
    rejected ones to ``rejects``). While another load runs, :class:`LoadInProgress` is raised, also
    before anything is written."""
    started = time.perf_counter()
    graph, report = validated(directory, skip_invalid=skip_invalid, rejects=rejects)
    steps = write_graph(driver, graph, database=database, batch_size=batch_size, progress=progress,
                        batch_bytes=batch_bytes)
    return load_result(report, steps, driver, database, started)


def validated(directory: Path, *, skip_invalid: bool, rejects: Path | None) -> tuple[Graph, ValidationReport]:
    """The graph to write (online or bulk), rejected rows written to ``rejects``; :class:`InvalidInput`
    when it may not be loaded."""
    graph, report = validate_directory(Path(directory), skip_invalid=skip_invalid)
    if rejects is not None and not report.fatal:
        report.write_rejects(Path(rejects))
    if graph is None:
        raise InvalidInput(report)
    return graph, report


def load_result(report: ValidationReport, steps: dict[str, float], driver: Driver, database: str,
                started: float) -> LoadResult:
    """What a load (online or bulk) reports: the database's counts now, rows per file, timings."""
    nodes, rels = database_counts(driver, database)
    return LoadResult(
        nodes=nodes, relationships=rels, rejected=report.rejected, seconds=time.perf_counter() - started,
        validation_seconds=report.seconds, write_seconds=sum(steps.values()), step_seconds=steps,
        files={f: {"rows": c.rows, "loaded": c.loaded, "rejected": c.rejected} for f, c in report.files.items()},
        warnings=report.warnings,
    )
