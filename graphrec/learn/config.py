"""How a training run is configured: :class:`TrainConfig`, and the defaults ``graphrec train`` uses,
which follow the graph's size.

Kept apart from the loop (:mod:`graphrec.learn.train`) because the models read it too: a model
imports its configuration, never the loop that trains it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    model: str = "lightgcn"
    dim: int = 64
    layers: int = 3
    epochs: int = 200
    batch_size: int = 2048
    lr: float = 0.005
    loss: str = "softmax"
    negatives: int = 512
    # "edge": batches are shuffled training pairs; "user": users drawn uniformly, then one of their
    # items (LightGCN's sampler): weighs users equally, like the per-user averaged metrics do.
    sampling: str = "edge"
    temperature: float = 0.1
    cosine: bool = True  # softmax over cosine similarities (True) or raw dot products
    # Learned per-item score offset: cosine scores alone cannot express popularity. Exported as an
    # extra embedding column (user side 1, item side bias), so scoring stays a plain dot product.
    item_bias: bool = False
    reg: float = 1e-4  # L2 on ego embeddings (bpr) / weight decay-like term (softmax)
    social_weight: float = 0.5
    init_std: float = 0.1
    init: str = "normal"  # "spectral": top singular vectors of the training graph (LightGCN family)
    eval_every: int = 1
    patience: int = 10  # evaluations without improvement before stopping
    # On an evaluation without improvement, multiply the learning rate by this (1.0: constant lr).
    # Large steps find the plateau fast; smaller ones then settle into it.
    lr_decay: float = 1.0
    # "cosine": anneal the learning rate to 0 over ``epochs`` (step by step; or over the time
    # budget, if that runs out first), so the last epochs settle instead of hovering around the
    # plateau at full step size. "constant": no schedule.
    lr_schedule: str = "constant"
    min_delta: float = 1e-4
    seed: int = 2024
    time_budget_s: float | None = None  # stop after this much training time (best epoch kept)
    target_metric: str = "ndcg@20"
    # "full": every step propagates the whole training graph. "sampled": a step runs the layers on
    # the sampled k-hop subgraph around its batch only (graphrec.learn.minibatch), ``fanout``
    # neighbours per node and layer (None: 10 each); lightgcn and sage.
    propagation: str = "full"
    fanout: list[int] | None = None
    device: str = "cpu"  # sweeps only; every default and reported number is CPU
    extra: dict[str, Any] = field(default_factory=dict)  # model-specific knobs (sage)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# Defaults follow the graph's size continuously (docs/learning.md, "Defaults that scale"): no
# setting jumps at an interaction count. They were tuned at two anchors, Last.fm (~67k training
# pairs) and Gowalla (~790k), and move between them on a log scale of the training pairs:
# ``graph_scale`` is 0 up to the small anchor, 1 from the large one up. Bigger graphs get bigger
# batches (each step propagates the whole graph, so larger batches amortise it), more negatives (a
# more informative gradient per expensive step), a larger learning rate and a softer temperature.
# Every run has the same number of optimizer steps spread over however many epochs that takes
# (the cosine schedule anneals over them) and a time budget that grows with the pairs; both were
# sized on this 2-core machine. The same choices at every size: the spectral start (the graph's
# dominant directions from step 0), the learned item bias (cosine scores cannot express
# popularity) and the cosine schedule (the annealed end settles into the plateau).
SMALL_PAIRS, LARGE_PAIRS = 60_000, 790_000
SCALED_RANGES: dict[str, tuple[float, float]] = {  # value at graph_scale 0 and at 1 (geometric)
    "batch_size": (2048, 16384), "negatives": (1024, 4096), "lr": (0.005, 0.01)}
TEMPERATURE = (0.1, 0.15)  # linear in graph_scale
TRAIN_STEPS = 1470  # optimizer steps per run (Gowalla: 30 epochs of 49 batches)
VALIDATIONS = 15  # validation passes per run, about: eval_every = epochs / VALIDATIONS
BUDGET_S_PER_PAIR = 1680 / LARGE_PAIRS  # 28 minutes on Gowalla
BUDGET_S = (600.0, 3600.0)  # every run gets at least 10 minutes and, by default, at most an hour
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "lightgcn": {},
    "social": {"social_weight": 2.0},
    "sage": {"layers": 2},
}


def graph_scale(num_train: int) -> float:
    """Where ``num_train`` training pairs sit between the small and the large anchor, in [0, 1]."""
    if num_train <= SMALL_PAIRS:
        return 0.0
    return min(1.0, math.log(num_train / SMALL_PAIRS) / math.log(LARGE_PAIRS / SMALL_PAIRS))


def _round_to(x: float, unit: int) -> int:
    return max(unit, unit * round(x / unit))


def epochs_for(num_train: int, batch_size: int) -> int:
    """Epochs of ``num_train`` pairs in batches of ``batch_size`` that make ``TRAIN_STEPS`` steps."""
    return max(1, round(TRAIN_STEPS / max(1, math.ceil(max(num_train, 1) / batch_size))))


def scaled_defaults(num_train: int) -> dict[str, Any]:
    """The size-dependent settings for a graph of ``num_train`` training pairs (the formula above)."""
    s = graph_scale(num_train)
    geo = {k: lo * (hi / lo) ** s for k, (lo, hi) in SCALED_RANGES.items()}
    batch = _round_to(geo["batch_size"], 256)
    return {
        "batch_size": batch, "negatives": _round_to(geo["negatives"], 128), "lr": round(geo["lr"], 5),
        "temperature": round(TEMPERATURE[0] + (TEMPERATURE[1] - TEMPERATURE[0]) * s, 4),
        "epochs": epochs_for(num_train, batch), "patience": 8,
        "item_bias": True, "init": "spectral", "lr_schedule": "cosine",
        "time_budget_s": 60.0 * round(min(BUDGET_S[1], max(BUDGET_S[0], BUDGET_S_PER_PAIR * num_train)) / 60),
    }


# The one setting that does switch at a size: how a step propagates (docs/scale.md, train row).
# Measured on Gowalla (0.79M pairs, bench/sampled.py, under load): a sampled step at the default
# batch (16,384 pairs, fanout 10 over 3 hops) touches 0.66M of the graph's 1.58M directed edges and
# 70k of its 71k nodes, yet costs 2.6x a full step (the sampling and subgraph indexing outweigh the
# smaller products), so below this size full-graph propagation is faster and exact. 2M is where a
# full-graph run's 1,470 steps no longer fit the one-hour budget on the 2-core reference machine
# (2.1 s a step at 0.79M pairs, linear in the pairs): a judgement from that measurement, not a
# measured crossover (Gowalla is the largest graph run here).
SAMPLED_PAIRS = 2_000_000
SAMPLED_MODELS = ("lightgcn", "sage")


def default_propagation(model: str, num_train: int) -> str:
    """``sampled`` for a large graph (``SAMPLED_PAIRS``) and a model that supports it, else ``full``."""
    return "sampled" if num_train >= SAMPLED_PAIRS and model in SAMPLED_MODELS else "full"


def default_config(model: str, num_train: int = 0, **overrides: Any) -> TrainConfig:
    """The configuration ``graphrec train`` uses: size-scaled defaults, model defaults, then flags."""
    values: dict[str, Any] = {"model": model, **scaled_defaults(num_train), **MODEL_DEFAULTS.get(model, {}),
                              "propagation": default_propagation(model, num_train)}
    values.update(overrides)
    if "batch_size" in overrides and "epochs" not in overrides:  # the same steps in other batches
        values["epochs"] = epochs_for(num_train, values["batch_size"])
    if "eval_every" not in overrides:  # about VALIDATIONS passes over the epochs actually asked for
        values["eval_every"] = max(1, round(values["epochs"] / VALIDATIONS))
    return TrainConfig(**values)
