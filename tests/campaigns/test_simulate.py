"""The planted-effect proof: interval coverage, false positives, and counts recounted by hand."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from graphrec.campaigns.simulate import ShopError, SimulationSpec, coverage, read_shop, simulate
from graphrec.datasets.synthetic import generate_shop

SEEDS = range(40)


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim-shop")
    generate_shop(6000, out, seed=11)
    return out


@pytest.fixture(scope="module")
def shop(shop_dir: Path):
    return read_shop(shop_dir)


def test_interval_covers_the_planted_uplift(shop) -> None:
    result = coverage(shop, SEEDS, SimulationSpec(uplift=0.3))
    assert result["runs"] == 40
    assert result["coverage"] >= 0.90, result["per_seed"]
    truths = {round(r["truth"], 12) for r in result["per_seed"]}
    assert all(t > 0.01 for t in truths)  # a real effect was planted in every run


def test_false_positives_with_no_uplift(shop) -> None:
    result = coverage(shop, SEEDS, SimulationSpec(uplift=0.0))
    assert all(r["truth"] == 0.0 for r in result["per_seed"])
    assert result["rejection_rate"] <= 0.10, result["per_seed"]
    assert result["coverage"] >= 0.90
    # "Uniform-ish": p-values spread over (0, 1), not piled up at either end.
    p = sorted(r["p_value"] for r in result["per_seed"])
    assert 0.3 <= p[len(p) // 2] <= 0.7, p


def test_a_large_uplift_is_detected(shop) -> None:
    # Power: doubling the purchase probability must show in nearly every run (an estimator that
    # ignored the variants would fail here while passing the two tests above).
    result = coverage(shop, range(10), SimulationSpec(uplift=1.0))
    assert result["rejection_rate"] >= 0.9, result["per_seed"]


def recount(sim) -> dict[str, dict[str, float]]:
    """The report's counts from the simulated events, by plain loops (no shared code with the report)."""
    variant = dict(zip(sim.assignments["user_id"], sim.assignments["variant"]))
    start, end = pd.Timestamp(sim.campaign.start), pd.Timestamp(sim.campaign.end)
    promoted = set(sim.campaign.promoted)
    out: dict[str, dict[str, float]] = {v: defaultdict(float) for v in ("treatment", "control")}
    exposed: dict[str, set] = {v: set() for v in out}
    buyers: dict[str, set] = {v: set() for v in out}
    for e in sim.events.to_dict("records"):
        v = variant.get(e["user_id"])
        if v is None or not (start <= e["ts"] < end):
            continue
        if e["type"] in ("impression", "click") and e["campaign_id"] == sim.campaign.campaign_id:
            out[v][e["type"] + "s"] += 1
            if e["type"] == "impression":
                exposed[v].add(e["user_id"])
        elif e["type"] == "purchase" and e["product_id"] in promoted:
            out[v]["purchases"] += 1
            out[v]["revenue"] += e["value"]
            buyers[v].add(e["user_id"])
            if v == "treatment":
                out[v]["cost"] += sim.campaign.offer.discount(sim.prices[e["product_id"]])
    for v in out:
        out[v]["users"] = sum(1 for x in variant.values() if x == v)
        out[v]["exposed_users"] = len(exposed[v])
        out[v]["buyers"] = len(buyers[v])
    return out


COUNTS = ("users", "exposed_users", "impressions", "clicks", "buyers", "purchases")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_report_counts_equal_an_independent_recount(shop, seed: int) -> None:
    sim = simulate(shop, seed)
    expected = recount(sim)
    for v in ("treatment", "control"):
        got = sim.report["variants"][v]
        assert {k: got[k] for k in COUNTS} == {k: int(expected[v][k]) for k in COUNTS}, v
        assert got["revenue"] == pytest.approx(expected[v]["revenue"], rel=1e-12)
        assert got["cost"] == pytest.approx(expected[v]["cost"], rel=1e-12)
    # The noise is there and was left out: events the recount skipped exist.
    assert len(sim.events) > sum(expected[v][k] for v in expected for k in ("impressions", "clicks", "purchases"))
    assert sim.report["variants"]["control"]["buyers"] > 0 and sim.report["attribution"]["purchases_not_naming_campaign"] > 0


def test_the_event_store_round_trip_gives_the_same_counts(shop, tmp_path: Path) -> None:
    direct = simulate(shop, 5)
    stored = simulate(shop, 5, event_store=tmp_path / "events.duckdb")
    for v in ("treatment", "control"):
        a, b = direct.report["variants"][v], stored.report["variants"][v]
        assert {k: a[k] for k in COUNTS} == {k: b[k] for k in COUNTS}
        assert a["revenue"] == pytest.approx(b["revenue"]) and a["cost"] == pytest.approx(b["cost"])
    assert direct.report["lift"]["cvr"] == stored.report["lift"]["cvr"]


def test_assignment_and_segments(shop) -> None:
    sim = simulate(shop, 7, replace(SimulationSpec(), control_fraction=0.3))
    share = (sim.assignments["variant"] == "control").mean()
    assert 0.27 < share < 0.33 and sim.report["srm"]["ok"]
    again = simulate(shop, 7, replace(SimulationSpec(), control_fraction=0.3))
    assert again.assignments.equals(sim.assignments)  # deterministic
    seg = {s["segment"]: s for s in sim.report["segments"]}
    assert seg["new"]["variants"]["treatment"]["users"] + seg["new"]["variants"]["control"]["users"] == \
        round(0.2 * 4000)
    assert not seg["friends_in_audience"]["suppressed"]


def test_missing_shop_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ShopError, match="graphrec generate"):
        read_shop(tmp_path)
