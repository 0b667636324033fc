"""The circle term over real HTTP: a product's score is the model's dot product plus the artifact's
weight x (members of the user's circle who bought it) / sqrt(circle size), counted here in Neo4j."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from api.main import create_app
from graphrec.artifact import MANIFEST, Artifact
from graphrec.store.query import run_read

pytestmark = pytest.mark.integration

WEIGHT = 0.7
CIRCLE = """
MATCH (u:User {id: $u})-[:FRIEND]-(f:User) WHERE f <> u RETURN DISTINCT f.id AS id
UNION MATCH (u:User {id: $u})-[:FOLLOWS]->(f:User) WHERE f <> u RETURN DISTINCT f.id AS id
"""
BOUGHT_BY_CIRCLE = "MATCH (f:User)-[:BOUGHT]->(p:Product) WHERE f.id IN $circle RETURN p.id, count(DISTINCT f)"


@pytest.fixture
def circle_artifact(shop_artifact, tmp_path):
    out = tmp_path / "svd-circle"
    shutil.copytree(shop_artifact, out)
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["circle"] = {"weight": WEIGHT}
    (out / MANIFEST).write_text(json.dumps(manifest))
    return out


def test_scores_add_what_the_circle_bought(shop_db, shop, circle_artifact, neo4j_settings, kit):
    art = Artifact.load(circle_artifact)
    boosted = 0
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings), circle_artifact)) as live:
        for user in [u["id"] for u in shop.users]:
            circle = [r[0] for r in run_read(shop_db, CIRCLE, {"u": user}).rows]
            counts = dict(run_read(shop_db, BOUGHT_BY_CIRCLE, {"circle": circle}).rows)
            body = live.client.get(f"/users/{user}/recommendations", params={"k": 30, "explain": False}).json()
            assert body["source"] == "model" and len(body["items"]) == 30
            vector = art.user_emb[art.user_index[user]]
            for item in body["items"]:
                dot = float(art.product_emb[art.product_index[item["product_id"]]] @ vector)
                n = counts.get(item["product_id"], 0)
                expected = dot + WEIGHT * n / math.sqrt(max(len(circle), 1))
                assert item["score"] == pytest.approx(expected, rel=1e-5, abs=1e-5), (user, item, n, circle)
                boosted += n > 0
            scores = [i["score"] for i in body["items"]]
            assert scores == sorted(scores, reverse=True)
    assert boosted > 20  # the shop's circles bought plenty of what is recommended: the term was exercised


def test_a_user_without_a_circle_scores_by_the_model_alone(shop_db, shop, circle_artifact, neo4j_settings, kit):
    art = Artifact.load(circle_artifact)
    alone = [u["id"] for u in shop.users if not run_read(shop_db, CIRCLE, {"u": u["id"]}).rows]
    with shop_db.session() as s:  # make one if the shop has none: drop every social edge of u23
        s.run("MATCH (:User {id: 'u23'})-[r:FRIEND|FOLLOWS]-() DELETE r").consume()
    alone = sorted(set(alone) | {"u23"})
    with kit.LiveServer(create_app(kit.settings_for(neo4j_settings), circle_artifact)) as live:
        for user in alone:
            items = live.client.get(f"/users/{user}/recommendations", params={"k": 10, "explain": False}).json()["items"]
            vector = art.user_emb[art.user_index[user]]
            expected = np.array([art.product_emb[art.product_index[i["product_id"]]] @ vector for i in items])
            np.testing.assert_allclose([i["score"] for i in items], expected, rtol=1e-5, atol=1e-6)
