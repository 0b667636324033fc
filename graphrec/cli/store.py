"""``graphrec schema``, ``graphrec query`` and ``graphrec queries``: the graph's schema, analysts'
read-only Cypher and the named analyst queries."""

from __future__ import annotations

import csv
import io
from enum import Enum
from typing import Annotated

import typer

from graphrec import schema
from graphrec.cli.app import app, connected, fail, format_table, print_json, settings_of
from graphrec.serving.analyst import QueryParamError, coerce_text, load_queries, run_named
from graphrec.store.query import DEFAULT_ROW_LIMIT, AnalystPolicy, QueryRefused, QueryResult, run_analyst
from graphrec.store.schema import apply_schema

schema_app = typer.Typer(help="The graph schema (defined once in graphrec/schema.py).", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("apply")
def schema_apply(ctx: typer.Context) -> None:
    """Create the constraints and indexes that are missing (idempotent)."""
    with connected(ctx) as driver:
        statements = apply_schema(driver, settings_of(ctx).neo4j_database)
    print_json({"applied": statements, "schema_version": schema.SCHEMA_VERSION})


@schema_app.command("show")
def schema_show() -> None:
    """Print the schema as Cypher (the content of cypher/schema.cypher)."""
    typer.echo(schema.schema_cypher(), nl=False)


class OutputFormat(str, Enum):
    json = "json"
    table = "table"
    csv = "csv"


PARAM_HELP = ("name=value, a string (ids are strings: id=2 is the id \"2\"); name:TYPE=value for "
              "other types: int, float, bool, json (lists, maps, null). Repeatable.")


def split_param(text: str) -> tuple[str, str | None, str]:
    """``name=value`` -> (name, None, value); ``name:int=5`` -> (name, "int", "5")."""
    head, sep, raw = text.partition("=")
    name, _, type_name = head.partition(":")
    name, type_name = name.strip(), type_name.strip()
    if not sep or not name.isidentifier() or (":" in head and not type_name):
        raise typer.BadParameter(f"expected name=value or name:type=value, got {text!r}", param_hint="--param")
    return name, type_name or None, raw


def parse_param(text: str) -> tuple[str, object]:
    """A ``--param`` of ``graphrec query``: a string unless typed (see PARAM_HELP)."""
    name, type_name, raw = split_param(text)
    try:
        return name, coerce_text(name, type_name or "string", raw)
    except QueryParamError as err:
        raise typer.BadParameter(err.message, param_hint="--param") from None


def _result_json(result: QueryResult, **extra: object) -> dict:
    out: dict = {"columns": result.columns, "rows": result.rows, "truncated": result.truncated}
    if result.truncated_by:
        out["truncated_by"] = result.truncated_by
    return {**out, **extra}


def render(result: QueryResult, fmt: OutputFormat) -> str:
    import json

    if fmt is OutputFormat.json:
        return json.dumps(_result_json(result), indent=2, ensure_ascii=False, default=str)
    cells = [[c if isinstance(c, str) else json.dumps(c, ensure_ascii=False, default=str) for c in row]
             for row in result.rows]
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(result.columns)
        writer.writerows(cells)
        return buf.getvalue().rstrip("\n")
    return "\n".join([format_table(result.columns, cells),
                      f"({len(cells)} rows{f', truncated by the {result.truncated_by} limit' if result.truncated else ''}"
                      f"{f', {result.suppressed} withheld (small groups)' if result.suppressed else ''})"])


@app.command()
def query(
    ctx: typer.Context,
    cypher: Annotated[str, typer.Argument(help="A read-only Cypher query; use $name for parameters.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help=PARAM_HELP)] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.json,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = DEFAULT_ROW_LIMIT,
    timeout: Annotated[float, typer.Option(help="Seconds before the query is stopped.")] = 30.0,
) -> None:
    """Run an analyst's read-only Cypher query and print its records.

    Allowed: reads of the graph and the procedures of GRAPHREC_ANALYST_PROCEDURES, decided from the query's plan.

    Refused (exit code 2): writes, administration commands (SHOW/TERMINATE TRANSACTIONS, users, settings), other procedures.

    The result stops at GRAPHREC_ANALYST_MAX_BYTES of JSON."""
    params = dict(parse_param(p) for p in param or [])
    settings = settings_of(ctx)
    with connected(ctx) as driver:
        try:
            result = run_analyst(driver, cypher, params, policy=AnalystPolicy.from_settings(settings),
                                 database=settings.neo4j_database, limit=limit, timeout=timeout)
        except QueryRefused as err:
            fail(err.reason, code=2)
    typer.echo(render(result, fmt))


queries_app = typer.Typer(help="The named analyst queries of cypher/analyst/.", no_args_is_help=True)
app.add_typer(queries_app, name="queries")


@queries_app.command("list")
def queries_list() -> None:
    """The named queries with their parameters and group-size columns (JSON)."""
    print_json([{"name": q.name, "description": q.description, "group_size": list(q.group_size),
                 "params": [{"name": p.name, "type": p.type, "required": p.required, "default": p.default,
                             "description": p.description} for p in q.params]}
                for q in load_queries().values()])


@queries_app.command("run")
def queries_run(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The query's name (graphrec queries list).")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value, read as the type the "
                                                    "query's header declares; repeatable.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.json,
    timeout: Annotated[float, typer.Option(help="Seconds before the query is stopped.")] = 30.0,
) -> None:
    """Run a named query; rows about groups smaller than GRAPHREC_MIN_GROUP_SIZE are withheld."""
    named = load_queries().get(name)
    if named is None:
        fail(f"no analyst query named {name!r} (graphrec queries list)", code=2)
    settings = settings_of(ctx)
    types = {p.name: p.type for p in named.params}
    try:
        given = {}
        for item in param or []:
            pname, type_name, raw = split_param(item)
            # Untyped values take the type the query's header declares (unknown names fail in bind).
            given[pname] = coerce_text(pname, type_name or types.get(pname, "string"), raw)
        params = named.bind(given)
    except QueryParamError as err:
        fail(err.message, code=2)
    with connected(ctx) as driver:
        try:
            result = run_named(driver, named, params, policy=AnalystPolicy.from_settings(settings),
                               min_group_size=settings.min_group_size, database=settings.neo4j_database,
                               timeout=timeout)
        except QueryRefused as err:
            fail(err.reason, code=2)
    if result.suppressed:
        typer.echo(f"{result.suppressed} row(s) withheld: their groups are smaller than "
                   f"{settings.min_group_size} people (GRAPHREC_MIN_GROUP_SIZE)", err=True)
    if fmt is OutputFormat.json:
        import json

        typer.echo(json.dumps(_result_json(result, suppressed=result.suppressed,
                                           min_group_size=settings.min_group_size),
                              indent=2, ensure_ascii=False, default=str))
    else:
        typer.echo(render(result, fmt))
