"""The whole pipeline at growing shop sizes: seconds and peak memory of every stage (a benchmark).

    .venv/bin/python bench/scale.py [--users 10000,100000,1000000] [--stages generate,...,serve]
                                    [--train-minutes 10] [--train-args "--model social"] [--rate 200]
                                    [--duration 20] [--work DIR]

For each size: ``graphrec generate`` a shop, hold 10% of its purchases back, bulk load the rest
into a Neo4j of its own (``graphrec load --bulk``: validation, the importer, restart), load the
held-back 10% online (``graphrec load``: the incremental UNWIND path), ``graphrec export``,
``graphrec train`` (defaults for the size, ``--max-minutes``, and any ``--train-args``), ``graphrec evaluate``, start
``graphrec serve`` (until /health answers) and measure explained recommendations at ``--rate``
with ``bench/api.py`` (open loop). Every stage runs as its own process: its peak RSS is its own
(``wait4``), Neo4j's is printed apart. A table per size, then each stage's growth factor per 10x
of data. Stages not asked for, or not reached, are left empty. Timings are the machine's as it
is: run it on a quiet machine to quote them.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

REPO = Path(__file__).resolve().parents[1]
STAGES = ("generate", "bulk load", "online load 10%", "export", "train", "evaluate", "serve start", "serve p99")
GRAPHREC = str(Path(sys.executable).with_name("graphrec"))


@dataclass
class Stage:
    seconds: float
    peak_gb: float
    note: str = ""


@dataclass
class Size:
    users: int
    stages: dict[str, Stage] = field(default_factory=dict)
    neo4j_peak_gb: float | None = None


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS GB, stdout) of one command; its stderr (progress) passes through."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} ... failed with exit {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1e6, out


def hold_back(shop: Path, base: Path, delta: Path, share: float = 0.1, seed: int = 0) -> int:
    """Split the shop: ``base`` without ``share`` of the purchases, ``delta`` with only them (and the
    users and products they name, every category, no friendships): an incremental load's files."""
    base.mkdir(parents=True, exist_ok=True)
    delta.mkdir(parents=True, exist_ok=True)
    inter = pacsv.read_csv(shop / "interactions.csv")
    later = np.random.default_rng(seed).random(inter.num_rows) < share
    pacsv.write_csv(inter.filter(pa.array(~later)), base / "interactions.csv")
    held = inter.filter(pa.array(later))
    pacsv.write_csv(held, delta / "interactions.csv")
    for name in ("users", "products", "categories", "social"):
        (base / f"{name}.csv").write_bytes((shop / f"{name}.csv").read_bytes())
    for name, key, column in (("users", "user_id", "user_id"), ("products", "product_id", "product_id")):
        table = pacsv.read_csv(shop / f"{name}.csv", convert_options=pacsv.ConvertOptions(
            column_types={key: pa.string()}))
        pacsv.write_csv(table.filter(pc.is_in(table[key], value_set=pc.unique(held[column]))), delta / f"{name}.csv")
    (delta / "categories.csv").write_bytes((shop / "categories.csv").read_bytes())
    (delta / "social.csv").write_text("user_id,other_user_id,kind\n")
    return held.num_rows


def proc_gb(pid: int, field: str) -> float:
    """A memory field of a running process's /proc status (VmRSS: now, VmHWM: peak) in GB."""
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(f"{field}:"))
    return int(line.split()[1]) / 1e6


def neo4j_peak_gb(home: Path) -> float | None:
    """Peak RSS of the local Neo4j of ``home`` (VmHWM), while it runs."""
    for pid_file in home.rglob("*.pid"):
        try:
            return proc_gb(int(pid_file.read_text().split()[0]), "VmHWM")
        except (OSError, ValueError, StopIteration):
            continue
    return None


def serve(model: Path, env: dict[str, str], args: argparse.Namespace, size: Size, work: Path) -> None:
    """Start the service, time it to /health, then measure explained recommendations at ``--rate``."""
    port = 18000 + size.users % 1000
    t0 = time.perf_counter()
    proc = subprocess.Popen([GRAPHREC, "serve", "--model", str(model), "--port", str(port), "--log-level", "warning"],
                            env=env, cwd=REPO)
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"graphrec serve exited with {proc.returncode}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        started = time.perf_counter() - t0
        size.stages["serve start"] = Stage(started, proc_gb(proc.pid, "VmRSS"), "RSS after start")
        if "serve p99" in args.stages:
            out = work / "api.json"
            seconds, _, _ = run([sys.executable, str(REPO / "bench/api.py"), "--model", str(model), "--url",
                                 f"http://127.0.0.1:{port}", "--rate", str(args.rate), "--duration",
                                 str(args.duration), "--only", "recommendations", "--json", str(out)], env)
            result = json.loads(out.read_text())[0]
            size.stages["serve p99"] = Stage(result["total p99"] / 1000, proc_gb(proc.pid, "VmHWM"),
                                             f"p99 {result['total p99']:.1f} ms at {args.rate:g}/s, "
                                             f"{result['errors']} errors; peak = service")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def one_size(users: int, args: argparse.Namespace, root: Path) -> Size:
    size = Size(users)
    work = root / f"users-{users}"
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = {**os.environ, "GRAPHREC_HOME": str(home), "NEO4J_PASSWORD": "bench-scale-password",
           "GRAPHREC_BOLT_PORT": str(17000 + users % 1000), "PYTHONPATH": str(REPO)}
    env.pop("NEO4J_URI", None)
    want = set(args.stages)

    def stage(name: str, cmd: list[str], note: str = "") -> str:
        seconds, peak, out = run(cmd, env)
        size.stages[name] = Stage(seconds, peak, note)
        print(f"[{users:,} users] {name}: {seconds:.1f} s, peak {peak:.2f} GB {note}", file=sys.stderr, flush=True)
        return out

    def neo4j_running() -> None:
        # The loads start the shop's Neo4j; a run of later stages alone starts it here (a no-op if it runs).
        subprocess.run([GRAPHREC, "neo4j", "start"], env=env, cwd=REPO, check=True, capture_output=True)

    try:
        if "generate" in want or not (work / "shop").exists():
            stage("generate", [GRAPHREC, "generate", "--users", str(users), "--out", str(work / "shop")])
        held = hold_back(work / "shop", work / "base", work / "delta") if want & {"bulk load", "online load 10%"} else 0
        if "bulk load" in want:
            out = json.loads(stage("bulk load", [GRAPHREC, "load", str(work / "base"), "--bulk", "--no-progress"]))
            rels = sum(out["relationships"].values())
            size.stages["bulk load"].note = f"{rels:,} rel, {rels / size.stages['bulk load'].seconds:,.0f} rel/s"
        if "online load 10%" in want:
            stage("online load 10%", [GRAPHREC, "load", str(work / "delta"), "--no-progress"])
            size.stages["online load 10%"].note = f"{held:,} purchases, {held / size.stages['online load 10%'].seconds:,.0f}/s"
        if "export" in want:
            neo4j_running()
            out = json.loads(stage("export", [GRAPHREC, "export", "--out", str(work / "snapshot")]))
            rels = sum(out["counts"]["edges"].values())
            size.stages["export"].note = f"{rels:,} rel, {rels / out['export_seconds']:,.0f} rel/s in export"
        size.neo4j_peak_gb = neo4j_peak_gb(home)
        if "train" in want:
            out = json.loads(stage("train", [GRAPHREC, "train", "--snapshot", str(work / "snapshot"), "--out",
                                             str(work / "model"), "--max-minutes", str(args.train_minutes),
                                             "--format", "json", "--no-progress", *shlex.split(args.train_args)]))
            size.stages["train"].note = (f"{out['epochs_run']} epochs ({out['seconds_per_epoch']:.1f} s each), "
                                         f"{out['propagation']} propagation")
        if "evaluate" in want:
            out = json.loads(stage("evaluate", [GRAPHREC, "evaluate", "--model", str(work / "model"), "--snapshot",
                                                str(work / "snapshot"), "--k", "20", "--baselines", "popular",
                                                "--format", "json", "--no-progress",
                                                *(["--users", str(args.eval_users)] if args.eval_users else [])]))
            size.stages["evaluate"].note = evaluate_note(out)
        if want & {"serve start", "serve p99"}:
            neo4j_running()
            serve(work / "model", env, args, size, work)
    finally:
        subprocess.run([GRAPHREC, "neo4j", "stop"], env=env, cwd=REPO, capture_output=True)
    return size


def evaluate_note(report: dict) -> str:
    """Recall@20 of the model and of most-popular, from ``graphrec evaluate --format json``."""
    model = report["overall"]["recall@20"]
    popular = report["baselines"].get("popular", {}).get("overall", {}).get("recall@20")
    sample = report.get("test_users_sampled")
    of = f" ({sample['sample']:,} of {sample['of']:,} test users)" if sample else ""
    return (f"Recall@20 {model:.4f}" + (f" vs most-popular {popular:.4f} ({model / popular:.2f}x)" if popular else "")
            + of)


def table(sizes: list[Size]) -> str:
    lines = []
    for size in sizes:
        neo = f"; Neo4j peak RSS {size.neo4j_peak_gb:.2f} GB" if size.neo4j_peak_gb else ""
        lines += [f"\n{size.users:,} users{neo}", f"{'stage':<17} | {'seconds':>9} | {'peak GB':>7} | note",
                  f"{'-' * 17}-+-{'-' * 9}-+-{'-' * 7}-+-----"]
        for name in STAGES:
            s = size.stages.get(name)
            if s:
                lines.append(f"{name:<17} | {s.seconds:9.1f} | {s.peak_gb:7.2f} | {s.note}")
    if len(sizes) > 1:
        lines += ["\ngrowth per 10x of users (seconds ratio; 10 = linear)", "stage             | "
                  + " | ".join(f"{a.users:,}->{b.users:,}" for a, b in zip(sizes, sizes[1:]))]
        for name in STAGES:
            ratios = [(b.stages[name].seconds / a.stages[name].seconds) ** (1 / np.log10(b.users / a.users))
                      if name in a.stages and name in b.stages else float("nan") for a, b in zip(sizes, sizes[1:])]
            lines.append(f"{name:<17} | " + " | ".join(f"{r:>10.1f}" for r in ratios))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="10000,100000", help="shop sizes, comma separated")
    parser.add_argument("--stages", default=",".join(STAGES), help="stages to run, comma separated")
    parser.add_argument("--train-minutes", type=float, default=10.0)
    parser.add_argument("--train-args", default="", help="more `graphrec train` flags, e.g. \"--model social --layers 1\"")
    parser.add_argument("--eval-users", type=int, help="evaluate on a random sample of this many test users")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--work", type=Path, help="keep shops, homes and models here (default: a temporary dir)")
    args = parser.parse_args()
    args.stages = [s.strip() for s in args.stages.split(",")]
    unknown = set(args.stages) - set(STAGES)
    if unknown:
        parser.error(f"unknown stages {sorted(unknown)}; stages are {', '.join(STAGES)}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = args.work or Path(tmp)
        sizes = [one_size(int(u), args, root) for u in args.users.split(",")]
    print(f"GraphRec pipeline by shop size, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end")
    print(table(sizes))


if __name__ == "__main__":
    main()
