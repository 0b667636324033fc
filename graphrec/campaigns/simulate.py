"""A campaign with a planted effect on a synthetic shop: the proof that the report's numbers are right.

The simulator knows every audience member's true purchase probability, so it knows the true lift:

* the shop is a directory written by ``graphrec generate`` (:mod:`graphrec.datasets.synthetic`),
  read as it is (users, products, interactions, social);
* the audience: ``audience`` users drawn from the shop, plus ``new_share`` of brand-new users
  (no purchase history: the "new" segment);
* each member's baseline probability of buying a promoted product in the window is
  ``base_cvr`` x (their number of past purchases / the audience's mean), capped at ``MAX_P``;
  new users get ``base_cvr`` / 2. Under treatment it is ``min(p x (1 + uplift), 1)``. The planted
  truth is the audience's mean of ``p_treatment - p_control`` (absolute) and the ratio of the means
  (relative): the quantities the report's intervals estimate;
* variants come from the real :func:`~graphrec.campaigns.model.assign_variant`;
* events: treatment members are shown the offer (impressions; clicks), converters buy one or more
  promoted products at random times inside the window, half of the purchases name the campaign;
  and noise the report must ignore: purchases of other products, promoted purchases just outside
  the window and by users outside the audience, impressions of another campaign;
* the report comes from the same :func:`~graphrec.campaigns.report.compute_report` as in service,
  optionally after a round trip through the real :class:`~graphrec.campaigns.events.EventStore`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graphrec.campaigns.model import Audience, Campaign, Offer, assign_variant
from graphrec.campaigns.report import compute_report

MAX_P = 0.9
START = datetime(2025, 3, 1, tzinfo=timezone.utc)
OTHER_CAMPAIGN = "sim-other"


class ShopError(ValueError):
    """The shop directory is missing or lacks a file the simulator needs."""


@dataclass(frozen=True)
class SimulationSpec:
    audience: int = 4000
    control_fraction: float = 0.2
    base_cvr: float = 0.05
    uplift: float = 0.3  # relative: treatment multiplies each user's probability by (1 + uplift)
    new_share: float = 0.2  # brand-new users added to the audience, relative to ``audience``
    exposure: float = 0.8  # share of treatment users who see the offer at least once
    impressions_per_exposed: float = 3.0
    ctr: float = 0.08
    extra_purchases: float = 0.3  # Poisson mean of further promoted purchases by a converter
    days: int = 14
    offer: Offer = field(default_factory=lambda: Offer(kind="percent_off", value=15.0))


@dataclass
class Shop:
    users: list[str]
    activity: dict[str, int]  # past purchase rows per user
    friends: list[tuple[str, str]]
    products: pd.DataFrame  # product_id, category_id, price
    promoted: list[str]  # the products of the largest subcategory


@dataclass
class Simulation:
    campaign: Campaign
    assignments: pd.DataFrame  # user_id, variant
    events: pd.DataFrame  # every simulated event, noise included
    p_control: dict[str, float]  # true purchase probability without / with the offer
    p_treatment: dict[str, float]
    truth: dict[str, float]
    returning_users: set[str]
    users_with_friends_in_audience: set[str]
    prices: dict[str, float]
    report: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Truth next to the estimate: what the CLI prints."""
        lift = self.report["lift"]["cvr"]
        lo, hi = lift["ci95"] or (None, None)
        covered = lo is not None and hi is not None and lo <= self.truth["cvr_absolute"] <= hi
        return {"campaign_id": self.campaign.campaign_id, "truth": self.truth,
                "estimate": {"cvr_absolute": lift["absolute"], "ci95": lift["ci95"], "p_value": lift["p_value"],
                             "cvr_relative": lift["relative"]},
                "covered": covered, "events": len(self.events), "report": self.report}


def read_shop(shop_dir: str | Path) -> Shop:
    """The parts of a ``graphrec generate`` shop the simulator uses."""
    root = Path(shop_dir)
    files = {name: root / f"{name}.csv" for name in ("users", "products", "interactions", "social")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise ShopError(f"{root}: not a generated shop, missing {', '.join(missing)} "
                        f"(create one with `graphrec generate --users N --out {root}`)")
    users = pd.read_csv(files["users"], usecols=["user_id"], dtype=str)["user_id"].tolist()
    products = pd.read_csv(files["products"], usecols=["product_id", "category_id", "price"],
                           dtype={"product_id": str, "category_id": str})
    inter = pd.read_csv(files["interactions"], usecols=["user_id"], dtype=str)
    social = pd.read_csv(files["social"], usecols=["user_id", "other_user_id"], dtype=str)
    if products.empty or not users:
        raise ShopError(f"{root}: the shop has no users or no products")
    largest = products["category_id"].value_counts().sort_index().idxmax()
    promoted = sorted(products.loc[products["category_id"] == largest, "product_id"])
    return Shop(users=users, activity=inter["user_id"].value_counts().to_dict(),
                friends=list(zip(social["user_id"], social["other_user_id"])),
                products=products, promoted=promoted)


def _times(rng: np.random.Generator, n: int, start: datetime, end: datetime) -> pd.Series:
    """``n`` instants uniformly inside [start, end), to the millisecond."""
    span_ms = int((end - start).total_seconds() * 1000)
    offsets = rng.integers(0, span_ms, n)
    return pd.to_datetime(pd.Timestamp(start).value // 10**6 + offsets, unit="ms", utc=True)


def simulate(shop: Shop | str | Path, seed: int, spec: SimulationSpec = SimulationSpec(), *,
             event_store: Path | None = None, min_group: int = 10) -> Simulation:
    """Run one simulated campaign (everything drawn from ``seed``) and report it."""
    shop = shop if isinstance(shop, Shop) else read_shop(shop)
    if not 0.0 < spec.control_fraction < 1.0:
        raise ValueError("control_fraction must be in (0, 1) for a simulated comparison")
    rng = np.random.default_rng(seed)
    start, end = START, START + timedelta(days=spec.days)

    # Audience: shop users (returning) and new users; the real deterministic assignment.
    size = min(spec.audience, len(shop.users))
    shop_members = [shop.users[i] for i in np.sort(rng.choice(len(shop.users), size, replace=False))]
    new_members = [f"sim-new-{seed}-{i}" for i in range(int(round(spec.new_share * size)))]
    members = shop_members + new_members
    campaign = Campaign(
        campaign_id=f"sim-{seed}", name=f"simulated campaign, seed {seed}", products=shop.promoted,
        offer=spec.offer, start=start, end=end, audience=Audience(policy="random", size=len(members)),
        control_fraction=spec.control_fraction, salt=f"sim-salt-{seed}", created_at=start - timedelta(days=1),
        promoted=shop.promoted)
    variants = np.array([assign_variant(campaign.salt, u, campaign.control_fraction) for u in members])
    treated = variants == "treatment"
    campaign = campaign.model_copy(update={"counts": {"treatment": int(treated.sum()),
                                                      "control": int((~treated).sum())}})

    # True probabilities: baseline from past activity, treatment multiplies it.
    activity = np.array([shop.activity.get(u, 0) for u in shop_members], dtype=np.float64)
    p0 = np.concatenate([spec.base_cvr * activity / max(activity.mean(), 1e-12),
                         np.full(len(new_members), spec.base_cvr / 2)])
    p0 = np.minimum(p0, MAX_P)
    p1 = np.minimum(p0 * (1.0 + spec.uplift), 1.0)
    truth = {"cvr_absolute": float((p1 - p0).mean()), "cvr_relative": float(p1.mean() / p0.mean() - 1.0),
             "p_control_mean": float(p0.mean()), "p_treatment_mean": float(p1.mean()), "uplift_factor": spec.uplift}
    p_true = np.where(treated, p1, p0)

    price = shop.products.set_index("product_id")["price"].astype(float)
    prices = {p: float(price[p]) for p in shop.promoted}
    promoted = np.array(shop.promoted)
    others = shop.products.loc[~shop.products["product_id"].isin(shop.promoted), "product_id"].to_numpy()
    member_arr = np.array(members)
    frames = []

    # Impressions and clicks of treatment users.
    exposed = treated & (rng.random(len(members)) < spec.exposure)
    n_imp = np.where(exposed, 1 + rng.poisson(spec.impressions_per_exposed - 1, len(members)), 0)
    imp_user = np.repeat(member_arr, n_imp)
    imp_product = rng.choice(promoted, len(imp_user))
    imp_ts = _times(rng, len(imp_user), start, end)
    frames.append(pd.DataFrame({"type": "impression", "user_id": imp_user, "product_id": imp_product,
                                "campaign_id": campaign.campaign_id, "ts": imp_ts, "value": np.nan}))
    clicked = rng.random(len(imp_user)) < spec.ctr
    frames.append(pd.DataFrame({"type": "click", "user_id": imp_user[clicked], "product_id": imp_product[clicked],
                                "campaign_id": campaign.campaign_id,
                                "ts": imp_ts[clicked] + pd.Timedelta(seconds=30), "value": np.nan}))

    # Purchases of promoted products inside the window by converters.
    converts = rng.random(len(members)) < p_true
    n_buy = np.where(converts, 1 + rng.poisson(spec.extra_purchases, len(members)), 0)
    buy_user = np.repeat(member_arr, n_buy)
    buy_treated = np.repeat(treated, n_buy)
    buy_product = rng.choice(promoted, len(buy_user))
    list_price = np.array([prices[p] for p in buy_product])
    paid = list_price - np.where(buy_treated, [spec.offer.discount(x) for x in list_price], 0.0)
    names = buy_treated & (rng.random(len(buy_user)) < 0.5)
    frames.append(pd.DataFrame({"type": "purchase", "user_id": buy_user, "product_id": buy_product,
                                "campaign_id": np.where(names, campaign.campaign_id, None),
                                "ts": _times(rng, len(buy_user), start, end), "value": np.round(paid, 2)}))

    # Noise the report must not count.
    k = max(1, len(members) // 20)
    noise_users = rng.choice(member_arr, k)
    if len(others):
        frames.append(pd.DataFrame({"type": "purchase", "user_id": noise_users, "product_id": rng.choice(others, k),
                                    "campaign_id": None, "ts": _times(rng, k, start, end), "value": 10.0}))
    outside = np.where(rng.random(k) < 0.5, pd.Timestamp(start) - pd.Timedelta(milliseconds=1), pd.Timestamp(end))
    frames.append(pd.DataFrame({"type": "purchase", "user_id": rng.choice(member_arr, k),
                                "product_id": rng.choice(promoted, k), "campaign_id": campaign.campaign_id,
                                "ts": pd.to_datetime(outside, utc=True), "value": 10.0}))
    strangers = np.array([f"sim-stranger-{seed}-{i}" for i in range(k)])
    frames.append(pd.DataFrame({"type": "purchase", "user_id": strangers, "product_id": rng.choice(promoted, k),
                                "campaign_id": campaign.campaign_id, "ts": _times(rng, k, start, end), "value": 10.0}))
    frames.append(pd.DataFrame({"type": "impression", "user_id": rng.choice(member_arr, k),
                                "product_id": rng.choice(promoted, k), "campaign_id": OTHER_CAMPAIGN,
                                "ts": _times(rng, k, start, end), "value": np.nan}))

    events = pd.concat(frames, ignore_index=True)
    events.insert(0, "event_id", [f"sim{seed}-{i}" for i in range(len(events))])
    events["ts"] = pd.to_datetime(events["ts"], utc=True)

    assignments = pd.DataFrame({"user_id": members, "variant": variants})
    member_set = set(members)
    friends_in = {u for a, b in shop.friends if a in member_set and b in member_set and a != b for u in (a, b)}
    returning = set(shop_members)  # every shop user has bought before (the generator gives each >= 1)
    frame = events
    if event_store is not None:
        from graphrec.campaigns.events import EventStore

        with EventStore(event_store) as store:
            store.append(events)
            frame = store.frame(end=end)
    report = compute_report(campaign, assignments, frame, returning_users=returning,
                            users_with_friends_in_audience=friends_in, min_group=min_group, prices=prices)
    report["simulation"] = {"seed": seed, "spec": {k: v for k, v in asdict(spec).items() if k != "offer"},
                            "truth": truth}
    return Simulation(campaign=campaign, assignments=assignments, events=events,
                      p_control=dict(zip(members, p0.tolist())), p_treatment=dict(zip(members, p1.tolist())),
                      truth=truth, returning_users=returning, users_with_friends_in_audience=friends_in,
                      prices=prices, report=report)


def coverage(shop: Shop | str | Path, seeds: range | list[int], spec: SimulationSpec = SimulationSpec(),
             alpha: float = 0.05) -> dict[str, Any]:
    """Over many seeds: how often the 95% interval covers the planted absolute lift, and how often
    p < ``alpha`` (with ``uplift`` 0 that is the false-positive rate)."""
    shop = shop if isinstance(shop, Shop) else read_shop(shop)
    covered, rejected, runs = 0, 0, []
    for seed in seeds:
        sim = simulate(shop, seed, spec)
        s = sim.summary()
        covered += bool(s["covered"])
        p = s["estimate"]["p_value"]
        rejected += p is not None and p < alpha
        runs.append({"seed": seed, "truth": sim.truth["cvr_absolute"], **{k: s["estimate"][k] for k in
                                                                          ("cvr_absolute", "ci95", "p_value")},
                     "covered": s["covered"]})
    n = len(runs)
    return {"runs": n, "coverage": covered / n if n else None, "rejection_rate": rejected / n if n else None,
            "alpha": alpha, "uplift": spec.uplift, "per_seed": runs}
