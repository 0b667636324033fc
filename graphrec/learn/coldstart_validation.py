"""Choosing the fold-in's user weights per graph, on a validation carve of the training data.

``graphrec train`` calls :func:`choose_weights` on the trained model. It never looks at test pairs:

1. **Carve.** Sample up to :data:`VALIDATION_USERS` training users who have social edges (friends,
   follows or followers) and hide their purchases: each is embedded from their social neighbours
   only, with :func:`graphrec.coldstart.user_parts` and the same mix as
   :func:`graphrec.coldstart.fold_in_user` (what the API computes for a user with no history), and
   ranks every product with nothing masked. Target: their known (train + valid) purchases.
2. **Choose** on one half of them: coordinate ascent over a small grid (:data:`GRID`) of the
   friends / follows / followers / all-user prior / popularity weights, from popularity alone;
   a change is kept only if it raises Recall@20 (ties keep the simpler mix).
3. **Confirm** on the other half: the chosen mix must beat popularity alone with a 95% paired
   bootstrap interval of the lift above 1 (:func:`graphrec.learn.lift.bootstrap_lift`). Otherwise the
   weights *degrade to popularity* (``{"popularity": 1}``, every social weight 0): on a graph where
   friends' tastes say nothing, the fold-in ranks like most-popular instead of below it.

The choice is stored in the artifact (``manifest["coldstart"]``, with the record of how it was made
in ``manifest["coldstart_validation"]``), so ``evaluate`` and the API use exactly those weights.
Weights are scaled so the largest is 1 (only their ratios matter to a zero-interaction user; the
unvalidated ``products`` and ``categories`` weights keep their defaults against that scale).

Caveat: the carved users' own purchases shaped the item embeddings during training, so the
validation is slightly optimistic for every mix alike; it is the comparison between mixes that
matters, and the confirmation uses users the choice never saw.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graphrec.artifact import MANIFEST, Artifact
from graphrec.coldstart import (VALIDATED, category_means, popularity_direction, user_parts, user_prior,
                                with_popularity_column)
from graphrec.learn.circle_fit import choose_circle_weight
from graphrec.learn.interactions import Interactions
from graphrec.learn.lift import LIFT_K, MIN_SLICE_USERS, bootstrap_lift, score_users
from graphrec.learn.ranking import UserItems

VALIDATION_USERS = 600  # half choose the weights, half confirm them
GRID = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
PASSES = 2
SOCIAL = ("friends", "follows", "followers")
POPULARITY_ONLY: dict[str, float] = {name: 0.0 for name in VALIDATED} | {"popularity": 1.0}


@dataclass
class Neighbours:
    """Each user's social neighbours by kind (rows of the snapshot's users)."""

    friends: list[list[int]]  # FRIEND edges, either direction
    follows: list[list[int]]  # users this user follows
    followers: list[list[int]]  # users following this user

    @classmethod
    def of(cls, data: Interactions) -> "Neighbours":
        n = data.num_users
        friends: list[set[int]] = [set() for _ in range(n)]
        follows: list[set[int]] = [set() for _ in range(n)]
        followers: list[set[int]] = [set() for _ in range(n)]
        directed = {(a, b) for a, b in data.follows.t().tolist()}
        for a, b in directed:
            if a != b:
                follows[a].add(b)
                followers[b].add(a)
        for a, b in data.social.t().tolist():
            if a != b and (a, b) not in directed:
                friends[a].add(b)
                friends[b].add(a)
        return cls(*([sorted(s) for s in kind] for kind in (friends, follows, followers)))

    def has_any(self, user: int) -> bool:
        return bool(self.friends[user] or self.follows[user] or self.followers[user])

    def union(self, user: int) -> list[int]:
        return sorted(set(self.friends[user]) | set(self.follows[user]) | set(self.followers[user]))

    def fold_in_args(self, user: int, ids: list[str]) -> dict[str, list[str]]:
        """The keyword arguments of :func:`graphrec.coldstart.fold_in_user` for this user."""
        return {kind: [ids[v] for v in getattr(self, kind)[user]] for kind in SOCIAL}


def _item_rows(artifact: Artifact, data: Interactions) -> np.ndarray:
    if not data.item_ids:
        return np.arange(data.num_items)
    return np.fromiter((artifact.product_index[i] for i in data.item_ids), np.int64, len(data.item_ids))


class Carve:
    """The hidden users' fold-in parts and targets: a weight vector's Recall@20 in one matrix product."""

    def __init__(self, artifact: Artifact, data: Interactions, users: list[int], nb: Neighbours) -> None:
        ids = data.user_ids or [str(i) for i in range(data.num_users)]
        dim = artifact.user_emb.shape[1]
        self.n = len(users)
        self.parts = {kind: np.zeros((self.n, dim), np.float32) for kind in SOCIAL}
        for k, u in enumerate(users):
            for kind, part in user_parts(artifact, **nb.fold_in_args(u, ids)).items():
                if kind in self.parts and part is not None:
                    self.parts[kind][k] = part
        self.globals = {"prior": user_prior(artifact), "popularity": popularity_direction(artifact)}
        self.items = torch.from_numpy(np.ascontiguousarray(artifact.product_emb[_item_rows(artifact, data)]))
        known = torch.cat([data.train, data.valid], 1)
        local = torch.full((data.num_users,), -1, dtype=torch.long)
        local[torch.tensor(users, dtype=torch.long)] = torch.arange(self.n)
        keep = local[known[0]] >= 0
        self.targets = UserItems.from_pairs(local[known[0, keep]], known[1, keep], self.n)
        self.num_items = data.num_items
        self.popularity = data.popularity().float()

    def has(self, kind: str) -> bool:
        return bool(kind not in self.parts or self.parts[kind].any())

    def vectors(self, weights: dict[str, float]) -> torch.Tensor:
        """The fold-in of every carved user, summed in :func:`graphrec.coldstart.fold_in_user`'s order."""
        out = np.zeros_like(self.parts["friends"])
        for kind in SOCIAL:
            if weights.get(kind):
                out += np.float32(weights[kind]) * self.parts[kind]
        for kind, vec in self.globals.items():
            if weights.get(kind):
                out += np.float32(weights[kind]) * vec.astype(np.float32)
        return torch.from_numpy(out)

    def recall(self, weights: dict[str, float], rows: torch.Tensor) -> np.ndarray:
        """Per-user Recall@20 of the carved users ``rows`` under ``weights``."""
        V = self.vectors(weights)
        return score_users(lambda r: V[r] @ self.items.T, None, self.targets, self.num_items,
                           (LIFT_K,), rows)[1]

    def popular_recall(self, rows: torch.Tensor) -> np.ndarray:
        """Per-user Recall@20 of the most-popular list (training counts), for the record."""
        pop = self.popularity
        return score_users(lambda r: pop.expand(len(r), -1).clone(), None, self.targets, self.num_items,
                           (LIFT_K,), rows)[1]


def validation_users(data: Interactions, nb: Neighbours, n: int, seed: int) -> list[int]:
    """Up to ``n`` training users with purchases and social edges, seeded."""
    bought = torch.bincount(data.train[0], minlength=data.num_users) > 0
    pool = [u for u in range(data.num_users) if bought[u] and nb.has_any(u)]
    order = torch.randperm(len(pool), generator=torch.Generator().manual_seed(seed)).tolist()
    return sorted(pool[i] for i in order[:n])


def _search(carve: Carve, rows: torch.Tensor) -> tuple[dict[str, float], float]:
    """Coordinate ascent over :data:`GRID` from popularity alone; ties keep the current weights."""
    weights = dict(POPULARITY_ONLY)
    best = float(carve.recall(weights, rows).mean())
    names = [name for name in ("popularity", "prior", *SOCIAL) if carve.has(name)]
    for _ in range(PASSES):
        changed = False
        for name in names:
            for value in GRID:
                if value == weights[name]:
                    continue
                trial = {**weights, name: value}
                if not any(trial.values()):
                    continue
                score = float(carve.recall(trial, rows).mean())
                if score > best + 1e-9:
                    weights, best, changed = trial, score, True
        if not changed:
            break
    top = max(weights.values())
    return {k: round(v / top, 4) for k, v in weights.items()}, best


def choose_weights(artifact: Artifact, data: Interactions, n_users: int = VALIDATION_USERS,
                   seed: int = 2024) -> tuple[dict[str, float], dict[str, Any]]:
    """(weights for ``manifest["coldstart"]``, the validation record) for a trained artifact.

    Works on any artifact with the snapshot it was trained on, so the weights of a trained model
    can be chosen again without retraining (:func:`rechoose`)."""
    nb = Neighbours.of(data)
    users = validation_users(data, nb, n_users, seed)
    record: dict[str, Any] = {"metric": f"recall@{LIFT_K}", "n_users": len(users), "grid": list(GRID),
                              "seed": seed}
    if len(users) < 2 * MIN_SLICE_USERS:
        record.update(fallback=True, reason=f"{len(users)} training users with social edges, fewer than "
                                            f"{2 * MIN_SLICE_USERS}")
        return dict(POPULARITY_ONLY), record
    carve = Carve(artifact, data, users, nb)
    half = len(users) // 2
    perm = torch.randperm(len(users), generator=torch.Generator().manual_seed(seed + 1))
    choose_rows, confirm_rows = perm[:half].sort().values, perm[half:].sort().values
    chosen, choose_score = _search(carve, choose_rows)
    model = carve.recall(chosen, confirm_rows)
    popular_vec = carve.recall(POPULARITY_ONLY, confirm_rows)
    lift = bootstrap_lift(model, popular_vec, seed=seed)
    fallback = lift["verdict"] != "better"
    record.update(
        chosen=chosen, choose_users=half, choose_recall=round(choose_score, 5),
        confirm_users=len(users) - half, confirm_recall=round(float(model.mean()), 5),
        confirm_popularity_vector_recall=round(float(popular_vec.mean()), 5),
        confirm_popular_recall=round(float(carve.popular_recall(confirm_rows).mean()), 5),
        lift_over_popularity=lift, fallback=fallback,
        reason=("social evidence did not beat popularity on the confirmation users" if fallback
                else "social evidence beats popularity on the confirmation users"))
    return (dict(POPULARITY_ONLY) if fallback else chosen), record


def rechoose(path: str | Path, data: Interactions, seed: int = 2024) -> dict[str, Any]:
    """Choose the fold-in weights and the circle term's weight (:mod:`graphrec.learn.circle_fit`) of
    an existing artifact again (no retraining: the embeddings do not depend on the social graph for
    lightgcn, so a changed friend graph needs only this) and rewrite its manifest; an artifact
    without a popularity column gets one first, and a circle term turned off stays off. Returns the fold-in's validation record."""
    artifact = Artifact.load(path)
    manifest_path = artifact.path / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    coldstart = dict(manifest.get("coldstart", {}))
    if not coldstart.get("popularity_scale"):
        users, products, scale = with_popularity_column(artifact.user_emb, artifact.product_emb,
                                                        artifact.popularity)
        trained = np.asarray(artifact.popularity) > 0
        categories = category_means(products, artifact.product_categories, len(artifact.category_ids), trained)
        for kind, emb in (("user", users), ("product", products), ("category", categories)):
            np.save(artifact.path / f"{kind}_emb.npy", np.ascontiguousarray(emb, np.float32))
        coldstart["popularity_scale"] = scale
        manifest["coldstart"] = coldstart
        manifest["dim"] = int(users.shape[1])
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        artifact = Artifact.load(path)
    weights, record = choose_weights(artifact, data, seed=seed)
    manifest["coldstart"] = {**coldstart, **weights}
    manifest["coldstart_validation"] = record
    if not manifest.get("circle", {}).get("turned_off"):
        manifest["circle"] = choose_circle_weight(artifact, data, seed=seed)
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return record
