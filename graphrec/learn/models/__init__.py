"""Recommendation models: tensors in, embeddings out. Nothing here knows about Neo4j or files.

Every model's forward returns final (user, item) embeddings scored by dot product, so the
artifact and the API never need to know which model produced them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from graphrec.learn.models.inputs import ModelGraph
from graphrec.learn.models.lightgcn import LightGCN
from graphrec.learn.models.propagation import (FastLGConv, FastSAGEConv, bipartite_adjacency, normalized_csr,
                                               propagate, symmetric_csr)
from graphrec.learn.models.social import SocialLightGCN

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphrec.learn.interactions import Interactions
    from graphrec.learn.config import TrainConfig

MODELS = ("lightgcn", "social", "sage")

__all__ = ["LightGCN", "SocialLightGCN", "MODELS", "build_model", "bipartite_adjacency",
           "propagate", "symmetric_csr", "normalized_csr", "FastLGConv", "FastSAGEConv", "ModelGraph"]


def build_model(name: str, data: "Interactions | HeteroData", config: "TrainConfig",
                device: torch.device | None = None) -> nn.Module:
    """The model ``name`` over the *training* graph of ``data`` (valid/test pairs never enter).

    ``data`` is the snapshot's ``HeteroData`` (``load_snapshot``) or its ``to_interactions``: both
    give the same model (see :class:`ModelGraph`).
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    device = device or torch.device("cpu")
    if name == "sage":  # builds its own per-relation mean adjacencies
        from graphrec.learn.models.sage import HeteroSAGE

        return HeteroSAGE.from_interactions(data, config).to(device)
    g = ModelGraph.of(data)
    adj = bipartite_adjacency(g.train[0], g.train[1], g.num_users, g.num_items).to(device)
    if name == "lightgcn":
        model = LightGCN(adj, g.num_users, g.num_items, config.dim, config.layers, config.init_std)
    else:
        social = normalized_csr(g.social[0], g.social[1], g.num_users).to(device)
        model = SocialLightGCN(adj, social, g.num_users, g.num_items, config.dim,
                               config.layers, config.social_weight, config.init_std)
    if config.init == "spectral":
        model.spectral_init_(config.init_std, config.seed)
    elif config.init != "normal":
        raise ValueError(f"unknown init {config.init!r} (normal or spectral)")
    return model.to(device)
