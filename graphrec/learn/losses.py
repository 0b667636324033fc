"""Ranking losses for link prediction: BPR and a fused sampled softmax.

Sampled softmax scores every positive of a batch against ``N`` shared negatives: a ``[B, N]``
logit matrix (16384 x 4096 on Gowalla). Through autograd that matrix is written and read about a
dozen times per step (scale, concat, log-softmax, its backward, ...), which costs several times
the three matrix products themselves on a CPU. :func:`sampled_softmax` is one autograd function
that writes the logits into one ``[B, N]`` buffer, exponentiates it in place and derives the
gradient from it with one more buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def bpr(pos: Tensor, neg: Tensor) -> Tensor:
    """Bayesian personalised ranking: mean of ``-log sigmoid(pos - neg)``."""
    return F.softplus(neg - pos).mean()


class _SampledSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, users: Tensor, items: Tensor, negatives: Tensor, pos_bias: Tensor,  # type: ignore[override]
                neg_bias: Tensor, scale: float) -> Tensor:
        pos = (users * items).sum(1).mul_(scale).add_(pos_bias)
        exp = torch.addmm(neg_bias[None, :], users, negatives.T, alpha=scale)  # logits of negatives
        top = torch.maximum(exp.amax(1), pos)  # for a stable exp
        exp.sub_(top[:, None]).exp_()
        total = exp.sum(1).add_((pos - top).exp())
        loss = (total.log() + top - pos).mean()
        ctx.save_for_backward(users, items, negatives, exp, total, pos, top)
        ctx.scale = scale
        return loss

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        users, items, negatives, exp, total, pos, top = ctx.saved_tensors
        scale = ctx.scale
        weight = grad / users.shape[0]
        # d loss / d logit = softmax probability (minus 1 for the positive), averaged over the batch.
        g_neg = (exp / total[:, None]).mul_(weight)  # not in place: backward may run again (retain_graph)
        g_pos = ((pos - top).exp() / total - 1) * weight
        g_users = torch.addmm(items * g_pos[:, None], g_neg, negatives).mul_(scale)
        g_items = users * (g_pos * scale)[:, None]
        g_negatives = (g_neg.T @ users).mul_(scale)
        return g_users, g_items, g_negatives, g_pos, g_neg.sum(0), None


def sampled_softmax(users: Tensor, items: Tensor, negatives: Tensor, scale: float,
                    pos_bias: Tensor | None = None, neg_bias: Tensor | None = None) -> Tensor:
    """Mean cross-entropy of each positive against the shared negatives.

    ``users``/``items``: ``[B, d]`` rows of the positive pairs; ``negatives``: ``[N, d]``.
    Logit of (u, x) = ``scale * <u, x> + bias_x``; ``pos_bias`` is ``[B]``, ``neg_bias`` ``[N]``.
    Equal to ``F.cross_entropy`` over ``[pos | negatives]`` logits with target 0.
    """
    if pos_bias is None:
        pos_bias = users.new_zeros(users.shape[0])
    if neg_bias is None:
        neg_bias = users.new_zeros(negatives.shape[0])
    return _SampledSoftmax.apply(users, items, negatives, pos_bias, neg_bias, float(scale))
