"""An in-memory copy of the parts of the graph that serving reads on every request.

Recommendations exclude what the user bought, explanations walk friends, purchases and categories,
promotions aggregate friends' purchases: doing that with a Cypher round trip per request would cost
more than the whole model scoring. So the service reads these relations once from Neo4j at startup
(a handful of streamed queries, a few seconds on Last.fm) and applies its own writes (cold start,
new interactions, new friendships, new products) to this copy *after* they commit in Neo4j, so the
copy never holds an edge the database does not. Every explanation path built from it is therefore a
real path in Neo4j; ``reload`` catches up with writes made behind the service's back (a new load).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
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
    """Users, products, categories and the relations serving needs, keyed by graph id."""

    user_names: dict[str, str | None] = field(default_factory=dict)
    named_users: set[str] = field(default_factory=set)  # users with a name: preferred in texts
    product_names: dict[str, str | None] = field(default_factory=dict)
    product_prices: dict[str, float | None] = field(default_factory=dict)
    product_categories: dict[str, tuple[str, ...]] = field(default_factory=dict)
    category_names: dict[str, str | None] = field(default_factory=dict)
    category_products: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # user -> product -> purchase time (epoch seconds, None when the graph has no time).
    bought: dict[str, dict[str, float | None]] = field(default_factory=lambda: defaultdict(dict))
    buyers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # VIEWED / RATED products: evidence for fold-in, never excluded from recommendations.
    touched: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    # FRIEND is stored once per pair; ``friend_edges`` keeps the stored direction for paths.
    friends: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    friend_edges: set[tuple[str, str]] = field(default_factory=set)
    follows: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    interests: dict[str, tuple[str, ...]] = field(default_factory=dict)
    loaded: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # -- loading ------------------------------------------------------------------------------
    @classmethod
    def load(cls, driver: Driver, database: str = "neo4j") -> "GraphIndex":
        """Read the serving relations from Neo4j in one read transaction per node kind."""
        index = cls()
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            for rec in session.run(_CATEGORIES):
                index.category_names[rec["id"]] = rec["name"]
            for rec in session.run(_PRODUCTS):
                index._put_product(rec["id"], rec["name"], rec["price"], rec["categories"])
            for rec in session.run(_USERS):
                uid = rec["id"]
                index.user_names[uid] = rec["name"]
                if rec["name"]:
                    index.named_users.add(uid)
                for pid, ts in rec["bought"]:
                    index._put_bought(uid, pid, epoch_seconds(ts))
                index.touched[uid].update(rec["touched"])
                for fid in rec["friends_out"]:
                    index._put_friend(uid, fid)
                index.follows[uid].update(rec["follows"])
                if rec["interests"]:
                    index.interests[uid] = tuple(rec["interests"])
        index.loaded = True
        return index

    # -- mutation (called after the matching write committed in Neo4j) --------------------------
    def _put_product(self, pid: str, name: str | None, price: Any, categories: Iterable[str]) -> None:
        cats = tuple(sorted(set(categories)))
        self.product_names[pid] = name
        self.product_prices[pid] = float(price) if isinstance(price, (int, float)) else None
        self.product_categories[pid] = cats
        for cat in cats:
            self.category_products[cat].add(pid)

    def _put_bought(self, uid: str, pid: str, ts: float | None) -> None:
        self.bought[uid][pid] = ts
        self.buyers[pid].add(uid)

    def _put_friend(self, start: str, end: str) -> None:
        self.friend_edges.add((start, end))
        self.friends[start].add(end)
        self.friends[end].add(start)

    def add_user(self, uid: str, name: str | None, interests: Iterable[str] = ()) -> None:
        with self.lock:
            self.user_names[uid] = name
            if name:
                self.named_users.add(uid)
            if interests:
                self.interests[uid] = tuple(interests)

    def add_product(self, pid: str, name: str | None, price: float | None, categories: Iterable[str]) -> None:
        with self.lock:
            self._put_product(pid, name, price, categories)

    def add_interaction(self, uid: str, pid: str, rel_type: str, ts: float | None) -> None:
        with self.lock:
            if rel_type == schema.BOUGHT.type:
                self._put_bought(uid, pid, ts)
            else:
                self.touched[uid].add(pid)

    def add_friend(self, start: str, end: str) -> None:
        """A FRIEND edge stored as ``(start)-[:FRIEND]->(end)``."""
        with self.lock:
            self._put_friend(start, end)

    def add_follow(self, uid: str, target: str) -> None:
        with self.lock:
            self.follows[uid].add(target)

    # -- reading ------------------------------------------------------------------------------
    def has_user(self, uid: str) -> bool:
        return uid in self.user_names

    def has_product(self, pid: str) -> bool:
        return pid in self.product_names

    def social(self, uid: str) -> set[str]:
        """Everybody whose purchases count as a friend's: FRIEND (either way) and FOLLOWS targets."""
        return self.friends.get(uid, set()) | self.follows.get(uid, set())

    def friend_direction(self, a: str, b: str) -> str:
        """Direction of the stored FRIEND edge between a and b, seen from a: "out" or "in"."""
        return "out" if (a, b) in self.friend_edges else "in"

    def user_label(self, uid: str) -> str:
        name = self.user_names.get(uid)
        return name if name else f"user {uid}"

    def product_label(self, pid: str) -> str:
        name = self.product_names.get(pid)
        return name if name else f"product {pid}"

    def category_label(self, cid: str) -> str:
        name = self.category_names.get(cid)
        return name if name else f"category {cid}"

    def counts(self) -> dict[str, int]:
        return {
            "users": len(self.user_names),
            "products": len(self.product_names),
            "categories": len(self.category_names),
            "bought": sum(len(b) for b in self.bought.values()),
            "friend_pairs": len(self.friend_edges),
            "follows": sum(len(f) for f in self.follows.values()),
        }
