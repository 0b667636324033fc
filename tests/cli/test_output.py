"""What people see: tables on a terminal, JSON in pipes, honest progress lines, no foreign warnings."""

from __future__ import annotations

import importlib
import io
import subprocess
import sys

import pytest

from graphrec.cli.app import Format, duration, format_table, wants_table
from graphrec.cli.learn import TrainProgress, evaluation_table
from graphrec.learn.config import TrainConfig

cli_app = importlib.import_module("graphrec.cli.app")  # the module (graphrec.cli.app is also the Typer app)


def test_format_table_pads_columns_and_right_aligns_numbers():
    text = format_table(["name", "n"], [["a", "7"], ["long name", "1,234"]], right=(1,))
    assert text.splitlines() == [
        "name      |     n",
        "----------+------",
        "a         |     7",
        "long name | 1,234",
    ]


def test_tables_on_a_terminal_json_in_pipes(monkeypatch):
    monkeypatch.setattr(cli_app, "is_stdout_tty", lambda: True)
    assert wants_table(None) and not wants_table(Format.json)
    monkeypatch.setattr(cli_app, "is_stdout_tty", lambda: False)
    assert not wants_table(None) and wants_table(Format.table)


def test_duration():
    assert [duration(s) for s in (0, 7.4, 185, 3723)] == ["0:00", "0:07", "3:05", "1:02:03"]


def _record(epoch: int, stale: int, stopping: bool = False, **extra: float) -> dict[str, float]:
    return {"epoch": epoch, "loss": 0.5, "train_s": float(epoch), "best_epoch": epoch - stale, "stale": stale,
            "stopping": stopping, **extra}


def test_progress_off_a_terminal_is_plain_periodic_lines_with_the_stopping_rule():
    out = io.StringIO()
    cfg = TrainConfig(epochs=200, patience=10)
    progress = TrainProgress("train lightgcn", cfg, has_valid=True, live=False, every_s=3600, stream=out)
    progress.announce("10 users")
    progress(_record(1, 0, **{"valid_ndcg@20": 0.2}))
    for epoch in range(2, 9):  # inside the period: nothing
        progress(_record(epoch, epoch - 1, **{"valid_ndcg@20": 0.1}))
    progress(_record(11, 10, stopping=True, **{"valid_ndcg@20": 0.1}))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in out.getvalue()
    assert "stops after 10 validations without gain" in lines[0] and "epoch 200" in lines[0]
    # After epoch 1 with no gain yet, patience ends it at epoch 11 at the soonest: not "200 epochs".
    assert lines[1].startswith("train lightgcn: epoch 1 (at most 200), ETA ")
    assert "if no further gain" in lines[1] and "loss 0.5000, valid ndcg@20 0.2000 (best 0.2000 at epoch 1, " \
                                                "0/10 without gain)" in lines[1]
    assert lines[2].startswith("train lightgcn: epoch 11, stopped: 10 validations without gain, loss 0.5000")
    assert "valid ndcg@20 0.1000 (best 0.2000 at epoch 1, 10/10 without gain)" in lines[2]


def test_progress_on_a_terminal_rewrites_one_line():
    out = io.StringIO()
    progress = TrainProgress("train", TrainConfig(epochs=3, patience=10), has_valid=False, live=True, stream=out)
    progress(_record(1, 0))
    progress(_record(2, 0))
    progress.close()  # interrupted: the line is ended
    assert out.getvalue().count("\r") == 2 and out.getvalue().endswith("\n")
    assert "ETA" in out.getvalue() and "epoch 2 (at most 3)" in out.getvalue()


def test_evaluation_table_shows_systems_slices_and_sizes():
    metrics = {"recall@20": 0.25, "ndcg@20": 0.125, "n_users": 1860}
    empty = {"n_users": 0}
    block = {"overall": metrics, "slices": {"cold_users": {**metrics, "n_users": 212},
                                            "zero_interaction_users": {**metrics, "n_users": 300},
                                            "cold_products": empty}}
    report = {"model": "lightgcn", **block, "slice_sizes": {"cold_products": 0},
              "baselines": {"popular": block}}
    lines = evaluation_table(report, (20,)).splitlines()
    assert lines[0].split(" | ")[:3] == ["model   ", "slice                           ", "users"]
    assert len(lines) == 2 + 8
    assert lines[2].startswith("lightgcn | all test users") and lines[2].endswith("0.2500 |  0.1250")
    assert "212" in lines[3] and "cold users" in lines[3]
    assert lines[5].rstrip().endswith("-") and "cold products (0 test purchases)" in lines[5]
    assert lines[6].startswith("popular ")


def test_no_torch_jit_futurewarning_and_no_global_ignore():
    """PyG's import-time torch.jit.script warning is hidden at its one source, nothing else is."""
    probe = ("import warnings; import graphrec.learn.snapshot; "
             "assert not [f for f in warnings.filters if f[1] is not None and 'script' in f[1].pattern], 'left a filter'; "
             "warnings.warn('`torch.jit.script` is deprecated elsewhere', FutureWarning)")
    done = subprocess.run([sys.executable, "-W", "default", "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("FutureWarning") == 1 and "elsewhere" in done.stderr  # ours still shows


@pytest.mark.parametrize("args", [["evaluate", "--help"], ["train", "--help"], ["serve", "--help"]])
def test_format_option_is_documented(args):
    from typer.testing import CliRunner

    from graphrec.cli import app

    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--format" in result.output


def test_progress_within_a_long_epoch_says_how_far_it_is(monkeypatch):
    """At a million users an epoch takes many minutes: steps report too, at most every every_s."""
    import graphrec.cli.learn as learn_cli

    clock = iter(float(t) for t in range(0, 10_000, 5))  # every call to the clock: 5 s later
    monkeypatch.setattr(learn_cli.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    progress = TrainProgress("train", TrainConfig(epochs=3, patience=10), has_valid=False, live=False,
                             every_s=12, stream=out)
    for step in range(1, 11):
        progress.step(1, step, 10, 0.25)
    lines = out.getvalue().splitlines()
    # Steps 2..9 come 5 s apart: a line at most every 12 s, none for the first and last step.
    assert len(lines) == 3, lines
    # The pace is measured from the end of the first step: 5 s a step, 8 steps left at step 2.
    assert lines[0] == "train: epoch 1, step 2/10, loss 0.2500, the epoch ends in about 0:40, 0:10 elapsed"
    assert [line.split(",")[1] for line in lines] == [" step 2/10", " step 5/10", " step 8/10"]
    assert all("step 10/10" not in line for line in lines)
