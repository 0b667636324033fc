"""Named analyst queries: ``cypher/analyst/*.cypher``, each documented by its header comment.

A file starts with comment lines::

    // name: friends_bought_in_category
    // description: Products most bought by friends of users who have not bought them, in one category.
    // param: category_id: string - the category's id
    // param: limit: int = 20 - at most this many rows
    // group_size: users_reached, friends_who_bought

``gds_graph`` (optional) names parameters the query projects Graph Data Science in-memory graphs
under, e.g. ``// gds_graph: graph`` for ``gds.graph.project($graph, ...)``. The runner, not the caller,
fills each with a name of its own (``graphrec_<query>_<random>``) and drops that graph once the query
ends, failed or not; it also drops ``graphrec_`` graphs that an earlier, interrupted run left behind.
So concurrent runs never share a graph and no projection outlives its query.

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
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from neo4j import Driver

from graphrec.store.query import DEFAULT_ROW_LIMIT, DEFAULT_TIMEOUT_S, AnalystPolicy, QueryResult, run_analyst, run_read

log = logging.getLogger(__name__)


def _analyst_dir() -> Path:
    """``cypher/analyst`` of the checkout; from an installed wheel, the copy it ships as data files
    (pyproject.toml: ``<prefix>/share/graphrec/cypher/analyst``)."""
    checkout = Path(__file__).resolve().parents[2] / "cypher" / "analyst"
    if checkout.is_dir():
        return checkout
    import sysconfig

    return Path(sysconfig.get_path("data")) / "share" / "graphrec" / "cypher" / "analyst"


ANALYST_DIR = _analyst_dir()

_HEADER = re.compile(r"^//\s*(name|description|param|group_size|gds_graph):\s*(.*)$")
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
    # Parameters naming the GDS in-memory graphs the query projects (see the module docstring).
    gds_graphs: tuple[str, ...] = ()

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
    graphs = {name: gds_graph_name(query.name) for name in query.gds_graphs}
    if graphs:
        drop_stale_graphs(driver, database, older_than_s=timeout + STALE_GRAPH_GRACE_S)
    try:
        result = run_analyst(driver, query.cypher, {**params, **graphs}, policy=policy, database=database,
                             limit=limit, timeout=timeout)
    finally:
        for graph in graphs.values():
            drop_graph(driver, graph, database)
    return suppress_small_groups(result, query.group_size, min_group_size, str(query.path))


# Prefix of the in-memory graphs named queries project; a graph of theirs this much older than the
# query time limit is left over from a run that was interrupted between projecting and dropping.
GDS_GRAPH_PREFIX = "graphrec_"
STALE_GRAPH_GRACE_S = 60.0


def gds_graph_name(query: str) -> str:
    """A fresh in-memory graph name for one run of ``query``."""
    return f"{GDS_GRAPH_PREFIX}{query}_{uuid.uuid4().hex[:12]}"


def drop_graph(driver: Driver, graph: str, database: str) -> None:
    """Drop ``graph`` if it exists; a failure is logged (the next run's sweep retries), never raised,
    so it cannot hide the query's own error."""
    try:
        run_read(driver, "CALL gds.graph.drop($g, false) YIELD graphName RETURN graphName", {"g": graph},
                 database=database)
    except Exception as err:  # noqa: BLE001 - best effort, see the docstring
        log.warning("could not drop GDS graph %s: %s", graph, err)


def drop_stale_graphs(driver: Driver, database: str, older_than_s: float) -> list[str]:
    """Drop the named queries' graphs created more than ``older_than_s`` ago; the names dropped."""
    try:
        stale = run_read(driver, "CALL gds.graph.list() YIELD graphName, creationTime "
                                 "WHERE graphName STARTS WITH $prefix "
                                 "AND creationTime < datetime() - duration({seconds: $age}) RETURN graphName",
                         {"prefix": GDS_GRAPH_PREFIX, "age": int(older_than_s)}, database=database).rows
    except Exception as err:  # noqa: BLE001 - no GDS, or Neo4j away: the query itself will say so
        log.warning("could not list GDS graphs: %s", err)
        return []
    for (graph,) in stale:
        drop_graph(driver, graph, database)
    return [g for (g,) in stale]


def parse(path: Path) -> NamedQuery:
    text = path.read_text(encoding="utf-8")
    meta: dict[str, str] = {}
    params: list[Param] = []
    group_size: tuple[str, ...] | None = None
    gds_graphs: tuple[str, ...] = ()
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
        elif key == "gds_graph":
            gds_graphs = tuple(c.strip() for c in value.split(","))
            if not all(_COLUMN.match(c) for c in gds_graphs):
                raise ValueError(f"{path}: bad gds_graph line {value!r}: expected parameter names separated by commas")
        else:
            meta[key] = value
    if "name" not in meta or "description" not in meta:
        raise ValueError(f"{path}: header needs '// name:' and '// description:' lines")
    if group_size is None:
        raise ValueError(f"{path}: header needs a '// group_size:' line: the columns that count people, "
                         "or 'none - why' when the rows count no people")
    cypher = "\n".join(body).strip().rstrip(";")
    clash = sorted(set(gds_graphs) & {p.name for p in params})
    if clash:
        raise ValueError(f"{path}: {', '.join(clash)} is both a param and a gds_graph (the runner names graphs)")
    return NamedQuery(meta["name"], meta["description"], tuple(params), cypher, path, group_size, gds_graphs)


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
