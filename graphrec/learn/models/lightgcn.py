"""LightGCN (He et al., SIGIR 2020) on a sparse CSR adjacency.

No feature transforms, no non-linearities: each layer is ``x' = Â x`` over the user–item graph and
the output is the mean of the layer-0..L embeddings. Tensors only; the graph comes in as a CSR
matrix built by :func:`graphrec.learn.models.propagation.bipartite_adjacency`, and each layer is the PyG
layer :class:`~graphrec.learn.models.propagation.FastLGConv` (``LGConv`` with the fast CSR product).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.learn.models.propagation import FastLGConv


class LightGCN(nn.Module):
    def __init__(self, adj: Tensor, num_users: int, num_items: int, dim: int = 64,
                 num_layers: int = 3, init_std: float = 0.1) -> None:
        super().__init__()
        # Not a parameter or buffer: the CSR graph is data, rebuilt from the snapshot when loading.
        self.adj = adj
        self.num_users = num_users
        self.num_items = num_items
        self.num_layers = num_layers
        self.conv = FastLGConv()  # parameter-free: the state_dict is unchanged
        self.embedding = nn.Embedding(num_users + num_items, dim)
        nn.init.normal_(self.embedding.weight, std=init_std)

    @torch.no_grad()
    def spectral_init_(self, init_std: float = 0.1, seed: int = 0) -> None:
        """Start from the top singular vectors of the normalised interaction matrix R̃ = Â[users, items].

        ``[U; V]`` are eigenvectors of Â (``Â [U; V] = [U; V] Σ``), so LightGCN's output from this
        start is already a low-pass spectral filter of the graph; training refines it instead of
        first having to find the graph's dominant directions from noise. Rows are scaled to the
        mean norm of a normal initialisation with ``init_std``.
        """
        import numpy as np
        import scipy.sparse as sp
        from scipy.sparse.linalg import svds

        dim = self.embedding.embedding_dim
        adj = self.adj.cpu()
        full = sp.csr_matrix((adj.values().numpy(), adj.col_indices().numpy(), adj.crow_indices().numpy()),
                             shape=tuple(adj.shape))
        r = full[: self.num_users, self.num_users :]
        k = min(dim, min(r.shape) - 1)
        if k < 1 or r.nnz == 0:  # nothing to decompose (a graph of one user or one product)
            return
        u, _, vt = svds(r.astype(np.float64), k=k, random_state=seed)
        x = np.zeros((self.num_users + self.num_items, dim))
        x[: self.num_users, :k], x[self.num_users :, :k] = u, vt.T
        x *= init_std * np.sqrt(dim) / max(np.linalg.norm(x, axis=1).mean(), 1e-12)
        self.embedding.weight.copy_(torch.from_numpy(x))

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings of a batch (the ones L2 regularisation applies to)."""
        return self.embedding.weight[users], self.embedding.weight[items + self.num_users]

    def layer(self, x: Tensor, k: int) -> Tensor:
        return self.conv(x, self.adj)

    def forward(self) -> tuple[Tensor, Tensor]:
        """Final (user, item) embeddings: the mean over layers 0..L."""
        x = self.embedding.weight
        out = x
        for k in range(self.num_layers):
            x = self.layer(x, k)
            out = out + x
        out = out / (self.num_layers + 1)
        return out[: self.num_users], out[self.num_users :]
