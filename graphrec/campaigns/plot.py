"""The report as a picture: cumulative conversion per variant over time (95% bands) and the funnel.

Drawn from the report dict alone (its ``timeline`` and ``funnel``), so the CLI can plot a report it
fetched over HTTP as well as one it computed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLORS = {"treatment": "#1f77b4", "control": "#ff7f0e"}
STAGES = ("impressions", "clicks", "purchases")


def plot_report(report: dict[str, Any], out: str | Path) -> Path:
    """Write the report's figure (PNG, or any format matplotlib knows by the suffix) to ``out``."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    import pandas as pd

    timeline, funnel = report["timeline"], report["funnel"]
    fig, (ax, bars) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 2]})
    when = pd.to_datetime(timeline["ts"], utc=True, format="ISO8601")
    for variant in ("treatment", "control"):
        series = timeline[variant]
        users = report["variants"][variant]["users"]
        rate = [100 * (x if x is not None else float("nan")) for x in series["cvr"]]
        lo = [100 * (x if x is not None else float("nan")) for x in series["ci95_low"]]
        hi = [100 * (x if x is not None else float("nan")) for x in series["ci95_high"]]
        ax.plot(when, rate, color=COLORS[variant], lw=2, label=f"{variant} (n={users:,})")
        ax.fill_between(when, lo, hi, color=COLORS[variant], alpha=0.2, lw=0, label=f"{variant} 95% CI")
    ax.set_xlabel("time (UTC)")
    ax.set_ylabel("cumulative conversion rate (% of assigned users)")
    ax.set_title("Conversion over time")
    ax.set_ylim(bottom=0)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(mdates.AutoDateLocator()))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2, frameon=False)

    width = 0.38
    xs = range(len(STAGES))
    top = max([1] + [funnel[v][s] for v in funnel for s in STAGES])
    for offset, variant in ((-width / 2, "treatment"), (width / 2, "control")):
        values = [funnel[variant][s] for s in STAGES]
        drawn = bars.bar([x + offset for x in xs], values, width, color=COLORS[variant], label=variant)
        bars.bar_label(drawn, labels=[f"{v:,}" for v in values], fontsize=8, padding=2)
    bars.set_xticks(list(xs), [s.capitalize() for s in STAGES])
    if top == 1 and not any(funnel[v][s] for v in funnel for s in STAGES):
        bars.text(1, 1.5, "no events yet", ha="center", color="gray")
    bars.set_yscale("symlog", linthresh=1)
    bars.set_ylim(0, top * 3)
    bars.set_ylabel("events (log scale)")
    bars.set_title("Funnel: impressions -> clicks -> purchases")
    bars.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), ncol=2, frameon=False)

    lift = report["lift"]["cvr"]
    if lift.get("absolute") is not None and lift.get("ci95"):
        lo, hi = lift["ci95"]
        p = lift.get("p_value")
        subtitle = (f"CVR lift {100 * lift['absolute']:+.2f} pp, 95% CI [{100 * lo:+.2f}, {100 * hi:+.2f}] pp"
                    + (f", p = {p:.3g}" if p is not None else ""))
    else:
        subtitle = "CVR lift: undefined (see the report's notes)"
    if not report["srm"]["ok"]:
        subtitle += "  |  SAMPLE-RATIO MISMATCH: check the assignment"
    fig.suptitle(f"Campaign {report['campaign_id']}: {report.get('name', '')}\n{subtitle}", fontsize=12)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
