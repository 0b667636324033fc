"""Propagation micro-benchmark: the hand-written CSR kernels called directly (how the models
propagated before they were PyG layers) vs the same kernels as PyG ``MessagePassing`` layers
(FastLGConv, FastSAGEConv), and PyG's stock LGConv / SAGEConv for reference.

    .venv/bin/python bench/propagation.py [--graph lastfm|gowalla|both] [--reps 15] [--threads N]
                                          [--stock/--no-stock] [--format table|json]

One timed unit is what a training step does with the graph: for LightGCN, three layers forward
plus backward on a random user-item graph of the dataset's size (users, items, training pairs as
in the published splits, dim 64); for SAGE, a mean aggregation plus its relation weight over the
purchases in both directions. The variants run **alternately in one process** (order rotated
every repetition) and the table reports each one's median and the paired ratio to the direct
kernel: on a machine shared with other work absolute seconds mean little, the side-by-side ratio
is what to read (1.00 = no overhead from the PyG wrapping).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec.learn.models.propagation import (FastLGConv, FastSAGEConv, aggregate, bipartite_adjacency,  # noqa: E402
                                               mean_adjacency, propagate)

# (users, items, training pairs): the Last.fm SocialLGN split and the LightGCN Gowalla split.
GRAPHS = {"lastfm": (1892, 17632, 74_360), "gowalla": (29_858, 40_981, 810_128)}
DIM, LAYERS = 64, 3


def _random_graph(users: int, items: int, pairs: int, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    # Popularity-skewed items, like real purchase data, so the CSR rows are uneven.
    item = torch.multinomial(torch.arange(1, items + 1, dtype=torch.float).pow(-0.8), pairs, True, generator=g)
    user = torch.randint(0, users, (pairs,), generator=g)
    return torch.unique(torch.stack([user, item]), dim=1)


def lightgcn_variants(users: int, items: int, pairs: int, stock: bool) -> dict[str, Callable[[], None]]:
    from torch_geometric.nn import LGConv

    train = _random_graph(users, items, pairs)
    adj = bipartite_adjacency(train[0], train[1], users, items)
    x = torch.randn(users + items, DIM, requires_grad=True)
    conv = FastLGConv()

    def run(layer: Callable[[Tensor], Tensor]) -> Callable[[], None]:
        def step() -> None:
            h, out = x, x
            for _ in range(LAYERS):
                h = layer(h)
                out = out + h
            (out / (LAYERS + 1)).pow(2).sum().backward()
            x.grad = None
        return step

    variants = {"kernel (before)": run(lambda h: propagate(adj, h)),
                "FastLGConv (now)": run(lambda h: conv(h, adj))}
    if stock:  # normalised once, as a trainer would cache it; LGConv then only propagates
        coo = adj.to_sparse_coo()
        ei, w = coo.indices(), coo.values()
        lg = LGConv(normalize=False)
        variants["LGConv (stock)"] = run(lambda h: lg(h, ei, w))
    return variants


def sage_variants(users: int, items: int, pairs: int, stock: bool) -> dict[str, Callable[[], None]]:
    from torch_geometric.nn import SAGEConv

    train = _random_graph(users, items, pairs)
    to_user = mean_adjacency(train[0], train[1], users, items)  # products -> users
    to_item = mean_adjacency(train[1], train[0], items, users)  # users -> products
    xu = torch.randn(users, DIM, requires_grad=True)
    xi = torch.randn(items, DIM, requires_grad=True)
    lin = nn.Linear(DIM, DIM, bias=False)
    fast = FastSAGEConv(DIM, DIM, root_weight=False, bias=False)

    def run(layer: Callable[[Tensor, Tensor, tuple[Tensor, Tensor], Tensor], Tensor]) -> Callable[[], None]:
        def step() -> None:
            u = layer(xi, xu, to_user, train.flip(0))
            i = layer(xu, xi, to_item, train)
            (u.pow(2).sum() + i.pow(2).sum()).backward()
            xu.grad = xi.grad = None
        return step

    variants = {"kernel (before)": run(lambda src, dst, adj, ei: lin(aggregate(adj, src))),
                "FastSAGEConv (now)": run(lambda src, dst, adj, ei: fast(src, adj[0], transpose=adj[1]))}
    if stock:
        sage = SAGEConv((DIM, DIM), DIM, aggr="mean", root_weight=False, bias=False)
        variants["SAGEConv (stock)"] = run(lambda src, dst, adj, ei: sage((src, dst), ei))
    return variants


def call_overhead(calls: int = 2000) -> dict[str, float]:
    """Microseconds per call, forward and backward, on a 3-node graph: the fixed cost the PyG wrapping
    adds per layer call (hooks, argument collection), independent of graph size."""
    adj = bipartite_adjacency(torch.tensor([0, 1]), torch.tensor([0, 0]), 2, 1)
    x = torch.randn(3, 4, requires_grad=True)
    conv = FastLGConv()
    layers = {"kernel (before)": lambda: propagate(adj, x), "FastLGConv (now)": lambda: conv(x, adj)}
    out: dict[str, float] = {}
    for _ in range(2):  # the second round is the measurement
        for name, layer in layers.items():
            t0 = time.perf_counter()
            for _ in range(calls):
                layer().sum().backward()
            out[name] = 1e6 * (time.perf_counter() - t0) / calls
    return out


def measure(variants: dict[str, Callable[[], None]], reps: int) -> dict[str, list[float]]:
    names = list(variants)
    for name in names:  # warm-up (allocator, PyG's generated propagate)
        variants[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        for name in names[r % len(names):] + names[: r % len(names)]:  # rotate the order
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graph", choices=[*GRAPHS, "both"], default="lastfm")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--stock", action=argparse.BooleanOptionalAction, default=True,
                        help="also time PyG's stock LGConv / SAGEConv")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for graph in (list(GRAPHS) if args.graph == "both" else [args.graph]):
        for model, build in (("lightgcn", lightgcn_variants), ("sage", sage_variants)):
            times = measure(build(*GRAPHS[graph], args.stock), args.reps)
            base = times["kernel (before)"]
            for name, ts in times.items():
                paired = [t / b for t, b in zip(ts, base)]
                rows.append({"graph": graph, "model": model, "variant": name,
                             "median_ms": round(1000 * statistics.median(ts), 2),
                             "ratio_to_before": round(statistics.median(paired), 3),
                             "reps": len(ts), "threads": torch.get_num_threads()})
    if args.format == "json":
        print(json.dumps({"rows": rows, "call_overhead_us": call_overhead()}, indent=2))
        return
    cols = ["graph", "model", "variant", "median_ms", "ratio_to_before", "reps", "threads"]
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    fixed = call_overhead()
    print(f"fixed cost per layer call (forward+backward, 3-node graph): kernel "
          f"{fixed['kernel (before)']:.0f} us, FastLGConv {fixed['FastLGConv (now)']:.0f} us")
    print("ratio_to_before: median over repetitions of (variant time / direct-kernel time in the same "
          "repetition); only this ratio is meaningful on a shared machine.")


if __name__ == "__main__":
    main()
