"""Sampled mini-batch propagation: a training step runs the model's layers on the sampled k-hop
subgraph around its batch only (``TrainConfig.propagation = "sampled"``), not on the whole graph.

For each step the trainer hands over the batch's users, positive items and negatives; the distinct
ones are the seeds of :class:`~graphrec.learn.sampling.CSCNeighborSampler` (``fanout[l]``
neighbours per node at hop ``l + 1``), and the model's layers are run hop by hop on what was
sampled, PyG's ``trim_to_layer`` way: layer ``l`` of ``L`` computes only the nodes within
``L - l`` hops of the seeds, from their sampled in-edges. The output is the seeds' final
embeddings, which the loss uses exactly as it uses rows of the full-graph output.

* LightGCN: a sampled edge ``u -> v`` carries the *full* graph's weight ``Â[v, u] = 1/sqrt(d_u d_v)``
  scaled by ``deg(v) / sampled(v)``, so each layer's sum over the sampled neighbours is an unbiased
  estimate of the full ``(Â x)[v]`` (exact where all of ``v``'s neighbours were drawn); with the
  subgraph's own degrees, hubs would be under-weighted and the output biased.
* HeteroSAGE: per relation, the mean over the sampled neighbours (an unbiased estimate of the mean
  over all), GraphSAGE's own scheme. A user's layer-0 input is the mean of the products they
  bought, one more hop: the sampler takes ``layers + 1`` hops, the last one only over
  ``rev_bought`` (with the last layer's fanout).

Validation and the final embeddings are full-graph, layer-wise inference without gradients
(the model's ``forward`` under ``no_grad``): every user and item is needed, and no activations are
kept for a backward, so it needs the graph plus a few node x dim tensors.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from graphrec.learn.models.lightgcn import LightGCN
from graphrec.learn.models.propagation import _csr_pair, aggregate
from graphrec.learn.sampling import CSCNeighborSampler

if TYPE_CHECKING:
    from graphrec.learn.models.sage import HeteroSAGE

# Neighbours per node and hop when none are configured: GraphSAGE's and PinSAGE's usual 10-25 range,
# at its low end because LightGCN's three hops multiply it.
DEFAULT_FANOUT = 10


def fanouts(fanout: list[int] | tuple[int, ...] | None, layers: int) -> list[int]:
    """One fanout per layer: the configured list (its last entry repeated if short), else the default."""
    values = list(fanout or [DEFAULT_FANOUT])
    if any(f == 0 or f < -1 for f in values):
        raise ValueError(f"fanout: positive neighbour counts or -1 (all), got {values}")
    return (values + [values[-1]] * layers)[:layers]


def _counts(x: list[int]) -> list[int]:
    """Running totals with a leading 0: nodes (or edges) of hops 0..h are the first ``out[h + 1]``."""
    out = [0]
    for n in x:
        out.append(out[-1] + n)
    return out


def _subgraph_csr(dst: Tensor, src: Tensor, weight: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """``[num_dst, num_src]`` CSR of sampled edges and its transpose. The sampler emits edges grouped
    by destination in increasing local order, so the rows need no sort (a third of a step's time
    went to coalescing them); only the transpose is sorted."""
    if dst.numel() > 1 and not bool((dst[1:] >= dst[:-1]).all()):
        return _csr_pair(dst, src, weight, size)

    def crow(index: Tensor, n: int) -> Tensor:
        return torch.cat([torch.zeros(1, dtype=torch.long), torch.cumsum(torch.bincount(index, minlength=n), 0)])

    order = torch.argsort(src, stable=True)
    with warnings.catch_warnings():  # "CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return (torch.sparse_csr_tensor(crow(dst, size[0]), src, weight, size),
                torch.sparse_csr_tensor(crow(src, size[1]), dst[order], weight[order], (size[1], size[0])))


def _mean_weights(col: Tensor, num_dst: int) -> Tensor:
    """1 / (sampled in-edges of the destination), per edge: the mean over what was sampled."""
    return 1.0 / torch.bincount(col, minlength=num_dst).clamp(min=1).float()[col]


class SampledLightGCN:
    """Subgraph propagation for :class:`~graphrec.learn.models.lightgcn.LightGCN`."""

    def __init__(self, model: LightGCN, fanout: list[int] | None) -> None:
        if type(model) is not LightGCN:  # SocialLightGCN's per-layer social fusion is not sampled yet
            raise ValueError(f"sampled propagation supports lightgcn and sage, not {type(model).__name__}")
        self.model = model
        adj = model.adj.cpu()
        crow = adj.crow_indices()
        self.degree = (crow[1:] - crow[:-1]).float()  # distinct neighbours: the rows the sampler draws from
        dst = torch.repeat_interleave(torch.arange(adj.shape[0]), crow[1:] - crow[:-1])
        # Messages u -> v with the full graph's normalised weight; CSR rows are destinations, so the
        # edge list is already in the sampler's CSC order (its edge ids are CSR positions).
        graph = Data(edge_index=torch.stack([adj.col_indices(), dst]), num_nodes=adj.shape[0])
        self.sampler = CSCNeighborSampler(graph, fanouts(fanout, model.num_layers), is_sorted=True)
        self.weight = adj.values()

    def embed(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Final embeddings (mean over layers 0..L) of distinct user rows and distinct item rows."""
        m = self.model
        device = m.embedding.weight.device
        seeds = torch.cat([users, items + m.num_users]).cpu()
        out = self.sampler.sample(seeds)
        node_hops, edge_hops = _counts(out.num_sampled_nodes), _counts(out.num_sampled_edges)
        sampled = torch.bincount(out.col, minlength=out.node.numel()).float()
        # deg(v) / sampled(v): the unbiased rescale of a uniform sample of v's neighbours.
        weight = self.weight[out.edge] * (self.degree[out.node] / sampled.clamp(min=1))[out.col]
        x = m.embedding.weight[out.node.to(device)]
        total = x[: seeds.numel()]
        layers = m.num_layers
        for k in range(1, layers + 1):  # layer k: nodes within L - k hops, from those within L - k + 1
            n_dst, n_src, n_edge = node_hops[layers - k + 1], node_hops[layers - k + 2], edge_hops[layers - k + 1]
            adj_t, adj = _subgraph_csr(out.col[:n_edge], out.row[:n_edge], weight[:n_edge], (n_dst, n_src))
            x = m.conv(x[:n_src], adj_t.to(device), transpose=adj.to(device))
            total = total + x[: seeds.numel()]
        total = total / (layers + 1)
        return total[: users.numel()], total[users.numel():]


class SampledSAGE:
    """Subgraph propagation for :class:`~graphrec.learn.models.sage.HeteroSAGE`."""

    def __init__(self, model: "HeteroSAGE", fanout: list[int] | None) -> None:
        self.model = model
        graph = HeteroData()
        for t, n in model.sizes.items():
            graph[t].num_nodes = n
        for et, ei in model.edges.items():
            graph[et].edge_index = ei.cpu()
        per_layer = fanouts(fanout, len(model.layers))
        # One hop more than layers, only over rev_bought: the products a deepest user's input averages.
        self.sampler = CSCNeighborSampler(graph, {et: per_layer + [per_layer[-1] if et == model.BOUGHT else 0]
                                                  for et in model.edges})

    def embed(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Final embeddings of distinct user rows ``users`` and distinct product rows ``items``."""
        m = self.model
        device = m.item_emb.weight.device
        out = self.sampler.sample({"user": users.cpu(), "product": items.cpu()})
        node = {t: n.to(device) for t, n in out.node.items()}
        node_hops = {t: _counts(v) for t, v in out.num_sampled_nodes.items()}
        edge_hops = {et: _counts(v) for et, v in out.num_sampled_edges.items()}
        weight = {et: _mean_weights(out.col[et], out.node[et[2]].numel()) for et in out.col}

        def adjacency(et: tuple[str, str, str], hop: int) -> tuple[Tensor, Tensor]:
            """Mean aggregation over ``et``'s sampled edges into the nodes within ``hop`` hops."""
            src, _, dst = et
            n = edge_hops[et][hop + 1]
            adj_t, adj = _subgraph_csr(out.col[et][:n], out.row[et][:n], weight[et][:n],
                                   (node_hops[dst][hop + 1], node_hops[src][hop + 2]))
            return adj_t.to(device), adj.to(device)

        layers = len(m.layers)
        items_in = m.item_emb.weight[node["product"]] + m.item_in(m.item_x[node["product"]])
        within = node_hops["user"][layers + 1]  # users within L hops: the ones layer 1 reads
        x = {"user": m.user_in(m.user_x[node["user"][:within]]) + aggregate(adjacency(m.BOUGHT, layers), items_in),
             "product": items_in, "category": m.cat_emb.weight[node["category"]]}
        seeds = {"user": users.numel(), "product": items.numel()}
        total = {t: x[t][: seeds[t]] for t in seeds}
        for k, layer in enumerate(m.layers, start=1):
            hop = layers - k  # this layer computes the nodes within `hop` hops
            x = {t: v[: node_hops[t][hop + 2]] for t, v in x.items()}
            x = layer(x, {et: adjacency(et, hop) for et in m.edges},
                      num_dst={t: node_hops[t][hop + 1] for t in x})
            for t in total:
                total[t] = total[t] + x[t][: seeds[t]]
        return total["user"] / (layers + 1), total["product"] / (layers + 1)


def sampled_propagation(model: torch.nn.Module, fanout: list[int] | None) -> SampledLightGCN | SampledSAGE:
    """The subgraph propagation for ``model`` (lightgcn or sage)."""
    from graphrec.learn.models.sage import HeteroSAGE

    if isinstance(model, HeteroSAGE):
        return SampledSAGE(model, fanout)
    if isinstance(model, LightGCN):
        return SampledLightGCN(model, fanout)  # type: ignore[arg-type]
    raise ValueError(f"no sampled propagation for {type(model).__name__}")
