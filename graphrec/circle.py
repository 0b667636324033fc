"""The circle term: what the people around a user bought, added to the model's score.

    score(u, p) = user_vector . product_vector + weight * bought(circle(u), p) / sqrt(|circle(u)|)

``circle(u)`` is everybody whose purchases count as a friend's: FRIEND neighbours (either
direction) and the users ``u`` follows, as in the "friends bought" promos and explanations;
``bought(circle(u), p)`` is how many of them bought ``p``. The square root is LightGCN's
normalisation: a friend's purchase says less in a large circle, but many friends buying the same
product says more than one.

Why a term beside the embeddings: a low-dimensional dot product holds a user's taste, not the
list of the few dozen products their friends bought, and on shops where people buy what their
friends buy that list is much of what they buy next (the generated 1M-user shop: 1.65x most-popular
from the embeddings alone, see docs/scale.md). The weight is chosen per graph on validation by
``graphrec train`` (:mod:`graphrec.learn.circle_fit`) and stored in ``manifest["circle"]``; it is 0
where the circle does not raise validation recall, and for artifacts from before the term, which
then score exactly as they did. ``graphrec evaluate`` and the API compute the term with
:func:`circle_term`, evaluation from the training purchases, the API from the graph it serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class CirclePurchases:
    """One user's circle as the API reads it from the graph."""

    products: list[str]  # what members bought
    counts: np.ndarray  # how many members bought each
    size: int  # members, buyers or not


def circle_weight(manifest: Mapping[str, Any]) -> float:
    """The artifact's circle weight (0: the term is off)."""
    return float(manifest.get("circle", {}).get("weight", 0.0))


def circle_term(bought: np.ndarray, circle_size: np.ndarray | int, weight: float) -> np.ndarray:
    """``weight * bought / sqrt(circle_size)``: ``bought`` counts circle members per product (a row
    per user, or one user's counts), ``circle_size`` each user's circle (a column, or one number)."""
    size = np.maximum(np.asarray(circle_size, dtype=np.float32), 1.0)
    return (np.float32(weight) * np.asarray(bought, dtype=np.float32)) / np.sqrt(size)
