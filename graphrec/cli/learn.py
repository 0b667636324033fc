"""``graphrec export``, ``graphrec train`` and ``graphrec evaluate``: from the graph to a model."""

from __future__ import annotations

import math
import shutil
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional, TextIO

import typer

from graphrec.cli.app import (FormatOpt, app, connected, duration, fail, format_table, is_tty,
                              neo4j_still_running, print_json, settings_of, wants_table)

if TYPE_CHECKING:
    from graphrec.learn.config import TrainConfig
    from graphrec.learn.train import Outlook


def _need_train_extra() -> None:
    """Snapshots and models need PyTorch and PyG, which the slim (serving) install leaves out."""
    try:
        import graphrec.learn.snapshot  # noqa: F401  (imports both, PyG's import-time warning filtered)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in ("torch", "torch_geometric"):
            raise
        fail(f"this command needs {err.name}, which the serving install leaves out: "
             "pip install 'graphrec[train]'")


class Split(str, Enum):
    auto = "auto"
    random = "random"
    temporal = "temporal"


class ModelKind(str, Enum):
    lightgcn = "lightgcn"
    social = "social"
    sage = "sage"


SplitOpt = Annotated[Split, typer.Option(help="auto: the interactions' split property when present, else "
                                              "per-user random 80/20; temporal: each user's latest 20% is test.")]
SeedOpt = Annotated[int, typer.Option(help="Seed of the split, sampling and initialisation.")]


@app.command()
def export(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Snapshot directory to write (Parquet + meta.json).")],
    batch_size: Annotated[int, typer.Option(min=1, help="Records per streamed batch.")] = 50_000,
    pseudonymise: Annotated[bool, typer.Option(
        "--pseudonymise/--no-pseudonymise",
        help="Replace user ids by keyed hashes (key: GRAPHREC_PSEUDONYM_KEY, kept by the shop) and drop "
             "user names, so the snapshot can be trained on without seeing who is who.")] = False,
) -> None:
    """Stream the whole graph out of Neo4j into a snapshot directory; print its metadata."""
    _need_train_extra()
    from graphrec.learn.snapshot import export_snapshot
    from graphrec.privacy import PseudonymKeyError, key_from

    settings = settings_of(ctx)
    key = None
    if pseudonymise:
        try:  # before connecting: a bad key writes nothing
            key = key_from(settings.pseudonym_key)
        except PseudonymKeyError as err:
            fail(str(err), code=2)
    with connected(ctx) as driver:
        meta = export_snapshot(driver, out, database=settings.neo4j_database, batch_size=batch_size,
                               pseudonym_key=key)
    print_json(meta)


def _interactions(snapshot: Path, split: Split, seed: int):  # noqa: ANN202
    from graphrec.learn.snapshot import SnapshotError, load_snapshot, to_interactions

    try:
        return to_interactions(load_snapshot(snapshot, split=split.value, seed=seed))
    except SnapshotError as err:
        fail(str(err))


class TrainProgress:
    """Training progress on stderr that tells the truth about the end of the run.

    The run ends by early stopping, the time budget or the epoch maximum, whichever comes first, so
    there is no bar to the maximum (early stopping would leave it at a third): each report gives
    the epoch, loss, validation metric, the patience count and an ETA range from the stopping rule
    (:func:`graphrec.learn.train.outlook`). On a terminal it is one line rewritten every epoch; elsewhere
    (logs, CI, ``| tee``) a plain line every ``every_s`` seconds, the first epoch's and the last.
    Within an epoch (:meth:`step`), a line every ``every_s`` seconds says how far the epoch is: at a
    million users one takes many minutes, and silence that long reads as a hang.
    """

    def __init__(self, label: str, config: TrainConfig, has_valid: bool, live: bool, every_s: float = 10.0,
                 stream: TextIO | None = None) -> None:
        self.label, self.config, self.has_valid, self.live, self.every_s = label, config, has_valid, live, every_s
        self.stream = stream or sys.stderr
        self.start = time.monotonic()
        self.last_line = -math.inf
        self.valid: float | None = None  # the latest validation value (not every epoch validates)
        self.by_epoch: dict[int, float] = {}  # validation value per validated epoch
        self.open_line = False
        self.first: tuple[int, float] | None = None  # (epoch, time) of the first report
        self.epoch_began: tuple[int, float] | None = None  # (epoch, time its first step ended)

    def announce(self, what: str) -> None:
        c = self.config
        rule = (f"stops after {c.patience} validations without gain (every {c.eval_every} epoch"
                f"{'s' if c.eval_every > 1 else ''}) or at epoch {c.epochs}" if self.has_valid
                else f"runs {c.epochs} epochs (no validation part)")
        budget = f", or after {duration(c.time_budget_s)} of training" if c.time_budget_s else ""
        self._emit(f"{self.label}: {what}; {rule}{budget}", final=True)

    def __call__(self, record: dict[str, float]) -> None:
        from graphrec.learn.train import outlook

        metric = f"valid_{self.config.target_metric}"
        if metric in record:
            self.valid = self.by_epoch[int(record["epoch"])] = record[metric]
        now = time.monotonic()
        wall = now - self.start
        # The pace between reports (training and validation), not counting model setup before epoch 1.
        if self.first is None:
            self.first = (int(record["epoch"]), now)
        epochs_since = int(record["epoch"]) - self.first[0]
        pace = (now - self.first[1]) / epochs_since if epochs_since else None
        ahead = outlook(self.config, record, self.has_valid,
                        wall_s=pace * int(record["epoch"]) if pace is not None else None)
        if not (self.live or ahead.done or record["epoch"] == 1 or now - self.last_line >= self.every_s):
            return
        self.last_line = now
        self._emit(self.describe(record, ahead, wall), final=ahead.done or not self.live)

    def step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        """After a step: a line on the epoch's progress, at most every ``every_s`` seconds."""
        now = time.monotonic()
        if self.epoch_began is None or self.epoch_began[0] != epoch:
            self.epoch_began = (epoch, now)
            return
        if step == steps or now - self.last_line < self.every_s:
            return  # the epoch's own report follows at once
        self.last_line = now
        pace = (now - self.epoch_began[1]) / (step - 1)  # from the end of the epoch's first step
        self._emit(f"{self.label}: epoch {epoch}, step {step:,}/{steps:,}, loss {loss:.4f}, the epoch ends in "
                   f"about {duration(pace * (steps - step))}, {duration(now - self.start)} elapsed",
                   final=not self.live)

    def describe(self, record: dict[str, float], ahead: "Outlook", wall: float) -> str:  # noqa: F821
        c = self.config
        # What matters most first: a terminal line is cut at the terminal's width.
        parts = [f"{self.label}: epoch {ahead.epoch}" + ("" if ahead.done else f" (at most {ahead.latest})")]
        if ahead.done:
            stale = int(record.get("stale", 0))
            parts.append(f"stopped: {stale} validations without gain" if self.has_valid and stale >= c.patience
                         else "stopped: time budget used" if c.time_budget_s and record["train_s"] >= c.time_budget_s
                         else "stopped: epoch maximum")
        else:
            soon, late = ahead.eta_s()
            parts.append(f"ETA {duration(late)}" if ahead.earliest == ahead.latest else
                         f"ETA {duration(soon)} if no further gain, at most {duration(late)}")
        parts.append(f"loss {record['loss']:.4f}")
        if self.valid is not None:
            best_epoch = int(record.get("best_epoch", 0))
            best = self.by_epoch.get(best_epoch)
            parts.append(f"valid {c.target_metric} {self.valid:.4f} ("
                         + (f"best {best:.4f} at epoch {best_epoch}, " if best is not None else "")
                         + f"{int(record.get('stale', 0))}/{c.patience} without gain)")
        parts.append(f"{duration(wall)} elapsed")
        return ", ".join(parts)

    def _emit(self, text: str, final: bool) -> None:
        if self.live:  # a line rewritten in place must fit the terminal; a final one is printed whole
            width = shutil.get_terminal_size((120, 20)).columns - 1
            self.stream.write("\r" + (text if final else text[:width]) + "\x1b[K" + ("\n" if final else ""))
            self.open_line = not final
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End a live line left open (an interrupted run)."""
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False


ProgressOpt = Annotated[Optional[bool], typer.Option(
    "--progress/--no-progress", help="Progress on stderr: a live line on a terminal, a plain line every "
                                     "10 s otherwise (logs, CI, | tee). Default: on.")]


@app.command()
def train(
    ctx: typer.Context,
    snapshot: Annotated[Path, typer.Option(help="Snapshot directory from `graphrec export`.")],
    out: Annotated[Path, typer.Option(help="Artifact directory to write.")],
    model: Annotated[ModelKind, typer.Option(help="lightgcn, social (friends fused per layer) or sage "
                                                  "(inductive heterogeneous GraphSAGE).")] = ModelKind.lightgcn,
    epochs: Annotated[Optional[int], typer.Option(help="Maximum epochs (early stopping on validation NDCG@20).")] = None,
    dim: Annotated[Optional[int], typer.Option(help="Embedding size.")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Propagation layers.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Positive pairs per step.")] = None,
    negatives: Annotated[Optional[int], typer.Option(help="Sampled negatives per step (softmax loss).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="softmax (sampled, cosine with temperature) or bpr.")] = None,
    temperature: Annotated[Optional[float], typer.Option(help="Softmax temperature.")] = None,
    patience: Annotated[Optional[int], typer.Option(help="Validations without improvement before stopping.")] = None,
    lr_decay: Annotated[Optional[float], typer.Option(help="Multiply the learning rate by this after each "
                                                           "validation without improvement (1: constant).")] = None,
    init: Annotated[Optional[str], typer.Option(help="normal, or spectral (top singular vectors of the "
                                                     "training graph; lightgcn and social).")] = None,
    time_budget: Annotated[Optional[float], typer.Option(
        envvar="GRAPHREC_TIME_BUDGET", min=1.0,
        help="Stop after this many training seconds (the best validation epoch is kept). Default: "
             "sized with the graph, 10 minutes to an hour (docs/learning.md).")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(
        min=0.1, help="The training time budget in minutes (the same as --time-budget in seconds).")] = None,
    sampled: Annotated[Optional[bool], typer.Option(
        "--sampled/--full-graph",
        help="Propagate each step over the batch's sampled k-hop subgraph (lightgcn, sage), or over the "
             "whole graph. Default: sampled from 2M training pairs up (docs/scale.md).")] = None,
    fanout: Annotated[Optional[str], typer.Option(
        help="Sampled neighbours per node and layer, comma separated (e.g. 10,5); -1 takes all. "
             "Default 10 each. Implies --sampled unless --full-graph.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")] = None,
    ddp: Annotated[int, typer.Option(
        "--ddp", min=1, help="Train data-parallel in this many processes (PyTorch DDP, gloo on CPU): each "
                             "takes its share of every epoch, batches of --batch-size each.")] = 1,
    circle: Annotated[Optional[bool], typer.Option(
        "--circle/--no-circle",
        help="Add the circle term (what a user's friends bought) to scores, its weight chosen on "
             "validation; --no-circle keeps the embeddings' scores alone, which ranks products nobody "
             "has bought yet higher against friends' purchases. Default: on, except for sage, whose "
             "cold-start slices it lowers (docs/learning.md).", show_default=False)] = None,
    split: SplitOpt = Split.auto,
    seed: SeedOpt = 2024,
    progress: ProgressOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Train a model on the snapshot's training interactions and save an artifact the API can load."""
    _need_train_extra()
    import torch

    from graphrec.learn.config import TrainConfig, default_config
    from graphrec.learn.train import Trainer, build_artifact, peak_rss_mb

    if threads:
        torch.set_num_threads(threads)
    if max_minutes is not None:
        if time_budget is not None:
            fail("--max-minutes and --time-budget set the same budget: give one", code=2)
        time_budget = 60.0 * max_minutes
    fanouts = None
    if fanout is not None:
        try:
            fanouts = [int(x) for x in fanout.split(",") if x.strip()]
        except ValueError:
            fail(f"--fanout must be integers separated by commas, got {fanout!r}", code=2)
        sampled = True if sampled is None else sampled
    data = _interactions(snapshot, split, seed)
    overrides = {"epochs": epochs, "dim": dim, "layers": layers, "lr": lr, "batch_size": batch_size,
                 "negatives": negatives, "loss": loss, "temperature": temperature, "patience": patience,
                 "lr_decay": lr_decay, "init": init, "time_budget_s": time_budget, "fanout": fanouts,
                 "propagation": None if sampled is None else ("sampled" if sampled else "full")}
    config: TrainConfig = default_config(model.value, data.train.shape[1], seed=seed,
                                         **{k: v for k, v in overrides.items() if v is not None})
    reporter = None
    if progress is not False:
        reporter = TrainProgress(f"train {config.model}", config, data.valid.shape[1] > 0, live=is_tty())
        how = ("sampled subgraphs (fanout " + ",".join(map(str, fanouts_of(config))) + ")"
               if config.propagation == "sampled" else "full-graph propagation")
        reporter.announce(f"{data.num_users:,} users, {data.num_items:,} products, "
                          f"{data.train.shape[1]:,} training pairs, {how}" + (f", {ddp} processes (DDP)" if ddp > 1 else ""))
    from graphrec.learn.distributed import process_group

    try:
        with process_group(ddp, Trainer, data, config):  # this process is rank 0 (a no-op for --ddp 1)
            result = Trainer(data, config).fit(reporter, reporter.step if reporter is not None else None)
    finally:
        if reporter is not None:
            reporter.close()
    path = build_artifact(result, data, out, holdout=True, circle=circle)
    from graphrec.artifact import Artifact
    from graphrec.coldstart import DEFAULT_WEIGHTS

    manifest = Artifact.load(path).manifest
    test = manifest["metrics"]["test"]
    fold_in = {"weights": {**DEFAULT_WEIGHTS, **manifest.get("coldstart", {})},
               "validation": manifest.get("coldstart_validation", {})}
    summary = {"artifact": str(path), "model": config.model, "snapshot_id": data.snapshot_id,
               "best_epoch": result.best_epoch, "epochs_run": len(result.history),
               "train_seconds": round(result.train_seconds, 1),
               "seconds_per_epoch": round(result.seconds_per_epoch, 3),
               "propagation": config.propagation, "peak_rss_mb": peak_rss_mb(),
               "valid": result.best_valid, "test": test, "coldstart": fold_in,
               "circle": manifest.get("circle", {})}
    if not wants_table(fmt):
        print_json(summary)
        return
    typer.echo(format_table(["", *(m for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20") if m in test)],
                            [[part, *(_num(values.get(m)) for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
                                      if m in test)]
                             for part, values in (("validation (embeddings)", result.best_valid),
                                                  ("test (as served)", test))],
                            right=range(1, 5)))
    typer.echo(f"\n{config.model}: best epoch {result.best_epoch} of {len(result.history)} run, "
               f"{duration(result.train_seconds)} of training ({result.seconds_per_epoch:.2f} s/epoch, "
               f"{config.propagation} propagation, peak memory {summary['peak_rss_mb']:,} MB)")
    typer.echo(_fold_in_line(fold_in))
    typer.echo(_circle_line(summary["circle"]))
    _closing(ctx, [f"model: {path}", f"next: graphrec evaluate --model {path} --snapshot {snapshot}"])


def _circle_line(record: dict) -> str:
    """What validation chose for the circle term (graphrec.circle), in a sentence."""
    if not record.get("weight"):
        return f"circle term (friends' purchases): off ({record.get('reason', 'not chosen')})"
    return (f"circle term (friends' purchases): weight {record['weight']:.3g}, validation "
            f"{record['metric']} {record['recall_without']:.4f} -> {record['recall_with']:.4f} "
            f"on {record['n_users']:,} users")


def fanouts_of(config: "TrainConfig") -> list[int]:
    from graphrec.learn.minibatch import fanouts

    return fanouts(config.fanout, config.layers)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _closing(ctx: typer.Context, lines: list[str]) -> None:
    """The closing summary on stderr: where things are, and that Neo4j keeps running."""
    note = neo4j_still_running(settings_of(ctx))
    for line in lines + ([note] if note else []):
        typer.echo(line, err=True)


def evaluation_table(report: dict, ks: tuple[int, ...]) -> str:
    """Systems x slices (with their sizes) x Recall/NDCG at each cut-off (every metric: --format json),
    and for the model the lift over most-popular with its 95% interval and a flag where it is not
    significantly better (:mod:`graphrec.learn.lift`)."""
    from graphrec.learn.report import SLICES
    from graphrec.learn.lift import LIFT_K, describe

    metrics = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg")]
    sizes = report.get("slice_sizes", {})
    lifts = report.get("lift_over_popular", {})
    rows: list[list[str]] = []
    systems = [(report["model"], report)] + list(report.get("baselines", {}).items())
    for name, block in systems:
        parts = [("overall", "all test users", block["overall"])] + [
            (s, s.replace("_", " ") + (f" ({sizes[s]:,} test purchases)" if s == "cold_products" and s in sizes
                                       and block is report else ""),
             block["slices"].get(s, {})) for s in SLICES]
        for i, (key, part, values) in enumerate(parts):
            n = int(values.get("n_users", 0))
            row = [name if i == 0 else "", part, f"{n:,}",
                   *((_num(values.get(m)) for m in metrics) if n else ("-" for _ in metrics))]
            if lifts:  # a report from before the lift existed has none
                row += describe(lifts.get(key)) if block is report else ("", "")
            rows.append(row)
    lift_columns = [f"lift R@{LIFT_K} vs popular [95% CI]", "verdict"] if lifts else []
    return format_table(["model", "slice", "users", *metrics, *lift_columns], rows,
                        right=range(2, 3 + len(metrics) + bool(lifts)))


def _fold_in_line(coldstart: dict) -> str:
    """How the zero-interaction users were embedded: the weights, and how validation chose them."""
    from graphrec.learn.lift import ratio_text

    weights = coldstart.get("weights", {})
    mix = ", ".join(f"{k} {weights.get(k, 0):g}" for k in ("friends", "follows", "followers", "prior", "popularity"))
    record = coldstart.get("validation") or {}
    if not record:
        how = "defaults (artifact from before validated fold-in weights)"
    elif record.get("fallback"):
        how = f"fell back to popularity: {record.get('reason', '')}"
    else:
        lift = {k: ratio_text(v) for k, v in record.get("lift_over_popularity", {}).items()
                if k in ("lift", "low", "high")}
        how = (f"chosen on {record.get('n_users', 0)} validation users, {lift.get('lift')}x popularity "
               f"[{lift.get('low')}, {lift.get('high')}] on the confirmation half")
    return f"fold-in weights ({mix}): {how}"


@app.command()
def evaluate(
    ctx: typer.Context,
    model: Annotated[Path, typer.Option(help="Artifact directory from `graphrec train`.")],
    snapshot: Annotated[Path, typer.Option(help="The snapshot it was trained on.")],
    k: Annotated[str, typer.Option(help="Cut-offs, comma separated.")] = "10,20",
    baselines: Annotated[str, typer.Option(help="Baselines to run in the same harness, comma separated "
                                                "(popular, itemknn, mf_bpr, gds_fastrp: FastRP in Neo4j, needs the graph "
                                                "loaded; empty for none).")] = "popular,itemknn,mf_bpr",
    plot: Annotated[Optional[Path], typer.Option(help="Also draw Recall@K / NDCG@K curves to this PNG.")] = None,
    users: Annotated[Optional[int], typer.Option(
        "--users", min=1, help="Rank for a random sample of this many test users (seeded by --seed; the report "
                               "says so): full ranking costs users x products. Default: every test user.")] = None,
    split: SplitOpt = Split.auto,
    seed: SeedOpt = 2024,
    progress: ProgressOpt = None,
    fmt: FormatOpt = None,
) -> None:
    """Full-ranking metrics of MODEL on the snapshot's test interactions, baselines and cold-start
    slices, with each slice's lift over most-popular (95% bootstrap interval; flagged where the
    model is not significantly better): a table on a terminal, JSON otherwise (or with --format json)."""
    _need_train_extra()
    from graphrec.artifact import Artifact, ArtifactError
    from graphrec.learn.baselines import BASELINES
    from graphrec.learn.baselines.gds import GdsBaselineError
    from graphrec.learn.baselines.mf_bpr import mf_bpr_config
    from graphrec.learn.report import MIN_PLOT_USERS, PLOT_KS, curve_lines, select_ks
    from graphrec.learn.report import evaluate as run_evaluation
    from graphrec.learn.report import plot as draw
    from graphrec.store.driver import StoreUnavailable

    try:
        ks = tuple(sorted({int(x) for x in k.split(",") if x.strip()}))
    except ValueError:
        fail(f"--k must be integers separated by commas, got {k!r}", code=2)
    names = [b.strip() for b in baselines.split(",") if b.strip()]
    unknown = [b for b in names if b not in BASELINES]
    if unknown:
        fail(f"unknown baseline(s) {', '.join(unknown)}; choose from {', '.join(BASELINES)}", code=2)
    try:
        artifact = Artifact.load(model)
    except ArtifactError as err:
        fail(str(err))
    data = _interactions(snapshot, split, seed)
    if artifact.snapshot_id != data.snapshot_id:
        typer.echo(f"warning: artifact was trained on snapshot {artifact.snapshot_id}, evaluating on "
                   f"{data.snapshot_id}", err=True)
    start = time.monotonic()
    say = None
    mf_progress = None
    if progress is not False:
        def say(message: str) -> None:
            typer.echo(f"evaluate [{duration(time.monotonic() - start)}] {message}", err=True)

        mf_progress = TrainProgress("  mf_bpr", mf_bpr_config(seed=seed), data.valid.shape[1] > 0, live=is_tty())
    # The plot's cut-offs are computed in the same pass (MF-BPR trains once).
    all_ks = tuple(sorted(set(ks) | set(PLOT_KS))) if plot is not None else ks
    try:
        full = run_evaluation(artifact, data, all_ks, names, seed=seed, progress=say, on_epoch=mf_progress,
                              max_users=users)
    except (GdsBaselineError, StoreUnavailable) as err:  # gds_fastrp: no Neo4j or GDS, or not the snapshot's graph
        fail(f"baseline gds_fastrp: {err}")
    finally:
        if mf_progress is not None:
            mf_progress.close()
    report = select_ks(full, ks)
    lines = [f"model: {model}"]
    if plot is not None:
        curves = curve_lines(full)
        draw(curves, plot)
        report["plot"] = str(plot)
        report["plot_left_out"] = curves.left_out
        small = ", ".join(f"{s.replace('_', ' ')} ({n} users)" for s, n in curves.left_out.items())
        lines.append(f"plot: {plot}" + (f" (left out, fewer than {MIN_PLOT_USERS} users: {small})" if small else ""))
    if say is not None:
        say(f"done in {duration(time.monotonic() - start)}")
    if not wants_table(fmt):
        print_json(report)
        return
    sample = report.get("test_users_sampled")
    of = f" (a random sample of {sample['of']:,}, seed {sample['seed']})" if sample else ""
    typer.echo(f"{report['model']} on snapshot {report['snapshot_id']}: {report['n_test_users']:,} test users{of} "
               f"(every metric: --format json)\n")
    typer.echo(evaluation_table(report, ks))
    typer.echo(f"\n{_fold_in_line(report.get('coldstart', {}))}")
    typer.echo(_circle_line(report.get("circle", {})))
    weak = [s.replace("_", " ") for s, e in report.get("lift_over_popular", {}).items() if e["verdict"] == "not_better"]
    if weak:
        typer.echo(f"\nwarning: {report['model']} is not significantly better than most-popular on: "
                   f"{', '.join(weak)} (95% bootstrap interval of the lift includes 1 or lies below)")
    _closing(ctx, [""] + lines + [f"next: graphrec serve --model {model}"])
