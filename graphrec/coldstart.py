"""Fold-in: embed users and products the model never trained on, from the embeddings it has.

A new user is placed at a weighted mix of unit-norm directions: the mean embeddings of their
friends (mutual FRIEND edges), of the users they follow and of the users following them (directed
trust, kept apart because on some graphs only one direction carries taste), of products they
touched and categories they like, the mean user (the all-user prior) and the popularity direction
(the vector whose scores rank products by training popularity). A new product is the mean of its
categories' embeddings (plus the users who bought it, if any); for a model with a content tower
(sage) the artifact's category rows are that tower's learned per-category rows, and a new product
is exactly what the tower computes for it (``product_content``). No gradient step is taken, so this
runs per request in microseconds.

The user weights are chosen per graph on validation (:mod:`graphrec.learn.coldstart_validation`, run by
``graphrec train``) and stored in the artifact; an artifact without them gets
:data:`DEFAULT_WEIGHTS`. ``graphrec evaluate`` scores its ``zero_interaction_users`` and
``cold_products`` slices with these exact functions, so the cold-start numbers it reports are the
ones the API serves.
"""

from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from graphrec.artifact import Artifact

# Defaults, overridden per artifact by manifest["coldstart"] (the weights validation chose). An
# artifact from before the validated fold-in has no "follows"/"followers"/"popularity" keys: these
# defaults reproduce what it served (follows counted as friends, no popularity direction).
DEFAULT_WEIGHTS: dict[str, float] = {
    "friends": 1.0,
    "follows": 1.0,  # users this user follows (FOLLOWS out-edges)
    "followers": 0.0,  # users following this user (FOLLOWS in-edges)
    "products": 1.0,
    "categories": 0.3,
    "prior": 0.1,
    "popularity": 0.0,
    "popularity_scale": 0.0,  # > 0: the artifact has a popularity column (with_popularity_column)
    "product_categories": 1.0,
    "product_buyers": 1.0,
    "product_prior": 0.0,
    # A folded-in product's norm relative to the median product: category centroids point at
    # "everybody's taste", so at full norm they would outrank real products for everyone.
    "product_scale": 0.6,
    # > 0: category_emb holds a trained content tower's rows (graphrec.learn.models.sage): a new
    # product is their plain mean, its first ``product_content_unit`` columns unit-normalised as the
    # cosine objective scored them during training; no centroid rescaling.
    "product_content": 0.0,
    "product_content_unit": 0.0,
}
# The weights validation chooses (the others have no evidence in a snapshot: interests are not
# exported and a zero-interaction user has no products, so they keep their defaults).
VALIDATED = ("friends", "follows", "followers", "prior", "popularity")


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


# The popularity column build_artifact appends to product embeddings is this small relative to
# them (cosine similarities between products barely move); the fold-in's popularity part makes up
# for it with a large weight on that column alone.
POPULARITY_COLUMN = 1e-3


def with_popularity_column(user_emb: np.ndarray, product_emb: np.ndarray,
                           popularity: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(user_emb with a zero column, product_emb with a popularity column, the fold-in's scale).

    The extra product column is ``POPULARITY_COLUMN`` x the median product norm x the products'
    standardised log training popularity; trained users have 0 there, so their scores do not
    change. The popularity part of a fold-in is ``scale`` on that column alone: its scores are
    exactly the most-popular ranking, spread like the scores of a unit direction (``scale`` makes
    the weights of popularity and of friends comparable). No direction inside the trained space
    reproduces most-popular exactly (Last.fm: 8-14% less Recall@20), and the fold-in must never be
    below popularity."""
    P = np.asarray(product_emb, np.float64)
    column = popularity_column(popularity, P)
    eps = POPULARITY_COLUMN * (float(np.median(np.linalg.norm(P, axis=1))) or 1.0)
    mean_user = np.asarray(user_emb, np.float64).mean(0)
    unit = mean_user / (np.linalg.norm(mean_user) or 1.0)
    spread = float((P @ unit).std()) or 1.0
    users = np.hstack([user_emb, np.zeros((len(user_emb), 1))]).astype(np.float32)
    products = np.hstack([P, column(np.asarray(popularity))[:, None]]).astype(np.float32)
    return users, products, spread / eps


def popularity_column(popularity: np.ndarray, product_emb: np.ndarray):
    """The function ``counts -> column values`` of :func:`with_popularity_column` for this catalogue
    (so a product added later, with 0 purchases, gets the value the others were scaled with)."""
    pop = np.log1p(np.asarray(popularity, np.float64))
    mean, std = pop.mean(), (pop.std() or 1.0)
    eps = POPULARITY_COLUMN * (float(np.median(np.linalg.norm(np.asarray(product_emb, np.float64), axis=1))) or 1.0)
    return lambda counts: eps * (np.log1p(np.asarray(counts, np.float64)) - mean) / std


def popularity_direction(artifact: Artifact, k: int = 20) -> np.ndarray:
    """The fold-in's popularity part: a vector ``v`` whose scores ``product_emb @ v`` rank like
    training popularity.

    An artifact with a popularity column (``coldstart["popularity_scale"]``, see
    :func:`with_popularity_column`) gets that column alone: exactly most-popular. Otherwise (older
    artifacts, in-memory baselines) the best of a few closed-form unit directions: least-squares
    fits of log, raw and top-k popularity, the popularity-weighted mean product, the mean user,
    judged by the training interactions their top ``k`` holds. Kept on the artifact object
    (serving calls the fold-in per request)."""
    cached = artifact.__dict__.get("_popularity_direction")
    if cached is not None and cached[0] is artifact.product_emb:
        return cached[1]
    scale = float(artifact.coldstart.get("popularity_scale", 0.0))
    if scale > 0:
        out = np.zeros(artifact.product_emb.shape[1], np.float32)
        out[-1] = scale
    else:
        out = _closest_popularity_direction(artifact, k)
    artifact.__dict__["_popularity_direction"] = (artifact.product_emb, out)
    return out


def _closest_popularity_direction(artifact: Artifact, k: int) -> np.ndarray:
    P = np.asarray(artifact.product_emb, np.float64)
    pop = np.asarray(artifact.popularity, np.float64)
    k = min(k, len(pop))
    head = np.zeros_like(pop)
    if k:
        head[np.argsort(-pop, kind="stable")[:k]] = 1.0
    candidates = [np.linalg.lstsq(P, (t - t.mean()) / (t.std() or 1.0), rcond=None)[0]
                  for t in (np.log1p(pop), pop, head)]
    candidates += [P.T @ pop, np.asarray(artifact.user_emb, np.float64).mean(0)]

    def mass(v: np.ndarray) -> float:
        return float(pop[np.argpartition(-(P @ v), k - 1)[:k]].sum()) if k else 0.0

    best = max(candidates, key=mass)
    norm = float(np.linalg.norm(best))
    return (best / norm if norm > 0 else best).astype(np.float32)


def user_parts(
    artifact: Artifact,
    friends: Sequence[str] = (),
    products: Sequence[str] = (),
    categories: Sequence[str] = (),
    follows: Sequence[str] = (),
    followers: Sequence[str] = (),
) -> dict[str, np.ndarray | None]:
    """The unit-norm directions a user's fold-in mixes, by weight name (None: no evidence)."""
    users = artifact.user_index
    return {
        "friends": _unit_mean(artifact.user_emb, _rows(users, friends)),
        "follows": _unit_mean(artifact.user_emb, _rows(users, follows)),
        "followers": _unit_mean(artifact.user_emb, _rows(users, followers)),
        "products": _unit_mean(artifact.product_emb, _rows(artifact.product_index, products)),
        "categories": _unit_mean(artifact.category_emb, _rows(artifact.category_index, categories)),
    }


def fold_in_user(
    artifact: Artifact,
    friends: Sequence[str] = (),
    products: Sequence[str] = (),
    categories: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
    follows: Sequence[str] = (),
    followers: Sequence[str] = (),
) -> np.ndarray:
    """Embedding (float32, [dim]) of a user from what the graph knows about them.

    ``friends`` are user ids of FRIEND neighbours, ``follows`` of the users they follow,
    ``followers`` of the users following them, ``products`` ids of products the user interacted
    with, ``categories`` ids of categories they declared or browsed. Scores are
    ``product_emb @ vector`` as for any trained user.
    """
    w = _weights(artifact, weights)
    parts = user_parts(artifact, friends, products, categories, follows, followers)
    return mix(
        [(w[name], part) for name, part in parts.items()]
        + [(w["prior"], user_prior(artifact) if w["prior"] else None),  # a mean over all users
           (w["popularity"], popularity_direction(artifact) if w["popularity"] else None)],
        artifact.user_emb.shape[1],
    )


def fold_in_product(
    artifact: Artifact,
    categories: Sequence[str] = (),
    buyers: Sequence[str] = (),
    weights: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Embedding (float32, [dim]) of a product from its categories (and buyers, if any).

    The result is rescaled to the median product-embedding norm
    (:attr:`Artifact.typical_product_norm`): in dot-product models the norm carries popularity, and
    a product nobody bought yet should rank like a typical one, not like the most popular (nor the
    least).
    """
    w = _weights(artifact, weights)
    dim = artifact.product_emb.shape[1]
    if w["product_content"]:
        return _content_product(artifact, categories, buyers, w)
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
    target = artifact.typical_product_norm * w["product_scale"]
    return vec * np.float32(target / norm)


def _content_product(artifact: Artifact, categories: Sequence[str], buyers: Sequence[str],
                     w: Mapping[str, float]) -> np.ndarray:
    """A product from a content tower's category rows (mean), as the model embeds it; buyers, if
    any, turn its direction towards them like the centroid fold-in does."""
    rows = _rows(artifact.category_index, categories)
    vec = (artifact.category_emb[np.asarray(rows)].mean(axis=0) if rows
           else np.zeros(artifact.category_emb.shape[1], np.float32)).astype(np.float32)
    unit = int(w["product_content_unit"])
    if unit:
        head = _unit_mean(vec[None, :unit], [0])
        buyer = _unit_mean(artifact.user_emb[:, :unit], _rows(artifact.user_index, buyers))
        if buyer is not None:
            head = _unit_mean(mix([(w["product_categories"], head), (w["product_buyers"], buyer)], unit)[None], [0])
        vec[:unit] = 0.0 if head is None else head
    return vec


def category_means(item_emb: np.ndarray, item_categories: Sequence[Sequence[int]], num_categories: int,
                   trained: np.ndarray) -> np.ndarray:
    """Category embedding = mean final embedding of its products that have training interactions."""
    dim = item_emb.shape[1]
    sums = np.zeros((num_categories, dim), dtype=np.float64)
    counts = np.zeros(num_categories)
    for p, cats in enumerate(item_categories):
        if trained[p]:
            for c in cats:
                sums[c] += item_emb[p]
                counts[c] += 1
    return (sums / np.maximum(counts, 1)[:, None]).astype(np.float32)
