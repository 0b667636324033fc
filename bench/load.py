"""Load throughput: relationships per second into a local Neo4j (a benchmark, not a test).

    .venv/bin/python bench/load.py [--datasets lastfm,synthetic,gowalla] [--users 115000] [--batch-size 10000] [--no-bulk]

Starts its own Neo4j in a temporary home on a free port, warms it up with a small synthetic shop
(unless --no-warmup), converts or generates each data set, loads it into an empty database and prints a table: seconds spent validating and writing, nodes
and relationships in the database afterwards, and relationships per second end to end (validation
included) and for the writes alone. CPU seconds of Neo4j and of this process are printed too: on
a shared machine wall time is noisy, CPU time much less so. Then the seconds of each write step.

Each data set is also bulk loaded (``graphrec load --bulk``: Neo4j's offline importer) into a fresh
home of its own, unless --no-bulk: its row's "write s" counts writing the importer's CSV, the
import, the server's restart and the schema; "neo4j cpu s" is the importer's CPU; the import
alone is printed below the table.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from graphrec.config import Settings  # noqa: E402
from graphrec.neo4j.server import LocalNeo4j, free_port  # noqa: E402
from graphrec.store.bulk import bulk_load_directory  # noqa: E402
from graphrec.store.driver import connect  # noqa: E402
from graphrec.store.loader import LoadResult, load_directory  # noqa: E402

DATA = Path(os.environ.get("GRAPHREC_SHARED_DATA", REPO.parent / "shared" / "data"))


@dataclass
class Row:
    name: str
    result: LoadResult
    server_cpu: float
    client_cpu: float

    @property
    def rels(self) -> int:
        return sum(self.result.relationships.values())

    @property
    def nodes(self) -> int:
        return sum(self.result.nodes.values())


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wipe(driver) -> None:
    # Relationships first: deleting a popular product with all its edges in one batch can exceed
    # the transaction memory pool.
    with driver.session() as session:
        session.run("MATCH ()-[r]->() CALL (r) { DELETE r } IN TRANSACTIONS OF 50000 ROWS").consume()
        session.run("MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS OF 50000 ROWS").consume()


def prepare(name: str, out: Path, users: int, seed: int) -> Path:
    if name == "lastfm":
        from graphrec.datasets.lastfm import convert_lastfm

        convert_lastfm(DATA / "lastfm-hetrec2011", out, DATA / "lastfm-sociallgn-split")
    elif name == "gowalla":
        from graphrec.datasets.gowalla import convert_gowalla

        convert_gowalla(DATA / "gowalla-lightgcn", out)
    elif name == "synthetic":
        from graphrec.datasets.synthetic import generate_shop

        generate_shop(users, out, seed)
    else:
        raise SystemExit(f"unknown data set {name!r}")
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bulk_row(name: str, directory: Path, work: Path) -> Row:
    """Bulk load ``directory`` into a fresh home of its own (its server stopped afterwards)."""
    settings = Settings(home=work / f"bulk-{name}", bolt_port=free_port(), neo4j_password="bench-password",
                        neo4j_uri=None)
    children0, client0 = children_cpu(), time.process_time()
    try:
        result = bulk_load_directory(settings, directory, progress=False)
    finally:
        LocalNeo4j(settings).stop()
    # The importer ran as a waited-for child: its CPU is in RUSAGE_CHILDREN (the server's is not yet).
    return Row(f"{name} (bulk)", result, children_cpu() - children0, time.process_time() - client0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="lastfm,synthetic")
    parser.add_argument("--users", type=int, default=115_000, help="synthetic shop users (115k: ~1M purchases)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--reload", action="store_true", help="also time a second load of the same files")
    parser.add_argument("--no-bulk", dest="bulk", action="store_false",
                        help="skip the bulk load (Neo4j's offline importer) of each data set")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false",
                        help="skip loading a small shop first (the JVM compiles the statements then)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="graphrec-bench-"))
    settings = Settings(home=work / "home", bolt_port=free_port(), neo4j_password="bench-password", neo4j_uri=None)
    server = LocalNeo4j(settings)
    rows: list[Row] = []
    try:
        print(f"starting Neo4j in {work} ...", file=sys.stderr)
        server.start()
        pid = server.pid()
        driver = connect(settings)
        if args.warmup:  # a fresh JVM runs the first few hundred thousand rows several times slower
            print("warming up ...", file=sys.stderr)
            load_directory(driver, prepare("synthetic", work / "warmup", 20_000, args.seed + 1), progress=False)
        for name in args.datasets.split(","):
            print(f"preparing {name} ...", file=sys.stderr)
            directory = prepare(name, work / name, args.users, args.seed)
            if args.bulk:
                rows.append(bulk_row(name, directory, work))
            wipe(driver)
            runs = [name, f"{name} (reload)"] if args.reload else [name]
            for label in runs:
                server0, client0 = cpu_seconds(pid), time.process_time()
                result = load_directory(driver, directory, batch_size=args.batch_size, progress=sys.stderr.isatty())
                rows.append(Row(label, result, cpu_seconds(pid) - server0, time.process_time() - client0))
        driver.close()
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    header = ("data set", "nodes", "rels", "validate s", "write s", "total s", "rel/s total", "rel/s writes",
              "neo4j cpu s", "client cpu s")
    table = [header] + [
        (r.name, f"{r.nodes:,}", f"{r.rels:,}", f"{r.result.validation_seconds:.1f}", f"{r.result.write_seconds:.1f}",
         f"{r.result.seconds:.1f}", f"{r.rels / r.result.seconds:,.0f}", f"{r.rels / r.result.write_seconds:,.0f}",
         f"{r.server_cpu:.1f}", f"{r.client_cpu:.1f}")
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for k, line in enumerate(table):
        print("  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in enumerate(zip(line, widths))))
        if k == 0:
            print("  ".join("-" * w for w in widths))
    for r in rows:
        if "import" in r.result.step_seconds:
            print(f"{r.name}: neo4j-admin import alone {r.rels / r.result.step_seconds['import']:,.0f} rel/s "
                  f"({r.result.step_seconds['import']:.1f} s)")
    print(f"\nbatch size {args.batch_size}, {os.cpu_count()} CPUs; seconds per write step:")
    for r in rows:
        steps = ", ".join(f"{k} {v:.1f}" for k, v in r.result.step_seconds.items() if v >= 0.05)
        print(f"  {r.name}: {steps}")


if __name__ == "__main__":
    main()
