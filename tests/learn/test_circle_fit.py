"""The circle term on the learning side: who is in a circle, the term evaluation adds, and the weight
validation chooses (graphrec.circle, graphrec.learn.circle_fit)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from graphrec.learn.circle_fit import Circles, ServedScores, choose_circle_weight
from graphrec.learn.evaluate import EvalContext, artifact_from_embeddings, evaluate_artifact
from graphrec.learn.interactions import Interactions
from graphrec.learn.ranking import evaluate_scores


def _pairs(pairs: list[tuple[int, int]]) -> torch.Tensor:
    return torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)


def _brute_term(data: Interactions, weight: float) -> np.ndarray:
    """weight x (circle members who bought the item) / sqrt(circle size), from Python sets."""
    follows = set(map(tuple, data.follows.t().tolist()))
    circle: list[set[int]] = [set() for _ in range(data.num_users)]
    for a, b in data.social.t().tolist():
        circle[a].add(b)
        if (a, b) not in follows:  # FRIEND counts both ways, FOLLOWS only for the follower
            circle[b].add(a)
    bought: list[set[int]] = [set() for _ in range(data.num_users)]
    for u, i in data.train.t().tolist():
        bought[u].add(i)
    term = np.zeros((data.num_users, data.num_items), np.float32)
    for u in range(data.num_users):
        members = circle[u] - {u}
        for m in members:
            for i in bought[m]:
                term[u, i] += weight / math.sqrt(len(members))
    return term


def _random_graph(seed: int = 3) -> Interactions:
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    train = {(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 300), rng.integers(0, n_items, 300))}
    train_list = sorted(train) + sorted(train)[:10]  # repeat purchases count once
    valid = sorted({(int(u), int(i)) for u, i in zip(rng.integers(0, n_users, 60), rng.integers(0, n_items, 60))}
                   - train)
    friends = [(int(a), int(b)) for a, b in zip(rng.integers(0, n_users, 50), rng.integers(0, n_users, 50))]
    follows = [(1, 2), (3, 4), (5, 5)]  # a self-follow counts for nobody
    return Interactions(n_users, n_items, _pairs(train_list), _pairs(valid), _pairs(valid[:20]),
                        social=_pairs(friends + follows), follows=_pairs(follows))


def test_circles_term_matches_sets():
    data = _random_graph()
    circles = Circles.of(data)
    rows = torch.arange(data.num_users)
    got = circles.add_to(torch.zeros(data.num_users, data.num_items), rows, 0.8).numpy()
    np.testing.assert_allclose(got, _brute_term(data, 0.8), rtol=1e-6, atol=1e-7)
    assert got[2].sum() == pytest.approx(_brute_term(data, 0.8)[2].sum())  # followee 2 is no follower of 1
    assert circles.add_to(torch.zeros(3, data.num_items), rows[:3], 0.0).abs().sum() == 0


def test_evaluation_scores_dot_product_plus_term():
    data = _random_graph()
    rng = np.random.default_rng(0)
    art = artifact_from_embeddings(data, rng.normal(size=(40, 4)), rng.normal(size=(30, 4)))
    art.manifest["circle"] = {"weight": 1.5}
    ctx = EvalContext.build(data)
    expected = torch.from_numpy(art.user_emb @ art.product_emb.T + _brute_term(data, 1.5))
    got = ServedScores(art, data).scorer()(torch.arange(40))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    report = evaluate_artifact(art, ctx, ks=(5,))
    brute = evaluate_scores(lambda rows: expected[rows], ctx.known, ctx.test, data.num_items, (5,), ctx.test_users)
    assert report["overall"]["recall@5"] == pytest.approx(brute["recall@5"])


def _friends_predict(informative_embeddings: bool) -> tuple[Interactions, np.ndarray, np.ndarray]:
    """Pairs of friends (2k, 2k+1): the odd one bought 25 items (more than the 20 ranked); the even
    one bought 3 others and goes on to buy one of the friend's (valid), or, with
    ``informative_embeddings``, an item nobody in the circle bought, which its embedding points at
    exactly."""
    rng = np.random.default_rng(1)
    n_pairs, n_items = 60, 80
    train, valid, friends = [], [], []
    user_emb = rng.normal(scale=0.01, size=(2 * n_pairs, n_items))
    for k in range(n_pairs):
        a, b = 2 * k, 2 * k + 1
        items = rng.choice(n_items, 29, replace=False)
        train += [(b, int(i)) for i in items[:25]] + [(a, int(i)) for i in items[25:28]]
        target = int(items[28]) if informative_embeddings else int(items[0])
        valid.append((a, target))
        if informative_embeddings:
            user_emb[a, target] = 1.0
        friends.append((a, b))
    data = Interactions(2 * n_pairs, n_items, _pairs(train), _pairs(valid), _pairs(valid),
                        social=_pairs(friends))
    product_emb = np.eye(n_items) if informative_embeddings else rng.normal(size=(n_items, n_items))
    return data, user_emb, product_emb


def test_weight_chosen_where_friends_predict():
    data, user_emb, product_emb = _friends_predict(informative_embeddings=False)
    record = choose_circle_weight(artifact_from_embeddings(data, user_emb, product_emb), data)
    assert record["weight"] > 0 and record["recall_with"] > record["recall_without"] + 0.3
    tried = dict((w, r) for w, r in record["tried"])
    assert record["n_users"] == 60 and tried[0.0] == record["recall_without"]
    assert tried[record["weight"]] == max(tried.values()) == record["recall_with"]


def test_weight_stays_zero_where_friends_do_not():
    data, user_emb, product_emb = _friends_predict(informative_embeddings=True)
    record = choose_circle_weight(artifact_from_embeddings(data, user_emb, product_emb), data)
    assert record["weight"] == 0.0 and record["recall_without"] == 1.0
    assert "does not raise" in record["reason"]
    assert max(r for _, r in record["tried"]) == 1.0 and min(r for _, r in record["tried"]) < 1.0


def test_no_social_edges_no_term():
    data, user_emb, product_emb = _friends_predict(informative_embeddings=False)
    data.social = torch.zeros(2, 0, dtype=torch.long)
    record = choose_circle_weight(artifact_from_embeddings(data, user_emb, product_emb), data)
    assert record == {"weight": 0.0, "metric": "recall@20", "seed": 2024, "reason": "no social edges"}


def test_sage_is_off_by_default_and_a_term_turned_off_stays_off(tmp_path):
    import json

    from graphrec.learn.circle_fit import circle_wanted
    from graphrec.learn.coldstart_validation import rechoose
    from graphrec.learn.config import TrainConfig
    from graphrec.learn.train import Trainer, build_artifact

    assert circle_wanted("lightgcn", None) and circle_wanted("social", None) and not circle_wanted("sage", None)
    assert circle_wanted("sage", True) and not circle_wanted("lightgcn", False)
    data, _, _ = _friends_predict(informative_embeddings=False)
    result = Trainer(data, TrainConfig(dim=8, layers=1, epochs=2, batch_size=64, negatives=8)).fit()
    on, off = build_artifact(result, data, tmp_path / "on"), build_artifact(result, data, tmp_path / "off", circle=False)

    def circle(path):
        return json.loads((path / "manifest.json").read_text())["circle"]

    assert circle(on)["weight"] > 0  # lightgcn's default: chosen, and here the friends predict
    assert circle(off) == {"weight": 0.0, "metric": "recall@20", "turned_off": True,
                           "reason": "turned off by --no-circle"}
    rechoose(off, data)
    assert circle(off)["turned_off"] and circle(off)["weight"] == 0.0
    rechoose(on, data)
    assert circle(on)["weight"] > 0
