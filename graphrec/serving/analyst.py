"""Named analyst queries: ``cypher/analyst/*.cypher``, each documented by its header comment.

A file starts with comment lines::

    // name: friends_bought_in_category
    // description: Products most bought by friends of users who have not bought them, in one category.
    // param: category_id: string - the category's id
    // param: limit: int = 20 - at most this many rows

``param`` lines give a name, a type (string, int, float, bool, list) and optionally ``= default``
(JSON); a parameter without a default is required. The body runs read-only through
:func:`graphrec.store.run_read`, with the checked, typed parameters only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANALYST_DIR = Path(__file__).resolve().parents[2] / "cypher" / "analyst"

_HEADER = re.compile(r"^//\s*(name|description|param):\s*(.*)$")
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>string|int|float|bool|list)"
                    r"(?:\s*=\s*(?P<default>.+?))?(?:\s+-\s+(?P<doc>.*))?$")
_MISSING = object()


class QueryParamError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    required: bool
    default: Any
    description: str

    def coerce(self, value: Any) -> Any:
        ok = {
            "string": lambda v: isinstance(v, str),
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "list": lambda v: isinstance(v, list),
        }[self.type]
        if not ok(value):
            raise QueryParamError(self.name, f"parameter {self.name!r} must be of type {self.type}")
        return float(value) if self.type == "float" else value


@dataclass(frozen=True)
class NamedQuery:
    name: str
    description: str
    params: tuple[Param, ...]
    cypher: str
    path: Path

    def bind(self, given: dict[str, Any]) -> dict[str, Any]:
        """The parameters to run with: given values checked and typed, defaults filled in."""
        known = {p.name for p in self.params}
        for name in given:
            if name not in known:
                raise QueryParamError(name, f"query {self.name!r} has no parameter {name!r} "
                                            f"(it takes: {', '.join(sorted(known)) or 'none'})")
        out: dict[str, Any] = {}
        for p in self.params:
            if p.name in given:
                out[p.name] = p.coerce(given[p.name])
            elif p.required:
                raise QueryParamError(p.name, f"query {self.name!r} needs parameter {p.name!r} ({p.type})")
            else:
                out[p.name] = p.default
        return out


def parse(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    params: list[Param] = []
    body: list[str] = []
    in_header = True
    for line in text.splitlines():
        m = _HEADER.match(line.strip()) if in_header else None
        if m is None:
            if in_header and line.strip().startswith("//"):
                continue  # free-form header comment
            in_header = False
            body.append(line)
            continue
        key, value = m.group(1), m.group(2).strip()
        if key == "param":
            pm = _PARAM.match(value)
            if pm is None:
                raise ValueError(f"{path}: bad param line {value!r}")
            default = json.loads(pm.group("default")) if pm.group("default") else _MISSING
            params.append(Param(pm.group("name"), pm.group("type"), default is _MISSING,
                                None if default is _MISSING else default, (pm.group("doc") or "").strip()))
        else:
            meta[key] = value
    if "name" not in meta or "description" not in meta:
        raise ValueError(f"{path}: header needs '// name:' and '// description:' lines")
    cypher = "\n".join(body).strip().rstrip(";")
    return NamedQuery(meta["name"], meta["description"], tuple(params), cypher, path)


def load_queries(directory: Path = ANALYST_DIR) -> dict[str, NamedQuery]:
    queries = [parse(p) for p in sorted(Path(directory).glob("*.cypher"))]
    by_name = {q.name: q for q in queries}
    if len(by_name) != len(queries):
        raise ValueError(f"{directory}: two analyst queries share a name")
    return by_name
