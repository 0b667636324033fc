"""The root ``graphrec`` command and what every subcommand shares (settings, JSON output, errors)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Collection, Iterator, Optional, Sequence

import typer

from graphrec import __version__
from graphrec.config import Settings

app = typer.Typer(
    name="graphrec",
    help="GraphRec: users, products, categories and friends in Neo4j; GNN recommendations; a FastAPI service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"graphrec {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option("--home", help="GraphRec home (env GRAPHREC_HOME, default ./.graphrec).")
    ] = None,
    bolt_port: Annotated[
        int | None, typer.Option("--bolt-port", help="Bolt port of the local Neo4j (env GRAPHREC_BOLT_PORT, default 7687).")
    ] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Configuration also comes from NEO4J_URI, NEO4J_USER, NEO4J_PASSWORD, GRAPHREC_HOME, GRAPHREC_API_KEY."""
    ctx.obj = Settings().with_overrides(home=home, bolt_port=bolt_port)


def settings_of(ctx: typer.Context) -> Settings:
    """The settings of this invocation (root flags over environment over defaults)."""
    root_ctx = ctx.find_root()
    if not isinstance(root_ctx.obj, Settings):
        root_ctx.obj = Settings()
    return root_ctx.obj


def print_json(value: Any) -> None:
    """Machine-readable output on stdout: one JSON document."""
    typer.echo(json.dumps(value, indent=2, default=str, ensure_ascii=False))


def fail(message: str, code: int = 1) -> None:
    """A clear error on stderr and a non-zero exit, never a traceback."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def connected(ctx: typer.Context) -> Iterator["neo4j.Driver"]:  # noqa: F821
    """A verified driver for the configured Neo4j, closed afterwards; unreachable -> clean exit 1."""
    from graphrec.store.driver import StoreUnavailable, connect

    try:
        driver = connect(settings_of(ctx))
    except StoreUnavailable as err:
        fail(str(err))
    try:
        yield driver
    finally:
        driver.close()


def is_tty() -> bool:
    return sys.stderr.isatty()


def is_stdout_tty() -> bool:
    return sys.stdout.isatty()


class Format(str, Enum):
    table = "table"
    json = "json"


FormatOpt = Annotated[Optional[Format], typer.Option(
    "--format", "-f", help="table or json (default: a table on a terminal, JSON when piped or redirected).")]


def wants_table(fmt: Format | None) -> bool:
    """Tables for people at a terminal; JSON for pipes, files and ``--format json``."""
    return is_stdout_tty() if fmt is None else fmt is Format.table


def format_table(columns: Sequence[str], rows: Sequence[Sequence[str]], right: Collection[int] = ()) -> str:
    """Rows of strings under a header, columns padded (the ``right`` ones right-aligned, for numbers)."""
    widths = [max([len(col)] + [len(row[i]) for row in rows]) for i, col in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return " | ".join(v.rjust(w) if i in right else v.ljust(w)
                          for i, (v, w) in enumerate(zip(values, widths))).rstrip()

    return "\n".join([line(columns), "-+-".join("-" * w for w in widths), *(line(row) for row in rows)])


def duration(seconds: float) -> str:
    """``0:07``, ``3:05``, ``1:02:03``: elapsed times and ETAs on progress lines."""
    s = max(0, round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def neo4j_still_running(settings: Settings) -> str | None:
    """A closing reminder that the local Neo4j keeps running (and how to stop it); None when it does not
    run here or the server is external (``NEO4J_URI``)."""
    if settings.external:
        return None
    from graphrec.neo4j.server import LocalNeo4j

    server = LocalNeo4j(settings)
    if not server.is_running():
        return None
    return f"Neo4j is still running at {server.uri} (home {server.root.parent}); stop it with: graphrec neo4j stop"
