"""The evaluation harness: a model artifact, or any scorer, under the literature's protocol, with
cold-start slices. The report of ``graphrec evaluate`` (model, baselines, lift, plot) is
:mod:`graphrec.learn.report`; baselines that train live in :mod:`graphrec.learn.baselines`.

Overall metrics follow LightGCN/SocialLGN (see :mod:`graphrec.learn.ranking`): every test user, every
product ranked, the user's known (train + valid) products masked. Slices:

* ``cold_users``: test users with at most 5 known interactions, scored as usual.
* ``zero_interaction_users``: a seeded sample of test users who have friends (or follows, or
  followers); at scoring time all their purchases are hidden: they are embedded by
  :func:`graphrec.coldstart.fold_in_user` from their social neighbours only, with the artifact's
  validated weights (exactly what the API does for a new user), and nothing is masked (the
  recommender does not know what they bought). Scored on their test purchases.
* ``cold_products``: test interactions with products that have no known interaction; those products
  are embedded by :func:`graphrec.coldstart.fold_in_product` from their categories (the category
  centroid; for sage, its trained content tower, whose rows the artifact carries).

The baselines that need nothing but the training pairs are here: ``popular`` (training counts;
every report's lift is measured against it) and ``itemknn``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.artifact import Artifact
from graphrec.coldstart import category_means, fold_in_product, fold_in_user
from graphrec.learn.circle_fit import Circles, ServedScores
from graphrec.learn.coldstart_validation import Neighbours
from graphrec.learn.interactions import Interactions
from graphrec.learn.lift import score_users
from graphrec.learn.ranking import ScoreFn, UserItems, sample_test_users

COLD_USER_MAX = 5
ZERO_SAMPLE = 300


def artifact_from_embeddings(data: Interactions, user_emb: np.ndarray, item_emb: np.ndarray,
                             model: str = "embeddings") -> Artifact:
    """An in-memory artifact over ``data``'s ids (for baselines and tests): same fold-in code path."""
    trained = (data.popularity() > 0).numpy()
    cats = data.item_categories()
    return Artifact(
        path=Path("."), manifest={"model": model, "snapshot_id": data.snapshot_id, "format_version": 1},
        user_ids=data.user_ids or [str(i) for i in range(data.num_users)],
        product_ids=data.item_ids or [str(i) for i in range(data.num_items)],
        category_ids=data.category_ids or [str(i) for i in range(data.num_categories)],
        user_emb=np.asarray(user_emb, np.float32), product_emb=np.asarray(item_emb, np.float32),
        category_emb=category_means(np.asarray(item_emb), cats, data.num_categories, trained),
        product_categories=cats, popularity=data.popularity().numpy())


@dataclass
class EvalContext:
    """Everything the slices need, computed once per data set."""

    data: Interactions
    known: UserItems  # train + valid: masked at ranking time
    test: UserItems
    test_users: Tensor
    cold_users: Tensor
    zero_users: Tensor
    friends: list[list[int]]  # every social neighbour, either direction
    cold_items: Tensor  # bool [num_items]: no known interaction
    cold_test: UserItems  # test pairs whose product is cold
    neighbours: Neighbours  # friends, follows and followers apart: the fold-in weighs them apart
    circles: Circles  # the circle term's members and training purchases (graphrec.circle)

    @classmethod
    def build(cls, data: Interactions, zero_sample: int = ZERO_SAMPLE, seed: int = 2024,
              max_users: int | None = None) -> "EvalContext":
        """``max_users``: rank for a uniform random sample of this many test users (seeded) when
        there are more; every slice is then taken within the sample."""
        known_pairs = torch.cat([data.train, data.valid], 1)
        known = UserItems.from_pairs(known_pairs[0], known_pairs[1], data.num_users)
        test_pairs = sample_test_users(data.test, data.num_users, max_users, seed)
        test = UserItems.from_pairs(test_pairs[0], test_pairs[1], data.num_users)
        test_users = torch.nonzero(test.counts > 0).flatten()
        cold_users = test_users[known.counts[test_users] <= COLD_USER_MAX]
        neighbours = Neighbours.of(data)
        friends = [neighbours.union(u) for u in range(data.num_users)]
        with_friends = torch.tensor([u for u in test_users.tolist() if friends[u]], dtype=torch.long)
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(with_friends.numel(), generator=g)[:zero_sample]
        zero_users = with_friends[pick].sort().values
        cold_items = torch.bincount(known_pairs[1], minlength=data.num_items) == 0
        mask = cold_items[test_pairs[1]]
        cold_test = UserItems.from_pairs(test_pairs[0, mask], test_pairs[1, mask], data.num_users)
        return cls(data, known, test, test_users, cold_users, zero_users, friends, cold_items, cold_test,
                   neighbours, Circles.of(data))


@dataclass
class SliceRun:
    """One ranking of one slice: the scorer, what to mask (None: nothing), what to find, for whom."""

    score: ScoreFn
    known: UserItems | None
    held_out: UserItems
    users: Tensor


def run_slices(runs: dict[str, SliceRun | None], ctx: EvalContext, ks: Sequence[int],
               per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``{"overall": metrics, "slices": {name: metrics}}``; ``per_user`` (if given) receives each
    slice's per-user Recall@20 (the lift's bootstrap, :mod:`graphrec.learn.lift`), same ranking pass."""
    out: dict[str, Any] = {"overall": {}, "slices": {}}
    for name, run in runs.items():
        if run is None or not run.users.numel():
            metrics: dict[str, Any] = {"n_users": 0}
        else:
            metrics, values = score_users(run.score, run.known, run.held_out, ctx.data.num_items,
                                          tuple(ks), run.users)
            if per_user is not None:
                per_user[name] = values
        if name == "overall":
            out["overall"] = metrics
        else:
            out["slices"][name] = metrics
    return out


def artifact_runs(artifact: Artifact, ctx: EvalContext) -> dict[str, SliceRun | None]:
    """The rankings of an artifact (real or in-memory): all test users, then each slice. Every
    score is the API's: the dot product plus the artifact's circle term (:mod:`graphrec.circle`)."""
    data = ctx.data
    served = ServedScores(artifact, data, ctx.circles)
    score = served.scorer()
    runs: dict[str, SliceRun | None] = {"overall": SliceRun(score, ctx.known, ctx.test, ctx.test_users),
                                        "cold_users": SliceRun(score, ctx.known, ctx.test, ctx.cold_users)}

    # Zero-interaction users: social-only fold-in (friends, follows, followers), with the artifact's
    # validated weights, the same function the API calls.
    ids = data.user_ids or [str(i) for i in range(data.num_users)]
    zero = ctx.zero_users.tolist()
    Z = torch.from_numpy(np.stack([fold_in_user(artifact, **ctx.neighbours.fold_in_args(u, ids))
                                   for u in zero]) if zero else np.zeros((0, served.user_emb.shape[1]), np.float32))
    pos = {u: k for k, u in enumerate(zero)}
    zero_score = served.scorer(vectors=lambda rows: Z[torch.tensor([pos[int(r)] for r in rows])])
    runs["zero_interaction_users"] = SliceRun(zero_score, None, ctx.test, ctx.zero_users) if zero else None

    # Cold products: replace their (untrained) embeddings by the category fold-in.
    cold = torch.nonzero(ctx.cold_items).flatten().tolist()
    runs["cold_products"] = None
    if cold and ctx.cold_test.indices.numel():
        cats = data.item_categories()
        cat_ids = data.category_ids or [str(i) for i in range(data.num_categories)]
        P_cold = served.product_emb.clone()
        P_cold[cold] = torch.from_numpy(np.stack(
            [fold_in_product(artifact, categories=[cat_ids[c] for c in cats[p]]) for p in cold]))
        users = torch.nonzero(ctx.cold_test.counts > 0).flatten()
        runs["cold_products"] = SliceRun(served.scorer(products=P_cold), ctx.known, ctx.cold_test, users)
    return runs


def evaluate_artifact(artifact: Artifact, ctx: EvalContext, ks: Sequence[int] = (10, 20),
                      per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Overall and slice metrics of an artifact (real or in-memory) on ``ctx``'s test pairs."""
    return run_slices(artifact_runs(artifact, ctx), ctx, ks, per_user)


# -- baselines --------------------------------------------------------------------------------------

def _score_metrics(score: ScoreFn, ctx: EvalContext, ks: Sequence[int], zero_score: ScoreFn,
                   per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    cold_product_users = torch.nonzero(ctx.cold_test.counts > 0).flatten()
    runs: dict[str, SliceRun | None] = {
        "overall": SliceRun(score, ctx.known, ctx.test, ctx.test_users),
        "cold_users": SliceRun(score, ctx.known, ctx.test, ctx.cold_users),
        "zero_interaction_users": SliceRun(zero_score, None, ctx.test, ctx.zero_users),
        "cold_products": SliceRun(score, ctx.known, ctx.cold_test, cold_product_users)}
    return run_slices(runs, ctx, ks, per_user)


def popular_baseline(ctx: EvalContext, ks: Sequence[int],
                     per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    pop = torch.bincount(ctx.data.train[1], minlength=ctx.data.num_items).float()
    score = lambda rows: pop.expand(len(rows), -1).clone()  # noqa: E731
    return _score_metrics(score, ctx, ks, score, per_user)


def itemknn_scorer(d: Interactions) -> ScoreFn:
    """score(u, i) = sum over u's known items j of cos(i, j), cosine over the known user-item matrix.

    Computed as ((R_u D^-1/2) R^T)(R D^-1/2) per block of users, never materialising item x item.
    """
    known = torch.cat([d.train, d.valid], 1).numpy()
    R = sp.csr_matrix((np.ones(known.shape[1], np.float32), (known[0], known[1])),
                      shape=(d.num_users, d.num_items))
    inv = 1.0 / np.sqrt(np.maximum(np.asarray(R.sum(0)).ravel(), 1.0))
    Rn = (R @ sp.diags(inv.astype(np.float32))).tocsr()
    RT = R.T.tocsr()

    def score(rows: Tensor) -> Tensor:
        a = (Rn[rows.numpy()] @ RT).tocsr()  # [B, users]: sum_j R_uj R_vj / sqrt(d_j)
        return torch.from_numpy(np.asarray((a @ Rn).todense(), dtype=np.float32))  # x R_vi / sqrt(d_i)

    return score


def itemknn_baseline(ctx: EvalContext, ks: Sequence[int]) -> dict[str, Any]:
    """ItemKNN (cosine, all neighbours); users with no history (zero-interaction slice) fall back to
    popularity."""
    pop = torch.bincount(ctx.data.train[1], minlength=ctx.data.num_items).float()
    return _score_metrics(itemknn_scorer(ctx.data), ctx, ks, lambda rows: pop.expand(len(rows), -1).clone())
