"""The report's statistics against hand-computed and textbook cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from graphrec.campaigns import stats

Z = 1.959963984540054  # the 97.5% normal quantile


def test_cvr_lift_is_agresti_caffo_by_hand() -> None:
    # Agresti & Caffo (2000): add one success and one failure to each group, then Wald.
    out = stats.proportion_lift(30, 100, 20, 100)
    p1, p2 = 31 / 102, 21 / 102
    se = math.sqrt(p1 * (1 - p1) / 102 + p2 * (1 - p2) / 102)
    assert out["absolute"] == pytest.approx(0.10)  # the point estimate is the raw difference
    assert out["relative"] == pytest.approx(0.5)
    assert out["ci95"] == pytest.approx([p1 - p2 - Z * se, p1 - p2 + Z * se], rel=1e-9)
    assert out["p_value"] == pytest.approx(2 * (1 - 0.5 * (1 + math.erf((p1 - p2) / se / math.sqrt(2)))), rel=1e-9)
    assert out["significant"] is False
    lo, hi = out["relative_ci95"]
    assert lo < 0.5 < hi and lo > -1


def test_interval_and_test_agree_on_significance() -> None:
    # One statistic for both: the interval excludes 0 exactly when p < 0.05.
    for counts in [(60, 1000, 40, 1000), (58, 1000, 40, 1000), (55, 1000, 40, 1000), (120, 2000, 40, 500)]:
        out = stats.proportion_lift(*counts)
        lo, hi = out["ci95"]
        assert (lo > 0 or hi < 0) == (out["p_value"] < 0.05), counts


def test_cvr_lift_degenerate_cases_are_json_safe() -> None:
    none = stats.proportion_lift(0, 100, 0, 100)
    assert none["absolute"] == 0.0 and none["relative"] is None and "relative" in none["note"]
    assert none["p_value"] == pytest.approx(1.0)
    empty = stats.proportion_lift(3, 10, 0, 0)
    assert empty["absolute"] is None and empty["ci95"] is None and empty["control"] is None
    full = stats.proportion_lift(50, 50, 50, 50)
    assert full["absolute"] == 0.0 and full["ci95"][0] >= -1 and full["ci95"][1] <= 1
    for out in (none, empty, full):
        json.dumps(out, allow_nan=False)
    with pytest.raises(ValueError, match="buyers"):
        stats.proportion_lift(11, 10, 0, 10)


def test_welch_matches_the_textbook_example() -> None:
    # Welch's t-test example (Wikipedia, "Welch's t-test", example 1 data): t = -2.46, df = 24.99, p = 0.021.
    a1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
    a2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]
    out = stats.mean_lift(a1, a2)
    assert out["absolute"] == pytest.approx(np.mean(a1) - np.mean(a2))
    assert out["df"] == pytest.approx(24.99, abs=0.01)
    assert out["p_value"] == pytest.approx(0.021, abs=0.0005)
    # The interval is mean difference +- t(0.975, df) * se, by hand:
    se = math.sqrt(np.var(a1, ddof=1) / 15 + np.var(a2, ddof=1) / 15)
    from scipy.stats import t

    half = t.ppf(0.975, out["df"]) * se
    assert out["ci95"] == pytest.approx([out["absolute"] - half, out["absolute"] + half])
    assert out["relative"] == pytest.approx(out["absolute"] / np.mean(a2))


def test_welch_degenerate_cases() -> None:
    zeros = stats.mean_lift(np.zeros(20), np.zeros(20))
    assert zeros["absolute"] == 0.0 and zeros["ci95"] is None and zeros["relative"] is None
    assert "variance" in zeros["note"]
    one = stats.mean_lift([5.0], [1.0, 2.0])
    assert one["absolute"] == pytest.approx(3.5) and one["p_value"] is None
    for out in (zeros, one, stats.mean_lift([], [1.0])):
        json.dumps(out, allow_nan=False)


def test_srm_chi_square_by_hand() -> None:
    fine = stats.srm_check(5000, 5000, 0.5)
    assert fine["p_value"] == pytest.approx(1.0) and fine["ok"]
    # chi2 = 2 * 100^2 / 5000 = 4 on 1 df: p = 2 * (1 - Phi(2)) = 0.0455.
    off = stats.srm_check(5100, 4900, 0.5)
    assert off["statistic"] == pytest.approx(4.0)
    assert off["p_value"] == pytest.approx(math.erfc(2 / math.sqrt(2)))
    assert off["ok"]  # 0.0455 is not below the 0.001 threshold
    bad = stats.srm_check(9300, 700, 0.1)  # expected 9000 / 1000
    assert bad["p_value"] < 1e-10 and not bad["ok"]
    assert stats.srm_check(900, 100, 0.1)["p_value"] == pytest.approx(1.0)
    assert stats.srm_check(10, 0, 0.0)["ok"] and not stats.srm_check(10, 1, 0.0)["ok"]


def test_finite_and_ratio() -> None:
    assert stats.finite(float("nan")) is None and stats.finite(float("inf")) is None
    assert stats.ratio(1, 0) is None and stats.ratio(1, 4) == 0.25
