"""``graphrec export``, ``graphrec train`` and ``graphrec evaluate``: from the graph to a model."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from graphrec.cli.app import app, connected, fail, is_tty, print_json, settings_of


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
    from graphrec.graph import export_snapshot
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
    from graphrec.graph import SnapshotError, load_snapshot, to_interactions

    try:
        return to_interactions(load_snapshot(snapshot, split=split.value, seed=seed))
    except SnapshotError as err:
        fail(str(err))


@app.command()
def train(
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
    time_budget: Annotated[Optional[float], typer.Option(help="Stop after this many training seconds.")] = None,
    threads: Annotated[Optional[int], typer.Option(help="torch CPU threads (default: torch's choice).")] = None,
    split: SplitOpt = Split.auto,
    seed: SeedOpt = 2024,
    progress: Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                                                     help="Progress bar on stderr (default: when a terminal).")] = None,
) -> None:
    """Train a model on the snapshot's training interactions and save an artifact the API can load."""
    import torch

    from graphrec.train import TrainConfig, Trainer, build_artifact, default_config, holdout_metrics

    if threads:
        torch.set_num_threads(threads)
    data = _interactions(snapshot, split, seed)
    overrides = {"epochs": epochs, "dim": dim, "layers": layers, "lr": lr, "batch_size": batch_size,
                 "negatives": negatives, "loss": loss, "temperature": temperature, "patience": patience,
                 "lr_decay": lr_decay, "init": init, "time_budget_s": time_budget}
    config: TrainConfig = default_config(model.value, data.train.shape[1], seed=seed,
                                         **{k: v for k, v in overrides.items() if v is not None})
    show = is_tty() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=config.epochs, desc=f"train {config.model}", disable=not show, unit="epoch")

    def on_epoch(record: dict[str, float]) -> None:
        bar.update(1)
        post = {"loss": f"{record['loss']:.4f}"}
        if "valid_ndcg@20" in record:
            post["val_ndcg@20"] = f"{record['valid_ndcg@20']:.4f}"
            post["val_recall@20"] = f"{record['valid_recall@20']:.4f}"
        bar.set_postfix(post)

    result = Trainer(data, config).fit(on_epoch)
    bar.close()
    test = holdout_metrics(result, data)
    path = build_artifact(result, data, out, {"test": test})
    print_json({"artifact": str(path), "model": config.model, "snapshot_id": data.snapshot_id,
                "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                "train_seconds": round(result.train_seconds, 1),
                "seconds_per_epoch": round(result.seconds_per_epoch, 3),
                "valid": result.best_valid, "test": test})


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option(help="Artifact directory from `graphrec train`.")],
    snapshot: Annotated[Path, typer.Option(help="The snapshot it was trained on.")],
    k: Annotated[str, typer.Option(help="Cut-offs, comma separated.")] = "10,20",
    baselines: Annotated[str, typer.Option(help="Baselines to run in the same harness, comma separated "
                                                "(popular, itemknn, mf_bpr; empty for none).")] = "popular,itemknn,mf_bpr",
    plot: Annotated[Optional[Path], typer.Option(help="Also draw Recall@K / NDCG@K curves to this PNG.")] = None,
    split: SplitOpt = Split.auto,
    seed: SeedOpt = 2024,
) -> None:
    """Full-ranking metrics of MODEL on the snapshot's test interactions, baselines and cold-start
    slices, as JSON."""
    from graphrec.artifact import Artifact, ArtifactError
    from graphrec.evaluate import BASELINES, curves
    from graphrec.evaluate import evaluate as run_evaluation
    from graphrec.evaluate import plot as draw

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
    report = run_evaluation(artifact, data, ks, names, seed=seed)
    if plot is not None:
        draw(curves(artifact, data, seed=seed), plot)
        report["plot"] = str(plot)
    print_json(report)
