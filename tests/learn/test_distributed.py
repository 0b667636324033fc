"""``graphrec train --ddp N``: PyTorch DistributedDataParallel over CPU processes (gloo) trains to
the quality of one process, in half the steps per epoch for two processes."""

from __future__ import annotations

import weakref

import torch

from graphrec.datasets.synthetic import ShopShape
from graphrec.learn.distributed import process_group
from graphrec.learn.evaluate import EvalContext, popular_baseline
from graphrec.learn.config import TrainConfig
from graphrec.learn.train import Trainer, holdout_metrics
from tests.learn.test_coldstart_validation import shop

CONFIG = TrainConfig(dim=32, layers=2, epochs=30, batch_size=512, negatives=128, lr=0.01, patience=5)


def test_two_processes_train_to_the_quality_of_one(tmp_path):
    data = shop(tmp_path / "shop", ShopShape(), users=1500)
    singles = [holdout_metrics(Trainer(data, TrainConfig(**{**CONFIG.to_dict(), "seed": s})).fit(), data)["recall@20"]
               for s in (1, 2)]
    with process_group(2, Trainer, data, CONFIG):
        trainer = Trainer(data, CONFIG)
        result = trainer.fit()
        objective = weakref.ref(trainer.objective)
        del trainer
        # DDP's reducer dies with its trainer while the group lives (left to the interpreter's
        # teardown it aborted the spawned rank about one exit in two).
        assert objective() is None
    steps_alone = -(-data.train.shape[1] // CONFIG.batch_size)
    assert all(r["ranks"] == 2 and r["steps"] == -(-(data.train.shape[1] // 2) // CONFIG.batch_size)
               for r in result.history)
    assert result.history[0]["steps"] < steps_alone  # each rank took its share of the epoch
    ddp = holdout_metrics(result, data)["recall@20"]
    noise = max(abs(singles[0] - singles[1]), 0.01)
    assert abs(ddp - sum(singles) / 2) <= 3 * noise, (ddp, singles)
    popular = popular_baseline(EvalContext.build(data), (20,))["overall"]["recall@20"]
    assert ddp > 1.1 * popular  # and it learned what most-popular cannot (0.40 on this shop)
    assert not torch.distributed.is_initialized()  # the group is gone afterwards


def test_outside_a_group_training_is_unchanged(tmp_path):
    data = shop(tmp_path / "shop", ShopShape(), users=300)
    a = Trainer(data, CONFIG).fit()
    with process_group(1, Trainer, data, CONFIG):
        b = Trainer(data, CONFIG).fit()
    assert torch.equal(a.user_emb, b.user_emb) and "ranks" not in a.history[0]


def test_sampled_propagation_trains_data_parallel(tmp_path):
    """Sampled mode under DDP: each rank samples the subgraphs of its own share of the batches (its
    own RNG stream), gradients are averaged, and the ranks still end with one model."""
    data = shop(tmp_path / "shop", ShopShape(), users=600)
    config = TrainConfig(**{**CONFIG.to_dict(), "epochs": 12, "propagation": "sampled", "fanout": [10, 5]})
    with process_group(2, Trainer, data, config):
        result = Trainer(data, config).fit()
    assert all(r["ranks"] == 2 for r in result.history)
    alone = holdout_metrics(Trainer(data, config).fit(), data)["recall@20"]
    assert holdout_metrics(result, data)["recall@20"] >= 0.9 * alone
