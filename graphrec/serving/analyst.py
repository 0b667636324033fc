"""Named analyst queries: ``cypher/analyst/*.cypher``, each documented by its header comment.

A file starts with comment lines::

    // name: friends_bought_in_category
    // description: Products most bought by friends of users who have not bought them, in one category.
    // param: category_id: string - the category's id
    // param: limit: int = 20 - at most this many rows
    // group_size: users_reached, friends_who_bought

``param`` lines give a name, a type (string, int, float, bool, list) and optionally ``= default``
(JSON); a parameter without a default is required.

``group_size`` (required) names the result columns that count people: a row is shown only when
every one of them is at least the minimum group size k (``GRAPHREC_MIN_GROUP_SIZE``, default 10),
so no row describes a group small enough to single someone out. A null in such a column means the
row counts no people (say, products). A query whose rows count no people says
``// group_size: none - why``. Rows are withheld after the query's own LIMIT; the result says how
many (``suppressed``).

The body runs through :func:`graphrec.store.query.run_analyst` (plan-checked, read-only, bounded)
with the checked, typed parameters only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from neo4j import Driver

from graphrec.store.query import DEFAULT_ROW_LIMIT, DEFAULT_TIMEOUT_S, AnalystPolicy, QueryResult, run_analyst


def _analyst_dir() -> Path:
    """``cypher/analyst`` of the checkout; from an installed wheel, the copy it ships as data files
    (pyproject.toml: ``<prefix>/share/graphrec/cypher/analyst``)."""
    checkout = Path(__file__).resolve().parents[2] / "cypher" / "analyst"
    if checkout.is_dir():
        return checkout
    import sysconfig

    return Path(sysconfig.get_path("data")) / "share" / "graphrec" / "cypher" / "analyst"


ANALYST_DIR = _analyst_dir()

_HEADER = re.compile(r"^//\s*(name|description|param|group_size):\s*(.*)$")
_GROUP_NONE = re.compile(r"^none\s+-\s+\S")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<type>string|int|float|bool|list)"
                    r"(?:\s*=\s*(?P<default>.+?))?(?:\s+-\s+(?P<doc>.*))?$")
_MISSING = object()


class QueryParamError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in ("true", "yes", "1"):
        return True
    if low in ("false", "no", "0"):
        return False
    raise ValueError("expected true or false")


# How text (a command-line value) becomes each parameter type; "string" keeps it as it is, so an
# id such as 2 stays the string "2" that the graph stores.
TEXT_TYPES: dict[str, Callable[[str], Any]] = {
    "string": str,
    "str": str,
    "int": int,
    "float": float,
    "bool": _parse_bool,
    "json": json.loads,
    "list": json.loads,
}


def coerce_text(name: str, type_name: str, raw: str) -> Any:
    """The value of parameter ``name`` given as text, read as ``type_name`` (see TEXT_TYPES)."""
    try:
        convert = TEXT_TYPES[type_name]
    except KeyError:
        raise QueryParamError(name, f"parameter {name!r}: unknown type {type_name!r} "
                                    f"(use one of {', '.join(TEXT_TYPES)})") from None
    try:
        value = convert(raw)
    except ValueError as err:
        raise QueryParamError(name, f"parameter {name!r}: {raw!r} is not a valid {type_name} ({err})") from None
    if type_name == "list" and not isinstance(value, list):
        raise QueryParamError(name, f"parameter {name!r}: {raw!r} is not a JSON list")
    return value


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
    # Columns counting people (see the module docstring); empty when the rows count no people.
    group_size: tuple[str, ...] = ()

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


def suppress_small_groups(result: QueryResult, columns: tuple[str, ...], k: int, where: str) -> QueryResult:
    """Withhold the rows of ``result`` where a group-size column is below ``k`` (null: no people)."""
    if not columns or k <= 1:
        return result
    missing = [c for c in columns if c not in result.columns]
    if missing:
        # Fail closed: without the column no row can be shown safely.
        raise ValueError(f"{where}: group_size column(s) {', '.join(missing)} not among the result's "
                         f"columns ({', '.join(result.columns)})")
    at = [result.columns.index(c) for c in columns]

    def small(value: Any) -> bool:
        if value is None:
            return False
        return not isinstance(value, (int, float)) or isinstance(value, bool) or value < k

    kept = [row for row in result.rows if not any(small(row[i]) for i in at)]
    result.suppressed += len(result.rows) - len(kept)
    result.rows = kept
    return result


def run_named(driver: Driver, query: NamedQuery, params: dict[str, Any], *, policy: AnalystPolicy,
              min_group_size: int, database: str = "neo4j", limit: int = DEFAULT_ROW_LIMIT,
              timeout: float = DEFAULT_TIMEOUT_S) -> QueryResult:
    """Run a named query with already bound ``params``; rows of groups under ``min_group_size`` withheld."""
    result = run_analyst(driver, query.cypher, params, policy=policy, database=database, limit=limit,
                         timeout=timeout)
    return suppress_small_groups(result, query.group_size, min_group_size, str(query.path))


def parse(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    params: list[Param] = []
    group_size: tuple[str, ...] | None = None
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
        elif key == "group_size":
            group_size = _group_columns(path, value)
        else:
            meta[key] = value
    if "name" not in meta or "description" not in meta:
        raise ValueError(f"{path}: header needs '// name:' and '// description:' lines")
    if group_size is None:
        raise ValueError(f"{path}: header needs a '// group_size:' line: the columns that count people, "
                         "or 'none - why' when the rows count no people")
    cypher = "\n".join(body).strip().rstrip(";")
    return NamedQuery(meta["name"], meta["description"], tuple(params), cypher, path, group_size)


def _group_columns(path: Path, value: str) -> tuple[str, ...]:
    if _GROUP_NONE.match(value):
        return ()
    if value.strip().lower() == "none":
        raise ValueError(f"{path}: 'group_size: none' needs a reason: 'none - why the rows count no people'")
    columns = tuple(c.strip() for c in value.split(","))
    if not columns or not all(_COLUMN.match(c) for c in columns):
        raise ValueError(f"{path}: bad group_size line {value!r}: expected column names separated by "
                         "commas, or 'none - why'")
    return columns


def load_queries(directory: Path = ANALYST_DIR) -> dict[str, NamedQuery]:
    queries = [parse(p) for p in sorted(Path(directory).glob("*.cypher"))]
    by_name = {q.name: q for q in queries}
    if len(by_name) != len(queries):
        raise ValueError(f"{directory}: two analyst queries share a name")
    return by_name
