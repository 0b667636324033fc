"""Targeting on real data: would each audience policy have found the users who went on to buy?

Offline, on a snapshot (``graphrec export``) and a model artifact trained on its training split:

* a "campaign" promotes every product of a category (and of its subcategories);
* each policy picks an audience of ``size`` users from **training data only**: the rules of
  :mod:`graphrec.campaigns.targeting` (eligible = every user less the training buyers of a
  promoted product; ``model`` = :func:`~graphrec.campaigns.targeting.model_scores`, the max over
  promoted products; ``friends_bought`` = distinct friends (FRIEND either way, FOLLOWS outgoing)
  with a training purchase of one; ``popular`` = training purchases inside the promoted products'
  categories, total purchases as tie-break; ``random`` = the salted hash order), evaluated here on
  the snapshot's arrays instead of Cypher over Neo4j, with the same tie-break (user id);
* a member **converts** when they have a held-out (``test``) interaction with a promoted product;
* ``precision`` = converters / ``size``; ``lift`` = precision / the expected precision of a random
  audience of that size (the eligible users' conversion rate: an exact expectation, not one noisy
  draw). The ``random`` row is one real draw of the random policy, so its lift is near, not at, 1.

Only pandas and numpy: the snapshot's Parquet files are read directly, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from graphrec.artifact import Artifact
from graphrec.campaigns.model import POLICIES, unit_interval
from graphrec.campaigns.targeting import _top, model_scores

TRAIN, TEST = "train", "test"


class BacktestError(ValueError):
    """A bad snapshot, category or policy; the message names it."""


@dataclass
class BacktestData:
    """The parts of a snapshot a backtest reads (node indices as in the snapshot)."""

    user_ids: np.ndarray
    product_ids: np.ndarray
    category_ids: np.ndarray
    category_names: np.ndarray
    train: pd.DataFrame  # src (user), dst (product)
    test: pd.DataFrame
    friend: pd.DataFrame  # src, dst, stored once per pair
    follows: pd.DataFrame  # src follows dst
    in_category: pd.DataFrame  # src (product), dst (category)
    subcategory_of: pd.DataFrame  # src (child), dst (parent)


def load_data(snapshot: str | Path) -> BacktestData:
    root = Path(snapshot)
    if not (root / "meta.json").is_file():
        raise BacktestError(f"{root} is not a snapshot: no meta.json (create one with `graphrec export`)")

    def read(*parts: str) -> pd.DataFrame:
        path = root.joinpath(*parts)
        if not path.is_file():
            raise BacktestError(f"snapshot file missing: {path}")
        return pd.read_parquet(path)

    users, products, cats = (read("nodes", f"{n}.parquet") for n in ("user", "product", "category"))
    bought = read("edges", "bought.parquet")
    if "split" not in bought or not (bought["split"] == TEST).any():
        raise BacktestError(f"{root}: no interaction is marked split=test; a backtest needs a held-out split")
    return BacktestData(
        user_ids=users["id"].astype(str).to_numpy(), product_ids=products["id"].astype(str).to_numpy(),
        category_ids=cats["id"].astype(str).to_numpy(), category_names=cats["name"].astype(str).to_numpy(),
        train=bought.loc[bought["split"] == TRAIN, ["src", "dst"]].reset_index(drop=True),
        test=bought.loc[bought["split"] == TEST, ["src", "dst"]].reset_index(drop=True),
        friend=read("edges", "friend.parquet")[["src", "dst"]], follows=read("edges", "follows.parquet")[["src", "dst"]],
        in_category=read("edges", "in_category.parquet")[["src", "dst"]],
        subcategory_of=read("edges", "subcategory_of.parquet")[["src", "dst"]])


def resolve_category(data: BacktestData, category: str) -> int:
    """A category's index by id, else by name (case-insensitive, must be unique)."""
    hits = np.flatnonzero(data.category_ids == category)
    if len(hits) == 0:
        hits = np.flatnonzero(np.char.lower(data.category_names.astype(str)) == category.lower())
    if len(hits) != 1:
        raise BacktestError(f"category {category!r}: " + ("no such id or name" if len(hits) == 0 else
                                                          f"{len(hits)} categories have this name; give the id"))
    return int(hits[0])


def category_products(data: BacktestData, category: int) -> np.ndarray:
    """Product indices in the category or any of its subcategories (sorted)."""
    wanted = {category}
    children = data.subcategory_of.groupby("dst")["src"].apply(list).to_dict()
    frontier = [category]
    while frontier:
        frontier = [c for p in frontier for c in children.get(p, []) if c not in wanted]
        wanted.update(frontier)
    return np.unique(data.in_category.loc[data.in_category["dst"].isin(list(wanted)), "src"].to_numpy())


def audience(data: BacktestData, artifact: Artifact | None, promoted: np.ndarray, policy: str, size: int, *,
             salt: str = "backtest", exclude_buyers: bool = True) -> list[tuple[str, float]]:
    """The policy's audience (user id, score), best first, from training data only."""
    n = len(data.user_ids)
    is_promoted = np.zeros(len(data.product_ids), bool)
    is_promoted[promoted] = True
    train_buy = data.train[is_promoted[data.train["dst"].to_numpy()]]
    eligible = np.ones(n, bool)
    if exclude_buyers:
        eligible[train_buy["src"].to_numpy()] = False
    users = data.user_ids[eligible]
    if policy == "model":
        if artifact is None:
            raise BacktestError("the model policy needs a model artifact (--model)")
        scores = model_scores(artifact, sorted(users.tolist()), data.product_ids[promoted].tolist())
    elif policy == "friends_bought":
        buyers = np.unique(train_buy["src"].to_numpy())
        bought = np.zeros(n, bool)
        bought[buyers] = True
        f, w = data.friend["src"].to_numpy(), data.friend["dst"].to_numpy()
        fol_src, fol_dst = data.follows["src"].to_numpy(), data.follows["dst"].to_numpy()
        # (user, friend who bought): both directions of FRIEND, FOLLOWS from the follower.
        who = np.concatenate([f[bought[w]], w[bought[f]], fol_src[bought[fol_dst]]])
        friend = np.concatenate([w[bought[w]], f[bought[f]], fol_dst[bought[fol_dst]]])
        pairs = pd.DataFrame({"u": who, "b": friend}).drop_duplicates()
        pairs = pairs[pairs["u"] != pairs["b"]]
        counts = pairs.groupby("u").size()
        scores = {str(data.user_ids[u]): float(c) for u, c in counts.items() if eligible[u]}
    elif policy == "popular":
        ic_src, ic_dst = data.in_category["src"].to_numpy(), data.in_category["dst"].to_numpy()
        in_cats = np.zeros(len(data.product_ids), bool)  # products sharing a category with a promoted one
        in_cats[ic_src[np.isin(ic_dst, np.unique(ic_dst[is_promoted[ic_src]]))]] = True
        src, dst = data.train["src"].to_numpy(), data.train["dst"].to_numpy()
        total = np.bincount(src, minlength=n)
        inside = np.bincount(src[in_cats[dst]], minlength=n)
        top_total = int(total.max()) + 1 if n else 1
        scores = {str(data.user_ids[u]): int(inside[u]) + int(total[u]) / top_total for u in np.flatnonzero(eligible)}
    elif policy == "random":
        scores = {str(u): 1.0 - unit_interval(salt + ":audience", str(u)) for u in users}
    else:
        raise BacktestError(f"unknown policy {policy!r} (one of {', '.join(POLICIES)})")
    return _top(scores, size)


def backtest(data: BacktestData, artifact: Artifact | None, categories: Sequence[str], sizes: Sequence[int],
             policies: Sequence[str] = POLICIES, *, salt: str = "backtest",
             exclude_buyers: bool = True) -> dict[str, Any]:
    """Precision and lift over random of each policy, per category and audience size."""
    bad = [p for p in policies if p not in POLICIES]
    if bad:
        raise BacktestError(f"unknown policy {bad[0]!r} (one of {', '.join(POLICIES)})")
    if any(s < 1 for s in sizes):
        raise BacktestError("sizes must be at least 1")
    rows = []
    for category in categories:
        c = resolve_category(data, category)
        promoted = category_products(data, c)
        if len(promoted) == 0:
            raise BacktestError(f"category {category!r} has no products")
        is_promoted = np.zeros(len(data.product_ids), bool)
        is_promoted[promoted] = True
        converted = np.zeros(len(data.user_ids), bool)
        converted[data.test.loc[is_promoted[data.test["dst"].to_numpy()], "src"].to_numpy()] = True
        eligible = np.ones(len(data.user_ids), bool)
        if exclude_buyers:
            eligible[data.train.loc[is_promoted[data.train["dst"].to_numpy()], "src"].to_numpy()] = False
        base = float(converted[eligible].mean()) if eligible.any() else 0.0
        conv_ids = set(data.user_ids[converted].tolist())
        for size in sizes:
            for policy in policies:
                chosen = audience(data, artifact, promoted, policy, size, salt=salt, exclude_buyers=exclude_buyers)
                hits = sum(u in conv_ids for u, _ in chosen)
                precision = hits / size
                rows.append({"category_id": str(data.category_ids[c]), "category": str(data.category_names[c]),
                             "products": int(len(promoted)), "size": size, "policy": policy,
                             "audience": len(chosen), "converters": hits, "precision": precision,
                             "random_expected_precision": base,
                             "lift_over_random": precision / base if base > 0 else None,
                             "eligible_users": int(eligible.sum()),
                             "eligible_converters": int((converted & eligible).sum())})
    return {"rows": rows, "policies": list(policies), "sizes": list(sizes),
            "conversion": "a held-out (test) interaction with a promoted product",
            "precision": "converters / size", "lift": "precision / expected precision of a random audience"}


def table(result: dict[str, Any]) -> str:
    """The result as a Markdown table (README-ready): one row per category and size, each policy's
    precision with its lift over random in parentheses."""
    policies = result["policies"]
    lines = ["| category (products; eligible users, converters) | size | "
             + " | ".join(policies) + " | random, expected |",
             "|---|---:|" + "---:|" * (len(policies) + 1)]
    cells: dict[tuple[str, int], dict[str, dict[str, Any]]] = {}
    for r in result["rows"]:
        cells.setdefault((r["category"], r["size"]), {})[r["policy"]] = r
    for (category, size), by_policy in cells.items():
        first = next(iter(by_policy.values()))
        parts = []
        for policy in policies:
            r = by_policy[policy]
            lift = "n/a" if r["lift_over_random"] is None else f"{r['lift_over_random']:.2f}x"
            parts.append(f"{r['precision']:.3f} ({lift})")
        lines.append(f"| {category} ({first['products']}; {first['eligible_users']}, {first['eligible_converters']}) "
                     f"| {size} | " + " | ".join(parts) + f" | {first['random_expected_precision']:.3f} |")
    lines.append("")
    lines.append("precision = converters / size (lift over random = precision / expected precision of a "
                 "random audience); converter = a held-out (test) interaction with a promoted product")
    return "\n".join(lines)
