"""``graphrec evaluate``'s report: a model artifact and its baselines under one protocol (the harness,
:mod:`graphrec.learn.evaluate`), the lift over most-popular per slice, and the plot.

Baselines run through the same code: ``popular`` (training counts), ``itemknn`` (item-item cosine
over the known user-item matrix, all neighbours), ``mf_bpr`` (matrix factorisation with BPR, i.e.
LightGCN with zero layers, early-stopped on the same validation part) and, on request,
``gds_fastrp`` (:mod:`graphrec.learn.baselines`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from graphrec.artifact import Artifact
from graphrec.coldstart import DEFAULT_WEIGHTS
from graphrec.learn.baselines import BASELINES, DEFAULT_BASELINES
from graphrec.learn.baselines.mf_bpr import MF_BPR_BUDGET_S
from graphrec.learn.evaluate import ZERO_SAMPLE, EvalContext, evaluate_artifact, popular_baseline
from graphrec.learn.interactions import Interactions
from graphrec.learn.lift import LIFT_K, MIN_SLICE_USERS, RESAMPLES, lift_report

SLICES = ("cold_users", "zero_interaction_users", "cold_products")
# Cut-offs --plot draws (evaluate computes them in the same pass as the requested ones).
PLOT_KS = (1, 5, 10, 20, 50, 100)
# A slice with fewer test users than this is noise (one user moves Recall@K by 1/n): left off the
# plot, and its lift over popular is marked "too few users" (graphrec.learn.lift), one threshold for both.
MIN_PLOT_USERS = MIN_SLICE_USERS


LIFT_METHOD = {
    "metric": f"recall@{LIFT_K}", "lift": "mean(model) / mean(popular) over the slice's users",
    "interval": f"95% paired percentile bootstrap over users, {RESAMPLES} resamples, numpy, fixed seed",
    "not_better": "the interval's lower end is at most 1",
    "too_few_users": f"fewer than {MIN_SLICE_USERS} users: no lift reported",
}


def evaluate(artifact: Artifact, data: Interactions, ks: Sequence[int] = (10, 20),
             baselines: Sequence[str] = DEFAULT_BASELINES, zero_sample: int = ZERO_SAMPLE,
             seed: int = 2024, progress: Callable[[str], None] | None = None,
             on_epoch: Callable[[dict[str, float]], None] | None = None,
             max_users: int | None = None) -> dict[str, Any]:
    """The JSON report of ``graphrec evaluate``.

    ``progress`` hears one line before each step (the model, then each baseline); ``on_epoch`` is
    passed to the MF-BPR baseline's training loop."""
    say = progress or (lambda _message: None)
    t0 = time.perf_counter()
    say("preparing the test users and slices")
    ctx = EvalContext.build(data, zero_sample, seed, max_users)
    total = int(torch.unique(data.test[0]).numel())
    sampled = int(ctx.test_users.numel()) < total
    say(f"{artifact.model}: " + (f"a random sample of {int(ctx.test_users.numel()):,} of the {total:,} test users"
                                 if sampled else f"all {total:,} test users") + ", then the slices "
        f"(cold users {int(ctx.cold_users.numel())}, zero-interaction users {int(ctx.zero_users.numel())}, "
        f"cold products)")
    model_per_user: dict[str, np.ndarray] = {}
    popular_per_user: dict[str, np.ndarray] = {}
    report = evaluate_artifact(artifact, ctx, ks, model_per_user)
    report["model"] = artifact.model
    report["coldstart"] = {"weights": {**DEFAULT_WEIGHTS, **artifact.coldstart},
                           "validation": artifact.coldstart_validation}
    report["circle"] = artifact.manifest.get("circle", {"weight": 0.0, "reason": "the artifact predates the term"})
    report["snapshot_id"] = data.snapshot_id
    report["n_test_users"] = int(ctx.test_users.numel())
    if sampled:  # said in the report itself: a sample's metrics are estimates
        report["test_users_sampled"] = {"sample": int(ctx.test_users.numel()), "of": total, "seed": seed}
    report["slice_sizes"] = {"cold_users": int(ctx.cold_users.numel()),
                             "zero_interaction_users": int(ctx.zero_users.numel()),
                             "cold_products": int(ctx.cold_items[data.test[1]].sum())}
    report["eval_seconds"] = round(time.perf_counter() - t0, 2)
    report["baselines"] = {}
    for name in baselines:
        t1 = time.perf_counter()
        if name == "mf_bpr":
            say(f"baseline mf_bpr: training (early stopping, at most {MF_BPR_BUDGET_S:.0f} s), then the slices")
            report["baselines"][name] = BASELINES[name](ctx, ks, seed=seed, on_epoch=on_epoch)
        elif name == "popular":
            say(f"baseline {name}: all test users and the slices")
            report["baselines"][name] = popular_baseline(ctx, ks, popular_per_user)
        else:
            say(f"baseline {name}: all test users and the slices")
            report["baselines"][name] = BASELINES[name](ctx, ks)
        report["baselines"][name]["seconds"] = round(time.perf_counter() - t1, 2)
    if not popular_per_user:  # the lift needs popular's per-user recall even when not reported
        popular_baseline(ctx, ks, popular_per_user)
    report["lift_over_popular"] = lift_report(model_per_user, popular_per_user, ("overall", *SLICES), seed=seed)
    report["lift_method"] = LIFT_METHOD
    return report


def select_ks(report: dict[str, Any], ks: Sequence[int]) -> dict[str, Any]:
    """``report`` with only the metrics at ``ks`` (evaluate may have computed more for the plot)."""
    keep = {str(k) for k in ks}

    def metrics(m: dict[str, Any]) -> dict[str, Any]:
        return {key: v for key, v in m.items() if "@" not in key or key.split("@", 1)[1] in keep}

    def system(block: dict[str, Any]) -> dict[str, Any]:
        out = dict(block)
        out["overall"] = metrics(block["overall"])
        out["slices"] = {name: metrics(m) for name, m in block["slices"].items()}
        return out

    out = system(report)
    out["baselines"] = {name: system(b) for name, b in report.get("baselines", {}).items()}
    return out


# -- plot -------------------------------------------------------------------------------------------

@dataclass
class Curves:
    """What --plot draws: one line per system overall and per slice with enough users."""

    lines: dict[str, dict[str, float]]  # "lightgcn", "lightgcn: cold_users", ... -> metrics (with n_users)
    left_out: dict[str, int]  # slices too small to read (or empty) -> their number of users
    title: str = ""


def curve_lines(report: dict[str, Any], min_users: int = MIN_PLOT_USERS) -> Curves:
    """The model overall and in every slice, each baseline overall and in the zero-interaction slice
    (the cold-start comparison that matters); slices under ``min_users`` users are left out, by name."""
    model = report["model"]
    lines: dict[str, dict[str, float]] = {}
    left_out: dict[str, int] = {}
    systems = [(model, report, SLICES)] + [(name, b, ("zero_interaction_users",))
                                           for name, b in report.get("baselines", {}).items()]
    for name, block, slices in systems:
        lines[name] = block["overall"]
        for slice_name in slices:
            n = int(block["slices"].get(slice_name, {}).get("n_users", 0))
            if n >= min_users:
                lines[f"{name}: {slice_name}"] = block["slices"][slice_name]
            elif name == model:  # the baselines' slices hold the same users: named once
                left_out[slice_name] = n
    n_test = int(report.get("n_test_users", lines[model].get("n_users", 0)))
    title = f"{model} on snapshot {report.get('snapshot_id', '?')}: {n_test:,} test users"
    return Curves(lines, left_out, title)


def curves(artifact: Artifact, data: Interactions, ks: Sequence[int] = PLOT_KS,
           baselines: Sequence[str] = DEFAULT_BASELINES, zero_sample: int = ZERO_SAMPLE,
           seed: int = 2024, min_users: int = MIN_PLOT_USERS) -> Curves:
    """Metrics at many k for the model, its slices and the baselines: what --plot draws."""
    return curve_lines(evaluate(artifact, data, ks, baselines, zero_sample, seed), min_users)


# Line style per slice, marker per system: curves that run close stay told apart.
_SLICE_STYLE = {"": "-", "cold_users": "--", "zero_interaction_users": ":", "cold_products": "-."}
_MARKERS = "osD^vP*X"


def plot(curve_data: Curves | dict[str, dict[str, float]], path: str | Path,
         ks: Sequence[int] = PLOT_KS) -> Path:
    """Recall@K and NDCG@K curves to a PNG (see :func:`figure`)."""
    import matplotlib.pyplot as plt

    fig = figure(curve_data, ks)
    path = Path(path)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def figure(curve_data: Curves | dict[str, dict[str, float]], ks: Sequence[int] = PLOT_KS):  # noqa: ANN201
    """The curves' figure: colour = system, line style and marker = slice, sizes in the labels, the
    legend beside the axes (never over the data); identical curves share one line and one label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = curve_data if isinstance(curve_data, Curves) else Curves(dict(curve_data), {})
    # Lines that coincide exactly (ItemKNN falls back to popularity for users without history)
    # would hide one another: draw them once, naming both.
    merged: dict[tuple, list[str]] = {}
    for name, m in data.lines.items():
        key = tuple(round(float(m[f"{metric}@{k}"]), 12) for metric in ("recall", "ndcg") for k in ks)
        merged.setdefault((name.partition(": ")[2], key), []).append(name)
    systems = list(dict.fromkeys(name.partition(": ")[0] for name in data.lines))
    colours = {s: plt.get_cmap("tab10")(i % 10) for i, s in enumerate(systems)}
    markers = {s: _MARKERS[i % len(_MARKERS)] for i, s in enumerate(systems)}

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for (slice_name, _), names in merged.items():
        m = data.lines[names[0]]
        system = names[0].partition(": ")[0]
        style = _SLICE_STYLE.get(slice_name, "-")
        who = " = ".join(n.partition(": ")[0] for n in names)
        label = f"{who}{': ' + slice_name.replace('_', ' ') if slice_name else ''} (n={int(m.get('n_users', 0)):,})"
        for ax, metric in zip(axes, ("recall", "ndcg")):
            ax.plot(ks, [m[f"{metric}@{k}"] for k in ks], linestyle=style, marker=markers[system], ms=4, lw=1.4,
                    color=colours[system], alpha=0.9, label=label if ax is axes[0] else None)
    for ax, metric in zip(axes, ("Recall@K", "NDCG@K")):
        ax.set_xscale("log")
        ax.set_xticks(list(ks), [str(k) for k in ks])
        ax.set_xlabel("K")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    fig.suptitle(data.title or "Recall@K and NDCG@K")
    notes = [f"left out (< {MIN_PLOT_USERS} users): " + ", ".join(
        f"{name.replace('_', ' ')} (n={n})" for name, n in data.left_out.items())] if data.left_out else []
    fig.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False,
               title="\n".join(notes) or None, title_fontsize=7)
    fig.tight_layout()
    return fig
