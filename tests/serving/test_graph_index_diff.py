"""Reloads hand over differences: applying ``diff(old, new)`` to the serving copy gives ``new``
wherever the graph or a live write changed something (unit tests on generated indexes)."""

from __future__ import annotations

import copy
import random

from graphrec import schema
from graphrec.serving.graph_index import FIELD_KIND, GraphIndex, diff

BOUGHT, VIEWED = schema.BOUGHT.type, schema.VIEWED.type


def contents(index: GraphIndex) -> dict[str, dict]:
    return {name: getattr(index, name) for name in FIELD_KIND}


def random_index(rng: random.Random, users: int = 40, products: int = 60) -> GraphIndex:
    index = GraphIndex(loaded=True)
    for c in range(5):
        index.category_names[f"c{c}"] = f"Category {c}" if c % 2 else None
    for p in range(products):
        index.add_product(f"p{p}", f"Product {p}", rng.choice([None, 9.5, 20.0]),
                          rng.sample(sorted(index.category_names), rng.randint(0, 2)))
    for u in range(users):
        index.add_user(f"u{u}", f"User {u}" if u % 3 else None, [f"c{rng.randrange(5)}"] if u % 4 == 0 else ())
    mutate(rng, index, 150)
    index.dirty.clear()
    return index


def mutate(rng: random.Random, index: GraphIndex, n: int) -> None:
    """Live-write-like changes: purchases, views, friendships, follows, new users and products."""
    users, products = sorted(index.user_names), sorted(index.product_names)
    for i in range(n):
        kind = rng.randrange(6)
        u, v = rng.sample(users, 2)
        if kind in (0, 1):
            index.add_interaction(u, rng.choice(products), BOUGHT, float(rng.randrange(10**9)))
        elif kind == 2:
            index.add_interaction(u, rng.choice(products), VIEWED, None)
        elif kind == 3:
            index.add_friend(u, v)
        elif kind == 4:
            index.add_follow(u, v)
        elif rng.random() < 0.5:
            index.add_user(f"new-{i}", None)
            users.append(f"new-{i}")
        else:
            index.add_product(f"newp-{i}", None, 1.0, ["c1"])
            products.append(f"newp-{i}")


def test_applying_the_diff_of_two_reads_gives_the_second(rng=random.Random(1)):
    for _ in range(20):
        old = random_index(rng)
        new = copy.deepcopy(old)
        mutate(rng, new, 30)
        for uid in rng.sample(sorted(new.user_names), 3):
            new.remove_user(uid)  # deletions too
        changes = diff(old, new)
        updated = old.updated(changes)
        assert contents(updated) == contents(new)
        assert changes.size() < sum(map(len, contents(new).values()))  # not a whole copy
        assert updated.loaded and not updated.dirty


def test_the_old_index_is_left_as_it_was_for_requests_still_reading_it():
    rng = random.Random(2)
    old = random_index(rng)
    before = copy.deepcopy(contents(old))
    new = copy.deepcopy(old)
    mutate(rng, new, 30)
    old.updated(diff(old, new))
    assert contents(old) == before


def test_users_whose_evidence_changed_get_new_stamps_and_the_others_keep_theirs():
    rng = random.Random(3)
    old = random_index(rng)
    new = copy.deepcopy(old)
    new.add_interaction("u1", "p2", BOUGHT, 5.0)
    new.add_friend("u3", "u4")
    new.user_names["u5"] = "Renamed"  # a name is not evidence
    updated = old.updated(diff(old, new))
    assert {u for u in updated.user_names if updated.versions.get(u, 0) != old.versions.get(u, 0)} == {"u1", "u3", "u4"}


def test_entities_written_live_are_sent_even_when_both_reads_agree():
    """A live write mirrored into the serving copy, then undone in the graph behind the service's
    back between two reads that both miss it: only ``dirty`` brings the copy back to the graph."""
    rng = random.Random(4)
    read1 = random_index(rng)
    serving = copy.deepcopy(read1)
    serving.add_interaction("u7", "p9", BOUGHT, 1.0)  # committed, mirrored ...
    serving.add_friend("u7", "u8")
    serving.add_user("ghost", "Ghost")  # ... and a user created live, then deleted by an admin in Neo4j
    read2 = copy.deepcopy(read1)  # the graph lost all three before the next read
    assert contents(serving.updated(diff(read1, read2))) != contents(read2)  # without dirty: stale
    assert contents(serving.updated(diff(read1, read2, serving.dirty))) == contents(read2)


def test_live_writes_already_in_the_new_read_apply_idempotently():
    rng = random.Random(5)
    read1 = random_index(rng)
    serving = copy.deepcopy(read1)
    mutate(rng, serving, 40)  # live writes mirrored ...
    read2 = copy.deepcopy(serving)  # ... and committed before the next read
    read2.dirty.clear()
    mutate(rng, read2, 10)  # plus changes made behind the service's back
    assert contents(serving.updated(diff(read1, read2, serving.dirty))) == contents(read2)
