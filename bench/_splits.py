"""Read the published splits straight from ../shared/data into Interactions (dev and bench only;
the product path is dataset -> load -> export -> load_snapshot)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.learn.interactions import Interactions, carve_validation, default_valid_fraction

DATA = Path(os.environ.get("GRAPHREC_SHARED_DATA",
                           Path(__file__).resolve().parents[2] / "shared" / "data"))


def lastfm_split(valid_fraction: float | None = None, seed: int = 2024) -> Interactions:
    d = DATA / "lastfm-sociallgn-split"
    tr = pd.read_csv(d / "train_set.txt")
    te = pd.read_csv(d / "test_set.txt")
    so = pd.read_csv(d / "trust.txt")
    nu = int(max(tr.user.max(), te.user.max(), so.max().max())) + 1
    ni = int(max(tr.item.max(), te.item.max())) + 1
    train = torch.tensor(tr[["user", "item"]].to_numpy().T, dtype=torch.long)
    if valid_fraction is None:  # the rule load_snapshot applies
        valid_fraction = default_valid_fraction(train.shape[1])
    train, valid = carve_validation(train, valid_fraction, seed)
    return Interactions(nu, ni, train, valid,
                        torch.tensor(te[["user", "item"]].to_numpy().T, dtype=torch.long),
                        social=torch.tensor(so.to_numpy().T, dtype=torch.long))


def _read_lists(path: Path) -> torch.Tensor:
    us, its = [], []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) > 1:
            items = np.asarray(parts[1:], dtype=np.int64)
            us.append(np.full(len(items), int(parts[0])))
            its.append(items)
    return torch.tensor(np.stack([np.concatenate(us), np.concatenate(its)]))


def gowalla_split(valid_fraction: float | None = None, seed: int = 2024) -> Interactions:
    d = DATA / "gowalla-lightgcn"
    train = _read_lists(d / "train.txt")
    test = _read_lists(d / "test.txt")
    nu = int(max(train[0].max(), test[0].max())) + 1
    ni = int(max(train[1].max(), test[1].max())) + 1
    if valid_fraction is None:  # the rule load_snapshot applies
        valid_fraction = default_valid_fraction(train.shape[1])
    train, valid = carve_validation(train, valid_fraction, seed)
    return Interactions(nu, ni, train, valid, test)
