"""Full-graph against sampled mini-batch training: seconds per epoch, peak memory, quality in equal time.

    .venv/bin/python bench/sampled.py [--data gowalla|shop:100000] [--model lightgcn] [--minutes 4] \
        [--threads 2] [--set key=JSON ...] [--sampled-set key=JSON ...] [--json out.json]

``gowalla`` is the LightGCN paper's split read straight from ../shared/data; ``shop:N`` a generated
shop of N users (graphrec.datasets.synthetic, seed 7) read into Interactions without Neo4j. Each
(model, mode) trains in its own process, so peak RSS (``ru_maxrss``) is that mode's alone, with
``graphrec train``'s defaults for the graph's size and the same time budget for both modes; then
test Recall@20 of the best validation epoch. The table prints both modes and sampled / full
ratios. On a shared machine the absolute seconds are "under load"; the ratios come from one run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load(name: str):  # noqa: ANN201
    if name == "gowalla":
        from bench._splits import gowalla_split

        return gowalla_split()
    users = int(name.split(":", 1)[1])
    import numpy as np
    import pandas as pd
    import torch

    from graphrec.datasets.synthetic import generate_shop
    from graphrec.learn.interactions import Interactions, carve_validation, default_valid_fraction

    with tempfile.TemporaryDirectory() as tmp:
        generate_shop(users, Path(tmp), seed=7)
        products = pd.read_csv(Path(tmp) / "products.csv", usecols=["product_id"], dtype=str)
        bought = pd.read_csv(Path(tmp) / "interactions.csv", usecols=["user_id", "product_id"], dtype=str)
        social = pd.read_csv(Path(tmp) / "social.csv", usecols=["user_id", "other_user_id"], dtype=str)
    prow = pd.Series(np.arange(len(products)), index=products.product_id)

    def user_row(ids: pd.Series) -> np.ndarray:
        return ids.str.slice(1).astype(np.int64).to_numpy()  # generated ids are u<row>

    pairs = torch.from_numpy(np.stack([user_row(bought.user_id), prow[bought.product_id].to_numpy()]))
    rest, test = carve_validation(pairs, 0.2, 7)
    train, valid = carve_validation(rest, default_valid_fraction(rest.shape[1]), 8)
    friends = torch.from_numpy(np.stack([user_row(social.user_id), user_row(social.other_user_id)]))
    return Interactions(users, len(products), train, valid, test, social=friends)


def run_one(data_name: str, model: str, mode: str, minutes: float, threads: int | None, overrides: dict,
            queue: "multiprocessing.Queue") -> None:
    import torch

    from graphrec.learn.config import default_config
    from graphrec.learn.train import Trainer, holdout_metrics

    if threads:
        torch.set_num_threads(threads)
    data = load(data_name)
    config = default_config(model, data.train.shape[1], propagation=mode, time_budget_s=60.0 * minutes,
                            **overrides)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    result = Trainer(data, config).fit()
    wall = time.perf_counter() - t0
    test = holdout_metrics(result, data, ks=(20,))
    steps = len(result.history) * -(-int(data.train.shape[1]) // config.batch_size)
    queue.put({"data": data_name, "model": model, "mode": mode, "users": data.num_users, "items": data.num_items,
               "train_pairs": int(data.train.shape[1]), "batch": config.batch_size, "negatives": config.negatives,
               "fanout": config.fanout, "epochs": len(result.history), "best_epoch": result.best_epoch,
               "s_per_epoch": round(result.seconds_per_epoch, 2), "train_s": round(result.train_seconds, 1),
               "wall_s": round(wall, 1), "recall@20": round(test["recall@20"], 4),
               "ndcg@20": round(test["ndcg@20"], 4), "steps": steps,
               "rss_before_mb": round(base_rss), "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="gowalla")
    parser.add_argument("--model", action="append")
    parser.add_argument("--minutes", type=float, default=4.0, help="training time budget of each run")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--set", action="append", default=[], help="override for both modes, key=JSON")
    parser.add_argument("--sampled-set", action="append", default=[], help="override for sampled mode only")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    both = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.set)}
    sampled = {k: json.loads(v) for k, v in (s.split("=", 1) for s in args.sampled_set)}
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for model in args.model or ["lightgcn"]:
        for mode in ("full", "sampled"):
            queue = ctx.Queue()
            p = ctx.Process(target=run_one, args=(args.data, model, mode, args.minutes, args.threads,
                                                  {**both, **(sampled if mode == "sampled" else {})}, queue))
            p.start()
            rows.append(queue.get())
            p.join()
            print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    cols = ["data", "model", "mode", "train_pairs", "batch", "negatives", "fanout", "epochs", "steps",
            "s_per_epoch", "train_s", "recall@20", "ndcg@20", "peak_rss_mb"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    print("\nsampled / full:")
    for full, samp in zip(rows[::2], rows[1::2]):
        print(f"  {full['data']} {full['model']}: " + ", ".join(
            f"{k} {samp[k] / full[k]:.3f}" for k in ("s_per_epoch", "recall@20", "peak_rss_mb") if full[k]))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
