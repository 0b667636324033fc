"""An in-memory copy of the parts of the graph that serving reads on every request.

Recommendations exclude what the user bought, explanations walk friends, purchases and categories,
promotions aggregate friends' purchases: doing that with a Cypher round trip per request would cost
more than the whole model scoring. So the service reads these relations once from Neo4j at startup
(a handful of streamed queries) and applies its own writes (cold start, new interactions, new
friendships, new products) to this copy *after* they commit in Neo4j, so the copy never holds an
edge the database does not. Every explanation path built from it is therefore a real path in
Neo4j; a reload catches up with writes made behind the service's back (a new load).

Layout: a read of the graph is flat integer arrays (:mod:`graphrec.serving.graph_arrays`: ids
interned once, every relation as compressed sparse rows, about 16 bytes a purchase with its time
and its reverse edge), and live writes go to a small overlay on top of it: per node, the whole new
row of each relation it changed. Reads look in the overlay, then in the arrays, and answer with
plain Python values (ids, sets, dicts) at the edge. The overlay folds into fresh arrays at the next
reload, which reads the whole graph and swaps a new index in.

Concurrency: requests read an index without any lock while writes mirror into it. That is safe
because the arrays are never written (they are read-only) and the overlay is only changed
copy-on-write: a live write stores a new row array under the node's number (one atomic dict store
under the GIL) and never changes an array a reader may hold. Writers are serialised by the
service; readers never wait. A reload builds its index beside the served one, replays the writes
that landed meanwhile (the service's journal), carries the evidence stamps over and bumps those of
every user whose evidence differs (:meth:`GraphIndex.successor`), then is published whole.
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import neo4j
import numpy as np
from neo4j import Driver

from graphrec import schema
from graphrec.circle import CirclePurchases
from graphrec.serving.csr import (EMPTY, EMPTY_VALUES, bitset, common, contains, in_bitset, merged, with_added,
                                  without)
from graphrec.serving.graph_arrays import KINDS, RELATIONS, Builder, Changes, GraphArrays

# A product bought by at least one user in this many has its buyers held as a bitset as well (for
# co-buyers): the bitset then takes at most twice the bytes of the row itself (1 bit per user
# against 32 bits per buyer), so it adds at most 8 bytes per purchase of those products.
BITSET_SHARE = 64
FEW_IDS = 16  # up to this many ids are looked up one by one in the memo: a search in C costs 12 us a call
# Co-buyers remembered per pair of products, before the memo starts afresh: the count and the
# first CO_BUYERS_KEPT to name (a list skips the user and at most three users it named already).
PAIR_MEMO_MAX = 100_000
CO_BUYERS_KEPT = 4

# A DateTime leaves as epoch seconds: the driver builds a Python datetime for each one otherwise, 30 us
# a purchase (most of a 100k-user shop's read). Anything else (a date, text) is read as stored.
_TS_SECONDS = "CASE WHEN r.ts IS :: ZONED DATETIME THEN r.ts.epochMillis / 1000.0 ELSE r.ts END"

_USERS = f"""
MATCH (u:{schema.USER.label})
RETURN u.{schema.USER.key} AS id, u.name AS name,
       [(u)-[r:{schema.BOUGHT.type}]->(p:{schema.PRODUCT.label}) | [p.{schema.PRODUCT.key}, {_TS_SECONDS}]] AS bought,
       [(u)-[:{schema.VIEWED.type}|{schema.RATED.type}]->(p:{schema.PRODUCT.label}) | p.{schema.PRODUCT.key}]
         AS touched,
       [(u)-[:{schema.FRIEND.type}]->(f:{schema.USER.label}) | f.{schema.USER.key}] AS friends_out,
       [(u)-[:{schema.FOLLOWS.type}]->(f:{schema.USER.label}) | f.{schema.USER.key}] AS follows,
       u.interests AS interests
"""

_PRODUCTS = f"""
MATCH (p:{schema.PRODUCT.label})
RETURN p.{schema.PRODUCT.key} AS id, p.name AS name, p.price AS price,
       [(p)-[:{schema.IN_CATEGORY.type}]->(c:{schema.CATEGORY.label}) | c.{schema.CATEGORY.key}] AS categories
"""

_CATEGORIES = f"""
MATCH (c:{schema.CATEGORY.label}) RETURN c.{schema.CATEGORY.key} AS id, c.name AS name
"""


def epoch_seconds(value: Any) -> float | None:
    """A timestamp as stored in the graph (DateTime, Date, ISO text, epoch number) in seconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        # Epoch milliseconds are common in shop exports; anything past year 5000 in seconds is ms.
        return float(value) / 1000.0 if value > 1e11 else float(value)
    if hasattr(value, "to_native"):
        value = value.to_native()
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc).timestamp()
    return None


def read_graph(driver: Driver, database: str = "neo4j") -> GraphArrays:
    """Read the serving relations from Neo4j, one streamed query per node kind, into arrays."""
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        return build_arrays(session.run)


def build_arrays(run: Callable[[str], Iterable[Mapping[str, Any]]]) -> GraphArrays:
    """Arrays from the records of the three queries, each consumed as it streams (``run`` runs
    one and yields its records; one at a time, so a driver never buffers a whole result)."""
    build = Builder()
    for rec in run(_CATEGORIES):
        build.node("category", rec["id"], rec["name"])
    for rec in run(_PRODUCTS):
        pid = build.node("product", rec["id"], rec["name"])
        build.price(pid, _price(rec["price"]))
        build.edges("product_categories", pid, rec["categories"])
    for rec in run(_USERS):
        uid = build.node("user", rec["id"], rec["name"])
        bought = rec["bought"]
        build.edges("bought", uid, (p for p, _ in bought), [epoch_seconds(ts) for _, ts in bought])
        build.edges("touched", uid, rec["touched"])
        build.edges("friend_out", uid, rec["friends_out"])
        build.edges("follows", uid, rec["follows"])
        build.edges("interests", uid, rec["interests"] or ())
    return build.build()


def _price(price: Any) -> float | None:
    return float(price) if isinstance(price, (int, float)) else None


def _ts(value: float) -> float | None:
    return None if math.isnan(value) else value


# Remembered lookups per kind of node before the memo starts afresh (about 100 bytes each).
MEMO_MAX = 2_000_000


class UserTexts:
    """One text per user of a read (their ids, or their names), joined by NUL (never in an id; a
    name's own NULs are read as spaces): a regular expression scans them all in C, and a match's
    position tells whose text it is in. No Python string per user is kept (a million: 100 MB)."""

    def __init__(self, texts: Iterable[str]) -> None:
        texts = list(texts)  # only while building: the joined text and the offsets are what stay
        self.text = "\0" + "\0".join(texts) + "\0"
        self.count = len(texts)
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=self.count)
        # text n is self.text[starts[n]:starts[n + 1] - 1]
        self.starts = np.concatenate([[1], 2 + np.cumsum(lengths) + np.arange(self.count)])

    def text_of(self, n: int) -> str:
        return self.text[self.starts[n]:self.starts[n + 1] - 1]

    def matching(self, pattern: re.Pattern, limit: int, keep: Callable[[int], bool]) -> list[int]:
        """The first ``limit`` numbers (id order) whose text matches, among those ``keep`` keeps."""
        found: list[int] = []
        last = -1
        for m in pattern.finditer(self.text):
            n = int(np.searchsorted(self.starts, m.start(), side="right")) - 1
            if n == last or n >= self.count or m.end() >= self.starts[n + 1]:
                continue  # the same user again, or a match across a separator
            last = n
            if keep(n):
                found.append(n)
                if len(found) >= limit:
                    break
        return found


def _remember(memo: dict, key: Any, compute: Callable[[], Any]) -> Any:
    """``memo[key]``, computed once; a full memo starts afresh (it only ever holds what requests touched)."""
    found = memo.get(key, _UNSEEN)
    if found is _UNSEEN:
        if len(memo) >= MEMO_MAX:
            memo.clear()
        found = memo[key] = compute()
    return found


_UNSEEN = object()
# Rows up to this long are decoded through the memo, longer ones in bulk.
ID_MEMO_ROWS = 64


class GraphIndex:
    """Users, products, categories and the relations serving needs, read by graph id."""

    def __init__(self, base: GraphArrays | None = None, versions: dict[str, int] | None = None,
                 loaded: bool = False) -> None:
        self.base = base or GraphArrays.empty()
        self._token = object()  # names this index in keys kept elsewhere, without holding it
        self.loaded = loaded
        # Per user, bumped by every change of their evidence (after the change): a vector cached
        # with an older stamp is stale. Absent = 0 = as loaded.
        self.versions: dict[str, int] = versions if versions is not None else {}
        # Entities live writes changed in this index: a reload re-stamps these users and re-checks
        # these products against the new read. Writers only, under the service's mirror lock.
        self.live_users: set[str] = set()
        self.live_products: set[str] = set()
        # The overlay. Nodes new to the read are numbered on from the read's last one.
        self._added: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._added_ids: dict[str, list[str]] = {kind: [] for kind in KINDS}
        self._present: dict[str, dict[int, bool]] = {kind: {} for kind in KINDS}
        self._names: dict[str, dict[int, str | None]] = {kind: {} for kind in KINDS}
        self._prices: dict[int, float | None] = {}
        # relation -> node number -> (its whole row, its values: purchase times, else None)
        self._rows: dict[str, dict[int, tuple[np.ndarray, np.ndarray | None]]] = {name: {} for name in RELATIONS}
        # Lookups in the read's (immutable) arrays, remembered: id -> number, number -> name.
        self._found: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._base_names: dict[str, dict[int, str | None]] = {kind: {} for kind in KINDS}
        self._decoded: dict[str, dict[int, str]] = {kind: {} for kind in KINDS}
        self._categories: dict[int, tuple[str, ...]] = {}
        self._user_texts: tuple[UserTexts, UserTexts] | None = None  # the read's ids and names, for search
        self._user_rows: tuple[list[str], np.ndarray] | None = None  # see user_rows
        self._name_mask: np.ndarray | None = None  # the read's users with a name (see _named)
        self._name_bits: np.ndarray | None = None
        self._read_has_names: bool | None = None
        self._bitsets: dict[int, tuple[np.ndarray | None, np.ndarray]] = {}  # see _buyer_bits
        # (product, product) -> their live buyer entries, co-buyers, the first to name: see co_buyer
        self._pairs: dict[tuple[int, int], tuple[Any, Any, int, list[str]]] = {}

    @classmethod
    def load(cls, driver: Driver, database: str = "neo4j") -> "GraphIndex":
        return cls(read_graph(driver, database), loaded=True)

    # -- numbers and rows (private) -------------------------------------------------------------
    def _number(self, kind: str, node_id: str) -> int:
        n = self._added[kind].get(node_id)
        if n is not None:
            return n
        # The read's numbers never change, so a lookup is remembered: a request looks up hundreds of
        # ids (explanations walk buyers and friends) and a binary search in numpy costs 4 us each.
        return _remember(self._found[kind], node_id, lambda: self.base.nodes(kind).ids.find(node_id))

    def _numbers(self, kind: str, node_ids: list[str]) -> np.ndarray:
        """Numbers of many ids at once (-1: unknown): one binary search in C for all of them, or for
        a few ids (a user's friends, the users a list already named) the remembered numbers."""
        if len(node_ids) <= FEW_IDS:
            return np.fromiter((self._number(kind, i) for i in node_ids), np.int64, len(node_ids))
        numbers = self.base.nodes(kind).ids.find_many(node_ids)
        added = self._added[kind]
        if added:
            numbers = np.array([added.get(i, n) for i, n in zip(node_ids, numbers.tolist())], dtype=np.int64)
        return numbers

    def _ids(self, kind: str, numbers: np.ndarray) -> list[str]:
        table = self.base.nodes(kind).ids
        if len(numbers) > ID_MEMO_ROWS:  # a long row: one decode in bulk beats a dict per id
            if int(numbers.max()) < len(table):
                return table.decode(numbers)
            added, past = self._added_ids[kind], len(table)
            return [table.id(n) if n < past else added[n - past] for n in numbers.tolist()]
        # Short rows (a product's categories, a user's friends) come back often: decoded ids are
        # remembered per number (the read's numbers never change; new nodes are numbered past them).
        memo, added, past = self._decoded[kind], self._added_ids[kind], len(table)
        return [_remember(memo, n, lambda n=n: table.id(n) if n < past else added[n - past]) for n in numbers.tolist()]

    def _has(self, kind: str, n: int) -> bool:
        if n < 0:
            return False
        live = self._present[kind].get(n)
        if live is not None:
            return live
        present = self.base.nodes(kind).present
        return n < len(present) and bool(present[n])

    def _name(self, kind: str, node_id: str) -> str | None:
        n = self._number(kind, node_id)
        if n < 0:
            return None
        names = self._names[kind]
        if n in names:
            return names[n]
        return _remember(self._base_names[kind], n, lambda: self.base.nodes(kind).names.get(n))

    def _row(self, name: str, n: int) -> np.ndarray:
        live = self._rows[name].get(n)
        return live[0] if live is not None else self.base.relations[name].row(n)

    def _bought_row(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        live = self._rows["bought"].get(n)
        if live is not None:
            return live  # type: ignore[return-value]
        csr = self.base.relations["bought"]
        return csr.row(n), csr.row_values(n)

    def _set(self, name: str, node_id: str) -> frozenset[str]:
        rows, cols = RELATIONS[name]
        n = self._number(rows, node_id)
        return frozenset(self._ids(cols, self._row(name, n))) if n >= 0 else frozenset()

    def _nodes(self, kind: str) -> list[tuple[str, int]]:
        """Every node of the kind as (id, number), by id."""
        nodes, live = self.base.nodes(kind), dict(self._present[kind])
        present = nodes.present.copy()
        past = len(present)
        for n, here in live.items():
            if n < past:
                present[n] = here
        numbers = np.flatnonzero(present)
        out = list(zip(nodes.ids.decode(numbers), numbers.tolist()))
        added = [(i, past + k) for k, i in enumerate(list(self._added_ids[kind])) if live.get(past + k)]
        return sorted(out + added) if added else out

    def _node_ids(self, kind: str) -> list[str]:
        return [i for i, _ in self._nodes(kind)]

    # -- reading ------------------------------------------------------------------------------
    def has_user(self, uid: str) -> bool:
        return self._has("user", self._number("user", uid))

    def has_product(self, pid: str) -> bool:
        return self._has("product", self._number("product", pid))

    def has_category(self, cid: str) -> bool:
        return self._has("category", self._number("category", cid))

    def user_ids(self) -> list[str]:
        """Every user, sorted by id."""
        return self._node_ids("user")

    def product_ids(self) -> list[str]:
        return self._node_ids("product")

    def category_ids(self) -> list[str]:
        return self._node_ids("category")

    def user_name(self, uid: str) -> str | None:
        return self._name("user", uid)

    def named_users(self, users: Iterable[str]) -> set[str]:
        """Those of ``users`` who have a non-empty name, in one vectorised pass."""
        users = list(users)
        named = self._named(self._numbers("user", users))
        return {u for u, has in zip(users, named.tolist()) if has}

    def _read_name_mask(self) -> np.ndarray:
        """Which of the read's users have a non-empty name, by number: made once."""
        if self._name_mask is None:
            texts = self.base.nodes("user").names
            self._name_mask = ~texts.missing & (texts.offsets[1:] > texts.offsets[:-1])
        return self._name_mask

    def _read_name_bits(self) -> np.ndarray:
        """The same as a bitset, to AND with a bitset of co-buyers: made once."""
        if self._name_bits is None:
            self._name_bits = np.packbits(self._read_name_mask(), bitorder="little")
        return self._name_bits

    def _anyone_named(self) -> bool:
        """Whether any user of the read has a name (made once)."""
        if self._read_has_names is None:
            self._read_has_names = bool(self._read_name_mask().any())
        return self._read_has_names

    def _named(self, numbers: np.ndarray) -> np.ndarray:
        """Which of these user numbers have a non-empty name (live names first): one gather from a
        mask of the read's named users, made once (a popular pair has tens of thousands of co-buyers)."""
        mask = self._read_name_mask()
        inside = (numbers >= 0) & (numbers < len(mask))
        if inside.all():
            named = mask[numbers]
        else:
            named = np.zeros(len(numbers), dtype=bool)
            named[inside] = mask[numbers[inside]]
        live = self._names["user"]
        if live:
            for i in np.flatnonzero(np.isin(numbers, np.fromiter(live, dtype=np.int64, count=len(live)))).tolist():
                named[i] = bool(live[int(numbers[i])])
        return named

    def product_name(self, pid: str) -> str | None:
        return self._name("product", pid)

    def category_name(self, cid: str) -> str | None:
        return self._name("category", cid)

    def product_price(self, pid: str) -> float | None:
        n = self._number("product", pid)
        if n < 0:
            return None
        if n in self._prices:
            return self._prices[n]
        prices = self.base.prices
        return _ts(float(prices[n])) if n < len(prices) else None

    def bought(self, uid: str) -> dict[str, float | None]:
        """The user's purchases: product -> time (epoch seconds, None when the graph has none)."""
        n = self._number("user", uid)
        if n < 0:
            return {}
        row, times = self._bought_row(n)
        return dict(zip(self._ids("product", row), map(_ts, times.tolist())))

    def buyers(self, pid: str) -> frozenset[str]:
        return self._set("buyers", pid)

    def bought_among(self, uid: str, products: list[str]) -> set[str]:
        """Which of ``products`` the user bought: a binary search each in their row, no id decoded."""
        n = self._number("user", uid)
        if n < 0 or not products:
            return set()
        hits = contains(self._bought_row(n)[0], self._numbers("product", products))
        return {p for p, hit in zip(products, hits.tolist()) if hit}

    def bought_by(self, users: Iterable[str]) -> dict[str, set[str]]:
        """Every product any of ``users`` bought, with which of them bought it: one pass over their
        rows, for a request that asks about many products (explanations: which friends bought each)."""
        users = list(users)
        out: dict[str, set[str]] = {}
        for uid, n in zip(users, self._numbers("user", users).tolist()):
            if n >= 0:
                for pid in self._ids("product", self._bought_row(n)[0]):
                    out.setdefault(pid, set()).add(uid)
        return out

    def first_buyers(self, pid: str, limit: int) -> np.ndarray:
        """Numbers of at most ``limit`` of the product's buyers, the first by number (by id; users
        created live come after the read's): a bounded, deterministic share of a popular product's."""
        n = self._number("product", pid)
        return self._row("buyers", n)[:limit] if n >= 0 else EMPTY

    def buyers_stamp(self, pid: str) -> tuple[tuple[object, int], object]:
        """What names the product's buyers as this index holds them: a key (this index, the product)
        and a stamp, a new object after each live change of them (None: as read), to keep what is
        worked out from them beside the index (``Recommender.buyer_vectors``)."""
        n = self._number("product", pid)
        return (self._token, n), self._rows["buyers"].get(n)

    def user_ids_of(self, numbers: np.ndarray) -> list[str]:
        return self._ids("user", numbers)

    def user_rows(self, ids: list[str]) -> np.ndarray:
        """Each of the read's users (by number): their position in ``ids``, -1 if absent. Remembered
        for the list (the model's user ids), so that requests can go from a user's number to their
        vector without an id; about a second at a million users, done once per read."""
        remembered = self._user_rows
        if remembered is None or remembered[0] is not ids:
            table = self.base.users.ids
            rows = np.full(len(table), -1, dtype=np.int64)
            numbers = table.find_many(ids)
            found = numbers >= 0
            rows[numbers[found]] = np.flatnonzero(found)
            self._user_rows = remembered = (ids, rows)
        return remembered[1]

    def touched(self, uid: str) -> frozenset[str]:
        """VIEWED / RATED products: evidence for fold-in, never excluded from recommendations."""
        return self._set("touched", uid)

    def friends(self, uid: str) -> frozenset[str]:
        """FRIEND either way."""
        return self._set("friends", uid)

    def follows(self, uid: str) -> frozenset[str]:
        return self._set("follows", uid)

    def followed_by(self, uid: str) -> frozenset[str]:
        return self._set("followed_by", uid)

    def interests(self, uid: str) -> tuple[str, ...]:
        n = self._number("user", uid)
        return tuple(self._ids("category", self._row("interests", n))) if n >= 0 else ()

    def product_categories(self, pid: str) -> tuple[str, ...]:
        n = self._number("product", pid)
        if n < 0:
            return ()
        def categories() -> tuple[str, ...]:
            return tuple(sorted(set(self._ids("category", self._row("product_categories", n)))))
        if n in self._rows["product_categories"]:  # changed live: never remembered
            return categories()
        # Explanations ask for every bought and recommended product's categories on each request.
        return _remember(self._categories, n, categories)

    def category_size(self, cid: str) -> int:
        """How many products the category holds."""
        n = self._number("category", cid)
        return len(self._row("category_products", n)) if n >= 0 else 0

    def buyers_among(self, pid: str, users: Iterable[str]) -> set[str]:
        """Which of ``users`` bought the product: a binary search each, whatever its buyers."""
        n = self._number("product", pid)
        users = list(users)
        if n < 0 or not users:
            return set()
        hits = contains(self._row("buyers", n), self._numbers("user", users))
        return {u for u, hit in zip(users, hits.tolist()) if hit}

    def _buyers_of(self, n: int, live: tuple[np.ndarray, Any] | None) -> np.ndarray:
        """Product ``n``'s buyers: its live row where it has one (``live``, see _live_buyers), else the read's."""
        return live[0] if live is not None else self.base.relations["buyers"].row(n)

    def _common_buyers(self, a: int, b: int, live: tuple[Any, Any]) -> np.ndarray:
        """Numbers of the users who bought both products (in order). The buyers of a product bought
        by at least one user in ``BITSET_SHARE`` are held as a bitset too: the other row is then
        looked up in it, one gather, instead of merged with tens of thousands of numbers."""
        short, long = self._buyers_of(a, live[0]), self._buyers_of(b, live[1])
        if len(short) > len(long):
            short, long, b, live = long, short, a, live[::-1]  # b: the longer row's product
        if len(long) * BITSET_SHARE >= len(self.base.users.ids) > 0:
            return short[in_bitset(self._buyer_bits(b, live[1], long), short)]
        return common(short, long)

    def _buyer_bits(self, n: int, live: Any, row: np.ndarray) -> np.ndarray:
        """The bitset of product ``n``'s buyers (``row``, its live entry ``live`` or None for the
        read's row, which never changes), made once per row: a live purchase gives the product a
        new entry, and so a new bitset."""
        source = live[0] if live is not None else None
        kept = self._bitsets.get(n)
        if kept is None or kept[0] is not source:
            kept = (source, bitset(row))
            self._bitsets[n] = kept
        return kept[1]

    def co_buyers(self, pid: str, other: str) -> set[str]:
        """Users who bought both products."""
        a, b = self._number("product", pid), self._number("product", other)
        if a < 0 or b < 0:
            return set()
        return set(self._ids("user", self._common_buyers(a, b, self._live_buyers(a, b))))

    def _live_buyers(self, a: int, b: int) -> tuple[Any, Any]:
        """The live buyer entries of two products (None: as read), read once so that the rows used
        and what a memo says of them stay together: a live purchase stores a new entry."""
        return self._rows["buyers"].get(a), self._rows["buyers"].get(b)

    def co_buyer(self, pid: str, other: str, user: str, avoid: Iterable[str] = ()) -> tuple[str | None, int]:
        """Users other than ``user`` who bought both products: how many, and the one to name (one
        not in ``avoid`` if any, a named one if any, then the smallest id). In integer space (a
        popular pair has thousands of co-buyers, and no id of theirs is decoded), and remembered
        per pair as the count and the first few co-buyers to name, until either product's buyers
        or a user's name change: the lists of many users pair the same best-sellers."""
        a, b = sorted((self._number("product", pid), self._number("product", other)))
        if a < 0:
            return None, 0
        skip = {user, *avoid}
        memo = self._pairs  # replaced whole (never changed) when a user's name changes
        live = self._live_buyers(a, b)
        kept = memo.get((a, b))
        if (kept is None or kept[0] is not live[0] or kept[1] is not live[1]
                or len(kept[3]) < min(kept[2], len(skip) + 1)):  # too few kept for so many to skip
            count, first = self._co_buyers_to_name(a, b, live, max(CO_BUYERS_KEPT, len(skip) + 1))
            if len(memo) >= PAIR_MEMO_MAX:
                memo.clear()
            memo[a, b] = kept = (*live, count, first)
        count, first = kept[2], kept[3]
        # first holds everyone (count of them) or more than skip: it holds the one to name.
        if user in first or (len(first) < count and self._bought_both(user, a, b, live)):
            count -= 1
        if not count:
            return None, 0
        pick = next((u for u in first if u not in skip), None)
        if pick is None:  # every co-buyer is to be avoided: name one of them all the same
            pick = next(u for u in first if u != user)
        return pick, count

    def _bought_both(self, user: str, a: int, b: int, live: tuple[Any, Any]) -> bool:
        n = np.array([self._number("user", user)])
        return bool(contains(self._buyers_of(a, live[0]), n)[0] and contains(self._buyers_of(b, live[1]), n)[0])

    def _co_buyers_to_name(self, a: int, b: int, live: tuple[Any, Any], kept: int) -> tuple[int, list[str]]:
        """How many users bought both products, and the first ``kept`` of them in naming order."""
        rows = self._buyers_of(a, live[0]), self._buyers_of(b, live[1])
        if min(map(len, rows)) * BITSET_SHARE >= len(self.base.users.ids) > 0:
            # Both popular: the AND of their bitsets is the co-buyers, a fixed 1 bit per user where
            # the rows of two best-sellers hold 100k+ numbers each, counted and searched in C.
            bits = self._buyer_bits(a, live[0], rows[0]), self._buyer_bits(b, live[1], rows[1])
            size = min(map(len, bits))
            both = bits[0][:size] & bits[1][:size]
            return _bit_count(both), self._first_to_name(self._candidates_to_name(both, kept), kept)
        both = self._common_buyers(a, b, live)
        return len(both), self._first_to_name(both, kept)

    def _candidates_to_name(self, both: np.ndarray, kept: int) -> np.ndarray:
        """User numbers in the bitset ``both`` among which its first ``kept`` in naming order are:
        the read's first ``kept`` named users and first ``kept`` users (numbers are in id order),
        the users named or unnamed live, and the users added live (numbered past the read)."""
        past = len(self.base.users.ids)
        read = both[: (past + 7) >> 3]
        renamed = np.fromiter(self._names["user"], np.int64, len(self._names["user"]))
        found = [_first_bits(read, kept), renamed[in_bitset(both, renamed)],
                 _bit_numbers(both, np.arange(past >> 3, len(both)))]
        if self._anyone_named():  # a user renamed live may be among the read's named: take as many more
            found.append(_first_bits(read & self._read_name_bits()[: len(read)], kept + len(renamed)))
        return np.unique(np.concatenate(found))

    def _first_to_name(self, numbers: np.ndarray, kept: int) -> list[str]:
        """The first ``kept`` of these users (distinct numbers, ascending) in naming order: named
        users first (a name reads better), then by id."""
        named, read = self._named(numbers), numbers < len(self.base.users.ids)
        pick = np.concatenate([np.flatnonzero(named & read)[:kept], np.flatnonzero(~named & read)[:kept],
                               np.flatnonzero(~read)])
        order = sorted(zip((not n for n in named[pick].tolist()), self._ids("user", numbers[pick])))
        return [uid for _, uid in order[:kept]]

    def social(self, uid: str) -> frozenset[str]:
        """Everybody whose purchases count as a friend's: FRIEND (either way) and FOLLOWS targets."""
        return self.friends(uid) | self.follows(uid)

    def circle_purchases(self, uid: str) -> CirclePurchases:
        """What the user's circle (:meth:`social`) bought: product ids, how many members bought each,
        and the circle's size (:mod:`graphrec.circle`). In integer space: one row per member."""
        n = self._number("user", uid)
        if n < 0:
            return CirclePurchases([], np.zeros(0, np.int64), 0)
        circle = np.union1d(self._row("friends", n), self._row("follows", n))
        circle = circle[circle != n]
        rows = [np.unique(self._bought_row(int(m))[0]) for m in circle.tolist()]  # a repeat purchase counts once
        if not rows or not sum(map(len, rows)):
            return CirclePurchases([], np.zeros(0, np.int64), len(circle))
        products, counts = np.unique(np.concatenate(rows), return_counts=True)
        return CirclePurchases(self._ids("product", products), counts, len(circle))

    def friend_direction(self, a: str, b: str) -> str:
        """Direction of the stored FRIEND edge between a and b, seen from a: "out" or "in"."""
        na, nb = self._number("user", a), self._number("user", b)
        out = na >= 0 and nb >= 0 and bool(contains(self._row("friend_out", na), np.array([nb]))[0])
        return "out" if out else "in"

    def search_users(self, q: str, limit: int) -> list[str]:
        """At most ``limit`` users for a search box: the exact id first, then ids starting with ``q``,
        then names containing it (case-insensitive), each group in id order. The read's ids and
        names are each one text scanned in C, stopped once enough users are found; users created
        or renamed live are checked apart (few)."""
        q = q.strip()
        if not q:
            return []
        exact = [q] if self.has_user(q) else []
        starts = re.compile("(?<=\0)" + re.escape(q), re.IGNORECASE)  # at the start of an id
        contains = re.compile(re.escape(q), re.IGNORECASE)
        ids, names = self._searchable()
        renamed = self._names["user"]  # number -> name, for users created or renamed live

        def id_matches(uid: str) -> bool:
            return contains.match(uid) is not None

        prefix = self._ids("user", np.array(ids.matching(starts, limit + 1, lambda n: self._has("user", n)), dtype=np.int64))
        prefix += [u for u, n in self._added["user"].items() if self._has("user", n) and id_matches(u)]
        prefix = sorted(set(prefix) - set(exact))[:limit]
        taken = {*exact, *prefix}
        named = self._ids("user", np.array(names.matching(
            contains, limit + len(taken), lambda n: self._has("user", n) and n not in renamed
            and not id_matches(ids.text_of(n))), dtype=np.int64))
        for n, name in renamed.items():
            if name and self._has("user", n) and contains.search(name.replace("\0", " ")):
                uid = self._ids("user", np.array([n]))[0]
                if not id_matches(uid):
                    named.append(uid)
        named = sorted(set(named) - taken)
        return (exact + prefix + named)[:limit]

    def _searchable(self) -> tuple["UserTexts", "UserTexts"]:
        if self._user_texts is None:
            users = self.base.users
            numbers = np.arange(len(users.ids))
            self._user_texts = (UserTexts(users.ids.decode(numbers)),
                                UserTexts((name or "").replace("\0", " ") for name in users.names.values(numbers)))
        return self._user_texts

    def user_label(self, uid: str) -> str:
        name = self.user_name(uid)
        return name if name else f"user {uid}"

    def product_label(self, pid: str) -> str:
        name = self.product_name(pid)
        return name if name else f"product {pid}"

    def category_label(self, cid: str) -> str:
        name = self.category_name(cid)
        return name if name else f"category {cid}"

    def category_id(self, id_or_name: str) -> str | None:
        """A category by id, else by name (case-insensitive); None when neither matches."""
        if self.has_category(id_or_name):
            return id_or_name
        wanted = id_or_name.casefold()
        matches = [c for c in self.category_ids() if (self.category_name(c) or "").casefold() == wanted]
        return matches[0] if matches else None

    def version(self, uid: str) -> int:
        return self.versions.get(uid, 0)

    def _edge_count(self, name: str) -> int:
        base = self.base.relations[name]
        return int(base.indptr[-1]) + sum(len(row) - len(base.row(n)) for n, (row, _) in list(self._rows[name].items()))

    def counts(self) -> dict[str, int]:
        nodes = {kind: self.base.nodes(kind) for kind in KINDS}

        def count(kind: str) -> int:
            past, live = len(nodes[kind].present), list(self._present[kind].items())
            return int(nodes[kind].present.sum()) + sum(
                int(here) - (bool(nodes[kind].present[n]) if n < past else False) for n, here in live)
        return {"users": count("user"), "products": count("product"), "categories": count("category"),
                "bought": self._edge_count("bought"), "friend_pairs": self._edge_count("friend_out"),
                "follows": self._edge_count("follows")}

    def live_size(self) -> int:
        """Entities live writes changed since this index was read: what its overlay holds."""
        return len(self.live_users) + len(self.live_products)

    @property
    def nbytes(self) -> int:
        """Bytes of the read's arrays (the overlay is left out: it is small and folds in at a reload)."""
        return self.base.nbytes

    # -- live mirroring, copy-on-write (called after the matching write committed in Neo4j) ------
    def _intern(self, kind: str, node_id: str) -> int:
        n = self._number(kind, node_id)
        if n < 0:
            added = self._added_ids[kind]
            n = len(self.base.nodes(kind).ids) + len(added)
            added.append(node_id)  # first: a reader that finds the number can name it
            self._added[kind][node_id] = n
        return n

    def _put(self, name: str, n: int, row: np.ndarray, values: np.ndarray | None = None) -> None:
        self._rows[name][n] = (row, values)  # one store: readers see the old row or the new one

    def _add_to(self, name: str, n: int, numbers: Iterable[int]) -> None:
        self._put(name, n, with_added(self._row(name, n), np.fromiter(numbers, dtype=np.int32)))

    def _remove_from(self, name: str, n: int, number: int) -> bool:
        row = self._row(name, n)
        if not contains(row, np.array([number]))[0]:
            return False
        self._put(name, n, without(row, np.array([number])))
        return True

    def _bump(self, *users: str) -> None:
        """The users' evidence changed: new stamps, and the next reload re-stamps them."""
        for uid in users:
            self.versions[uid] = self.versions.get(uid, 0) + 1
            self.live_users.add(uid)

    def add_user(self, uid: str, name: str | None, interests: Iterable[str] = ()) -> None:
        n = self._intern("user", uid)
        self._names["user"][n] = name
        self._present["user"][n] = True
        self._pairs = {}  # after the name: a request that took the old memo fills only the old one
        interests = list(interests)
        if interests:  # in the order given, as the graph stores them
            self._put("interests", n, np.array([self._intern("category", c) for c in interests], dtype=np.int32))
        self._bump(uid)

    def add_category(self, cid: str, name: str | None) -> None:
        n = self._intern("category", cid)
        self._names["category"][n] = name
        self._present["category"][n] = True

    def add_product(self, pid: str, name: str | None, price: float | None, categories: Iterable[str]) -> None:
        n = self._intern("product", pid)
        self._names["product"][n] = name
        self._prices[n] = _price(price)
        self._present["product"][n] = True
        cats = sorted({self._intern("category", c) for c in categories})
        self._put("product_categories", n, np.array(cats, dtype=np.int32))
        for cat in cats:
            self._add_to("category_products", cat, [n])
        self.live_products.add(pid)

    def add_interactions(self, rows: Iterable[tuple[str, str, str, float | None]]) -> None:
        """``(user, product, relationship type, ts)`` rows; one new row per touched node and relation."""
        bought: dict[str, dict[str, float | None]] = {}
        buyers: dict[str, set[str]] = {}
        touched: dict[str, set[str]] = {}
        for uid, pid, rel_type, ts in rows:
            if rel_type == schema.BOUGHT.type:
                bought.setdefault(uid, {})[pid] = ts
                buyers.setdefault(pid, set()).add(uid)
            else:
                touched.setdefault(uid, set()).add(pid)
        for uid, new in bought.items():
            n = self._intern("user", uid)
            row, times = self._bought_row(n)
            numbers = [self._intern("product", p) for p in new]
            self._put("bought", n, *merged(row, times, numbers, [math.nan if t is None else t for t in new.values()]))
        for pid, new in buyers.items():
            self._add_to("buyers", self._intern("product", pid), (self._intern("user", u) for u in new))
            self.live_products.add(pid)
        for uid, new in touched.items():
            self._add_to("touched", self._intern("user", uid), (self._intern("product", p) for p in new))
        self._bump(*(bought.keys() | touched.keys()))

    def add_interaction(self, uid: str, pid: str, rel_type: str, ts: float | None) -> None:
        self.add_interactions([(uid, pid, rel_type, ts)])

    def add_friend(self, start: str, end: str) -> None:
        """A FRIEND edge stored as ``(start)-[:FRIEND]->(end)``."""
        s, e = self._intern("user", start), self._intern("user", end)
        self._add_to("friend_out", s, [e])
        self._add_to("friends", s, [e])
        self._add_to("friends", e, [s])
        self._bump(start, end)

    def add_follow(self, uid: str, target: str) -> None:
        u, t = self._intern("user", uid), self._intern("user", target)
        self._add_to("follows", u, [t])
        self._add_to("followed_by", t, [u])
        self._bump(uid, target)

    def remove_user(self, uid: str) -> None:
        """Erase a user (after DETACH DELETE committed): every relation that names them."""
        n = self._number("user", uid)
        if n >= 0:
            for p in self._bought_row(n)[0].tolist():
                self._remove_from("buyers", p, n)
                self.live_products.add(self._ids("product", np.array([p]))[0])
            others = {"friends": ("friends", "friend_out"), "follows": ("followed_by",), "followed_by": ("follows",)}
            for name, theirs in others.items():
                for other in self._row(name, n).tolist():
                    for their in theirs:
                        self._remove_from(their, other, n)
                    self._bump(self._ids("user", np.array([other]))[0])
            for name in ("touched", "friend_out", "friends", "follows", "followed_by", "interests"):
                self._put(name, n, EMPTY)
            self._put("bought", n, EMPTY, EMPTY_VALUES)
            self._names["user"][n] = None
            self._present["user"][n] = False
        self._bump(uid)

    # -- reloading ------------------------------------------------------------------------------
    def successor(self, arrays: GraphArrays, read: Changes) -> tuple["GraphIndex", Changes]:
        """The index over a newer read whose changes since this index's read are ``read``, with
        the evidence stamps carried over and bumped for every user whose evidence may differ from
        what this index serves; and those changes, with what live writes touched here added.
        Called under the writers' lock (the live sets and stamps must not move meanwhile)."""
        new = GraphIndex(arrays, dict(self.versions), loaded=True)
        changes = Changes(read.users | self.live_users, read.products | self.live_products,
                          set(read.users_gone), set(read.users_arrived))
        for uid in self.live_users:  # served vs. read: a user created live may be gone from the graph
            was, now = self.has_user(uid), new.has_user(uid)
            if was != now:
                (changes.users_arrived if now else changes.users_gone).add(uid)
        for uid in changes.users:
            new.versions[uid] = new.versions.get(uid, 0) + 1
        new._inherit_memos(self, read.products)
        return new, changes

    def _inherit_memos(self, old: "GraphIndex", changed_products: set[str]) -> None:
        """Keep the remembered lookups of ``old`` that hold for this read too: without them every
        reload (every few seconds while others write) would cost the next requests twice the CPU."""
        same = {kind: np.array_equal(old.base.nodes(kind).ids.ids, self.base.nodes(kind).ids.ids) for kind in KINDS}
        for kind in KINDS:
            if not same[kind]:
                continue
            self._found[kind], self._decoded[kind] = old._found[kind], old._decoded[kind]  # same ids, same numbers
            if kind == "user":
                self._user_rows = old._user_rows
            before, after = old.base.nodes(kind).names, self.base.nodes(kind).names
            if all(np.array_equal(getattr(before, f), getattr(after, f)) for f in ("offsets", "data", "missing")):
                self._base_names[kind] = old._base_names[kind]
                if kind == "user":
                    self._user_texts = old._user_texts
        if same["product"] and same["category"]:
            memo = dict(old._categories)
            for pid in changed_products:
                memo.pop(self._number("product", pid), None)
            self._categories = memo


def _bit_numbers(bits: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The numbers whose bits are set in the bytes ``at`` of a bitset (ascending ``at``: ascending)."""
    if not len(at):
        return EMPTY
    set_ = np.unpackbits(bits[at], bitorder="little").reshape(-1, 8).astype(bool)
    return (at[:, None].astype(np.int64) * 8 + np.arange(8))[set_]


def _bit_count(bits: np.ndarray) -> int:
    """How many bits are set: 8 bytes at a time (3x faster than a byte at a time), then the rest."""
    whole = len(bits) // 8 * 8
    return int(np.bitwise_count(bits[:whole].view(np.uint64)).sum() + np.bitwise_count(bits[whole:]).sum())


def _first_bits(bits: np.ndarray, count: int) -> np.ndarray:
    """The numbers of the first ``count`` set bits, ascending: found 8 bytes at a time."""
    whole = len(bits) // 8 * 8
    words = np.flatnonzero(bits[:whole].view(np.uint64))[:count]
    at = (words[:, None] * 8 + np.arange(8)).ravel()
    if len(words) < count:
        at = np.concatenate([at, np.arange(whole, len(bits))])
    return _bit_numbers(bits, at)[:count]
