"""The synthetic shop: deterministic per seed, valid, and shaped like a shop (power law, homophily)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from graphrec.datasets.synthetic import generate_shop
from graphrec.ingest import validate_directory
from graphrec.store.loader import load_directory


def digest(directory) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.glob("*.csv"))}


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a = generate_shop(1_500, tmp_path / "a", seed=7)
    b = generate_shop(1_500, tmp_path / "b", seed=7)
    c = generate_shop(1_500, tmp_path / "c", seed=8)
    assert a["written"] == b["written"] and digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a")["interactions.csv"] != digest(tmp_path / "c")["interactions.csv"]


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    report = generate_shop(5_000, out, seed=3)
    return out, report


def test_generated_shop_is_valid_canonical_input(shop):
    out, report = shop
    graph, validation = validate_directory(out)
    assert validation.ok, validation.messages()[:5]
    counts = graph.expected_counts()
    assert counts["nodes"]["User"] == 5_000 and counts["nodes"]["Product"] == report["written"]["products"]
    assert counts["relationships"]["BOUGHT"] == report["written"]["interactions"]  # one row per pair already
    assert counts["relationships"]["FRIEND"] == report["written"]["social"]
    assert 6 <= report["written"]["interactions"] / 5_000 <= 11  # ~10 purchases, repeats merged
    ts = pd.to_datetime(pd.read_csv(out / "interactions.csv")["ts"], utc=True)
    assert ts.min().year == 2024 and ts.max().year == 2024


def test_popularity_is_heavy_tailed_and_friends_are_alike(shop):
    out, _ = shop
    buys = pd.read_csv(out / "interactions.csv")
    per_product = buys["product_id"].value_counts().to_numpy()
    top = per_product[: max(1, len(per_product) // 10)].sum() / per_product.sum()
    assert top > 0.4, f"top 10% of products have only {top:.0%} of purchases"
    products = pd.read_csv(out / "products.csv").set_index("product_id")
    buys["category"] = buys["product_id"].map(products["category_id"])
    taste = buys.groupby("user_id")["category"].agg(lambda s: s.value_counts().index[0])
    friends = pd.read_csv(out / "social.csv")
    same = (friends["user_id"].map(taste) == friends["other_user_id"].map(taste)).mean()
    rng = np.random.default_rng(0)
    strangers = (taste.to_numpy()[rng.integers(0, len(taste), 20_000)]
                 == taste.to_numpy()[rng.integers(0, len(taste), 20_000)]).mean()
    assert same > 2 * strangers, (same, strangers)


def test_purchases_follow_friends(shop):
    out, _ = shop
    buys = pd.read_csv(out / "interactions.csv")[["user_id", "product_id"]]
    friends = pd.read_csv(out / "social.csv")
    pairs = pd.concat([friends, friends.rename(columns={"user_id": "other_user_id", "other_user_id": "user_id"})])
    shared = pairs.merge(buys, on="user_id").merge(buys.rename(columns={"user_id": "other_user_id"}),
                                                    on=["other_user_id", "product_id"])
    users = buys["user_id"].unique()
    rng = np.random.default_rng(1)
    fake = pd.DataFrame({"user_id": rng.choice(users, len(pairs)), "other_user_id": rng.choice(users, len(pairs))})
    chance = fake.merge(buys, on="user_id").merge(buys.rename(columns={"user_id": "other_user_id"}),
                                                  on=["other_user_id", "product_id"])
    assert len(shared) > 1.5 * len(chance), (len(shared), len(chance))


@pytest.mark.integration
def test_generated_shop_loads(empty_db, tmp_path):
    report = generate_shop(300, tmp_path, seed=1)
    result = load_directory(empty_db, tmp_path, progress=False)
    assert result.nodes["User"] == 300 and result.relationships["BOUGHT"] == report["written"]["interactions"]
    assert result.relationships["SUBCATEGORY_OF"] > 0 and result.relationships["IN_CATEGORY"] == result.nodes["Product"]


def test_generate_command_writes_the_shop_and_prints_json(tmp_path):
    import json

    from typer.testing import CliRunner

    from graphrec.cli import app as cli

    result = CliRunner().invoke(cli, ["generate", "--users", "200", "--out", str(tmp_path), "--seed", "5"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["written"]["users"] == 200 and report["seed"] == 5
    assert (tmp_path / "social.csv").exists()
