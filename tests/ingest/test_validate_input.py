"""Validation of the canonical input, without a database: every rule, its message and its line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from graphrec.ingest import validate_directory
from graphrec.ingest.validate import MAX_SHOWN
from ingest.shop import BAD_CASES, BASE, BASE_NODES, BASE_RELS, write_bad_shop, write_shop


def test_the_base_shop_is_valid_and_deduplicated(tmp_path):
    graph, report = validate_directory(write_shop(tmp_path))
    assert report.ok and report.messages() == []
    counts = graph.expected_counts()
    assert counts["nodes"] == BASE_NODES
    assert {k: v for k, v in counts["relationships"].items()} == BASE_RELS


def test_duplicate_interactions_sum_weights_and_keep_the_latest_time(tmp_path):
    graph, _ = validate_directory(write_shop(tmp_path))
    bought = graph.interactions["BOUGHT"].set_index(["user", "product"])
    row = bought.loc[("u1", "p1")]
    assert row["weight"] == 4.0  # 1 + 3
    # 2024-02-02T10:00+01:00 is later than 2024-01-02T10:00Z; stored in UTC milliseconds.
    assert row["ts"] == pd.Timestamp("2024-02-02T09:00:00Z").value // 10**6
    assert row["split"] == "train"
    # A missing weight counts 1; unix seconds and a naive ISO time (UTC) both parse.
    assert bought.loc[("u3", "p3"), "weight"] == 1.0 and np.isnan(bought.loc[("u3", "p3"), "ts"])
    assert bought.loc[("u1", "p2"), "ts"] == 1704190000 * 1000
    rated = graph.interactions["RATED"].iloc[0]
    assert rated["ts"] == pd.Timestamp("2024-05-05T12:00:00Z").value // 10**6 and rated["split"] == "valid"


def test_friendship_both_ways_is_one_pair_smaller_id_first(tmp_path):
    graph, _ = validate_directory(write_shop(tmp_path, append={"social.csv": "u4,u3,friend\nu4,u1,\n"}))
    friends = graph.social["FRIEND"]
    assert sorted(map(tuple, friends.to_numpy())) == [("u1", "u2"), ("u1", "u4"), ("u3", "u4")]
    assert (friends["start"] < friends["end"]).all()


def test_user_attribute_columns_are_typed(tmp_path):
    graph, _ = validate_directory(write_shop(tmp_path))
    users = graph.users.set_index("id")
    assert users.loc["u1", "age"] == 34 and isinstance(users.loc["u1", "age"], int)
    assert users.loc["u2", "age"] is None and users.loc["u4", "name"] == "Zoë"


@pytest.mark.parametrize("case, expected", [(c[1], c[2]) for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_input_is_refused_naming_file_line_and_column(tmp_path, case, expected):
    graph, report = validate_directory(write_bad_shop(tmp_path / "shop", case))
    assert graph is None and not report.ok
    assert report.messages()[0].startswith(expected)


def test_all_errors_are_collected_and_the_list_is_capped(tmp_path):
    bad = "".join(f"u1,p{900 + i},,,,\n" for i in range(120))
    _, report = validate_directory(write_shop(tmp_path, append={"interactions.csv": bad + "u1,p1,soon,,,\n"}))
    messages = report.messages()
    assert len(report.errors) == 121
    assert len(messages) == MAX_SHOWN + 1 and messages[-1] == f"... and {121 - MAX_SHOWN} more (121 errors in all)"
    assert messages[0] == "interactions.csv:8: product_id 'p900' is not defined in products.csv"


def test_identical_repeated_definitions_are_merged(tmp_path):
    graph, report = validate_directory(write_shop(tmp_path, append={"products.csv": "p1,Dune,c2,9.990,Ace\n",
                                                                    "categories.csv": "c1,Books,\n"}))
    assert report.ok and len(graph.products) == 4 and len(graph.categories) == 3


def test_line_numbers_survive_quoted_newlines_blank_lines_and_crlf(tmp_path):
    text = BASE["interactions.csv"].replace("\n", "\r\n") + '"u1","p2",,,"view",\r\n\r\n"u2","p9",,,,\r\n'
    _, report = validate_directory(write_shop(tmp_path / "a", files={"interactions.csv": text}))
    assert report.messages() == ["interactions.csv:10: product_id 'p9' is not defined in products.csv"]
    quoted = BASE["products.csv"] + 'p5,"Two\nlines",c1,1,\np6,Mug,c1,x,\n'
    _, report = validate_directory(write_shop(tmp_path / "b", files={"products.csv": quoted}))
    assert report.messages() == ["products.csv:8: price 'x' is not a number"]


def test_parquet_problems_name_the_row(tmp_path):
    shop = write_shop(tmp_path)
    frame = pd.read_csv(shop / "interactions.csv", dtype=str, keep_default_na=False)
    frame.loc[2, "product_id"] = "p404"
    frame.to_parquet(shop / "interactions.parquet", index=False)
    (shop / "interactions.csv").unlink()
    _, report = validate_directory(shop)
    assert report.messages() == ["interactions.parquet:row 3: product_id 'p404' is not defined in products.csv"]


def test_both_csv_and_parquet_of_one_file_is_ambiguous(tmp_path):
    shop = write_shop(tmp_path)
    pd.read_csv(shop / "users.csv").to_parquet(shop / "users.parquet")
    _, report = validate_directory(shop)
    assert report.fatal and "both users.csv and users.parquet exist" in report.fatal[0]


def test_a_million_interactions_validate_and_reconcile(tmp_path):
    # How fast is bench/load.py's to say (validation of 1M purchases: about 3.5 s): here, that a
    # million rows go through and every one is accounted for.
    rng = np.random.default_rng(0)
    n = 1_000_000
    shop = write_shop(tmp_path)
    users = pd.DataFrame({"user_id": [f"u{i}" for i in range(20_000)]})
    users.to_csv(shop / "users.csv", index=False)
    products = pd.DataFrame({"product_id": [f"p{i}" for i in range(5_000)], "category_id": "c1", "price": 1.0})
    products.to_csv(shop / "products.csv", index=False)
    (shop / "product_categories.csv").unlink()
    bought = pd.DataFrame({"user_id": "u" + pd.Series(rng.integers(0, 20_000, n)).astype(str),
                           "product_id": "p" + pd.Series(rng.integers(0, 5_000, n)).astype(str),
                           "ts": rng.integers(1.6e9, 1.7e9, n), "weight": 1.0})
    bought.to_csv(shop / "interactions.csv", index=False)
    (shop / "social.csv").write_text("user_id,other_user_id\nu1,u2\n")
    graph, report = validate_directory(shop)
    assert report.ok, report.messages()[:3]
    # Repeated purchases of a pair are one relationship: as many as there are distinct pairs.
    pairs = len(bought.drop_duplicates(["user_id", "product_id"]))
    assert pairs < n and graph.expected_counts()["relationships"]["BOUGHT"] == pairs
