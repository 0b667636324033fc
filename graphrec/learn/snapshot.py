"""Snapshots: the graph streamed out of Neo4j into Parquet, and loaded back as PyG HeteroData.

A snapshot directory::

    meta.json                  counts, export time, schema version, snapshot id (content hash)
    nodes/user.parquet         index, id, name               (row i has index i: the id map;
                                                              pseudonymised: index, id only)
    nodes/product.parquet      index, id, name, price, brand
    nodes/category.parquet     index, id, name
    edges/bought.parquet       src, dst (node indices), weight, ts (epoch ms), split
    edges/viewed.parquet, edges/rated.parquet      same columns, when present
    edges/friend.parquet       src, dst (stored once per pair, as in Neo4j)
    edges/follows.parquet      src, dst
    edges/in_category.parquet  src (product), dst (category), primary
    edges/subcategory_of.parquet  src, dst (categories)

Export reads each node label in one read transaction, in pages of ``batch_size`` in key order
(keyset paging on the key's unique index); relationships come for batches of start nodes, about
``batch_size`` at a time, each batch its own read transaction, with :data:`EXPORT_STREAMS` queries in
flight so that Neo4j computes the next batches while this process writes one. Each page or batch is
one record of parallel lists, written to Parquet at once. Memory stays bounded by the node keys (a
list and a hash index per label) plus a few batches. Node indices are the rank of the id in sorted
order and relationship files are sorted by (src, dst), so two exports of the same graph give
identical files and the same snapshot id, whichever way the graph was loaded. The snapshot id hashes
the decoded values column by column, not the Parquet bytes (which carry the writer's version).

A *pseudonymised* export (``pseudonym_key``, see :mod:`graphrec.privacy`) writes each user's keyed
pseudonym instead of the id and drops every other user property (names). Users are then indexed
in pseudonym order and the files with user endpoints are sorted by their columns, so neither the
row order nor the indices betray the real ids' order (sequential ids would say who joined when);
``meta.json`` says ``"pseudonymised": true`` with the key's fingerprint, never the key. The same
key and graph give the same snapshot id; another key gives other pseudonyms and another id.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

with warnings.catch_warnings():
    # PyG scripts a pooling helper with torch.jit.script at import, which torch deprecates: a
    # FutureWarning about PyG's code on every command that exports or trains. Only that one is hidden.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning)
    from torch_geometric.data import HeteroData

from graphrec import schema
from graphrec.learn.interactions import SPLIT_CODES, Interactions, carve_validation, default_valid_fraction
from graphrec.privacy import PseudonymKey

if TYPE_CHECKING:
    import neo4j
    from neo4j import Driver

SNAPSHOT_FORMAT = 1
DEFAULT_BATCH_SIZE = 50_000
# Relationship queries in flight at once: Neo4j runs each on one core, so two keep this machine's both busy.
EXPORT_STREAMS = 2

# Node label -> (snapshot node type, properties exported besides the key).
NODE_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    schema.USER.label: ("user", ("name",)),
    schema.PRODUCT.label: ("product", ("name", "price", "brand")),
    schema.CATEGORY.label: ("category", ("name",)),
}
# Relationship types exported (RECOMMENDED is a model's output, not data), with their file names.
EDGE_FILES: dict[str, str] = {
    schema.BOUGHT.type: "bought",
    schema.VIEWED.type: "viewed",
    schema.RATED.type: "rated",
    schema.FRIEND.type: "friend",
    schema.FOLLOWS.type: "follows",
    schema.IN_CATEGORY.type: "in_category",
    schema.SUBCATEGORY_OF.type: "subcategory_of",
}
NODE_TYPE_OF_LABEL = {label: name for label, (name, _) in NODE_FILES.items()}


class SnapshotError(RuntimeError):
    """The snapshot directory is missing files or does not match its metadata."""


# -- export -----------------------------------------------------------------------------------------

def _node_query(label: str, key: str, props: Iterable[str]) -> str:
    """One page of nodes in key order after ``$after`` (keyset paging on the key's unique index), as
    one record of parallel lists: a record per node costs the driver more than the node's data."""
    values = ", ".join([f"n.{key}"] + [f"n.{p}" for p in props])
    # collect() drops nulls, so whole rows are collected and split into columns after.
    split = ", ".join(f"[row IN rows | row[{i}]] AS {c}" for i, c in enumerate(["id", *props]))
    return (f"MATCH (n:{label}) WHERE n.{key} > $after WITH n ORDER BY n.{key} LIMIT $limit "
            f"WITH collect([{values}]) AS rows RETURN {split}")


def _edge_query(rel: schema.RelType) -> str:
    """The relationships of a batch of start nodes (``$keys``) as one record of parallel lists, nulls
    kept in place, each relationship naming its start node by position in ``$keys``: one record per
    start node cost the driver more to decode than the relationships themselves (47k relationships/s
    on ten million, against 160k+ in batches), and sending [key, index] pairs cost the client more
    to build than positions cost the server to count."""
    start, end = schema.node_type(rel.start), schema.node_type(rel.end)
    # Temporal values leave as epoch milliseconds: plain integers in Parquet.
    values = ["i", f"b.{end.key}"] + [f"r.{p}.epochMillis" if p == "ts" else f"r.{p}" for p in rel.properties]
    split = ", ".join(f"[row IN rows | row[{i}]] AS {c}" for i, c in enumerate(["at", "dst", *rel.properties]))
    return (f"UNWIND range(0, size($keys) - 1) AS i WITH i, $keys[i] AS key "
            f"MATCH (a:{rel.start} {{{start.key}: key}})-[r:{rel.type}]->(b:{rel.end}) "
            f"WITH collect([{', '.join(values)}]) AS rows RETURN {split}")


@contextmanager
def _read_tx(driver: "Driver", database: str | None) -> Iterator["neo4j.Transaction"]:
    # Absent labels, types or properties (no FOLLOWS yet, no price) are expected: silence the notices.
    with driver.session(database=database, default_access_mode="READ", notifications_min_severity="OFF") as session:
        with session.begin_transaction() as tx:
            yield tx


def _columns(result: "neo4j.Result") -> dict[str, list]:
    # Not Record.data(): it walks every value of every list in Python (80% of an export's time).
    record = result.single(strict=True)
    return dict(zip(record.keys(), record.values()))


def _node_pages(driver: "Driver", query: str, database: str | None, page: int) -> Iterator[dict[str, list]]:
    """Every node of a label in key order, a page of parallel lists at a time, in one read transaction."""
    with _read_tx(driver, database) as tx:
        after = ""  # every key is a non-empty string (the loader's rule)
        while True:
            columns = _columns(tx.run(query, after=after, limit=page))
            if not columns["id"]:
                return
            yield columns
            after = columns["id"][-1]


def _edge_batches(driver: "Driver", query: str, database: str | None, keys: list, batch_size: int,
                  streams: int = EXPORT_STREAMS) -> Iterator[tuple[int, dict[str, list]]]:
    """The relationships of every start node in ``keys``, about ``batch_size`` at a time, as (position
    of the batch's first key, columns), in key order. ``streams`` queries are in flight at once, each
    its own read transaction: Neo4j runs a query on one core, so the server computes the next batches
    while this thread converts and writes one. Start nodes go in batches sized by the mean degree seen."""

    def read(batch: list) -> dict[str, list]:
        with _read_tx(driver, database) as tx:
            return _columns(tx.run(query, keys=batch))

    per_query, first, seen, rows = 1000, 0, 0, 0
    pending: deque[tuple[int, int, Future]] = deque()
    with ThreadPoolExecutor(streams, thread_name_prefix="export") as pool:
        try:
            while first < len(keys) or pending:
                while first < len(keys) and len(pending) <= streams:  # and one more ready to hand over
                    batch = keys[first:first + per_query]
                    pending.append((first, len(batch), pool.submit(read, batch)))
                    first += len(batch)
                at, size, future = pending.popleft()
                columns = future.result()
                seen, rows = seen + size, rows + len(columns["at"])
                per_query = int(min(max(batch_size * seen / max(rows, 1), 100), 100_000))
                if columns["at"]:
                    yield at, columns
        finally:
            for _, _, future in pending:
                future.cancel()


class _NodeIndex:
    """A label's exported keys in the order they were read, and each key's node index."""

    def __init__(self, label: str, keys: list, index: np.ndarray) -> None:
        self.label, self.keys, self.index = label, keys, index
        self._lookup: pd.Index | None = None

    def of_keys(self, keys: list) -> np.ndarray:
        """The node indices of ``keys`` (a hash lookup in C, not a dict per value in Python)."""
        if self._lookup is None:
            self._lookup = pd.Index(self.keys)
        at = self._lookup.get_indexer(keys)
        if (at < 0).any():  # a node created after its label was read (the export is not one transaction)
            missing = keys[int(np.flatnonzero(at < 0)[0])]
            raise SnapshotError(f"a relationship ends at {self.label} {missing!r}, which was not there when "
                                f"{self.label} nodes were exported (the graph changed during the export); "
                                "export again")
        return self.index[at]


def _edge_table(columns: dict[str, list], first: int, starts: _NodeIndex, ends: _NodeIndex,
                schema_: pa.Schema) -> pa.Table:
    """One batch as a table sorted by (src, dst): batches follow the start nodes' order, so the file
    is sorted whatever order the store keeps relationships in (a bulk and an online load agree)."""
    src = starts.index[first + np.asarray(columns["at"], dtype=np.int64)]
    dst = ends.of_keys(columns["dst"])
    order = np.lexsort((dst, src))  # stable, as the pairs of a user's repeated purchases came
    arrays = [pa.array(src[order]), pa.array(dst[order])]
    arrays += [pa.array(columns[f.name], f.type).take(order) for f in list(schema_)[2:]]
    return pa.Table.from_arrays(arrays, schema=schema_)


def _write_batches(path: Path, batches: Iterable[pd.DataFrame | pa.Table], schema_: pa.Schema) -> int:
    rows = 0
    with pq.ParquetWriter(path, schema_) as writer:
        for batch in batches:
            table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, schema=schema_,
                                                                                   preserve_index=False)
            writer.write_table(table)
            rows += table.num_rows
    return rows


def _check_all_paged(driver: "Driver", database: str | None, node: schema.NodeType, paged: int) -> None:
    """Paging by key passes over nodes whose key is not text (or is missing): refuse, never drop them."""
    records, _, _ = driver.execute_query(f"MATCH (n:{node.label}) RETURN count(n) AS n", database_=database,
                                         routing_="r")
    total = records[0]["n"]
    if total != paged:
        raise SnapshotError(f"{total - paged:,} {node.label} nodes have no {node.key} or one that is not text "
                            f"(GraphRec loads keys as text); nothing exported")


_NODE_SCHEMA = {"name": pa.string(), "price": pa.float64(), "brand": pa.string()}
_EDGE_SCHEMA = {"weight": pa.float64(), "ts": pa.int64(), "split": pa.string(), "primary": pa.bool_()}


def _pseudonymous_users(driver: "Driver", database: str | None, batch_size: int,
                        key: PseudonymKey) -> tuple[list[str], _NodeIndex]:
    """Users' pseudonyms in sorted order, and each real id's index (its pseudonym's rank)."""
    real: list[Any] = []
    for columns in _node_pages(driver, _node_query(schema.USER.label, schema.USER.key, ()), database, batch_size):
        real.extend(columns["id"])
    names = [key.pseudonym(str(u)) for u in real]
    if len(set(names)) != len(names):  # 128-bit hashes: only ids equal as strings (1 and "1") collide
        raise SnapshotError("two user ids have the same pseudonym (ids equal as text?); nothing exported")
    order = np.array(sorted(range(len(real)), key=names.__getitem__), dtype=np.int64)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return [names[i] for i in order], _NodeIndex(schema.USER.label, real, rank)


def _sort_rows(path: Path) -> None:
    """Rewrite a Parquet file with its rows sorted by every column (an order the ids cannot leak into)."""
    table = pq.read_table(path)
    pq.write_table(table.sort_by([(c, "ascending") for c in table.column_names]), path)


def export_snapshot(driver: "Driver", out_dir: str | Path, *, database: str | None = None,
                    batch_size: int = DEFAULT_BATCH_SIZE,
                    pseudonym_key: PseudonymKey | None = None) -> dict[str, Any]:
    """Stream the whole graph out of Neo4j into a snapshot directory; returns its ``meta.json``.

    With ``pseudonym_key`` the snapshot is pseudonymised (see the module docstring).
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    (out / "nodes").mkdir(parents=True, exist_ok=True)
    (out / "edges").mkdir(parents=True, exist_ok=True)
    # meta.json is written last: until then an interrupted export (over an older one) is no snapshot.
    (out / "meta.json").unlink(missing_ok=True)
    index: dict[str, _NodeIndex] = {}
    counts: dict[str, dict[str, int]] = {"nodes": {}, "edges": {}}
    for node in schema.NODE_TYPES:
        name, props = NODE_FILES[node.label]
        if pseudonym_key is not None and node.label == schema.USER.label:
            pseudonyms, index[node.label] = _pseudonymous_users(driver, database, batch_size, pseudonym_key)
            frame = pd.DataFrame({"index": np.arange(len(pseudonyms), dtype=np.int64), "id": pseudonyms})
            counts["nodes"][name] = _write_batches(
                out / "nodes" / f"{name}.parquet",
                (frame.iloc[i:i + batch_size] for i in range(0, len(frame), batch_size)),
                pa.schema([pa.field("index", pa.int64()), pa.field("id", pa.string())]))
            continue
        fields = [pa.field("index", pa.int64()), pa.field("id", pa.string())]
        fields += [pa.field(p, _NODE_SCHEMA[p]) for p in props]
        keys: list = []

        def frames() -> Iterator[pd.DataFrame]:
            for columns in _node_pages(driver, _node_query(node.label, node.key, props), database, batch_size):
                frame = pd.DataFrame(columns)
                frame.insert(0, "index", np.arange(len(keys), len(keys) + len(frame), dtype=np.int64))
                keys.extend(columns["id"])
                frame["id"] = frame["id"].astype(str)
                yield frame

        counts["nodes"][name] = _write_batches(out / "nodes" / f"{name}.parquet", frames(),
                                               pa.schema(fields))
        index[node.label] = _NodeIndex(node.label, keys, np.arange(len(keys), dtype=np.int64))
        _check_all_paged(driver, database, node, len(keys))
    for rel_name, file in EDGE_FILES.items():
        rel = schema.rel_type(rel_name)
        fields = [pa.field("src", pa.int64()), pa.field("dst", pa.int64())]
        fields += [pa.field(p, _EDGE_SCHEMA[p]) for p in rel.properties]
        starts, ends, edge_schema = index[rel.start], index[rel.end], pa.schema(fields)
        batches = _edge_batches(driver, _edge_query(rel), database, starts.keys, batch_size)
        counts["edges"][file] = _write_batches(
            out / "edges" / f"{file}.parquet",
            (_edge_table(columns, first, starts, ends, edge_schema) for first, columns in batches), edge_schema)
        if pseudonym_key is not None and schema.USER.label in (rel.start, rel.end):
            _sort_rows(out / "edges" / f"{file}.parquet")
    digest = hashlib.sha256()
    for path in sorted((out / "nodes").glob("*.parquet")) + sorted((out / "edges").glob("*.parquet")):
        digest.update(path.name.encode())
        digest.update(_content_digest(path))
    meta = {
        "snapshot_format": SNAPSHOT_FORMAT,
        "schema_version": schema.SCHEMA_VERSION,
        "snapshot_id": digest.hexdigest()[:16],
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "export_seconds": round(time.perf_counter() - t0, 3),
        "pseudonymised": pseudonym_key is not None,
        **({"pseudonym_key_fingerprint": pseudonym_key.fingerprint} if pseudonym_key is not None else {}),
        "counts": counts,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return meta


def _content_digest(path: Path) -> bytes:
    """A hash of a Parquet file's decoded values, column by column, read in batches (bounded memory):
    the same for the same rows whatever the writer's version or row groups."""
    columns: dict[str, Any] = {}
    for batch in pq.ParquetFile(path).iter_batches(batch_size=1 << 20):
        for name, array in zip(batch.schema.names, batch.columns):
            hashed = columns.setdefault(name, hashlib.sha256(name.encode()))
            hashed.update(np.asarray(array.is_valid()).tobytes())
            if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
                hashed.update(np.asarray(pc.binary_length(array).fill_null(0), dtype=np.int64).tobytes())
                hashed.update(pc.binary_join(pa.array([array.fill_null("")], pa.list_(array.type)), "")[0].as_buffer())
            else:
                hashed.update(np.asarray(array.fill_null(False if pa.types.is_boolean(array.type) else 0)).tobytes())
    return b"".join(h.digest() for h in columns.values())


# -- load -------------------------------------------------------------------------------------------

def _read(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SnapshotError(f"snapshot file missing: {path}")
    return pq.read_table(path).to_pandas()


def _edge_index(frame: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(np.stack([frame["src"].to_numpy(np.int64), frame["dst"].to_numpy(np.int64)]),
                        dtype=torch.long).reshape(2, -1)


def assign_split(bought: pd.DataFrame, num_users: int, *, split: str = "auto",
                 test_fraction: float = 0.2, valid_fraction: float | None = None,
                 seed: int = 2024) -> np.ndarray:
    """Split code (0 train, 1 valid, 2 test) per interaction.

    ``auto``: the ``split`` property decides where present (missing -> train); if no interaction has
    one, per-user random ``test_fraction`` to test. ``random`` ignores the property and does that;
    ``temporal`` holds out each user's latest ``test_fraction`` by ``ts``. When no interaction is
    marked valid, ``valid_fraction`` of each user's training interactions become validation, so
    early stopping never looks at the test set; by default
    :func:`~graphrec.learn.interactions.default_valid_fraction` (10%, at most about ``VALID_PAIRS`` pairs).
    """
    n = len(bought)
    codes = np.zeros(n, dtype=np.int64)
    has_property = "split" in bought and bought["split"].notna().any()
    users = bought["src"].to_numpy(np.int64)
    if split == "auto" and has_property:
        marked = bought["split"].map(SPLIT_CODES)
        unknown = bought["split"].notna() & marked.isna()
        if unknown.any():
            raise SnapshotError(f"unknown split values {sorted(set(bought['split'][unknown]))}; "
                                f"expected one of {list(SPLIT_CODES)}")
        codes = marked.fillna(0).to_numpy(np.int64).copy()
    elif split in ("auto", "random"):
        pairs = torch.tensor(np.stack([users, np.arange(n)]))
        _, held = carve_validation(pairs, test_fraction, seed)
        codes[held[1].numpy()] = SPLIT_CODES["test"]
    elif split == "temporal":
        if "ts" not in bought or bought["ts"].isna().all():
            raise SnapshotError("--split temporal needs interaction timestamps (ts); none found")
        ts = bought["ts"].fillna(bought["ts"].min()).to_numpy(np.float64)
        order = np.lexsort((np.arange(n), ts, users))  # by user, then time
        users_sorted = users[order]
        counts = np.bincount(users_sorted, minlength=num_users)
        start = np.cumsum(counts) - counts
        rank = np.arange(n) - start[users_sorted]
        n_test = np.minimum(np.floor(counts * test_fraction), np.maximum(counts - 1, 0))
        is_test = rank >= counts[users_sorted] - n_test[users_sorted]
        codes[order[is_test]] = SPLIT_CODES["test"]
    else:
        raise ValueError(f"unknown split {split!r} (auto, random or temporal)")
    train = np.nonzero(codes == SPLIT_CODES["train"])[0]
    if valid_fraction is None:
        valid_fraction = default_valid_fraction(len(train))
    if not (codes == SPLIT_CODES["valid"]).any() and valid_fraction > 0:
        pairs = torch.tensor(np.stack([users[train], train]))
        _, valid = carve_validation(pairs, valid_fraction, seed + 1)
        codes[valid[1].numpy()] = SPLIT_CODES["valid"]
    return codes


def load_snapshot(path: str | Path, *, split: str = "auto", test_fraction: float = 0.2,
                  valid_fraction: float | None = None, seed: int = 2024) -> HeteroData:
    """The snapshot as HeteroData, holding what the models read and nothing else.

    Node types ``user``, ``product``, ``category`` (``num_nodes``; ``ids``: graph ids in index
    order). Edge types: ``(user, bought, product)`` with ``split`` (codes of
    :data:`graphrec.learn.interactions.SPLIT_CODES`, see :func:`assign_split`; read by
    :func:`to_interactions`) and its reverse ``(product, rev_bought, user)`` holding **training
    edges only** (message passing must never see valid/test edges); ``(user, friend, user)`` in both
    directions; ``(user, follows, user)``; ``(product, in_category, category)`` (the models build the
    reverse directions they aggregate over themselves: :mod:`graphrec.learn.models.inputs`).
    Everything else the export writes (weights, timestamps, viewed/rated, subcategories, prices,
    brands) stays in the Parquet files until a model reads it: a feature built here and read by no
    model is dead weight (and its absence in training would go unnoticed).
    """
    root = Path(path)
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise SnapshotError(f"{root} is not a snapshot: no meta.json (create one with `graphrec export`)")
    meta = json.loads(meta_path.read_text())
    if meta.get("snapshot_format") != SNAPSHOT_FORMAT:
        raise SnapshotError(f"{root}: snapshot_format {meta.get('snapshot_format')!r}, expected "
                            f"{SNAPSHOT_FORMAT}; export it again")
    if meta.get("pseudonymised") and not meta.get("pseudonym_key_fingerprint"):
        raise SnapshotError(f"{root}/meta.json: pseudonymised but no pseudonym_key_fingerprint; export it again")
    data = HeteroData()
    data.snapshot_id = meta["snapshot_id"]
    data.meta = meta
    nodes = {name: _read(root / "nodes" / f"{name}.parquet") for name in ("user", "product", "category")}
    for name, frame in nodes.items():
        if not (frame["index"].to_numpy() == np.arange(len(frame))).all():
            raise SnapshotError(f"{root}: nodes/{name}.parquet indices are not 0..n-1 in order")
        data[name].num_nodes = len(frame)
        data[name].ids = frame["id"].astype(str).tolist()
    edges = {file: _read(root / "edges" / f"{file}.parquet")
             for file in ("bought", "friend", "follows", "in_category")}
    bought = edges["bought"]
    codes = assign_split(bought, len(nodes["user"]), split=split, test_fraction=test_fraction,
                         valid_fraction=valid_fraction, seed=seed)
    store = data["user", "bought", "product"]
    store.edge_index = _edge_index(bought)
    store.split = torch.tensor(codes)
    data["product", "rev_bought", "user"].edge_index = store.edge_index[:, store.split == SPLIT_CODES["train"]].flip(0)
    friend = _edge_index(edges["friend"])
    data["user", "friend", "user"].edge_index = torch.cat([friend, friend.flip(0)], 1)
    data["user", "follows", "user"].edge_index = _edge_index(edges["follows"])
    data["product", "in_category", "category"].edge_index = _edge_index(edges["in_category"])
    return data


def to_interactions(data: HeteroData) -> Interactions:
    """The flat tensors training uses: bought pairs by split, social and category edges."""
    store = data["user", "bought", "product"]
    ei, split = store.edge_index, store.split
    social = [data["user", "friend", "user"].edge_index, data["user", "follows", "user"].edge_index]
    return Interactions(
        num_users=data["user"].num_nodes,
        num_items=data["product"].num_nodes,
        train=ei[:, split == SPLIT_CODES["train"]],
        valid=ei[:, split == SPLIT_CODES["valid"]],
        test=ei[:, split == SPLIT_CODES["test"]],
        social=torch.cat(social, 1),
        follows=social[1],
        item_category=data["product", "in_category", "category"].edge_index,
        num_categories=data["category"].num_nodes,
        user_ids=list(data["user"].ids),
        item_ids=list(data["product"].ids),
        category_ids=list(data["category"].ids),
        snapshot_id=str(data.snapshot_id),
        pseudonym_fingerprint=pseudonym_fingerprint(getattr(data, "meta", {})),
    )


def pseudonym_fingerprint(meta: dict[str, Any]) -> str | None:
    """The key fingerprint of a pseudonymised snapshot's ``meta.json``; None for a plain one."""
    return str(meta["pseudonym_key_fingerprint"]) if meta.get("pseudonymised") else None
