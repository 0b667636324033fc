"""The API's side of the input limits, over real HTTP: the same rules as the loader (graphrec.limits).

Each case checks that the API and file validation agree: what one refuses the other refuses too.
"""

from __future__ import annotations

import csv
import io
import json

import pytest

from graphrec import limits
from graphrec.ingest import validate_directory
from graphrec.store.query import run_read
from ingest.shop import write_shop

pytestmark = pytest.mark.integration

BAD_IDS = ["u\x00x", "u\u202ex", "u\u200bx", "u\u2066x", "u\ufeffx", " ux", "ux ", "u\nx", "",
           "x" * (limits.ID_MAX_BYTES + 1), "é" * 513]
GOOD_IDS = ["new-ü-中-😀", "a b", "x" * limits.ID_MAX_BYTES, "é" * 512]


def csv_line(*values: str) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def file_accepts(tmp_path, **append: str) -> bool:
    """Does file validation accept the base shop plus these lines (file stem -> CSV line)?"""
    graph, report = validate_directory(write_shop(tmp_path, append={f"{k}.csv": v for k, v in append.items()}))
    return graph is not None and report.ok


@pytest.mark.parametrize("bad", BAD_IDS, ids=range(len(BAD_IDS)))
def test_ids_outside_the_alphabet_are_refused_like_in_files(live, shop_db, tmp_path, bad):
    r = live.client.post("/users", json={"user_id": bad})
    assert r.status_code == 422 and r.json()["field"] == "user_id", r.text
    r = live.client.post("/users", json={"user_id": "fine1", "friends": ["u01", bad]})
    assert r.status_code == 422 and r.json()["field"] == "friends[1]", r.text
    r = live.client.post("/products", json={"product_id": bad, "name": "x", "category_id": "c1"})
    assert r.status_code == 422 and r.json()["field"] == "product_id", r.text
    assert run_read(shop_db, "MATCH (n) WHERE n.id IN [$a, 'fine1'] RETURN count(n)", {"a": bad}).rows == [[0]]
    assert not file_accepts(tmp_path, users=csv_line(bad, "X", "1"))


def test_ids_inside_the_alphabet_work_everywhere(live, shop_db, tmp_path):
    for i, good in enumerate(GOOD_IDS):
        r = live.client.post("/users", json={"user_id": good, "friends": ["u01"]})
        assert r.status_code == 201, r.text
        assert run_read(shop_db, "MATCH (u:User {id: $id}) RETURN count(u)", {"id": good}).rows == [[1]]
        assert file_accepts(tmp_path / str(i), users=csv_line(good, "X", "1"))


@pytest.mark.parametrize("price, ok", [(1e400, False), (-1, False), (limits.PRICE.le * 10, False),
                                       (limits.PRICE.le, True), (0, True), (9.5, True)])
def test_prices_must_be_finite_and_bounded_like_in_files(live, tmp_path, price, ok):
    body = json.dumps({"product_id": "pp", "name": "x", "category_id": "c1", "price": price}).replace("Infinity", "1e400")
    r = live.client.post("/products", content=body, headers={"content-type": "application/json"})
    assert r.status_code == (201 if ok else 422), r.text
    if not ok:
        assert r.json()["field"] == "price"
    assert file_accepts(tmp_path, products=f"p9,Mug,c3,{'1e400' if price == 1e400 else repr(price)},\n") is ok


@pytest.mark.parametrize("weight, ok", [(-1, False), (0, False), (limits.WEIGHT.le * 2, False), (1e400, False),
                                        (0.001, True), (limits.WEIGHT.le, True)])
def test_weights_follow_one_rule_in_the_api_and_the_loader(live, tmp_path, weight, ok):
    text = "1e400" if weight == 1e400 else repr(weight)
    body = f'{{"user_id": "u03", "product_id": "p101", "weight": {text}}}'
    r = live.client.post("/interactions", content=body, headers={"content-type": "application/json"})
    assert r.status_code == (201 if ok else 422), r.text
    if not ok:
        assert r.json()["field"] == "weight"
    assert file_accepts(tmp_path, interactions=f"u2,p2,,{text},,\n") is ok


@pytest.mark.parametrize("ts, ok", [("0001-01-01T00:30:00+01:00", False), ("0001-01-01T00:00:00Z", True),
                                    ("9999-12-31T23:59:59.999Z", True), ("9999-12-31T23:30:00-01:00", False)])
def test_timestamps_follow_the_range_the_store_round_trips(live, shop_db, tmp_path, ts, ok):
    r = live.client.post("/interactions", json={"user_id": "u04", "product_id": "p102", "ts": ts})
    assert r.status_code == (201 if ok else 422), r.text
    if ok:  # readable back through the driver
        assert run_read(shop_db, "MATCH (:User {id: 'u04'})-[r:BOUGHT]->(:Product {id: 'p102'}) RETURN r.ts").rows
    else:
        assert r.json()["field"] == "ts"
    assert file_accepts(tmp_path, interactions=f"u2,p2,{ts},1,,\n") is ok


def test_a_self_friendship_inside_a_new_user_is_a_422_naming_the_field(live, shop_db):
    for field in ("friends", "follows"):
        r = live.client.post("/users", json={"user_id": "selfish", field: ["u01", "selfish"]})
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field and f"{field}[1] is 'selfish'" in r.json()["detail"]
    assert run_read(shop_db, "MATCH (u:User {id: 'selfish'}) RETURN count(u)").rows == [[0]]


def test_an_oversized_chunked_body_gets_413(live):
    chunk = b" " * 65536

    def body():  # no Content-Length: httpx sends Transfer-Encoding: chunked
        yield b'{"user_id": "big", "name": "'
        for _ in range(8):
            yield chunk
        yield b'"}'

    r = live.client.post("/users", content=body(), headers={"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert "request body over" in r.json()["detail"] and "Traceback" not in r.text
    # With a Content-Length too, and a small chunked body still works.
    assert live.client.post("/users", content=b"x" * (300 * 1024)).status_code == 413
    small = live.client.post("/users", content=iter([b'{"user_id": ', b'"chunky"}']),
                             headers={"content-type": "application/json"})
    assert small.status_code == 201, small.text
