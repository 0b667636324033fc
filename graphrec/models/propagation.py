"""Sparse propagation shared by the LightGCN-family models.

LightGCN's layer is ``x' = Â x`` with the symmetric normalisation ``Â = D^-1/2 A D^-1/2``. Â is
symmetric, so the gradient of ``Â x`` with respect to ``x`` is ``Â g``: one more sparse-dense product
with the same CSR matrix. Writing that backward by hand (instead of autograd through
``torch.sparse.mm``, which builds a transposed copy every step) makes a propagation step on a
million-edge graph about 3x cheaper on CPU.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


class _SpMM(torch.autograd.Function):
    """``adj @ x`` whose backward is ``adj_t @ grad`` with a transpose built once, not per step."""

    @staticmethod
    def forward(ctx, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return adj @ x

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, ctx.adj_t @ grad.contiguous()


def propagate(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a *symmetric* sparse CSR ``adj`` (its own transpose), differentiable in ``x``."""
    return _SpMM.apply(adj, adj, x)


def symmetric_csr(row: Tensor, col: Tensor, num_nodes: int, weight: Tensor | None = None) -> Tensor:
    """``D^-1/2 A D^-1/2`` as a CSR tensor, for an undirected edge list given in one direction.

    Each (row, col) pair is mirrored; duplicate pairs are summed. Isolated nodes get zero rows.
    """
    if weight is None:
        weight = torch.ones(row.numel(), dtype=torch.float32)
    r = torch.cat([row, col])
    c = torch.cat([col, row])
    w = torch.cat([weight, weight]).float()
    size = (num_nodes, num_nodes)
    coo = torch.sparse_coo_tensor(torch.stack([r, c]), w, size, check_invariants=False).coalesce()
    r, c = coo.indices()
    w = coo.values()
    deg = torch.zeros(num_nodes).index_add_(0, r, w)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt[torch.isinf(inv_sqrt)] = 0.0
    w = inv_sqrt[r] * w * inv_sqrt[c]
    coo = torch.sparse_coo_tensor(torch.stack([r, c]), w, size, check_invariants=False)
    with warnings.catch_warnings():  # "CSR support is in beta": it is what makes this fast
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr()


def bipartite_adjacency(users: Tensor, items: Tensor, num_users: int, num_items: int) -> Tensor:
    """Normalised user–item adjacency over ``num_users + num_items`` nodes (items offset)."""
    return symmetric_csr(users, items + num_users, num_users + num_items)


def mean_adjacency(dst: Tensor, src: Tensor, num_dst: int, num_src: int) -> tuple[Tensor, Tensor]:
    """Row-normalised ``[num_dst, num_src]`` CSR (mean over in-neighbours) and its transpose."""
    deg = torch.bincount(dst, minlength=num_dst).float().clamp(min=1)
    size = (num_dst, num_src)
    coo = torch.sparse_coo_tensor(torch.stack([dst, src]), 1.0 / deg[dst], size,
                                  check_invariants=False).coalesce()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return coo.to_sparse_csr(), coo.t().coalesce().to_sparse_csr()


def aggregate(adj: tuple[Tensor, Tensor], x: Tensor) -> Tensor:
    """``adj[0] @ x`` with the hand-written backward ``adj[1] @ grad`` (adj[1] = adj[0]^T)."""
    return _SpMM.apply(adj[0], adj[1], x)
