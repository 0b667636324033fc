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
from typing import Callable, Hashable, Iterable, Sequence

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

# Catalogues of at least this many products are ranked through a Sketch (below): a smaller matrix
# stays in the CPU's cache, where one exact pass costs as little.
SKETCH_MIN_PRODUCTS = 50_000
SKETCH_SHARE = 3  # the sketch keeps a third of the dimensions' directions (22 of 66)
SKETCH_TOLERANCE = 1e-4  # float32 rounding, relative to |p| |v|, added to every bound
SKETCH_PROBE = 4  # rows scored exactly first, per product asked for: their k-th best bounds the list
# Kept for the explanations' similar users: per product, the model vectors of its first buyers (a
# gather of 500 rows scattered over a million users' matrix costs 5x scoring them once they are
# contiguous). Few products are explained (300 in 3,000 lists at a million users); first in, first out.
BUYER_VECTORS_KEPT = 256


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
class Sketch:
    """The product matrix in its leading principal directions, and how much each row leaves out.

    With ``basis`` B (orthonormal columns), a product p and a user vector v:
    ``p.v = (B'p).(B'v) + (p - BB'p).(v - BB'v)``, and the second term is at most
    ``|p - BB'p| |v - BB'v|`` in size (Cauchy-Schwarz). One pass over the sketch, a third of the
    matrix's bytes, so bounds every score from both sides; only the products whose upper bound
    reaches a floor under the k-th best score are scored exactly. Ranking the 1M-user shop's 100k
    products reads 26 MB per request without it (memory-bound: 1.5 ms); with it 9 MB, and a median
    of about a thousand products is scored exactly."""

    basis: np.ndarray  # [dim, r]
    coords: np.ndarray  # [capacity, r]: each row's B'p
    rest: np.ndarray  # [capacity]: each row's |p - BB'p|
    largest: float  # the largest row norm, for the rounding tolerance

    @classmethod
    def of(cls, emb: np.ndarray, n: int) -> "Sketch":
        """The sketch of the first ``n`` rows of ``emb`` (buffers as long as ``emb``)."""
        rank = max(1, emb.shape[1] // SKETCH_SHARE)
        _, _, vt = np.linalg.svd(emb[:n].astype(np.float64), full_matrices=False)
        basis = np.ascontiguousarray(vt[:rank].T, dtype=np.float32)
        empty = cls(basis, np.zeros((len(emb), rank), np.float32), np.zeros(len(emb), np.float32), 0.0)
        return empty.with_rows(emb, 0, n)

    def with_rows(self, emb: np.ndarray, start: int, stop: int) -> "Sketch":
        """This sketch with rows ``start:stop`` of ``emb`` projected, its buffers grown to ``emb``'s
        length (a live product arrives: rows below ``start`` never change)."""
        coords, rest = self.coords, self.rest
        if len(coords) < len(emb):
            coords = np.concatenate([coords, np.zeros((len(emb) - len(coords), coords.shape[1]), np.float32)])
            rest = np.concatenate([rest, np.zeros(len(emb) - len(rest), np.float32)])
        rows = emb[start:stop].astype(np.float64)
        projected = rows @ self.basis
        coords[start:stop] = projected
        rest[start:stop] = np.linalg.norm(rows - projected @ self.basis.T, axis=1)
        largest = max(self.largest, float(np.linalg.norm(rows, axis=1).max(initial=0.0)))
        return Sketch(self.basis, coords, rest, largest)


@dataclass(frozen=True)
class Catalogue:
    """What ranking reads, as of one moment: the first ``n`` rows of each buffer."""

    n: int
    emb: np.ndarray  # [capacity, dim]
    prices: np.ndarray  # [capacity], NaN = no price
    popularity: np.ndarray  # [capacity]
    id_rank: np.ndarray  # [n]: each row's position in id order, the tie-break
    sketch: Sketch | None = None  # for catalogues of SKETCH_MIN_PRODUCTS and more

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
        emb = np.ascontiguousarray(artifact.product_emb, dtype=np.float32)
        self.view = Catalogue(n, emb, np.full(n, np.nan), np.asarray(artifact.popularity, dtype=np.float64).copy(),
                              self._rank_ids(n), Sketch.of(emb, n) if n >= SKETCH_MIN_PRODUCTS else None)
        # Vectors of users the artifact has no row for (cold users), and of trained users whose
        # evidence changed live, each with the stamp of the evidence it was computed from
        # (``GraphIndex.versions``): a vector computed from older evidence is recomputed, never served.
        self.user_vectors: dict[str, tuple[np.ndarray, int]] = {}
        # Rows of trained users erased from the graph: never served again. Rows, not ids: with a
        # pseudonymised artifact a row's id may be a pseudonym while requests name the real id.
        self.hidden_rows: frozenset[int] = frozenset()
        self._user_sample: tuple[np.ndarray, np.ndarray] | None = None
        self._buyer_vectors: dict[Hashable, tuple[object, np.ndarray, np.ndarray]] = {}

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
            sketch = view.sketch.with_rows(emb, view.n, n) if view.sketch is not None else None
            self.view = Catalogue(n, emb, prices, popularity, self._rank_ids(n), sketch)
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

    def buyer_vectors(self, key: Hashable, stamp: object,
                      trained: Callable[[], tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """``(numbers, vectors)`` of a product's buyers: ``trained()`` gives their numbers and
        trained rows, whose vectors are gathered once and kept under ``key`` while ``stamp`` (the
        buyers as the index holds them, see ``GraphIndex.buyers_stamp``) is the same object."""
        kept = self._buyer_vectors.get(key)
        if kept is None or kept[0] is not stamp:
            numbers, rows = trained()
            kept = (stamp, numbers, np.ascontiguousarray(self.artifact.user_emb[rows]))
            if len(self._buyer_vectors) >= BUYER_VECTORS_KEPT:
                self._buyer_vectors.pop(next(iter(self._buyer_vectors)), None)
            self._buyer_vectors[key] = kept
        return kept[1], kept[2]

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
        ranked, best = _best(candidates, values[candidates], k, view)
        # Only the products above the lowest of the k can outrank any of them (one pass, then a few).
        return self._scored(ranked, best, values[values > best.min()], view)

    def _scored(self, ranked: np.ndarray, best: np.ndarray, higher: np.ndarray, view: Catalogue) -> list[Scored]:
        """The ranked rows with their values and percentiles over the whole catalogue: the share of
        products each outranks, from ``higher``, the values of every product above the lowest."""
        higher = np.sort(higher)
        above = higher.size - np.searchsorted(higher, best, side="right")
        pct = 1.0 - above / max(view.n, 1)
        return [Scored(self.product_ids[r], float(v), int(r), float(p)) for r, v, p in zip(ranked, best, pct)]

    def model_scores(self, vector: np.ndarray, circle: CirclePurchases | None = None,
                     view: Catalogue | None = None) -> np.ndarray:
        """The model's score of every product: dot product, plus the circle term when the artifact
        weighs it and ``circle`` (the user's, from the graph) is given."""
        view = view or self.view
        values = view.product_emb @ vector
        rows, terms = self._circle_rows(circle, view)
        values[rows] += terms
        return values

    def recommend(self, vector: np.ndarray, k: int, filters: Filters = Filters(),
                  exclude: Iterable[str] = (), circle: CirclePurchases | None = None) -> list[Scored]:
        view = self.view
        allowed = self.mask(filters, exclude, view)
        if view.sketch is not None and k > 0:
            return self._top_sketched(vector, circle, allowed, k, view)
        return self.top(self.model_scores(vector, circle, view), allowed, k, view)

    def _top_sketched(self, vector: np.ndarray, circle: CirclePurchases | None, allowed: np.ndarray, k: int,
                      view: Catalogue) -> list[Scored]:
        """:meth:`top` of :meth:`model_scores`, the same list, from bounds on every score (the
        :class:`Sketch`) and exact scores for the few products the bounds cannot settle."""
        sketch, n = view.sketch, view.n
        assert sketch is not None
        bonus = self._circle_rows(circle, view)
        direction = vector @ sketch.basis
        left_out = float(np.linalg.norm(vector - sketch.basis @ direction))
        middle = sketch.coords[:n] @ direction
        middle[bonus[0]] += bonus[1]
        # A value at most the k-th best score: the k-th best exact score of the rows the sketch
        # puts first (a subset's k-th best is at most the whole's).
        probe = _at_least_kth(middle, allowed, SKETCH_PROBE * k)
        if probe.size == 0:
            return []
        scores = _exact(vector, probe, bonus, view)
        floor = np.partition(scores, scores.size - k)[scores.size - k] if scores.size >= k else -np.inf
        upper = sketch.rest[:n] * np.float32(left_out)
        upper += np.float32(SKETCH_TOLERANCE * sketch.largest * float(np.linalg.norm(vector)))
        upper += middle
        # Every row that may reach the floor, scored exactly once: the allowed ones hold the k best
        # (ties included), and any product above the lowest of the k is among them all.
        wide = np.flatnonzero(upper >= floor)
        values = _exact(vector, wide, bonus, view)
        mine = allowed[wide]
        ranked, best = _best(wide[mine], values[mine], k, view)
        return self._scored(ranked, best, values[values > best.min()], view)

    def _circle_rows(self, circle: CirclePurchases | None, view: Catalogue) -> tuple[np.ndarray, np.ndarray]:
        """The circle term's rows (sorted) and values: what model_scores adds."""
        if not self._weighs(circle):
            return np.zeros(0, np.int64), np.zeros(0)
        assert circle is not None
        rows = np.fromiter((self.product_rows.get(p, -1) for p in circle.products), np.int64, len(circle.products))
        known = (rows >= 0) & (rows < view.n)
        rows, terms = rows[known], circle_term(circle.counts[known], circle.size, self.artifact.circle_weight)
        order = np.argsort(rows)
        return rows[order], np.asarray(terms, dtype=np.float64)[order]

    def _weighs(self, circle: CirclePurchases | None) -> bool:
        return bool(self.artifact.circle_weight) and circle is not None and bool(circle.products)

    def popular(self, k: int, filters: Filters = Filters(), exclude: Iterable[str] = ()) -> list[Scored]:
        """Most-interacted products in training (the non-personalised baseline)."""
        view = self.view
        return self.top(view.popularity[: view.n], self.mask(filters, exclude, view), k, view)


def _best(rows: np.ndarray, values: np.ndarray, k: int, view: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """The k best of these rows by value, ties by product id, with their values."""
    if rows.size > k:
        # Everything tied with the k-th best value stays in, so the id tie-break is exact.
        kth = np.partition(values, rows.size - k)[rows.size - k]
        keep = values >= kth
        rows, values = rows[keep], values[keep]
    order = np.lexsort((view.id_rank[rows], -values))[:k]
    return rows[order], values[order]


def _exact(vector: np.ndarray, rows: np.ndarray, bonus: tuple[np.ndarray, np.ndarray],
           view: Catalogue) -> np.ndarray:
    """model_scores of these rows only, ``bonus`` the circle term's (sorted rows, values). The same
    row gives the same value in any call: einsum's one loop, where a BLAS kernel may sum a row in
    another order depending on its place in a block."""
    values = np.einsum("ij,j->i", view.emb[rows], vector)
    circle_rows, terms = bonus
    if circle_rows.size:
        at = np.minimum(np.searchsorted(circle_rows, rows), circle_rows.size - 1)
        hit = circle_rows[at] == rows
        values[hit] += terms[at[hit]]  # in place, rounded to float32 as model_scores rounds it
    return values


def _kth_floor(values: np.ndarray, allowed: np.ndarray, k: int) -> float:
    """A value at most the k-th best allowed one (-inf when fewer than k rows are allowed), from
    the maxima of blocks of rows: k blocks each hold a value at least as large."""
    masked = np.where(allowed, values, -np.inf)
    blocks = masked.size // RANK_BLOCK
    if blocks > k:
        peaks = masked[: blocks * RANK_BLOCK].reshape(blocks, RANK_BLOCK).max(axis=1)
        return float(np.partition(peaks, blocks - k)[blocks - k])
    allowed_values = masked[allowed]
    return float(np.partition(allowed_values, allowed_values.size - k)[allowed_values.size - k]) \
        if allowed_values.size >= k else -np.inf


def _at_least_kth(values: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Allowed rows that may be among the k best: all whose value reaches the k-th best allowed one,
    and a few more (a superset found without partitioning the whole catalogue)."""
    return np.flatnonzero(allowed & (values >= _kth_floor(values, allowed, k)))
