"""Evaluation on a sample of the test users (``graphrec evaluate --users``, train's summary)."""

from __future__ import annotations

import torch

from graphrec.learn.evaluate import EvalContext
from graphrec.learn.interactions import Interactions
from graphrec.learn.ranking import sample_test_users


def _data(users: int = 500, items: int = 40) -> Interactions:
    g = torch.Generator().manual_seed(1)
    pairs = torch.stack([torch.randint(0, users, (4000,), generator=g), torch.randint(0, items, (4000,), generator=g)])
    pairs = torch.unique(pairs, dim=1)
    return Interactions(users, items, pairs[:, :3000], pairs[:, :0], pairs[:, 3000:])


def test_a_sample_keeps_every_test_pair_of_the_users_drawn_and_nothing_else():
    data = _data()
    everyone = torch.unique(data.test[0])
    assert sample_test_users(data.test, 500, None, 0) is data.test
    assert sample_test_users(data.test, 500, everyone.numel(), 0) is data.test
    sample = sample_test_users(data.test, 500, 50, seed=3)
    drawn = torch.unique(sample[0])
    assert drawn.numel() == 50 and bool(torch.isin(drawn, everyone).all())
    # Every test pair of a drawn user, in order; none of anyone else's.
    assert torch.equal(sample, data.test[:, torch.isin(data.test[0], drawn)])
    assert torch.equal(sample, sample_test_users(data.test, 500, 50, seed=3))  # seeded
    assert not torch.equal(sample, sample_test_users(data.test, 500, 50, seed=4))


def test_the_evaluation_context_takes_its_slices_within_the_sample():
    data = _data()
    ctx = EvalContext.build(data, max_users=60, seed=2)
    assert ctx.test_users.numel() == 60
    assert bool(torch.isin(ctx.cold_users, ctx.test_users).all())
    cold_product_users = torch.nonzero(ctx.cold_test.counts > 0).flatten()
    assert bool(torch.isin(cold_product_users, ctx.test_users).all())
    assert EvalContext.build(data).test_users.numel() == torch.unique(data.test[0]).numel()
