"""The vectorised neighbour sampler (graphrec.learn.sampling) against brute force on small random graphs,
and inside PyG's own loaders."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch_geometric.data import Data, HeteroData
from torch_geometric.loader import LinkNeighborLoader
from torch_geometric.sampler import NegativeSampling, NodeSamplerInput

from graphrec.learn.sampling import CSCNeighborSampler, sample_neighbors


def random_graph(nodes: int = 60, edges: int = 400, seed: int = 0) -> Data:
    g = torch.Generator().manual_seed(seed)
    # Skewed degrees: a few hubs (long rows: the redraw path) and many short rows (the sort path).
    dst = (torch.rand(edges, generator=g) ** 3 * nodes).long()
    src = torch.randint(0, nodes, (edges,), generator=g)
    return Data(edge_index=torch.stack([src, dst]), num_nodes=nodes)


def in_neighbours(data: Data) -> dict[int, Counter]:
    out: dict[int, Counter] = {v: Counter() for v in range(data.num_nodes)}
    for s, d in data.edge_index.t().tolist():
        out[d][s] += 1
    return out


def bfs_hops(data: Data, seeds: list[int], hops: int) -> list[set[int]]:
    """Brute force: the nodes first reached at each hop when every in-neighbour is taken."""
    nbrs = in_neighbours(data)
    seen, frontier, layers = set(seeds), list(seeds), [set(seeds)]
    for _ in range(hops):
        new = {u for v in frontier for u in nbrs[v]} - seen
        seen |= new
        layers.append(new)
        frontier = sorted(new)
    return layers


@pytest.mark.parametrize("replace", [False, True])
@pytest.mark.parametrize("fanout", [[3, 2], [5, 5, 5]])
def test_sampled_subgraph_is_consistent_with_the_graph(fanout, replace):
    data = random_graph()
    sampler = CSCNeighborSampler(data, fanout, replace=replace, seed=1)
    seeds = torch.tensor([0, 1, 7, 30, 59])
    out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds))
    node, row, col = out.node, out.row, out.col
    assert torch.equal(node[: seeds.numel()], seeds)  # seeds first, in order
    assert node.unique().numel() == node.numel()
    assert out.num_sampled_nodes[0] == seeds.numel() and sum(out.num_sampled_nodes) == node.numel()
    assert sum(out.num_sampled_edges) == row.numel() == col.numel() == out.edge.numel()
    # Edge ids: the input edge each sampled edge is, and it joins the right two nodes.
    e_id = sampler.edge_permutation[out.edge]
    assert torch.equal(data.edge_index[0, e_id], node[row]) and torch.equal(data.edge_index[1, e_id], node[col])
    if not replace:
        assert e_id.unique().numel() == e_id.numel()
    deg = torch.bincount(data.edge_index[1], minlength=data.num_nodes)
    hop_of = torch.repeat_interleave(torch.arange(len(out.num_sampled_nodes)), torch.tensor(out.num_sampled_nodes))
    start = 0
    for hop, (k, n_edges) in enumerate(zip(fanout, out.num_sampled_edges)):
        c = col[start : start + n_edges]
        start += n_edges
        # Hop h samples exactly for the nodes found at hop h-1, min(deg, k) each (k when replacing).
        frontier = torch.nonzero(hop_of == hop).flatten()
        counts = torch.bincount(c, minlength=node.numel())[frontier]
        d = deg[node[frontier]]
        expected = torch.where(d > 0, torch.full_like(d, k), d) if replace else d.clamp(max=k)
        assert torch.equal(counts, expected), hop
        assert bool((hop_of[c] == hop).all())


def test_all_neighbours_match_breadth_first_search():
    data = random_graph(seed=3)
    seeds = [2, 5, 40]
    for fanout in ([-1, -1], [1000, 1000]):  # -1 and a fanout above every degree take everything
        out = CSCNeighborSampler(data, fanout).sample_from_nodes(NodeSamplerInput(None, torch.tensor(seeds)))
        layers = bfs_hops(data, seeds, 2)
        parts = torch.split(out.node, out.num_sampled_nodes)
        assert [set(p.tolist()) for p in parts] == layers
        # Every in-edge of every node of hops 0 and 1, exactly once.
        nbrs = in_neighbours(data)
        expected = Counter((u, v) for v in layers[0] | layers[1] for u, m in nbrs[v].items() for _ in range(m))
        assert Counter(zip(out.node[out.row].tolist(), out.node[out.col].tolist())) == expected


@pytest.mark.parametrize("degree,k", [(10, 3), (200, 3), (12, 11)])
def test_draws_are_uniform_without_replacement(degree, k):
    """Both draw paths (sorted keys on short rows, redraws on long ones) pick each neighbour with
    probability k / degree, never twice."""
    colptr = torch.tensor([0, degree, 2 * degree])
    seeds = torch.tensor([0, 1]).repeat(2000)
    position, which = sample_neighbors(colptr, seeds, k, generator=torch.Generator().manual_seed(0))
    assert torch.equal(torch.bincount(which), torch.full((seeds.numel(),), k))
    per_seed = position.view(seeds.numel(), k)
    assert all(len(set(r)) == k for r in per_seed.tolist())
    assert bool(((per_seed >= colptr[seeds, None]) & (per_seed < colptr[seeds + 1, None])).all())
    freq = torch.bincount(position, minlength=2 * degree).double() / 2000  # per seed node
    expected = k / degree
    # 4000 draws per seed row: a binomial frequency within 5 standard deviations.
    assert float((freq - expected).abs().max()) < 5 * (expected * (1 - expected) / 2000) ** 0.5 + 1e-9


def bipartite(users: int = 40, items: int = 30, pairs: int = 300, seed: int = 0) -> HeteroData:
    g = torch.Generator().manual_seed(seed)
    ui = torch.stack([torch.randint(0, users, (pairs,), generator=g), torch.randint(0, items, (pairs,), generator=g)])
    data = HeteroData()
    data["user"].num_nodes, data["item"].num_nodes = users, items
    data["user", "bought", "item"].edge_index = ui
    data["item", "rev_bought", "user"].edge_index = ui.flip(0)
    return data


def test_hetero_sampling_respects_types_and_fanout():
    data = bipartite()
    fanout = {("user", "bought", "item"): [4, 2], ("item", "rev_bought", "user"): [3, 0]}
    sampler = CSCNeighborSampler(data, fanout, seed=0)
    seeds = torch.tensor([0, 5, 9])
    out = sampler.sample_from_nodes(NodeSamplerInput(None, seeds, input_type="user"))
    assert torch.equal(out.node["user"][:3], seeds) and out.num_sampled_nodes["item"][0] == 0
    for et, store in data.edge_items():
        src, _, dst = et
        e_id = sampler.edge_permutation[et][out.edge[et]]
        assert torch.equal(store.edge_index[0, e_id], out.node[src][out.row[et]])
        assert torch.equal(store.edge_index[1, e_id], out.node[dst][out.col[et]])
    # Messages flow source -> destination, so the seed users sample their in-neighbours: items over
    # rev_bought (3 at most each) at hop 1; bought (into items) has no frontier yet.
    rev, bought = ("item", "rev_bought", "user"), ("user", "bought", "item")
    assert 0 < out.num_sampled_edges[rev][0] <= 3 * 3 and out.num_sampled_edges[bought][0] == 0
    # Hop 2: the items found at hop 1 sample users over bought (2 at most each); rev_bought's hop-2
    # fanout 0 samples nothing.
    n_items = out.num_sampled_nodes["item"][1]
    assert n_items > 0 and 0 < out.num_sampled_edges[bought][1] <= 2 * n_items
    assert out.num_sampled_edges[rev][1] == 0
    assert torch.equal(torch.bincount(out.col[bought], minlength=out.node["item"].numel())[:n_items],
                       torch.bincount(data[bought].edge_index[1], minlength=30)[out.node["item"]].clamp(max=2))


def test_plugs_into_link_neighbor_loader():
    data = bipartite()
    et = ("user", "bought", "item")
    fanout = {et: [4, 4], ("item", "rev_bought", "user"): [4, 4]}
    loader = LinkNeighborLoader(data, fanout, edge_label_index=(et, data[et].edge_index), batch_size=32,
                                neg_sampling=NegativeSampling("triplet", 2), shuffle=True,
                                neighbor_sampler=CSCNeighborSampler(data, fanout, seed=0))
    seen = 0
    for batch in loader:
        users, items = batch["user"].n_id, batch["item"].n_id
        pos = data[et].edge_index[:, batch[et].input_id]
        assert torch.equal(users[batch["user"].src_index], pos[0])
        assert torch.equal(items[batch["item"].dst_pos_index], pos[1])
        assert batch["item"].dst_neg_index.shape == (pos.shape[1], 2)
        # The batch's edges are real edges (PyG's filter applied the sampler's ids and permutation).
        assert torch.equal(data[et].edge_index[:, batch[et].e_id],
                           torch.stack([users[batch[et].edge_index[0]], items[batch[et].edge_index[1]]]))
        seen += pos.shape[1]
    assert seen == data[et].edge_index.shape[1]


def test_distinct_seeds_are_required():
    sampler = CSCNeighborSampler(random_graph(), [2])
    with pytest.raises(ValueError, match="distinct"):
        sampler.sample_from_nodes(NodeSamplerInput(None, torch.tensor([1, 1])))
