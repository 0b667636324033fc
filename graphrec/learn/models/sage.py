"""Inductive heterogeneous GraphSAGE link predictor over users, products, categories and friends.

Users have **no ID embedding**: a user is their (degree) features plus what GraphSAGE aggregates
from the products they bought and from their friends, so a user who did not exist at training time
is embedded from their edges alone. Products have an ID embedding (the catalogue is what is
learned) plus their features and, through ``in_category``, their categories' learned embeddings.

A product nobody bought has no ID embedding worth the name and no purchase edges to aggregate, so the
model also has a **content tower** (:meth:`HeteroSAGE.content`): a product from its categories alone,
``W_content mean_{c in C(p)} e_c`` with the same category embeddings ``e_c`` the layers read, plus a
per-category score offset. The trainer scores it against the same users with the same loss
(:meth:`graphrec.learn.train.Trainer.content_loss`), so it is trained end to end on every purchase,
and a product nobody bought is embedded with it (the artifact stores one content row per category:
:func:`graphrec.coldstart.fold_in_product`).

Each layer is GraphSAGE with the mean aggregator per relation, summed per destination type (what
``HeteroConv({rel: SAGEConv(aggr="mean")}, aggr="sum")`` computes)::

    h_dst = W_root x_dst + sum_rel W_rel mean_{src in N_rel(dst)} x_src

each relation being a :class:`~graphrec.learn.models.propagation.FastSAGEConv` (``SAGEConv(aggr="mean")``
whose mean aggregation is a CSR product with a hand-written backward: stock SAGEConv costs 4-5x
more per step on a 2-core CPU with its scatter-based messages) without its own root weight, since
the per-type root ``W_root`` is shared by the relations into that type. As in LightGCN, no non-linearity between
layers, and the output is the mean of the layer outputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphrec.learn.models.inputs import ModelGraph
from graphrec.learn.models.propagation import FastSAGEConv, aggregate, mean_adjacency

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphrec.learn.interactions import Interactions
    from graphrec.learn.config import TrainConfig

EdgeType = tuple[str, str, str]
NODE_TYPES = ("user", "product", "category")


class HeteroSAGELayer(nn.Module):
    def __init__(self, edge_types: list[EdgeType], dim: int) -> None:
        super().__init__()
        self.edge_types = edge_types
        self.root = nn.ModuleDict({t: nn.Linear(dim, dim, bias=False) for t in NODE_TYPES})
        self.rel = nn.ModuleDict({"__".join(et): FastSAGEConv(dim, dim, root_weight=False, bias=False)
                                  for et in edge_types})
        # Identity start: the layer begins as plain mean propagation (LightGCN-like), a far better
        # starting point for collaborative filtering than random projections; no biases, which
        # would add one shared direction to every node and wash cosine scores out.
        for lin in [*self.root.values(), *(conv.lin_l for conv in self.rel.values())]:
            nn.init.eye_(lin.weight)

    def forward(self, x: dict[str, Tensor], adjs: dict[EdgeType, tuple[Tensor, Tensor]],
                num_dst: dict[str, int] | None = None) -> dict[str, Tensor]:
        """``num_dst``: on a sampled subgraph, only the first rows of each type are destinations
        (the nodes this layer still has to compute); ``adjs`` then map sources to those rows."""
        out = {t: self.root[t](x[t] if num_dst is None else x[t][: num_dst[t]]) for t in x}
        for et in self.edge_types:
            src, _, dst = et
            adj_t, adj = adjs[et]
            out[dst] = out[dst] + self.rel["__".join(et)](x[src], adj_t, transpose=adj)
        return out


class HeteroSAGE(nn.Module):
    BOUGHT: EdgeType = ("product", "rev_bought", "user")  # what a user's layer-0 input averages

    def __init__(self, num_users: int, num_items: int, num_categories: int,
                 edges: dict[EdgeType, Tensor], user_x: Tensor, item_x: Tensor, dim: int = 64,
                 num_layers: int = 2, init_std: float = 0.1) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        sizes = {"user": num_users, "product": num_items, "category": max(num_categories, 1)}
        # Graph structure is data (training edges only), not parameters; the edge lists stay for
        # sampled training (graphrec.learn.minibatch).
        self.sizes, self.edges = sizes, edges
        self.adjs = {et: mean_adjacency(ei[1], ei[0], sizes[et[2]], sizes[et[0]]) for et, ei in edges.items()}
        self.user_x, self.item_x = user_x, item_x
        self.item_emb = nn.Embedding(num_items, dim)
        self.cat_emb = nn.Embedding(sizes["category"], dim)
        nn.init.normal_(self.item_emb.weight, std=init_std)
        nn.init.normal_(self.cat_emb.weight, std=init_std)
        self.user_in = nn.Linear(user_x.shape[1], dim, bias=False)
        self.item_in = nn.Linear(item_x.shape[1], dim, bias=False)
        nn.init.normal_(self.user_in.weight, std=init_std)
        nn.init.normal_(self.item_in.weight, std=init_std)
        self.layers = nn.ModuleList(HeteroSAGELayer(list(edges), dim) for _ in range(num_layers))
        # Content tower: identity start (a product begins at its categories' mean), zero offsets.
        self.content_in = nn.Linear(dim, dim, bias=False)
        nn.init.eye_(self.content_in.weight)
        self.cat_bias = nn.Parameter(torch.zeros(sizes["category"]))

    @classmethod
    def from_interactions(cls, data: "Interactions | HeteroData", config: "TrainConfig") -> "HeteroSAGE":
        """The model over a snapshot's ``HeteroData`` or its ``Interactions`` (the same model)."""
        g = ModelGraph.of(data)
        u, i = g.train
        edges: dict[EdgeType, Tensor] = {
            ("user", "bought", "product"): g.train,
            ("product", "rev_bought", "user"): g.train.flip(0),
        }
        if g.social.numel():
            edges[("user", "friend", "user")] = g.social
        if g.item_category.numel():
            edges[("product", "in_category", "category")] = g.item_category
            edges[("category", "has_product", "product")] = g.item_category.flip(0)
        # Degree features from training edges only (no leakage), log-scaled.
        user_x = torch.stack([torch.bincount(u, minlength=g.num_users).float().log1p(),
                              torch.bincount(g.social[0], minlength=g.num_users).float().log1p()], 1)
        item_x = torch.bincount(i, minlength=g.num_items).float().log1p()[:, None]
        return cls(g.num_users, g.num_items, g.num_categories, edges, user_x, item_x,
                   config.dim, config.layers, config.init_std)

    HAS_PRODUCT: EdgeType = ("category", "has_product", "product")  # a product <- mean of its categories

    def content_rows(self) -> tuple[Tensor, Tensor]:
        """Per category: its content vector ``W_content e_c`` and score offset. A product's content
        embedding is the mean of its categories' rows, which is all a fold-in needs."""
        return self.content_in(self.cat_emb.weight), self.cat_bias

    def content(self, items: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Products (``items``, default all) embedded from their categories alone:
        ``([n, dim], [n])``, zero for a product without categories."""
        rows, bias = self.content_rows()
        table = torch.cat([rows, bias[:, None]], 1)
        if items is None:
            items = torch.arange(self.num_items, device=table.device)
        if self.HAS_PRODUCT not in self.adjs:
            return table.new_zeros(len(items), rows.shape[1]), table.new_zeros(len(items))
        # The rows of the (product <- category) CSR for just these products, as bags: a training
        # step needs a few thousand products, not the catalogue.
        adj = self.adjs[self.HAS_PRODUCT][0]
        ptr, cats = adj.crow_indices(), adj.col_indices()
        start, counts = ptr[items], ptr[items + 1] - ptr[items]
        offsets = torch.cumsum(counts, 0) - counts
        at = torch.arange(int(counts.sum()), device=table.device) - torch.repeat_interleave(offsets - start, counts)
        out = F.embedding_bag(cats[at], table, offsets, mode="mean")
        return out[:, :-1], out[:, -1]

    def to(self, *args, **kwargs):  # type: ignore[override]
        out = super().to(*args, **kwargs)
        self.adjs = {k: (a.to(*args, **kwargs), b.to(*args, **kwargs)) for k, (a, b) in self.adjs.items()}
        self.user_x, self.item_x = self.user_x.to(*args, **kwargs), self.item_x.to(*args, **kwargs)
        return out

    def ego(self, users: Tensor, items: Tensor) -> tuple[Tensor, Tensor]:
        """Layer-0 representations of a batch, for L2 regularisation."""
        return self.user_in(self.user_x[users]), self.item_emb.weight[items]

    def forward(self) -> tuple[Tensor, Tensor]:
        items = self.item_emb.weight + self.item_in(self.item_x)
        # A user's input is the mean of what they bought (plus degree features): distinct per user
        # without any user ID parameter, which is what makes the model inductive for users.
        bought = self.adjs[self.BOUGHT]
        x = {"user": self.user_in(self.user_x) + aggregate(bought, items),
             "product": items,
             "category": self.cat_emb.weight}
        total = {t: x[t] for t in ("user", "product")}
        for layer in self.layers:
            x = layer(x, self.adjs)
            for t in total:
                total[t] = total[t] + x[t]
        n = len(self.layers) + 1
        return total["user"] / n, total["product"] / n
