"""Lift over most-popular, per slice, with a paired bootstrap interval over users.

``graphrec evaluate`` ranks the same users of a slice with the model and with most-popular, so the
comparison is *paired*: each bootstrap resample draws users with replacement and recomputes both
systems' mean Recall@20 on those same users. The lift is their ratio, mean(model) / mean(popular),
and its 95% interval is the 2.5th and 97.5th percentiles of the resampled ratios (percentile
bootstrap, numpy, a fixed seed, so a report is reproducible; scipy's ``bootstrap`` would need the
users' values twice per resample and is no faster here).

Verdicts (one definition throughout):

* ``better``: the interval's lower end is above 1 (the model beats popular on this slice);
* ``not_better``: the interval includes 1 or lies below it (no evidence the model beats the
  trivial answer; the table flags it);
* ``too_few_users``: fewer than :data:`MIN_SLICE_USERS` users, too few to say anything (one user
  moves Recall@K by 1/n): no lift is reported and no line is drawn.

A resample where popular scores 0 has ratio +inf (model > 0) or 1 (both 0: no difference).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from torch import Tensor

from graphrec.learn.ranking import ScoreFn, UserItems, hits_matrix, metrics_from_hits, top_k

LIFT_K = 20  # lift and its interval are on per-user Recall@LIFT_K
# A slice with fewer users than this is noise: no lift is reported, and --plot leaves it out.
MIN_SLICE_USERS = 30
CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 2024

BETTER, NOT_BETTER, TOO_FEW = "better", "not_better", "too_few_users"


def score_users(score: ScoreFn, known: UserItems | None, held_out: UserItems, num_items: int,
                ks: tuple[int, ...] | list[int], users: Tensor) -> tuple[dict[str, float], np.ndarray]:
    """Ranking metrics averaged over ``users`` (as :func:`graphrec.learn.ranking.evaluate_scores`) and
    each user's Recall@LIFT_K, from one ranking pass. Users without held-out items are dropped."""
    users = users[held_out.counts[users] > 0]
    kmax = min(max(*ks, LIFT_K), num_items)
    top = top_k(score, users, known, kmax)
    hits = hits_matrix(top, users, held_out, num_items)
    n_rel = held_out.counts[users]
    result = metrics_from_hits(hits, n_rel, ks, top, num_items)
    result["n_users"] = int(users.numel())
    per_user = (hits[:, :LIFT_K].sum(1).float() / n_rel.float().clamp(min=1)).numpy().astype(np.float64)
    return result, per_user


def _ratio(model_sum: np.ndarray, popular_sum: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = model_sum / popular_sum
    r = np.where(popular_sum == 0, np.where(model_sum > 0, np.inf, 1.0), r)
    return r


def bootstrap_lift(model: np.ndarray, popular: np.ndarray, *, resamples: int = RESAMPLES,
                   confidence: float = CONFIDENCE, seed: int = SEED,
                   min_users: int = MIN_SLICE_USERS) -> dict[str, Any]:
    """Lift of ``model`` over ``popular`` (per-user values of the same users, same order).

    Returns ``{"n_users", "model", "popular", "lift", "low", "high", "verdict"}``; lift and bounds
    are None when the slice has fewer than ``min_users`` users (verdict ``too_few_users``)."""
    model = np.asarray(model, np.float64)
    popular = np.asarray(popular, np.float64)
    if model.shape != popular.shape:
        raise ValueError(f"paired bootstrap needs the same users: {model.shape} vs {popular.shape}")
    n = len(model)
    out: dict[str, Any] = {"n_users": n, "metric": f"recall@{LIFT_K}",
                           "model": float(model.mean()) if n else None,
                           "popular": float(popular.mean()) if n else None,
                           "lift": None, "low": None, "high": None, "verdict": TOO_FEW}
    if n < max(1, min_users):
        return out
    point = float(_ratio(np.array(model.sum()), np.array(popular.sum())))
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    block = max(1, 4_000_000 // n)  # bounded memory: at most ~4M indices per block
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        idx = rng.integers(0, n, (b, n))
        ratios[start : start + b] = _ratio(model[idx].sum(1), popular[idx].sum(1))
    alpha = (1 - confidence) / 2
    # "lower"/"higher" pick resampled values (no interpolation between +inf and a finite ratio).
    low = float(np.quantile(ratios, alpha, method="lower"))
    high = float(np.quantile(ratios, 1 - alpha, method="higher"))
    out.update(lift=_finite(point), low=_finite(low), high=_finite(high),
               verdict=BETTER if low > 1.0 else NOT_BETTER)
    return out


def _finite(x: float) -> float | None:
    """JSON has no infinity: an unbounded lift (popular scored 0) is reported as null."""
    return round(x, 4) if np.isfinite(x) else None


def lift_report(model: dict[str, np.ndarray], popular: dict[str, np.ndarray], names: Sequence[str],
                min_users: int = MIN_SLICE_USERS, seed: int = SEED) -> dict[str, dict[str, Any]]:
    """:func:`bootstrap_lift` for each of ``names`` (a slice neither system ranked: no users)."""
    none = np.zeros(0)
    return {name: bootstrap_lift(model.get(name, none), popular.get(name, none), min_users=min_users, seed=seed)
            for name in names}


def ratio_text(x: float | None) -> str:
    """A lift for people: two decimals; None (popular scored 0) is unbounded."""
    return "inf" if x is None else f"{x:.2f}"


def describe(entry: dict[str, Any] | None) -> tuple[str, str]:
    """(lift with its interval, verdict) as the terminal table shows them."""
    if not entry:
        return "-", ""
    if entry["verdict"] == TOO_FEW:
        return "-", f"too few users (< {MIN_SLICE_USERS})" if entry["n_users"] else "no users"
    text = f"{ratio_text(entry['lift'])}x [{ratio_text(entry['low'])}, {ratio_text(entry['high'])}]"
    return text, ("better" if entry["verdict"] == BETTER else "NOT BETTER than popular")
