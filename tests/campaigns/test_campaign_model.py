"""The campaign model: validation of what a marketer posts, the offer's discount, the A/B rule."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError
from scipy.stats import binomtest

from graphrec.campaigns.model import Campaign, CampaignSpec, Offer, assign_variant, unit_interval


def spec(**over) -> dict:
    base = {"campaign_id": "spring", "name": "Spring", "products": ["p100"],
            "offer": {"kind": "percent_off", "value": 10}, "start": "2026-03-01T00:00:00Z",
            "end": "2026-04-01T00:00:00Z", "audience": {"policy": "random", "size": 5}}
    base.update(over)
    return base


def test_spec_defaults_and_utc():
    s = CampaignSpec(**spec(start="2026-03-01T01:00:00+01:00", end="2026-03-02T00:00:00"))
    assert s.start == datetime(2026, 3, 1, tzinfo=timezone.utc)
    assert s.end == datetime(2026, 3, 2, tzinfo=timezone.utc)  # naive = UTC
    assert s.control_fraction == 0.1 and s.cap.per_user_per_day == 3 and s.audience.exclude_buyers


@pytest.mark.parametrize("bad, field", [
    ({"products": [], "category_id": None}, "products"),
    ({"end": "2026-02-01T00:00:00Z"}, "end"),
    ({"control_fraction": 0.6}, "control_fraction"),
    ({"offer": {"kind": "percent_off", "value": 120}}, "percent_off"),
    ({"offer": {"kind": "amount_off", "value": -1}}, "value"),
    ({"audience": {"policy": "psychic", "size": 5}}, "policy"),
    ({"audience": {"policy": "model", "size": 0}}, "size"),
    ({"cap": {"per_user_per_day": 0}}, "per_user_per_day"),
    ({"surprise": 1}, "surprise"),
])
def test_spec_refuses_bad_input(bad, field):
    with pytest.raises(ValidationError) as err:
        CampaignSpec(**spec(**bad))
    assert field in str(err.value)


def test_discount():
    assert Offer(kind="percent_off", value=25).discount(40.0) == 10.0
    assert Offer(kind="amount_off", value=5).discount(40.0) == 5.0
    assert Offer(kind="amount_off", value=50).discount(40.0) == 40.0  # never more than the price


def test_assignment_is_deterministic_and_salted():
    users = [f"user-{i}" for i in range(2000)]
    first = [assign_variant("salt-a", u, 0.3) for u in users]
    assert first == [assign_variant("salt-a", u, 0.3) for u in users]
    other = [assign_variant("salt-b", u, 0.3) for u in users]
    assert first != other  # another campaign, another split
    assert all(0.0 <= unit_interval("s", u) < 1.0 for u in users)
    assert set(first) == {"treatment", "control"}


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.5])
def test_assignment_proportion_within_binomial_noise(fraction):
    n = 20_000
    control = sum(assign_variant(f"campaign-{fraction}", f"u{i}", fraction) == "control" for i in range(n))
    assert binomtest(control, n, fraction).pvalue > 0.001, (control, n * fraction)


def test_zero_control_fraction_means_everyone_treated():
    assert {assign_variant("s", f"u{i}", 0.0) for i in range(500)} == {"treatment"}


def test_campaign_round_trips_through_json():
    c = Campaign(**spec(), salt="spring", created_at="2026-02-01T00:00:00Z", promoted=["p100"],
                 counts={"treatment": 4, "control": 1})
    again = Campaign.model_validate_json(c.model_dump_json())
    assert again == c and c.active(datetime(2026, 3, 5, tzinfo=timezone.utc))
    assert not c.active(datetime(2026, 4, 1, tzinfo=timezone.utc))


def test_errors_name_their_field():
    with pytest.raises(ValidationError) as err:
        CampaignSpec(**spec(end="2026-02-01T00:00:00Z"))
    assert [e["loc"] for e in err.value.errors()] == [("end",)]
    with pytest.raises(ValidationError) as err:
        CampaignSpec(**spec(products=[]))
    assert [e["loc"] for e in err.value.errors()] == [("category_id",)]
    assert CampaignSpec(**spec(products=[], category_id="c1")).category_id == "c1"
