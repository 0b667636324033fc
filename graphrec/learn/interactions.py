"""The tensors training and evaluation work on, cut out of a snapshot's HeteroData.

Keeping this small, flat view separate from :class:`~torch_geometric.data.HeteroData` lets models,
training and metrics stay tensors-only, and makes the leakage rule easy to check: only ``train``
pairs ever reach message passing, losses or negative sampling.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}


@dataclass
class Interactions:
    num_users: int
    num_items: int
    train: Tensor  # int64 [2, E] (user row, item row): message passing, loss, negatives
    valid: Tensor  # int64 [2, E] early stopping only
    test: Tensor  # int64 [2, E] final metrics only
    social: Tensor = field(default_factory=lambda: torch.zeros(2, 0, dtype=torch.long))
    # The directed FOLLOWS edges (follower, followee) among ``social`` (the rest are FRIEND edges):
    # the fold-in weighs following and being followed apart (graphrec.coldstart).
    follows: Tensor = field(default_factory=lambda: torch.zeros(2, 0, dtype=torch.long))
    item_category: Tensor = field(default_factory=lambda: torch.zeros(2, 0, dtype=torch.long))
    num_categories: int = 0
    user_ids: list[str] = field(default_factory=list)
    item_ids: list[str] = field(default_factory=list)
    category_ids: list[str] = field(default_factory=list)
    snapshot_id: str = ""
    # Set when user_ids are keyed pseudonyms (graphrec.privacy): the artifact records it.
    pseudonym_fingerprint: str | None = None

    def popularity(self) -> Tensor:
        """Training interactions per item."""
        return torch.bincount(self.train[1], minlength=self.num_items)

    def item_categories(self) -> list[list[int]]:
        cats: list[list[int]] = [[] for _ in range(self.num_items)]
        for p, c in self.item_category.t().tolist():
            cats[p].append(c)
        return cats


# Validation needs enough pairs to rank epochs, and every pair held out is one the model never
# learns from: 10% per user, but at most about this many pairs in all.
VALID_PAIRS = 20_000


def default_valid_fraction(num_train: int) -> float:
    """10% of the training pairs, capped at about ``VALID_PAIRS`` (Gowalla: 2.5%)."""
    return min(0.1, VALID_PAIRS / max(1, num_train))


def carve_validation(pairs: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Split (user, item) pairs per user into (train, valid), ``fraction`` of each user's to valid.

    Each user gives floor or ceil of ``fraction`` x their pairs (stochastically rounded), keeping
    at least one training pair. Deterministic for a given ``seed``.
    """
    if fraction <= 0 or pairs.shape[1] == 0:
        return pairs, pairs[:, :0]
    g = torch.Generator().manual_seed(seed)
    users = pairs[0]
    # Random order within each user: sort by (user, random key).
    key = torch.rand(users.numel(), generator=g)
    order = torch.argsort(users.double() * 2 + key.double())
    users_sorted = users[order]
    counts = torch.bincount(users_sorted)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(users.numel()) - start[users_sorted]
    # Stochastic rounding: small users still contribute in expectation (floor would give users
    # with fewer than 1/fraction pairs nothing, and small graphs no validation at all).
    n_valid = torch.floor(counts.double() * fraction + torch.rand(counts.numel(), generator=g)).long()
    n_valid = torch.minimum(n_valid, (counts - 1).clamp(min=0))
    is_valid = rank < n_valid[users_sorted]
    return pairs[:, order[~is_valid]], pairs[:, order[is_valid]]
