"""Choosing a campaign's audience: who, among the eligible users, gets into it (ranked, top ``size``).

Policies (docs/promotions.md says why each is defined so):

* ``model``: the trained model's affinity, ``max`` over the promoted products of ``user_emb @
  product_emb[p]``. Max, not mean: a user who strongly wants one promoted product is a good
  target even if the others leave them cold, and with a category of dozens of products the mean
  drifts towards "likes this category on average", which ranks generalists over people who want
  something specific. Users the model does not know (created after training) are left out: a
  fold-in for every cold user at campaign creation would be a second, slower model.
* ``friends_bought``: how many distinct friends (FRIEND either way, FOLLOWS outgoing) bought a
  promoted product; users with none are left out (no signal is not a ranking).
* ``popular``: the most active buyers of the promoted products' categories (their BOUGHT edges into
  those categories), then overall activity: the "send it to our best customers" baseline.
* ``random``: a uniform sample, seeded by the campaign salt (the same campaign draws the same users).

Eligible: every user of the graph, less those who already bought a promoted product when
``exclude_buyers``. Ties are broken by user id, so every policy is deterministic.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Sequence

import neo4j
import numpy as np
from neo4j import Driver

from graphrec import schema
from graphrec.artifact import Artifact
from graphrec.campaigns.model import Audience, Campaign, CampaignSpec, Variant, assign_variant, unit_interval
from graphrec.campaigns.store import create_campaign, resolve_products

U, P, C = schema.USER, schema.PRODUCT, schema.CATEGORY
BOUGHT, IN_CATEGORY = schema.BOUGHT.type, schema.IN_CATEGORY.type
# Users scored per matrix product (bounds memory on large graphs: rows x promoted products).
CHUNK = 65_536

_USERS = f"MATCH (u:{U.label}) RETURN u.{U.key} AS id"
_BUYERS = f"""
UNWIND $promoted AS pid
MATCH (u:{U.label})-[r:{BOUGHT}]->(:{P.label} {{{P.key}: pid}})
WHERE $splits IS NULL OR r.split IN $splits
RETURN DISTINCT u.{U.key} AS id
"""
_FRIENDS_BOUGHT = f"""
UNWIND $promoted AS pid
MATCH (b:{U.label})-[r:{BOUGHT}]->(:{P.label} {{{P.key}: pid}})
WHERE $splits IS NULL OR r.split IN $splits
WITH DISTINCT b
CALL (b) {{
  MATCH (b)-[:{schema.FRIEND.type}]-(u:{U.label}) RETURN u
  UNION
  MATCH (u:{U.label})-[:{schema.FOLLOWS.type}]->(b) RETURN u
}}
WITH u, count(DISTINCT b) AS friends
RETURN u.{U.key} AS id, friends
"""
_CATEGORY_ACTIVITY = f"""
UNWIND $promoted AS pid
MATCH (:{P.label} {{{P.key}: pid}})-[:{IN_CATEGORY}]->(c:{C.label})
WITH collect(DISTINCT c) AS cats
MATCH (u:{U.label})-[r:{BOUGHT}]->(p:{P.label})
WHERE $splits IS NULL OR r.split IN $splits
OPTIONAL MATCH (p)-[:{IN_CATEGORY}]->(c:{C.label}) WHERE c IN cats
WITH u, p, count(c) > 0 AS in_cats
RETURN u.{U.key} AS id, sum(CASE WHEN in_cats THEN 1 ELSE 0 END) AS in_category, count(p) AS total
"""


def _ids(driver: Driver, database: str, cypher: str, **params: object) -> list[str]:
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        return [r["id"] for r in session.run(cypher, **params)]


def eligible_users(driver: Driver, promoted: Sequence[str], exclude_buyers: bool = True, *,
                   database: str = "neo4j", splits: Sequence[str] | None = None) -> list[str]:
    """Every user of the graph, less buyers of a promoted product when ``exclude_buyers``; sorted."""
    users = set(_ids(driver, database, _USERS))
    if exclude_buyers:
        users -= set(_ids(driver, database, _BUYERS, promoted=list(promoted),
                          splits=list(splits) if splits is not None else None))
    return sorted(users)


def model_scores(artifact: Artifact, users: Sequence[str], promoted: Sequence[str]) -> dict[str, float]:
    """max over promoted products of the model's score, for the users and products it knows."""
    cols = [artifact.product_index[p] for p in promoted if p in artifact.product_index]
    known = [(u, artifact.user_index[u]) for u in users if u in artifact.user_index]
    if not cols or not known:
        return {}
    items = np.asarray(artifact.product_emb[cols], dtype=np.float32).T
    scores: dict[str, float] = {}
    for lo in range(0, len(known), CHUNK):
        part = known[lo:lo + CHUNK]
        rows = np.asarray(artifact.user_emb[[r for _, r in part]], dtype=np.float32)
        best = (rows @ items).max(axis=1)
        scores.update((u, float(s)) for (u, _), s in zip(part, best))
    return scores


def _top(scores: dict[str, float], size: int) -> list[tuple[str, float]]:
    """The ``size`` best, highest score first, ties by user id."""
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:size]


def select_audience(driver: Driver, promoted: Sequence[str], audience: Audience, *, salt: str,
                    artifact: Artifact | None = None, database: str = "neo4j",
                    splits: Sequence[str] | None = None) -> list[tuple[str, float]]:
    """The audience, best first: ``(user_id, score)`` for at most ``audience.size`` users.

    ``splits`` limits the purchase history read to BOUGHT edges of those splits (a backtest reads
    ``["train"]``); ``None`` reads all. The ``model`` policy needs ``artifact``."""
    if not promoted:
        raise ValueError("a campaign must promote at least one product")
    split_list = list(splits) if splits is not None else None
    users = eligible_users(driver, promoted, audience.exclude_buyers, database=database, splits=split_list)
    eligible = set(users)
    policy = audience.policy
    if policy == "model":
        if artifact is None:
            raise ValueError("the model policy needs a model artifact")
        scores = model_scores(artifact, users, promoted)
    elif policy == "friends_bought":
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            rows = session.run(_FRIENDS_BOUGHT, promoted=list(promoted), splits=split_list)
            scores = {r["id"]: float(r["friends"]) for r in rows if r["id"] in eligible}
    elif policy == "popular":
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
            rows = session.run(_CATEGORY_ACTIVITY, promoted=list(promoted), splits=split_list)
            # In-category purchases first, total purchases as the tie-break (scaled below one).
            activity = {r["id"]: (int(r["in_category"]), int(r["total"])) for r in rows}
        top_total = max((t for _, t in activity.values()), default=0) + 1
        scores = {u: activity.get(u, (0, 0))[0] + activity.get(u, (0, 0))[1] / top_total for u in users}
    elif policy == "random":
        scores = {u: 1.0 - unit_interval(salt + ":audience", u) for u in users}
    else:  # the model's Literal forbids it; kept for callers that build Audience by hand
        raise ValueError(f"unknown policy {policy!r}")
    return _top(scores, audience.size)


def plan_campaign(driver: Driver, spec: CampaignSpec, *, artifact: Artifact | None = None,
                  database: str = "neo4j", now: datetime | None = None,
                  splits: Sequence[str] | None = None) -> tuple[Campaign, list[tuple[str, Variant]]]:
    """Resolve what the campaign promotes, choose its audience and split it; nothing is written.

    The salt is the campaign id: planning the same spec against the same graph gives the same
    audience and the same split, every time."""
    promoted = resolve_products(driver, spec.products, spec.category_id, database=database)
    salt = spec.campaign_id
    chosen = select_audience(driver, promoted, spec.audience, salt=salt, artifact=artifact,
                             database=database, splits=splits)
    members = [(u, assign_variant(salt, u, spec.control_fraction)) for u, _ in chosen]
    counts = {"treatment": sum(v == "treatment" for _, v in members),
              "control": sum(v == "control" for _, v in members)}
    campaign = Campaign(**spec.model_dump(), salt=salt, created_at=now or datetime.now(timezone.utc),
                        promoted=promoted, counts=counts)
    return campaign, members


def launch_campaign(driver: Driver, spec: CampaignSpec, *, artifact: Artifact | None = None,
                    database: str = "neo4j", now: datetime | None = None) -> tuple[Campaign, list[tuple[str, Variant]]]:
    """Plan the campaign and store it with its audience (one transaction)."""
    campaign, members = plan_campaign(driver, spec, artifact=artifact, database=database, now=now)
    return create_campaign(driver, campaign, members, database=database), members
