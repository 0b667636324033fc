"""The fused sampled softmax equals cross-entropy over [positive | negatives], values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from graphrec.learn.losses import bpr, sampled_softmax


def reference(users, items, negatives, scale, pos_bias, neg_bias):
    logits = torch.cat([((users * items).sum(1) * scale + pos_bias)[:, None],
                        users @ negatives.T * scale + neg_bias[None, :]], 1)
    return F.cross_entropy(logits, torch.zeros(len(users), dtype=torch.long))


@pytest.mark.parametrize("scale,spread", [(1.0, 1.0), (1 / 0.15, 1.0), (1 / 0.05, 10.0)])
def test_sampled_softmax_matches_cross_entropy(scale, spread):
    g = torch.Generator().manual_seed(3)
    tensors = [torch.randn(*shape, generator=g, dtype=torch.double) * spread
               for shape in ((37, 8), (37, 8), (23, 8), (37,), (23,))]
    for t in tensors:
        t.requires_grad_(True)
    fused = sampled_softmax(*tensors[:3], scale, *tensors[3:])
    ref = reference(*tensors[:3], scale, *tensors[3:])
    assert torch.isfinite(fused)
    torch.testing.assert_close(fused, ref)
    # An upstream gradient other than 1 must scale every input gradient.
    for got, want in zip(torch.autograd.grad(fused * 2.5, tensors), torch.autograd.grad(ref * 2.5, tensors)):
        torch.testing.assert_close(got, want)


def test_sampled_softmax_without_bias_and_gradcheck():
    g = torch.Generator().manual_seed(4)
    u, i, n = (torch.randn(*s, generator=g, dtype=torch.double, requires_grad=True) for s in ((5, 3), (5, 3), (4, 3)))
    zeros_b, zeros_n = torch.zeros(5, dtype=torch.double), torch.zeros(4, dtype=torch.double)
    torch.testing.assert_close(sampled_softmax(u, i, n, 2.0), reference(u, i, n, 2.0, zeros_b, zeros_n))
    assert torch.autograd.gradcheck(lambda a, b, c: sampled_softmax(a, b, c, 2.0), (u, i, n))


def test_bpr_prefers_higher_positive():
    assert bpr(torch.tensor([3.0]), torch.tensor([0.0])) < bpr(torch.tensor([0.0]), torch.tensor([3.0]))
    torch.testing.assert_close(bpr(torch.tensor([1.0]), torch.tensor([1.0])), torch.log(torch.tensor(2.0)))
