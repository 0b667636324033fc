"""Export throughput: relationships per second out of Neo4j into a snapshot (a benchmark, not a test).

    .venv/bin/python bench/export.py [--users 100000] [--old-rev 2e0186e] [--repeat 2]

Generates a shop, bulk loads it into a Neo4j of its own (temporary home, free port), then exports
it with this tree's ``export_snapshot`` and, with --old-rev, with that commit's, alternating, each
run in a fresh process so peak RSS is its own. Prints seconds, relationships per second and peak
RSS per run, and the old/new ratio of the medians: taken side by side in one run, the ratio holds
even on a busy machine; the absolute figures only on a quiet one. The first export after the server
starts pays for Neo4j's warm-up (the JIT compiling the query runtime: 8.6 s against 4.5 s for the
next one at 100k users), so one export is run first and not counted (``--warmup``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphrec.config import Settings  # noqa: E402
from graphrec.datasets.synthetic import generate_shop  # noqa: E402
from graphrec.neo4j.server import LocalNeo4j, free_port  # noqa: E402
from graphrec.store.bulk import bulk_load_directory  # noqa: E402

# Runs in a child: export with the snapshot module found first on sys.path, print JSON.
CHILD = """
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from graphrec.config import Settings
from graphrec.store.driver import connect
from snapshot_under_test import export_snapshot
settings = Settings(home=sys.argv[2], bolt_port=int(sys.argv[3]), neo4j_password=sys.argv[4], neo4j_uri=None)
driver = connect(settings)
t0 = time.perf_counter()
meta = export_snapshot(driver, sys.argv[5])
print(json.dumps({"seconds": time.perf_counter() - t0, "rels": sum(meta["counts"]["edges"].values()),
                  "rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}))
"""


def module_dir(root: Path, source: str) -> Path:
    """A directory holding ``snapshot_under_test.py`` with ``source``."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "snapshot_under_test.py").write_text(source)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--old-rev", default=None, help="a commit whose export to compare with")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1, help="exports run first and not counted")
    args = parser.parse_args()
    password = "bench-export-password"
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        work = Path(tmp)
        generate_shop(args.users, work / "shop", seed=0)
        settings = Settings(home=work / "home", bolt_port=free_port(), neo4j_password=password, neo4j_uri=None)
        bulk_load_directory(settings, work / "shop", progress=False)
        server = LocalNeo4j(settings)
        versions = {"new": module_dir(work / "new", (REPO / "graphrec/learn/snapshot.py").read_text())}
        if args.old_rev:
            old = subprocess.run(["git", "-C", str(REPO), "show", f"{args.old_rev}:graphrec/learn/snapshot.py"],
                                 capture_output=True, text=True, check=True).stdout
            versions["old"] = module_dir(work / "old", old)
        runs: dict[str, list[dict]] = {name: [] for name in versions}

        def export(directory: Path, out: Path) -> dict:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(directory), str(settings.home), str(settings.bolt_port), password,
                 str(out)], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
            return json.loads(done.stdout.strip().splitlines()[-1])

        try:
            for i in range(args.warmup):
                r = export(versions["new"], work / f"snap-warmup-{i}")
                print(f"warm-up {i + 1}: {r['seconds']:7.1f} s (not counted)", flush=True)
            for i in range(args.repeat):
                for name, directory in versions.items():
                    runs[name].append(export(directory, work / f"snap-{name}-{i}"))
                    r = runs[name][-1]
                    print(f"{name:>4} run {i + 1}: {r['seconds']:7.1f} s  {r['rels'] / r['seconds']:>9,.0f} rel/s  "
                          f"peak RSS {r['rss_gb']:.2f} GB", flush=True)
        finally:
            server.stop()
    print(f"\n{'version':>8} | {'median s':>9} | {'rel/s':>9} | {'peak RSS GB':>11}")
    median = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    for name, rs in runs.items():
        print(f"{name:>8} | {median[name]:9.1f} | {rs[0]['rels'] / median[name]:9,.0f} | "
              f"{max(r['rss_gb'] for r in rs):11.2f}")
    if "old" in median:
        print(f"\nold/new time ratio: {median['old'] / median['new']:.2f}x")


if __name__ == "__main__":
    main()
