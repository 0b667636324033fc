"""The serving state and its operations, shared by the API and the CLI.

One :class:`Service` holds the model artifact (read once), the recommender over it, the in-memory
graph index, and a Neo4j driver with short timeouts. Reads that the index and the model can answer
never touch Neo4j; writes go to Neo4j first and are mirrored in memory only once committed. When
Neo4j is down, model-only recommendations keep working and graph operations raise
:class:`GraphUnavailable`.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from neo4j import Driver

from graphrec.artifact import Artifact
from graphrec.config import Settings
from graphrec.serving import writes
from graphrec.serving.db import GraphUnavailable, graph_call, open_driver, reachable
from graphrec.serving.explain import Explainer, Explanation
from graphrec.serving.graph_index import GraphIndex, epoch_seconds
from graphrec.serving.promos import Promo, friends_bought
from graphrec.serving.recommender import Filters, Recommender, Scored
from graphrec.store.query import QueryResult, run_read

log = logging.getLogger("graphrec.serving")

# While Neo4j is down, try to (re)load the index at most this often, not on every request.
RELOAD_BACKOFF_S = 5.0


class UnknownId(LookupError):
    """An id that neither the model nor the graph knows; ``field`` names the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass
class Item:
    product_id: str
    name: str | None
    score: float
    explanations: list[Explanation] = field(default_factory=list)


@dataclass
class Recommendations:
    user_id: str
    model: str
    source: str  # "model", "fold_in" (cold user), "popular" (fallback)
    items: list[Item]
    warnings: list[str] = field(default_factory=list)


class Service:
    def __init__(self, settings: Settings, artifact: Artifact, driver: Driver | None) -> None:
        self.settings = settings
        self.artifact = artifact
        self.driver = driver
        self.recommender = Recommender(artifact)
        self.index = GraphIndex()
        self._reload_lock = threading.Lock()
        # Reloads and live writes exclude each other: a write landing while the index is re-read
        # could miss the new copy (a user created mid-reload would vanish until the next reload).
        self._write_lock = threading.RLock()
        self._last_attempt = float("-inf")
        # Evidence written through the service, per trained user: it shifts their vector live.
        self._live_friends: dict[str, set[str]] = {}
        self._live_products: dict[str, set[str]] = {}
        self.started_at = datetime.now(timezone.utc)

    @classmethod
    def open(cls, settings: Settings, artifact_path: str | Path, load_graph: bool = True) -> "Service":
        service = cls(settings, Artifact.load(artifact_path), open_driver(settings))
        if load_graph:
            service.try_load_index()
        return service

    def close(self) -> None:
        if self.driver is not None:
            self.driver.close()

    @property
    def database(self) -> str:
        return self.settings.neo4j_database

    # -- the in-memory graph index ---------------------------------------------------------------
    def load_index(self) -> GraphIndex:
        """(Re)read the index from Neo4j; raises GraphUnavailable when it cannot."""
        with self._reload_lock:
            self._last_attempt = time.monotonic()
            with self._write_lock:
                self._load_and_swap()
            # The index is millions of long-lived objects; a full GC pass over them costs tens of
            # milliseconds, every few thousand requests. Freezing moves them out of GC's sight.
            gc.collect()
            gc.freeze()
            log.info("graph index loaded: %s", self.index.counts())
            return self.index

    def _load_and_swap(self) -> None:
        """Read a new index, make its new products recommendable, then swap it in."""
        with graph_call(self.driver) as driver:
            index = GraphIndex.load(driver, self.database)
        with self.recommender.lock:
            for pid, cats in index.product_categories.items():
                self.recommender.set_product_attributes(pid, index.product_prices.get(pid), cats)
            # Products created (or loaded) after training become recommendable from their categories.
            self.recommender.add_products([
                (pid, index.product_categories[pid], index.product_prices.get(pid),
                 sorted(index.buyers.get(pid, ())))
                for pid in sorted(set(index.product_names) - set(self.recommender.product_rows))])
            # Cold users' vectors are recomputed lazily from the new index.
            for uid in list(self.recommender.user_vectors):
                if uid not in self.artifact.user_index:
                    del self.recommender.user_vectors[uid]
            self.index = index

    def try_load_index(self) -> bool:
        try:
            self.load_index()
            return True
        except GraphUnavailable:
            log.warning("Neo4j unreachable; serving model-only recommendations until it is back")
            return False

    def reload_due(self) -> bool:
        """The index is missing and the back-off since the last attempt has passed."""
        return not self.index.loaded and time.monotonic() - self._last_attempt >= RELOAD_BACKOFF_S

    def _ensure_index(self, reload: bool = True) -> bool:
        """True when the index is loaded; while it is not, retry at most every few seconds.

        ``reload=False`` never touches the network (for callers on an event loop, which call
        :meth:`try_load_index` in a worker thread when :meth:`reload_due`)."""
        if self.index.loaded:
            return True
        if not reload or not self.reload_due():
            return False
        return self.try_load_index()

    def graph_index(self, reload: bool = True) -> GraphIndex:
        """The loaded index, or GraphUnavailable."""
        if not self._ensure_index(reload):
            raise GraphUnavailable("the graph database (Neo4j) is unavailable right now and the "
                                   "service has not loaded the graph yet; try again later")
        return self.index

    # -- users -----------------------------------------------------------------------------------
    def user_vector(self, user_id: str) -> tuple[np.ndarray | None, str | None]:
        """The user's vector and its source, folding cold users in from the index on first use."""
        vec = self.recommender.user_vector(user_id)
        if vec is not None:
            return vec, ("model" if user_id in self.artifact.user_index else "fold_in")
        idx = self.index
        if not idx.has_user(user_id):
            return None, None
        return self._fold_in(user_id), "fold_in"

    def _fold_in(self, user_id: str) -> np.ndarray:
        idx = self.index
        return self.recommender.fold_in(
            user_id,
            friends=sorted(idx.social(user_id)),
            products=sorted(set(idx.bought.get(user_id, {})) | idx.touched.get(user_id, set())),
            categories=list(idx.interests.get(user_id, ())),
        )

    def _refresh_user(self, user_id: str) -> None:
        """After a live write: recompute a cold user's fold-in or shift a trained user's vector."""
        if user_id in self.artifact.user_index:
            self.recommender.shift(user_id, sorted(self._live_friends.get(user_id, ())),
                                   sorted(self._live_products.get(user_id, ())))
        elif self.index.has_user(user_id):
            self._fold_in(user_id)

    # -- recommendations ---------------------------------------------------------------------------
    def recommend(self, user_id: str, k: int = 10, filters: Filters = Filters(), explain: bool = True,
                  fallback: str | None = None, reload: bool = True) -> Recommendations:
        warnings: list[str] = []
        graph = self._ensure_index(reload)
        with self.index.lock:
            vec, source = self.user_vector(user_id)
            if vec is None:
                if not graph and fallback != "popular":
                    raise GraphUnavailable(
                        f"user {user_id!r} is not in the model and the graph database (Neo4j), which "
                        "could know them, is unavailable right now; try again later")
                if fallback != "popular":
                    raise UnknownId("user_id", f"user {user_id!r} is unknown to the model and the graph "
                                               "(create them with POST /users, or add ?fallback=popular)")
                scored = self.recommender.popular(k, filters)
                return Recommendations(user_id, self.artifact.model, "popular",
                                       [self._item(s) for s in scored],
                                       [f"user {user_id!r} is unknown: this is the popular list"])
            exclude = self.index.bought.get(user_id, {}).keys()
            scored = self.recommender.recommend(vec, k, filters, exclude)
            items = [self._item(s) for s in scored]
            if not graph:
                warnings.append("the graph database is unavailable: products already bought may be "
                                "included and explanations are missing")
            elif explain and items:
                explainer = Explainer(self.index, self.recommender)
                for item, exps in zip(items, explainer.explain(user_id, vec, [i.product_id for i in items])):
                    item.explanations = exps
        return Recommendations(user_id, self.artifact.model, source, items, warnings)

    def _item(self, s: Scored) -> Item:
        return Item(s.product_id, self.index.product_names.get(s.product_id), s.score)

    def popular(self, k: int, filters: Filters = Filters()) -> list[Item]:
        with self.index.lock:
            return [self._item(s) for s in self.recommender.popular(k, filters)]

    def friends_bought(self, user_id: str, k: int = 10, since: datetime | None = None,
                       reload: bool = True) -> list[Promo]:
        index = self.graph_index(reload)
        with index.lock:
            if not index.has_user(user_id):
                raise UnknownId("user_id", f"user {user_id!r} is not in the graph")
            vec, _ = self.user_vector(user_id)
            return friends_bought(index, self.recommender, user_id, k, epoch_seconds(since), vec)

    # -- live writes (Neo4j first, then memory) ----------------------------------------------------
    def _known_in_index(self, index: GraphIndex, fields: dict[str, tuple[str, Sequence[str]]]) -> bool:
        """True when every referenced id is in the index: the write can skip the graph-side check.
        When one is not, the write checks in Neo4j (the index may predate a load) and names it."""
        has = {"users": index.has_user, "products": index.has_product,
               "categories": index.category_names.__contains__}
        return all(has[kind](i) for kind, ids in fields.values() for i in ids)

    def _mirror(self, user_id: str, stored: writes.Stored) -> None:
        for start, end in stored.friend_edges:
            self.index.add_friend(start, end)
            other = end if start == user_id else start
            self._live_friends.setdefault(user_id, set()).add(other)
            self._live_friends.setdefault(other, set()).add(user_id)
        for target in stored.follows:
            self.index.add_follow(user_id, target)
            self._live_friends.setdefault(user_id, set()).add(target)
        for rel_type, pid, ts in stored.interactions:
            self.index.add_interaction(user_id, pid, rel_type, epoch_seconds(ts))
            self._live_products.setdefault(user_id, set()).add(pid)

    def create_user(self, user_id: str, name: str | None, friends: Sequence[str],
                    categories: Sequence[str], interactions: Sequence[writes.Interaction],
                    follows: Sequence[str] = ()) -> str:
        """Write the user and their edges (one statement), then fold them in: recommendable at once."""
        self.graph_index()  # before the write lock: it may reload, which takes that lock
        with self._write_lock:
            index = self.index
            if index.has_user(user_id):
                raise writes.AlreadyExists(f"user {user_id!r} already exists")
            fields = {"friends": ("users", friends), "follows": ("users", follows),
                      "interactions.product_id": ("products", [i.product_id for i in interactions]),
                      "categories": ("categories", categories)}
            check = not self._known_in_index(index, fields)
            with graph_call(self.driver) as driver:
                stored = writes.create_user(driver, self.database, user_id, name, friends, categories,
                                            interactions, follows, check=check)
            with index.lock:
                index.add_user(user_id, name, categories)
                self._mirror(user_id, stored)
                for other in {e for pair in stored.friend_edges for e in pair} - {user_id}:
                    self._refresh_user(other)
                self._fold_in(user_id)
            return "fold_in"

    def _add_edges(self, user_id: str, friends: Sequence[str] = (), follows: Sequence[str] = (),
                   interactions: Sequence[writes.Interaction] = ()) -> writes.Stored:
        self.graph_index()  # before the write lock: it may reload, which takes that lock
        with self._write_lock:
            index = self.index
            fields = {"user_id": ("users", [user_id]), "other_user_id": ("users", [*friends, *follows]),
                      "product_id": ("products", [i.product_id for i in interactions])}
            check = not self._known_in_index(index, fields)
            with graph_call(self.driver) as driver:
                stored = writes.add_edges(driver, self.database, user_id, friends=friends, follows=follows,
                                          interactions=interactions, check=check)
            with index.lock:
                if not index.has_user(user_id):  # created behind the service's back: now it knows
                    index.add_user(user_id, None)
                self._mirror(user_id, stored)
                self._refresh_user(user_id)
                for other in {e for pair in stored.friend_edges for e in pair} - {user_id}:
                    self._refresh_user(other)
            return stored

    def add_interactions(self, user_id: str, interactions: Sequence[writes.Interaction]) -> int:
        return len(self._add_edges(user_id, interactions=interactions).interactions)

    def add_social(self, user_id: str, other_id: str, kind: str) -> int:
        if kind == "friend":
            stored = self._add_edges(user_id, friends=[other_id])
            return len(stored.friend_edges)
        return len(self._add_edges(user_id, follows=[other_id]).follows)

    def create_product(self, product_id: str, name: str, category_id: str, price: float | None,
                       brand: str | None = None) -> None:
        self.graph_index()  # before the write lock: it may reload, which takes that lock
        with self._write_lock:
            index = self.index
            if index.has_product(product_id):
                raise writes.AlreadyExists(f"product {product_id!r} already exists")
            check = category_id not in index.category_names
            with graph_call(self.driver) as driver:
                created = writes.create_product(driver, self.database, product_id, name, category_id, price,
                                                brand, check=check)
            if not created:
                raise writes.MissingNodes({"category_id": [category_id]})
            with index.lock:
                index.add_product(product_id, name, price, [category_id])
                self.recommender.add_product(product_id, [category_id], price)

    # -- analysts and health -------------------------------------------------------------------------

    def run_query(self, cypher: str, params: dict[str, Any], limit: int, timeout: float) -> QueryResult:
        with graph_call(self.driver) as driver:
            return run_read(driver, cypher, params, database=self.database, limit=limit, timeout=timeout)

    def health(self) -> dict[str, Any]:
        up = reachable(self.driver)
        if up and not self.index.loaded:
            self._ensure_index()
        manifest = self.artifact.manifest
        return {
            "status": "ok" if up else "degraded",
            "neo4j_reachable": up,
            "graph_loaded": self.index.loaded,
            "model": {
                "kind": self.artifact.model,
                "snapshot_id": self.artifact.snapshot_id,
                "created_at": manifest.get("created_at"),
                "format_version": manifest.get("format_version"),
                "users": len(self.artifact.user_ids),
                "products": len(self.artifact.product_ids),
            },
            "graph": self.index.counts() if self.index.loaded else None,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "live": {"users_folded_in": sum(1 for u in self.recommender.user_vectors
                                            if u not in self.artifact.user_index),
                     "products_added": len(self.recommender.product_ids) - len(self.artifact.product_ids)},
        }
