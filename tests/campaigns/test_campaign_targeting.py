"""Targeting and storage on the small shop in the real Neo4j: each policy against an independent
computation from the shop's own data; campaigns written whole or not at all."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest

from graphrec.artifact import Artifact
from graphrec.campaigns import store
from graphrec.campaigns.model import Audience, CampaignSpec, assign_variant
from graphrec.campaigns.targeting import launch_campaign, plan_campaign, select_audience

pytestmark = pytest.mark.integration

ROCK = [f"p1{i:02d}" for i in range(10)]  # category c1 of the shop


def spec(**over) -> CampaignSpec:
    base = {"campaign_id": "rock", "name": "Rock week", "category_id": "c1",
            "offer": {"kind": "percent_off", "value": 15}, "start": "2026-03-01T00:00:00Z",
            "end": "2026-03-08T00:00:00Z", "audience": {"policy": "model", "size": 12}, "control_fraction": 0.25}
    base.update(over)
    return CampaignSpec(**base)


def buyers_of(shop, products) -> set[str]:
    return {u for u, p, _ in shop.bought if p in products}


def test_model_policy_is_max_affinity_over_promoted(shop_db, shop, shop_artifact):
    art = Artifact.load(shop_artifact)
    promoted = ROCK[:3]
    chosen = select_audience(shop_db, promoted, Audience(policy="model", size=8, exclude_buyers=True),
                             salt="s", artifact=art)
    excluded = buyers_of(shop, promoted)
    eligible = [u["id"] for u in shop.users if u["id"] not in excluded]
    scores = art.user_emb[[art.user_index[u] for u in eligible]] @ art.product_emb[[art.product_index[p] for p in promoted]].T
    expected = sorted(zip(eligible, scores.max(axis=1)), key=lambda us: (-us[1], us[0]))[:8]
    assert [u for u, _ in chosen] == [u for u, _ in expected]
    assert np.allclose([s for _, s in chosen], [s for _, s in expected], atol=1e-5)
    assert not excluded & {u for u, _ in chosen}


def test_model_policy_finds_the_category_s_fans(shop_db, shop, shop_artifact):
    art = Artifact.load(shop_artifact)
    chosen = select_audience(shop_db, ROCK, Audience(policy="model", size=6, exclude_buyers=False), salt="s",
                             artifact=art)
    fans = {u["id"] for u in shop.users if u["taste"] == "c1"}
    assert len(fans & {u for u, _ in chosen}) >= 5


def test_friends_bought_counts_friends_either_way_and_follows(shop_db, shop):
    promoted = ROCK[:4]
    chosen = select_audience(shop_db, promoted, Audience(policy="friends_bought", size=100, exclude_buyers=True),
                             salt="s")
    buyers = buyers_of(shop, promoted)
    social: dict[str, set[str]] = {}
    for a, b in shop.friends:
        social.setdefault(a, set()).add(b)
        social.setdefault(b, set()).add(a)
    for a, b in shop.follows:  # a follows b: b's purchases count for a
        social.setdefault(a, set()).add(b)
    expected = {u: len(friends & buyers) for u, friends in social.items()
                if u not in buyers and friends & buyers}
    assert dict(chosen) == {u: float(n) for u, n in expected.items()}
    assert [u for u, _ in chosen] == sorted(expected, key=lambda u: (-expected[u], u))


def test_popular_ranks_the_category_s_best_buyers(shop_db, shop):
    chosen = select_audience(shop_db, ROCK[:1], Audience(policy="popular", size=24, exclude_buyers=False), salt="s")
    in_cat = Counter(u for u, p, _ in shop.bought if p in ROCK)
    total = Counter(u for u, _, _ in shop.bought)
    expected = sorted((u["id"] for u in shop.users), key=lambda u: (-in_cat[u], -total[u], u))
    assert [u for u, _ in chosen] == expected


def test_random_is_seeded_by_the_salt(shop_db):
    a = select_audience(shop_db, ROCK, Audience(policy="random", size=10, exclude_buyers=False), salt="one")
    b = select_audience(shop_db, ROCK, Audience(policy="random", size=10, exclude_buyers=False), salt="one")
    c = select_audience(shop_db, ROCK, Audience(policy="random", size=10, exclude_buyers=False), salt="two")
    assert a == b and [u for u, _ in a] != [u for u, _ in c] and len(a) == 10


def test_launch_stores_campaign_and_split(shop_db, shop, shop_artifact):
    art = Artifact.load(shop_artifact)
    now = datetime(2026, 2, 1, tzinfo=timezone.utc)
    planned, members = plan_campaign(shop_db, spec(), artifact=art, now=now)
    assert planned.promoted == ROCK and len(members) == 12
    assert all(v == assign_variant("rock", u, 0.25) for u, v in members)
    stored, _ = launch_campaign(shop_db, spec(), artifact=art, now=now)
    assert stored.counts == dict(Counter(v for _, v in members)) | {k: 0 for k in ("treatment", "control")
                                                                      if k not in {v for _, v in members}}
    again = store.get_campaign(shop_db, "rock")
    assert again == stored
    frame = store.assignments(shop_db, "rock")
    assert sorted(zip(frame["user_id"], frame["variant"])) == sorted(members)
    assert [c.campaign_id for c in store.list_campaigns(shop_db)] == ["rock"]
    with shop_db.session() as s:
        promotes = s.run("MATCH (:Campaign {id: 'rock'})-[:PROMOTES]->(n) RETURN labels(n)[0] AS l, n.id AS id").data()
    assert promotes == [{"l": "Category", "id": "c1"}]


def test_audience_pages_cover_everyone_once(shop_db, shop_artifact):
    launch_campaign(shop_db, spec(audience={"policy": "random", "size": 20, "exclude_buyers": False}))
    seen, cursor = [], None
    while True:
        ids, cursor = store.audience_page(shop_db, "rock", None, cursor, 6)
        seen += ids
        if cursor is None:
            break
    assert len(seen) == 20 == len(set(seen)) and seen == sorted(seen)
    treated, _ = store.audience_page(shop_db, "rock", "treatment", None, 100)
    control, _ = store.audience_page(shop_db, "rock", "control", None, 100)
    assert sorted(treated + control) == seen and not set(treated) & set(control)


def test_duplicate_id_and_unknown_references_write_nothing(shop_db):
    launch_campaign(shop_db, spec(audience={"policy": "random", "size": 5}))
    with pytest.raises(store.CampaignExists):
        launch_campaign(shop_db, spec(audience={"policy": "random", "size": 9}))
    assert store.get_campaign(shop_db, "rock").counts["treatment"] + store.get_campaign(shop_db, "rock").counts["control"] == 5
    with pytest.raises(store.UnknownReference) as err:
        launch_campaign(shop_db, spec(campaign_id="x", category_id=None, products=["p100", "ghost"],
                                      audience={"policy": "random", "size": 5}))
    assert err.value.field == "products[1]"
    with pytest.raises(store.UnknownCampaign):
        store.get_campaign(shop_db, "x")


def test_a_member_missing_from_the_graph_aborts_the_whole_write(shop_db):
    planned, members = plan_campaign(shop_db, spec(campaign_id="half", audience={"policy": "random", "size": 5}))
    with pytest.raises(store.UnknownReference):
        store.create_campaign(shop_db, planned, members + [("nobody", "treatment")])
    with pytest.raises(store.UnknownCampaign):
        store.get_campaign(shop_db, "half")
