"""The event log: idempotent by event_id, durable (survives reopening), bad batches refused whole."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from graphrec.campaigns.events import EventStore, InvalidEvents, Served, ingest, utc_day, validate_events
from graphrec.campaigns.model import Campaign

START = datetime(2026, 3, 1, tzinfo=timezone.utc)
CAMPAIGN = Campaign(campaign_id="spring", name="Spring", products=["p1"], offer={"kind": "percent_off", "value": 10},
                    start=START, end=START + timedelta(days=30), audience={"policy": "random", "size": 3},
                    salt="spring", created_at=START, promoted=["p1", "p2"], counts={"treatment": 2, "control": 1})
USERS, PRODUCTS = {"u1", "u2", "u3"}, {"p1", "p2", "p3"}


def ev(i: int, kind: str = "impression", **over) -> dict:
    e = {"event_id": f"e{i}", "type": kind, "user_id": "u1", "product_id": "p1", "campaign_id": "spring",
         "ts": (START + timedelta(hours=i)).isoformat(), "value": 20.0 if kind == "purchase" else None}
    e.update(over)
    return e


def lookups(**extra):
    return dict(has_user=USERS.__contains__, has_product=PRODUCTS.__contains__,
                campaign={"spring": CAMPAIGN}.get, **extra)


@pytest.fixture
def store(tmp_path):
    with EventStore(tmp_path / "events.duckdb") as s:
        yield s


def test_append_is_idempotent_inside_and_across_batches(store):
    batch = [ev(1), ev(2, "click"), ev(3, "purchase"), ev(1)]  # e1 twice in the batch
    assert store.append(batch) == (3, 1)
    assert store.append(batch) == (0, 4)
    assert store.append([ev(3, "purchase"), ev(4)]) == (1, 1)
    frame = store.frame()
    assert sorted(frame["event_id"]) == ["e1", "e2", "e3", "e4"]
    assert list(frame.columns) == ["event_id", "type", "user_id", "product_id", "campaign_id", "ts", "value"]
    assert str(frame["ts"].dt.tz) == "UTC"


def test_every_event_is_kept_with_its_time(store):
    # Two purchases of the same product by the same user: two rows, not one.
    store.append([ev(1, "purchase"), ev(2, "purchase")])
    frame = store.frame(user_ids=["u1"], product_ids=["p1"])
    assert len(frame) == 2 and frame["ts"].tolist() == sorted(frame["ts"].tolist())


def test_durable_after_reopen(tmp_path):
    path = tmp_path / "e.duckdb"
    s = EventStore(path)
    s.append([ev(i) for i in range(10)])
    s.log_served([Served("u1", "spring", "p1", START)])
    s.close()
    again = EventStore(path)
    assert again.count() == 10 and again.served_counts(utc_day(START)) == {("u1", "spring"): 1}
    assert again.append([ev(3)]) == (0, 1)  # the id survived the restart too
    again.close()


def test_frame_filters(store):
    store.append([ev(1), ev(2, user_id="u2"), ev(3, "purchase", campaign_id=None), ev(50)])
    assert store.frame(user_ids=["u2"])["event_id"].tolist() == ["e2"]
    assert store.frame(campaign_id="spring")["event_id"].tolist() == ["e1", "e2", "e50"]
    window = store.frame(start=START + timedelta(hours=2), end=START + timedelta(hours=50))
    assert window["event_id"].tolist() == ["e2", "e3"]


def test_validation_names_index_and_field():
    batch = [
        ev(0),
        ev(1, user_id="ghost"),
        ev(2, product_id="nope"),
        ev(3, campaign_id="autumn"),
        ev(4, ts=(START - timedelta(days=1)).isoformat()),  # impression before the campaign
        ev(5, "purchase", value=-3.0),
        ev(6, "refund"),
        ev(7, "click", campaign_id=None),
        ev(8, "purchase", value=None),
        ev(9, product_id="p3"),  # a product the campaign does not promote
    ]
    errors = validate_events(batch, **lookups())
    got = {(e.index, e.field) for e in errors}
    assert got == {(1, "user_id"), (2, "product_id"), (3, "campaign_id"), (4, "ts"), (5, "value"),
                   (6, "type"), (7, "campaign_id"), (8, "value"), (9, "product_id")}
    assert errors[0].path == "events[1].user_id"


def test_bad_batch_stores_nothing(store):
    with pytest.raises(InvalidEvents) as err:
        ingest(store, [ev(1), ev(2, user_id="ghost")], **lookups())
    assert "events[1].user_id" in str(err.value)
    assert store.count() == 0


def test_purchases_go_to_the_graph_once_and_wait_when_it_is_down(store):
    written: list[list[str]] = []

    def down(frame: pd.DataFrame) -> None:
        raise ConnectionError("neo4j down")

    r = ingest(store, [ev(1, "purchase"), ev(2)], **lookups(record_purchases=down))
    assert (r.accepted, r.duplicates, r.graph_pending) == (2, 0, 1)  # stored; BOUGHT pending

    r = ingest(store, [ev(1, "purchase"), ev(3, "purchase", user_id="u2")],
               **lookups(record_purchases=lambda f: written.append(sorted(f["event_id"]))))
    assert (r.accepted, r.duplicates, r.graph_pending) == (1, 1, 0)
    assert written == [["e1", "e3"]]  # the pending one retried, the new one written, the duplicate not
    ingest(store, [ev(1, "purchase"), ev(3, "purchase", user_id="u2")],
           **lookups(record_purchases=lambda f: written.append(sorted(f["event_id"]))))
    assert written == [["e1", "e3"]]  # duplicates never write BOUGHT again


def test_erase_user(store):
    store.append([ev(1), ev(2, user_id="u2"), ev(3, "purchase")])
    store.log_served([Served("u1", "spring", "p1", START), Served("u2", "spring", "p1", START)])
    assert store.erase_user("u1") == 3
    assert store.frame()["user_id"].tolist() == ["u2"]
    assert store.served_counts(utc_day(START)) == {("u2", "spring"): 1}
    assert store.erase_user("u1") == 0


def test_bulk_batch(store):
    batch = [ev(i % 700, user_id=f"u{1 + i % 3}") | {"event_id": f"bulk-{i}"} for i in range(1000)]
    assert store.append(batch) == (1000, 0)
    assert store.append(batch) == (0, 1000)
