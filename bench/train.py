"""Training benchmark: export, seconds per epoch, time to the target Recall@20, evaluation, memory.

    .venv/bin/python bench/train.py --snapshot lastfm=/path/to/snap [--snapshot gowalla=/path] \
        [--model lightgcn] [--threads 2] [--json out.json]

Each snapshot comes from ``graphrec export`` (its export time is read from meta.json; pass
``--export`` with a running Neo4j to time a fresh export instead). Training runs with the
defaults of ``graphrec train``; after every epoch the bench (not the trainer, which only sees its
validation part) measures test Recall@20 to find the first epoch at the target. "wall to target"
counts snapshot loading, model building and training up to that epoch, but not the bench's own
per-epoch test evaluations.
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

from graphrec.graph import load_snapshot, to_interactions  # noqa: E402
from graphrec.ranking import UserItems, embedding_scorer, evaluate_scores  # noqa: E402
from graphrec.train import Trainer, build_artifact, default_config  # noqa: E402

# Published reference Recall@20 (issue #3): LightGCN with the SocialLGN code on Last.fm, the
# LightGCN paper on Gowalla.
TARGETS = {"lastfm": {"lightgcn": 0.2538, "social": 0.2665, "sage": 0.2665},
           "gowalla": {"lightgcn": 0.1830, "social": 0.1830, "sage": 0.1830}}


def bench_one(name: str, snapshot: Path, model: str, export_seconds: float | None,
              overrides: dict, out: Path | None = None, trace_every: int = 1) -> dict:
    t0 = time.perf_counter()
    c0 = time.process_time()
    data = to_interactions(load_snapshot(snapshot))
    config = default_config(model, data.train.shape[1], **overrides)
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
        build_artifact(result, data, out / f"{name}-{model}", {"test": final})
    meta = json.loads((snapshot / "meta.json").read_text())
    return {
        "dataset": name, "model": model,
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
    parser.add_argument("--out", type=Path, help="save each trained model as an artifact DATASET-MODEL here")
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
            from graphrec.graph import export_snapshot
            from graphrec.store.driver import connect

            driver = connect(Settings())
            try:
                export_s = export_snapshot(driver, path)["export_seconds"]
            finally:
                driver.close()
        for model in args.model or ["lightgcn"]:
            rows.append(bench_one(name, Path(path), model, export_s, overrides, args.out, args.trace_every))
            print(json.dumps({k: v for k, v in rows[-1].items() if k != "trace"}), file=sys.stderr, flush=True)
    cols = ["dataset", "model", "export_s", "s_per_epoch", "epochs_to_target", "wall_to_target_s", "cpu_to_target_s", "epochs_run",
            "best_epoch", "train_s", "eval_s", "recall@20", "ndcg@20", "peak_rss_mb", "threads"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
