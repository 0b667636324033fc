"""Training defaults follow the graph's size continuously, and every run has a time budget."""

from __future__ import annotations

import math

import pytest

from graphrec.learn.config import (LARGE_PAIRS, SCALED_RANGES, SMALL_PAIRS, TRAIN_STEPS, default_config,
                                   graph_scale, scaled_defaults)

SIZES = [int(1_000 * 1.02 ** k) for k in range(0, 700)]  # 1k .. ~1M training pairs, 2% apart
NUMERIC = ("batch_size", "negatives", "lr", "temperature", "time_budget_s")


def test_no_setting_jumps_between_neighbouring_graph_sizes():
    # A graph 2% larger never gets settings more than a few percent apart: there is no threshold.
    for small, large in zip(SIZES, SIZES[1:]):
        a, b = scaled_defaults(small), scaled_defaults(large)
        assert {k: v for k, v in a.items() if k not in NUMERIC + ("epochs",)} == \
            {k: v for k, v in b.items() if k not in NUMERIC + ("epochs",)}, (small, large)
        for key in NUMERIC:
            assert b[key] >= a[key], (key, small, large)  # bigger graphs never get less
            assert b[key] <= a[key] * 1.10 + 256, (key, small, large, a[key], b[key])


def test_anchors_keep_the_settings_they_were_tuned_with():
    small, large = scaled_defaults(SMALL_PAIRS), scaled_defaults(LARGE_PAIRS)
    assert {k: small[k] for k in SCALED_RANGES} == {k: lo for k, (lo, _) in SCALED_RANGES.items()}
    assert {k: large[k] for k in SCALED_RANGES} == {k: hi for k, (_, hi) in SCALED_RANGES.items()}
    # Gowalla's tuned run: 30 epochs, validation every 2, a 28-minute budget, temperature 0.15.
    assert (large["epochs"], large["temperature"], large["time_budget_s"]) == (30, 0.15, 1680)
    assert default_config("lightgcn", LARGE_PAIRS).eval_every == 2
    assert graph_scale(SMALL_PAIRS // 10) == 0.0 and graph_scale(LARGE_PAIRS * 10) == 1.0


@pytest.mark.parametrize("num_train", [50, 20_000, 280_000, 790_000, 5_000_000])
def test_every_run_has_a_time_budget_and_about_the_same_number_of_steps(num_train):
    config = default_config("lightgcn", num_train)
    assert config.time_budget_s is not None and 600 <= config.time_budget_s <= 3600
    steps = config.epochs * math.ceil(num_train / config.batch_size)
    assert abs(steps - TRAIN_STEPS) <= max(60, config.epochs), (steps, config.epochs)
    assert config.lr_schedule == "cosine" and config.init == "spectral" and config.item_bias


@pytest.mark.parametrize("num_train", [20_000, 790_000, 8_000_000])
def test_a_batch_size_flag_keeps_the_number_of_steps(num_train):
    # A larger batch takes fewer steps an epoch, so it gets more epochs (at 8M pairs the defaults'
    # 3 epochs of 16,384 would have been 366 steps of 65,536: a quarter of a run).
    default = default_config("social", num_train)
    for batch in (default.batch_size // 4, default.batch_size * 4):
        config = default_config("social", num_train, batch_size=batch)
        per_epoch = math.ceil(num_train / batch)
        # Whole epochs: as close as that allows (one epoch where a single one is longer).
        assert abs(config.epochs * per_epoch - TRAIN_STEPS) <= per_epoch / 2 or config.epochs == 1, batch
    assert default_config("social", num_train, batch_size=65536, epochs=2).epochs == 2


def test_flags_override_and_validation_cadence_follows_the_epochs_asked_for():
    config = default_config("lightgcn", 280_000, epochs=8, time_budget_s=60.0)
    assert (config.epochs, config.time_budget_s, config.eval_every) == (8, 60.0, 1)
    assert default_config("lightgcn", 280_000, epochs=150).eval_every == 10
    assert default_config("social", 1_000).social_weight == 2.0
    assert default_config("sage", 1_000).layers == 2
