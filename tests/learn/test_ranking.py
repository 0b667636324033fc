"""Metric definitions against hand-computed examples (LightGCN / SocialLGN conventions)."""

from __future__ import annotations

import math

import pytest
import torch

from graphrec.learn.ranking import UserItems, evaluate_scores, metrics_from_hits


def test_hand_computed_two_users():
    # 6 items. User 0: test {1, 3}, known {0}; ranking (known masked) 5, 3, 2, 1, 4.
    # User 1: test {4}, nothing known; ranking 4, 0, ...
    scores = torch.tensor([[9.0, 2, 3, 4, 0, 5],
                           [5.0, 1, 1, 1, 9, 1]])
    known = UserItems.from_pairs(torch.tensor([0]), torch.tensor([0]), 2)
    test = UserItems.from_pairs(torch.tensor([0, 0, 1]), torch.tensor([1, 3, 4]), 2)
    m = evaluate_scores(lambda rows: scores[rows], known, test, 6, ks=(2, 4))
    # User 0 @2: top 5, 3 -> one hit at rank 2. recall 1/2, precision 1/2,
    #   ndcg = (1/log2 3) / (1 + 1/log2 3).  @4: hits at ranks 2 and 4 -> recall 1,
    #   ndcg = (1/log2 3 + 1/log2 5) / (1 + 1/log2 3).
    # User 1: hit at rank 1: recall 1, ndcg 1 at both k; precision 1/2, 1/4.
    u0_n2 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    u0_n4 = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert m["recall@2"] == pytest.approx((0.5 + 1) / 2)
    assert m["precision@2"] == pytest.approx((0.5 + 0.5) / 2)
    assert m["ndcg@2"] == pytest.approx((u0_n2 + 1) / 2)
    assert m["hit@2"] == pytest.approx(1.0)
    assert m["recall@4"] == pytest.approx(1.0)
    assert m["precision@4"] == pytest.approx((0.5 + 0.25) / 2)
    assert m["ndcg@4"] == pytest.approx((u0_n4 + 1) / 2)
    # coverage@2: {5, 3} and {4, 0} -> 4 of 6 items.
    assert m["coverage@2"] == pytest.approx(4 / 6)
    assert m["n_users"] == 2


def test_known_items_are_masked_not_counted():
    scores = torch.tensor([[9.0, 8, 7, 6]])
    known = UserItems.from_pairs(torch.tensor([0, 0]), torch.tensor([0, 1]), 1)
    test = UserItems.from_pairs(torch.tensor([0]), torch.tensor([2]), 1)
    m = evaluate_scores(lambda rows: scores[rows], known, test, 4, ks=(1,))
    assert m["recall@1"] == 1.0 and m["ndcg@1"] == 1.0
    unmasked = evaluate_scores(lambda rows: scores[rows], None, test, 4, ks=(1,))
    assert unmasked["recall@1"] == 0.0


def test_recall_divides_by_test_size_and_idcg_uses_min_k_test():
    # One user, 5 test items, k = 2, both top slots hit: recall 2/5, ndcg 1 (IDCG over min(2, 5)).
    hits = torch.tensor([[True, True]])
    m = metrics_from_hits(hits, torch.tensor([5]), ks=(2,))
    assert m["recall@2"] == pytest.approx(0.4)
    assert m["ndcg@2"] == pytest.approx(1.0)
    # A hit only at rank 2 with 1 test item: DCG 1/log2(3), IDCG 1.
    m = metrics_from_hits(torch.tensor([[False, True]]), torch.tensor([1]), ks=(2,))
    assert m["ndcg@2"] == pytest.approx(1 / math.log2(3))


def test_users_without_test_items_are_ignored():
    scores = torch.rand(3, 5)
    test = UserItems.from_pairs(torch.tensor([1]), torch.tensor([2]), 3)
    m = evaluate_scores(lambda rows: scores[rows], None, test, 5, ks=(5,))
    assert m["n_users"] == 1 and m["recall@5"] == 1.0


def test_user_items_rows_roundtrip():
    users = torch.tensor([2, 0, 2, 1, 2])
    items = torch.tensor([4, 1, 0, 3, 2])
    ui = UserItems.from_pairs(users, items, 4)
    assert ui.counts.tolist() == [1, 1, 3, 0]
    pos, its = ui.rows(torch.tensor([2, 3, 0]))
    assert sorted(zip(pos.tolist(), its.tolist())) == [(0, 0), (0, 2), (0, 4), (2, 1)]


def test_itemknn_scores_equal_dense_cosine():
    from graphrec.learn.evaluate import itemknn_scorer
    from graphrec.learn.interactions import Interactions

    train = torch.tensor([[0, 0, 1, 1, 2, 2, 3], [0, 1, 1, 2, 0, 2, 3]])
    data = Interactions(4, 4, train, train[:, :0], train[:, :0])
    R = torch.zeros(4, 4)
    R[train[0], train[1]] = 1
    norm = R.sum(0).sqrt()
    cos = (R.T @ R) / (norm[:, None] * norm[None, :])
    torch.testing.assert_close(itemknn_scorer(data)(torch.arange(4)), R @ cos)


def test_k_larger_than_catalogue():
    scores = torch.tensor([[0.1, 0.9, 0.5]])
    test = UserItems.from_pairs(torch.tensor([0]), torch.tensor([0]), 1)
    m = evaluate_scores(lambda rows: scores[rows], None, test, 3, ks=(2, 10))
    assert m["recall@2"] == 0.0 and m["recall@10"] == 1.0
    assert m["ndcg@10"] == pytest.approx(1 / math.log2(4))
