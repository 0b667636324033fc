"""The LightGCN Gowalla split -> the canonical layout.

``train.txt`` and ``test.txt`` hold one line per user: ``user item item ...`` with re-indexed ids.
Users and products keep those indices as string ids; every interaction is a purchase with ``split``
train or test as published. Gowalla has no categories and no social edges, so ``categories.csv``
and ``social.csv`` are written with their header only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.datasets.lastfm import DatasetError
from graphrec.ingest import layout


def _read_lists(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) pairs of a ``user item item ...`` file."""
    if not path.is_file():
        raise DatasetError(f"{path}: missing (is this the LightGCN Gowalla directory?)")
    users, items = [], []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = np.asarray(fields, dtype=np.int64)
        except ValueError:
            raise DatasetError(f"{path.name}:{number}: expected integers 'user item item ...'") from None
        users.append(np.full(len(values) - 1, values[0]))
        items.append(values[1:])
    return np.concatenate(users), np.concatenate(items)


def convert_gowalla(raw_dir: Path, out_dir: Path) -> dict[str, Any]:
    """Write the canonical files for LightGCN's Gowalla into ``out_dir``; return what was written."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    parts = []
    for split in ("train", "test"):
        users, items = _read_lists(raw_dir / f"{split}.txt")
        parts.append(pd.DataFrame({"user": users, "item": items, "split": split}))
    pairs = pd.concat(parts, ignore_index=True)
    repeated = pairs.duplicated(["user", "item"], keep="first")
    pairs = pairs[~repeated]  # a pair listed twice (train first) keeps its first split
    user_ids = np.unique(pairs["user"])
    item_ids = np.unique(pairs["item"])
    out_dir.mkdir(parents=True, exist_ok=True)
    layout.write_csv(pd.DataFrame({"user_id": user_ids.astype(str)}), out_dir, layout.USERS)
    layout.write_csv(pd.DataFrame({"product_id": item_ids.astype(str)}), out_dir, layout.PRODUCTS)
    layout.write_csv(pd.DataFrame(columns=["category_id", "name", "parent_id"]), out_dir, layout.CATEGORIES)
    layout.write_csv(pd.DataFrame({"user_id": pairs["user"].astype(str), "product_id": pairs["item"].astype(str),
                                   "kind": "purchase", "split": pairs["split"]}), out_dir, layout.INTERACTIONS)
    layout.write_csv(pd.DataFrame(columns=["user_id", "other_user_id", "kind"]), out_dir, layout.SOCIAL)
    return {
        "out": str(out_dir),
        "written": {"users": len(user_ids), "products": len(item_ids), "categories": 0,
                    "interactions": len(pairs), "social": 0},
        "split": {k: int(v) for k, v in pairs["split"].value_counts().sort_index().items()},
        "dropped": {"repeated_pairs": int(repeated.sum())},
    }
