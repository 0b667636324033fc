"""Training step cost of the default sage against the default lightgcn on one snapshot, interleaved.

    .venv/bin/python bench/sage_step.py --snapshot SNAPSHOT [--rounds 16] [--threads 1]

Both models train with ``graphrec train``'s defaults for the graph, so they take the same number of
steps (same batch size, same epochs): the ratio of their step costs is the ratio of their training
times. The two alternate in blocks of 5 steps (forward, loss, backward, Adam) in one process, so a
shared machine's load weighs on both alike; the ratio is what to read, wall and CPU seconds alike.
"""

from __future__ import annotations

import argparse
import time

import torch

from graphrec.learn.config import default_config
from graphrec.learn.snapshot import load_snapshot, to_interactions
from graphrec.learn.train import Trainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshot", required=True)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = to_interactions(load_snapshot(args.snapshot))
    runs = {}
    for name in ("lightgcn", "sage"):
        config = default_config(name, data.train.shape[1])
        trainer = Trainer(data, config)
        optimizer = torch.optim.Adam(list(trainer.model.parameters()) + [trainer.item_bias], lr=config.lr)
        runs[name] = (trainer, optimizer, config)
    g = torch.Generator().manual_seed(0)

    def step(name: str) -> None:
        trainer, optimizer, config = runs[name]
        idx = torch.randint(0, data.train.shape[1], (config.batch_size,), generator=g)
        trainer.model.train()
        loss = trainer.loss(data.train[0, idx], data.train[1, idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    wall = dict.fromkeys(runs, 0.0)
    cpu = dict.fromkeys(runs, 0.0)
    for name in runs:  # warm-up
        step(name)
    for _ in range(args.rounds):
        for name in runs:
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(5):
                step(name)
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
    n = 5 * args.rounds
    for label, totals in (("wall", wall), ("cpu", cpu)):
        print(f"{label} s/step: " + ", ".join(f"{k} {v / n:.4f}" for k, v in totals.items())
              + f"; sage / lightgcn {totals['sage'] / totals['lightgcn']:.2f}")


if __name__ == "__main__":
    main()
