"""The root ``graphrec`` command and what every subcommand shares (settings, JSON output, errors)."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator

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
