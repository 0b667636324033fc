"""Recommendation models: tensors in, embeddings out. Nothing here knows about Neo4j or files.

Every model's forward returns final (user, item) embeddings scored by dot product, so the
artifact and the API never need to know which model produced them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from graphrec.models.lightgcn import LightGCN
from graphrec.models.propagation import bipartite_adjacency, propagate, symmetric_csr
from graphrec.models.social import SocialLightGCN

if TYPE_CHECKING:
    from graphrec.interactions import Interactions
    from graphrec.train import TrainConfig

MODELS = ("lightgcn", "social", "sage")

__all__ = ["LightGCN", "SocialLightGCN", "MODELS", "build_model", "bipartite_adjacency",
           "propagate", "symmetric_csr"]


def build_model(name: str, data: "Interactions", config: "TrainConfig",
                device: torch.device | None = None) -> nn.Module:
    """The model ``name`` over the *training* graph of ``data`` (valid/test pairs never enter)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    device = device or torch.device("cpu")
    if name == "sage":  # builds its own per-relation mean adjacencies
        from graphrec.models.sage import HeteroSAGE

        return HeteroSAGE.from_interactions(data, config).to(device)
    adj = bipartite_adjacency(data.train[0], data.train[1], data.num_users, data.num_items).to(device)
    if name == "lightgcn":
        model = LightGCN(adj, data.num_users, data.num_items, config.dim, config.layers, config.init_std)
    else:
        social = symmetric_csr(data.social[0], data.social[1], data.num_users).to(device)
        model = SocialLightGCN(adj, social, data.num_users, data.num_items, config.dim,
                               config.layers, config.social_weight, config.init_std)
    if config.init == "spectral":
        model.spectral_init_(config.init_std, config.seed)
    elif config.init != "normal":
        raise ValueError(f"unknown init {config.init!r} (normal or spectral)")
    return model.to(device)
