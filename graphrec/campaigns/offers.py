"""What to show a user now: their treatment campaigns' best products, under the frequency caps.

The caps: a user is served at most ``cap.per_user_per_day`` offers of one campaign and at most the
global ``Settings.offers_per_user_per_day`` across all campaigns per **UTC calendar day** (the day
of the server's clock in UTC, 00:00:00 to 23:59:59.999 UTC). "Served" means returned in an offers
response. The counter lives in memory behind one lock: checking and counting happen in the same
critical section, so 20 concurrent requests for one user cannot all see "one left". Served offers
are also appended to the DuckDB log (in batches, by a background thread, a fraction of a second
behind); at start the counter is rebuilt from that log, so a restart does not reset the day.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any, Callable, Sequence

from graphrec.campaigns.events import EventStore, Served, utc_day
from graphrec.campaigns.model import Campaign
from graphrec.campaigns.registry import Registry
from graphrec.serving.recommender import Filters
from graphrec.serving.service import Item, Service, UnknownId

log = logging.getLogger("graphrec.campaigns")

FLUSH_S = 0.2


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Caps:
    """Per-user-per-day counters of served offers (per campaign and in all), and their durable log."""

    def __init__(self, store: EventStore | None, global_cap: int, clock: Callable[[], datetime] = _now) -> None:
        self.store = store
        self.global_cap = global_cap
        self.clock = clock
        self._lock = threading.Lock()
        self._day: date = utc_day(clock())
        self._by_campaign: dict[tuple[str, str], int] = {}
        self._by_user: dict[str, int] = {}
        self._pending: list[Served] = []
        self._wake = threading.Event()
        self._stop = False
        if store is not None:
            self._load(store.served_counts(self._day))
        self._flusher = threading.Thread(target=self._flush_forever, name="served-offers-log", daemon=True)
        if store is not None:
            self._flusher.start()

    def _load(self, counts: dict[tuple[str, str], int]) -> None:
        self._by_campaign = dict(counts)
        self._by_user = {}
        for (uid, _), n in counts.items():
            self._by_user[uid] = self._by_user.get(uid, 0) + n

    def _roll(self, day: date) -> None:
        """A new UTC day: every counter starts again at zero (called with the lock held)."""
        if day != self._day:
            self._day = day
            self._by_campaign = {}
            self._by_user = {}

    def left(self, user_id: str, campaigns: Sequence[Campaign], at: datetime) -> int:
        """How many offers the user could still get today from ``campaigns`` (a hint: not reserved)."""
        with self._lock:
            self._roll(utc_day(at))
            overall = self.global_cap - self._by_user.get(user_id, 0)
            per = sum(max(0, c.cap.per_user_per_day - self._by_campaign.get((user_id, c.campaign_id), 0))
                      for c in campaigns)
            return max(0, min(overall, per))

    def served_today(self, user_id: str, at: datetime) -> int:
        with self._lock:
            self._roll(utc_day(at))
            return self._by_user.get(user_id, 0)

    def reserve(self, user_id: str, candidates: Sequence[tuple[Campaign, Item]], k: int,
                at: datetime) -> list[tuple[Campaign, Item]]:
        """Take candidates in order while the caps allow, count them as served, and log them."""
        chosen: list[tuple[Campaign, Item]] = []
        with self._lock:
            self._roll(utc_day(at))
            room = min(k, self.global_cap - self._by_user.get(user_id, 0))
            taken: dict[str, int] = {}
            for campaign, item in candidates:
                if len(chosen) >= room:
                    break
                cid = campaign.campaign_id
                used = self._by_campaign.get((user_id, cid), 0) + taken.get(cid, 0)
                if used < campaign.cap.per_user_per_day:
                    chosen.append((campaign, item))
                    taken[cid] = taken.get(cid, 0) + 1
            for cid, n in taken.items():
                self._by_campaign[(user_id, cid)] = self._by_campaign.get((user_id, cid), 0) + n
            if chosen:
                self._by_user[user_id] = self._by_user.get(user_id, 0) + len(chosen)
                self._pending.extend(Served(user_id, c.campaign_id, i.product_id, at) for c, i in chosen)
        # No wake-up here: the log is written every FLUSH_S in one batch; a write (and its fsync)
        # per request would cost more than the request itself.
        return chosen

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._by_user.pop(user_id, None)
            self._by_campaign = {k: v for k, v in self._by_campaign.items() if k[0] != user_id}
            self._pending = [s for s in self._pending if s.user_id != user_id]

    # -- the durable log -----------------------------------------------------------------------------
    def flush(self) -> int:
        """Write the served offers not yet logged; returns how many."""
        with self._lock:
            batch, self._pending = self._pending, []
        if batch and self.store is not None:
            try:
                self.store.log_served(batch)
            except Exception:
                log.exception("could not log %d served offers; retrying", len(batch))
                with self._lock:
                    self._pending = batch + self._pending
                return 0
        return len(batch)

    def _flush_forever(self) -> None:
        while not self._stop:
            self._wake.wait(FLUSH_S)
            self._wake.clear()
            self.flush()

    def close(self) -> None:
        self._stop = True
        self._wake.set()
        if self._flusher.is_alive():
            self._flusher.join(timeout=5)
        self.flush()


@dataclass
class Offers:
    user_id: str
    items: list[tuple[Campaign, Item]] = field(default_factory=list)
    control: list[str] = field(default_factory=list)  # campaigns where the user is in control
    capped: bool = False  # the caps withheld at least one offer the user would have had
    served_today: int = 0


def interleave(per_campaign: Sequence[Sequence[tuple[Campaign, Item]]]) -> list[tuple[Campaign, Item]]:
    """Each campaign's best first, then each one's second best...; inside a round, higher score first."""
    out: list[tuple[Campaign, Item]] = []
    depth = max((len(c) for c in per_campaign), default=0)
    for rank in range(depth):
        row = [c[rank] for c in per_campaign if len(c) > rank]
        out += sorted(row, key=lambda ci: (-ci[1].score, ci[0].campaign_id, ci[1].product_id))
    return out


def offers_for(service: Service, registry: Registry, caps: Caps, user_id: str, k: int = 3,
               at: datetime | None = None) -> Offers:
    """The offers to show ``user_id`` now (at most ``k``), counted against the caps.

    For each active campaign with the user in treatment, the model ranks the promoted products the
    user has not bought (``Filters(only=...)``) and explains them with real graph paths. Users in
    no audience get nothing; control users get nothing from that campaign (listed in ``control``)."""
    at = at or caps.clock()
    result = Offers(user_id)
    memberships = registry.memberships(user_id, at)
    treatment = [c for c, v in memberships if v == "treatment"]
    result.control = [c.campaign_id for c, v in memberships if v == "control"]
    if not treatment:
        return result
    left = caps.left(user_id, treatment, at)
    if left == 0:
        result.capped = True
        result.served_today = caps.served_today(user_id, at)
        return result
    per_campaign = []
    for campaign in treatment:
        try:
            recs = service.recommend(user_id, min(k, left), Filters(only=registry.promoted(campaign.campaign_id)),
                                     explain=True, reload=False)
        except UnknownId:  # in an audience but gone from model and graph (erased): nothing to offer
            return result
        per_campaign.append([(campaign, item) for item in recs.items])
    candidates = interleave(per_campaign)
    result.items = caps.reserve(user_id, candidates, k, at)
    result.capped = len(result.items) < min(k, len(candidates))
    result.served_today = caps.served_today(user_id, at)
    return result


def offer_payload(offers: Offers, prices: Callable[[str], float | None]) -> dict[str, Any]:
    """The JSON of ``GET /users/{id}/offers``."""
    items = []
    for campaign, item in offers.items:
        price = prices(item.product_id)
        items.append({
            "campaign_id": campaign.campaign_id, "campaign_name": campaign.name,
            "product_id": item.product_id, "name": item.name, "score": item.score,
            "offer": {"kind": campaign.offer.kind, "value": campaign.offer.value},
            "price": price,
            "price_after_offer": None if price is None else round(price - campaign.offer.discount(price), 2),
            "ends_at": campaign.end.isoformat().replace("+00:00", "Z"),
            "explanations": [e.to_dict() for e in item.explanations],
        })
    return {"user_id": offers.user_id, "offers": items, "control_campaigns": offers.control,
            "capped": offers.capped, "served_today": offers.served_today}


def erase_user(user_id: str, *, store: EventStore | None, caps: Caps, registry: Registry) -> int:
    """Privacy erasure of the promotions side: events, served offers, cap counters, memberships.
    Returns the stored rows deleted (the ASSIGNED edges go with the user's node in Neo4j)."""
    caps.forget_user(user_id)
    registry.forget_user(user_id)
    return store.erase_user(user_id) if store is not None else 0
