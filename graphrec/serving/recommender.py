"""Ranking products for a user from a model artifact: scores, filters, exclusions, ties.

Scoring is ``user_vector @ product_emb.T`` for every model kind. Users the model never saw (created
live, or loaded after training) get a fold-in vector from :mod:`graphrec.coldstart`; products
created live are appended to the product matrix with a fold-in vector from their categories, so
both are recommendable at once, without retraining. Ties are broken by product id, so the same
request always gets the same list.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from graphrec.artifact import Artifact
from graphrec.coldstart import fold_in_product, fold_in_user

# How far the evidence added live (new purchases, new friends) moves a trained user's vector, as a
# fraction of that vector's norm: enough to reorder the list, not enough to forget the history.
LIVE_SHIFT = 0.5


@dataclass(frozen=True)
class Filters:
    category: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    exclude: frozenset[str] = frozenset()
    # Rank only these products (a campaign's promoted products); None: the whole catalogue.
    only: frozenset[str] | None = None


@dataclass(frozen=True)
class Scored:
    product_id: str
    score: float
    row: int


class Recommender:
    """Model-side state of the service: product matrix, user vectors, popularity."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.lock = threading.RLock()
        self.product_ids: list[str] = list(artifact.product_ids)
        self.product_rows: dict[str, int] = dict(artifact.product_index)
        self._emb = np.ascontiguousarray(artifact.product_emb, dtype=np.float32)
        self._n = len(self.product_ids)
        self.popularity = np.asarray(artifact.popularity, dtype=np.float64).copy()
        self._prices = np.full(self._n, np.nan)
        self._category_rows: dict[str, set[int]] = {}
        for row, cats in enumerate(artifact.product_categories):
            for c in cats:
                self._category_rows.setdefault(artifact.category_ids[c], set()).add(row)
        # Vectors of users the artifact has no row for (cold users), and of trained users whose
        # evidence changed live; both replace the trained row when present.
        self.user_vectors: dict[str, np.ndarray] = {}
        # Products' ids sorted once: the tie-break order as a rank per row.
        self._id_rank = self._rank_ids()

    # -- products -----------------------------------------------------------------------------
    @property
    def product_emb(self) -> np.ndarray:
        return self._emb[: self._n]

    def _rank_ids(self) -> np.ndarray:
        order = sorted(range(self._n), key=self.product_ids.__getitem__)
        rank = np.empty(self._n, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(self._n)
        return rank

    def set_product_attributes(self, product_id: str, price: float | None, categories: Iterable[str]) -> None:
        """Record graph attributes (price, categories) of a product the model knows."""
        row = self.product_rows.get(product_id)
        if row is None:
            return
        self._prices[row] = np.nan if price is None else float(price)
        for c in categories:
            self._category_rows.setdefault(c, set()).add(row)

    def add_product(self, product_id: str, categories: Sequence[str], price: float | None,
                    buyers: Sequence[str] = ()) -> int:
        """Make a product the model never saw recommendable: fold-in vector from its categories."""
        with self.lock:
            row = self._append(product_id, categories, price, buyers)
            self._id_rank = self._rank_ids()
            return row

    def add_products(self, products: Sequence[tuple[str, Sequence[str], float | None, Sequence[str]]]) -> None:
        """Many ``(id, categories, price, buyers)`` at once (one re-sort of the tie-break order)."""
        with self.lock:
            for product_id, categories, price, buyers in products:
                self._append(product_id, categories, price, buyers)
            self._id_rank = self._rank_ids()

    def _append(self, product_id: str, categories: Sequence[str], price: float | None,
                buyers: Sequence[str]) -> int:
        if product_id in self.product_rows:
            row = self.product_rows[product_id]
            self.set_product_attributes(product_id, price, categories)
            return row
        vec = fold_in_product(self.artifact, categories=categories, buyers=buyers)
        if self._n == len(self._emb):  # amortised growth: live products arrive one by one
            grow = max(16, self._n // 8)
            self._emb = np.concatenate([self._emb, np.zeros((grow, self._emb.shape[1]), np.float32)])
            self._prices = np.concatenate([self._prices, np.full(grow, np.nan)])
            self.popularity = np.concatenate([self.popularity, np.zeros(grow)])
        row = self._n
        self._emb[row] = vec
        self.product_ids.append(product_id)
        self.product_rows[product_id] = row
        self._n += 1
        self.set_product_attributes(product_id, price, categories)
        return row

    # -- users --------------------------------------------------------------------------------
    def knows_user(self, user_id: str) -> bool:
        return user_id in self.user_vectors or user_id in self.artifact.user_index

    def user_vector(self, user_id: str) -> np.ndarray | None:
        vec = self.user_vectors.get(user_id)
        if vec is not None:
            return vec
        row = self.artifact.user_index.get(user_id)
        return None if row is None else self.artifact.user_emb[row]

    def fold_in(self, user_id: str, friends: Sequence[str], products: Sequence[str],
                categories: Sequence[str]) -> np.ndarray:
        """(Re)compute the vector of a user the model never trained on, from the graph's evidence."""
        vec = fold_in_user(self.artifact, friends=friends, products=products, categories=categories)
        self.user_vectors[user_id] = vec
        return vec

    def shift(self, user_id: str, friends: Sequence[str], products: Sequence[str]) -> np.ndarray | None:
        """Move a trained user's vector towards evidence added since training (live edges)."""
        row = self.artifact.user_index.get(user_id)
        if row is None:
            return None
        base = self.artifact.user_emb[row]
        delta = fold_in_user(self.artifact, friends=friends, products=products,
                             weights={"prior": 0.0, "categories": 0.0})
        norm = float(np.linalg.norm(delta))
        if norm == 0:
            self.user_vectors.pop(user_id, None)
            return base
        vec = base + np.float32(LIVE_SHIFT * float(np.linalg.norm(base)) / norm) * delta
        self.user_vectors[user_id] = vec.astype(np.float32)
        return self.user_vectors[user_id]

    # -- ranking ------------------------------------------------------------------------------
    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.product_emb @ vector

    def mask(self, filters: Filters, exclude: Iterable[str] = ()) -> np.ndarray:
        """Boolean [n_products]: products allowed by the filters and not excluded."""
        n = self._n
        allowed = np.ones(n, dtype=bool)
        if filters.only is not None:
            allowed[:] = False
            rows = [r for r in map(self.product_rows.get, filters.only) if r is not None and r < n]
            allowed[rows] = True
        if filters.category is not None:
            in_category = np.zeros(n, dtype=bool)
            rows = self._category_rows.get(filters.category)
            if rows:
                in_category[np.fromiter(rows, dtype=np.int64, count=len(rows))] = True
            allowed &= in_category
        prices = self._prices[:n]
        if filters.min_price is not None:
            allowed &= prices >= filters.min_price  # NaN (no price) compares False: filtered out
        if filters.max_price is not None:
            allowed &= prices <= filters.max_price
        for pid in (*filters.exclude, *exclude):
            row = self.product_rows.get(pid)
            if row is not None:
                allowed[row] = False
        return allowed

    def top(self, values: np.ndarray, allowed: np.ndarray, k: int) -> list[Scored]:
        """The k best allowed rows by value, ties broken by product id (deterministic)."""
        candidates = np.flatnonzero(allowed)
        if candidates.size == 0 or k <= 0:
            return []
        vals = values[candidates]
        if candidates.size > k:
            # Everything tied with the k-th best value stays in, so the id tie-break is exact.
            kth = np.partition(vals, candidates.size - k)[candidates.size - k]
            keep = vals >= kth
            candidates, vals = candidates[keep], vals[keep]
        order = np.lexsort((self._id_rank[candidates], -vals))[:k]
        return [Scored(self.product_ids[r], float(values[r]), int(r)) for r in candidates[order]]

    def recommend(self, vector: np.ndarray, k: int, filters: Filters = Filters(),
                  exclude: Iterable[str] = ()) -> list[Scored]:
        with self.lock:
            return self.top(self.scores(vector), self.mask(filters, exclude), k)

    def popular(self, k: int, filters: Filters = Filters(), exclude: Iterable[str] = ()) -> list[Scored]:
        """Most-interacted products in training (the non-personalised baseline)."""
        with self.lock:
            return self.top(self.popularity[: self._n], self.mask(filters, exclude), k)
