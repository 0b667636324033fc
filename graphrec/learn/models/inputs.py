"""What the models read from a graph: the snapshot's ``HeteroData`` or the flat ``Interactions``.

Both give the same :class:`ModelGraph`, so a model built from ``load_snapshot(...)`` directly (its
node stores and ``edge_index_dict``) equals one built from ``to_interactions`` of it. Only training
edges enter: from ``HeteroData`` the purchases come from ``(product, rev_bought, user)``, which
holds training edges only; the split-coded ``(user, bought, product)`` is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import torch
from torch import Tensor

if TYPE_CHECKING:
    from torch_geometric.data import HeteroData

    from graphrec.learn.interactions import Interactions

# The user-user relations the models read, as graphrec.learn.snapshot.to_interactions flattens them.
SOCIAL_EDGE_TYPES = (("user", "friend", "user"), ("user", "follows", "user"))


@dataclass(frozen=True)
class ModelGraph:
    num_users: int
    num_items: int
    num_categories: int
    train: Tensor  # [2, E] (user, item) training purchases
    # [2, S] user-user edges, mirrored: the flat social list plus its reverse. The snapshot already
    # stores FRIEND both ways, so a friendship counts twice, a FOLLOWS once; that is what the
    # models have always trained on, kept so both inputs give the same model.
    social: Tensor
    item_category: Tensor  # [2, C] (item, category)

    @classmethod
    def of(cls, data: Union["Interactions", "HeteroData"]) -> "ModelGraph":
        from torch_geometric.data import HeteroData

        return cls.from_hetero(data) if isinstance(data, HeteroData) else cls.from_interactions(data)

    @classmethod
    def from_interactions(cls, data: "Interactions") -> "ModelGraph":
        return cls(data.num_users, data.num_items, data.num_categories, data.train,
                   torch.cat([data.social, data.social.flip(0)], 1), data.item_category)

    @classmethod
    def from_hetero(cls, data: "HeteroData") -> "ModelGraph":
        edges = data.edge_index_dict
        empty = torch.zeros(2, 0, dtype=torch.long)
        if ("product", "rev_bought", "user") not in edges:
            raise ValueError("HeteroData has no (product, rev_bought, user) edges: the training "
                             "purchases models learn from (see graphrec.learn.snapshot.load_snapshot)")
        flat = torch.cat([edges[et] for et in SOCIAL_EDGE_TYPES if et in edges] or [empty], 1)
        return cls(
            num_users=int(data["user"].num_nodes),
            num_items=int(data["product"].num_nodes),
            num_categories=int(data["category"].num_nodes) if "category" in data.node_types else 0,
            train=edges[("product", "rev_bought", "user")].flip(0),
            social=torch.cat([flat, flat.flip(0)], 1),
            item_category=edges.get(("product", "in_category", "category"), empty),
        )
