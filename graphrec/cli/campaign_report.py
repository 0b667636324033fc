"""``graphrec campaign report|simulate|backtest``: measuring campaigns (commands on ``campaign_app``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from graphrec.cli.app import Format, connected, fail, print_json, settings_of
from graphrec.cli.campaign import campaign_app




def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def _num(x: float | None, fmt: str = ",.2f") -> str:
    return "-" if x is None else format(x, fmt)


def _ci(ci: list | None, scale: float = 1.0, fmt: str = "+.2f") -> str:
    if not ci or ci[0] is None or ci[1] is None:
        return "-"
    return f"[{format(scale * ci[0], fmt)}, {format(scale * ci[1], fmt)}]"


def format_report(report: dict[str, Any]) -> str:
    """The report for people: variants side by side, the lifts, SRM, segments, notes."""
    t, c = report["variants"]["treatment"], report["variants"]["control"]
    rows = [("users (assigned)", "users", "{:,}"), ("exposed users", "exposed_users", "{:,}"),
            ("impressions", "impressions", "{:,}"), ("clicks", "clicks", "{:,}"), ("buyers", "buyers", "{:,}"),
            ("purchases", "purchases", "{:,}")]
    lines = [f"Campaign {report['campaign_id']}: {report.get('name', '')}",
             f"window {report['window']['start']} .. {report['window']['end']} (end excluded)", "",
             f"{'':22}{'treatment':>16}{'control':>16}"]
    lines += [f"{label:22}{fmt.format(t[key]):>16}{fmt.format(c[key]):>16}" for label, key, fmt in rows]
    lines += [f"{'revenue':22}{_num(t['revenue']):>16}{_num(c['revenue']):>16}",
              f"{'cost (discounts)':22}{_num(t['cost']):>16}{_num(c['cost']):>16}",
              f"{'ctr':22}{_pct(t['ctr']):>16}{_pct(c['ctr']):>16}",
              f"{'cvr':22}{_pct(t['cvr']):>16}{_pct(c['cvr']):>16}",
              f"{'aov':22}{_num(t['aov']):>16}{_num(c['aov']):>16}",
              f"{'roi':22}{_num(t['roi'], '+.2f'):>16}{'-':>16}", ""]
    cvr, rpu = report["lift"]["cvr"], report["lift"]["revenue_per_user"]
    lines.append(f"CVR lift: {_num(cvr['absolute'] and 100 * cvr['absolute'], '+.2f')} pp "
                 f"(95% CI {_ci(cvr['ci95'], 100)} pp), relative {_pct(cvr['relative'])}, p = {_num(cvr['p_value'], '.3g')}")
    lines.append(f"Revenue/user lift: {_num(rpu['absolute'], '+.2f')} (95% CI {_ci(rpu['ci95'])}), "
                 f"relative {_pct(rpu['relative'])}, p = {_num(rpu['p_value'], '.3g')}")
    srm = report["srm"]
    lines.append(f"Sample ratio: p = {_num(srm['p_value'], '.3g')} "
                 f"({'ok' if srm['ok'] else 'MISMATCH: the split is not what was asked; distrust the lift'})")
    lines += ["", f"Segments (suppressed below {report['privacy']['min_group']} users per variant):"]
    for seg in report["segments"]:
        if seg["suppressed"]:
            lines.append(f"  {seg['segment']:24} suppressed ({seg['reason']})")
            continue
        v, lift = seg["variants"], seg["lift"]["cvr"]
        lines.append(f"  {seg['segment']:24} cvr {_pct(v['treatment']['cvr'])} (n={v['treatment']['users']:,}) vs "
                     f"{_pct(v['control']['cvr'])} (n={v['control']['users']:,}), lift "
                     f"{_num(lift['absolute'] and 100 * lift['absolute'], '+.2f')} pp {_ci(lift['ci95'], 100)}, "
                     f"p = {_num(lift['p_value'], '.3g')}")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _emit(report: dict[str, Any], fmt: Format, plot: Path | None) -> None:
    if plot is not None:
        from graphrec.campaigns.plot import plot_report

        typer.echo(f"plot written to {plot_report(report, plot)}", err=True)
    if fmt is Format.json:
        print_json(report)
    else:
        typer.echo(format_report(report))


def _fetch(url: str, campaign_id: str, key: str | None, min_group: int) -> dict[str, Any]:
    import httpx

    try:
        response = httpx.get(f"{url.rstrip('/')}/campaigns/{campaign_id}/report", params={"min_group": min_group},
                             headers={"X-API-Key": key} if key else {}, timeout=120)
    except httpx.HTTPError as err:
        fail(f"{url}: {err}")
    if response.status_code != 200:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        fail(f"{url}: {response.status_code}: {detail}")
    return response.json()


PlotOpt = Annotated[Optional[Path], typer.Option("--plot", help="Also draw the report (PNG) to this file.")]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table for people, json for machines.")]


@campaign_app.command("report")
def report_command(
    ctx: typer.Context,
    campaign_id: Annotated[str, typer.Argument(help="The campaign id.")],
    fmt: FormatOpt = Format.table,
    plot: PlotOpt = None,
    min_group: Annotated[Optional[int], typer.Option("--min-group", min=1, help=(
        "Suppress segments with fewer users than this per variant (default and floor: GRAPHREC_MIN_GROUP_SIZE)."))] = None,
    url: Annotated[Optional[str], typer.Option("--url", help="Ask a running GraphRec API (GET /campaigns/ID/report, "
                                               "key from GRAPHREC_API_KEY) instead of reading Neo4j and the event "
                                               "store here.")] = None,
) -> None:
    """The campaign's report: funnel and money per variant, lift with 95% CI and p-value, SRM, segments."""
    settings = settings_of(ctx)
    if min_group is not None and min_group < settings.min_group_size:
        fail(f"--min-group: at least {settings.min_group_size} (GRAPHREC_MIN_GROUP_SIZE): smaller groups are never shown")
    min_group = min_group or settings.min_group_size
    if url is not None:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        _emit(_fetch(url, campaign_id, key, min_group), fmt, plot)
        return
    import duckdb

    from graphrec.campaigns.events import EventStore
    from graphrec.campaigns.report import campaign_report
    from graphrec.campaigns.store import UnknownCampaign

    try:
        events = EventStore(settings.events_path)
    except duckdb.IOException:
        fail(f"the event store {settings.events_path} is held by another process (a running API?): "
             f"ask it with --url http://HOST:PORT")
    with events, connected(ctx) as driver:
        try:
            report = campaign_report(driver, events, campaign_id, settings, min_group=min_group)
        except UnknownCampaign as err:
            fail(err.message)
    _emit(report, fmt, plot)


@campaign_app.command("simulate")
def simulate_command(
    shop: Annotated[Path, typer.Option("--shop", help="A shop directory from `graphrec generate`.")],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the simulated campaign (the first of --seeds).")] = 0,
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Run this many seeds and print the interval's "
                                                              "coverage of the planted lift and the rejection rate.")] = 1,
    audience: Annotated[int, typer.Option("--audience", min=10, help="Shop users in the audience.")] = 4000,
    uplift: Annotated[float, typer.Option("--uplift", min=0.0, help="Planted relative uplift of the purchase "
                                                                    "probability under treatment (0.3 = +30%).")] = 0.3,
    base_cvr: Annotated[float, typer.Option("--base-cvr", min=0.0, max=1.0, help="Mean baseline purchase probability.")] = 0.05,
    control_fraction: Annotated[float, typer.Option("--control-fraction", min=0.01, max=0.5)] = 0.2,
    events: Annotated[Optional[Path], typer.Option("--events", help="Send the events through a DuckDB event store "
                                                                    "at this path (a new file) first.")] = None,
    fmt: FormatOpt = Format.table,
    plot: PlotOpt = None,
) -> None:
    """A campaign with a planted effect on a synthetic shop, reported by the real report code."""
    from graphrec.campaigns.simulate import ShopError, SimulationSpec, coverage, read_shop, simulate

    spec = SimulationSpec(audience=audience, uplift=uplift, base_cvr=base_cvr, control_fraction=control_fraction)
    try:
        data = read_shop(shop)
    except ShopError as err:
        fail(str(err))
    if seeds > 1:
        result = coverage(data, range(seed, seed + seeds), spec)
        if fmt is Format.json:
            print_json(result)
        else:
            typer.echo(f"{result['runs']} seeds, planted relative uplift {uplift:+.0%}: the 95% CI covered the "
                       f"planted absolute lift in {result['coverage']:.0%} of runs; p < 0.05 in "
                       f"{result['rejection_rate']:.0%} of runs")
        return
    if events is not None and events.exists():
        fail(f"{events} exists; give a new file for the simulated events")
    sim = simulate(data, seed, spec, event_store=events)
    summary = sim.summary()
    if plot is not None:
        from graphrec.campaigns.plot import plot_report

        typer.echo(f"plot written to {plot_report(sim.report, plot)}", err=True)
    if fmt is Format.json:
        print_json(summary)
        return
    truth, est = summary["truth"], summary["estimate"]
    typer.echo(format_report(sim.report))
    typer.echo(f"\nplanted: cvr {_pct(truth['p_control_mean'])} -> {_pct(truth['p_treatment_mean'])}, absolute lift "
               f"{100 * truth['cvr_absolute']:+.2f} pp; estimated {_num(est['cvr_absolute'] and 100 * est['cvr_absolute'], '+.2f')} pp, "
               f"95% CI {_ci(est['ci95'], 100)} pp: {'covers' if summary['covered'] else 'MISSES'} the truth")


@campaign_app.command("backtest")
def backtest_command(
    snapshot: Annotated[Path, typer.Option("--snapshot", help="Snapshot directory (`graphrec export`) with a test split.")],
    model: Annotated[Optional[Path], typer.Option("--model", "-m", help="Model artifact trained on the snapshot "
                                                                        "(needed by the model policy).")] = None,
    category: Annotated[list[str], typer.Option("--category", "-c", help="Category id or name (repeatable).")] = ...,
    size: Annotated[list[int], typer.Option("--size", "-n", help="Audience size (repeatable).")] = ...,
    policies: Annotated[str, typer.Option("--policies", help="Comma-separated policies.")] = "model,friends_bought,popular,random",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table (Markdown) or json.")] = "table",
) -> None:
    """Targeting on held-out data: precision (converters / size) and lift over random of each policy."""
    from graphrec.artifact import Artifact, ArtifactError
    from graphrec.campaigns.backtest import BacktestError, backtest, load_data, table

    if fmt not in ("table", "json"):
        fail(f"--format: {fmt!r} is not table or json")
    wanted = [p.strip() for p in policies.split(",") if p.strip()]
    try:
        data = load_data(snapshot)
        artifact = Artifact.load(model) if model is not None else None
        if "model" in wanted and artifact is None:
            fail("--model: the model policy needs a model artifact")
        result = backtest(data, artifact, category, size, wanted)
    except (BacktestError, ArtifactError) as err:
        fail(str(err))
    if fmt == "json":
        print_json(result)
    else:
        typer.echo(table(result))
