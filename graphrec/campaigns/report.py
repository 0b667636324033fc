"""The campaign report: per-variant funnel and money, lift with confidence intervals, SRM, segments.

:func:`compute_report` is a pure function of data frames (tests, the simulator, the benchmark and
the service all call it); :func:`campaign_report` fetches its inputs from Neo4j and the event
store and calls it.

Rules (docs/promotions.md, "Measurement"):

* The window is ``[start, end)``, as :meth:`~graphrec.campaigns.model.CampaignSpec.active`.
* **Attribution**: a purchase counts for the campaign when a user of its audience (treatment *or*
  control) buys a promoted product inside the window, whether or not the event names the
  campaign; that is what makes the control group a control. Impressions and clicks count when they
  name the campaign, come from an audience member and fall inside the window.
* ``cvr`` = buyers / assigned users (intention-to-treat: every assigned user counts, exposed or
  not), ``ctr`` = clicks / impressions, ``aov`` = revenue / purchases, ``revenue`` = the sum of
  the purchases' ``value``.
* ``cost`` = the offer's discount (:meth:`Offer.discount`) on each treatment purchase, priced at
  the product's list price (``prices``, the graph's ``Product.price``) or, for a product without
  one, at the purchase's ``value``. Control users got no offer, so their cost is 0.
* ``roi`` (treatment) = (incremental revenue - cost) / cost, incremental revenue = (revenue per user
  of treatment - of control) x treatment users.
* Undefined ratios are ``null``, never NaN or infinity; a note says why.
* Privacy: a segment in which either variant has fewer than ``min_group`` users is suppressed (no
  counts at all) and the report says so.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Collection, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphrec.campaigns import stats
from graphrec.campaigns.model import VARIANTS, Campaign

if TYPE_CHECKING:
    from neo4j import Driver

    from graphrec.campaigns.events import EventStore
    from graphrec.config import Settings

MIN_GROUP = 10
TIMELINE_POINTS = 48
EVENT_COLUMNS = ("event_id", "type", "user_id", "product_id", "campaign_id", "ts", "value")


class ReportInputError(ValueError):
    """The frames given to :func:`compute_report` lack a column or hold an unknown variant."""


def _utc(ts: Any) -> pd.Series | pd.Timestamp:
    if isinstance(ts, pd.Series):
        if isinstance(ts.dtype, pd.DatetimeTZDtype):
            return ts.dt.tz_convert("UTC")
        if pd.api.types.is_datetime64_dtype(ts.dtype):
            return ts.dt.tz_localize("UTC")  # naive times are UTC
        return pd.to_datetime(ts, utc=True, format="ISO8601")
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _iso(stamp: pd.Timestamp | datetime) -> str:
    return pd.Timestamp(stamp).isoformat().replace("+00:00", "Z")


def _check_columns(frame: pd.DataFrame, columns: Collection[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportInputError(f"{name}: missing column(s) {', '.join(missing)}")


# The hot paths (string matching over a million events) run in Arrow's C++ kernels: pandas'
# string lookups cost several times more there.
def _strings(column: pd.Series) -> pa.ChunkedArray:
    """A string column as Arrow strings (zero-copy for Arrow-backed columns); nulls stay null."""
    array = pa.chunked_array([pa.array(column, from_pandas=True)]) if not isinstance(column, pa.ChunkedArray) else column
    return array if pa.types.is_string(array.type) else pc.cast(array, pa.string())


def _flags(array: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _positions(values: pa.ChunkedArray, keys: pa.Array) -> np.ndarray:
    """The index of each value in ``keys``, -1 where absent."""
    return pc.fill_null(pc.index_in(values, value_set=keys), -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _variant_codes(assignments: pd.DataFrame) -> tuple[pa.Array, np.ndarray]:
    """Users (unique, in first-seen order) and their variant code: 0 treatment, 1 control."""
    _check_columns(assignments, ("user_id", "variant"), "assignments")
    frame = assignments
    if pc.count_distinct(_strings(frame["user_id"])).as_py() != len(frame):
        frame = frame.drop_duplicates("user_id", keep="first")
    codes = _positions(_strings(frame["variant"]), pa.array(list(VARIANTS)))
    if (codes < 0).any():
        bad = frame["variant"].iloc[int(np.flatnonzero(codes < 0)[0])]
        raise ReportInputError(f"assignments: unknown variant {bad!r} (expected one of {list(VARIANTS)})")
    return _strings(frame["user_id"]).combine_chunks(), codes


def _per_variant(codes: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    return np.bincount(codes, weights=weights, minlength=len(VARIANTS))


def _discounts(campaign: Campaign, purchases: pd.DataFrame, prices: Mapping[str, float] | None) -> np.ndarray:
    """The offer's discount on each purchase, via :meth:`Offer.discount` once per distinct price."""
    value = purchases["value"].to_numpy(np.float64)
    price = value.copy()
    if prices:
        keys = list(prices)
        at = _positions(_strings(purchases["product_id"]), pa.array(keys, pa.string()))
        listed = np.append(np.asarray([prices[k] for k in keys], np.float64), np.nan)[at]  # -1: the NaN
        known = np.isfinite(listed)
        price[known] = listed[known]
    price = np.nan_to_num(price, nan=0.0)
    unique, inverse = np.unique(price, return_inverse=True)
    per_price = np.fromiter((campaign.offer.discount(float(p)) for p in unique), np.float64, len(unique))
    return per_price[inverse]


def _variant_block(users: int, exposed: int, impressions: int, clicks: int, buyers: int, purchases: int,
                   revenue: float, cost: float) -> dict[str, Any]:
    return {"users": int(users), "exposed_users": int(exposed), "impressions": int(impressions),
            "clicks": int(clicks), "buyers": int(buyers), "purchases": int(purchases),
            "revenue": float(revenue), "cost": float(cost),
            "ctr": stats.ratio(clicks, impressions), "cvr": stats.ratio(buyers, users),
            "aov": stats.ratio(revenue, purchases), "roi": None,
            "revenue_per_user": stats.ratio(revenue, users)}


def _segment(name: str, dimension: str, mask: np.ndarray, codes: np.ndarray, bought: np.ndarray,
             revenue: np.ndarray, min_group: int, alpha: float) -> dict[str, Any]:
    users = _per_variant(codes[mask])
    out: dict[str, Any] = {"segment": name, "dimension": dimension}
    if users.min() < min_group:
        out.update(suppressed=True, reason=f"fewer than {min_group} users in a variant (privacy)")
        return out
    buyers = _per_variant(codes[mask & bought])
    t, c = mask & (codes == 0), mask & (codes == 1)
    out["suppressed"] = False
    out["variants"] = {
        v: {"users": int(users[i]), "buyers": int(buyers[i]), "cvr": stats.ratio(buyers[i], users[i]),
            "revenue_per_user": stats.finite(revenue[sel].mean())}
        for i, (v, sel) in enumerate(zip(VARIANTS, (t, c)))}
    out["lift"] = {"cvr": stats.proportion_lift(int(buyers[0]), int(users[0]), int(buyers[1]), int(users[1]), alpha),
                   "revenue_per_user": stats.mean_lift(revenue[t], revenue[c], alpha)}
    return out


def _timeline(start: pd.Timestamp, end: pd.Timestamp, first_buy: np.ndarray, codes: np.ndarray,
              users: np.ndarray, points: int) -> dict[str, Any]:
    """Cumulative conversion rate per variant at ``points`` evenly spaced instants of the window
    (up to the last attributed event), with Wilson 95% bands."""
    span = max((end - start).value, 1)
    edges = start.value + (np.arange(0, points + 1) * (span / points)).astype(np.int64)
    edges = -(-edges // 10**9) * 10**9  # whole seconds, rounded up so the last point misses no purchase
    out: dict[str, Any] = {"ts": [_iso(pd.Timestamp(e, tz="UTC")) for e in edges]}
    for i, variant in enumerate(VARIANTS):
        times = np.sort(first_buy[(codes == i) & (first_buy >= 0)])
        cumulative = np.searchsorted(times, edges, side="right")
        lo, hi = stats.proportion_bands(cumulative, int(users[i]))
        out[variant] = {"buyers": cumulative.astype(int).tolist(),
                        "cvr": [stats.ratio(int(b), int(users[i])) for b in cumulative],
                        "ci95_low": [stats.finite(x) for x in lo], "ci95_high": [stats.finite(x) for x in hi]}
    return out


def compute_report(campaign: Campaign, assignments: pd.DataFrame, events: pd.DataFrame, *,
                   returning_users: Collection[str] = frozenset(),
                   users_with_friends_in_audience: Collection[str] = frozenset(),
                   min_group: int = MIN_GROUP, prices: Mapping[str, float] | None = None,
                   alpha: float = 0.05, timeline_points: int = TIMELINE_POINTS) -> dict[str, Any]:
    """The report of ``campaign`` (JSON-safe dict) from its audience and the raw events.

    ``assignments``: columns ``user_id, variant``. ``events``: columns ``event_id, type, user_id,
    product_id, campaign_id, ts, value`` (any events: the ones that count are chosen here).
    ``returning_users``: users who bought anything before the campaign started;
    ``users_with_friends_in_audience``: audience members with a friend in the audience (either
    variant). ``prices``: list price per product id, for the cost (see the module docstring)."""
    if min_group < 1:
        raise ValueError("min_group must be at least 1")
    user_index, codes = _variant_codes(assignments)
    n_users = len(user_index)
    users = _per_variant(codes)
    _check_columns(events, EVENT_COLUMNS, "events")
    start, end = _utc(campaign.start), _utc(campaign.end)
    notes: list[str] = []

    ev = events
    repeated = len(ev) - pc.count_distinct(_strings(ev["event_id"])).as_py() if len(ev) else 0
    if repeated:  # the event store never holds repeats; a hand-made frame might
        notes.append(f"{repeated} repeated event ids counted once")
        ev = ev.drop_duplicates("event_id", keep="first")
    ts = _utc(ev["ts"])
    in_window = ((ts >= start) & (ts < end)).to_numpy()
    who = _positions(_strings(ev["user_id"]), user_index)
    member = who >= 0
    kind = _strings(ev["type"])
    names_campaign = _flags(pc.equal(_strings(ev["campaign_id"]), campaign.campaign_id))

    is_purchase = _flags(pc.equal(kind, "purchase"))
    promoted = _flags(pc.is_in(_strings(ev["product_id"]), value_set=pa.array(list(campaign.promoted), pa.string())))
    attributed = is_purchase & member & promoted & in_window
    impression = _flags(pc.equal(kind, "impression")) & names_campaign & member & in_window
    click = _flags(pc.equal(kind, "click")) & names_campaign & member & in_window

    seen = np.bincount(who[impression], minlength=n_users) > 0
    exposed = _per_variant(codes[seen])
    impressions = _per_variant(codes[who[impression]])
    clicks = _per_variant(codes[who[click]])

    buys = ev.loc[attributed, ["user_id", "product_id", "value"]]
    buy_who = who[attributed]
    buy_codes = codes[buy_who]
    value = buys["value"].to_numpy(np.float64)
    if np.isnan(value).any():
        notes.append(f"{int(np.isnan(value).sum())} attributed purchases without a value counted as 0 revenue")
        value = np.nan_to_num(value, nan=0.0)
    purchases = _per_variant(buy_codes)
    revenue = _per_variant(buy_codes, value)
    user_revenue = np.bincount(buy_who, weights=value, minlength=n_users)
    bought = np.zeros(n_users, bool)
    bought[buy_who] = True
    buyers = _per_variant(codes[bought])
    treated = buy_codes == 0
    discount = _discounts(campaign, buys[treated], prices)
    cost = np.array([discount.sum(), 0.0])
    if prices and treated.any():
        unpriced = int((~buys.loc[treated, "product_id"].isin(list(prices))).sum())  # few rows: pandas is fine
        if unpriced:
            notes.append(f"{unpriced} treatment purchases of products without a list price: cost from their value")

    variants = {v: _variant_block(users[i], exposed[i], impressions[i], clicks[i], buyers[i], purchases[i],
                                  revenue[i], cost[i]) for i, v in enumerate(VARIANTS)}
    t_sel, c_sel = codes == 0, codes == 1
    rpu_t, rpu_c = variants["treatment"]["revenue_per_user"], variants["control"]["revenue_per_user"]
    incremental = None if rpu_t is None or rpu_c is None else (rpu_t - rpu_c) * float(users[0])
    variants["treatment"]["incremental_revenue"] = stats.finite(incremental)
    variants["treatment"]["roi"] = None if incremental is None else stats.ratio(incremental - cost[0], cost[0])
    if variants["treatment"]["roi"] is None:
        notes.append("roi is undefined: " + ("no control group to compare with" if incremental is None
                                              else "the offer cost nothing (no treatment purchases)"))
    variants["control"]["incremental_revenue"] = None

    first_buy = np.full(n_users, -1, dtype=np.int64)
    if attributed.any():
        buy_ts = ts[attributed].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
        earliest = pd.Series(buy_ts).groupby(buy_who).min()
        first_buy[earliest.index.to_numpy()] = earliest.to_numpy()
    # Up to the last event of the audience (a running campaign), or the whole window when there is none.
    last_seen = ts[in_window & member].max() if (in_window & member).any() else end
    timeline_end = min(end, max(pd.Timestamp(last_seen), start))

    returning = _flags(pc.is_in(user_index, value_set=pa.array([str(u) for u in returning_users], pa.string())))
    with_friends = _flags(pc.is_in(user_index, value_set=pa.array([str(u) for u in users_with_friends_in_audience],
                                                                   pa.string())))
    segment_specs = (("new", "returning", ~returning), ("returning", "returning", returning),
                     ("friends_in_audience", "friends", with_friends),
                     ("no_friends_in_audience", "friends", ~with_friends))
    segments = [_segment(name, dim, np.asarray(mask, bool), codes, bought, user_revenue, min_group, alpha)
                for name, dim, mask in segment_specs]

    return {
        "campaign_id": campaign.campaign_id,
        "name": campaign.name,
        "window": {"start": _iso(start), "end": _iso(end), "closed": "left"},
        "requested_split": {"control_fraction": campaign.control_fraction},
        "alpha": alpha,
        "variants": variants,
        "lift": {"cvr": stats.proportion_lift(int(buyers[0]), int(users[0]), int(buyers[1]), int(users[1]), alpha),
                 "revenue_per_user": stats.mean_lift(user_revenue[t_sel], user_revenue[c_sel], alpha)},
        "srm": stats.srm_check(int(users[0]), int(users[1]), campaign.control_fraction),
        "segments": segments,
        "privacy": {"min_group": min_group,
                    "suppressed_segments": [s["segment"] for s in segments if s["suppressed"]]},
        "attribution": {
            "rule": "purchases of promoted products by audience members (either variant) inside "
                    "[start, end), whether or not the event names the campaign",
            "purchases_naming_campaign": int((attributed & names_campaign).sum()),
            "purchases_not_naming_campaign": int((attributed & ~names_campaign).sum()),
            "cost_basis": "list price (Product.price), else the purchase value" if prices else "purchase value",
        },
        "funnel": {v: {"impressions": variants[v]["impressions"], "clicks": variants[v]["clicks"],
                       "purchases": variants[v]["purchases"]} for v in VARIANTS},
        "timeline": _timeline(start, pd.Timestamp(timeline_end), first_buy, codes, users, timeline_points),
        "notes": notes,
    }


# -- fetching the inputs ------------------------------------------------------------------------------
def _graph_inputs(driver: "Driver", campaign: Campaign, database: str) -> tuple[set[str], set[str], dict[str, float]]:
    """Returning users (a BOUGHT before the start, or one without a time: historical data), members
    with a friend in the audience, and the promoted products' list prices."""
    import neo4j

    from graphrec import schema

    U, P, CAMP = schema.USER, schema.PRODUCT, schema.CAMPAIGN
    assigned, friend, bought = schema.ASSIGNED.type, schema.FRIEND.type, schema.BOUGHT.type
    match = f"MATCH (u:{U.label})-[:{assigned}]->(c:{CAMP.label} {{{CAMP.key}: $id}})"
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        returning = {r["id"] for r in session.run(
            f"{match} WHERE EXISTS {{ MATCH (u)-[b:{bought}]->(:{P.label}) WHERE b.ts IS NULL OR b.ts < $start }} "
            f"RETURN u.{U.key} AS id", id=campaign.campaign_id, start=campaign.start)}
        friends = {r["id"] for r in session.run(
            f"{match} WHERE EXISTS {{ MATCH (u)-[:{friend}]-(f:{U.label})-[:{assigned}]->(c) WHERE f <> u }} "
            f"RETURN u.{U.key} AS id", id=campaign.campaign_id)}
        prices = {r["id"]: float(r["price"]) for r in session.run(
            f"UNWIND $ids AS pid MATCH (p:{P.label} {{{P.key}: pid}}) WHERE p.price IS NOT NULL "
            f"RETURN p.{P.key} AS id, p.price AS price", ids=list(campaign.promoted))}
    return returning, friends, prices


def campaign_report(driver: "Driver", events: "EventStore", campaign_id: str, settings: "Settings | None" = None,
                    *, database: str | None = None, min_group: int = MIN_GROUP, alpha: float = 0.05) -> dict[str, Any]:
    """The report of a stored campaign: its audience from Neo4j, its events from the event store.
    Unknown campaign -> :class:`~graphrec.campaigns.store.UnknownCampaign`. The database is
    ``database``, else the settings', else ``neo4j``."""
    from graphrec.campaigns.store import assignments as load_assignments
    from graphrec.campaigns.store import get_campaign

    database = database or (settings.neo4j_database if settings is not None else "neo4j")
    campaign = get_campaign(driver, campaign_id, database=database)
    audience = load_assignments(driver, campaign_id, database=database)
    returning, friends, prices = _graph_inputs(driver, campaign, database)
    # Purchases need not name the campaign, so read the audience's events in the window, all campaigns;
    # purchases before the start mark returning users too.
    frame = events.frame(user_ids=audience["user_id"].tolist(), end=campaign.end)
    if len(frame):
        before = frame[(frame["type"] == "purchase") & (_utc(frame["ts"]) < _utc(campaign.start))]
        returning |= set(before["user_id"].astype(str))
    return compute_report(campaign, audience, frame, returning_users=returning,
                          users_with_friends_in_audience=friends, min_group=min_group, prices=prices, alpha=alpha)
