"""The training loop's steps: reported one by one, and cut short by the time budget."""

from __future__ import annotations

import torch

from graphrec.learn.config import TrainConfig
from graphrec.learn.interactions import Interactions
from graphrec.learn.train import Trainer


def _data() -> Interactions:
    g = torch.Generator().manual_seed(0)
    pairs = torch.stack([torch.randint(0, 30, (300,), generator=g), torch.randint(0, 20, (300,), generator=g)])
    return Interactions(30, 20, pairs, pairs[:, :0], pairs[:, :0])


def test_fit_reports_every_step():
    seen: list[tuple[int, int, int]] = []
    Trainer(_data(), TrainConfig(epochs=2, batch_size=128, dim=8, layers=1, negatives=8)).fit(
        on_step=lambda epoch, step, steps, loss: seen.append((epoch, step, steps)))
    assert seen == [(e, s, 3) for e in (1, 2) for s in (1, 2, 3)]


def test_the_time_budget_ends_an_epoch_early():
    """At a million users an epoch is many minutes: the budget must not wait for its end."""
    seen: list[tuple[int, int, int]] = []
    result = Trainer(_data(), TrainConfig(epochs=5, batch_size=16, dim=8, layers=1, negatives=8,
                                          time_budget_s=1e-9)).fit(
        on_step=lambda epoch, step, steps, loss: seen.append((epoch, step, steps)))
    assert seen == [(1, 1, 19)] and len(result.history) == 1  # one step: the budget was used at once
