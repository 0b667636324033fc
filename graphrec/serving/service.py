"""The serving state and its operations, shared by the API and the CLI.

Design (what makes the concurrency bugs impossible rather than patched):

* **One immutable reference.** :class:`ServingState` bundles the graph index and the model-side
  recommender of one generation. A request reads ``service.state`` once and uses only that object,
  so it can never see half of a reload. Reads take no lock: a published state's arrays are
  read-only and what live writes add is stored copy-on-write (see
  :mod:`graphrec.serving.graph_index` and :mod:`graphrec.serving.recommender`).
* **Reloads off to the side, single-flight.** A reload reads Neo4j into a *new* state without
  holding anything writes need; concurrent callers wait for the one reload in flight instead of
  starting another. Writes that commit while it runs are journaled and replayed onto the new state
  (mirroring is idempotent), then the new state is published with one reference store.
* **Writes never wait on a reload, nor on each other's I/O.** The Neo4j call runs with no lock
  held; only the in-memory mirroring after the commit takes the short ``_mirror_lock``.
* **Fail fast when Neo4j is down.** A circuit breaker (:class:`graphrec.serving.db.Breaker`) turns
  the first connectivity failure into "unavailable" for everyone for a few seconds, so a burst of
  writes during an outage answers 503 at once instead of queuing on connection timeouts.

Reads that the index and the model can answer never touch Neo4j; writes go to Neo4j first and are
mirrored in memory only once committed. While Neo4j is down, model-only recommendations keep
working and graph operations raise :class:`GraphUnavailable`.
"""

from __future__ import annotations

import atexit
import gc
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from neo4j import Driver

from graphrec.artifact import Artifact
from graphrec.circle import CirclePurchases
from graphrec.config import Settings
from graphrec.serving import timing, writes
from graphrec.serving.changes import OwnCommits, Version, current_version
from graphrec.serving.db import Breaker, GraphUnavailable, open_driver
from graphrec.serving.explain import Explainer, Explanation
from graphrec.serving.graph_arrays import Changes
from graphrec.serving.graph_index import GraphIndex, epoch_seconds
from graphrec.serving.promos import Promo, friends_bought
from graphrec.serving.reader import GraphReader, ProcessReader, ReaderFailed, ThreadReader, Update
from graphrec.serving.recommender import Filters, Recommender, Scored

log = logging.getLogger("graphrec.serving")
# load_index freezes the heap (gc.freeze). Frozen objects are never collected, not even by the
# interpreter's last collection at exit, so module objects in cycles (DuckDB's nanobind types) outlive
# it and nanobind prints ~40 "leaked" lines after every serving process or test run. Thaw first.
atexit.register(gc.unfreeze)

# While Neo4j is down, try to (re)load the index at most this often, not on every request.
RELOAD_BACKOFF_S = 5.0
# A refresh reads the graph anyway once the service's own writes have touched this many entities
# since the last read: they live in the index's overlay (a copy of each touched row) until a read
# folds them into arrays, and without foreign writes the overlay would only grow.
MAX_LIVE_BEFORE_READ = 100_000

Mirror = Callable[["ServingState"], None]


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
    score: float  # the model's raw score (dot product), or training interactions for "popular"
    percentile: float  # share of the catalogue it outranks for this user: comparable across sources
    explanations: list[Explanation] = field(default_factory=list)


@dataclass
class Recommendations:
    user_id: str
    model: str
    source: str  # "model", "fold_in" (cold user), "popular" (fallback)
    items: list[Item]
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ServingState:
    """What one request reads: the graph index and the recommender of one generation."""

    index: GraphIndex
    recommender: Recommender
    generation: int
    loaded_at: float
    read: int = 0  # the reader's read the index is built on (0: none)


class Service:
    def __init__(self, settings: Settings, artifact: Artifact, driver: Driver | None,
                 reader: GraphReader | None = None) -> None:
        self.settings = settings
        self.artifact = artifact
        self.driver = driver
        self.breaker = Breaker(driver)
        self.reader = reader or ThreadReader()
        self.state = ServingState(GraphIndex(), Recommender(artifact), 0, time.monotonic())
        self._mirror_lock = threading.Lock()  # serialises in-memory mirroring, never held over I/O
        self._reload_lock = threading.Lock()  # single flight
        self._journal: list[Mirror] | None = None  # writes mirrored while a reload runs
        self._last_attempt = float("-inf")
        # The database's transaction when the index's last read began, and this service's own commits
        # since: a refresh reads again only when someone else committed (see serving.changes).
        self._read_at: Version | None = None
        self.commits = OwnCommits()
        # Evidence written through the service, per trained user: it shifts their vector live and
        # survives reloads. Copy-on-write (readers sort these sets while writers add).
        self._live_friends: dict[str, frozenset[str]] = {}
        self._live_products: dict[str, frozenset[str]] = {}
        self.started_at = datetime.now(timezone.utc)

    @classmethod
    def open(cls, settings: Settings, artifact_path: str | Path, load_graph: bool = True,
             read_in_process: bool = False) -> "Service":
        """``read_in_process``: (re)read the graph in a child process (for services that refresh
        on a schedule: a reload then costs requests almost nothing; see :mod:`graphrec.serving.reader`)."""
        artifact = Artifact.load(artifact_path, pseudonym_key=settings.pseudonym_key, real_ids=True)
        reader = ProcessReader(settings) if read_in_process else ThreadReader()
        service = cls(settings, artifact, open_driver(settings), reader)
        if load_graph:
            # Planning first: it may commit Neo4j's own token transactions (a property key used for
            # the first time), which the first refresh would otherwise take for foreign writes.
            service.warm_up_writes()
            service.try_load_index()
        return service

    def warm_up_writes(self) -> None:
        """Have Neo4j plan every write statement now (rolled back), not on the first requests."""
        if self.driver is None:
            return
        try:
            log.info("write statements planned in %.2f s", writes.warm_up(self.driver, self.database))
        except Exception as err:  # noqa: BLE001 - a cold plan cache only costs the first writes time
            log.warning("could not plan the write statements ahead: %s", err)

    def close(self) -> None:
        self.reader.close()
        if self.driver is not None:
            self.driver.close()

    @property
    def database(self) -> str:
        return self.settings.neo4j_database

    # Shorthands for callers that do one thing with the current state (CLI, publish).
    @property
    def index(self) -> GraphIndex:
        return self.state.index

    @property
    def recommender(self) -> Recommender:
        return self.state.recommender

    # -- (re)loading the state -------------------------------------------------------------------
    def load_index(self) -> GraphIndex:
        """(Re)read the graph into a new state and publish it; raises GraphUnavailable.

        Single flight: a caller that arrives while a reload runs waits for that one and returns its
        result instead of reading the graph a second time. The new index is the new read with the
        writes that landed meanwhile replayed; the new state shares the recommender and tells it
        only what changed since the reader's previous read, unless the reader could not compare
        (the first read, or after a failure): then the recommender is rebuilt too."""
        generation = self.state.generation
        with self._reload_lock:
            if self.state.generation != generation and self.state.index.loaded:
                return self.state.index  # someone else's reload finished while we waited
            self._last_attempt = time.monotonic()
            with self._mirror_lock:
                self._journal = []
                current = self.state
            try:
                # No automatic collections while many new objects are created: each one would
                # walk the whole growing index with the GIL held, stalling requests.
                gc.disable()
                try:
                    with self.breaker.call() as driver:
                        read_at = current_version(driver, self.database)  # before: nothing older is missed
                        update = self.reader.read(driver, self.database, current.read if current.index.loaded else 0)
                    read_s = time.monotonic() - self._last_attempt
                    state = self._build_state(update) if update.changes is None else None
                finally:
                    gc.enable()
                built = time.monotonic()
                apply: Changes | None = None
                with self._mirror_lock:
                    if state is None:  # stamps and the shared recommender move under the writers' lock
                        index, apply = current.index.successor(update.arrays, update.changes)
                        state = ServingState(index, current.recommender, current.generation + 1,
                                             time.monotonic(), update.read)
                        self._update_recommender(state.recommender, current.index, state.index, apply)
                    for mirror in self._journal:
                        mirror(state)
                    self.state = state
                    locked_s = time.monotonic() - built
                self._read_at = read_at
            except ReaderFailed as err:
                log.error("reading the graph failed: %s", err)
                raise GraphUnavailable("the graph could not be read; the service keeps its previous "
                                       "state (see its log)") from None
            finally:
                with self._mirror_lock:
                    self._journal = None
        # The service holds many long-lived objects (the model's id maps, the recommender); a full
        # GC pass over them costs tens of milliseconds with the GIL held, i.e. a stall of every
        # request. Freezing moves them out of the collector's sight (cheap: no pass over the heap,
        # unlike gc.collect). An old state's objects are still freed by refcount.
        # What explanations look up per read (a user's number to their model row): here, in the
        # reload's thread, rather than in the first request after it (a second at a million users).
        state.index.user_rows(self.artifact.user_ids)
        gc.freeze()  # thawed at exit (see the atexit line at the top)
        changed = "everything" if apply is None else f"{apply.size()} changed users and products"
        # The three times: waiting on the reader, building the new state beside the old one, and
        # the part writers wait for (recommender update and journal replay, under their lock).
        log.info("graph index loaded (generation %d, %s; read %.0f ms, build %.0f ms, under the writers' "
                 "lock %.1f ms): %s", state.generation, changed, 1000 * read_s,
                 1000 * (built - self._last_attempt - read_s), 1000 * locked_s, state.index.counts())
        return state.index

    def _build_state(self, update: Update) -> ServingState:
        """A new state from a whole read: a new recommender over the artifact, completed by what
        the graph knows that the model does not: prices and categories, products created after
        training, erased users."""
        index = GraphIndex(update.arrays, loaded=True)
        rec = Recommender(self.artifact)
        products = []
        for pid in index.product_ids():
            cats, price = index.product_categories(pid), index.product_price(pid)
            if pid in rec.product_rows:
                rec.set_product_attributes(pid, price, cats)
            else:  # created (or loaded) after training: recommendable from its categories
                products.append((pid, cats, price, sorted(index.buyers(pid))))
        rec.add_products(products)
        # A pseudonymised artifact names its rows by the real ids of the users the graph holds, so
        # explanations ("similar users") can name them.
        users = index.user_ids()
        self.artifact.reveal_user_ids(users)
        # Trained users no longer in the graph were erased (or removed by a load): never serve them.
        lookup = self.artifact.user_index
        in_graph = {lookup[u] for u in users if u in lookup}
        rec.hide_rows(set(range(len(self.artifact.user_ids))) - in_graph)
        return ServingState(index, rec, self.state.generation + 1, time.monotonic(), update.read)

    def _update_recommender(self, rec: Recommender, old: GraphIndex, new: GraphIndex, changes: Changes) -> None:
        """The recommender side of a reload's changes: products' prices and categories, products
        new to the model, users gone from the graph (hidden; an erased user stays erased for the
        life of the process even if a load brings the id back), real ids of new users."""
        added = []
        for pid in sorted(changes.products):
            if not new.has_product(pid):
                continue
            cats, price = new.product_categories(pid), new.product_price(pid)
            if pid in rec.product_rows:
                rec.set_product_attributes(pid, price, cats, removed=set(old.product_categories(pid)) - set(cats))
            else:
                added.append((pid, cats, price, sorted(new.buyers(pid))))
        rec.add_products(added)
        for uid in sorted(changes.users_gone):
            rec.hide_user(uid)
        arrived = [u for u in sorted(changes.users_arrived) if not old.has_user(u)]
        if arrived:
            self.artifact.reveal_user_ids(arrived, keep_revealed=True)

    def try_load_index(self) -> bool:
        try:
            self.load_index()
            return True
        except GraphUnavailable:
            log.warning("Neo4j unreachable; serving model-only recommendations until it is back")
            return False

    def refresh(self) -> bool:
        """The scheduled re-read (``serve --refresh-every``): read the graph again only when someone
        other than this service committed to it since the index's last read (the service's own
        writes are in the index already). True when the index is current."""
        if self._unchanged_by_others():
            return True
        return self.try_load_index()

    def _unchanged_by_others(self) -> bool:
        with self._reload_lock:  # a reload in flight moves _read_at: wait for it
            base = self._read_at
            if base is None or not self.state.index.loaded or self.state.index.live_size() > MAX_LIVE_BEFORE_READ:
                return False
            try:
                with self.breaker.call() as driver:
                    now = current_version(driver, self.database)
            except GraphUnavailable:
                return False  # the read will say so (and keep the current state)
            foreign = None if now is None else self.commits.foreign_since(base, now)
            if foreign != 0:
                log.debug("refresh: %s commits by others since transaction %d: reading the graph",
                          "unknown" if foreign is None else foreign, base.txn)
                return False
            self._read_at = now
            return True

    def reload_due(self) -> bool:
        """The index is missing and the back-off since the last attempt has passed."""
        return (not self.state.index.loaded and not self._reload_lock.locked()
                and time.monotonic() - self._last_attempt >= RELOAD_BACKOFF_S)

    def _ensure_index(self, reload: bool = True) -> bool:
        """True when the index is loaded; while it is not, retry at most every few seconds.

        ``reload=False`` never touches the network (for callers on an event loop, which call
        :meth:`try_load_index` in a worker thread when :meth:`reload_due`)."""
        if self.state.index.loaded:
            return True
        if not reload or not self.reload_due():
            return False
        return self.try_load_index()

    def graph_state(self, reload: bool = True) -> ServingState:
        """The current state, whose index is loaded, or GraphUnavailable."""
        if not self._ensure_index(reload):
            raise GraphUnavailable("the graph database (Neo4j) is unavailable right now and the "
                                   "service has not loaded the graph yet; try again later")
        return self.state

    def graph_index(self, reload: bool = True) -> GraphIndex:
        return self.graph_state(reload).index

    # -- users -----------------------------------------------------------------------------------
    def user_vector(self, user_id: str, state: ServingState | None = None) -> tuple[np.ndarray | None, str | None]:
        """The user's vector and its source ("model" or "fold_in"), or (None, None).

        Trained users without live evidence use their row; the others get a vector computed from
        the index and cached with the user's evidence stamp. The stamp is read *before* the
        evidence, and writers bump it *after* changing the evidence, so a vector computed while a
        write lands is cached with the old stamp and recomputed by the next request: no lock, and
        never a stale vector served twice."""
        state = state or self.state
        rec, idx = state.recommender, state.index
        trained = rec.is_trained(user_id)
        if not trained and not idx.has_user(user_id):
            return None, None
        source = "model" if trained else "fold_in"
        live_friends = self._live_friends.get(user_id)
        live_products = self._live_products.get(user_id)
        if trained and not live_friends and not live_products:
            return rec.trained_vector(user_id), source
        stamp = idx.version(user_id)
        cached = rec.user_vectors.get(user_id)
        if cached is not None and cached[1] == stamp:
            return cached[0], source
        if trained:
            vec = rec.shift(user_id, sorted(live_friends or ()), sorted(live_products or ()))
        else:
            vec = rec.fold_in(
                friends=sorted(idx.friends(user_id)),
                follows=sorted(idx.follows(user_id)),
                followers=sorted(idx.followed_by(user_id)),
                products=sorted(idx.bought(user_id).keys() | idx.touched(user_id)),
                categories=list(idx.interests(user_id)))
        rec.user_vectors[user_id] = (vec, stamp)
        return vec, source

    @staticmethod
    def circle_of(user_id: str, state: ServingState) -> CirclePurchases | None:
        """What the user's circle bought (graphrec.circle), read from the index only when the model
        gives the circle term a weight: most requests of a model without it never walk the circle."""
        return state.index.circle_purchases(user_id) if state.recommender.artifact.circle_weight else None

    # -- recommendations ---------------------------------------------------------------------------
    def _resolve_filters(self, state: ServingState, filters: Filters, warnings: list[str]) -> Filters:
        """Category names work as well as ids; filters that can match nothing say so."""
        idx = state.index
        if filters.category is not None and idx.loaded:
            cat = idx.category_id(filters.category)
            if cat is None:
                warnings.append(f"category {filters.category!r} matches no category id or name: "
                                "nothing can be recommended with this filter")
            elif cat != filters.category:
                filters = Filters(cat, filters.min_price, filters.max_price, filters.exclude, filters.only)
        if (filters.min_price is not None or filters.max_price is not None) and \
                not np.isfinite(state.recommender.view.prices[: state.recommender.view.n]).any():
            warnings.append("min_price/max_price: no product in this shop has a price, so a price "
                            "filter leaves nothing")
        return filters

    def recommend(self, user_id: str, k: int = 10, filters: Filters = Filters(), explain: bool = True,
                  fallback: str | None = None, reload: bool = True) -> Recommendations:
        warnings: list[str] = []
        graph = self._ensure_index(reload)
        state = self.state  # read once: the whole request sees one generation
        filters = self._resolve_filters(state, filters, warnings)
        vec, source = self.user_vector(user_id, state)
        if vec is None:
            if not graph and fallback != "popular":
                raise GraphUnavailable(
                    f"user {user_id!r} is not in the model and the graph database (Neo4j), which "
                    "could know them, is unavailable right now; try again later")
            if fallback != "popular":
                raise UnknownId("user_id", f"user {user_id!r} is unknown to the model and the graph "
                                           "(create them with POST /users, or add ?fallback=popular)")
            scored = state.recommender.popular(k, filters)
            return Recommendations(user_id, self.artifact.model, "popular",
                                   [self._item(state, s) for s in scored],
                                   [f"user {user_id!r} is unknown: this is the popular list", *warnings])
        exclude = state.index.bought(user_id).keys()
        with timing.part("rank"):
            scored = state.recommender.recommend(vec, k, filters, exclude, self.circle_of(user_id, state))
        items = [self._item(state, s) for s in scored]
        if not items and not warnings:
            warnings.append("no product matches the filters")
        if not graph:
            warnings.append("the graph database is unavailable: products already bought may be "
                            "included and explanations are missing")
        elif explain and items:
            explainer = Explainer(state.index, state.recommender)
            with timing.part("explain"):
                explained = explainer.explain(user_id, vec, [i.product_id for i in items])
            for item, exps in zip(items, explained):
                item.explanations = exps
        return Recommendations(user_id, self.artifact.model, source, items, warnings)

    @staticmethod
    def _item(state: ServingState, s: Scored) -> Item:
        return Item(s.product_id, state.index.product_name(s.product_id), s.score, s.percentile)

    def popular(self, k: int, filters: Filters = Filters()) -> list[Item]:
        state = self.state
        filters = self._resolve_filters(state, filters, [])
        return [self._item(state, s) for s in state.recommender.popular(k, filters)]

    def friends_bought(self, user_id: str, k: int = 10, since: datetime | None = None,
                       reload: bool = True) -> list[Promo]:
        state = self.graph_state(reload)
        if not state.index.has_user(user_id):
            raise UnknownId("user_id", f"user {user_id!r} is not in the graph")
        vec, _ = self.user_vector(user_id, state)
        return friends_bought(state.index, state.recommender, user_id, k, epoch_seconds(since), vec)

    # -- live writes (Neo4j first, with no lock held; then memory, under the mirror lock) -----------
    def _mirrored(self, mirror: Mirror) -> None:
        """Apply a committed write to the published state, and to the one a reload is building."""
        with timing.part("lock"):  # waiting while a reload swaps its state in, or another write
            self._mirror_lock.acquire()
        try:
            with timing.part("mirror"):
                mirror(self.state)
                if self._journal is not None:
                    self._journal.append(mirror)
        finally:
            self._mirror_lock.release()

    @staticmethod
    def _known_in_index(index: GraphIndex, fields: dict[str, tuple[str, Sequence[str]]]) -> bool:
        """True when every referenced id is in the index: the write can skip the graph-side check.
        When one is not, the write checks in Neo4j (the index may predate a load) and names it."""
        has = {"users": index.has_user, "products": index.has_product, "categories": index.has_category}
        return all(has[kind](i) for kind, ids in fields.values() for i in ids)

    @staticmethod
    def _add_live(live: dict[str, frozenset[str]], user_id: str, ids: set[str]) -> None:
        if ids:
            live[user_id] = live.get(user_id, frozenset()) | ids

    def _remember(self, user_id: str, stored: writes.Stored) -> None:
        """Record live evidence per user (under the mirror lock, before the index bumps stamps)."""
        friends: set[str] = set(stored.follows)
        for start, end in stored.friend_edges:
            other = end if start == user_id else start
            friends.add(other)
            self._add_live(self._live_friends, other, {user_id})
        self._add_live(self._live_friends, user_id, friends)
        self._add_live(self._live_products, user_id, {pid for _, pid, _ in stored.interactions})

    def _mirror_edges(self, user_id: str, stored: writes.Stored, name: str | None = None,
                      interests: Sequence[str] = (), new_user: bool = False) -> Mirror:
        def mirror(state: ServingState) -> None:
            self._remember(user_id, stored)
            index = state.index
            if new_user or not index.has_user(user_id):  # created behind the service's back: now it knows
                index.add_user(user_id, name, interests)
            for start, end in stored.friend_edges:
                index.add_friend(start, end)
            for target in stored.follows:
                index.add_follow(user_id, target)
            index.add_interactions((user_id, pid, rel, epoch_seconds(ts)) for rel, pid, ts in stored.interactions)
        return mirror

    def create_user(self, user_id: str, name: str | None, friends: Sequence[str],
                    categories: Sequence[str], interactions: Sequence[writes.Interaction],
                    follows: Sequence[str] = ()) -> str:
        """Write the user and their edges (one statement), then fold them in: recommendable at once."""
        index = self.graph_index()
        if index.has_user(user_id):
            raise writes.AlreadyExists(f"user {user_id!r} already exists")
        fields = {"friends": ("users", friends), "follows": ("users", follows),
                  "interactions.product_id": ("products", [i.product_id for i in interactions]),
                  "categories": ("categories", categories)}
        check = not self._known_in_index(index, fields)
        with self.breaker.call() as driver:
            stored = writes.create_user(driver, self.database, user_id, name, friends, categories,
                                        interactions, follows, check=check, commits=self.commits)
        self._mirrored(self._mirror_edges(user_id, stored, name, categories, new_user=True))
        return "fold_in"

    def _add_edges(self, user_id: str, friends: Sequence[str] = (), follows: Sequence[str] = (),
                   interactions: Sequence[writes.Interaction] = ()) -> writes.Stored:
        index = self.graph_index()
        fields = {"user_id": ("users", [user_id]), "other_user_id": ("users", [*friends, *follows]),
                  "product_id": ("products", [i.product_id for i in interactions])}
        check = not self._known_in_index(index, fields)
        with self.breaker.call() as driver:
            stored = writes.add_edges(driver, self.database, user_id, friends=friends, follows=follows,
                                      interactions=interactions, check=check, commits=self.commits)
        self._mirrored(self._mirror_edges(user_id, stored))
        return stored

    def add_interactions(self, user_id: str, interactions: Sequence[writes.Interaction]) -> int:
        return len(self._add_edges(user_id, interactions=interactions).interactions)

    def add_social(self, user_id: str, other_id: str, kind: str) -> int:
        if kind == "friend":
            stored = self._add_edges(user_id, friends=[other_id])
            return len(stored.friend_edges)
        return len(self._add_edges(user_id, follows=[other_id]).follows)

    def record_purchases(self, purchases: Sequence[writes.Purchase]) -> int:
        """Many purchases (campaign events) as BOUGHT edges in one transaction, then mirrored.

        The caller has checked that users and products exist; a purchase again adds its weight and
        moves the edge's time, as a live interaction does."""
        if not purchases:
            return 0
        self.graph_index()
        with self.breaker.call() as driver:
            stored = writes.record_purchases(driver, self.database, purchases, commits=self.commits)

        def mirror(state: ServingState) -> None:
            by_user: dict[str, set[str]] = {}
            for uid, pid, _, _ in stored:
                by_user.setdefault(uid, set()).add(pid)
            for uid, pids in by_user.items():
                self._add_live(self._live_products, uid, pids)
            state.index.add_interactions((uid, pid, rel, epoch_seconds(ts)) for uid, pid, rel, ts in stored)

        self._mirrored(mirror)
        return len(stored)

    def create_product(self, product_id: str, name: str, category_id: str, price: float | None,
                       brand: str | None = None) -> None:
        index = self.graph_index()
        if index.has_product(product_id):
            raise writes.AlreadyExists(f"product {product_id!r} already exists")
        check = not index.has_category(category_id)
        with self.breaker.call() as driver:
            created = writes.create_product(driver, self.database, product_id, name, category_id, price,
                                            brand, check=check, commits=self.commits)
        if not created:
            raise writes.MissingNodes({"category_id": [category_id]})

        def mirror(state: ServingState) -> None:
            state.index.add_product(product_id, name, price, [category_id])
            state.recommender.add_product(product_id, [category_id], price)

        self._mirrored(mirror)

    def erase_user(self, user_id: str) -> bool:
        """Erase a user from the graph (node and every relationship) and from serving: the index,
        their model row, their live evidence. False when the graph had no such user."""
        self.graph_index()
        with self.breaker.call() as driver:
            existed = writes.delete_user(driver, self.database, user_id, commits=self.commits)

        def mirror(state: ServingState) -> None:
            self._live_friends.pop(user_id, None)
            self._live_products.pop(user_id, None)
            for other, live in list(self._live_friends.items()):
                if user_id in live:
                    self._live_friends[other] = live - {user_id}
            state.recommender.hide_user(user_id)
            state.index.remove_user(user_id)  # bumps the stamps of everyone who named them

        self._mirrored(mirror)
        return existed

    # -- health ----------------------------------------------------------------------------------------

    def health(self, reachable: bool) -> dict[str, Any]:
        """The service's state; ``reachable`` is Neo4j's, found by the caller (it may block)."""
        state = self.state
        manifest = self.artifact.manifest
        return {
            "status": "ok" if reachable else "degraded",
            "neo4j_reachable": reachable,
            "graph_loaded": state.index.loaded,
            "model": {
                "kind": self.artifact.model,
                "snapshot_id": self.artifact.snapshot_id,
                "created_at": manifest.get("created_at"),
                "format_version": manifest.get("format_version"),
                "users": len(self.artifact.user_ids),
                "products": len(self.artifact.product_ids),
            },
            "graph": state.index.counts() if state.index.loaded else None,
            "generation": state.generation,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "live": {"users_folded_in": sum(1 for u in list(state.recommender.user_vectors)
                                            if not state.recommender.is_trained(u)),
                     "users_with_live_evidence": len(self._live_friends.keys() | self._live_products.keys()),
                     "products_added": state.recommender.view.n - len(self.artifact.product_ids)},
        }
