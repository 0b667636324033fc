"""Model building blocks: sparse propagation gradients, LightGCN semantics, social fusion, SAGE."""

from __future__ import annotations

import torch

from graphrec.learn.interactions import Interactions
from graphrec.learn.models import LightGCN, SocialLightGCN, bipartite_adjacency, build_model, propagate, symmetric_csr
from graphrec.learn.models.propagation import aggregate, mean_adjacency
from graphrec.learn.config import TrainConfig


def _dense_sym(row, col, n):
    a = torch.zeros(n, n)
    a[row, col] = 1
    a[col, row] = 1
    d = a.sum(1).pow(-0.5)
    d[torch.isinf(d)] = 0
    return d[:, None] * a * d[None, :]


def test_symmetric_csr_matches_dense_normalisation():
    row, col = torch.tensor([0, 1, 1, 3]), torch.tensor([1, 2, 3, 4])
    adj = symmetric_csr(row, col, 6)
    torch.testing.assert_close(adj.to_dense(), _dense_sym(row, col, 6))


def test_propagate_gradient_equals_dense_autograd():
    row, col = torch.tensor([0, 1, 2, 0]), torch.tensor([3, 4, 5, 5])
    adj = symmetric_csr(row, col, 6)
    dense = adj.to_dense()
    w = torch.randn(6, 3)
    x1 = torch.randn(6, 3, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    (propagate(adj, propagate(adj, x1)) * w).sum().backward()
    ((dense @ (dense @ x2)) * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_mean_aggregate_gradient_equals_dense_autograd():
    dst, src = torch.tensor([0, 0, 1, 2]), torch.tensor([1, 3, 3, 0])
    adj = mean_adjacency(dst, src, 3, 4)
    dense = adj[0].to_dense()
    torch.testing.assert_close(dense.sum(1), torch.ones(3))
    x1 = torch.randn(4, 2, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_()
    w = torch.randn(3, 2)
    (aggregate(adj, x1) * w).sum().backward()
    ((dense @ x2) * w).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad)


def test_lightgcn_is_layer_mean_and_zero_layers_is_mf():
    users, items = torch.tensor([0, 1, 1]), torch.tensor([0, 0, 1])
    adj = bipartite_adjacency(users, items, 2, 2)
    model = LightGCN(adj, 2, 2, dim=4, num_layers=2)
    e = model.embedding.weight
    d = adj.to_dense()
    expected = (e + d @ e + d @ (d @ e)) / 3
    u, i = model()
    torch.testing.assert_close(torch.cat([u, i]), expected)
    mf = LightGCN(adj, 2, 2, dim=4, num_layers=0)
    u, i = mf()
    torch.testing.assert_close(torch.cat([u, i]), mf.embedding.weight)


def test_social_model_moves_users_towards_friends_only():
    users, items = torch.tensor([0, 1]), torch.tensor([0, 1])
    adj = bipartite_adjacency(users, items, 3, 2)
    social = symmetric_csr(torch.tensor([0]), torch.tensor([2]), 3)
    torch.manual_seed(0)
    model = SocialLightGCN(adj, social, 3, 2, dim=4, num_layers=1, social_weight=1.0)
    plain = LightGCN(adj, 3, 2, dim=4, num_layers=1)
    plain.embedding.weight.data.copy_(model.embedding.weight.data)
    u_s, i_s = model()
    u_p, i_p = plain()
    torch.testing.assert_close(i_s, i_p)  # items are not touched by the social graph
    torch.testing.assert_close(u_s[1], u_p[1])  # user 1 has no friend
    assert not torch.allclose(u_s[0], u_p[0])  # user 0 hears from user 2
    (u_s.sum() + i_s.sum()).backward()
    assert model.social_logit.grad is not None


def _tiny() -> Interactions:
    train = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 1, 2, 3]])
    return Interactions(4, 5, train, train[:, :0], torch.tensor([[0, 3], [2, 4]]),
                        social=torch.tensor([[0, 3], [3, 1]]),
                        item_category=torch.tensor([[0, 1, 2, 3, 4], [0, 0, 1, 1, 1]]), num_categories=2)


def test_sage_embeds_user_without_purchases_from_friends():
    data = _tiny()
    model = build_model("sage", data, TrainConfig(model="sage", dim=8, layers=2))
    u, i = model()
    assert u.shape == (4, 8) and i.shape == (5, 8)
    # User 3 bought nothing; their embedding depends on their friends' (0 and 1) representation.
    with torch.no_grad():
        model.item_emb.weight[0] += 10.0  # an item user 0 bought
    u2, _ = model()
    assert not torch.allclose(u[3], u2[3])
    assert torch.isfinite(u).all()


def test_build_model_uses_training_pairs_only():
    data = _tiny()
    model = build_model("lightgcn", data, TrainConfig(dim=4, layers=1))
    dense = model.adj.to_dense()
    # Test pairs (0, 2) and (3, 4): no edge in the propagation graph.
    assert dense[0, 4 + 2] == 0 and dense[3, 4 + 4] == 0
    assert dense[0, 4 + 0] > 0
