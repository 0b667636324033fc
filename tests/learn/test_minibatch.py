"""Sampled mini-batch propagation (graphrec.learn.minibatch): exact with every neighbour, unbiased with
a few, and training with it reaches full-graph quality on a generated shop."""

from __future__ import annotations

import pytest
import torch

from graphrec.datasets.synthetic import ShopShape
from graphrec.learn.config import TrainConfig
from graphrec.learn.evaluate import EvalContext, popular_baseline
from graphrec.learn.minibatch import fanouts, sampled_propagation
from graphrec.learn.models import build_model
from graphrec.learn.train import Trainer, holdout_metrics
from tests.learn.test_coldstart_validation import shop


@pytest.fixture(scope="module")
def small_shop(tmp_path_factory):
    return shop(tmp_path_factory.mktemp("shop"), ShopShape(), users=300)


def model_of(data, name: str):
    torch.manual_seed(0)
    model = build_model(name, data, TrainConfig(model=name, dim=8, layers=2))
    if name == "sage":  # away from the identity start, so every relation's weight matters
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.3 * torch.randn_like(p))
    return model


def batch(data, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    users = torch.randperm(data.num_users, generator=g)[:40]
    items = torch.randperm(data.num_items, generator=g)[:30]
    return users, items


@pytest.mark.parametrize("name", ["lightgcn", "sage"])
def test_every_neighbour_gives_the_full_graph_embeddings(small_shop, name):
    model = model_of(small_shop, name)
    users, items = batch(small_shop)
    with torch.no_grad():
        full_u, full_i = model()
        u, i = sampled_propagation(model, [-1]).embed(users, items)
    assert torch.allclose(u, full_u[users], atol=1e-5) and torch.allclose(i, full_i[items], atol=1e-5)


@pytest.mark.parametrize("name", ["lightgcn", "sage"])
def test_few_neighbours_are_unbiased(small_shop, name):
    """With 2 neighbours a hop each embedding is noisy, but its average over many samples is the
    full-graph embedding: LightGCN's weights use the whole graph's degrees, rescaled by
    degree / sampled (the subgraph's own degrees would shrink every hub's sum)."""
    model = model_of(small_shop, name)
    users, items = batch(small_shop, 1)
    prop = sampled_propagation(model, [2])
    torch.manual_seed(1)
    with torch.no_grad():
        full_u, full_i = model()
        full = torch.cat([full_u[users], full_i[items]])
        draws = torch.stack([torch.cat(prop.embed(users, items)) for _ in range(100)])
    one = float((draws[0] - full).norm() / full.norm())
    mean = float((draws.mean(0) - full).norm() / full.norm())
    assert one > 0.03, one  # a single draw really is a sample
    assert mean < one / 4, (mean, one)  # 100 draws: the noise shrinks 10x; a bias would not


def test_fanout_per_layer_and_unsupported_models(small_shop):
    assert fanouts(None, 3) == [10, 10, 10] and fanouts([15, 5], 3) == [15, 5, 5] and fanouts([4, 3, 2], 2) == [4, 3]
    with pytest.raises(ValueError, match="fanout"):
        fanouts([0], 2)
    with pytest.raises(ValueError, match="lightgcn and sage"):
        Trainer(small_shop, TrainConfig(model="social", dim=8, propagation="sampled"))
    with pytest.raises(ValueError, match="full or sampled"):
        Trainer(small_shop, TrainConfig(dim=8, propagation="partial"))


@pytest.mark.parametrize("name", ["lightgcn", "sage"])
def test_sampled_training_reaches_full_graph_quality(tmp_path, name):
    data = shop(tmp_path / "shop", ShopShape(), users=1500)
    base = dict(model=name, dim=32, layers=2, epochs=30, batch_size=512, negatives=128, lr=0.01, patience=5)
    full = holdout_metrics(Trainer(data, TrainConfig(**base)).fit(), data, ks=(20,))["recall@20"]
    sampled = Trainer(data, TrainConfig(**base, propagation="sampled", fanout=[10, 5]))
    assert sampled.minibatch is not None
    recall = holdout_metrics(sampled.fit(), data, ks=(20,))["recall@20"]
    popular = popular_baseline(EvalContext.build(data), (20,))["overall"]["recall@20"]
    # Within 10% of full-graph training (0.50 / 0.60 here), and clear of most-popular (0.40).
    assert recall >= 0.9 * full and recall > 1.15 * popular, (recall, full, popular)
