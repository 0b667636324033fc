"""The fast layers are drop-in twins of PyG's stock layers, and the models read HeteroData directly.

FastLGConv vs LGConv and FastSAGEConv vs SAGEConv(aggr="mean") on random graphs: same output, same
gradients (inputs and parameters), state_dicts interchangeable. The hand-written Recall/NDCG equal
torch_geometric.metrics on random rankings.
"""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import HeteroData
from torch_geometric.metrics import LinkPredHitRatio, LinkPredNDCG, LinkPredPrecision, LinkPredRecall
from torch_geometric.nn import LGConv, SAGEConv
from torch_geometric.utils import to_undirected

from graphrec.learn.snapshot import to_interactions
from graphrec.learn.interactions import SPLIT_CODES
from graphrec.learn.models import FastLGConv, FastSAGEConv, build_model
from graphrec.learn.models.propagation import mean_adjacency, normalized_csr
from graphrec.learn.ranking import UserItems, hits_matrix, metrics_from_hits
from graphrec.learn.config import TrainConfig


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Gradients of a random linear functional of ``out`` (a sum alone would hide transposes)."""
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    grads = torch.autograd.grad((out * w).sum(), inputs, allow_unused=True)
    return [torch.zeros_like(x) if gr is None else gr for x, gr in zip(inputs, grads)]


def _random_edges(num_src: int, num_dst: int, num_edges: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, num_src, (num_edges,), generator=g),
                        torch.randint(0, num_dst, (num_edges,), generator=g)])


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("undirected", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_fast_lgconv_equals_lgconv(seed, undirected, weighted):
    n = 60
    ei = _random_edges(n, n, 300, seed)  # duplicates and self-loops included on purpose
    if undirected:
        ei = to_undirected(ei, num_nodes=n)
    weight = torch.rand(ei.shape[1], generator=torch.Generator().manual_seed(seed)) + 0.1 if weighted else None
    x = torch.randn(n, 8, generator=torch.Generator().manual_seed(seed + 10))
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    stock, fast = LGConv(), FastLGConv()
    out1, out2 = stock(x1, ei, weight), fast(x2, ei, weight)
    torch.testing.assert_close(out2, out1)
    torch.testing.assert_close(_grads(out2, [x2], seed), _grads(out1, [x1], seed))
    # Two stacked layers (LightGCN's use): gradients flow through both products.
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = stock(stock(x1, ei, weight), ei, weight), fast(fast(x2, ei, weight), ei, weight)
    torch.testing.assert_close(_grads(out2, [x2], seed), _grads(out1, [x1], seed))


def test_fast_lgconv_on_the_models_csr_equals_lgconv_on_edges():
    """The models hand FastLGConv their prebuilt normalised CSR; it equals LGConv on the edge list."""
    n = 40
    ei = to_undirected(_random_edges(n, n, 150, 3), num_nodes=n)
    adj = normalized_csr(ei[0], ei[1], n)
    x = torch.randn(n, 4)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, out2 = LGConv()(x1, ei), FastLGConv()(x2, adj)
    torch.testing.assert_close(out2, out1)
    torch.testing.assert_close(_grads(out2, [x2], 3), _grads(out1, [x1], 3))


def test_fast_lgconv_cached_builds_the_adjacency_once():
    n = 20
    ei = to_undirected(_random_edges(n, n, 50, 4), num_nodes=n)
    conv = FastLGConv(cached=True)
    x = torch.randn(n, 3)
    first = conv(x, ei)
    cache = conv._cache
    torch.testing.assert_close(conv(x, ei), first)
    assert conv._cache is cache
    conv.reset_parameters()
    assert conv._cache is None


@pytest.mark.parametrize("seed", [0, 1, 2])
# (20, 50): fewer sources than destinations, where FastSAGEConv without a bias projects before the mean.
@pytest.mark.parametrize("bipartite,num_src,num_dst", [(False, 50, 50), (True, 50, 30), (True, 20, 50)])
@pytest.mark.parametrize("root_weight,bias", [(True, True), (False, False), (True, False)])
def test_fast_sageconv_equals_mean_sageconv(seed, bipartite, num_src, num_dst, root_weight, bias):
    ei = _random_edges(num_src, num_dst, 200, seed)  # some destinations get no message at all
    channels = (6, 5) if bipartite else 6
    torch.manual_seed(seed)
    stock = SAGEConv(channels, 4, aggr="mean", root_weight=root_weight, bias=bias)
    fast = FastSAGEConv(channels, 4, root_weight=root_weight, bias=bias)
    fast.load_state_dict(stock.state_dict())  # same parameter names: swap either way
    stock.load_state_dict(fast.state_dict())
    g = torch.Generator().manual_seed(seed + 20)
    xs = torch.randn(num_src, 6, generator=g)
    xd = torch.randn(num_dst, 5, generator=g) if bipartite else xs
    inputs = [xs.clone().requires_grad_(), xd.clone().requires_grad_()]
    twins = [xs.clone().requires_grad_(), xd.clone().requires_grad_()]
    x1 = (inputs[0], inputs[1]) if bipartite else inputs[0]
    x2 = (twins[0], twins[1]) if bipartite else twins[0]
    out1, out2 = stock(x1, ei), fast(x2, ei)
    torch.testing.assert_close(out2, out1)
    used = (lambda pair: pair) if bipartite else (lambda pair: pair[:1])
    grads1 = _grads(out1, [*used(inputs), *stock.parameters()], seed)
    grads2 = _grads(out2, [*used(twins), *fast.parameters()], seed)
    torch.testing.assert_close(grads2, grads1)


def test_fast_sageconv_on_prebuilt_mean_adjacency_equals_edge_list():
    ei = _random_edges(30, 20, 80, 5)
    conv = FastSAGEConv((4, 4), 3)
    xs, xd = torch.randn(30, 4), torch.randn(20, 4)
    adj_t, adj = mean_adjacency(ei[1], ei[0], 20, 30)
    torch.testing.assert_close(conv((xs, xd), adj_t, transpose=adj), conv((xs, xd), ei))
    with pytest.raises(ValueError, match="transpose"):
        conv((xs, xd), adj_t)


# -- The models take the snapshot's HeteroData directly -------------------------------------------


def _snapshot_like(seed: int = 0) -> HeteroData:
    """A small graph with load_snapshot's node stores and edge types (graphrec.learn.snapshot)."""
    g = torch.Generator().manual_seed(seed)
    nu, ni, nc = 40, 60, 5
    data = HeteroData()
    data.snapshot_id, data.meta = "test", {}
    for name, n in (("user", nu), ("product", ni), ("category", nc)):
        data[name].num_nodes = n
        data[name].ids = [f"{name}{k}" for k in range(n)]
    bought = torch.unique(torch.stack([torch.randint(0, nu, (400,), generator=g),
                                       torch.randint(0, ni, (400,), generator=g)]), dim=1)
    split = torch.randint(0, 3, (bought.shape[1],), generator=g)
    split[torch.rand(bought.shape[1], generator=g) < 0.6] = SPLIT_CODES["train"]
    store = data["user", "bought", "product"]
    store.edge_index, store.split = bought, split
    data["product", "rev_bought", "user"].edge_index = bought[:, split == SPLIT_CODES["train"]].flip(0)
    friend = torch.unique(torch.sort(torch.randint(0, nu, (2, 50), generator=g), 0).values, dim=1)
    friend = friend[:, friend[0] != friend[1]]
    data["user", "friend", "user"].edge_index = torch.cat([friend, friend.flip(0)], 1)
    follows = torch.randint(0, nu, (2, 20), generator=g)
    data["user", "follows", "user"].edge_index = follows
    in_cat = torch.stack([torch.arange(ni), torch.randint(0, nc, (ni,), generator=g)])
    data["product", "in_category", "category"].edge_index = in_cat
    return data


@pytest.mark.parametrize("name", ["lightgcn", "social", "sage"])
def test_models_accept_heterodata_and_equal_the_interactions_path(name):
    data = _snapshot_like()
    config = TrainConfig(model=name, dim=8, layers=2)
    torch.manual_seed(0)
    from_hetero = build_model(name, data, config)
    torch.manual_seed(0)
    from_flat = build_model(name, to_interactions(data), config)
    u1, i1 = from_hetero()
    u2, i2 = from_flat()
    assert u1.shape == (40, 8) and i1.shape == (60, 8)
    torch.testing.assert_close(u1, u2)
    torch.testing.assert_close(i1, i2)
    # Valid/test purchases never enter the model built from HeteroData.
    if name != "sage":
        dense = from_hetero.adj.to_dense()
        store = data["user", "bought", "product"]
        held = store.edge_index[:, store.split != SPLIT_CODES["train"]]
        train = data["product", "rev_bought", "user"].edge_index.flip(0)
        train_keys = set((train[0] * 1000 + train[1]).tolist())
        for u, i in held.t().tolist():
            if u * 1000 + i not in train_keys:
                assert dense[u, 40 + i] == 0


def test_heterodata_without_training_edges_is_refused():
    data = _snapshot_like()
    del data["product", "rev_bought", "user"]
    with pytest.raises(ValueError, match="rev_bought"):
        build_model("lightgcn", data, TrainConfig(dim=4, layers=1))


# -- Metrics: the hand-written ones equal torch_geometric.metrics ---------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ranking_metrics_equal_torch_geometric_metrics(seed):
    g = torch.Generator().manual_seed(seed)
    num_users, num_items, k = 50, 40, 10
    pairs = torch.unique(torch.stack([torch.randint(0, num_users, (300,), generator=g),
                                      torch.randint(0, num_items, (300,), generator=g)]), dim=1)
    held_out = UserItems.from_pairs(pairs[0], pairs[1], num_users)
    users = torch.nonzero(held_out.counts > 0).flatten()
    top = torch.argsort(torch.rand(users.numel(), num_items, generator=g), 1)[:, :k]
    ours = metrics_from_hits(hits_matrix(top, users, held_out, num_items), held_out.counts[users], (5, k))
    pos, items = held_out.rows(users)
    for kk in (5, k):
        for metric, key in ((LinkPredRecall(kk), "recall"), (LinkPredNDCG(kk), "ndcg"),
                            (LinkPredPrecision(kk), "precision"), (LinkPredHitRatio(kk), "hit")):
            metric.update(top, torch.stack([pos, items]))
            assert ours[f"{key}@{kk}"] == pytest.approx(float(metric.compute()), abs=1e-6), (key, kk)
