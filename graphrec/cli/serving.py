"""``graphrec serve``, ``graphrec publish``, ``graphrec promos friends-bought``: the serving stage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from graphrec.cli.app import (Format, FormatOpt, app, fail, format_table, neo4j_still_running, print_json, settings_of,
                              wants_table)

promos_app = typer.Typer(help="Promotion lists for campaigns.", no_args_is_help=True)
app.add_typer(promos_app, name="promos")

ModelOpt = Annotated[Path, typer.Option("--model", "-m", help="Model artifact directory (from `graphrec train`).",
                                        exists=True, file_okay=False)]


def _open_service(ctx: typer.Context, model: Path):
    from graphrec.artifact import ArtifactError
    from graphrec.serving.db import GraphUnavailable
    from graphrec.serving.service import Service

    try:
        service = Service.open(settings_of(ctx), model, load_graph=False)
    except ArtifactError as err:
        fail(str(err))
    try:
        service.load_index()
    except GraphUnavailable as err:
        service.close()
        fail(f"{err} (start it with 'graphrec neo4j start', or set NEO4J_URI)")
    return service


@app.command()
def serve(
    ctx: typer.Context,
    model: ModelOpt,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    refresh_every: Annotated[float, typer.Option(
        "--refresh-every", min=0, help="Check this often whether anyone else wrote to the graph, and "
                                       "re-read the index if so (0: never; the service's own writes "
                                       "never need it).")] = 0.0,
    check: Annotated[bool, typer.Option(
        "--check", help="Start, ask /health and one user's recommendations over HTTP, print them, stop.")] = False,
    fmt: FormatOpt = None,
) -> None:
    """Serve recommendations, cold start, promotions and analyst queries over HTTP (OpenAPI at /docs)."""
    import logging

    from api.main import slow_collections_logged

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with slow_collections_logged():
        _serve(ctx, model, host, port, refresh_every, check, fmt, log_level)


def _serve(ctx: typer.Context, model: Path, host: str, port: int, refresh_every: float, check: bool,
           fmt: Format | None, log_level: str) -> None:
    import uvicorn

    from api.main import create_app
    from graphrec.artifact import ArtifactError

    try:
        application = create_app(settings_of(ctx), model, refresh_s=refresh_every)
    except ArtifactError as err:
        fail(str(err))
    if check:
        answer = _check(application, host, port, settings_of(ctx))
        if wants_table(fmt):
            _print_check(answer, model, ctx)
        else:
            print_json(answer)
        if answer["health"]["status"] != "ok":
            fail("the service answers but Neo4j is not reachable")
        return
    typer.echo(f"GraphRec API on http://{host}:{port} (dashboard at /ui/, docs at /docs)", err=True)
    uvicorn.run(application, host=host, port=port, log_level=log_level, access_log=False)


def _check(application, host: str, port: int, settings) -> dict:  # noqa: ANN001
    """The service answering for real: uvicorn in a thread, two HTTP requests, a clean stop."""
    import threading
    import time

    import httpx
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(application, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                fail(f"the service did not start on {host}:{port}")
            time.sleep(0.05)
        url = f"http://{host}:{port}"
        health = httpx.get(f"{url}/health", timeout=30).json()
        service = application.state.service
        user = next(iter(service.artifact.user_ids), None)
        answer: dict = {"url": url, "health": health}
        # The configured single key, if any: reading recommendations needs the reader role then.
        headers = {"X-API-Key": settings.api_key.get_secret_value()} if settings.api_key is not None else {}
        if user is not None:
            r = httpx.get(f"{url}/users/{user}/recommendations", params={"k": 5}, headers=headers, timeout=30)
            answer["recommendations"] = r.json()
        return answer
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def _print_check(answer: dict, model: Path, ctx: typer.Context) -> None:
    """The check for people: what answered, one user's recommendations as a table, what runs still."""
    health = answer["health"]
    m = health.get("model") or {}
    graph = health.get("graph") or {}
    typer.echo(f"GraphRec API answered on {answer['url']}: status {health['status']}, "
               f"Neo4j {'reachable' if health.get('neo4j_reachable') else 'NOT reachable'}")
    typer.echo(f"model: {m.get('kind')} (snapshot {m.get('snapshot_id')}, {m.get('users', 0):,} users, "
               f"{m.get('products', 0):,} products)")
    if graph:
        typer.echo("graph: " + ", ".join(f"{v:,} {k.replace('_', ' ')}" if isinstance(v, int) else f"{k} {v}"
                                         for k, v in graph.items()))
    recs = answer.get("recommendations")
    if isinstance(recs, dict) and "items" in recs:
        typer.echo(f"\nrecommendations for user {recs['user_id']} (source: {recs['source']}):")
        rows = [[str(rank), item["product_id"], _clip(item.get("name") or "", 30), f"{item['score']:.3f}",
                 _clip(item["explanations"][0]["text"] if item.get("explanations") else "", 70)]
                for rank, item in enumerate(recs["items"], 1)]
        typer.echo(format_table(["#", "product", "name", "score", "because"], rows, right=(0, 3)))
        for warning in recs.get("warnings", []):
            typer.echo(f"warning: {warning}", err=True)
    elif recs is not None:
        typer.echo(f"recommendations: {recs}", err=True)
    typer.echo(f"\nThe check's server has stopped; serve for real with: graphrec serve --model {model}", err=True)
    note = neo4j_still_running(settings_of(ctx))
    if note:
        typer.echo(note, err=True)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command()
def publish(
    ctx: typer.Context,
    model: ModelOpt,
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Recommendations per user.")] = 20,
) -> None:
    """Write every user's top-k as (:User)-[:RECOMMENDED {score, rank, model, at}]->(:Product), replacing the previous run."""
    from tqdm import tqdm

    from graphrec.serving.publish import publish as run_publish

    service = _open_service(ctx, model)
    try:
        with tqdm(total=service.index.counts()["users"], unit="user", desc="publish",
                  disable=None) as bar:
            report = run_publish(service, k, progress=bar.update)
    finally:
        service.close()
    print_json(report.__dict__)


@promos_app.command("friends-bought")
def friends_bought_cmd(
    ctx: typer.Context,
    model: ModelOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output file: .csv or .parquet.")],
    k: Annotated[int, typer.Option("--k", min=1, max=1000, help="Products per user.")] = 10,
) -> None:
    """For every user, the products their friends bought and they did not (a campaign list)."""
    from datetime import datetime, timezone

    import pandas as pd
    from tqdm import tqdm

    from graphrec.serving.promos import friends_bought

    if out.suffix not in (".csv", ".parquet"):
        fail(f"--out must end in .csv or .parquet, not {out.suffix or 'nothing'}")
    service = _open_service(ctx, model)
    rows = []
    try:
        index = service.index
        for user_id in tqdm(index.user_ids(), unit="user", desc="friends-bought", disable=None):
            vec, _ = service.user_vector(user_id)
            for rank, promo in enumerate(friends_bought(index, service.recommender, user_id, k, None, vec), 1):
                rows.append({
                    "user_id": user_id, "rank": rank, "product_id": promo.product_id, "name": promo.name,
                    "friend_count": promo.friend_count,
                    "friends": ";".join(f for f, _ in promo.friends),
                    "last_bought": (datetime.fromtimestamp(promo.last_bought, timezone.utc).isoformat()
                                    if promo.last_bought is not None else None),
                    "score": promo.score, "text": promo.text,
                })
    finally:
        service.close()
    frame = pd.DataFrame(rows, columns=["user_id", "rank", "product_id", "name", "friend_count", "friends",
                                        "last_bought", "score", "text"])
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".parquet":
        frame.to_parquet(out, index=False)
    else:
        frame.to_csv(out, index=False)
    print_json({"out": str(out), "rows": len(frame), "users": int(frame["user_id"].nunique()) if len(frame) else 0})
