"""``graphrec neo4j start|stop|status``: the local Neo4j server."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from graphrec.cli.app import app, fail, print_json, settings_of
from graphrec.neo4j.server import DEFAULT_BROWSER_PORT, LocalNeo4j, Neo4jServerError

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
    browser: Annotated[Optional[bool], typer.Option(
        "--browser/--no-browser",
        help="Also serve Neo4j Browser over HTTP (on when GRAPHREC_BROWSER_PORT is set). Browser users log "
             "in as Neo4j's admin: Community has no read-only roles; analysts' read-only path is /graph/query.",
    )] = None,
    browser_port: Annotated[Optional[int], typer.Option(
        "--browser-port", help=f"Browser's HTTP port (env GRAPHREC_BROWSER_PORT; default {DEFAULT_BROWSER_PORT}); implies --browser.")] = None,
    browser_host: Annotated[Optional[str], typer.Option(
        "--browser-host", help="Address Browser's HTTP listens on (env GRAPHREC_BROWSER_HOST; default 127.0.0.1). "
                               "Bolt stays on 127.0.0.1.")] = None,
) -> None:
    """Start Neo4j under GRAPHREC_HOME and return once Bolt answers (no-op if running)."""
    settings = settings_of(ctx)
    if browser is False:
        port = None
    elif browser_port is not None:
        port = browser_port
    elif browser:
        port = settings.browser_port or DEFAULT_BROWSER_PORT
    else:
        port = settings.browser_port
    settings = settings.with_overrides(bolt_port=bolt_port, browser_host=browser_host)
    ctx.find_root().obj = settings.model_copy(update={"browser_port": port})
    server = _local(ctx)
    was_running = server.is_running()
    if not was_running:
        typer.echo(f"starting Neo4j under {server.root} (first start downloads its jars with Maven) ...", err=True)
    try:
        status = server.start(timeout=timeout)
    except Neo4jServerError as err:
        fail(str(err))
    typer.echo(f"Neo4j {'already running' if was_running else 'running'} at {status.uri}", err=True)
    if status.browser:
        typer.echo(f"Neo4j Browser at {status.browser} (log in as {server.settings.neo4j_user}; it can write)", err=True)
    elif was_running and port is not None:
        typer.echo("warning: Neo4j was already running without Browser; stop it and start again with --browser",
                   err=True)
    print_json(status.to_dict())


@neo4j_app.command()
def stop(ctx: typer.Context) -> None:
    """Shut the local Neo4j down cleanly."""
    stopped = _local(ctx).stop()
    typer.echo("Neo4j stopped" if stopped else "Neo4j was not running", err=True)


@neo4j_app.command()
def status(ctx: typer.Context) -> None:
    """Running or stopped, Bolt URI, version, store size and Browser's address (when served), as JSON."""
    status = _local(ctx).status()
    print_json(status.to_dict())
