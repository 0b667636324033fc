"""Loading validated canonical input into Neo4j.

Writes go in batches: one ``UNWIND`` statement per batch, parameterised (never formatted with
data), each batch in a managed write transaction that the driver retries on transient errors. A
batch travels column-wise (``$id``, ``$name``, ... lists, rows addressed as ``$id[i]``): the same
statement as ``UNWIND $rows AS row`` but a third faster here, because the driver packs flat lists
much faster than one map per row and Neo4j reads them faster too.
Nodes are MERGEd on their id through the uniqueness constraints (applied first) and relationships
MERGEd between nodes MATCHed by id, with properties SET (never added to), so loading the same
directory twice leaves the same graph. Loading only adds or updates: it never deletes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from neo4j import Driver, ManagedTransaction
from tqdm import tqdm

from graphrec import schema
from graphrec.ingest.validate import Graph, ValidationReport, validate_directory
from graphrec.store.schema import apply_schema

DEFAULT_BATCH_SIZE = 10_000
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


def _param(index: int) -> str:
    """The value of column ``index`` in the current row (columns are sent as $c0, $c1, ...)."""
    return f"$c{index}[i]"


_ROWS = "UNWIND range(0, size($c0) - 1) AS i "


def _node_statement(node: schema.NodeType, properties: list[str]) -> str:
    """Columns: id, then ``properties`` in order."""
    sets = ", ".join(f"n.{_quote(p)} = {_param(k + 1)}" for k, p in enumerate(properties))
    return _ROWS + f"MERGE (n:{node.label} {{{node.key}: {_param(0)}}})" + (f" SET {sets}" if sets else "")


def _rel_statement(rel: schema.RelType, properties: list[str]) -> str:
    """Columns: start id, end id, then ``properties`` in order."""
    start, end = schema.node_type(rel.start), schema.node_type(rel.end)
    assignments = []
    for k, p in enumerate(properties, start=2):
        if p == "ts":  # epoch milliseconds -> a UTC datetime
            value = f"CASE WHEN {_param(k)} IS NULL THEN null ELSE datetime({{epochMillis: {_param(k)}}}) END"
        else:
            value = _param(k)
        assignments.append(f"r.{_quote(p)} = {value}")
    return (_ROWS + f"MATCH (a:{start.label} {{{start.key}: {_param(0)}}}) "
            f"MATCH (b:{end.label} {{{end.key}: {_param(1)}}}) MERGE (a)-[r:{rel.type}]->(b)"
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
    name: str
    cypher: str
    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def batches(self, size: int) -> Iterator[dict[str, list[Any]]]:
        """Parameters of each batch: ``c0``, ``c1``, ... in the order of ``columns``."""
        for lo in range(0, len(self), size):
            yield {f"c{k}": values[lo:lo + size] for k, values in enumerate(self.columns.values())}


def _steps(graph: Graph) -> list[_Step]:
    """The write statements in dependency order (nodes before the relationships between them)."""
    steps = [
        _Step("Category", _node_statement(schema.CATEGORY, ["name"]),
              {"id": _column(graph.categories["id"]), "name": _column(graph.categories["name"])}),
        _Step("Product", _node_statement(schema.PRODUCT, ["name", "price", "brand"]),
              {"id": _column(graph.products["id"]), "name": _column(graph.products["name"]),
               "price": _column(graph.products["price"], "float"), "brand": _column(graph.products["brand"])}),
    ]
    user_props = [c for c in graph.users.columns if c != "id"]
    steps.append(_Step("User", _node_statement(schema.USER, user_props),
                       {"id": _column(graph.users["id"]), **{p: _column(graph.users[p]) for p in user_props}}))
    steps.append(_Step(schema.SUBCATEGORY_OF.type, _rel_statement(schema.SUBCATEGORY_OF, []),
                       {"start": _column(graph.subcategories["child"]),
                        "end": _column(graph.subcategories["parent"])}))
    steps.append(_Step(schema.IN_CATEGORY.type, _rel_statement(schema.IN_CATEGORY, ["primary"]),
                       {"start": _column(graph.in_category["product"]), "end": _column(graph.in_category["category"]),
                        "primary": [bool(v) for v in graph.in_category["primary"]]}))
    for rel_name, frame in graph.social.items():
        rel = schema.rel_type(rel_name)
        steps.append(_Step(rel.type, _rel_statement(rel, []),
                           {"start": _column(frame["start"]), "end": _column(frame["end"])}))
    for rel_name, frame in graph.interactions.items():
        rel = schema.rel_type(rel_name)
        steps.append(_Step(rel.type, _rel_statement(rel, list(schema.INTERACTION_PROPERTIES)),
                           {"start": _column(frame["user"]), "end": _column(frame["product"]),
                            "ts": _column(frame["ts"], "ms"), "weight": _column(frame["weight"], "float"),
                            "split": _column(frame["split"])}))
    return [s for s in steps if len(s)]


def _run_batch(tx: ManagedTransaction, cypher: str, columns: dict[str, list[Any]]) -> None:
    tx.run(cypher, columns).consume()


def write_graph(driver: Driver, graph: Graph, *, database: str = "neo4j", batch_size: int = DEFAULT_BATCH_SIZE,
                progress: bool = True) -> dict[str, float]:
    """Apply the schema and write ``graph``; returns the seconds spent on each step."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    started = time.perf_counter()
    apply_schema(driver, database)
    timings = {"schema": time.perf_counter() - started}
    steps = _steps(graph)
    with tqdm(total=sum(len(s) for s in steps), unit="row", unit_scale=True, disable=not progress,
              desc="loading", dynamic_ncols=True) as bar, driver.session(database=database) as session:
        for step in steps:
            bar.set_description(step.name)
            t0 = time.perf_counter()
            for columns in step.batches(batch_size):
                session.execute_write(_run_batch, step.cypher, columns)
                bar.update(len(columns["c0"]))
            timings[step.name] = time.perf_counter() - t0
    return timings


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
                   progress: bool = True) -> LoadResult:
    """Validate ``directory`` completely, then write it; invalid input raises :class:`InvalidInput`
    before anything is written (unless ``skip_invalid``, which loads the valid rows and writes the
    rejected ones to ``rejects``)."""
    started = time.perf_counter()
    graph, report = validate_directory(Path(directory), skip_invalid=skip_invalid)
    if rejects is not None and not report.fatal:
        report.write_rejects(Path(rejects))
    if graph is None:
        raise InvalidInput(report)
    steps = write_graph(driver, graph, database=database, batch_size=batch_size, progress=progress)
    nodes, rels = database_counts(driver, database)
    return LoadResult(
        nodes=nodes, relationships=rels, rejected=report.rejected, seconds=time.perf_counter() - started,
        validation_seconds=report.seconds, write_seconds=sum(steps.values()), step_seconds=steps,
        files={f: {"rows": c.rows, "loaded": c.loaded, "rejected": c.rejected} for f, c in report.files.items()},
        warnings=report.warnings,
    )
