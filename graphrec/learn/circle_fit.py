"""Choosing the circle term's weight (:mod:`graphrec.circle`) per graph, on validation pairs.

``graphrec train`` calls :func:`choose_circle_weight` on the rows it is about to save (the ones
served). It never looks at test pairs: up to :data:`VALIDATION_USERS` validation users (seeded)
rank every product with their training products masked, their validation products the targets,
and the term counts their circle's *training* purchases (what the model learned from). Recall@20
is measured for weight 0 and a geometric grid relative to the spread of the model's scores (the
term must be comparable to score differences, whatever the model's scale), then once more halfway
(in log scale) to each neighbour of the best. The largest recall wins; ties keep the smaller
weight, so a graph whose circles say nothing keeps 0 and scores exactly as the embeddings do.

The term is off by default for sage (:data:`OFF_BY_DEFAULT`): sage exists for cold start, and on
Last.fm the term, chosen on overall recall, lowered both of its cold slices (cold products 0.0342
-> 0.0296, zero-interaction users 0.1551 -> 0.1494) for +0.005 overall. ``graphrec train --circle``
turns it on; ``--no-circle`` turns it off for any model. A term turned off stays off when the
weights are chosen again (:func:`graphrec.learn.coldstart_validation.rechoose`).

:class:`Circles` is also what ``graphrec evaluate`` adds to every ranking it scores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.artifact import Artifact
from graphrec.circle import circle_term
from graphrec.learn.interactions import Interactions
from graphrec.learn.lift import LIFT_K
from graphrec.learn.ranking import ScoreFn, UserItems, evaluate_scores

VALIDATION_USERS = 10_000
GRID_STEPS = tuple(range(-4, 5))  # weight = spread * 2**step
OFF_BY_DEFAULT = frozenset({"sage"})  # models whose cold slices the term costs more than it adds


def circle_wanted(model: str, asked: bool | None) -> bool:
    """Whether a model gets the term: as asked (``--circle``/``--no-circle``), else the model's default."""
    return asked if asked is not None else model not in OFF_BY_DEFAULT


def turned_off(model: str, asked: bool | None) -> dict[str, Any]:
    """The record of a term that is off: weight 0, and why."""
    why = "turned off by --no-circle" if asked is False else f"off by default for {model} (--circle turns it on)"
    return {"weight": 0.0, "metric": f"recall@{LIFT_K}", "turned_off": True, "reason": why}


def _binary(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)
    m.sum_duplicates()
    m.data[:] = 1.0
    return m


@dataclass
class Circles:
    """Who is in each user's circle, and what each user bought in training (rows of the snapshot)."""

    members: sp.csr_matrix  # users x users: 1 where the column is in the row's circle
    bought: sp.csr_matrix  # users x items: 1 per (user, item) training pair

    @classmethod
    def of(cls, data: Interactions) -> "Circles":
        """FRIEND edges either way and FOLLOWS edges from follower to followee (``data.social``
        holds both kinds; ``data.follows`` tells the FOLLOWS ones apart), as the API reads them."""
        n = data.num_users
        social, follows = data.social.numpy(), data.follows.numpy()
        is_follow = np.isin(social[0] * n + social[1], follows[0] * n + follows[1])
        friend = social[:, ~is_follow]
        rows = np.concatenate([friend[0], friend[1], follows[0]])
        cols = np.concatenate([friend[1], friend[0], follows[1]])
        keep = rows != cols
        members = _binary(rows[keep], cols[keep], (n, n))
        train = data.train.numpy()
        return cls(members, _binary(train[0], train[1], (n, data.num_items)))

    @property
    def empty(self) -> bool:
        return self.members.nnz == 0

    def add_to(self, scores: Tensor, rows: Tensor, weight: float) -> Tensor:
        """``scores`` [len(rows), items] plus the weighted term of each row's user, in place."""
        if weight == 0 or self.empty or not len(rows):
            return scores
        r = rows.numpy()
        counts = (self.members[r] @ self.bought).tocoo()
        size = np.diff(self.members.indptr)[r]
        values = circle_term(counts.data, size[counts.row], weight)
        scores[torch.from_numpy(counts.row.astype(np.int64)), torch.from_numpy(counts.col.astype(np.int64))] += \
            torch.from_numpy(values).to(scores.dtype)
        return scores


class ServedScores:
    """Scores of the snapshot's users (rows of ``data``) over its products as the API computes them:
    the artifact's dot product plus the circle term."""

    def __init__(self, artifact: Artifact, data: Interactions, circles: Circles | None = None) -> None:
        user_rows = _rows(artifact.user_index, data.user_ids, data.num_users)
        item_rows = _rows(artifact.product_index, data.item_ids, data.num_items)
        self.user_emb = torch.from_numpy(np.ascontiguousarray(artifact.user_emb[user_rows]))
        self.product_emb = torch.from_numpy(np.ascontiguousarray(artifact.product_emb[item_rows]))
        self.weight = artifact.circle_weight
        self._circles, self._data = circles, data

    @property
    def circles(self) -> Circles:
        if self._circles is None:
            self._circles = Circles.of(self._data)
        return self._circles

    def scorer(self, weight: float | None = None, vectors: Callable[[Tensor], Tensor] | None = None,
               products: Tensor | None = None) -> ScoreFn:
        """At ``weight`` (default: the artifact's). ``vectors``: the users' vectors by row, instead
        of the artifact's (fold-ins); ``products``: a product matrix instead of the artifact's."""
        w = self.weight if weight is None else weight
        P = self.product_emb if products is None else products
        circles = self.circles if w else None

        def score(rows: Tensor) -> Tensor:
            s = (self.user_emb[rows] if vectors is None else vectors(rows)) @ P.T
            return circles.add_to(s, rows, w) if circles is not None else s

        return score


def _rows(index: Mapping[str, int], ids: list[str], n: int) -> np.ndarray:
    if not ids:
        return np.arange(n)
    missing = [i for i in ids if i not in index]
    if missing:
        raise ValueError(f"{len(missing)} ids of the snapshot are not in the artifact (e.g. {missing[0]!r}); "
                         "evaluate an artifact with the snapshot it was trained on")
    return np.fromiter((index[i] for i in ids), np.int64, len(ids))


def choose_circle_weight(artifact: Artifact, data: Interactions, seed: int = 2024,
                         served: ServedScores | None = None) -> dict[str, Any]:
    """The weight and how it was chosen: ``{"weight", "metric", "n_users", "spread", "tried":
    [[weight, recall], ...], "recall_without", "recall_with", "reason"}``. ``served``: the
    artifact's scores over ``data`` where the caller has them already."""
    metric = f"recall@{LIFT_K}"
    record: dict[str, Any] = {"weight": 0.0, "metric": metric, "seed": seed}
    served = served or ServedScores(artifact, data)
    if served.circles.empty or not data.valid.shape[1]:
        record["reason"] = "no social edges" if served.circles.empty else "no validation pairs"
        return record
    users = torch.unique(data.valid[0])
    if users.numel() > VALIDATION_USERS:
        pick = torch.randperm(users.numel(), generator=torch.Generator().manual_seed(seed))[:VALIDATION_USERS]
        users = users[pick].sort().values
    known = UserItems.from_pairs(data.train[0], data.train[1], data.num_users)
    valid = UserItems.from_pairs(data.valid[0], data.valid[1], data.num_users)
    spread = float(served.scorer(0.0)(users[:256]).std(dim=1).mean())
    tried: dict[float, float] = {}

    def recall(weight: float) -> float:
        if weight not in tried:
            tried[weight] = evaluate_scores(served.scorer(weight), known, valid, data.num_items, (LIFT_K,), users)[metric]
        return tried[weight]

    for step in GRID_STEPS:
        recall(spread * 2.0 ** step)
    best = max(sorted(tried), key=lambda w: tried[w])
    for w in (best / 2 ** 0.5, best * 2 ** 0.5):
        recall(w)
    recall(0.0)
    best = max(sorted(tried), key=lambda w: tried[w])  # sorted: a tie keeps the smaller weight
    chosen = best if tried[best] > tried[0.0] else 0.0
    record.update(weight=chosen, n_users=int(users.numel()), spread=spread,
                  tried=[[w, round(r, 5)] for w, r in sorted(tried.items())],
                  recall_without=round(tried[0.0], 5), recall_with=round(tried[chosen], 5),
                  reason=("the circle raises validation recall" if chosen else
                          "the circle does not raise validation recall: the term is off"))
    return record
