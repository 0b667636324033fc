"""Bulk loading: a validated shop written by Neo4j's own offline importer into an empty database.

``graphrec load DIR --bulk`` validates exactly like the online load (:func:`graphrec.store.loader.validated`:
the same rules, rejected rows and counts), then writes the validated rows as the importer's CSV
(one header file and one data file per label and relationship type, ids as strings in one ID
space per label) and runs ``neo4j-admin database import full`` from the same jars as the server
(:meth:`LocalNeo4j.import_full`). The importer writes store files directly, so it needs the local
server stopped and an empty database: a running server is stopped for the import and started
again, a home whose server was never started gets its password and config first, and a database
holding any node, or an external ``NEO4J_URI``, is refused before anything is stopped. Afterwards
the server runs and the schema of :mod:`graphrec.schema` is applied, as the online load does.

The graph is the one the online load writes: the same properties with the same types (``ts`` a
UTC datetime from epoch milliseconds, ``weight`` and ``price`` floats, ``primary`` a boolean, user
attributes as :func:`graphrec.ingest.validate._typed` typed them, missing values absent).
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graphrec import schema
from graphrec.config import Settings
from graphrec.ingest.validate import Graph
from graphrec.neo4j.server import LocalNeo4j
from graphrec.store.driver import connect
from graphrec.store.loader import LoadResult, load_lock, load_result, validated
from graphrec.store.schema import apply_schema

# Community serves one user database, the default one; the importer can only fill that.
DEFAULT_DATABASE = "neo4j"


class BulkLoadRefused(RuntimeError):
    """The bulk load cannot run here (external server, non-empty database); nothing was written."""


@dataclass
class _File:
    """One importer input: ``--nodes=Label=header,data`` or ``--relationships=TYPE=header,data``."""

    option: str  # "nodes" or "relationships"
    name: str  # label or type
    header: list[str]
    table: pa.Table

    def write(self, directory: Path) -> str:
        header, data = directory / f"{self.name}.header.csv", directory / f"{self.name}.csv"
        with open(header, "w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerow(self.header)
        # "needed" quotes every string (doubling inner quotes, as the importer reads them) and leaves
        # nulls as empty unquoted fields, which the importer leaves out: a missing property stays absent.
        pacsv.write_csv(self.table, data, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        return f"--{self.option}={self.name}={header},{data}"

    def multiline(self) -> bool:
        """Whether a string value spans lines (the importer must then be told: it is slower)."""
        for column in self.table.columns:
            if pa.types.is_string(column.type) and pc.any(pc.match_substring_regex(column, r"[\r\n]")).as_py():
                return True
        return False


def _header_name(name: str, where: str) -> str:
    # The importer's header splits "name:type"; a property name with a colon cannot be said there.
    if ":" in name:
        raise BulkLoadRefused(f"{where}: property {name!r} contains ':', which Neo4j's importer reads as a type; "
                              "load without --bulk")
    return name


def _typed_column(values: pd.Series) -> tuple[str, pa.Array]:
    """A property column as (importer type, arrow array): the type the online load's values have."""
    present = values[values.notna()]
    first = present.iloc[0] if len(present) else None
    if isinstance(first, (bool, np.bool_)):
        return "boolean", pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.bool_())
    if isinstance(first, (int, np.integer)):
        return "long", pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.int64())
    if isinstance(first, (float, np.floating)):
        return "double", pa.array(values.astype(float), pa.float64(), from_pandas=True)
    return "string", pa.array(values.astype(object).where(values.notna(), None).tolist(), pa.string())


def _node_file(node: schema.NodeType, frame: pd.DataFrame) -> _File:
    header, arrays = [f"{node.key}:ID({node.label})"], [pa.array(frame["id"].astype(str).tolist(), pa.string())]
    for column in frame.columns:
        if column == "id":
            continue
        kind, array = _typed_column(frame[column])
        header.append(f"{_header_name(column, node.label)}:{kind}")
        arrays.append(array)
    return _File("nodes", node.label, header, pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))]))


def _datetimes(ms: np.ndarray) -> pa.Array:
    """Epoch milliseconds (NaN = missing) as ISO-8601 UTC text, what ``datetime({epochMillis})`` gives."""
    missing = np.isnan(ms)
    text = np.datetime_as_string(np.where(missing, 0, ms).astype(np.int64).astype("datetime64[ms]"),
                                 unit="ms", timezone="UTC")
    return pa.array(text, pa.string(), mask=missing)


def _ids(values: pd.Series) -> pa.Array:
    """A column of ids as Arrow strings: as they are where they are Arrow strings already (no
    Python string made per id), else converted."""
    return pa.array(values.astype(str)).cast(pa.string())


def _rel_file(rel: schema.RelType, frame: pd.DataFrame, start: str, end: str,
              properties: dict[str, tuple[str, pa.Array]]) -> _File:
    header = [f":START_ID({rel.start})", f":END_ID({rel.end})"] + [f"{p}:{kind}" for p, (kind, _) in properties.items()]
    arrays = [_ids(frame[start]), _ids(frame[end])] + [a for _, a in properties.values()]
    return _File("relationships", rel.type, header,
                 pa.Table.from_arrays(arrays, names=[f"c{i}" for i in range(len(arrays))]))


def import_files(graph: Graph) -> list[_File]:
    """The importer's inputs for ``graph``, with the properties and types the online load writes."""
    files = [
        _node_file(schema.CATEGORY, graph.categories[["id", *[p for p in schema.CATEGORY.properties if p != "id"]]]),
        _node_file(schema.PRODUCT, graph.products[["id", *[p for p in schema.PRODUCT.properties if p != "id"]]]),
        _node_file(schema.USER, graph.users),
        _rel_file(schema.SUBCATEGORY_OF, graph.subcategories, "child", "parent", {}),
        _rel_file(schema.IN_CATEGORY, graph.in_category, "product", "category",
                  {"primary": ("boolean", pa.array(graph.in_category["primary"].astype(bool), pa.bool_()))}),
    ]
    for rel_name, frame in graph.social.items():
        files.append(_rel_file(schema.rel_type(rel_name), frame, "start", "end", {}))
    for rel_name, frame in graph.interactions.items():
        files.append(_rel_file(schema.rel_type(rel_name), frame, "user", "product", {
            "ts": ("datetime", _datetimes(frame["ts"].to_numpy(dtype=float))),
            "weight": ("double", pa.array(frame["weight"].to_numpy(dtype=float), pa.float64(), from_pandas=True)),
            "split": ("string", pa.array(frame["split"], pa.string(), from_pandas=True)),
        }))
    return [f for f in files if f.table.num_rows]


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _refuse_unless_empty(settings: Settings, database: str) -> None:
    """Refuse a database holding any node; holds the load lock so no online load is running."""
    driver = connect(settings)
    try:
        with load_lock(driver, database), driver.session(database=database) as session:
            found = session.run("MATCH (n) RETURN count(n) AS c").single()["c"]
    finally:
        driver.close()
    if found:
        raise BulkLoadRefused(f"database {database!r} is not empty ({found:,} nodes): --bulk loads only into an "
                              "empty database. Load without --bulk (incremental, MERGE on ids), or use a new "
                              "GRAPHREC_HOME")


def bulk_load_directory(settings: Settings, directory: Path, *, skip_invalid: bool = False,
                        rejects: Path | None = None, progress: bool = True) -> LoadResult:
    """Validate ``directory`` as :func:`graphrec.store.loader.load_directory` does, then import it
    into the local server's empty database with Neo4j's offline importer; the server runs afterwards.

    Raises :class:`BulkLoadRefused` (external server, another database than Community's one, a
    non-empty database) and :class:`~graphrec.store.loader.InvalidInput`, both before the server is touched."""
    if settings.external:
        raise BulkLoadRefused(f"--bulk runs Neo4j's offline importer on the local server's files, but NEO4J_URI "
                              f"points at an external server ({settings.neo4j_uri}): load without --bulk, or run "
                              "neo4j-admin database import on that server")
    database = settings.neo4j_database
    if database != DEFAULT_DATABASE:
        raise BulkLoadRefused(f"--bulk imports into Neo4j Community's one database, {DEFAULT_DATABASE!r}, "
                              f"not {database!r}")
    started = time.perf_counter()
    graph, report = validated(directory, skip_invalid=skip_invalid, rejects=rejects)
    server = LocalNeo4j(settings)
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    server.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="bulk-", dir=server.root))
    try:
        files = import_files(graph)
        arguments = [f.write(work) for f in files]
        if any(f.multiline() for f in files if f.option == "nodes"):
            arguments.append("--multiline-fields=true")
        steps["csv"] = time.perf_counter() - t0
        was_running = server.is_running()
        t0 = time.perf_counter()
        if (server.data_dir / "databases" / database).exists():  # a store exists: it must be empty
            if not was_running:
                _say(progress, "starting the local Neo4j to check that the database is empty ...")
                server.start()
            try:
                _refuse_unless_empty(settings, database)
            except BulkLoadRefused:
                if not was_running:
                    server.stop()
                raise
        _say(progress, "stopping the local Neo4j for the import ...")
        server.stop()
        steps["stop"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        _say(progress, f"importing with neo4j-admin (log: {server.logs_dir / 'bulk-import.log'}) ...")
        try:
            server.import_full(arguments, report=server.logs_dir / "bulk-import.report", database=database,
                               log=server.logs_dir / "bulk-import.log")
        except Exception:
            # The database was empty: leave it empty rather than half imported, and the server as it was.
            for part in ("databases", "transactions"):
                shutil.rmtree(server.data_dir / part / database, ignore_errors=True)
            if was_running:
                server.start()
            raise
        steps["import"] = time.perf_counter() - t0
    finally:
        shutil.rmtree(work, ignore_errors=True)
    t0 = time.perf_counter()
    _say(progress, "starting the local Neo4j and applying the schema ...")
    server.start()
    steps["start"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    driver = connect(settings)
    try:
        apply_schema(driver, database)
        steps["schema"] = time.perf_counter() - t0
        return load_result(report, steps, driver, database, started)
    finally:
        driver.close()

