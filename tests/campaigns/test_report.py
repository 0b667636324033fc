"""compute_report on a hand-built campaign: every count and amount worked out by hand."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pandas as pd
import pytest

from graphrec.campaigns.model import Campaign
from graphrec.campaigns.report import ReportInputError, compute_report

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
END = datetime(2025, 1, 8, tzinfo=timezone.utc)
PRICES = {"p1": 100.0, "p2": 40.0, "p3": 10.0}


def campaign(**changes: object) -> Campaign:
    spec = dict(campaign_id="c1", name="January", products=["p1", "p2"], offer={"kind": "percent_off", "value": 10},
                start=START, end=END, audience={"policy": "random", "size": 40}, control_fraction=0.5,
                salt="salt", created_at=datetime(2024, 12, 31, tzinfo=timezone.utc), promoted=["p1", "p2"])
    spec.update(changes)
    return Campaign(**spec)


T = [f"t{i:02d}" for i in range(20)]
C = [f"c{i:02d}" for i in range(20)]
ASSIGNMENTS = pd.DataFrame({"user_id": T + C, "variant": ["treatment"] * 20 + ["control"] * 20})


def ev(event_id: str, type_: str, user: str, product: str, ts: str, value: float | None = None,
       campaign_id: str | None = "c1") -> dict:
    return {"event_id": event_id, "type": type_, "user_id": user, "product_id": product,
            "campaign_id": campaign_id, "ts": ts, "value": value}


EVENTS = [
    ev("e1", "impression", "t00", "p1", "2025-01-02T10:00:00Z"),
    ev("e1", "impression", "t00", "p1", "2025-01-02T10:00:00Z"),  # the same event sent twice: once
    ev("e2", "impression", "t00", "p1", "2025-01-03T10:00:00Z"),
    ev("e3", "click", "t00", "p1", "2025-01-03T10:00:05Z"),
    ev("e4", "purchase", "t00", "p1", "2025-01-03T10:05:00Z", 90.0),
    ev("e5", "impression", "t01", "p2", "2025-01-04T09:00:00Z"),
    ev("e6", "purchase", "t01", "p2", "2025-01-04T12:00:00Z", 36.0, campaign_id=None),  # does not name it
    ev("e7", "purchase", "t01", "p1", "2025-01-05T12:00:00Z", 90.0, campaign_id=None),
    ev("e8", "purchase", "t02", "p3", "2025-01-04T12:00:00Z", 9.0),  # not a promoted product
    ev("e9", "purchase", "t03", "p1", "2025-01-01T00:00:00Z", 90.0),  # exactly at the start: in
    ev("e10", "purchase", "t04", "p1", "2025-01-08T00:00:00Z", 90.0),  # exactly at the end: out
    ev("e11", "purchase", "t05", "p1", "2024-12-31T23:59:59.999Z", 90.0),  # just before: out
    ev("e12", "purchase", "c00", "p1", "2025-01-02T08:00:00Z", 100.0, campaign_id=None),  # control buys
    ev("e13", "purchase", "c01", "p2", "2025-01-06T08:00:00Z", 40.0, campaign_id="other"),
    ev("e14", "purchase", "stranger", "p1", "2025-01-02T08:00:00Z", 100.0),  # not in the audience
    ev("e15", "impression", "t06", "p1", "2025-01-02T08:00:00Z", campaign_id="other"),  # another campaign
    ev("e16", "click", "t07", "p1", "2025-01-09T08:00:00Z"),  # after the end
]


def events() -> pd.DataFrame:
    frame = pd.DataFrame(EVENTS)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True, format="ISO8601")
    return frame


RETURNING = set(T[:10] + C[:10])
FRIENDS = set(T[:5] + C[:5])


def report(camp: Campaign | None = None, **kw: object) -> dict:
    args: dict = dict(returning_users=RETURNING, users_with_friends_in_audience=FRIENDS, prices=PRICES)
    args.update(kw)
    return compute_report(camp or campaign(), ASSIGNMENTS, events(), **args)


def test_exact_counts_and_money() -> None:
    r = report()
    t, c = r["variants"]["treatment"], r["variants"]["control"]
    assert {k: t[k] for k in ("users", "exposed_users", "impressions", "clicks", "buyers", "purchases")} == \
        {"users": 20, "exposed_users": 2, "impressions": 3, "clicks": 1, "buyers": 3, "purchases": 4}
    assert {k: c[k] for k in ("users", "exposed_users", "impressions", "clicks", "buyers", "purchases")} == \
        {"users": 20, "exposed_users": 0, "impressions": 0, "clicks": 0, "buyers": 2, "purchases": 2}
    assert t["revenue"] == pytest.approx(90 + 36 + 90 + 90) and c["revenue"] == pytest.approx(140)
    # Cost: 10% of the list price of each treatment purchase (p1 100, p2 40, p1, p1); control pays nothing.
    assert t["cost"] == pytest.approx(10 + 4 + 10 + 10) and c["cost"] == 0.0
    assert t["ctr"] == pytest.approx(1 / 3) and c["ctr"] is None
    assert t["cvr"] == pytest.approx(3 / 20) and c["cvr"] == pytest.approx(2 / 20)
    assert t["aov"] == pytest.approx(306 / 4) and c["aov"] == pytest.approx(70)
    incremental = (306 / 20 - 140 / 20) * 20
    assert t["incremental_revenue"] == pytest.approx(incremental)
    assert t["roi"] == pytest.approx((incremental - 34) / 34) and c["roi"] is None
    assert r["notes"] == ["1 repeated event ids counted once"]
    assert r["attribution"]["purchases_naming_campaign"] == 2  # e4 and e9
    assert r["attribution"]["purchases_not_naming_campaign"] == 4  # e6, e7, e12, e13


def test_cost_from_the_purchase_value_without_prices() -> None:
    r = report(prices=None)
    assert r["variants"]["treatment"]["cost"] == pytest.approx(0.1 * (90 + 36 + 90 + 90))
    assert r["attribution"]["cost_basis"] == "purchase value"
    amount = report(camp=campaign(offer={"kind": "amount_off", "value": 50}))
    assert amount["variants"]["treatment"]["cost"] == pytest.approx(50 + 40 + 50 + 50)  # capped at p2's 40


def test_lift_srm_and_timeline() -> None:
    r = report()
    cvr = r["lift"]["cvr"]
    assert cvr["absolute"] == pytest.approx(0.05) and cvr["relative"] == pytest.approx(0.5)
    assert cvr["ci95"][0] < 0.05 < cvr["ci95"][1] and 0 < cvr["p_value"] <= 1
    rpu = r["lift"]["revenue_per_user"]
    assert rpu["absolute"] == pytest.approx(306 / 20 - 140 / 20)
    assert r["srm"]["p_value"] == pytest.approx(1.0) and r["srm"]["ok"] is True
    timeline = r["timeline"]
    assert timeline["treatment"]["buyers"][-1] == 3 and timeline["control"]["buyers"][-1] == 2
    assert timeline["treatment"]["buyers"] == sorted(timeline["treatment"]["buyers"])
    # A 15/25 split asked as 50/50 is a sample-ratio mismatch worth a look, not yet below 0.001.
    skew = compute_report(campaign(), pd.DataFrame({"user_id": T + C[:5], "variant": ["treatment"] * 20 +
                                                    ["control"] * 5}), events())
    assert skew["srm"]["p_value"] == pytest.approx(0.0027, abs=0.0001)


def test_json_names_and_no_nan() -> None:
    r = report()
    text = json.dumps(r, allow_nan=False)  # raises on NaN or infinity
    assert json.loads(text) == r
    assert {"campaign_id", "variants", "lift", "srm", "segments"} <= set(r)
    for variant in ("treatment", "control"):
        assert {"users", "exposed_users", "impressions", "clicks", "buyers", "purchases", "revenue", "cost",
                "ctr", "cvr", "aov", "roi"} <= set(r["variants"][variant])
    for metric in ("cvr", "revenue_per_user"):
        assert {"absolute", "relative", "ci95", "p_value"} <= set(r["lift"][metric])
        assert len(r["lift"][metric]["ci95"]) == 2
    assert {"p_value", "ok"} <= set(r["srm"])
    # An empty campaign: every ratio is null, still valid JSON.
    empty = compute_report(campaign(), ASSIGNMENTS, events().iloc[:0])
    json.dumps(empty, allow_nan=False)
    assert empty["variants"]["treatment"]["cvr"] == 0.0 and empty["variants"]["treatment"]["aov"] is None
    assert empty["variants"]["treatment"]["roi"] is None and empty["lift"]["cvr"]["relative"] is None


def test_segments_and_k_suppression() -> None:
    r = report()
    seg = {s["segment"]: s for s in r["segments"]}
    assert set(seg) == {"new", "returning", "friends_in_audience", "no_friends_in_audience"}
    assert seg["returning"]["variants"]["treatment"] == {"users": 10, "buyers": 3, "cvr": 0.3,
                                                         "revenue_per_user": pytest.approx(30.6)}
    assert seg["returning"]["variants"]["control"]["buyers"] == 2
    assert seg["new"]["variants"]["treatment"]["buyers"] == 0 and seg["new"]["variants"]["control"]["users"] == 10
    # 5 users per variant have friends in the audience: fewer than k = 10, so nothing is shown.
    assert seg["friends_in_audience"]["suppressed"] is True and "variants" not in seg["friends_in_audience"]
    assert seg["no_friends_in_audience"]["variants"]["treatment"]["users"] == 15
    assert r["privacy"] == {"min_group": 10, "suppressed_segments": ["friends_in_audience"]}
    strict = report(min_group=16)
    assert strict["privacy"]["suppressed_segments"] == ["new", "returning", "friends_in_audience",
                                                        "no_friends_in_audience"]
    loose = report(min_group=5)
    assert loose["privacy"]["suppressed_segments"] == []
    assert {s["segment"]: s for s in loose["segments"]}["friends_in_audience"]["variants"]["treatment"]["buyers"] == 3


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ReportInputError, match="events: missing column"):
        compute_report(campaign(), ASSIGNMENTS, events().drop(columns=["value"]))
    with pytest.raises(ReportInputError, match="unknown variant 'b'"):
        compute_report(campaign(), pd.DataFrame({"user_id": ["x"], "variant": ["b"]}), events())
    with pytest.raises(ValueError, match="min_group"):
        compute_report(campaign(), ASSIGNMENTS, events(), min_group=0)


def test_naive_timestamps_are_utc() -> None:
    frame = events()
    frame["ts"] = frame["ts"].dt.tz_convert(None)
    r = compute_report(campaign(), ASSIGNMENTS, frame, prices=PRICES)
    assert r["variants"]["treatment"]["purchases"] == 4 and r["variants"]["control"]["buyers"] == 2


def test_plot_is_written_even_for_an_empty_campaign(tmp_path) -> None:
    import matplotlib.image as mpimg

    from graphrec.campaigns.plot import plot_report

    for name, r in (("full", report()), ("empty", compute_report(campaign(), ASSIGNMENTS, events().iloc[:0]))):
        out = plot_report(r, tmp_path / f"{name}.png")
        height, width = mpimg.imread(out).shape[:2]
        assert width > 1000 and height > 400, (name, width, height)
