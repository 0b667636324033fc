"""``graphrec evaluate``: a model artifact and its baselines under one protocol, with cold-start slices.

Overall metrics follow LightGCN/SocialLGN (see :mod:`graphrec.ranking`): every test user, every
product ranked, the user's known (train + valid) products masked. Slices:

* ``cold_users``: test users with at most 5 known interactions, scored as usual.
* ``zero_interaction_users``: a seeded sample of test users who have friends (or follows, or
  followers); at scoring time all their purchases are hidden: they are embedded by
  :func:`graphrec.coldstart.fold_in_user` from their social neighbours only, with the artifact's
  validated weights (exactly what the API does for a new user), and nothing is masked (the
  recommender does not know what they bought). Scored on their test purchases.
* ``cold_products``: test interactions with products that have no known interaction; those products
  are embedded by :func:`graphrec.coldstart.fold_in_product` from their categories.

Baselines run through the same code: ``popular`` (training counts), ``itemknn`` (item-item cosine
over the known user-item matrix, all neighbours) and ``mf_bpr`` (matrix factorisation with BPR,
i.e. LightGCN with zero layers, early-stopped on the same validation part).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor

from graphrec.artifact import Artifact
from graphrec.coldstart import DEFAULT_WEIGHTS, fold_in_product, fold_in_user
from graphrec.coldstart_validation import Neighbours
from graphrec.interactions import Interactions
from graphrec.lift import LIFT_K, MIN_SLICE_USERS, RESAMPLES, lift_report, score_users
from graphrec.ranking import ScoreFn, UserItems

if TYPE_CHECKING:
    from graphrec.train import TrainConfig

COLD_USER_MAX = 5
ZERO_SAMPLE = 300
MF_BPR_BUDGET_S = 120.0  # the MF-BPR baseline's training time at most


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


def artifact_from_embeddings(data: Interactions, user_emb: np.ndarray, item_emb: np.ndarray,
                             model: str = "embeddings") -> Artifact:
    """An in-memory artifact over ``data``'s ids (for baselines and tests): same fold-in code path."""
    trained = (data.popularity() > 0).numpy()
    cats = data.item_categories()
    return Artifact(
        path=Path("."), manifest={"model": model, "snapshot_id": data.snapshot_id, "format_version": 1},
        user_ids=data.user_ids or [str(i) for i in range(data.num_users)],
        product_ids=data.item_ids or [str(i) for i in range(data.num_items)],
        category_ids=data.category_ids or [str(i) for i in range(data.num_categories)],
        user_emb=np.asarray(user_emb, np.float32), product_emb=np.asarray(item_emb, np.float32),
        category_emb=category_means(np.asarray(item_emb), cats, data.num_categories, trained),
        product_categories=cats, popularity=data.popularity().numpy())


@dataclass
class EvalContext:
    """Everything the slices need, computed once per data set."""

    data: Interactions
    known: UserItems  # train + valid: masked at ranking time
    test: UserItems
    test_users: Tensor
    cold_users: Tensor
    zero_users: Tensor
    friends: list[list[int]]  # every social neighbour, either direction
    cold_items: Tensor  # bool [num_items]: no known interaction
    cold_test: UserItems  # test pairs whose product is cold
    neighbours: Neighbours  # friends, follows and followers apart: the fold-in weighs them apart

    @classmethod
    def build(cls, data: Interactions, zero_sample: int = ZERO_SAMPLE, seed: int = 2024) -> "EvalContext":
        known_pairs = torch.cat([data.train, data.valid], 1)
        known = UserItems.from_pairs(known_pairs[0], known_pairs[1], data.num_users)
        test = UserItems.from_pairs(data.test[0], data.test[1], data.num_users)
        test_users = torch.nonzero(test.counts > 0).flatten()
        cold_users = test_users[known.counts[test_users] <= COLD_USER_MAX]
        neighbours = Neighbours.of(data)
        friends = [neighbours.union(u) for u in range(data.num_users)]
        with_friends = torch.tensor([u for u in test_users.tolist() if friends[u]], dtype=torch.long)
        g = torch.Generator().manual_seed(seed)
        pick = torch.randperm(with_friends.numel(), generator=g)[:zero_sample]
        zero_users = with_friends[pick].sort().values
        cold_items = torch.bincount(known_pairs[1], minlength=data.num_items) == 0
        mask = cold_items[data.test[1]]
        cold_test = UserItems.from_pairs(data.test[0, mask], data.test[1, mask], data.num_users)
        return cls(data, known, test, test_users, cold_users, zero_users, friends, cold_items, cold_test,
                   neighbours)


@dataclass
class SliceRun:
    """One ranking of one slice: the scorer, what to mask (None: nothing), what to find, for whom."""

    score: ScoreFn
    known: UserItems | None
    held_out: UserItems
    users: Tensor


def run_slices(runs: dict[str, SliceRun | None], ctx: EvalContext, ks: Sequence[int],
               per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """``{"overall": metrics, "slices": {name: metrics}}``; ``per_user`` (if given) receives each
    slice's per-user Recall@20 (the lift's bootstrap, :mod:`graphrec.lift`), same ranking pass."""
    out: dict[str, Any] = {"overall": {}, "slices": {}}
    for name, run in runs.items():
        if run is None or not run.users.numel():
            metrics: dict[str, Any] = {"n_users": 0}
        else:
            metrics, values = score_users(run.score, run.known, run.held_out, ctx.data.num_items,
                                          tuple(ks), run.users)
            if per_user is not None:
                per_user[name] = values
        if name == "overall":
            out["overall"] = metrics
        else:
            out["slices"][name] = metrics
    return out


def artifact_runs(artifact: Artifact, ctx: EvalContext) -> dict[str, SliceRun | None]:
    """The rankings of an artifact (real or in-memory): all test users, then each slice."""
    data = ctx.data
    user_rows = _rows(artifact.user_index, data.user_ids, data.num_users)
    item_rows = _rows(artifact.product_index, data.item_ids, data.num_items)
    U = torch.from_numpy(np.ascontiguousarray(artifact.user_emb[user_rows]))
    P = torch.from_numpy(np.ascontiguousarray(artifact.product_emb[item_rows]))

    def score(rows: Tensor) -> Tensor:
        return U[rows] @ P.T

    runs: dict[str, SliceRun | None] = {"overall": SliceRun(score, ctx.known, ctx.test, ctx.test_users),
                                        "cold_users": SliceRun(score, ctx.known, ctx.test, ctx.cold_users)}

    # Zero-interaction users: social-only fold-in (friends, follows, followers), with the artifact's
    # validated weights, the same function the API calls.
    ids = data.user_ids or [str(i) for i in range(data.num_users)]
    zero = ctx.zero_users.tolist()
    Z = torch.from_numpy(np.stack([fold_in_user(artifact, **ctx.neighbours.fold_in_args(u, ids))
                                   for u in zero]) if zero else np.zeros((0, U.shape[1]), np.float32))
    pos = {u: k for k, u in enumerate(zero)}
    zero_score = lambda rows: Z[torch.tensor([pos[int(r)] for r in rows])] @ P.T  # noqa: E731
    runs["zero_interaction_users"] = SliceRun(zero_score, None, ctx.test, ctx.zero_users) if zero else None

    # Cold products: replace their (untrained) embeddings by the category fold-in.
    cold = torch.nonzero(ctx.cold_items).flatten().tolist()
    runs["cold_products"] = None
    if cold and ctx.cold_test.indices.numel():
        cats = data.item_categories()
        cat_ids = data.category_ids or [str(i) for i in range(data.num_categories)]
        P_cold = P.clone()
        P_cold[cold] = torch.from_numpy(np.stack(
            [fold_in_product(artifact, categories=[cat_ids[c] for c in cats[p]]) for p in cold]))
        users = torch.nonzero(ctx.cold_test.counts > 0).flatten()
        runs["cold_products"] = SliceRun(lambda rows: U[rows] @ P_cold.T, ctx.known, ctx.cold_test, users)
    return runs


def evaluate_artifact(artifact: Artifact, ctx: EvalContext, ks: Sequence[int] = (10, 20),
                      per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Overall and slice metrics of an artifact (real or in-memory) on ``ctx``'s test pairs."""
    return run_slices(artifact_runs(artifact, ctx), ctx, ks, per_user)


def _rows(index: dict[str, int], ids: list[str], n: int) -> np.ndarray:
    if not ids:
        return np.arange(n)
    missing = [i for i in ids if i not in index]
    if missing:
        raise ValueError(f"{len(missing)} ids of the snapshot are not in the artifact (e.g. {missing[0]!r}); "
                         "evaluate an artifact with the snapshot it was trained on")
    return np.fromiter((index[i] for i in ids), np.int64, len(ids))


# -- baselines --------------------------------------------------------------------------------------

def _score_metrics(score: ScoreFn, ctx: EvalContext, ks: Sequence[int], zero_score: ScoreFn,
                   per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    cold_product_users = torch.nonzero(ctx.cold_test.counts > 0).flatten()
    runs: dict[str, SliceRun | None] = {
        "overall": SliceRun(score, ctx.known, ctx.test, ctx.test_users),
        "cold_users": SliceRun(score, ctx.known, ctx.test, ctx.cold_users),
        "zero_interaction_users": SliceRun(zero_score, None, ctx.test, ctx.zero_users),
        "cold_products": SliceRun(score, ctx.known, ctx.cold_test, cold_product_users)}
    return run_slices(runs, ctx, ks, per_user)


def popular_baseline(ctx: EvalContext, ks: Sequence[int],
                     per_user: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    pop = torch.bincount(ctx.data.train[1], minlength=ctx.data.num_items).float()
    score = lambda rows: pop.expand(len(rows), -1).clone()  # noqa: E731
    return _score_metrics(score, ctx, ks, score, per_user)


def itemknn_scorer(d: Interactions) -> ScoreFn:
    """score(u, i) = sum over u's known items j of cos(i, j), cosine over the known user-item matrix.

    Computed as ((R_u D^-1/2) R^T)(R D^-1/2) per block of users, never materialising item x item.
    """
    known = torch.cat([d.train, d.valid], 1).numpy()
    R = sp.csr_matrix((np.ones(known.shape[1], np.float32), (known[0], known[1])),
                      shape=(d.num_users, d.num_items))
    inv = 1.0 / np.sqrt(np.maximum(np.asarray(R.sum(0)).ravel(), 1.0))
    Rn = (R @ sp.diags(inv.astype(np.float32))).tocsr()
    RT = R.T.tocsr()

    def score(rows: Tensor) -> Tensor:
        a = (Rn[rows.numpy()] @ RT).tocsr()  # [B, users]: sum_j R_uj R_vj / sqrt(d_j)
        return torch.from_numpy(np.asarray((a @ Rn).todense(), dtype=np.float32))  # x R_vi / sqrt(d_i)

    return score


def itemknn_baseline(ctx: EvalContext, ks: Sequence[int]) -> dict[str, Any]:
    """ItemKNN (cosine, all neighbours); users with no history (zero-interaction slice) fall back to
    popularity."""
    pop = torch.bincount(ctx.data.train[1], minlength=ctx.data.num_items).float()
    return _score_metrics(itemknn_scorer(ctx.data), ctx, ks, lambda rows: pop.expand(len(rows), -1).clone())


def mf_bpr_baseline(ctx: EvalContext, ks: Sequence[int], time_budget_s: float = MF_BPR_BUDGET_S,
                    seed: int = 2024,
                    on_epoch: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """MF trained with BPR (LightGCN with no propagation layer), early-stopped on validation."""
    from graphrec.train import train

    result = train(ctx.data, mf_bpr_config(time_budget_s, seed), on_epoch)
    art = artifact_from_embeddings(ctx.data, result.user_emb.numpy(), result.item_emb.numpy(), "mf_bpr")
    out = evaluate_artifact(art, ctx, ks)
    out["train_seconds"] = round(result.train_seconds, 1)
    return out



def mf_bpr_config(time_budget_s: float = MF_BPR_BUDGET_S, seed: int = 2024) -> TrainConfig:
    """The MF-BPR baseline's training configuration (also what its progress report measures against)."""
    from graphrec.train import TrainConfig

    return TrainConfig(model="lightgcn", layers=0, loss="bpr", lr=0.005, batch_size=2048, reg=1e-4,
                       epochs=300, patience=5, eval_every=2, time_budget_s=time_budget_s, seed=seed)


def gds_fastrp_baseline(ctx: EvalContext, ks: Sequence[int]) -> dict[str, Any]:
    """FastRP computed in Neo4j by GDS (:mod:`graphrec.baselines.gds`): needs the graph, so never by default."""
    from graphrec.baselines.gds import gds_fastrp_baseline as run

    return run(ctx, ks)


BASELINES: dict[str, Callable[..., dict[str, Any]]] = {
    "popular": popular_baseline,
    "itemknn": itemknn_baseline,
    "mf_bpr": mf_bpr_baseline,
    "gds_fastrp": gds_fastrp_baseline,
}
DEFAULT_BASELINES = ("popular", "itemknn", "mf_bpr")
SLICES = ("cold_users", "zero_interaction_users", "cold_products")
# Cut-offs --plot draws (evaluate computes them in the same pass as the requested ones).
PLOT_KS = (1, 5, 10, 20, 50, 100)
# A slice with fewer test users than this is noise (one user moves Recall@K by 1/n): left off the
# plot, and its lift over popular is marked "too few users" (graphrec.lift), one threshold for both.
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
             on_epoch: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """The JSON report of ``graphrec evaluate``.

    ``progress`` hears one line before each step (the model, then each baseline); ``on_epoch`` is
    passed to the MF-BPR baseline's training loop."""
    say = progress or (lambda _message: None)
    t0 = time.perf_counter()
    say("preparing the test users and slices")
    ctx = EvalContext.build(data, zero_sample, seed)
    say(f"{artifact.model}: all {int(ctx.test_users.numel())} test users, then the slices "
        f"(cold users {int(ctx.cold_users.numel())}, zero-interaction users {int(ctx.zero_users.numel())}, "
        f"cold products)")
    model_per_user: dict[str, np.ndarray] = {}
    popular_per_user: dict[str, np.ndarray] = {}
    report = evaluate_artifact(artifact, ctx, ks, model_per_user)
    report["model"] = artifact.model
    report["coldstart"] = {"weights": {**DEFAULT_WEIGHTS, **artifact.coldstart},
                           "validation": artifact.coldstart_validation}
    report["snapshot_id"] = data.snapshot_id
    report["n_test_users"] = int(ctx.test_users.numel())
    report["slice_sizes"] = {"cold_users": int(ctx.cold_users.numel()),
                             "zero_interaction_users": int(ctx.zero_users.numel()),
                             "cold_products": int(ctx.cold_items[data.test[1]].sum())}
    report["eval_seconds"] = round(time.perf_counter() - t0, 2)
    report["baselines"] = {}
    for name in baselines:
        t1 = time.perf_counter()
        if name == "mf_bpr":
            say(f"baseline mf_bpr: training (early stopping, at most {MF_BPR_BUDGET_S:.0f} s), then the slices")
            report["baselines"][name] = mf_bpr_baseline(ctx, ks, seed=seed, on_epoch=on_epoch)
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
