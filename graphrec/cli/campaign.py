"""``graphrec campaign create|list|show``: campaigns from the command line (``campaign_app``).

The measurement commands (report, simulate, backtest) add themselves to :data:`campaign_app` from
:mod:`graphrec.cli.campaign_report`.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError

from graphrec.cli.app import FormatOpt, app, connected, fail, print_json, settings_of, wants_table

campaign_app = typer.Typer(
    name="campaign",
    help="Promotions: create campaigns (targeted audience, A/B split), list and show them.",
    no_args_is_help=True,
)
app.add_typer(campaign_app, name="campaign")




def _json(campaign: Any) -> dict[str, Any]:
    out = campaign.model_dump(mode="json")
    out["active"] = campaign.active(datetime.now(timezone.utc))
    return out


def _summary(campaign: Any) -> str:
    offer = campaign.offer
    what = f"{offer.value:g}% off" if offer.kind == "percent_off" else f"{offer.value:g} off"
    promotes = ", ".join(filter(None, [f"category {campaign.category_id}" if campaign.category_id else "",
                                       f"{len(campaign.products)} products" if campaign.products else ""]))
    return "\n".join([
        f"Campaign {campaign.campaign_id}: {campaign.name}",
        f"  offer      {what}; cap {campaign.cap.per_user_per_day} per user per UTC day",
        f"  window     {campaign.start.isoformat()} .. {campaign.end.isoformat()}",
        f"  promotes   {promotes} ({len(campaign.promoted)} products in all)",
        f"  audience   policy {campaign.audience.policy}, size {campaign.audience.size}"
        f"{', buyers excluded' if campaign.audience.exclude_buyers else ''}",
        f"  split      treatment {campaign.counts.get('treatment', 0)}, control {campaign.counts.get('control', 0)}"
        f" (control fraction {campaign.control_fraction:g}, salt {campaign.salt!r})",
    ])


@campaign_app.command("create")
def create(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", help="The campaign as JSON (the body of POST /campaigns).",
                                       exists=True, dir_okay=False, readable=True)],
    model: Annotated[Optional[Path], typer.Option(
        "--model", help="Model artifact directory (needed by the 'model' audience policy).")] = None,
    fmt: FormatOpt = None,
) -> None:
    """Create a campaign: choose its audience, split it into treatment/control, store it in Neo4j."""
    from graphrec.artifact import Artifact, ArtifactError
    from graphrec.campaigns.model import CampaignSpec
    from graphrec.campaigns.store import CampaignExists, UnknownReference
    from graphrec.campaigns.targeting import launch_campaign

    try:
        spec = CampaignSpec.model_validate_json(file.read_text(encoding="utf-8"))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        fail(f"{file}: {where}: {first['msg']}")
    except (OSError, UnicodeDecodeError) as err:
        fail(f"{file}: {err}")
    artifact = None
    if spec.audience.policy == "model":
        if model is None:
            fail("the 'model' audience policy needs --model ARTIFACT_DIR")
        try:
            artifact = Artifact.load(model)
        except ArtifactError as err:
            fail(str(err))
    settings = settings_of(ctx)
    with connected(ctx) as driver:
        try:
            campaign, _ = launch_campaign(driver, spec, artifact=artifact, database=settings.neo4j_database)
        except UnknownReference as err:
            fail(f"{file}: {err.message}")
        except CampaignExists as err:
            fail(str(err))
    typer.echo(f"created campaign {campaign.campaign_id}: {campaign.counts.get('treatment', 0)} treatment, "
               f"{campaign.counts.get('control', 0)} control", err=True)
    if wants_table(fmt):
        typer.echo(_summary(campaign))
    else:
        print_json(_json(campaign))


@campaign_app.command("list")
def list_cmd(ctx: typer.Context, fmt: FormatOpt = None) -> None:
    """Every campaign, newest first."""
    from graphrec.campaigns.store import list_campaigns

    with connected(ctx) as driver:
        campaigns = list_campaigns(driver, database=settings_of(ctx).neo4j_database)
    if not wants_table(fmt):
        print_json({"campaigns": [_json(c) for c in campaigns]})
        return
    if not campaigns:
        typer.echo("no campaigns", err=True)
        return
    rows = [(c.campaign_id, c.name, c.audience.policy, str(c.counts.get("treatment", 0)),
             str(c.counts.get("control", 0)), c.start.strftime("%Y-%m-%d %H:%M"), c.end.strftime("%Y-%m-%d %H:%M"),
             "yes" if c.active(datetime.now(timezone.utc)) else "no") for c in campaigns]
    header = ("id", "name", "policy", "treatment", "control", "start (UTC)", "end (UTC)", "active")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for row in (header, *rows):
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@campaign_app.command("show")
def show(ctx: typer.Context, campaign_id: Annotated[str, typer.Argument(help="The campaign id.")],
         fmt: FormatOpt = None) -> None:
    """One campaign: what it promotes, its offer, window, audience and split."""
    from graphrec.campaigns.store import UnknownCampaign, get_campaign

    with connected(ctx) as driver:
        try:
            campaign = get_campaign(driver, campaign_id, database=settings_of(ctx).neo4j_database)
        except UnknownCampaign as err:
            fail(err.message)
    if wants_table(fmt):
        typer.echo(_summary(campaign))
    else:
        print_json(_json(campaign))

