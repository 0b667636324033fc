"""The campaigns the API serves from memory: no Neo4j round trip on the offers path.

Loaded from Neo4j when the app starts (retried later if Neo4j is down then) and updated when a
campaign is created through the same process. Readers take no lock: ``_state`` is one immutable
snapshot (campaigns by id, user -> {campaign id: variant}) replaced by a single reference store.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Mapping, Sequence

from neo4j import Driver

from graphrec.campaigns.model import Campaign, Variant
from graphrec.campaigns.store import all_assignments, list_campaigns

log = logging.getLogger("graphrec.campaigns")

RETRY_S = 5.0
# How often a running API looks for campaigns created elsewhere (the CLI, another API process).
WATCH_S = 30.0


@dataclass(frozen=True)
class _State:
    campaigns: Mapping[str, Campaign] = field(default_factory=dict)
    members: Mapping[str, Mapping[str, Variant]] = field(default_factory=dict)
    promoted: Mapping[str, frozenset[str]] = field(default_factory=dict)


class Registry:
    """Campaigns and their audiences in memory."""

    def __init__(self) -> None:
        self._state = _State()
        self._write = threading.Lock()
        self.loaded = False
        self._last_attempt = float("-inf")
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- loading and updating ------------------------------------------------------------------------
    def load(self, driver: Driver, database: str = "neo4j") -> None:
        """Read every campaign and assignment from Neo4j and publish them together."""
        with self._write:
            self._last_attempt = time.monotonic()
            campaigns = {c.campaign_id: c for c in list_campaigns(driver, database=database)}
            members: dict[str, dict[str, Variant]] = {}
            for cid, uid, variant in all_assignments(driver, database=database):
                members.setdefault(uid, {})[cid] = variant
            self._state = _State(campaigns, {u: MappingProxyType(m) for u, m in members.items()},
                                 {cid: frozenset(c.promoted) for cid, c in campaigns.items()})
            self.loaded = True

    def try_load(self, driver: Driver | None, database: str = "neo4j") -> bool:
        """:meth:`load`, logging instead of raising when Neo4j cannot be read (retried later)."""
        if driver is None:
            return False
        try:
            self.load(driver, database)
            log.info("campaigns loaded: %d", len(self._state.campaigns))
            return True
        except Exception as err:  # ServiceUnavailable, auth, a session expiring: all mean "later"
            self._last_attempt = time.monotonic()
            log.warning("campaigns not loaded (%s); offers are empty until Neo4j answers", type(err).__name__)
            return False

    def _fingerprint(self, driver: Driver, database: str) -> tuple[int, object]:
        with driver.session(database=database, default_access_mode="READ") as session:
            rec = session.run("MATCH (c:Campaign) RETURN count(c) AS n, max(c.created_at) AS last").single()
        return int(rec["n"]), rec["last"]

    def watch(self, driver: Driver | None, database: str = "neo4j", every_s: float = WATCH_S) -> None:
        """Re-read the campaigns, in a background thread, whenever Neo4j holds others than these
        (one small query every ``every_s``; never on a request's path)."""
        if driver is None or self._watcher is not None:
            return

        def loop() -> None:
            while not self._stop.wait(every_s):
                try:
                    n, _ = self._fingerprint(driver, database)
                    if not self.loaded or n != len(self._state.campaigns):
                        self.try_load(driver, database)
                except Exception as err:  # Neo4j down: try again next round
                    log.debug("campaign watch: %s", type(err).__name__)

        self._watcher = threading.Thread(target=loop, name="campaign-registry-watch", daemon=True)
        self._watcher.start()

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)

    def reload_due(self) -> bool:
        return not self.loaded and time.monotonic() - self._last_attempt >= RETRY_S

    def add(self, campaign: Campaign, members: Sequence[tuple[str, Variant]]) -> None:
        """Publish a campaign just stored (copy-on-write of the users it touches)."""
        with self._write:
            old = self._state
            changed: dict[str, dict[str, Variant]] = {}
            for uid, variant in members:
                if uid not in changed:
                    changed[uid] = dict(old.members.get(uid, {}))
                changed[uid][campaign.campaign_id] = variant
            merged = dict(old.members)
            merged.update({u: MappingProxyType(m) for u, m in changed.items()})
            self._state = _State({**old.campaigns, campaign.campaign_id: campaign}, merged,
                                 {**old.promoted, campaign.campaign_id: frozenset(campaign.promoted)})

    # -- reads (no lock) ---------------------------------------------------------------------------------
    def get(self, campaign_id: str) -> Campaign | None:
        return self._state.campaigns.get(campaign_id)

    def campaigns(self) -> list[Campaign]:
        return list(self._state.campaigns.values())

    def promoted(self, campaign_id: str) -> frozenset[str]:
        return self._state.promoted.get(campaign_id, frozenset())

    def memberships(self, user_id: str, at: datetime | None = None) -> list[tuple[Campaign, Variant]]:
        """The user's campaigns (active at ``at`` when given) with their variant, by campaign id."""
        state = self._state
        out = []
        for cid, variant in sorted(state.members.get(user_id, {}).items()):
            campaign = state.campaigns.get(cid)
            if campaign is not None and (at is None or campaign.active(at)):
                out.append((campaign, variant))
        return out

    def variant(self, campaign_id: str, user_id: str) -> Variant | None:
        return self._state.members.get(user_id, {}).get(campaign_id)

    def forget_user(self, user_id: str) -> None:
        """Drop a user's memberships (privacy erasure already removed their ASSIGNED edges)."""
        with self._write:
            old = self._state
            if user_id in old.members:
                members = dict(old.members)
                del members[user_id]
                self._state = _State(old.campaigns, members, old.promoted)
