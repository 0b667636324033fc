"""``mf_bpr``: matrix factorisation trained with BPR (LightGCN with no propagation layer),
early-stopped on the same validation part as the models, ranked by the same harness."""

from __future__ import annotations

from typing import Any, Callable, Sequence

from graphrec.learn.config import TrainConfig
from graphrec.learn.evaluate import EvalContext, artifact_from_embeddings, evaluate_artifact
from graphrec.learn.train import train

MF_BPR_BUDGET_S = 120.0  # the MF-BPR baseline's training time at most


def mf_bpr_config(time_budget_s: float = MF_BPR_BUDGET_S, seed: int = 2024) -> TrainConfig:
    """The MF-BPR baseline's training configuration (also what its progress report measures against)."""
    return TrainConfig(model="lightgcn", layers=0, loss="bpr", lr=0.005, batch_size=2048, reg=1e-4,
                       epochs=300, patience=5, eval_every=2, time_budget_s=time_budget_s, seed=seed)


def mf_bpr_baseline(ctx: EvalContext, ks: Sequence[int], time_budget_s: float = MF_BPR_BUDGET_S,
                    seed: int = 2024,
                    on_epoch: Callable[[dict[str, float]], None] | None = None) -> dict[str, Any]:
    """The ``mf_bpr`` baseline's report: trained on ``ctx.data``, then every slice."""
    result = train(ctx.data, mf_bpr_config(time_budget_s, seed), on_epoch)
    art = artifact_from_embeddings(ctx.data, result.user_emb.numpy(), result.item_emb.numpy(), "mf_bpr")
    out = evaluate_artifact(art, ctx, ks)
    out["train_seconds"] = round(result.train_seconds, 1)
    return out
