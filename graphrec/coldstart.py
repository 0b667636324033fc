"""Fold-in: embed users and products the model never trained on, from the embeddings it has.

A new user is placed at a weighted mix of the (unit-normalised) mean embeddings of what the graph
knows about them (friends, products they touched, categories they like) plus a small prior (the
mean user) that breaks ties towards what everybody likes. A new product is the mean of its
categories' embeddings (plus the users who bought it, if any). No gradient step is taken, so this
runs per request in microseconds.

``graphrec evaluate`` scores its ``zero_interaction_users`` and ``cold_products`` slices with these
exact functions, so the cold-start numbers it reports are the ones the API serves.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from graphrec.artifact import Artifact

# Defaults, overridable per artifact through manifest["coldstart"]. Tuned on Last.fm validation
# users (see graphrec.evaluate.tune_coldstart): friends carry most of the signal.
DEFAULT_WEIGHTS: dict[str, float] = {
    "friends": 1.0,
    "products": 1.0,
    "categories": 0.3,
    "prior": 0.1,
    "product_categories": 1.0,
    "product_buyers": 1.0,
    "product_prior": 0.0,
    # A folded-in product's norm relative to the median product: category centroids point at
    # "everybody's taste", so at full norm they would outrank real products for everyone.
    "product_scale": 0.6,
}


def _weights(artifact: Artifact, overrides: Mapping[str, float] | None) -> dict[str, float]:
    return {**DEFAULT_WEIGHTS, **artifact.coldstart, **(overrides or {})}


def _rows(index: Mapping[str, int], ids: Iterable[str]) -> list[int]:
    # Unknown ids (e.g. friends who are themselves new) carry no embedding: skip them.
    return [index[i] for i in ids if i in index]


def _unit_mean(emb: np.ndarray, rows: Sequence[int]) -> np.ndarray | None:
    if len(rows) == 0:
        return None
    mean = emb[np.asarray(rows)].mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else None


def mix(parts: Sequence[tuple[float, np.ndarray | None]], dim: int) -> np.ndarray:
    """Weighted sum of the available unit-norm parts (missing parts contribute nothing)."""
    out = np.zeros(dim, dtype=np.float32)
    for weight, part in parts:
        if part is not None and weight:
            out += np.float32(weight) * part.astype(np.float32)
    return out


def user_prior(artifact: Artifact) -> np.ndarray:
    """Unit-normalised mean user embedding: scoring with it ranks broadly liked products first."""
    prior = _unit_mean(artifact.user_emb, range(len(artifact.user_ids)))
    return prior if prior is not None else np.zeros(artifact.user_emb.shape[1], np.float32)


def fold_in_user(
    artifact: Artifact,
    friends: Sequence[str] = (),
    products: Sequence[str] = (),
    categories: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Embedding (float32, [dim]) of a user from friends', products' and categories' embeddings.

    ``friends`` are user ids (friend and follows neighbours), ``products`` ids of products the user
    interacted with, ``categories`` ids of categories they declared or browsed. Scores are
    ``product_emb @ vector`` as for any trained user.
    """
    w = _weights(artifact, weights)
    dim = artifact.user_emb.shape[1]
    return mix(
        [
            (w["friends"], _unit_mean(artifact.user_emb, _rows(artifact.user_index, friends))),
            (w["products"], _unit_mean(artifact.product_emb, _rows(artifact.product_index, products))),
            (w["categories"],
             _unit_mean(artifact.category_emb, _rows(artifact.category_index, categories))),
            (w["prior"], user_prior(artifact) if w["prior"] else None),  # a mean over all users
        ],
        dim,
    )


def fold_in_product(
    artifact: Artifact,
    categories: Sequence[str] = (),
    buyers: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Embedding (float32, [dim]) of a product from its categories (and buyers, if any).

    The result is rescaled to the median product-embedding norm: in dot-product models the norm
    carries popularity, and a product nobody bought yet should rank like a typical one, not like
    the most popular (nor the least).
    """
    w = _weights(artifact, weights)
    dim = artifact.product_emb.shape[1]
    vec = mix(
        [
            (w["product_categories"],
             _unit_mean(artifact.category_emb, _rows(artifact.category_index, categories))),
            (w["product_buyers"], _unit_mean(artifact.user_emb, _rows(artifact.user_index, buyers))),
            (w["product_prior"],  # a mean over all products: only when weighted
             _unit_mean(artifact.product_emb, range(len(artifact.product_ids))) if w["product_prior"] else None),
        ],
        dim,
    )
    norm = float(np.linalg.norm(vec))
    if norm == 0:
        return vec
    target = np.median(np.linalg.norm(artifact.product_emb, axis=1)) * w["product_scale"]
    return vec * np.float32(target / norm)
