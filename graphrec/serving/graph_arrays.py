"""One read of the graph as flat arrays: the immutable base of the serving index.

Ids are interned once per read: each kind of node is a sorted array of its ids as fixed-width
UTF-8 bytes, and a node's number is its position there (a lookup is a binary search; no Python
object per node). Every relation is a :class:`~graphrec.serving.csr.Csr` over those numbers, and
names are one UTF-8 buffer with offsets. A read is therefore a handful of numpy arrays: cheap to
hand from the reader process to the service (:mod:`graphrec.serving.transfer`) and to compare
with the previous read (:func:`compare`) without a Python loop per key.

Sorted ids make numbering by id order, so sorted rows are also in id order, and the numbering of
two reads maps monotonically onto each other (what :func:`~graphrec.serving.csr.differing_rows` needs).
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field, fields
from itertools import repeat
from typing import Iterable, Iterator, Sequence

import numpy as np

from graphrec.serving.csr import Csr, differing_rows, frozen

KINDS = ("user", "product", "category")
_FIELD = {"user": "users", "product": "products", "category": "categories"}  # GraphArrays' field per kind
# Each relation: (the kind of its rows, the kind of its columns). The first group is read from the
# graph; the second is derived (transposes, FRIEND both ways).
STORED: dict[str, tuple[str, str]] = {
    "bought": ("user", "product"), "touched": ("user", "product"), "friend_out": ("user", "user"),
    "follows": ("user", "user"), "interests": ("user", "category"),
    "product_categories": ("product", "category"),
}
DERIVED: dict[str, tuple[str, str]] = {
    "buyers": ("product", "user"), "friends": ("user", "user"), "followed_by": ("user", "user"),
    "category_products": ("category", "product"),
}
RELATIONS = {**STORED, **DERIVED}
# Relations whose rows keep their stored order and repeats (a tuple, not a set).
ORDERED = ("interests",)
# A user's evidence for fold-in: a change re-stamps the user (a cached vector is stale).
EVIDENCE = ("bought", "touched", "friends", "follows", "followed_by", "interests")
# What the recommender keeps per product: a change there is sent to it at a reload.
PRODUCT_FIELDS = ("product_categories", "buyers")


@dataclass(frozen=True)
class IdTable:
    """The ids of one kind of node, sorted, as fixed-width UTF-8 bytes: a node's number is its position."""

    ids: np.ndarray  # dtype S<longest id>

    def __len__(self) -> int:
        return len(self.ids)

    def find(self, node_id: str) -> int:
        """The id's number, -1 when absent."""
        key = node_id.encode()
        if not self.ids.size or len(key) > self.ids.itemsize or key.endswith(b"\0"):
            return -1  # longer than any id here; numpy's bytes drop trailing NULs, so never ours
        at = int(np.searchsorted(self.ids, key))
        return at if at < len(self.ids) and self.ids[at] == key else -1

    def find_all(self, keys: np.ndarray) -> np.ndarray:
        """Numbers of many ids (a bytes array), -1 where absent."""
        if not self.ids.size or not keys.size:
            return np.full(len(keys), -1, dtype=np.int64)
        fits = np.char.str_len(keys) <= self.ids.itemsize  # a longer key would be cut short, then match
        keys = keys.astype(self.ids.dtype)
        at = np.minimum(np.searchsorted(self.ids, keys), len(self.ids) - 1)
        return np.where(fits & (self.ids[at] == keys), at, -1)

    def find_many(self, node_ids: Sequence[str]) -> np.ndarray:
        return self.find_all(np.array([i.encode() for i in node_ids], dtype=bytes))

    def id(self, number: int) -> str:
        return self.ids[number].decode()

    def decode(self, numbers: np.ndarray) -> list[str]:
        return [raw.decode() for raw in self.ids[numbers].tolist()]


@dataclass(frozen=True)
class Texts:
    """Optional strings (names) as one UTF-8 buffer with offsets: no Python object per string."""

    offsets: np.ndarray  # int64, one more than the strings
    data: np.ndarray  # uint8
    missing: np.ndarray  # bool: None

    @classmethod
    def of(cls, values: Sequence[str | None]) -> "Texts":
        raw = [(v or "").encode() for v in values]
        offsets = np.zeros(len(raw) + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, raw), dtype=np.int64, count=len(raw)), out=offsets[1:])
        data = np.frombuffer(b"".join(raw), dtype=np.uint8).copy()
        missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
        return cls(frozen(offsets), frozen(data), frozen(missing))

    def values(self, numbers: Iterable[int]) -> Iterator[str | None]:
        """Many strings in one pass over the buffer."""
        data, offsets, missing = self.data.tobytes(), self.offsets.tolist(), self.missing.tolist()
        past = len(missing)
        return (None if i >= past or missing[i] else data[offsets[i]:offsets[i + 1]].decode() for i in numbers)

    def get(self, i: int) -> str | None:
        if i >= len(self.missing) or self.missing[i]:
            return None
        return self.data[self.offsets[i]:self.offsets[i + 1]].tobytes().decode()


@dataclass(frozen=True)
class Nodes:
    ids: IdTable
    present: np.ndarray  # bool; False: only named by a relation (a node deleted while the graph was read)
    names: Texts

    @classmethod
    def empty(cls) -> "Nodes":
        return cls(IdTable(frozen(np.zeros(0, dtype="S1"))), frozen(np.zeros(0, dtype=bool)), Texts.of([]))


@dataclass(frozen=True)
class GraphArrays:
    users: Nodes
    products: Nodes
    categories: Nodes
    prices: np.ndarray  # float64 per product, NaN: no price
    relations: dict[str, Csr]

    @classmethod
    def empty(cls) -> "GraphArrays":
        return cls(Nodes.empty(), Nodes.empty(), Nodes.empty(), frozen(np.zeros(0)),
                   {name: Csr.empty(with_values=name == "bought") for name in RELATIONS})

    def nodes(self, kind: str) -> Nodes:
        return getattr(self, _FIELD[kind])

    @property
    def nbytes(self) -> int:
        """Bytes of every array (what the index holds beyond a few Python objects)."""
        def size(obj: object) -> int:
            if isinstance(obj, np.ndarray):
                return obj.nbytes
            if isinstance(obj, dict):
                return sum(map(size, obj.values()))
            if hasattr(obj, "__dataclass_fields__"):
                return sum(size(getattr(obj, f.name)) for f in fields(obj))
            return 0
        return size(self)


@dataclass
class _Interner:
    """Ids of one kind in the order first seen, while a read is being built."""

    numbers: dict[str, int] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    names: list[str | None] = field(default_factory=list)
    present: bytearray = field(default_factory=bytearray)

    def number(self, node_id: str) -> int:
        n = self.numbers.get(node_id)
        if n is None:
            n = self.numbers[node_id] = len(self.ids)
            self.ids.append(node_id)
            self.names.append(None)
            self.present.append(0)
        return n

    def sorted(self) -> tuple[Nodes, np.ndarray]:
        """The nodes by id, and each first-seen number's position there."""
        raw = np.array([i.encode() for i in self.ids], dtype=bytes) if self.ids else np.zeros(0, dtype="S1")
        order = np.argsort(raw, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        present = np.frombuffer(bytes(self.present), dtype=bool)[order] if self.ids else np.zeros(0, dtype=bool)
        names = Texts.of([self.names[i] for i in order.tolist()])
        return Nodes(IdTable(frozen(raw[order])), frozen(present), names), rank


class Builder:
    """Collects one read (nodes by id, edges by row number and column id) in compact buffers:
    no Python container per relationship, 8 to 16 bytes an edge until :meth:`build`."""

    def __init__(self) -> None:
        self._kinds = {kind: _Interner() for kind in KINDS}
        self._prices = array("d")
        self._edges = {name: (array("q"), array("i"), array("d")) for name in STORED}

    def node(self, kind: str, node_id: str, name: str | None) -> int:
        interner = self._kinds[kind]
        n = interner.number(node_id)
        interner.names[n], interner.present[n] = name, 1
        return n

    def price(self, product: int, price: float | None) -> None:
        missing = product + 1 - len(self._prices)
        if missing > 0:
            self._prices.extend(repeat(math.nan, missing))
        self._prices[product] = math.nan if price is None else price

    def edges(self, relation: str, row: int, columns: Iterable[str], values: Iterable[float | None] = ()) -> None:
        src, dst, vals = self._edges[relation]
        interner = self._kinds[STORED[relation][1]]
        before = len(dst)
        dst.extend(interner.number(c) for c in columns)
        src.extend(repeat(row, len(dst) - before))
        vals.extend(math.nan if v is None else v for v in values)

    def build(self) -> GraphArrays:
        nodes, rank = {}, {}
        for kind, interner in self._kinds.items():
            nodes[kind], rank[kind] = interner.sorted()
        n = {kind: len(nodes[kind].ids) for kind in KINDS}
        prices = np.full(n["product"], np.nan)
        given = np.frombuffer(self._prices, dtype=np.float64) if len(self._prices) else np.zeros(0)
        prices[rank["product"][: len(given)]] = given[: n["product"]]
        rel: dict[str, Csr] = {}
        for name, (src, dst, vals) in self._edges.items():
            rows, cols = STORED[name]
            s = rank[rows][np.frombuffer(src, dtype=np.int64)] if len(src) else np.zeros(0, dtype=np.int64)
            d = rank[cols][np.frombuffer(dst, dtype=np.int32)] if len(dst) else np.zeros(0, dtype=np.int64)
            v = np.frombuffer(vals, dtype=np.float64) if name == "bought" else None
            rel[name] = Csr.build(s, d, n[rows], v, keep_order=name in ORDERED)
        self._edges.clear()  # the buffers are copied into the arrays: free them before deriving
        rel["buyers"] = rel["bought"].transposed(n["product"])
        out = rel["friend_out"]
        rel["friends"] = Csr.build(np.concatenate([out.sources(), out.indices]),
                                   np.concatenate([out.indices, out.sources()]), n["user"])
        rel["followed_by"] = rel["follows"].transposed(n["user"])
        rel["category_products"] = rel["product_categories"].transposed(n["category"])
        return GraphArrays(nodes["user"], nodes["product"], nodes["category"], frozen(prices), rel)


@dataclass
class Changes:
    """What differs between two reads, by id: what a reload re-stamps and tells the recommender."""

    users: set[str] = field(default_factory=set)  # evidence changed (or the user came or went)
    products: set[str] = field(default_factory=set)  # price, categories or buyers changed (or came or went)
    users_gone: set[str] = field(default_factory=set)
    users_arrived: set[str] = field(default_factory=set)

    def size(self) -> int:
        return len(self.users) + len(self.products)


def compare(old: GraphArrays, new: GraphArrays) -> Changes:
    """The users and products whose fields differ between two reads (numpy over whole arrays)."""
    maps = {kind: new.nodes(kind).ids.find_all(old.nodes(kind).ids.ids) for kind in KINDS}
    changed = {"user": set(), "product": set()}
    came_went: dict[str, tuple[set[str], set[str]]] = {}
    for kind in ("user", "product"):
        before, after, to_new = old.nodes(kind), new.nodes(kind), maps[kind]
        was = np.zeros(len(after.ids), dtype=bool)
        was[to_new[(to_new >= 0) & before.present]] = True
        stays = (to_new >= 0) & after.present[np.maximum(to_new, 0)] if len(after.ids) else np.zeros(len(to_new), bool)
        gone = set(before.ids.decode(np.flatnonzero(before.present & ~stays)))
        arrived = set(after.ids.decode(np.flatnonzero(after.present & ~was)))
        came_went[kind] = gone, arrived
        changed[kind] |= gone | arrived
    for name in (*EVIDENCE, *PRODUCT_FIELDS):
        rows, cols = RELATIONS[name]
        differ = differing_rows(old.relations[name], new.relations[name], maps[rows], maps[cols])
        changed[rows] |= set(new.nodes(rows).ids.decode(differ))
    pairs = np.flatnonzero(maps["product"] >= 0)
    a, b = old.prices[pairs], new.prices[maps["product"][pairs]]
    repriced = pairs[(a != b) & ~(np.isnan(a) & np.isnan(b))]
    changed["product"] |= set(old.products.ids.decode(repriced))
    return Changes(changed["user"], changed["product"], *came_went["user"])
