"""The heterogeneous SAGE is inductive for products: a product nobody bought is embedded from its
categories by a trained content tower, and the artifact, ``evaluate`` and serving embed it alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from graphrec.artifact import Artifact
from graphrec.coldstart import fold_in_product
from graphrec.learn.config import TrainConfig
from graphrec.learn.evaluate import EvalContext, evaluate_artifact
from graphrec.learn.interactions import Interactions
from graphrec.learn.models import build_model
from graphrec.learn.train import Trainer, build_artifact

CATS = 4  # taste communities, one category each


def shop(seed: int = 0, users: int = 160, per_cat: int = 20, cold_per_cat: int = 4) -> Interactions:
    """Users of community k buy products of category k; the last ``cold_per_cat`` products of each
    category are bought in test only (never in training): the cold products."""
    g = torch.Generator().manual_seed(seed)
    items = CATS * per_cat
    cat = torch.arange(items) // per_cat
    cold = (torch.arange(items) % per_cat) >= per_cat - cold_per_cat
    train, valid, test = [], [], []
    for u in range(users):
        k = u % CATS
        warm = torch.nonzero((cat == k) & ~cold).flatten()
        for n, i in enumerate(warm[torch.randperm(warm.numel(), generator=g)[:10]].tolist()):
            (valid if n == 0 else train).append((u, i))
        coldk = torch.nonzero((cat == k) & cold).flatten()
        test.append((u, int(coldk[torch.randint(coldk.numel(), (1,), generator=g)])))
    pairs = lambda p: torch.tensor(p).t()  # noqa: E731
    return Interactions(users, items, pairs(train), pairs(valid), pairs(test),
                        item_category=torch.stack([torch.arange(items), cat]), num_categories=CATS,
                        user_ids=[f"u{i}" for i in range(users)], item_ids=[f"p{i}" for i in range(items)],
                        category_ids=[f"c{k}" for k in range(CATS)], snapshot_id="shop")


def test_a_product_without_purchases_is_embedded_from_its_categories():
    data = shop()
    model = build_model("sage", data, TrainConfig(model="sage", dim=8, layers=2))
    cold = int(torch.nonzero(data.popularity() == 0)[0])
    emb, offset = model.content()
    assert emb[cold].norm() > 0
    before = emb[cold].clone()
    cat = int(data.item_category[1, cold])
    with torch.no_grad():  # its category's embedding moves it; another category's does not
        model.cat_emb.weight[(cat + 1) % CATS] += 1.0
        assert torch.allclose(model.content()[0][cold], before)
        model.cat_emb.weight[cat] += 1.0
        assert not torch.allclose(model.content()[0][cold], before)
    # Two products with the same categories get the same content embedding, purchases or not.
    same = torch.nonzero(data.item_category[1] == cat).flatten()
    assert torch.allclose(model.content()[0][same[0]], model.content()[0][cold])


@pytest.mark.parametrize("loss", ["softmax", "bpr"])
def test_training_trains_the_content_tower(loss):
    data = shop()
    trainer = Trainer(data, TrainConfig(model="sage", loss=loss, dim=8, layers=2, epochs=2, batch_size=256,
                                        negatives=32, lr=0.02, item_bias=loss == "softmax"))
    trainer.fit()
    # Both start at the identity map and zero offsets: only the content loss moves them.
    assert not torch.allclose(trainer.model.content_in.weight, torch.eye(8))
    if loss == "softmax":
        assert trainer.model.cat_bias.abs().max() > 0


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data = shop()
    cfg = TrainConfig(model="sage", dim=16, layers=2, epochs=20, batch_size=256, negatives=32, lr=0.02,
                      item_bias=True, patience=20)
    result = Trainer(data, cfg).fit()
    return data, result, Artifact.load(build_artifact(result, data, tmp_path_factory.mktemp("m") / "sage"))


def test_artifact_serves_the_content_tower_for_cold_products(trained):
    data, result, art = trained
    assert art.coldstart["product_content"] == 1.0
    # sage is for cold start: the circle term, which costs its cold slices, is off unless asked for
    assert art.manifest["circle"]["turned_off"] and "off by default for sage (--circle turns it on)" == art.manifest["circle"]["reason"]
    with torch.no_grad():
        emb, offset = result.model.content()
    cold = torch.nonzero(data.popularity() == 0).flatten().tolist()
    cats = data.item_categories()
    for p in cold:
        row = art.product_emb[p]
        # The row the artifact stores is the tower's (unit direction as trained, its offset) ...
        assert np.allclose(row[:16], F.normalize(emb[p], dim=0).numpy(), atol=1e-5)
        assert row[16] == pytest.approx(float(offset[p]), abs=1e-5)
        # ... and exactly what the fold-in (serving, evaluate) computes from the categories.
        folded = fold_in_product(art, categories=[art.category_ids[c] for c in cats[p]])
        assert np.allclose(folded, row, atol=1e-6)


def test_serving_adds_a_new_product_as_evaluate_measures_it(trained):
    from graphrec.serving.recommender import Recommender

    data, _, art = trained
    cold = int(torch.nonzero(data.popularity() == 0)[0])
    rec = Recommender(art)
    row = rec.add_product("brand-new", [art.category_ids[int(data.item_category[1, cold])]], None)
    assert np.allclose(rec.view.emb[row], art.product_emb[cold], atol=1e-6)


def test_content_tower_finds_cold_products_for_their_community(trained):
    data, _, art = trained
    report = evaluate_artifact(art, EvalContext.build(data), ks=(10,))
    # 16 cold products, 4 per community: a user's own community's cold products must rank high.
    assert report["slices"]["cold_products"]["recall@10"] > 0.5
