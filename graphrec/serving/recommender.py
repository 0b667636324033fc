"""Ranking products for a user from a model artifact: scores, filters, exclusions, ties.

Scoring is ``user_vector @ product_emb.T`` for every model kind. Users the model never saw (created
live, or loaded after training) get a fold-in vector from :mod:`graphrec.coldstart`; products
created live are appended to the product matrix with a fold-in vector from their categories, so
both are recommendable at once, without retraining. Ties are broken by product id, so the same
request always gets the same list.

Requests read without locks while live products arrive: the arrays a request ranks over are one
immutable :class:`Catalogue` view, replaced whole (one atomic store) when a product is added. Rows
below a view's ``n`` never change, so a new view shares the grown buffers with the old one.
Callers serialise the writes (add_product, fold_in, shift); see :mod:`graphrec.serving.service`.

A score is the model's dot product ``user_vector . product_vector``, plus the circle term where the
artifact has a weight for it (what the user's friends bought, :mod:`graphrec.circle`); ``percentile``
turns it into the one scale clients can compare across users and sources.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from graphrec.artifact import Artifact
from graphrec.circle import CirclePurchases, circle_term
from graphrec.coldstart import fold_in_product, fold_in_user

# How far the evidence added live (new purchases, new friends) moves a trained user's vector, as a
# fraction of that vector's norm: enough to reorder the list, not enough to forget the history.
LIVE_SHIFT = 0.5

# Rows per block when ranking: the k-th best of the blocks' maxima is a cheap lower bound on the
# k-th best value (k blocks each hold a value at least that large).
RANK_BLOCK = 64


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
    score: float  # the raw value ranked on: model score (dot product + circle term), or training interactions (popular)
    row: int
    # Share of the catalogue this product outranks for this request, in (0, 1]: the one score
    # whose meaning is the same for trained users, folded-in users and the popular fallback.
    percentile: float = 1.0


@dataclass(frozen=True)
class Catalogue:
    """What ranking reads, as of one moment: the first ``n`` rows of each buffer."""

    n: int
    emb: np.ndarray  # [capacity, dim]
    prices: np.ndarray  # [capacity], NaN = no price
    popularity: np.ndarray  # [capacity]
    id_rank: np.ndarray  # [n]: each row's position in id order, the tie-break

    @property
    def product_emb(self) -> np.ndarray:
        return self.emb[: self.n]


class Recommender:
    """Model-side state of the service: product matrix, user vectors, popularity."""

    def __init__(self, artifact: Artifact) -> None:
        self.artifact = artifact
        self.product_ids: list[str] = list(artifact.product_ids)  # append-only
        self.product_rows: dict[str, int] = dict(artifact.product_index)  # insert-only
        n = len(self.product_ids)
        self._category_rows: dict[str, frozenset[int]] = {}
        rows_of: dict[str, set[int]] = {}
        for row, cats in enumerate(artifact.product_categories):
            for c in cats:
                rows_of.setdefault(artifact.category_ids[c], set()).add(row)
        self._category_rows = {c: frozenset(r) for c, r in rows_of.items()}
        self.view = Catalogue(n, np.ascontiguousarray(artifact.product_emb, dtype=np.float32),
                              np.full(n, np.nan), np.asarray(artifact.popularity, dtype=np.float64).copy(),
                              self._rank_ids(n))
        # Vectors of users the artifact has no row for (cold users), and of trained users whose
        # evidence changed live, each with the stamp of the evidence it was computed from
        # (``GraphIndex.versions``): a vector computed from older evidence is recomputed, never served.
        self.user_vectors: dict[str, tuple[np.ndarray, int]] = {}
        # Rows of trained users erased from the graph: never served again. Rows, not ids: with a
        # pseudonymised artifact a row's id may be a pseudonym while requests name the real id.
        self.hidden_rows: frozenset[int] = frozenset()
        self._user_sample: tuple[np.ndarray, np.ndarray] | None = None

    # -- products -----------------------------------------------------------------------------
    @property
    def product_emb(self) -> np.ndarray:
        return self.view.product_emb

    @property
    def popularity(self) -> np.ndarray:
        return self.view.popularity[: self.view.n]

    def _rank_ids(self, n: int) -> np.ndarray:
        order = sorted(range(n), key=self.product_ids.__getitem__)
        rank = np.empty(n, dtype=np.int64)
        rank[np.asarray(order, dtype=np.int64)] = np.arange(n)
        return rank

    def set_product_attributes(self, product_id: str, price: float | None, categories: Iterable[str],
                               removed: Iterable[str] = ()) -> None:
        """Record graph attributes (price, categories; ``removed``: categories it left) of a product
        the model knows."""
        row = self.product_rows.get(product_id)
        if row is None:
            return
        # A price is one float store into a row readers may be ranking: they see old or new, both valid.
        self.view.prices[row] = np.nan if price is None else float(price)
        for c in categories:
            rows = self._category_rows.get(c, frozenset())
            if row not in rows:
                self._category_rows[c] = rows | {row}
        for c in removed:
            rows = self._category_rows.get(c, frozenset())
            if row in rows:
                self._category_rows[c] = rows - {row}

    def add_product(self, product_id: str, categories: Sequence[str], price: float | None,
                    buyers: Sequence[str] = ()) -> int:
        """Make a product the model never saw recommendable: fold-in vector from its categories."""
        self.add_products([(product_id, categories, price, buyers)])
        return self.product_rows[product_id]

    def add_products(self, products: Sequence[tuple[str, Sequence[str], float | None, Sequence[str]]]) -> None:
        """Many ``(id, categories, price, buyers)`` at once, published as one new view."""
        view = self.view
        emb, prices, popularity, n = view.emb, view.prices, view.popularity, view.n
        new = [p for p in products if p[0] not in self.product_rows]
        if len(emb) < n + len(new):  # amortised growth: live products arrive one by one
            grow = max(16, n // 8, n + len(new) - len(emb))
            emb = np.concatenate([emb, np.zeros((grow, emb.shape[1]), np.float32)])
            prices = np.concatenate([prices, np.full(grow, np.nan)])
            popularity = np.concatenate([popularity, np.zeros(grow)])
        rows: dict[str, int] = {}
        for product_id, categories, price, buyers in new:
            emb[n] = fold_in_product(self.artifact, categories=categories, buyers=buyers)
            prices[n] = np.nan if price is None else float(price)
            self.product_ids.append(product_id)
            rows[product_id] = n
            n += 1
        if new:
            self.view = Catalogue(n, emb, prices, popularity, self._rank_ids(n))
            # Only now: a row in product_rows is always inside the published view.
            self.product_rows.update(rows)
        for product_id, categories, price, _ in products:
            self.set_product_attributes(product_id, price, categories)

    # -- users --------------------------------------------------------------------------------
    def user_sample(self, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows of at most ``size`` trained users, drawn once (seeded) and kept, with their vectors
        (a contiguous copy: gathering them per request cost more than scoring them): every row when
        there are no more than ``size``. For statistics over users that must not cost O(users) a
        request."""
        n = len(self.artifact.user_ids)
        if self._user_sample is None or len(self._user_sample[0]) != min(size, n):
            rows = np.arange(n) if n <= size else np.sort(np.random.default_rng(0).choice(n, size, replace=False))
            self._user_sample = (rows, np.ascontiguousarray(self.artifact.user_emb[rows]))
        return self._user_sample

    def trained_vector(self, user_id: str) -> np.ndarray | None:
        """The artifact's row for a trained user (None for cold or erased users)."""
        row = self.artifact.user_index.get(user_id)
        return None if row is None or row in self.hidden_rows else self.artifact.user_emb[row]

    def user_vector(self, user_id: str) -> np.ndarray | None:
        """The cached live vector of a user, else their trained row (no graph evidence here: the
        service computes and caches vectors from the index, see ``Service.user_vector``)."""
        cached = self.user_vectors.get(user_id)
        return cached[0] if cached is not None else self.trained_vector(user_id)

    def is_trained(self, user_id: str) -> bool:
        row = self.artifact.user_index.get(user_id)
        return row is not None and row not in self.hidden_rows

    def hide_rows(self, rows: Iterable[int]) -> None:
        """Never serve these trained rows again (their users were erased from the graph)."""
        self.hidden_rows = self.hidden_rows | frozenset(rows)

    def hide_user(self, user_id: str) -> None:
        row = self.artifact.user_index.get(user_id)
        if row is not None:
            self.hide_rows([row])
        self.user_vectors.pop(user_id, None)

    def fold_in(self, friends: Sequence[str], products: Sequence[str], categories: Sequence[str],
                follows: Sequence[str] = (), followers: Sequence[str] = ()) -> np.ndarray:
        """The vector of a user the model never trained on, from the graph's evidence (each kind
        of social edge weighed as the artifact's validation chose)."""
        return fold_in_user(self.artifact, friends=friends, products=products, categories=categories,
                            follows=follows, followers=followers)

    def shift(self, user_id: str, friends: Sequence[str], products: Sequence[str]) -> np.ndarray | None:
        """A trained user's vector moved towards evidence added since training (live edges)."""
        base = self.trained_vector(user_id)
        if base is None:
            return None
        delta = fold_in_user(self.artifact, friends=friends, products=products,
                             weights={"prior": 0.0, "categories": 0.0, "popularity": 0.0})
        norm = float(np.linalg.norm(delta))
        if norm == 0:
            return base
        vec = base + np.float32(LIVE_SHIFT * float(np.linalg.norm(base)) / norm) * delta
        return vec.astype(np.float32)

    # -- ranking ------------------------------------------------------------------------------
    def scores(self, vector: np.ndarray) -> np.ndarray:
        return self.product_emb @ vector

    def mask(self, filters: Filters, exclude: Iterable[str] = (), view: Catalogue | None = None) -> np.ndarray:
        """Boolean [n_products]: products allowed by the filters and not excluded."""
        view = view or self.view
        n = view.n
        allowed = np.ones(n, dtype=bool)
        if filters.only is not None:
            allowed[:] = False
            rows = [r for r in map(self.product_rows.get, filters.only) if r is not None and r < n]
            allowed[rows] = True
        if filters.category is not None:
            in_category = np.zeros(n, dtype=bool)
            rows = [r for r in self._category_rows.get(filters.category, ()) if r < n]
            in_category[rows] = True
            allowed &= in_category
        prices = view.prices[:n]
        if filters.min_price is not None:
            allowed &= prices >= filters.min_price  # NaN (no price) compares False: filtered out
        if filters.max_price is not None:
            allowed &= prices <= filters.max_price
        for pid in (*filters.exclude, *exclude):
            row = self.product_rows.get(pid)
            if row is not None and row < n:
                allowed[row] = False
        return allowed

    def top(self, values: np.ndarray, allowed: np.ndarray, k: int, view: Catalogue | None = None) -> list[Scored]:
        """The k best allowed rows by value, ties broken by product id (deterministic)."""
        view = view or self.view
        if k <= 0:
            return []
        candidates = _at_least_kth(values, allowed, k)
        if candidates.size == 0:
            return []
        vals = values[candidates]
        if candidates.size > k:
            # Everything tied with the k-th best value stays in, so the id tie-break is exact.
            kth = np.partition(vals, candidates.size - k)[candidates.size - k]
            keep = vals >= kth
            candidates, vals = candidates[keep], vals[keep]
        order = np.lexsort((view.id_rank[candidates], -vals))[:k]
        # Percentile over the whole catalogue: the share of products this one outranks. Only the
        # products above the lowest of the k can outrank any of them (one pass, then a few).
        ranked = candidates[order]
        best = values[ranked]
        higher = np.sort(values[values > best.min()])
        above = higher.size - np.searchsorted(higher, best, side="right")
        pct = 1.0 - above / max(view.n, 1)
        return [Scored(self.product_ids[r], float(values[r]), int(r), float(p)) for r, p in zip(ranked, pct)]

    def model_scores(self, vector: np.ndarray, circle: CirclePurchases | None = None,
                     view: Catalogue | None = None) -> np.ndarray:
        """The model's score of every product: dot product, plus the circle term when the artifact
        weighs it and ``circle`` (the user's, from the graph) is given."""
        view = view or self.view
        values = view.product_emb @ vector
        weight = self.artifact.circle_weight
        if weight and circle is not None and circle.products:
            rows = np.fromiter((self.product_rows.get(p, -1) for p in circle.products), np.int64, len(circle.products))
            known = (rows >= 0) & (rows < view.n)
            values[rows[known]] += circle_term(circle.counts[known], circle.size, weight)
        return values

    def recommend(self, vector: np.ndarray, k: int, filters: Filters = Filters(),
                  exclude: Iterable[str] = (), circle: CirclePurchases | None = None) -> list[Scored]:
        view = self.view
        return self.top(self.model_scores(vector, circle, view), self.mask(filters, exclude, view), k, view)

    def popular(self, k: int, filters: Filters = Filters(), exclude: Iterable[str] = ()) -> list[Scored]:
        """Most-interacted products in training (the non-personalised baseline)."""
        view = self.view
        return self.top(view.popularity[: view.n], self.mask(filters, exclude, view), k, view)


def _at_least_kth(values: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Allowed rows that may be among the k best: all whose value reaches the k-th best allowed one,
    and a few more (a superset found without partitioning the whole catalogue)."""
    masked = np.where(allowed, values, -np.inf)
    blocks = masked.size // RANK_BLOCK
    if blocks > k:
        peaks = masked[: blocks * RANK_BLOCK].reshape(blocks, RANK_BLOCK).max(axis=1)
        floor = np.partition(peaks, blocks - k)[blocks - k]
        if floor > -np.inf:  # else fewer than k blocks hold an allowed row
            return np.flatnonzero(masked >= floor)
    return np.flatnonzero(allowed)
