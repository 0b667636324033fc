"""Training benchmark: export, seconds per epoch, time to the target Recall@20, evaluation, memory.

    .venv/bin/python bench/train.py --snapshot lastfm=/path/to/snap [--snapshot gowalla=/path] \
        [--model lightgcn] [--threads 2] [--defaults now|before|both] [--json out.json]

Each snapshot comes from ``graphrec export`` (its export time is read from meta.json; pass
``--export`` with a running Neo4j to time a fresh export instead). Training runs with the
defaults of ``graphrec train``; after every epoch the bench (not the trainer, which only sees its
validation part) measures test Recall@20 to find the first epoch at the target. "wall to target"
counts snapshot loading, model building and training up to that epoch, but not the bench's own
per-epoch test evaluations.

``--defaults both`` trains each (snapshot, model) twice in one run, with the defaults before the
size-scaled ones (commit d9c58f3: Last.fm's settings below 300k training pairs, Gowalla's from
there up) and with today's, and prints the ratios. Training is deterministic, so where both give
the same configuration it trains once and says so. ``--defaults before`` trains with the old ones
only (their runs have no time budget, so their quality does not depend on the machine's load).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec.learn.snapshot import load_snapshot, to_interactions  # noqa: E402
from graphrec.learn.ranking import UserItems, embedding_scorer, evaluate_scores  # noqa: E402
from graphrec.learn.config import TrainConfig, default_config  # noqa: E402
from graphrec.learn.train import Trainer, build_artifact  # noqa: E402

# Published reference Recall@20 (issue #3): LightGCN with the SocialLGN code on Last.fm, the
# LightGCN paper on Gowalla.
TARGETS = {"lastfm": {"lightgcn": 0.2538, "social": 0.2665, "sage": 0.2665},
           "gowalla": {"lightgcn": 0.1830, "social": 0.1830, "sage": 0.1830}}


# The defaults of commit d9c58f3, for --defaults before|both: a cliff at 300k training pairs.
PREVIOUS_SMALL = {"lightgcn": {"negatives": 1024}, "social": {"negatives": 1024, "social_weight": 2.0},
                  "sage": {"negatives": 1024, "layers": 2, "lr": 0.005}}
PREVIOUS_LARGE = {"batch_size": 16384, "negatives": 4096, "lr": 0.01, "temperature": 0.15, "item_bias": True,
                  "init": "spectral", "lr_schedule": "cosine", "epochs": 30, "eval_every": 2, "patience": 8,
                  "time_budget_s": 1680.0}


def previous_config(model: str, num_train: int, **overrides) -> TrainConfig:
    values = {"model": model, **PREVIOUS_SMALL.get(model, {})}
    if num_train >= 300_000:
        values.update(PREVIOUS_LARGE)
    return TrainConfig(**{**values, **overrides})


def bench_one(name: str, snapshot: Path, model: str, export_seconds: float | None,
              overrides: dict, out: Path | None = None, trace_every: int = 1,
              defaults: str = "now") -> dict:
    t0 = time.perf_counter()
    c0 = time.process_time()
    data = to_interactions(load_snapshot(snapshot))
    make = previous_config if defaults == "before" else default_config
    config = make(model, data.train.shape[1], **overrides)
    trainer = Trainer(data, config)
    setup = time.perf_counter() - t0
    known = torch.cat([data.train, data.valid], 1)
    known_ui = UserItems.from_pairs(known[0], known[1], data.num_users)
    test_ui = UserItems.from_pairs(data.test[0], data.test[1], data.num_users)
    target = TARGETS.get(name, {}).get(model)
    reached: dict = {}
    trace: list[tuple[int, float, float]] = []
    eval_cpu = [0.0]  # CPU seconds spent in the bench's own test evaluations (excluded)

    def on_epoch(record: dict) -> None:
        if int(record["epoch"]) % trace_every:
            return
        c1 = time.process_time()
        users, items = trainer.embeddings()
        recall = evaluate_scores(embedding_scorer(users, items), known_ui, test_ui, data.num_items,
                                 ks=(20,))["recall@20"]
        trace.append((int(record["epoch"]), float(record["train_s"]), recall))
        eval_cpu[0] += time.process_time() - c1
        print(f"{name} {model} ({defaults}): epoch {int(record['epoch'])}, {record['train_s']:.0f} s of training, "
              f"test recall@20 {recall:.4f}", file=sys.stderr, flush=True)
        if target is not None and not reached and recall >= target:
            # CPU seconds too: on a shared machine wall time mostly measures the neighbours.
            reached.update(epoch=int(record["epoch"]), wall_s=setup + float(record["train_s"]),
                           cpu_s=time.process_time() - c0 - eval_cpu[0])

    result = trainer.fit(on_epoch)
    t1 = time.perf_counter()
    final = evaluate_scores(embedding_scorer(result.user_emb, result.item_emb), known_ui, test_ui,
                            data.num_items, ks=(10, 20))
    eval_s = time.perf_counter() - t1
    if out is not None:  # the same artifact `graphrec train` writes, for `graphrec evaluate`
        build_artifact(result, data, out / f"{name}-{model}-{defaults}", {"test": final})
    meta = json.loads((snapshot / "meta.json").read_text())
    return {
        "dataset": name, "model": model, "defaults": defaults, "config": config.to_dict(),
        "export_s": round(export_seconds if export_seconds is not None else meta.get("export_seconds", float("nan")), 1),
        "setup_s": round(setup, 1),
        "s_per_epoch": round(result.seconds_per_epoch, 2),
        "epochs_run": len(result.history), "best_epoch": result.best_epoch,
        "target_recall@20": target,
        "epochs_to_target": reached.get("epoch"), "wall_to_target_s": round(reached["wall_s"], 1) if reached else None,
        "cpu_to_target_s": round(reached["cpu_s"], 1) if reached else None,
        "train_s": round(result.train_seconds, 1),
        "eval_s": round(eval_s, 2),
        "recall@20": round(final["recall@20"], 4), "ndcg@20": round(final["ndcg@20"], 4),
        "recall@10": round(final["recall@10"], 4), "ndcg@10": round(final["ndcg@10"], 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "threads": torch.get_num_threads(),
        "num_train": int(data.train.shape[1]),
        "trace": trace,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--snapshot", action="append", required=True, help="name=DIR (name: lastfm, gowalla)")
    parser.add_argument("--model", action="append", help="lightgcn, social, sage (repeatable)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--export", action="store_true", help="time a fresh export from the configured Neo4j")
    parser.add_argument("--set", action="append", default=[], help="config override key=JSON value")
    parser.add_argument("--json", type=Path, help="also write the rows (with per-epoch traces) here")
    parser.add_argument("--trace-every", type=int, default=1, help="test Recall@20 every N epochs")
    parser.add_argument("--out", type=Path, help="save each trained model as an artifact DATASET-MODEL-DEFAULTS here")
    parser.add_argument("--defaults", choices=["now", "before", "both"], default="now",
                        help="today's defaults, the ones before the size-scaled defaults, or both side by side")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    rows = []
    for spec in args.snapshot:
        name, _, path = spec.partition("=")
        export_s = None
        if args.export:
            from graphrec.config import Settings
            from graphrec.learn.snapshot import export_snapshot
            from graphrec.store.driver import connect

            driver = connect(Settings())
            try:
                export_s = export_snapshot(driver, path)["export_seconds"]
            finally:
                driver.close()
        for model in args.model or ["lightgcn"]:
            for defaults in (["before", "now"] if args.defaults == "both" else [args.defaults]):
                if defaults == "now" and args.defaults == "both" and _same_config(rows[-1], model, overrides):
                    rows.append({**rows[-1], "defaults": "now (same config: trained once)"})
                else:
                    rows.append(bench_one(name, Path(path), model, export_s, overrides, args.out,
                                          args.trace_every, defaults))
                print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("trace", "config")}),
                      file=sys.stderr, flush=True)
    cols = ["dataset", "model", "defaults", "export_s", "s_per_epoch", "epochs_to_target", "wall_to_target_s", "cpu_to_target_s", "epochs_run",
            "best_epoch", "train_s", "eval_s", "recall@20", "ndcg@20", "peak_rss_mb", "threads"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    if args.defaults == "both":
        print("\nnow / before:")
        for before, now in zip(rows[::2], rows[1::2]):
            ratio = {k: round(now[k] / before[k], 3) if before[k] else None
                     for k in ("recall@20", "ndcg@20", "train_s", "s_per_epoch")}
            print(f"  {now['dataset']} {now['model']}: " + ", ".join(f"{k} {v}" for k, v in ratio.items()))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def _same_config(before: dict, model: str, overrides: dict) -> bool:
    """Whether today's defaults give exactly the configuration the 'before' row trained with."""
    num_train = before["num_train"]
    return default_config(model, num_train, **overrides).to_dict() == before["config"]


if __name__ == "__main__":
    main()
