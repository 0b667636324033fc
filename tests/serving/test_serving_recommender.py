"""The recommender over an artifact: scores, filters, exclusions, deterministic ties, live products."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.artifact import Artifact, save_artifact
from graphrec.serving.recommender import Filters, Recommender


@pytest.fixture
def artifact(tmp_path) -> Artifact:
    # Products b, a, c share one embedding: equal scores, so only the id can order them.
    product_emb = np.array([[1, 0], [1, 0], [1, 0], [0, 1], [0.5, 0.5]], dtype=np.float32)
    save_artifact(tmp_path, model="unit", snapshot_id="s", config={}, metrics={},
                  user_ids=["u1", "u2"], product_ids=["b", "a", "c", "d", "e"], category_ids=["x", "y"],
                  user_emb=np.array([[1, 0], [0, 1]], dtype=np.float32), product_emb=product_emb,
                  category_emb=np.array([[1, 0], [0, 1]], dtype=np.float32),
                  product_categories=[[0], [0], [0], [1], [0, 1]], popularity=np.array([3, 3, 1, 9, 0]))
    return Artifact.load(tmp_path)


def test_ties_are_broken_by_product_id(artifact):
    rec = Recommender(artifact)
    top = rec.recommend(artifact.user_emb[0], 4)
    assert [s.product_id for s in top] == ["a", "b", "c", "e"]
    # Cut inside the tie: still the smallest ids.
    assert [s.product_id for s in rec.recommend(artifact.user_emb[0], 2)] == ["a", "b"]
    assert [s.product_id for s in rec.popular(3)] == ["d", "a", "b"]


def test_filters_and_exclusions(artifact):
    rec = Recommender(artifact)
    vec = artifact.user_emb[0]
    assert [s.product_id for s in rec.recommend(vec, 5, Filters(category="y"))] == ["e", "d"]
    assert [s.product_id for s in rec.recommend(vec, 2, exclude={"a"})] == ["b", "c"]
    assert [s.product_id for s in rec.recommend(vec, 2, Filters(exclude=frozenset({"a", "b"})))] == ["c", "e"]
    assert rec.recommend(vec, 3, Filters(category="nope")) == []
    rec.set_product_attributes("c", 10.0, [])
    rec.set_product_attributes("d", 30.0, [])
    assert [s.product_id for s in rec.recommend(vec, 5, Filters(min_price=5, max_price=20))] == ["c"]


def test_live_product_is_scored_from_its_category(artifact):
    rec = Recommender(artifact)
    rec.add_product("new", ["y"], 12.0)
    top = rec.recommend(artifact.user_emb[1], 5, Filters(category="y"))
    assert "new" in [s.product_id for s in top]
    assert rec.scores(artifact.user_emb[1])[rec.product_rows["new"]] > 0
    many = [(f"n{i}", ["x"], None, []) for i in range(40)]  # growth past the preallocated rows
    rec.add_products(many)
    assert len(rec.product_ids) == 46 and rec.product_emb.shape == (46, 2)


def test_cold_user_fold_in_and_live_shift(artifact):
    rec = Recommender(artifact)
    vec = rec.fold_in(friends=["u2"], products=["d"], categories=[])
    assert rec.recommend(vec, 1)[0].product_id == "d"
    before = rec.user_vector("u1").copy()
    shifted = rec.shift("u1", friends=["u2"], products=[])
    assert not np.allclose(before, shifted) and shifted[1] > before[1]


def test_top_equals_a_full_sort_on_a_catalogue_with_ties_and_masks(tmp_path):
    # Enough products for the blocked threshold to run (it needs more than 64 * k rows): scores
    # rounded to a few levels, so ties straddle every cut, under masks from all to almost nothing.
    rng = np.random.default_rng(7)
    n = 5000
    ids = [f"p{i:05d}" for i in rng.permutation(n)]  # id order unrelated to row order
    save_artifact(tmp_path, model="unit", snapshot_id="s", config={}, metrics={}, user_ids=["u"],
                  product_ids=ids, category_ids=["x"], user_emb=np.ones((1, 2), dtype=np.float32),
                  product_emb=rng.normal(size=(n, 2)).astype(np.float32),
                  category_emb=np.ones((1, 2), dtype=np.float32), product_categories=[[0]] * n,
                  popularity=np.zeros(n))
    rec = Recommender(Artifact.load(tmp_path))
    for trial in range(40):
        values = np.round(rng.normal(size=n), 1).astype(np.float32)
        allowed = rng.random(n) < [1.0, 0.5, 0.01, 0.0005][trial % 4]
        k = [1, 10, 50, 200][trial // 10]
        got = rec.top(values, allowed, k)
        rows = np.flatnonzero(allowed)
        want = sorted(rows, key=lambda r: (-values[r], ids[r]))[:k]
        assert [s.row for s in got] == want, (trial, k)
        assert [s.percentile for s in got] == pytest.approx([1 - (values > values[r]).sum() / n for r in want])


def _integer_artifact(tmp_path, n_products: int, dim: int, seed: int) -> Artifact:
    """Small integers everywhere: every score is exact in float32, so two rankings agree to the bit
    and ties (many) can only be broken by id."""
    rng = np.random.default_rng(seed)
    ids = [f"p{i:05d}" for i in rng.permutation(n_products)]
    product_emb = rng.integers(-3, 4, size=(n_products, dim)).astype(np.float32)
    product_emb[: n_products // 10] = product_emb[n_products // 10: 2 * (n_products // 10)]  # duplicate rows
    product_emb[:, 0] *= 4  # one strong direction, as trained embeddings have
    save_artifact(tmp_path, model="unit", snapshot_id="s", config={}, metrics={},
                  user_ids=["u"], product_ids=ids, category_ids=["x", "y"],
                  user_emb=np.ones((1, dim), np.float32), product_emb=product_emb,
                  category_emb=rng.integers(-3, 4, size=(2, dim)).astype(np.float32),
                  product_categories=[[int(rng.integers(2))] for _ in range(n_products)],
                  popularity=rng.integers(0, 5, n_products), circle={"weight": 0.5})
    return Artifact.load(tmp_path)


@pytest.mark.parametrize("seed", range(6))
def test_sketched_ranking_equals_the_exact_one(tmp_path, monkeypatch, seed):
    import graphrec.serving.recommender as rmod
    from graphrec.circle import CirclePurchases

    art = _integer_artifact(tmp_path, 3000, 12, seed)
    exact = Recommender(art)
    monkeypatch.setattr(rmod, "SKETCH_MIN_PRODUCTS", 0)
    sketched = Recommender(art)
    assert sketched.view.sketch is not None and exact.view.sketch is None
    rng = np.random.default_rng(100 + seed)
    for rec in (exact, sketched):  # live products: appended rows are sketched too
        rec.add_products([(f"new{i}", ["x"], None, []) for i in range(30)])
    ids = sketched.product_ids
    for trial in range(40):
        vector = rng.integers(-2, 3, size=12).astype(np.float32)
        k = int(rng.choice([1, 5, 10, 50]))
        circle = (CirclePurchases(list(rng.choice(ids, 20, replace=False)), rng.integers(1, 4, 20), 4)
                  if trial % 2 else None)  # weight 0.5 / sqrt(4): terms in quarters, exact too
        filters = [Filters(), Filters(category="y"), Filters(exclude=frozenset(ids[:500])),
                   Filters(only=frozenset(ids[:7]))][trial % 4]
        got = sketched.recommend(vector, k, filters, circle=circle)
        want = exact.top(exact.model_scores(vector, circle), exact.mask(filters), k)
        assert got == want, (trial, k)
    assert sketched.recommend(np.zeros(12, np.float32), 5) == exact.recommend(np.zeros(12, np.float32), 5)
