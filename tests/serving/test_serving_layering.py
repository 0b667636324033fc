"""The API never trains: serving imports neither torch nor PyG, installs without them, and a wheel
carries what serving reads at run time (the named analyst queries)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Run before anything else in a child interpreter: torch and PyG cannot be imported, as in the
# slim `graphrec[serve]` install.
WITHOUT_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "torch_geometric"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def test_api_imports_no_training_code():
    probe = ("import sys, api.main, graphrec.cli, graphrec.cli.serving, graphrec.serving.publish; "
             "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torch_geometric') "
             "or m.startswith('graphrec.learn')]; print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_serving_runs_without_torch_and_training_says_what_to_install():
    cli = WITHOUT_TORCH + "sys.argv = ['graphrec', *sys.argv[1:]]\nfrom graphrec.cli import main\nmain()\n"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", cli, *args], capture_output=True, text=True, cwd=ROOT)

    app = subprocess.run([sys.executable, "-c", WITHOUT_TORCH + "import api.main; api.main.create_app"],
                         capture_output=True, text=True, cwd=ROOT)
    assert app.returncode == 0, app.stderr
    for args in (["--help"], ["serve", "--help"], ["publish", "--help"]):
        done = run(*args)
        assert done.returncode == 0 and "Usage" in done.stdout, (args, done.stderr)
    for args in (["train", "--snapshot", "s", "--out", "o"], ["evaluate", "--model", "m", "--snapshot", "s"],
                 ["export", "--out", "o"]):
        done = run(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert done.stderr.strip() == ("error: this command needs torch, which the serving install leaves out: "
                                       "pip install 'graphrec[train]'"), args


def test_wheel_is_slim_and_ships_the_analyst_queries(tmp_path):
    src = tmp_path / "src"
    for name in ("pyproject.toml", "README.md"):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, src / name)
    for name in ("graphrec", "api", "cypher"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (tmp_path / "dist").glob("graphrec-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    queries = sorted(p.name for p in (ROOT / "cypher" / "analyst").glob("*.cypher"))
    shipped = sorted(Path(n).name for n in names if "/share/graphrec/cypher/analyst/" in n)
    assert queries and shipped == queries
    assert "graphrec/neo4j/pom.xml" in names and not any(n.startswith("tests/") for n in names)
    meta = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("dist-info/METADATA"))).decode()
    requires = [line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    torch_lines = [r for r in requires if r.startswith(("torch", "torch-geometric"))]
    assert torch_lines and all('extra == "train"' in r for r in torch_lines), requires
    assert any(r.startswith("duckdb") and "extra" not in r for r in requires)
    assert any(r.startswith("statsmodels") and "extra" not in r for r in requires)

    # Installed (no checkout around), serving finds the queries where the wheel put them.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    installed = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps",
                                "--no-index", "-q", str(wheel)], capture_output=True, text=True)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    # The dependencies come from this environment's site-packages (not processed as a site dir, so
    # the checkout's editable install stays out of the way).
    env = {**os.environ, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    probe = WITHOUT_TORCH + (
        "import sys, graphrec.serving.analyst as a, api.main\n"
        "assert a.__file__.startswith(sys.prefix), a.__file__\n"
        "assert str(a.ANALYST_DIR).startswith(sys.prefix), a.ANALYST_DIR\n"
        "print(len(a.load_queries()))\n")
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == len(queries)


def test_serving_process_exits_without_nanobind_leak_report(tmp_path):
    """Service.load_index freezes the heap (gc.freeze); frozen DuckDB (nanobind) objects used to
    outlive the interpreter's last collection and print ~40 'nanobind: leaked' lines at exit."""
    probe = ("import gc, sys, graphrec.serving.service\n"
             "from graphrec.campaigns.events import EventStore\n"
             "with EventStore(sys.argv[1]) as store:\n"
             "    store.count()\n"
             "gc.collect(); gc.freeze()  # what load_index does after building the index\n")
    done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "events.duckdb")],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "nanobind" not in done.stderr, done.stderr[:2000]
