"""The statistics of a campaign report, from maintained libraries (statsmodels, scipy).

* Conversion rate (buyers / assigned users, intention-to-treat): the difference of two independent
  proportions with the Agresti-Caffo interval and test (``confint_proportions_2indep`` /
  ``test_proportions_2indep``, method ``agresti-caffo``). Agresti-Caffo rather than the score
  (Miettinen-Nurminen) method because the score inversion fails on 0 or n successes, which a
  small campaign or a segment easily has, and because interval and test then use one statistic:
  the interval excludes 0 exactly when p < 0.05. The relative lift's interval is that of the
  ratio of proportions (``log-adjusted``) minus 1.
* Revenue per user (zeros for users who bought nothing): Welch's t-test (``scipy.stats.ttest_ind``
  with ``equal_var=False``) and its ``confidence_interval``. The relative lift has no interval
  here (a ratio of means would need Fieller or a bootstrap): it is reported as a point value.
* Sample-ratio mismatch: a chi-square goodness-of-fit test (``scipy.stats.chisquare``) of the
  assigned counts against the requested split. ``ok`` when p >= ``SRM_THRESHOLD`` (0.001, the
  usual threshold: an SRM check runs on every report, so it must rarely cry wolf).

Every number leaves as a float or ``None`` (never NaN or infinity), so reports are valid JSON; an
undefined value comes with a note saying why.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

CONFIDENCE = 0.95
SRM_THRESHOLD = 0.001


def finite(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing, NaN or infinite (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def ratio(num: float, den: float) -> float | None:
    """num / den, or None when den is 0 (an undefined rate is null, not 0 and not NaN)."""
    return finite(num / den) if den else None


def _interval(lo: Any, hi: Any) -> list[float | None] | None:
    lo, hi = finite(lo), finite(hi)
    return None if lo is None and hi is None else [lo, hi]


def proportion_lift(buyers_t: int, users_t: int, buyers_c: int, users_c: int,
                    alpha: float = 0.05) -> dict[str, Any]:
    """Lift of the treatment's conversion rate over the control's: absolute (difference),
    relative (ratio - 1), 95% intervals of both, the two-sided p-value of "no difference"."""
    out: dict[str, Any] = {"treatment": ratio(buyers_t, users_t), "control": ratio(buyers_c, users_c),
                           "absolute": None, "relative": None, "ci95": None, "relative_ci95": None,
                           "p_value": None, "significant": None, "method": "agresti-caffo"}
    if users_t == 0 or users_c == 0:
        out["note"] = "a variant has no users: no lift"
        return out
    for name, count, nobs in (("treatment", buyers_t, users_t), ("control", buyers_c, users_c)):
        if not 0 <= count <= nobs:
            raise ValueError(f"{name}: {count} buyers out of {nobs} users")
    p_t, p_c = buyers_t / users_t, buyers_c / users_c
    out["absolute"] = p_t - p_c
    args = (int(buyers_t), int(users_t), int(buyers_c), int(users_c))
    with warnings.catch_warnings():  # statsmodels warns on its own 0/0 side products (odds ratio)
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = confint_proportions_2indep(*args, method="agresti-caffo", compare="diff", alpha=1 - CONFIDENCE)
        test = test_proportions_2indep(*args, method="agresti-caffo", compare="diff")
        out["ci95"] = _interval(max(lo, -1.0), min(hi, 1.0))
        out["p_value"] = finite(test.pvalue)
        if buyers_c > 0:
            out["relative"] = p_t / p_c - 1.0
            lo, hi = confint_proportions_2indep(*args, method="log-adjusted", compare="ratio",
                                                alpha=1 - CONFIDENCE)
            out["relative_ci95"] = _interval(lo - 1.0, hi - 1.0)
        else:
            out["note"] = "no control buyers: the relative lift is undefined"
    if out["p_value"] is not None:
        out["significant"] = out["p_value"] < alpha
    return out


def mean_lift(values_t: Sequence[float] | np.ndarray, values_c: Sequence[float] | np.ndarray,
              alpha: float = 0.05) -> dict[str, Any]:
    """Lift of the treatment's mean over the control's (revenue per user): Welch's t-test."""
    x_t, x_c = np.asarray(values_t, dtype=np.float64), np.asarray(values_c, dtype=np.float64)
    m_t = finite(x_t.mean()) if len(x_t) else None
    m_c = finite(x_c.mean()) if len(x_c) else None
    out: dict[str, Any] = {"treatment": m_t, "control": m_c, "absolute": None, "relative": None,
                           "ci95": None, "relative_ci95": None, "p_value": None, "significant": None,
                           "method": "welch-t"}
    if m_t is None or m_c is None:
        out["note"] = "a variant has no users: no lift"
        return out
    out["absolute"] = m_t - m_c
    out["relative"] = ratio(m_t - m_c, m_c)
    notes = []
    if out["relative"] is None:
        notes.append("control mean is 0: the relative lift is undefined")
    if len(x_t) < 2 or len(x_c) < 2:
        notes.append("a variant has fewer than 2 users: no interval")
    elif x_t.var() == 0 and x_c.var() == 0:
        notes.append("no variance in either variant: no interval")
    else:
        result = sps.ttest_ind(x_t, x_c, equal_var=False)
        ci = result.confidence_interval(confidence_level=CONFIDENCE)
        out["ci95"] = _interval(ci.low, ci.high)
        out["p_value"] = finite(result.pvalue)
        out["df"] = finite(result.df)
    if out["p_value"] is not None:
        out["significant"] = out["p_value"] < alpha
    if notes:
        out["note"] = "; ".join(notes)
    return out


def srm_check(users_t: int, users_c: int, control_fraction: float,
              threshold: float = SRM_THRESHOLD) -> dict[str, Any]:
    """Chi-square of the assigned counts against the requested split; ``ok`` unless p < threshold."""
    total = users_t + users_c
    expected = {"treatment": total * (1.0 - control_fraction), "control": total * control_fraction}
    out: dict[str, Any] = {"p_value": None, "ok": True, "threshold": threshold,
                           "observed": {"treatment": int(users_t), "control": int(users_c)},
                           "expected": expected, "control_fraction": control_fraction}
    if total == 0:
        out["note"] = "no assigned users"
        return out
    if control_fraction <= 0.0 or control_fraction >= 1.0:
        # One expected cell is empty: the split is right exactly when that variant is empty too.
        empty = users_c if control_fraction <= 0.0 else users_t
        out["p_value"] = 1.0 if empty == 0 else 0.0
        out["ok"] = empty == 0
        out["note"] = "one variant is expected to be empty"
        return out
    result = sps.chisquare([users_t, users_c], [expected["treatment"], expected["control"]])
    out["p_value"] = finite(result.pvalue)
    out["statistic"] = finite(result.statistic)
    out["ok"] = out["p_value"] is None or out["p_value"] >= threshold
    return out


def proportion_bands(successes: np.ndarray, nobs: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilson 95% intervals for many proportions over one denominator (the plot's bands)."""
    from statsmodels.stats.proportion import proportion_confint

    if nobs == 0:
        nan = np.full(len(successes), np.nan)
        return nan, nan
    lo, hi = proportion_confint(np.asarray(successes), nobs, alpha=1 - CONFIDENCE, method="wilson")
    return np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
