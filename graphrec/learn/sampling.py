"""Uniform neighbour sampling for mini-batch training, as a PyG sampler that needs neither pyg-lib
nor torch-sparse.

PyG's own :class:`~torch_geometric.sampler.NeighborSampler` (behind ``NeighborLoader`` and
``LinkNeighborLoader``) calls compiled kernels from ``pyg-lib`` or ``torch-sparse``; neither
installs here (pyg-lib has no PyPI wheels, torch-sparse is source-only against this torch).
:class:`CSCNeighborSampler` is a :class:`~torch_geometric.sampler.BaseSampler` with the same
contract, in vectorised torch (no loop over nodes): it plugs into ``LinkNeighborLoader(...,
neighbor_sampler=...)``, ``LinkLoader`` and ``NodeLoader``, and the training loop calls it directly
(:mod:`graphrec.learn.minibatch`).

What it returns is what pyg-lib's non-disjoint, directional sampler returns: ``node`` holds the seeds
first (in order), then the nodes each hop discovered, in order of first appearance; ``row``/``col``
are local (source, destination) indices of the sampled edges, grouped by hop, each destination's
edges together; ``edge`` are positions in the sampler's CSC order (``edge_permutation`` maps them to
the input's edge ids, as for PyG's sampler); ``num_sampled_nodes``/``num_sampled_edges`` count them
per hop. A destination with degree ``d`` gets ``min(d, fanout)`` distinct in-neighbours drawn
uniformly without replacement (``replace=True``: exactly ``fanout`` draws with replacement when
``d > 0``); fanout ``-1`` takes all. Not supported: temporal, weighted and disjoint sampling,
induced/bidirectional subgraphs.
"""

from __future__ import annotations

from typing import Optional, Union

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData
from torch_geometric.sampler import (BaseSampler, EdgeSamplerInput, HeteroSamplerOutput, NegativeSampling,
                                     NodeSamplerInput, SamplerOutput)
from torch_geometric.sampler.base import NumNeighbors
from torch_geometric.sampler.neighbor_sampler import edge_sample, node_sample
from torch_geometric.sampler.utils import to_csc, to_hetero_csc
from torch_geometric.typing import EdgeType, NodeType

# Rows with at most this many times ``fanout`` neighbours draw by sorting random keys over the whole
# row (cost ~ degree); longer rows draw offsets and redraw collisions, each draw colliding with
# probability below 1/SHORT_ROW, so a few rounds finish even for hubs of millions.
SHORT_ROW = 4


def _choose_without_replacement(deg: Tensor, k: Tensor, generator: Optional[torch.Generator]) -> Tensor:
    """For rows of length ``deg`` (all > ``k``), ``k[r]`` distinct offsets in ``[0, deg[r])`` per row,
    uniform over subsets, concatenated row by row."""
    out = torch.empty(int(k.sum()), dtype=torch.long)
    slot = torch.cumsum(k, 0) - k  # where each row's offsets start in ``out``
    short = deg <= SHORT_ROW * k
    if bool(short.any()):  # random keys over every neighbour; the k smallest keys per row win
        rows = torch.nonzero(short).flatten()
        d = deg[rows]
        seg = torch.repeat_interleave(torch.arange(rows.numel()), d)
        offset = torch.arange(seg.numel()) - (torch.cumsum(d, 0) - d)[seg]
        key = torch.rand(seg.numel(), generator=generator, dtype=torch.float64)
        order = torch.argsort(seg.double() * 2.0 + key)  # by row, then by key (key < 1)
        rank = torch.arange(seg.numel()) - (torch.cumsum(d, 0) - d)[seg]  # rank within the sorted row
        seg, offset = seg[order], offset[order]
        keep = rank < k[rows][seg]
        out[slot[rows][seg[keep]] + rank[keep]] = offset[keep]
    if bool((~short).any()):  # draw, then redraw whatever collides within its row
        rows = torch.nonzero(~short).flatten()
        kk = k[rows]
        seg = torch.repeat_interleave(torch.arange(rows.numel()), kk)
        d = deg[rows][seg]
        offset = (torch.rand(seg.numel(), generator=generator, dtype=torch.float64) * d).long()
        span = int(deg.max())
        while True:
            key = seg * span + offset
            sorted_key, order = torch.sort(key, stable=True)
            dup = torch.zeros_like(sorted_key, dtype=torch.bool)
            dup[1:] = sorted_key[1:] == sorted_key[:-1]
            if not bool(dup.any()):
                break
            again = order[dup]  # every copy after the first is redrawn
            offset[again] = (torch.rand(again.numel(), generator=generator, dtype=torch.float64)
                             * d[again]).long()
        # Draws are exchangeable, so the set is uniform whatever copy a collision kept.
        rank = torch.arange(seg.numel()) - (torch.cumsum(kk, 0) - kk)[seg]
        out[slot[rows][seg] + rank] = offset
    return out


def sample_neighbors(colptr: Tensor, seeds: Tensor, fanout: int, replace: bool = False,
                     generator: Optional[torch.Generator] = None) -> tuple[Tensor, Tensor]:
    """One hop of uniform in-neighbour sampling on a CSC graph.

    Returns ``(position, which)``: CSC positions of the sampled edges (``row[position]`` are the
    neighbours) and, per sampled edge, the index into ``seeds`` of its destination, grouped by seed.
    """
    start = colptr[seeds]
    deg = colptr[seeds + 1] - start
    if fanout < 0:
        k = deg
    elif replace:
        k = torch.where(deg > 0, torch.full_like(deg, fanout), deg)
    else:
        k = deg.clamp(max=fanout)
    which = torch.repeat_interleave(torch.arange(seeds.numel()), k)
    slot = torch.cumsum(k, 0) - k
    offset = torch.arange(which.numel()) - slot[which]  # all of each row: 0..deg-1
    if fanout >= 0 and replace:
        offset = (torch.rand(which.numel(), generator=generator, dtype=torch.float64) * deg[which]).long()
    elif fanout >= 0:
        partial = deg > k
        if bool(partial.any()):
            chosen = _choose_without_replacement(deg[partial], k[partial], generator)
            in_partial = partial[which]
            offset[in_partial] = chosen  # both are laid out row by row over the partial rows
    return start[which] + offset, which


class _NodeSet:
    """The sampled nodes of one type: global ids in order of discovery and a global -> local map."""

    def __init__(self, num_nodes: int, seeds: Tensor) -> None:
        self.local = torch.full((num_nodes,), -1, dtype=torch.long)
        if torch.unique(seeds).numel() != seeds.numel():
            raise ValueError("seed nodes must be distinct (edge seeds are made distinct by edge_sample)")
        self.local[seeds] = torch.arange(seeds.numel())
        self.parts = [seeds]
        self.count = seeds.numel()

    def add(self, ids: Tensor) -> tuple[Tensor, Tensor]:
        """Local ids of ``ids``, adding the unseen ones (first appearance first); also the added ids."""
        unseen = ids[self.local[ids] < 0]
        if unseen.numel():
            uniq, inverse = torch.unique(unseen, return_inverse=True)
            first = torch.full((uniq.numel(),), unseen.numel(), dtype=torch.long)
            first.scatter_reduce_(0, inverse, torch.arange(unseen.numel()), reduce="amin")
            new = uniq[torch.argsort(first)]
        else:
            new = unseen
        self.local[new] = torch.arange(self.count, self.count + new.numel())
        self.count += new.numel()
        self.parts.append(new)
        return self.local[ids], new

    def nodes(self) -> Tensor:
        return torch.cat(self.parts)


class CSCNeighborSampler(BaseSampler):
    """Uniform ``num_neighbors``-per-hop sampling on a ``Data`` or ``HeteroData`` graph (see the
    module docstring for the output's layout). Messages flow source -> destination: a destination
    samples among its in-neighbours, as in PyG's default ``sample_direction="forward"``."""

    def __init__(self, data: Union[Data, HeteroData], num_neighbors: Union[list[int], dict[EdgeType, list[int]]],
                 replace: bool = False, is_sorted: bool = False, seed: Optional[int] = None) -> None:
        self.replace = replace
        self.num_neighbors = NumNeighbors(num_neighbors)
        # None: the global torch RNG (seeded per rank by the trainer), as PyG's samplers use it.
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self.is_hetero = isinstance(data, HeteroData)
        self.perm: Union[Optional[Tensor], dict[EdgeType, Optional[Tensor]]]
        if self.is_hetero:
            self.node_types, self.edge_types = data.metadata()
            self.num_nodes: Union[int, dict[NodeType, int]] = {t: int(data[t].num_nodes) for t in self.node_types}
            self.colptr, self.row, self.perm = to_hetero_csc(data, device="cpu", is_sorted=is_sorted)
            self.fanouts: dict[EdgeType, list[int]] = self.num_neighbors.get_values(self.edge_types)
        elif isinstance(data, Data):
            self.num_nodes = int(data.num_nodes)
            colptr, row, self.perm = to_csc(data, device="cpu", is_sorted=is_sorted)
            self.colptr, self.row = colptr, row
        else:
            raise TypeError(f"CSCNeighborSampler samples Data or HeteroData (got {type(data).__name__})")

    @property
    def num_hops(self) -> int:
        return self.num_neighbors.num_hops

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> Union[SamplerOutput, HeteroSamplerOutput]:
        return node_sample(index, self.sample)

    def sample_from_edges(self, index: EdgeSamplerInput, neg_sampling: Optional[NegativeSampling] = None,
                          ) -> Union[SamplerOutput, HeteroSamplerOutput]:
        # PyG's own edge logic: negatives, distinct seeds and the edge_label_index metadata.
        return edge_sample(index, self.sample, self.num_nodes, False, None, neg_sampling)

    @property
    def edge_permutation(self) -> Union[Optional[Tensor], dict[EdgeType, Optional[Tensor]]]:
        return self.perm

    def sample(self, seed: Union[Tensor, dict[NodeType, Tensor]], seed_time: object = None,
               **kwargs) -> Union[SamplerOutput, HeteroSamplerOutput]:
        """The subgraph around distinct ``seed`` nodes (a dict by node type on ``HeteroData``): what
        ``sample_from_nodes`` and ``sample_from_edges`` wrap, also for seeds of several types."""
        if seed_time is not None:
            raise NotImplementedError("CSCNeighborSampler does not sample temporally")
        if isinstance(seed, dict):
            return self._sample_hetero(seed)
        return self._sample_homo(seed)

    def _sample_homo(self, seed: Tensor) -> SamplerOutput:
        assert isinstance(self.num_nodes, int) and isinstance(self.colptr, Tensor) and isinstance(self.row, Tensor)
        nodes = _NodeSet(self.num_nodes, seed)
        frontier, frontier_local = seed, torch.arange(seed.numel())
        rows, cols, edges, per_hop_edges = [], [], [], []
        for fanout in self.num_neighbors.get_values():
            position, which = sample_neighbors(self.colptr, frontier, fanout, self.replace, self.generator)
            local, frontier = nodes.add(self.row[position])
            rows.append(local)
            cols.append(frontier_local[which])
            edges.append(position)
            per_hop_edges.append(position.numel())
            frontier_local = nodes.local[frontier]
        return SamplerOutput(node=nodes.nodes(), row=torch.cat(rows), col=torch.cat(cols), edge=torch.cat(edges),
                             num_sampled_nodes=[p.numel() for p in nodes.parts], num_sampled_edges=per_hop_edges)

    def _sample_hetero(self, seed: dict[NodeType, Tensor]) -> HeteroSamplerOutput:
        assert isinstance(self.num_nodes, dict) and isinstance(self.colptr, dict) and isinstance(self.row, dict)
        empty = torch.zeros(0, dtype=torch.long)
        nodes = {t: _NodeSet(self.num_nodes[t], seed.get(t, empty)) for t in self.node_types}
        frontier = {t: nodes[t].nodes() for t in self.node_types}
        rows: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        cols: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        edges: dict[EdgeType, list[Tensor]] = {et: [] for et in self.edge_types}
        per_hop_nodes = {t: [nodes[t].count] for t in self.node_types}
        for hop in range(self.num_hops):
            found: dict[NodeType, list[Tensor]] = {t: [] for t in self.node_types}
            for et in self.edge_types:
                src, _, dst = et
                fanout = self.fanouts[et][hop]
                if fanout == 0 or frontier[dst].numel() == 0:
                    position = empty
                    which = empty
                else:
                    position, which = sample_neighbors(self.colptr[et], frontier[dst], fanout, self.replace,
                                                       self.generator)
                # Nodes found earlier in this hop are not this hop's frontier again: add, then collect.
                local, new = nodes[src].add(self.row[et][position])
                found[src].append(new)
                rows[et].append(local)
                cols[et].append(nodes[dst].local[frontier[dst][which]])
                edges[et].append(position)
            frontier = {t: torch.cat(found[t]) if found[t] else empty for t in self.node_types}
            for t in self.node_types:
                per_hop_nodes[t].append(frontier[t].numel())
        return HeteroSamplerOutput(
            node={t: s.nodes() for t, s in nodes.items()},
            row={et: torch.cat(v) for et, v in rows.items()},
            col={et: torch.cat(v) for et, v in cols.items()},
            edge={et: torch.cat(v) for et, v in edges.items()},
            num_sampled_nodes=per_hop_nodes,
            num_sampled_edges={et: [e.numel() for e in v] for et, v in edges.items()},
        )
