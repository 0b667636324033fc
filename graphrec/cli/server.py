"""``graphrec neo4j start|stop|status``: the local Neo4j server."""

from __future__ import annotations

from typing import Annotated

import typer

from graphrec.cli.app import app, fail, print_json, settings_of
from graphrec.neo4j.server import LocalNeo4j, Neo4jServerError

neo4j_app = typer.Typer(help="Run GraphRec's own Neo4j Community server (not needed when NEO4J_URI is set).",
                        no_args_is_help=True)
app.add_typer(neo4j_app, name="neo4j")


def _local(ctx: typer.Context) -> LocalNeo4j:
    settings = settings_of(ctx)
    if settings.external:
        fail(f"NEO4J_URI is set ({settings.neo4j_uri}): GraphRec uses that server and does not run its own")
    return LocalNeo4j(settings)


@neo4j_app.command()
def start(
    ctx: typer.Context,
    bolt_port: Annotated[int | None, typer.Option("--bolt-port", help="Bolt port (env GRAPHREC_BOLT_PORT).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for Bolt to answer.")] = 180.0,
) -> None:
    """Start Neo4j under GRAPHREC_HOME and return once Bolt answers (no-op if running)."""
    if bolt_port is not None:
        ctx.find_root().obj = settings_of(ctx).with_overrides(bolt_port=bolt_port)
    server = _local(ctx)
    was_running = server.is_running()
    if not was_running:
        typer.echo(f"starting Neo4j under {server.root} (first start downloads its jars with Maven) ...", err=True)
    try:
        status = server.start(timeout=timeout)
    except Neo4jServerError as err:
        fail(str(err))
    typer.echo(f"Neo4j {'already running' if was_running else 'running'} at {status.uri}", err=True)
    print_json(status.to_dict())


@neo4j_app.command()
def stop(ctx: typer.Context) -> None:
    """Shut the local Neo4j down cleanly."""
    stopped = _local(ctx).stop()
    typer.echo("Neo4j stopped" if stopped else "Neo4j was not running", err=True)


@neo4j_app.command()
def status(ctx: typer.Context) -> None:
    """Running or stopped, Bolt URI, version, store size, as JSON."""
    status = _local(ctx).status()
    print_json(status.to_dict())
