"""The learning side's modules import one way: no circles inside ``graphrec.learn``, and the
contract it shares with serving (the artifact format, the fold-in, pseudonyms) imports nothing of it.
Read from the source (every import, also those inside functions; ``TYPE_CHECKING`` blocks are
annotations, not imports), so a lazy import cannot hide a circle."""

from __future__ import annotations

import ast
from pathlib import Path

import graphrec

PACKAGE = Path(graphrec.__file__).parent
SHARED = ("graphrec.artifact", "graphrec.coldstart", "graphrec.privacy")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, known: set[str]) -> set[str]:
    """The graphrec modules ``path`` imports (``from a.b import c`` counts ``a.b.c`` if it is a module)."""
    tree = ast.parse(path.read_text())
    skip = {id(node) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
            for node in ast.walk(n)}
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m in known}


def _graph() -> dict[str, set[str]]:
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: _imports(path, known) - {name} for name, path in paths.items()}


def test_the_learning_package_has_no_import_circles():
    graph = _graph()
    learn = {m: {d for d in deps if d.startswith("graphrec.learn")} for m, deps in graph.items()
             if m.startswith("graphrec.learn")}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(learn.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(learn):
        if m not in state:
            visit(m)
    assert len(learn) >= 15  # the walk really saw the package


def test_the_shared_contract_imports_no_learning_code():
    graph = _graph()
    for name in SHARED:
        assert name in graph, name
        assert not {d for d in graph[name] if d.startswith("graphrec.learn")}, (name, graph[name])
    assert not [m for m, deps in graph.items() if m.startswith("graphrec.serving")
                for d in deps if d.startswith("graphrec.learn")]
