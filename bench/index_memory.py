"""Memory of the serving graph index: the array layout against the dict layout it replaced.

    .venv/bin/python bench/index_memory.py [--users 100000,1000000] [--dicts-up-to 100000] [--purchases-per-user 10]

For each size it generates a shop (``graphrec generate``'s canonical files, cached in a temporary
directory) and builds the index from those files through the real loading code: the three Cypher
queries' records are made from the files and handed to ``GraphIndex.load`` by a stand-in driver,
so nothing but Neo4j itself is left out (loading 10M relationships into Neo4j first would take
longer than the rest of the bench together). The dict layout is ``GraphIndex.load`` as it was at
``--old-rev`` (read from git), fed the same records.

Each (layout, size) is built twice in a fresh interpreter: once under tracemalloc (the bytes the
built index holds: every allocation made while building and still alive after, numpy arrays
included) and once without (the process's RSS growth, which also counts what the allocator keeps).
Per relationship means per stored relationship the index holds (BOUGHT, VIEWED/RATED, FRIEND,
FOLLOWS, IN_CATEGORY, interests); per purchase divides by BOUGHT alone, as docs/scale.md did.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphrec.datasets.synthetic import ShopShape, generate_shop  # noqa: E402
from graphrec.serving.graph_arrays import STORED  # noqa: E402

# The last commit with the dict layout (graphrec/serving/graph_index.py before the arrays).
OLD_REV = "2e0186e"


def rss_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _column(table, name: str) -> list:
    return table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows


class Records:
    """The three queries' records, made from a shop's canonical files, each as the driver would
    stream it (one record at a time; the users' lists are built per record)."""

    def __init__(self, shop: Path) -> None:
        read = lambda name: pacsv.read_csv(shop / f"{name}.csv")  # noqa: E731
        self.categories = read("categories")
        self.products = read("products")
        self.users = read("users")
        inter, social = read("interactions"), read("social")
        self.n_rows = {"interactions": inter.num_rows, "social": social.num_rows}
        # Users' relationships as Arrow columns sorted by user, sliced per record when streamed
        # (Arrow, not Python objects: the input should not dwarf what is measured).
        self.user_ids = self.users.column("user_id").to_pylist()
        number = {u: i for i, u in enumerate(self.user_ids)}
        self.by_user = {}
        for name, table, other in (("inter", inter, "product_id"), ("social", social, "other_user_id")):
            rows = np.fromiter((number[u] for u in table.column("user_id").to_pylist()), dtype=np.int64,
                               count=table.num_rows)
            order = np.argsort(rows, kind="stable")
            table = table.take(order)
            cols = {"other": table.column(other).combine_chunks(),
                    "kind": table.column("kind").combine_chunks() if "kind" in table.column_names else None}
            if name == "inter":
                cols["ts"] = table.column("ts").combine_chunks() if "ts" in table.column_names else None
            self.by_user[name] = (cols, np.searchsorted(rows[order], np.arange(len(self.user_ids) + 1)).tolist())

    def run(self, query: str) -> Iterator[dict[str, Any]]:
        label = query.split("MATCH (", 1)[1].split(")", 1)[0].split(":")[1]
        if label == "Category":
            for cid, name in zip(self.categories.column("category_id").to_pylist(), _column(self.categories, "name")):
                yield {"id": cid, "name": name}
        elif label == "Product":
            p = self.products
            for pid, name, price, cat in zip(p.column("product_id").to_pylist(), _column(p, "name"),
                                             _column(p, "price"), _column(p, "category_id")):
                yield {"id": pid, "name": name, "price": price, "categories": [cat] if cat else []}
        else:
            (inter, i_at), (social, s_at) = self.by_user["inter"], self.by_user["social"]

            def part(column, a: int, b: int) -> list:
                return [None] * (b - a) if column is None else column.slice(a, b - a).to_pylist()
            for u, uid in enumerate(self.user_ids):
                a, b, c, d = i_at[u], i_at[u + 1], s_at[u], s_at[u + 1]
                others, kinds, times = part(inter["other"], a, b), part(inter["kind"], a, b), part(inter["ts"], a, b)
                friends, skinds = part(social["other"], c, d), part(social["kind"], c, d)
                yield {"id": uid, "name": None,
                       "bought": [[p, ts] for p, ts, k in zip(others, times, kinds) if k in (None, "purchase")],
                       "touched": [p for p, k in zip(others, kinds) if k in ("view", "rating")],
                       "friends_out": [o for o, k in zip(friends, skinds) if k in (None, "friend")],
                       "follows": [o for o, k in zip(friends, skinds) if k == "follows"],
                       "interests": None}


class StandInDriver:
    """What ``GraphIndex.load`` asks of a driver: a session whose ``run`` streams records."""

    def __init__(self, records: Records) -> None:
        self.records = records

    @contextmanager
    def session(self, **_: Any):
        yield self.records


def old_module(rev: str):
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:graphrec/serving/graph_index.py"],
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / "graph_index_dicts.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("graph_index_dicts", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def relationships(index: Any) -> tuple[int, int]:
    """(stored relationships the index holds, purchases), counted on the array index."""
    rel = index.base.relations
    return sum(int(rel[name].indptr[-1]) for name in STORED), int(rel["bought"].indptr[-1])


def measure(layout: str, shop: Path, traced: bool, old_rev: str) -> dict[str, Any]:
    """In this (fresh) process: build one index from the shop, and what it holds."""
    from graphrec.serving.graph_index import GraphIndex

    cls = old_module(old_rev).GraphIndex if layout == "dicts" else GraphIndex
    records = Records(shop)
    gc.collect()
    before = rss_bytes()
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    index = cls.load(StandInDriver(records))
    seconds = time.perf_counter() - t0
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] if traced else None
    out = {"seconds": seconds, "held": held, "rss": rss_bytes() - before}
    if layout == "arrays":
        out["nbytes"] = index.nbytes
        out["relationships"], out["purchases"] = relationships(index)
    return out


def serve(shop: Path, requests: int = 200, dim: int = 64) -> dict[str, Any]:
    """In this (fresh) process: a whole serving state over the shop (the array index, a model
    artifact with random embeddings of ``dim`` for every user and product, the recommender), then
    explained recommendations for random users; the process's RSS, peak and after."""
    from graphrec.artifact import Artifact, save_artifact
    from graphrec.config import Settings
    from graphrec.serving.graph_index import GraphIndex
    from graphrec.serving.reader import Update
    from graphrec.serving.service import Service

    records = Records(shop)
    index = GraphIndex.load(StandInDriver(records))
    users, products, cats = index.user_ids(), index.product_ids(), index.category_ids()
    del records
    rng = np.random.default_rng(0)
    art_dir = Path(tempfile.mkdtemp(prefix="graphrec-bench-artifact-"))
    save_artifact(art_dir, model="bench", snapshot_id="bench", config={}, metrics={}, user_ids=users,
                  product_ids=products, category_ids=cats,
                  user_emb=rng.standard_normal((len(users), dim), dtype=np.float32),
                  product_emb=rng.standard_normal((len(products), dim), dtype=np.float32),
                  category_emb=rng.standard_normal((len(cats), dim), dtype=np.float32),
                  product_categories=[[] for _ in products], popularity=np.ones(len(products)))
    del users, products, cats
    gc.collect()
    service = Service(Settings(), Artifact.load(art_dir), None)
    service.state = service._build_state(Update(1, index.base))
    del index
    gc.collect()
    loaded = rss_bytes()
    picks = rng.choice(service.state.index.user_ids(), requests).tolist()
    t0 = time.perf_counter()
    explained = sum(len(i.explanations) > 0 for u in picks for i in service.recommend(u, 10, reload=False).items)
    seconds = time.perf_counter() - t0
    hwm = next(int(line.split()[1]) * 1024 for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmHWM"))
    return {"rss": loaded, "peak": hwm, "ms_per_request": 1000 * seconds / requests,
            "explained_share": explained / (10 * requests)}


def child(layout: str, shop: Path, traced: bool, old_rev: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--measure", layout, "--shop", str(shop), "--old-rev", old_rev]
    if traced:
        cmd.append("--traced")
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", default="100000,1000000", help="comma-separated shop sizes")
    parser.add_argument("--dicts-up-to", type=int, default=100_000, help="build the dict layout up to this size")
    parser.add_argument("--purchases-per-user", type=float, default=10.0)
    parser.add_argument("--old-rev", default=OLD_REV)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "graphrec-index-memory")
    parser.add_argument("--service", action="store_true", help="also a whole serving state at the largest size")
    parser.add_argument("--measure", choices=["arrays", "dicts", "service"], help=argparse.SUPPRESS)
    parser.add_argument("--shop", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure == "service":
        print(json.dumps(serve(args.shop)))
        return
    if args.measure:
        print(json.dumps(measure(args.measure, args.shop, args.traced, args.old_rev)))
        return

    rows = []
    for n in (int(s) for s in args.users.split(",")):
        shop = args.work / f"shop-{n}-{args.purchases_per_user:g}"
        if not (shop / "social.csv").exists():
            print(f"generating {n:,} users ...", file=sys.stderr)
            generate_shop(n, shop, 0, ShopShape(purchases_per_user=args.purchases_per_user))
        result: dict[str, dict[str, Any]] = {}
        for layout in ("arrays", "dicts") if n <= args.dicts_up_to else ("arrays",):
            print(f"{n:,} users, {layout} ...", file=sys.stderr)
            result[layout] = {**child(layout, shop, False, args.old_rev),
                              "held": child(layout, shop, True, args.old_rev)["held"]}
        rows.append((n, result))

    header = ["users", "relationships", "purchases", "layout", "build s", "held MB", "B/rel held",
              "B/rel RSS", "B/purchase held", "arrays B/rel"]
    table = []
    for n, result in rows:
        rels, purchases = result["arrays"]["relationships"], result["arrays"]["purchases"]
        for layout, r in result.items():
            table.append([f"{n:,}", f"{rels:,}", f"{purchases:,}", layout, f"{r['seconds']:.1f}",
                          f"{r['held'] / 2**20:,.0f}", f"{r['held'] / rels:.1f}", f"{r['rss'] / rels:.1f}",
                          f"{r['held'] / purchases:.1f}",
                          f"{r['nbytes'] / rels:.1f}" if "nbytes" in r else ""])
    widths = [max(len(str(c)) for c in col) for col in zip(header, *table)]
    for i, line in enumerate([header, *table]):
        print("  ".join(c.rjust(w) for c, w in zip(line, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    for n, result in rows:
        if "dicts" in result:
            d, a = result["dicts"], result["arrays"]
            print(f"{n:,} users: the arrays hold {d['held'] / a['held']:.1f}x less than the dicts "
                  f"(RSS growth {d['rss'] / max(a['rss'], 1):.1f}x less)")
    if args.service:
        n, _ = rows[-1]
        print(f"serving state at {n:,} users ...", file=sys.stderr)
        r = child("service", args.work / f"shop-{n}-{args.purchases_per_user:g}", False, args.old_rev)
        print(f"\nwhole serving state at {n:,} users (array index + 64-dim artifact + recommender): RSS "
              f"{r['rss'] / 2**30:.2f} GB after loading, peak {r['peak'] / 2**30:.2f} GB; explained "
              f"recommendations {r['ms_per_request']:.1f} ms each ({r['explained_share']:.0%} of items explained)")
    print(f"\n{os.cpu_count()} CPUs; held = tracemalloc's bytes still allocated after building (a run of "
          "its own); RSS = resident set growth without tracemalloc; arrays B/rel = the index's own array "
          "accounting (GraphArrays.nbytes).")


if __name__ == "__main__":
    main()
