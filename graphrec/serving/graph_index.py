"""An in-memory copy of the parts of the graph that serving reads on every request.

Recommendations exclude what the user bought, explanations walk friends, purchases and categories,
promotions aggregate friends' purchases: doing that with a Cypher round trip per request would cost
more than the whole model scoring. So the service reads these relations once from Neo4j at startup
(a handful of streamed queries, a few seconds on Last.fm) and applies its own writes (cold start,
new interactions, new friendships, new products) to this copy *after* they commit in Neo4j, so the
copy never holds an edge the database does not. Every explanation path built from it is therefore a
real path in Neo4j; ``reload`` catches up with writes made behind the service's back (a new load).

Concurrency: requests read an index without any lock while writes mirror into it. That is safe
because a published index is only ever changed copy-on-write: a live write replaces a user's set
or dict with a new one that has the edge (one atomic store under the GIL) and never mutates a
container a reader may be iterating. Only :meth:`GraphIndex.load`, before the index is shared,
fills containers in place. Writers are serialised by the service; readers never wait.

Reloads hand over differences: every field is keyed by a user, a product or a category
(:data:`FIELDS`), so :func:`diff` of two reads is the keys whose values differ, and
:meth:`GraphIndex.updated` applies one to a copy of the serving index. The reader that computes it
(:mod:`graphrec.serving.reader`) may run in another process: then the service's own interpreter
only copies the top-level dicts and applies what changed, and a reload stops costing requests the
GIL for the whole re-read. Entities that live writes touched since the last reload (``dirty``) are
always sent, so the result equals the new read wherever the graph or a write changed something.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone
from typing import Any, Iterable

from neo4j import Driver
import neo4j

from graphrec import schema

_USERS = f"""
MATCH (u:{schema.USER.label})
RETURN u.{schema.USER.key} AS id, u.name AS name,
       [(u)-[r:{schema.BOUGHT.type}]->(p:{schema.PRODUCT.label}) | [p.{schema.PRODUCT.key}, r.ts]] AS bought,
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


@dataclass
class GraphIndex:
    """Users, products, categories and the relations serving needs, keyed by graph id.

    Read with ``.get``: the containers are plain dicts (a defaultdict would insert on a read)."""

    user_names: dict[str, str | None] = field(default_factory=dict)
    product_names: dict[str, str | None] = field(default_factory=dict)
    product_prices: dict[str, float | None] = field(default_factory=dict)
    product_categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    category_names: dict[str, str | None] = field(default_factory=dict)
    category_products: dict[str, frozenset[str]] = field(default_factory=dict)
    # user -> product -> purchase time (epoch seconds, None when the graph has no time).
    bought: dict[str, dict[str, float | None]] = field(default_factory=dict)
    buyers: dict[str, frozenset[str]] = field(default_factory=dict)
    # VIEWED / RATED products: evidence for fold-in, never excluded from recommendations.
    touched: dict[str, frozenset[str]] = field(default_factory=dict)
    # FRIEND either way; ``friend_out`` keeps the stored direction (start -> ends) for paths.
    friends: dict[str, frozenset[str]] = field(default_factory=dict)
    friend_out: dict[str, frozenset[str]] = field(default_factory=dict)
    follows: dict[str, frozenset[str]] = field(default_factory=dict)
    followed_by: dict[str, frozenset[str]] = field(default_factory=dict)  # FOLLOWS, the other way
    interests: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Per user, bumped by every live change of their evidence (after the change): a vector cached
    # with an older stamp is stale. Absent = 0 = as loaded.
    versions: dict[str, int] = field(default_factory=dict)
    # Entities live writes changed since the last reload began (``("user", id)`` ...): the next
    # reload sends their fields whatever the reader's previous read said. Writers only, under
    # the service's mirror lock.
    dirty: set[tuple[str, str]] = field(default_factory=set)
    loaded: bool = False

    # -- loading (private: the index is not shared yet, containers are filled in place) ----------
    @classmethod
    def load(cls, driver: Driver, database: str = "neo4j") -> "GraphIndex":
        """Read the serving relations from Neo4j in one read transaction per node kind."""
        cats: dict[str, set[str]] = {}
        buyers: dict[str, set[str]] = {}
        friends: dict[str, set[str]] = {}
        followers: dict[str, set[str]] = {}
        index = cls()
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            for rec in session.run(_CATEGORIES):
                index.category_names[rec["id"]] = rec["name"]
            for rec in session.run(_PRODUCTS):
                pid = rec["id"]
                index._set_product(pid, rec["name"], rec["price"], rec["categories"])
                for cat in index.product_categories[pid]:
                    cats.setdefault(cat, set()).add(pid)
            for rec in session.run(_USERS):
                uid = rec["id"]
                index.user_names[uid] = rec["name"]
                if rec["bought"]:
                    index.bought[uid] = {pid: epoch_seconds(ts) for pid, ts in rec["bought"]}
                    for pid in index.bought[uid]:
                        buyers.setdefault(pid, set()).add(uid)
                if rec["touched"]:
                    index.touched[uid] = frozenset(rec["touched"])
                if rec["friends_out"]:
                    index.friend_out[uid] = frozenset(rec["friends_out"])
                for fid in rec["friends_out"]:
                    friends.setdefault(uid, set()).add(fid)
                    friends.setdefault(fid, set()).add(uid)
                if rec["follows"]:
                    index.follows[uid] = frozenset(rec["follows"])
                for target in rec["follows"]:
                    followers.setdefault(target, set()).add(uid)
                if rec["interests"]:
                    index.interests[uid] = tuple(rec["interests"])
        index.category_products = {c: frozenset(v) for c, v in cats.items()}
        index.buyers = {p: frozenset(v) for p, v in buyers.items()}
        index.friends = {u: frozenset(v) for u, v in friends.items()}
        index.followed_by = {u: frozenset(v) for u, v in followers.items()}
        index.loaded = True
        return index

    def _set_product(self, pid: str, name: str | None, price: Any, categories: Iterable[str]) -> None:
        self.product_names[pid] = name
        self.product_prices[pid] = float(price) if isinstance(price, (int, float)) else None
        self.product_categories[pid] = tuple(sorted(set(categories)))

    # -- live mirroring, copy-on-write (called after the matching write committed in Neo4j) ------
    def _bump(self, *users: str) -> None:
        """The users' evidence changed: new stamps, and the next reload sends their fields."""
        for uid in users:
            self.versions[uid] = self.versions.get(uid, 0) + 1
            self.dirty.add(("user", uid))

    def add_user(self, uid: str, name: str | None, interests: Iterable[str] = ()) -> None:
        self.user_names[uid] = name
        if interests:
            self.interests[uid] = tuple(interests)
        self._bump(uid)

    def add_product(self, pid: str, name: str | None, price: float | None, categories: Iterable[str]) -> None:
        self._set_product(pid, name, price, categories)
        self.dirty.add(("product", pid))
        for cat in self.product_categories[pid]:
            self.category_products[cat] = self.category_products.get(cat, frozenset()) | {pid}
            self.dirty.add(("category", cat))

    def add_interactions(self, rows: Iterable[tuple[str, str, str, float | None]]) -> None:
        """``(user, product, relationship type, ts)`` rows; one copy per touched container."""
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
            self.bought[uid] = {**self.bought.get(uid, {}), **new}
        for pid, new in buyers.items():
            self.buyers[pid] = self.buyers.get(pid, frozenset()) | new
            self.dirty.add(("product", pid))
        for uid, new in touched.items():
            self.touched[uid] = self.touched.get(uid, frozenset()) | new
        self._bump(*(bought.keys() | touched.keys()))

    def add_interaction(self, uid: str, pid: str, rel_type: str, ts: float | None) -> None:
        self.add_interactions([(uid, pid, rel_type, ts)])

    def add_friend(self, start: str, end: str) -> None:
        """A FRIEND edge stored as ``(start)-[:FRIEND]->(end)``."""
        self.friend_out[start] = self.friend_out.get(start, frozenset()) | {end}
        self.friends[start] = self.friends.get(start, frozenset()) | {end}
        self.friends[end] = self.friends.get(end, frozenset()) | {start}
        self._bump(start, end)

    def add_follow(self, uid: str, target: str) -> None:
        self.follows[uid] = self.follows.get(uid, frozenset()) | {target}
        self.followed_by[target] = self.followed_by.get(target, frozenset()) | {uid}
        self._bump(uid, target)

    def remove_user(self, uid: str) -> None:
        """Erase a user (after DETACH DELETE committed): every relation that names them."""
        for pid in self.bought.pop(uid, {}):
            self.buyers[pid] = self.buyers.get(pid, frozenset()) - {uid}
            self.dirty.add(("product", pid))
        self.touched.pop(uid, None)
        self.friend_out.pop(uid, None)
        for other in self.friends.pop(uid, frozenset()):
            self.friends[other] = self.friends.get(other, frozenset()) - {uid}
            if uid in self.friend_out.get(other, ()):
                self.friend_out[other] = self.friend_out[other] - {uid}
            self._bump(other)
        for target in self.follows.pop(uid, frozenset()):
            self.followed_by[target] = self.followed_by.get(target, frozenset()) - {uid}
            self._bump(target)
        for other in self.followed_by.pop(uid, frozenset()):
            self.follows[other] = self.follows.get(other, frozenset()) - {uid}
            self._bump(other)
        self.interests.pop(uid, None)
        self.user_names.pop(uid, None)
        self._bump(uid)

    # -- reloading: differences between two reads ---------------------------------------------------
    def updated(self, changes: "IndexDiff") -> "GraphIndex":
        """A new index: this one's contents with ``changes`` applied, stamps bumped for every user
        whose evidence changed. This index is not modified (requests may be reading it)."""
        new = replace(self, versions=dict(self.versions), dirty=set(), loaded=True,
                      **{name: dict(getattr(self, name)) for name in FIELD_KIND})
        for name, values in changes.changed.items():
            getattr(new, name).update(values)
        for name, keys in changes.deleted.items():
            container = getattr(new, name)
            for key in keys:
                container.pop(key, None)
        for uid in changes.users_with_new_evidence():
            new.versions[uid] = new.versions.get(uid, 0) + 1
        return new

    # -- reading ------------------------------------------------------------------------------
    def has_user(self, uid: str) -> bool:
        return uid in self.user_names

    def has_product(self, pid: str) -> bool:
        return pid in self.product_names

    def social(self, uid: str) -> frozenset[str]:
        """Everybody whose purchases count as a friend's: FRIEND (either way) and FOLLOWS targets."""
        return self.friends.get(uid, frozenset()) | self.follows.get(uid, frozenset())

    def friend_direction(self, a: str, b: str) -> str:
        """Direction of the stored FRIEND edge between a and b, seen from a: "out" or "in"."""
        return "out" if b in self.friend_out.get(a, ()) else "in"

    def user_label(self, uid: str) -> str:
        name = self.user_names.get(uid)
        return name if name else f"user {uid}"

    def product_label(self, pid: str) -> str:
        name = self.product_names.get(pid)
        return name if name else f"product {pid}"

    def category_label(self, cid: str) -> str:
        name = self.category_names.get(cid)
        return name if name else f"category {cid}"

    def category_id(self, id_or_name: str) -> str | None:
        """A category by id, else by name (case-insensitive); None when neither matches."""
        if id_or_name in self.category_names:
            return id_or_name
        wanted = id_or_name.casefold()
        matches = sorted(c for c, n in self.category_names.items() if n and n.casefold() == wanted)
        return matches[0] if matches else None

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.user_names),
            "products": len(self.product_names),
            "categories": len(self.category_names),
            "bought": sum(len(b) for b in list(self.bought.values())),
            "friend_pairs": sum(len(f) for f in list(self.friend_out.values())),
            "follows": sum(len(f) for f in list(self.follows.values())),
        }


# Every field of the index and the kind of entity its keys are: what a reload compares and sends.
FIELD_KIND: dict[str, str] = {
    "user_names": "user", "bought": "user", "touched": "user", "friends": "user", "friend_out": "user",
    "follows": "user", "followed_by": "user", "interests": "user",
    "product_names": "product", "product_prices": "product", "product_categories": "product", "buyers": "product",
    "category_names": "category", "category_products": "category",
}
# Fields that are a user's evidence for fold-in: a change re-stamps the user (cached vector stale).
EVIDENCE = ("bought", "touched", "friends", "follows", "followed_by", "interests")


@dataclass
class IndexDiff:
    """What changed between two reads, per field: new values by key, and keys that are gone."""

    changed: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: dict[str, list[str]] = field(default_factory=dict)

    def keys(self, name: str) -> set[str]:
        """Keys of one field that changed or went."""
        return set(self.changed.get(name, ())) | set(self.deleted.get(name, ()))

    def users_with_new_evidence(self) -> set[str]:
        return set().union(*(self.keys(name) for name in EVIDENCE))

    def size(self) -> int:
        return sum(map(len, self.changed.values())) + sum(map(len, self.deleted.values()))


def diff(old: GraphIndex, new: GraphIndex, dirty: Iterable[tuple[str, str]] = ()) -> IndexDiff:
    """The changes that turn ``old`` into ``new``, plus the current value (or absence) in ``new`` of
    every field of the ``dirty`` entities, whatever ``old`` said (the serving copy may differ there)."""
    forced: dict[str, set[str]] = {"user": set(), "product": set(), "category": set()}
    for kind, key in dirty:
        forced[kind].add(key)
    out = IndexDiff()
    for name, kind in FIELD_KIND.items():
        before, after = getattr(old, name), getattr(new, name)
        missing = object()
        changed = {k: v for k, v in after.items() if before.get(k, missing) != v}
        deleted = [k for k in before if k not in after]
        for key in forced[kind]:
            if key in after:
                changed[key] = after[key]
            elif key not in before:  # absent in both reads, maybe present in the serving copy
                deleted.append(key)
        if changed:
            out.changed[name] = changed
        if deleted:
            out.deleted[name] = deleted
    return out
