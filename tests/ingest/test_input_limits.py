"""The store's limits in file validation (graphrec.limits), without a database.

The refusals themselves, with their messages, are cases of ``BAD_CASES`` (tests/ingest/shop.py),
which run here and against the real Neo4j in tests/store/test_loader.py. This file covers what a
case list cannot: Parquet's typed columns, values exactly at the limits, headers, and that the
vectorised id check agrees with the rule it speeds up.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphrec import limits
from graphrec.ingest import validate_directory
from ingest.shop import BASE, write_shop


def to_parquet(shop, name: str, frame: pd.DataFrame) -> None:
    frame.to_parquet(shop / f"{name}.parquet", index=False)
    (shop / f"{name}.csv").unlink()


def test_parquet_infinities_are_reported_with_file_row_and_column(tmp_path):
    shop = write_shop(tmp_path)
    products = pd.read_csv(shop / "products.csv", dtype=str, keep_default_na=False)
    products["price"] = [9.99, np.inf, 1.5, np.nan]  # typed float column, integral otherwise
    to_parquet(shop, "products", products)
    inter = pd.read_csv(shop / "interactions.csv", dtype=str, keep_default_na=False)
    inter["weight"] = [1.0, 2.0, -np.inf, np.nan, 3.0, 4.0]
    inter["ts"] = [1.7e9, np.inf, np.nan, 1.7e9, 1.7e9, 1.7e9]
    to_parquet(shop, "interactions", inter)
    users = pd.read_csv(shop / "users.csv", dtype=str, keep_default_na=False)
    users["score"] = [1.0, np.inf, 2.0, np.nan]  # an attribute: kept as text, never a float infinity
    to_parquet(shop, "users", users)
    graph, report = validate_directory(shop, skip_invalid=True)
    assert sorted(report.messages()) == sorted([
        "products.parquet:row 2: price 'inf' is not a finite number",
        "interactions.parquet:row 2: ts 'inf' is neither ISO-8601 nor unix seconds",
        "interactions.parquet:row 3: weight '-inf' is not a finite number",
    ])
    scores = graph.users.set_index("id")["score"]
    assert scores["u2"] == "inf" and scores["u1"] == "1" and pd.isna(scores["u4"])


def test_parquet_timestamps_beyond_year_9999_are_refused(tmp_path):
    shop = write_shop(tmp_path)
    inter = pd.read_csv(shop / "interactions.csv", dtype=str, keep_default_na=False)
    stamps = pa.array([0, 253402300800, 253402300799, -62135596800, -62135596801, None], type=pa.timestamp("s", "UTC"))
    table = pa.Table.from_pandas(inter.drop(columns="ts"), preserve_index=False).append_column("ts", stamps)
    pq.write_table(table, shop / "interactions.parquet")
    (shop / "interactions.csv").unlink()
    _, report = validate_directory(shop)
    assert report.messages() == [
        "interactions.parquet:row 2: ts '10000-01-01T00:00:00.000+00:00' is outside 0001-01-01 to 9999-12-31 (UTC)",
        "interactions.parquet:row 5: ts '0000-12-31T23:59:59.000+00:00' is outside 0001-01-01 to 9999-12-31 (UTC)",
    ]


def test_values_exactly_at_the_limits_are_accepted(tmp_path):
    longest_id = "u" + "€" * ((limits.ID_MAX_BYTES - 1) // 3)  # 1 + 3 * 341 = 1024 bytes
    assert len(longest_id.encode()) == limits.ID_MAX_BYTES
    longest_name = "é" * (limits.INDEX_KEY_MAX_BYTES // 2)
    shop = write_shop(tmp_path, append={
        "users.csv": f"{longest_id},Max,1\nu\u00e9\u4e2d\U0001f600 x,Unicode,2\n",
        "products.csv": f"p5,{longest_name},c3,1000000000000,\n",
        "interactions.csv": "u2,p5,0001-01-01T00:00:00Z,1000000,,\nu2,p3,9999-12-31T23:59:59.999Z,0.001,,\n"
                            "u3,p2,-62135596800,,view,\nu3,p1,253402300799.999,,view,\n",
    })
    graph, report = validate_directory(shop)
    assert report.ok, report.messages()
    assert longest_id in set(graph.users["id"]) and "u\u00e9\u4e2d\U0001f600 x" in set(graph.users["id"])
    ts = pd.concat(graph.interactions.values())["ts"]
    assert ts.min() == limits.TS_MIN_MS and ts.max() == limits.TS_MAX_MS


def test_duplicate_parquet_columns_are_refused(tmp_path):
    shop = write_shop(tmp_path)
    inter = pd.read_csv(shop / "interactions.csv", dtype=str, keep_default_na=False)
    table = pa.table([pa.array(inter["user_id"]), pa.array(inter["product_id"]), pa.array(inter["kind"])],
                     names=["user_id", "product_id", "user_id"])
    pq.write_table(table, shop / "interactions.parquet")
    (shop / "interactions.csv").unlink()
    _, report = validate_directory(shop)
    assert report.fatal == ["interactions.parquet:1: column user_id appears twice (columns 1 and 3)"]


def test_duplicate_user_columns_are_refused_by_their_real_name(tmp_path):
    # "age.1" is a legitimate name of its own, not a copy of "age".
    shop = write_shop(tmp_path, files={"users.csv": "user_id,age,age.1\nu1,1,2\nu2,,\nu3,,\nu4,,\n"})
    graph, report = validate_directory(shop)
    assert report.ok and set(graph.users.columns) == {"id", "age", "age.1"}
    shop = write_shop(tmp_path / "b", files={"users.csv": "user_id,name, name\nu1,a,b\nu2,,\nu3,,\nu4,,\n"})
    _, report = validate_directory(shop)
    assert report.fatal == ["users.csv:1: column name appears twice (columns 2 and 3)"]


def test_warnings_name_columns_as_they_are_in_the_file(tmp_path):
    text = BASE["interactions.csv"].replace("split\n", "split,note,\n", 1).replace(",train\n", ",train,x,\n")
    text = "\n".join(line if line.count(",") == 7 else line + ",," for line in text.splitlines()) + "\n"
    _, report = validate_directory(write_shop(tmp_path, files={"interactions.csv": text}))
    assert report.ok, report.messages()
    assert report.warnings == ["interactions.csv: ignoring unknown columns note, column 8 (no name)"]


def test_utf16_big_endian_and_utf32_are_named(tmp_path):
    for encoding, expected in (("utf-16-be", "looks like UTF-16-BE without a byte-order mark"),
                               ("utf-32", "UTF-32-LE, by its byte-order mark")):
        shop = write_shop(tmp_path / encoding, files={"users.csv": BASE["users.csv"].encode(encoding)})
        _, report = validate_directory(shop)
        assert report.fatal == [f"users.csv: not UTF-8 ({expected}); convert it to UTF-8"]


@pytest.mark.parametrize("value", [
    "u1", "", " u1", "u1 ", "a b", "x" * limits.ID_MAX_BYTES, "x" * (limits.ID_MAX_BYTES + 1),
    "é" * 512, "é" * 513, "\x00", "a\tb", "a\nb", "\x7f", "\x85", "\u00a0", "a\u00a0b", "\u200b", "\u200d",
    "\u202e", "\u2066", "\ufeff", "\u2028", "\ue000", "\U0001f600", "中文", "Zoë", "\ufffd", "\x1b[31m",
])
def test_the_vectorised_id_check_is_the_rule(value):
    assert limits.id_problems(pd.Series([value, "ok"], dtype=object)).tolist() == [limits.id_problem(value), None]


def test_random_ids_agree_with_the_rule():
    rng = np.random.default_rng(3)
    alphabet = [chr(c) for c in list(range(0, 0x250)) + list(range(0x2000, 0x2070)) + [0xfeff, 0xe000, 0x1f600]]
    values = ["".join(rng.choice(alphabet, size=int(rng.integers(0, 6)))) for _ in range(3000)]
    assert limits.id_problems(pd.Series(values, dtype=object)).tolist() == [limits.id_problem(v) for v in values]


def test_skip_invalid_still_accounts_for_every_row(tmp_path):
    shop = write_shop(tmp_path, append={
        "users.csv": "u\u202e5,Bidi,1\nu6,Fine,2\n",
        "interactions.csv": "u\u202e5,p1,,,,\nu6,p1,99999999999999999,,,\nu6,p2,,-3,,\nu6,p3,,2,,\n",
        "products.csv": "p5,Mug,c3,inf,\n",
    })
    graph, report = validate_directory(shop, skip_invalid=True)
    assert graph is not None
    for name, count in report.files.items():
        lines = len((shop / name).read_text(encoding="utf-8").splitlines()) - 1
        assert count.loaded + count.rejected == count.rows == lines, name
    assert report.files["users.csv"].rejected == 1 and report.files["products.csv"].rejected == 1
    assert report.files["interactions.csv"].rejected == 3
    reasons = set(report.problems["reason"])
    assert "user_id 'u\\u202e5' was rejected in users.csv" in reasons
    assert np.isfinite(pd.concat(graph.interactions.values())["weight"]).all()
