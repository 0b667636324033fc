"""Campaigns in Neo4j, as part of the graph, so analysts can query them with Cypher.

``(:Campaign {...})-[:PROMOTES]->(:Product|:Category)`` and ``(:User)-[:ASSIGNED {variant, at}]->
(:Campaign)``; labels and types come from :mod:`graphrec.schema`. A campaign and its whole audience
are written in one transaction (audience in UNWIND batches), so a campaign never exists half
assigned. Every function takes the driver first and the database by keyword.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterable, Sequence

import neo4j
import pandas as pd
from neo4j import Driver
from neo4j.exceptions import ConstraintError

from graphrec import schema
from graphrec.campaigns.model import VARIANTS, Campaign, Variant
from graphrec.serving.service import UnknownId
from graphrec.serving.writes import AlreadyExists

CAMPAIGN, PROMOTES, ASSIGNED = schema.CAMPAIGN, schema.PROMOTES, schema.ASSIGNED
U, P, C = schema.USER, schema.PRODUCT, schema.CATEGORY
# Rows per UNWIND statement when writing or reading an audience.
BATCH = 10_000


class UnknownCampaign(UnknownId):
    """No campaign with this id (the API answers 404)."""

    def __init__(self, campaign_id: str) -> None:
        super().__init__("campaign_id", f"campaign_id: no campaign {campaign_id!r}")
        self.campaign_id = campaign_id


class CampaignExists(AlreadyExists):
    """A campaign with this id is already stored (the API answers 409)."""


class UnknownReference(LookupError):
    """The spec names products or a category the graph does not have; ``field`` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _native(value: Any) -> Any:
    """Neo4j temporal values -> Python datetimes (UTC)."""
    if hasattr(value, "to_native"):
        value = value.to_native()
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return value


# -- resolving what a campaign promotes ------------------------------------------------------------
_RESOLVE = f"""
CALL () {{
  UNWIND $products AS pid
  OPTIONAL MATCH (p:{P.label} {{{P.key}: pid}})
  RETURN collect(CASE WHEN p IS NULL THEN pid END) AS missing
}}
CALL () {{
  OPTIONAL MATCH (c:{C.label} {{{C.key}: $category}})
  OPTIONAL MATCH (p:{P.label})-[:{schema.IN_CATEGORY.type}]->(:{C.label})
                 -[:{schema.SUBCATEGORY_OF.type}*0..]->(c)
  RETURN c IS NOT NULL AS category_found, collect(DISTINCT p.{P.key}) AS in_category
}}
RETURN missing, category_found, in_category
"""


def resolve_products(driver: Driver, products: Sequence[str], category_id: str | None, *,
                     database: str = "neo4j") -> list[str]:
    """The promoted product ids: ``products`` plus every product in ``category_id`` or one of its
    subcategories, in that order, without repeats. Unknown ids raise :class:`UnknownReference`."""
    # A graph without subcategories is fine: silence Neo4j's "unknown relationship type" notice.
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS,
                        notifications_min_severity="OFF") as session:
        record = session.run(_RESOLVE, products=list(products), category=category_id).single()
    missing = [m for m in record["missing"] if m is not None]
    if missing:
        index = list(products).index(missing[0])
        raise UnknownReference(f"products[{index}]", f"products[{index}]: no product {missing[0]!r} "
                               f"({len(missing)} unknown in all)")
    if category_id is not None and not record["category_found"]:
        raise UnknownReference("category_id", f"category_id: no category {category_id!r}")
    promoted = list(dict.fromkeys([*products, *sorted(record["in_category"])]))
    if not promoted:
        raise UnknownReference("category_id", f"category_id: category {category_id!r} has no products")
    return promoted


# -- writing -------------------------------------------------------------------------------------------
_CREATE = f"""
CREATE (c:{CAMPAIGN.label} $props)
WITH c
CALL (c) {{
  UNWIND $products AS pid
  MATCH (p:{P.label} {{{P.key}: pid}})
  CREATE (c)-[:{PROMOTES.type}]->(p)
  RETURN count(*) AS products
}}
CALL (c) {{
  OPTIONAL MATCH (cat:{C.label} {{{C.key}: $category}})
  FOREACH (_ IN CASE WHEN cat IS NULL THEN [] ELSE [1] END | CREATE (c)-[:{PROMOTES.type}]->(cat))
  RETURN count(*) AS categories
}}
RETURN c.{CAMPAIGN.key} AS id
"""

_ASSIGN = f"""
MATCH (c:{CAMPAIGN.label} {{{CAMPAIGN.key}: $id}})
UNWIND $rows AS row
MATCH (u:{U.label} {{{U.key}: row.user_id}})
CREATE (u)-[:{ASSIGNED.type} {{variant: row.variant, at: $at}}]->(c)
RETURN count(*) AS n
"""


def _props(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.campaign_id, "name": campaign.name, "salt": campaign.salt,
        "created_at": campaign.created_at, "start": campaign.start, "end": campaign.end,
        "offer_kind": campaign.offer.kind, "offer_value": campaign.offer.value,
        "policy": campaign.audience.policy, "audience_size": campaign.audience.size,
        "exclude_buyers": campaign.audience.exclude_buyers, "control_fraction": campaign.control_fraction,
        "cap_per_user_per_day": campaign.cap.per_user_per_day, "category_id": campaign.category_id,
        "products": list(campaign.products), "promoted": list(campaign.promoted),
        "treatment": int(campaign.counts.get("treatment", 0)), "control": int(campaign.counts.get("control", 0)),
    }


def create_campaign(driver: Driver, campaign: Campaign, members: Sequence[tuple[str, Variant]], *,
                    database: str = "neo4j") -> Campaign:
    """Store the campaign, its PROMOTES edges and one ASSIGNED edge per member, all in one
    transaction; returns the campaign with ``counts`` taken from ``members``. Members must be users
    of the graph (a missing one aborts the whole write)."""
    counts = {v: 0 for v in VARIANTS}
    for _, variant in members:
        counts[variant] += 1
    stored = campaign.model_copy(update={"counts": counts})
    props = _props(stored)
    rows = [{"user_id": u, "variant": v} for u, v in members]

    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(_CREATE, props=props, products=list(stored.products), category=stored.category_id).consume()
        written = 0
        for lo in range(0, len(rows), BATCH):
            written += tx.run(_ASSIGN, id=stored.campaign_id, rows=rows[lo:lo + BATCH],
                              at=stored.created_at).single()["n"]
        if written != len(rows):
            # Raising rolls the transaction back: nothing of the campaign is kept.
            raise UnknownReference("audience", f"audience: {len(rows) - written} users are not in the graph")

    try:
        with driver.session(database=database) as session:
            session.execute_write(work)
    except ConstraintError:
        raise CampaignExists(f"campaign_id: campaign {campaign.campaign_id!r} already exists") from None
    return stored


# -- reading ---------------------------------------------------------------------------------------
def _campaign(props: dict[str, Any]) -> Campaign:
    p = {k: _native(v) for k, v in props.items()}
    return Campaign(
        campaign_id=p["id"], name=p["name"], products=list(p.get("products") or []),
        category_id=p.get("category_id"), offer={"kind": p["offer_kind"], "value": p["offer_value"]},
        start=p["start"], end=p["end"],
        audience={"policy": p["policy"], "size": p["audience_size"], "exclude_buyers": p["exclude_buyers"]},
        control_fraction=p["control_fraction"], cap={"per_user_per_day": p["cap_per_user_per_day"]},
        salt=p["salt"], created_at=p["created_at"], promoted=list(p.get("promoted") or []),
        counts={"treatment": int(p.get("treatment") or 0), "control": int(p.get("control") or 0)},
    )


def _read(driver: Driver, database: str, cypher: str, **params: Any) -> list[neo4j.Record]:
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        return list(session.run(cypher, **params))


def get_campaign(driver: Driver, campaign_id: str, *, database: str = "neo4j") -> Campaign:
    """The stored campaign; :class:`UnknownCampaign` if there is none."""
    rows = _read(driver, database, f"MATCH (c:{CAMPAIGN.label} {{{CAMPAIGN.key}: $id}}) RETURN properties(c) AS p",
                 id=campaign_id)
    if not rows:
        raise UnknownCampaign(campaign_id)
    return _campaign(rows[0]["p"])


def list_campaigns(driver: Driver, *, database: str = "neo4j") -> list[Campaign]:
    """Every campaign, newest first (then by id)."""
    rows = _read(driver, database, f"MATCH (c:{CAMPAIGN.label}) RETURN properties(c) AS p "
                                   f"ORDER BY c.created_at DESC, c.{CAMPAIGN.key}")
    return [_campaign(r["p"]) for r in rows]


def assignments(driver: Driver, campaign_id: str, *, database: str = "neo4j") -> pd.DataFrame:
    """The audience: one row per member, columns ``user_id, variant, at`` (UTC), ordered by user id."""
    get_campaign(driver, campaign_id, database=database)  # 404 rather than an empty frame
    rows = _read(driver, database,
                 f"MATCH (u:{U.label})-[a:{ASSIGNED.type}]->(:{CAMPAIGN.label} {{{CAMPAIGN.key}: $id}}) "
                 f"RETURN u.{U.key} AS user_id, a.variant AS variant, a.at AS at ORDER BY user_id",
                 id=campaign_id)
    frame = pd.DataFrame([(r["user_id"], r["variant"], _native(r["at"])) for r in rows],
                         columns=["user_id", "variant", "at"])
    frame["at"] = pd.to_datetime(frame["at"], utc=True)
    return frame


def all_assignments(driver: Driver, *, database: str = "neo4j") -> Iterable[tuple[str, str, str]]:
    """(campaign id, user id, variant) for every campaign: what the offers registry loads at start."""
    rows = _read(driver, database,
                 f"MATCH (u:{U.label})-[a:{ASSIGNED.type}]->(c:{CAMPAIGN.label}) "
                 f"RETURN c.{CAMPAIGN.key} AS c, u.{U.key} AS u, a.variant AS v")
    return [(r["c"], r["u"], r["v"]) for r in rows]


def audience_page(driver: Driver, campaign_id: str, variant: Variant | None = None, cursor: str | None = None,
                  limit: int = 1000, *, database: str = "neo4j") -> tuple[list[str], str | None]:
    """One page of the audience, by user id: ``(user_ids, next_cursor)``; ``next_cursor`` is the
    last id of the page when more follow (pass it back as ``cursor``), else ``None``."""
    get_campaign(driver, campaign_id, database=database)
    rows = _read(driver, database,
                 f"MATCH (u:{U.label})-[a:{ASSIGNED.type}]->(:{CAMPAIGN.label} {{{CAMPAIGN.key}: $id}}) "
                 f"WHERE ($variant IS NULL OR a.variant = $variant) AND ($cursor IS NULL OR u.{U.key} > $cursor) "
                 f"RETURN u.{U.key} AS id ORDER BY id LIMIT $limit",
                 id=campaign_id, variant=variant, cursor=cursor, limit=limit + 1)
    ids = [r["id"] for r in rows]
    more = len(ids) > limit
    ids = ids[:limit]
    return ids, (ids[-1] if more and ids else None)
