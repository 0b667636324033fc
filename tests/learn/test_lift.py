"""Lift over most-popular with a paired bootstrap interval, per slice (graphrec.learn.lift via evaluate)."""

from __future__ import annotations

import numpy as np
import pytest

from graphrec.cli.learn import evaluation_table
from graphrec.learn.evaluate import artifact_from_embeddings
from graphrec.learn.report import MIN_PLOT_USERS, evaluate
from graphrec.learn.lift import MIN_SLICE_USERS, bootstrap_lift
from graphrec.learn.config import TrainConfig
from graphrec.learn.train import Trainer
from tests.learn.test_training import planted


def test_interval_contains_the_point_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    popular = rng.random(200) * (rng.random(200) < 0.3)
    model = np.clip(popular + rng.normal(0.05, 0.2, 200), 0, 1)
    out = bootstrap_lift(model, popular)
    assert out["low"] <= out["lift"] <= out["high"]
    assert out["lift"] == pytest.approx(model.mean() / popular.mean(), abs=1e-4)
    assert out["low"] < out["high"]
    assert bootstrap_lift(model, popular) == out  # fixed seed: the same report twice
    # A clearly better model on many users: the interval clears 1.
    assert bootstrap_lift(popular + 0.2, popular)["verdict"] == "better"
    # ... a clearly worse one is flagged, not only an equal one.
    assert bootstrap_lift(popular * 0.5, popular)["verdict"] == "not_better"


def test_too_few_users_has_no_lift():
    out = bootstrap_lift(np.ones(MIN_SLICE_USERS - 1), np.zeros(MIN_SLICE_USERS - 1))
    assert out["verdict"] == "too_few_users" and out["lift"] is None and out["low"] is None
    assert MIN_PLOT_USERS == MIN_SLICE_USERS  # one threshold for the plot and the lift


def test_evaluate_flags_a_model_equal_to_popular_and_marks_a_small_slice():
    data = planted()
    pop = data.popularity().float().numpy()
    # Every user scores products by popularity: the model *is* most-popular.
    art = artifact_from_embeddings(data, np.ones((data.num_users, 1)), pop[:, None], "popularity_model")
    report = evaluate(art, data, ks=(10, 20), baselines=("popular",), zero_sample=MIN_SLICE_USERS - 1)
    lift = report["lift_over_popular"]
    assert lift["overall"]["verdict"] == "not_better"
    assert lift["overall"]["lift"] == pytest.approx(1.0)
    assert lift["overall"]["low"] <= 1.0 <= lift["overall"]["high"]
    assert lift["overall"]["n_users"] == report["overall"]["n_users"]
    assert lift["zero_interaction_users"]["verdict"] == "too_few_users"
    assert lift["zero_interaction_users"]["n_users"] == MIN_SLICE_USERS - 1
    table = evaluation_table(report, (10, 20))
    overall_row = next(line for line in table.splitlines() if "popularity_model" in line)
    assert "NOT BETTER than popular" in overall_row and "1.00x [" in overall_row
    zero_row = next(line for line in table.splitlines() if "zero interaction users" in line)
    assert "too few users" in zero_row


def test_evaluate_says_better_for_a_model_that_learned_the_communities():
    data = planted()
    result = Trainer(data, TrainConfig(dim=16, layers=2, epochs=30, batch_size=256, negatives=32, lr=0.02)).fit()
    art = artifact_from_embeddings(data, result.user_emb.numpy(), result.item_emb.numpy(), "lightgcn")
    # No popular baseline requested: the lift still ranks popular for itself.
    report = evaluate(art, data, ks=(10,), baselines=(), zero_sample=40)
    lift = report["lift_over_popular"]
    assert report["baselines"] == {}
    assert lift["overall"]["verdict"] == "better" and lift["overall"]["low"] > 1.0
    assert lift["overall"]["model"] == pytest.approx(
        evaluate(art, data, ks=(20,), baselines=())["overall"]["recall@20"], abs=1e-6)
    assert report["lift_method"]["metric"] == "recall@20"
