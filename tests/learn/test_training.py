"""Training learns planted structure, early-stops on validation, and the pipeline runs end to end."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from graphrec.artifact import Artifact
from graphrec.learn.evaluate import EvalContext, popular_baseline
from graphrec.learn.report import MIN_PLOT_USERS, curve_lines, curves, evaluate, figure
from graphrec.learn.interactions import Interactions, carve_validation
from graphrec.learn.models import build_model, propagate
from graphrec.learn.config import TrainConfig
from graphrec.learn.train import Trainer, build_artifact, holdout_metrics, outlook


def planted(seed: int = 0, users: int = 120, items: int = 60, per_user: int = 12) -> Interactions:
    """Two taste communities (users and items split in halves) plus friends inside communities."""
    g = torch.Generator().manual_seed(seed)
    half_u, half_i = users // 2, items // 2
    us, its = [], []
    for u in range(users):
        lo = 0 if u < half_u else half_i
        chosen = torch.randperm(half_i, generator=g)[:per_user] + lo
        us += [u] * per_user
        its += chosen.tolist()
    pairs = torch.tensor([us, its])
    rest, test = carve_validation(pairs, 0.25, seed)
    train, valid = carve_validation(rest, 0.15, seed + 1)
    friends = torch.tensor([[u, (u + 1) % half_u + (0 if u < half_u else half_u)] for u in range(users)]).t()
    return Interactions(users, items, train, valid, test, social=friends,
                        item_category=torch.stack([torch.arange(items), (torch.arange(items) >= half_i).long()]),
                        num_categories=2, user_ids=[f"u{i}" for i in range(users)],
                        item_ids=[f"p{i}" for i in range(items)], category_ids=["A", "B"], snapshot_id="planted")


@pytest.mark.parametrize("model,loss", [("lightgcn", "softmax"), ("lightgcn", "bpr"), ("social", "softmax"),
                                        ("sage", "softmax")])
def test_models_learn_planted_communities(model, loss):
    data = planted()
    cfg = TrainConfig(model=model, loss=loss, dim=16, layers=2, epochs=30, batch_size=256, negatives=32,
                      lr=0.02 if loss == "softmax" else 0.05, patience=30)
    result = Trainer(data, cfg).fit()
    ours = holdout_metrics(result, data, ks=(10,))["recall@10"]
    pop = popular_baseline(EvalContext.build(data), (10,))["overall"]["recall@10"]
    assert ours > 1.5 * pop, (ours, pop)


def test_early_stopping_keeps_best_validation_epoch():
    data = planted()
    history = []
    cfg = TrainConfig(dim=16, layers=1, epochs=40, batch_size=256, negatives=32, lr=0.05, patience=3)
    result = Trainer(data, cfg).fit(history.append)
    scores = [h["valid_ndcg@20"] for h in history]
    best, best_epoch, since = -1.0, 0, 0
    for epoch, score in enumerate(scores, start=1):  # the rule: improve by more than min_delta
        if score > best + cfg.min_delta:
            best, best_epoch, since = score, epoch, 0
        else:
            since += 1
    assert result.best_epoch == best_epoch
    assert since == cfg.patience or len(history) == cfg.epochs  # stopped by patience (or ran out)
    assert result.best_valid["ndcg@20"] == pytest.approx(best)


def test_learning_rate_decays_on_each_evaluation_without_improvement():
    data = planted()
    history = []
    cfg = TrainConfig(dim=16, layers=1, epochs=40, batch_size=256, negatives=32, lr=0.05, patience=4,
                      lr_decay=0.5)
    Trainer(data, cfg).fit(history.append)
    best, expected = -1.0, cfg.lr
    for record in history:
        if record["valid_ndcg@20"] > best + cfg.min_delta:
            best = record["valid_ndcg@20"]
        else:
            expected *= cfg.lr_decay
        assert record["lr"] == pytest.approx(expected)
    assert history[-1]["lr"] < cfg.lr  # it did decay at least once before stopping


def test_cosine_schedule_anneals_to_zero_over_the_epochs():
    data = planted()
    history = []
    cfg = TrainConfig(dim=16, layers=1, epochs=6, batch_size=256, negatives=32, lr=0.05, patience=99,
                      lr_schedule="cosine")
    Trainer(data, cfg).fit(history.append)
    lrs = [record["lr"] for record in history]
    assert len(lrs) == cfg.epochs
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    # The lr after epoch k of 6 (the next step's): lr/2 (1 + cos(pi k/6)); half the base at k = 3.
    assert lrs == pytest.approx([cfg.lr * 0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(1, 7)])
    assert lrs[2] == pytest.approx(cfg.lr / 2)


def test_cosine_schedule_reaches_zero_when_the_time_budget_ends_first():
    data = planted()
    history = []
    cfg = TrainConfig(dim=16, layers=1, epochs=100_000, batch_size=256, negatives=32, lr=0.05,
                      patience=100_000, lr_schedule="cosine", time_budget_s=1.0)
    Trainer(data, cfg).fit(history.append)
    assert len(history) < cfg.epochs  # the budget, not the epochs, ended it
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_spectral_init_starts_from_the_graphs_eigenvectors():
    data = planted()
    model = build_model("lightgcn", data, TrainConfig(dim=8, layers=2, init="spectral"))
    x = model.embedding.weight.detach()
    # [U; V] are eigenvectors of Â: one propagation scales each column, it does not mix them.
    coeff = (propagate(model.adj, x) * x).sum(0) / (x * x).sum(0)
    torch.testing.assert_close(propagate(model.adj, x), x * coeff, atol=1e-4, rtol=1e-3)
    # Untrained, it already ranks the user's own taste community first.
    users, items = model()
    own = 0
    for u in range(data.num_users):
        top = torch.topk(users[u] @ items.T, 10).indices
        own += int(((top >= data.num_items // 2) == (u >= data.num_users // 2)).sum())
    assert own > 0.9 * 10 * data.num_users


def test_negatives_never_positive():
    data = planted()
    tr = Trainer(data, TrainConfig(dim=8))
    users = data.train[0].repeat(20)
    neg = tr.sample_negatives(users)
    keys = set((data.train[0] * data.num_items + data.train[1]).tolist())
    assert not any(k in keys for k in (users * data.num_items + neg).tolist())


def test_artifact_and_evaluate_report(tmp_path):
    data = planted()
    result = Trainer(data, TrainConfig(model="social", dim=16, layers=2, epochs=15, batch_size=256,
                                       negatives=32, lr=0.02)).fit()
    path = build_artifact(result, data, tmp_path / "model", {"test": holdout_metrics(result, data)})
    art = Artifact.load(path)
    assert art.model == "social" and art.snapshot_id == "planted"
    assert art.user_emb.shape == (120, 16 + 1) and len(art.category_ids) == 2  # + popularity column
    report = evaluate(art, data, ks=(10, 20), baselines=("popular", "itemknn"), zero_sample=40)
    for key in ("recall@10", "ndcg@10", "precision@10", "hit@10", "recall@20", "ndcg@20", "precision@20",
                "hit@20", "coverage@20"):
        assert key in report["overall"]
    assert set(report["slices"]) == {"cold_users", "zero_interaction_users", "cold_products"}
    assert report["slices"]["zero_interaction_users"]["n_users"] == 40
    # Friends inside one community: the friends-only fold-in must beat popularity clearly.
    zero = report["slices"]["zero_interaction_users"]["recall@20"]
    assert zero > 1.5 * report["baselines"]["popular"]["slices"]["zero_interaction_users"]["recall@20"]
    assert report["overall"]["recall@20"] == pytest.approx(art.metrics["test"]["recall@20"], abs=1e-6)
    drawn = curves(art, data, ks=(5, 10), zero_sample=40)
    assert {"social", "popular", "itemknn", "mf_bpr", "social: zero_interaction_users",
            "popular: zero_interaction_users", "mf_bpr: zero_interaction_users"} <= set(drawn.lines)


def test_curves_leave_out_empty_slices(tmp_path):
    data = planted()
    data.social = data.social[:, :0]  # no friends: nobody can be a zero-interaction user
    result = Trainer(data, TrainConfig(dim=8, layers=1, epochs=2, batch_size=256, negatives=16)).fit()
    art = Artifact.load(build_artifact(result, data, tmp_path / "model"))
    drawn = curves(art, data, ks=(5, 10), baselines=("popular", "itemknn"), zero_sample=40)
    assert set(drawn.lines) == {"lightgcn", "popular", "itemknn"}  # no empty slice drawn as a line at 0
    assert drawn.left_out["zero_interaction_users"] == 0  # ... and it says so


def test_plot_names_sizes_leaves_out_small_slices_and_keeps_every_line_visible(tmp_path):
    data = planted()
    result = Trainer(data, TrainConfig(dim=8, layers=1, epochs=3, batch_size=256, negatives=16)).fit()
    art = Artifact.load(build_artifact(result, data, tmp_path / "model"))
    ks = (5, 10)
    report = evaluate(art, data, ks, baselines=("popular", "itemknn", "mf_bpr"), zero_sample=MIN_PLOT_USERS - 1)
    drawn = curve_lines(report)
    # A 29-user slice is noise: left out, and named with its size; the overall lines stay.
    assert drawn.left_out["zero_interaction_users"] == MIN_PLOT_USERS - 1
    assert not any(name.endswith("zero_interaction_users") for name in drawn.lines)
    assert {"lightgcn", "popular", "itemknn", "mf_bpr"} <= set(drawn.lines)
    report = evaluate(art, data, ks, baselines=("popular", "itemknn"), zero_sample=40)
    fig = figure(curve_lines(report), ks)
    ax = fig.axes[0]
    labels = [line.get_label() for line in ax.get_lines()]
    # ItemKNN falls back to popularity for users without history: one line, both names, not two
    # lines one under the other.
    assert "popular = itemknn: zero interaction users (n=40)" in labels
    assert "lightgcn (n=120)" in labels and len(labels) == len(set(labels))
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in ax.get_lines()}
    assert len(styles) == len(labels)
    assert "lightgcn on snapshot planted" in fig._suptitle.get_text()
    # The legend sits beside the axes, not over the data.
    fig.canvas.draw()
    legend = fig.legends[0].get_window_extent()
    assert all(legend.x0 >= a.get_window_extent().x1 for a in fig.axes)
    assert "cold users (n=0)" in fig.legends[0].get_title().get_text()


@pytest.mark.parametrize("extra", [{}, {"eval_every": 3}, {"time_budget_s": 0.3, "epochs": 10_000}])
def test_outlook_brackets_the_epoch_training_really_stops_at(extra):
    data = planted()
    history = []
    cfg = TrainConfig(**{"dim": 8, "layers": 1, "epochs": 40, "batch_size": 256, "negatives": 16, "lr": 0.05,
                         "patience": 3, **extra})
    Trainer(data, cfg).fit(history.append)
    last = history[-1]["epoch"]
    assert history[-1]["stopping"] and not any(h["stopping"] for h in history[:-1])
    for record in history[:-1]:
        ahead = outlook(cfg, record)
        assert not ahead.done and record["epoch"] < ahead.earliest <= ahead.latest
        if "time_budget_s" in extra:  # the budget, not the 10,000 epochs, bounds the run
            assert ahead.latest < 1000
        else:  # patience ends it no sooner than `earliest`, and it never runs past the maximum
            assert ahead.earliest <= last <= ahead.latest == cfg.epochs
    final = outlook(cfg, history[-1])
    assert final.done and final.earliest == final.latest == last
    assert final.eta_s() == (0.0, 0.0)


def test_cli_pipeline_on_exported_shop(empty_db, tmp_path):
    """graphrec export -> train -> evaluate (--plot) against a real Neo4j holding a generated shop."""
    from graphrec.cli import app
    from graphrec.datasets.synthetic import generate_shop
    from graphrec.store.loader import load_directory

    driver = empty_db
    generate_shop(200, tmp_path / "shop", seed=3)
    load_directory(driver, tmp_path / "shop", progress=False)
    from graphrec.learn.snapshot import export_snapshot

    export_snapshot(driver, tmp_path / "snap")
    runner = CliRunner()
    res = runner.invoke(app, ["train", "--snapshot", str(tmp_path / "snap"), "--out", str(tmp_path / "m"),
                              "--model", "lightgcn", "--epochs", "3", "--dim", "16", "--no-progress", "--no-circle"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["epochs_run"] == 3
    assert json.loads(res.stdout)["circle"] == {"weight": 0.0, "metric": "recall@20", "turned_off": True,
                                                "reason": "turned off by --no-circle"}
    # Off a terminal (as here), training reports plain lines on stderr unless --no-progress.
    res = runner.invoke(app, ["train", "--snapshot", str(tmp_path / "snap"), "--out", str(tmp_path / "m2"),
                              "--epochs", "2", "--dim", "8", "--format", "table"])
    assert res.exit_code == 0, res.output
    rows = {line.split(" | ")[0].strip(): line for line in res.stdout.splitlines()[2:4]}
    assert set(rows) == {"validation (embeddings)", "test (as served)"}, res.stdout  # a table for people, not JSON
    assert f"model: {tmp_path / 'm2'}" in res.stderr and "next: graphrec evaluate" in res.stderr
    assert "stops after 8 validations without gain" in res.stderr and "train lightgcn: epoch 1 (at most 2)" in res.stderr
    assert "or after 10:00 of training" in res.stderr  # every run has a time budget
    assert "stopped: epoch maximum" in res.stderr and "\r" not in res.stderr
    assert "fold-in weights (friends " in res.stdout
    circle = json.loads((tmp_path / "m2" / "manifest.json").read_text())["circle"]
    assert "circle term (friends' purchases): " in res.stdout and circle["metric"] == "recall@20"
    assert (f"weight {circle['weight']:.3g}" in res.stdout) if circle["weight"] else ("off (" in res.stdout)
    res = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "m"), "--snapshot", str(tmp_path / "snap"),
                              "--baselines", "popular", "--plot", str(tmp_path / "curves.png")])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)  # stdout is no terminal: JSON
    assert report["n_test_users"] > 0 and "popular" in report["baselines"]
    assert set(report["overall"]) == {f"{m}@{k}" for m in ("recall", "ndcg", "precision", "hit", "coverage")
                                      for k in (10, 20)} | {"n_users"}  # the plot's cut-offs stay out
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert set(report["lift_over_popular"]) == {"overall", "cold_users", "zero_interaction_users", "cold_products"}
    assert report["coldstart"]["validation"]["metric"] == "recall@20"
    assert "evaluate [" in res.stderr and "baseline popular" in res.stderr  # progress per step
    res = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "m"), "--snapshot", str(tmp_path / "snap"),
                              "--baselines", "popular", "--format", "table", "--no-progress"])
    assert res.exit_code == 0, res.output
    table = res.stdout.splitlines()
    assert table[0].startswith("lightgcn on snapshot ") and "test users" in table[0]
    assert [c.strip() for c in table[2].split(" | ")] == ["model", "slice", "users", "recall@10", "ndcg@10",
                                                           "recall@20", "ndcg@20",
                                                           "lift R@20 vs popular [95% CI]", "verdict"]
    assert any(line.startswith("lightgcn | all test users") for line in table)
    assert any(line.startswith("popular  | all test users") for line in table)
    assert f"model: {tmp_path / 'm'}" in res.stderr and "evaluate [" not in res.stderr
    bad = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "nothing"), "--snapshot", str(tmp_path / "snap")])
    assert bad.exit_code == 1 and "no manifest" in bad.output
