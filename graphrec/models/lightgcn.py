"""LightGCN (He et al., SIGIR 2020) on a sparse CSR adjacency.

No feature transforms, no non-linearities: each layer is ``x' = Â x`` over the user–item graph and
the output is the mean of the layer-0..L embeddings. Tensors only; the graph comes in as a CSR
matrix built by :func:`graphrec.models.propagation.bipartite_adjacency`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from graphrec.models.propagation import propagate


class LightGCN(nn.Module):
    def __init__(self, adj: Tensor, num_users: int, num_items: int, dim: int = 64,
                 num_layers: int = 3, init_std: float = 0.1) -> None:
        super().__init__()
        # Not a parameter or buffer: the CSR graph is data, rebuilt from the snapshot when loading.
        self.adj = adj
        self.num_users = num_users
        self.num_items = num_items
        self.num_layers = num_layers
        self.embedding = nn.Embedding(num_users + num_items, dim)
        nn.init.normal_(self.embedding.weight, std=init_std)

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Layer-0 embeddings of a batch (the ones L2 regularisation applies to)."""
        return self.embedding.weight[users], self.embedding.weight[items + self.num_users]

    def layer(self, x: Tensor, k: int) -> Tensor:
        return propagate(self.adj, x)

    def forward(self) -> tuple[Tensor, Tensor]:
        """Final (user, item) embeddings: the mean over layers 0..L."""
        x = self.embedding.weight
        out = x
        for k in range(self.num_layers):
            x = self.layer(x, k)
            out = out + x
        out = out / (self.num_layers + 1)
        return out[: self.num_users], out[self.num_users :]
