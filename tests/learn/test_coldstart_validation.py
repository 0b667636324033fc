"""The fold-in's weights are chosen on validation and never lose to popularity (issue 11, section 1).

Small synthetic shops (graphrec.datasets.synthetic) read straight into Interactions: one where
friends are random and purchases ignore them (no homophily), one where friends share a favourite
subcategory and copy each other's purchases (strong homophily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from graphrec.artifact import Artifact
from graphrec.coldstart import DEFAULT_WEIGHTS, fold_in_user
from graphrec.learn.coldstart_validation import POPULARITY_ONLY, Carve, Neighbours, choose_weights, validation_users
from graphrec.datasets.synthetic import ShopShape, generate_shop
from graphrec.learn.report import evaluate
from graphrec.learn.interactions import Interactions, carve_validation
from graphrec.learn.config import TrainConfig
from graphrec.learn.train import Trainer, build_artifact


def shop(out: Path, shape: ShopShape, users: int = 1500, seed: int = 3) -> Interactions:
    generate_shop(users, out, seed=seed, shape=shape)
    products = pd.read_csv(out / "products.csv", dtype=str)
    bought = pd.read_csv(out / "interactions.csv", dtype=str)
    social = pd.read_csv(out / "social.csv", dtype=str)
    user_ids = [f"u{i}" for i in range(users)]
    urow = {u: i for i, u in enumerate(user_ids)}
    prow = {p: i for i, p in enumerate(products.product_id)}
    cats = sorted(set(products.category_id))
    crow = {c: i for i, c in enumerate(cats)}
    def edges(a: pd.Series, b: pd.Series) -> torch.Tensor:
        return torch.from_numpy(np.stack([a.to_numpy(), b.to_numpy()]).astype(np.int64))

    pairs = edges(bought.user_id.map(urow), bought.product_id.map(prow))
    rest, test = carve_validation(pairs, 0.2, seed)
    train, valid = carve_validation(rest, 0.1, seed + 1)
    return Interactions(
        users, len(prow), train, valid, test,
        social=edges(social.user_id.map(urow), social.other_user_id.map(urow)),
        item_category=edges(pd.Series(range(len(prow))), products.category_id.map(crow)),
        num_categories=len(cats), user_ids=user_ids, item_ids=list(products.product_id), category_ids=cats,
        snapshot_id=out.name)


def trained(data: Interactions, out: Path) -> Artifact:
    config = TrainConfig(dim=32, layers=2, epochs=25, batch_size=1024, negatives=128, lr=0.01, patience=5)
    return Artifact.load(build_artifact(Trainer(data, config).fit(), data, out))


def zero_slice(art: Artifact, data: Interactions) -> dict:
    report = evaluate(art, data, ks=(20,), baselines=("popular",), zero_sample=400)
    lift = report["lift_over_popular"]["zero_interaction_users"]
    assert lift["n_users"] == 400 and report["coldstart"]["weights"]["popularity"] == art.coldstart["popularity"]
    return lift


def test_no_homophily_degrades_to_popularity(tmp_path):
    data = shop(tmp_path / "random-friends", ShopShape(homophily=0.0, social_share=0.0))
    art = trained(data, tmp_path / "model")
    record = art.coldstart_validation
    assert record["n_users"] > 100 and record["metric"] == "recall@20"
    # Friends say nothing about taste here: validation falls back to popularity alone.
    assert record["fallback"] and {k: art.coldstart[k] for k in POPULARITY_ONLY} == POPULARITY_ONLY
    lift = zero_slice(art, data)
    # Zero-interaction users get most-popular's recall, within noise (the old friends-first
    # defaults gave 0.95x on this shop).
    assert lift["high"] >= 1.0 and lift["lift"] >= 0.97, lift


def test_strong_homophily_trusts_friends_and_beats_popular(tmp_path):
    data = shop(tmp_path / "homophily", ShopShape(homophily=1.0, taste_share=0.5, social_share=0.4))
    art = trained(data, tmp_path / "model")
    assert not art.coldstart_validation["fallback"]
    assert art.coldstart["friends"] > 0
    lift = zero_slice(art, data)
    assert lift["verdict"] == "better" and lift["low"] > 1.0, lift


def test_validation_embeds_users_exactly_as_the_api_does_and_weighs_trust_directions_apart(tmp_path):
    from tests.learn.test_training import planted

    data = planted(users=240, items=80)
    g = torch.Generator().manual_seed(5)
    half = data.num_users // 2
    # Directed trust only: u follows 3 random users (no signal); 3 users of u's community follow u.
    follow, followed_by = [], []
    for u in range(data.num_users):
        lo = 0 if u < half else half
        follow += [[u, int(v)] for v in torch.randint(0, data.num_users, (3,), generator=g)]
        followed_by += [[int(v) + lo, u] for v in torch.randint(0, half, (3,), generator=g)]
    edges = torch.tensor([e for e in follow + followed_by if e[0] != e[1]]).t()
    data.social, data.follows = edges, edges
    config = TrainConfig(dim=16, layers=2, epochs=20, batch_size=256, negatives=32, lr=0.02, patience=20)
    art = Artifact.load(build_artifact(Trainer(data, config).fit(), data, tmp_path / "model"))
    nb = Neighbours.of(data)
    assert not any(nb.friends) and nb.follows[0] and nb.followers[0]
    assert art.coldstart["followers"] > 0 and art.coldstart["followers"] > art.coldstart["follows"]
    assert not art.coldstart_validation["fallback"]
    # The validation's batched fold-in is the API's fold_in_user, user by user.
    users = validation_users(data, nb, 50, seed=1)
    carve = Carve(art, data, users, nb)
    weights = {"friends": 0.5, "follows": 0.25, "followers": 1.0, "prior": 0.1, "popularity": 2.0}
    batched = carve.vectors(weights).numpy()
    one_by_one = np.stack([fold_in_user(art, weights={**weights, "products": 0.0, "categories": 0.0},
                                        **nb.fold_in_args(u, data.user_ids)) for u in users])
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-5, atol=1e-6)


def test_no_social_edges_means_popularity_and_old_artifacts_keep_their_weights(tmp_path):
    from tests.learn.test_training import planted

    data = planted()
    data.social = data.social[:, :0]  # Gowalla-like: nobody to fold in from
    result = Trainer(data, TrainConfig(dim=8, layers=1, epochs=2, batch_size=256, negatives=16)).fit()
    path = build_artifact(result, data, tmp_path / "model")
    art = Artifact.load(path)
    assert {k: art.coldstart[k] for k in POPULARITY_ONLY} == POPULARITY_ONLY
    assert art.coldstart_validation["n_users"] == 0
    weights, record = choose_weights(art, data)
    assert weights == POPULARITY_ONLY and record["fallback"]
    # The popularity fold-in ranks exactly like most-popular (the artifact's popularity column),
    # while trained users' scores ignore that column.
    top = np.argsort(-(art.product_emb @ fold_in_user(art)), kind="stable")[:20]
    assert sorted(art.popularity[top].tolist(), reverse=True) == sorted(art.popularity.tolist(), reverse=True)[:20]
    assert art.user_emb.shape[1] == 9 and not art.user_emb[:, -1].any()
    trained_items = art.popularity > 0
    np.testing.assert_allclose((art.user_emb @ art.product_emb.T)[:, trained_items],
                               (result.user_emb.numpy() @ result.item_emb.numpy().T)[:, trained_items],
                               rtol=1e-4, atol=1e-5)
    # An artifact written before the validated fold-in (no weights, no record) still loads and
    # folds in with the defaults: follows count like friends, no popularity direction.
    import json

    manifest = json.loads((path / "manifest.json").read_text())
    manifest["coldstart"] = {}
    del manifest["coldstart_validation"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    old = Artifact.load(path)
    assert old.coldstart == {} and old.coldstart_validation == {}
    ids = old.user_ids[:3]
    np.testing.assert_allclose(fold_in_user(old, follows=ids), fold_in_user(old, friends=ids), rtol=1e-6)
    assert DEFAULT_WEIGHTS["popularity"] == 0.0 and DEFAULT_WEIGHTS["followers"] == 0.0
