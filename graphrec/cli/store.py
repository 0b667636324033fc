"""``graphrec schema`` and ``graphrec query``: the graph's schema and read-only Cypher."""

from __future__ import annotations

import csv
import io
from enum import Enum
from typing import Annotated

import typer

from graphrec import schema
from graphrec.cli.app import app, connected, fail, print_json, settings_of
from graphrec.store.query import DEFAULT_ROW_LIMIT, QueryRefused, QueryResult, run_read
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


def parse_param(text: str) -> tuple[str, object]:
    """``name=value``; the value is read as JSON when it parses (numbers, lists), else as a string."""
    import json

    name, sep, raw = text.partition("=")
    if not sep or not name.isidentifier():
        raise typer.BadParameter(f"expected name=value, got {text!r}")
    try:
        return name, json.loads(raw)
    except ValueError:
        return name, raw


def render(result: QueryResult, fmt: OutputFormat) -> str:
    import json

    if fmt is OutputFormat.json:
        return json.dumps({"columns": result.columns, "rows": result.rows, "truncated": result.truncated},
                          indent=2, ensure_ascii=False, default=str)
    cells = [[c if isinstance(c, str) else json.dumps(c, ensure_ascii=False, default=str) for c in row]
             for row in result.rows]
    if fmt is OutputFormat.csv:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(result.columns)
        writer.writerows(cells)
        return buf.getvalue().rstrip("\n")
    widths = [max([len(col)] + [len(row[i]) for row in cells]) for i, col in enumerate(result.columns)]
    line = lambda values: " | ".join(v.ljust(w) for v, w in zip(values, widths))  # noqa: E731
    out = [line(result.columns), "-+-".join("-" * w for w in widths), *(line(row) for row in cells)]
    return "\n".join(out + [f"({len(cells)} rows{', truncated' if result.truncated else ''})"])


@app.command()
def query(
    ctx: typer.Context,
    cypher: Annotated[str, typer.Argument(help="A read-only Cypher query; use $name for parameters.")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="name=value (JSON values allowed); repeatable.")] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.json,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = DEFAULT_ROW_LIMIT,
    timeout: Annotated[float, typer.Option(help="Seconds before the query is stopped.")] = 30.0,
) -> None:
    """Run a read-only Cypher query and print its records; writes are refused by Neo4j."""
    params = dict(parse_param(p) for p in param or [])
    with connected(ctx) as driver:
        try:
            result = run_read(driver, cypher, params, database=settings_of(ctx).neo4j_database,
                              limit=limit, timeout=timeout)
        except QueryRefused as err:
            fail(err.reason, code=2)
    typer.echo(render(result, fmt))
