"""``graphrec load``, ``graphrec dataset lastfm|gowalla`` and ``graphrec generate``: getting data in.

JSON results go to stdout; progress and human-readable problems go to stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from graphrec.cli.app import app, connected, fail, is_tty, print_json, settings_of

dataset_app = typer.Typer(help="Convert public data sets to the canonical input layout.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")


@app.command()
def load(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Directory with users, products, categories, interactions, "
                                                   "social [, product_categories] as .csv or .parquet.")],
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Load the valid rows; reject the others "
                                                                      "(needs --rejects).")] = False,
    rejects: Annotated[Path | None, typer.Option(help="CSV to write every rejected row to, with file, line, "
                                                      "column and reason.")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per write transaction.")] = 10_000,
    progress: Annotated[bool | None, typer.Option("--progress/--no-progress",
                                                  help="Progress bar on stderr (default: when a terminal).")] = None,
    bulk: Annotated[bool, typer.Option("--bulk", help="Into an EMPTY database of the local server: Neo4j's offline "
                                                      "importer (stops a running server and starts it again).")] = False,
) -> None:
    """Validate DIRECTORY completely, then load it into Neo4j; print counts as JSON.

    Any problem (missing file or column, dangling id, conflicting duplicate, bad number, timestamp
    or encoding, a value over the store's limits, self-friendship) names file, line and column and
    nothing is written, unless --skip-invalid is given. One load runs at a time per database:
    another one is refused, nothing written, until the first has finished.

    With --bulk, after the same validation, Neo4j's offline importer (neo4j-admin database import
    full) writes the graph into the local server's empty database; the server
    runs afterwards. A non-empty database and an external NEO4J_URI are refused.
    """
    from graphrec.store.loader import DEFAULT_BATCH_SIZE, InvalidInput, LoadInProgress, load_directory

    if skip_invalid and rejects is None:
        fail("--skip-invalid needs --rejects FILE, so that every rejected row is accounted for", code=2)
    if not directory.is_dir():
        fail(f"{directory}: not a directory", code=2)
    show = is_tty() if progress is None else progress
    try:
        if bulk:
            from graphrec.neo4j.server import Neo4jServerError
            from graphrec.store.bulk import BulkLoadRefused, bulk_load_directory
            from graphrec.store.driver import StoreUnavailable

            try:
                result = bulk_load_directory(settings_of(ctx), directory, skip_invalid=skip_invalid, rejects=rejects,
                                             progress=show)
            except (BulkLoadRefused, Neo4jServerError, StoreUnavailable) as err:
                fail(f"{directory}: {err}", code=1)
        else:
            with connected(ctx) as driver:
                result = load_directory(driver, directory, skip_invalid=skip_invalid, rejects=rejects,
                                        batch_size=batch_size or DEFAULT_BATCH_SIZE,
                                        database=settings_of(ctx).neo4j_database, progress=show)
    except InvalidInput as err:
        for line in err.report.messages():
            typer.echo(line, err=True)
        if rejects is not None and not err.report.fatal:
            typer.echo(f"rejected rows written to {rejects}", err=True)
        fail(f"{directory}: invalid input, nothing was written", code=1)
    except LoadInProgress as err:
        fail(f"{directory}: {err}", code=1)
    for warning in result.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if result.rejected:
        for name, count in result.files.items():  # loaded + rejected = rows, file by file
            typer.echo(f"{name}: {count['rows']} rows, {count['loaded']} loaded, {count['rejected']} rejected",
                       err=True)
        typer.echo(f"{result.rejected} rows rejected, listed in {rejects}", err=True)
    print_json(result.summary())


@dataset_app.command("lastfm")
def dataset_lastfm(
    raw: Annotated[Path, typer.Option(help="The hetrec2011-lastfm-2k directory (artists.dat, tags.dat, ...).")],
    out: Annotated[Path, typer.Option(help="Where to write the canonical files.")],
    split: Annotated[Path | None, typer.Option(help="The SocialLGN split directory: mark each interaction "
                                                    "train/test as published.")] = None,
    min_tag_uses: Annotated[int, typer.Option(min=1, help="Extra tags need this many assignments to become "
                                                          "product categories.")] = 3,
) -> None:
    """Convert HetRec 2011 Last.fm (artists -> products, tags -> categories, friends -> social)."""
    from graphrec.datasets.lastfm import DatasetError, convert_lastfm

    try:
        report = convert_lastfm(raw, out, split, min_tag_uses=min_tag_uses)
    except DatasetError as err:
        fail(str(err))
    print_json(report)


@dataset_app.command("gowalla")
def dataset_gowalla(
    raw: Annotated[Path, typer.Option(help="The LightGCN Gowalla directory (train.txt, test.txt).")],
    out: Annotated[Path, typer.Option(help="Where to write the canonical files.")],
) -> None:
    """Convert the LightGCN Gowalla split (interactions marked train/test; no categories, no social)."""
    from graphrec.datasets.gowalla import convert_gowalla
    from graphrec.datasets.lastfm import DatasetError

    try:
        report = convert_gowalla(raw, out)
    except DatasetError as err:
        fail(str(err))
    print_json(report)


@app.command()
def generate(
    users: Annotated[int, typer.Option("--users", min=2, help="Number of users.")],
    out: Annotated[Path, typer.Option(help="Where to write the canonical files.")],
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 0,
    purchases_per_user: Annotated[float, typer.Option(min=1.0, help="Mean purchase rows per user.")] = 10.0,
    users_per_product: Annotated[float, typer.Option(
        min=0.001, help="Users per product: below 1 gives a long-tail catalogue larger than the user base.")] = 10.0,
    friends_per_user: Annotated[float, typer.Option(min=0.0, help="Mean friendships per user.")] = 8.0,
    homophily: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of friendships inside the same favourite subcategory (0: friends are anyone).")] = 0.7,
) -> None:
    """Generate a synthetic shop: category tree, products, friends with homophily, purchases.

    The defaults give about 10 purchases per user and a tenth as many products as users; the shape
    of a long-tail shop like Ciao (7.4k users, 105k products, 284k purchases) is
    ``--users 7375 --users-per-product 0.07 --purchases-per-user 38.5``.
    """
    from graphrec.datasets.synthetic import ShopShape, generate_shop

    shape = ShopShape(purchases_per_user=purchases_per_user, users_per_product=users_per_product,
                      friends_per_user=friends_per_user, homophily=homophily)
    print_json(generate_shop(users, out, seed, shape))
