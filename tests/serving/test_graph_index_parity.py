"""The array index answers every read exactly as a plain dict model of the same graph would, on
random graphs, through live writes and reloads (unit tests; the dict model is the layout the
index had before it became arrays, kept here as the reference)."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import numpy as np
import pytest

from graphrec import schema
from graphrec.serving import graph_index as gi
from graphrec.serving import transfer
from graphrec.serving.graph_arrays import Changes, compare
from graphrec.serving.graph_index import GraphIndex, build_arrays, epoch_seconds
from graphrec.serving.reader import Update

BOUGHT, VIEWED = schema.BOUGHT.type, schema.VIEWED.type


@dataclass
class Ref:
    """The reference: every relation as dicts of Python containers, keyed by id."""

    user_names: dict = field(default_factory=dict)
    product_names: dict = field(default_factory=dict)
    product_prices: dict = field(default_factory=dict)
    product_categories: dict = field(default_factory=dict)
    category_names: dict = field(default_factory=dict)
    category_products: dict = field(default_factory=dict)
    bought: dict = field(default_factory=dict)
    buyers: dict = field(default_factory=dict)
    touched: dict = field(default_factory=dict)
    friends: dict = field(default_factory=dict)
    friend_out: dict = field(default_factory=dict)
    follows: dict = field(default_factory=dict)
    followed_by: dict = field(default_factory=dict)
    interests: dict = field(default_factory=dict)

    @classmethod
    def of(cls, graph: "Graph") -> "Ref":
        ref = cls()
        for cid, name in graph.categories.items():
            ref.category_names[cid] = name
        for pid, (name, price, cats) in graph.products.items():
            ref.product_names[pid] = name
            ref.product_prices[pid] = float(price) if isinstance(price, (int, float)) else None
            ref.product_categories[pid] = tuple(sorted(set(cats)))
            for c in cats:
                ref.category_products.setdefault(c, set()).add(pid)
        for uid, u in graph.users.items():
            ref.user_names[uid] = u["name"]
            for pid, ts in u["bought"]:
                ref.bought.setdefault(uid, {})[pid] = epoch_seconds(ts)
                ref.buyers.setdefault(pid, set()).add(uid)
            for pid in u["touched"]:
                ref.touched.setdefault(uid, set()).add(pid)
            for f in u["friends_out"]:
                ref.friend_out.setdefault(uid, set()).add(f)
                ref.friends.setdefault(uid, set()).add(f)
                ref.friends.setdefault(f, set()).add(uid)
            for f in u["follows"]:
                ref.follows.setdefault(uid, set()).add(f)
                ref.followed_by.setdefault(f, set()).add(uid)
            if u["interests"]:
                ref.interests[uid] = tuple(u["interests"])
        return ref

    # Live writes, as the dict index applied them.
    def add_user(self, uid, name, interests=()):
        self.user_names[uid] = name
        if interests:
            self.interests[uid] = tuple(interests)

    def add_category(self, cid, name):
        self.category_names[cid] = name

    def add_product(self, pid, name, price, cats):
        self.product_names[pid] = name
        self.product_prices[pid] = float(price) if isinstance(price, (int, float)) else None
        self.product_categories[pid] = tuple(sorted(set(cats)))
        for c in cats:
            self.category_products.setdefault(c, set()).add(pid)

    def add_interactions(self, rows):
        for uid, pid, rel, ts in rows:
            if rel == BOUGHT:
                self.bought.setdefault(uid, {})[pid] = ts
                self.buyers.setdefault(pid, set()).add(uid)
            else:
                self.touched.setdefault(uid, set()).add(pid)

    def add_friend(self, a, b):
        self.friend_out.setdefault(a, set()).add(b)
        self.friends.setdefault(a, set()).add(b)
        self.friends.setdefault(b, set()).add(a)

    def add_follow(self, a, b):
        self.follows.setdefault(a, set()).add(b)
        self.followed_by.setdefault(b, set()).add(a)

    def remove_user(self, uid):
        for pid in self.bought.pop(uid, {}):
            self.buyers.get(pid, set()).discard(uid)
        self.touched.pop(uid, None)
        self.friend_out.pop(uid, None)
        for other in self.friends.pop(uid, set()):
            self.friends.get(other, set()).discard(uid)
            self.friend_out.get(other, set()).discard(uid)
        for t in self.follows.pop(uid, set()):
            self.followed_by.get(t, set()).discard(uid)
        for o in self.followed_by.pop(uid, set()):
            self.follows.get(o, set()).discard(uid)
        self.interests.pop(uid, None)
        self.user_names.pop(uid, None)


@dataclass
class Graph:
    """What Neo4j would hold: nodes and their stored relationships, as the three queries return them."""

    categories: dict = field(default_factory=dict)
    products: dict = field(default_factory=dict)  # id -> (name, price, categories)
    users: dict = field(default_factory=dict)  # id -> record fields

    def run(self, query):
        if query == gi._CATEGORIES:
            return [{"id": c, "name": n} for c, n in self.categories.items()]
        if query == gi._PRODUCTS:
            return [{"id": p, "name": n, "price": pr, "categories": list(c)} for p, (n, pr, c) in self.products.items()]
        assert query == gi._USERS
        return [{"id": u, **fields} for u, fields in self.users.items()]


def user_id(rng: random.Random, i: int) -> str:
    return rng.choice([f"u{i}", f"user-{i:05d}", f"ü{i}", f"U {i}"])  # varying lengths, non-ASCII


def random_graph(rng: random.Random, users: int = 50, products: int = 40, categories: int = 6) -> Graph:
    g = Graph()
    cats = [f"c{i}" for i in range(categories)]
    for c in cats:
        g.categories[c] = rng.choice([None, f"Cat {c}", f"Kätegorie {c}"])
    pids = [rng.choice([f"p{i}", f"prod-{i}"]) for i in range(products)]
    for p in pids:
        g.products[p] = (rng.choice([None, f"Name {p}"]), rng.choice([None, 3, 9.5, "n/a"]),
                         rng.sample(cats, rng.randint(0, 3)) + ["c-ghost"] * (rng.random() < 0.05))
    uids = [user_id(rng, i) for i in range(users)]
    ghost_users = ["gone-user"]  # named by edges, not a node (deleted while the graph was read)
    for u in uids:
        times = [None, 1_700_000_000.0, 1_700_000_000_000, "2024-05-01T00:00:00Z", 12.5]
        bought = [(rng.choice(pids + ["gone-product"]), rng.choice(times)) for _ in range(rng.randint(0, 6))]
        bought += bought[:1] and [(bought[0][0], rng.choice(times))]  # the same product twice: the last wins
        g.users[u] = {
            "name": rng.choice([None, f"Name {u}", "Zoë"]),
            "bought": bought,
            "touched": [rng.choice(pids) for _ in range(rng.randint(0, 3))],
            "friends_out": rng.sample(uids + ghost_users, rng.randint(0, 3)),
            "follows": rng.sample(uids, rng.randint(0, 2)),
            "interests": [rng.choice(cats + ["c-free"]) for _ in range(rng.randint(0, 2))] or None,
        }
    return g


def live_writes(rng: random.Random, n: int, users: list[str], products: list[str], tag: str) -> list[tuple]:
    """Random mirrored writes, as (method, args) for both the index and the reference."""
    out = []
    for i in range(n):
        kind = rng.randrange(9)
        u, v = rng.sample(users, 2)
        if kind in (0, 1):
            out.append(("add_interactions", ([(u, rng.choice(products), BOUGHT, rng.choice([None, float(i)])),
                                              (u, rng.choice(products), VIEWED, None)],)))
        elif kind == 2:
            out.append(("add_friend", (u, v)))
        elif kind == 3:
            out.append(("add_follow", (u, v)))
        elif kind == 4:
            new = f"live-{tag}-{i}"
            users.append(new)
            out.append(("add_user", (new, rng.choice([None, "Live"]), rng.sample(["c1", "c2", "c-new"], rng.randint(0, 2)))))
        elif kind == 5:
            new = f"livep-{tag}-{i}"
            products.append(new)
            out.append(("add_product", (new, "New", rng.choice([None, 4, 2.5]), rng.sample(["c0", "c1", "c-live"], 2))))
        elif kind == 6:
            out.append(("add_category", (f"c-live", "Live category")))
        elif kind == 7 and rng.random() < 0.4 and len(users) > 3:
            users.remove(u)
            out.append(("remove_user", (u,)))
        else:
            out.append(("add_user", (u, "Renamed", ())))
    return out


def apply(writes: list[tuple], *targets) -> None:
    for method, args in writes:
        for target in targets:
            getattr(target, method)(*copy.deepcopy(args))


def contents(index: GraphIndex) -> dict:
    """Everything the index answers about the nodes it holds, by id: to compare two indexes."""
    return {
        "users": {u: (index.user_name(u), index.bought(u), index.touched(u), index.follows(u),
                      index.followed_by(u), index.interests(u),
                      {f: index.friend_direction(u, f) for f in index.friends(u)}) for u in index.user_ids()},
        "products": {p: (index.product_name(p), index.product_price(p), index.product_categories(p),
                         index.buyers(p)) for p in index.product_ids()},
        "categories": {c: (index.category_name(c), index.category_size(c)) for c in index.category_ids()},
        "counts": index.counts(),
    }


def check_co_buyer(index: GraphIndex, ref: Ref, p: str, other: str, users: list[str], rng: random.Random) -> None:
    """The co-buyer to name for the pair, asked for several users and users to avoid, either way
    round (the index remembers pairs: each answer must still be the reference's)."""
    for first, second in ((p, other), (other, p), (p, other)):
        buyers = sorted(ref.buyers.get(p, set()) | ref.buyers.get(other, set()))
        me = rng.choice(users + buyers)
        avoid = set(rng.sample(users + buyers, min(rng.randint(0, 4), len(users))))
        both = (ref.buyers.get(p, set()) & ref.buyers.get(other, set())) - {me}
        pool = both - avoid or both
        named = {u for u in pool if ref.user_names.get(u)}
        assert index.co_buyer(first, second, me, avoid) == (min(named or pool) if both else None, len(both))


def check_same(index: GraphIndex, ref: Ref, rng: random.Random) -> None:
    """Every read method of the index against the reference, for every id either knows and some neither does."""
    users = set(ref.user_names) | set(ref.bought) | set(ref.friends) | set(ref.follows) | set(ref.followed_by) | {"nobody"}
    products = set(ref.product_names) | set(ref.buyers) | {"nothing"}
    cats = set(ref.category_names) | set(ref.category_products) | {"no-cat"}
    assert index.user_ids() == sorted(ref.user_names)
    assert index.product_ids() == sorted(ref.product_names)
    assert index.category_ids() == sorted(ref.category_names)
    assert index.named_users(users) == {u for u in users if ref.user_names.get(u)}
    for u in users:
        assert index.has_user(u) == (u in ref.user_names), u
        assert index.user_name(u) == ref.user_names.get(u), u
        assert index.bought(u) == ref.bought.get(u, {}), u
        some = rng.sample(sorted(products), min(6, len(products)))
        assert index.bought_among(u, some) == set(some) & ref.bought.get(u, {}).keys(), u
        assert index.touched(u) == ref.touched.get(u, set()), u
        assert index.friends(u) == ref.friends.get(u, set()), u
        assert index.follows(u) == ref.follows.get(u, set()), u
        assert index.followed_by(u) == ref.followed_by.get(u, set()), u
        assert index.interests(u) == ref.interests.get(u, ()), u
        assert index.social(u) == ref.friends.get(u, set()) | ref.follows.get(u, set())
        for f in ref.friends.get(u, ()):
            assert index.friend_direction(u, f) == ("out" if f in ref.friend_out.get(u, ()) else "in")
    for p in products:
        assert index.has_product(p) == (p in ref.product_names), p
        assert index.product_name(p) == ref.product_names.get(p), p
        assert index.product_price(p) == ref.product_prices.get(p), p
        assert index.buyers(p) == ref.buyers.get(p, set()), p
        assert index.product_categories(p) == ref.product_categories.get(p, ()), p
        some = rng.sample(sorted(users), min(10, len(users)))
        assert index.buyers_among(p, some) == set(some) & ref.buyers.get(p, set())
        assert index.bought_by(some) == {q: {u for u in some if q in ref.bought.get(u, {})}
                                         for u in some for q in ref.bought.get(u, {})}
        other = rng.choice(sorted(products))
        assert index.co_buyers(p, other) == ref.buyers.get(p, set()) & ref.buyers.get(other, set())
        check_co_buyer(index, ref, p, other, sorted(users), rng)
    for c in cats:
        assert index.has_category(c) == (c in ref.category_names), c
        assert index.category_name(c) == ref.category_names.get(c), c
        assert index.category_size(c) == len(ref.category_products.get(c, ())), c
    assert index.counts() == {
        "users": len(ref.user_names), "products": len(ref.product_names), "categories": len(ref.category_names),
        "bought": sum(map(len, ref.bought.values())), "friend_pairs": sum(map(len, ref.friend_out.values())),
        "follows": sum(map(len, ref.follows.values()))}


@pytest.mark.parametrize("seed", range(12))
def test_reads_match_the_dict_model_after_loading_and_live_writes(seed, monkeypatch):
    if seed % 2:  # co-buyers by merging rows, not through the bitsets (any row qualifies at this size)
        monkeypatch.setattr(gi, "BITSET_SHARE", 0)
    elif seed % 4 == 2:  # one co-buyer remembered per pair: a list that skips users computes more
        monkeypatch.setattr(gi, "CO_BUYERS_KEPT", 1)
    rng = random.Random(seed)
    graph = random_graph(rng)
    index, ref = GraphIndex(build_arrays(graph.run), loaded=True), Ref.of(graph)
    check_same(index, ref, rng)
    users, products = list(graph.users), list(graph.products)
    for batch in range(3):  # reads between batches of writes: what the index remembered must follow
        apply(live_writes(rng, 20, users, products, f"a{batch}"), index, ref)
        check_same(index, ref, rng)


@pytest.mark.parametrize("seed", range(16))
def test_co_buyers_remembered_per_pair_follow_live_purchases_names_and_erasures(seed, monkeypatch):
    # Every pair asked before and after each batch of writes, so that a remembered pair whose
    # products' buyers or whose users' names changed is asked again.
    if seed % 2:
        monkeypatch.setattr(gi, "BITSET_SHARE", 0)
    if seed % 4 > 1:  # fewer remembered: more pairs where a user renamed live was among them
        monkeypatch.setattr(gi, "CO_BUYERS_KEPT", 1)
    rng = random.Random(300 + seed)
    graph = random_graph(rng, users=40, products=10)
    index, ref = GraphIndex(build_arrays(graph.run), loaded=True), Ref.of(graph)
    users, products = list(graph.users), list(graph.products)
    for batch in range(10):
        for p in products + ["nothing"]:
            for other in products:
                check_co_buyer(index, ref, p, other, sorted(ref.user_names), rng)
        # One kind of write a batch: each must make the pairs it changes be worked out again.
        if batch % 3 == 0:
            writes = [("add_interactions", ([(rng.choice(users), rng.choice(products), BOUGHT, None)
                                             for _ in range(3)],))]
        elif batch % 3 == 1:
            writes = [("add_user", (u, rng.choice([None, "Renamed", "Aaron"]), ())) for u in rng.sample(users, 3)]
        else:
            users.remove(gone := rng.choice(users))
            writes = [("remove_user", (gone,))]
        apply(writes, index, ref)


@pytest.mark.parametrize("seed", range(4))
def test_reads_match_where_no_user_of_the_read_has_a_name(seed):
    # The co-buyer to name is then the first in id order (no scan for a named one), until live
    # writes name somebody.
    rng = random.Random(200 + seed)
    graph = random_graph(rng)
    for user in graph.users.values():
        user["name"] = None
    index, ref = GraphIndex(build_arrays(graph.run), loaded=True), Ref.of(graph)
    check_same(index, ref, rng)
    users, products = list(graph.users), list(graph.products)
    for batch in range(3):  # reads between batches of writes: what the index remembered must follow
        apply(live_writes(rng, 20, users, products, f"a{batch}"), index, ref)
        check_same(index, ref, rng)


def test_a_user_unnamed_live_gives_way_to_the_next_named_co_buyer():
    # Ten named users of the read bought both products; u0 loses their name live. The user asking
    # (u1) and those to avoid (u2, u3) are the first three left: the one to name is u4, the fourth
    # named co-buyer, though the read's first four named ones were u0 to u3.
    graph = Graph()
    graph.products.update({"p": (None, None, []), "q": (None, None, [])})
    for i in range(10):
        graph.users[f"u{i}"] = {"name": f"Name {i}", "bought": [("p", None), ("q", None)], "touched": [],
                                "friends_out": [], "follows": [], "interests": None}
    index = GraphIndex(build_arrays(graph.run), loaded=True)
    index.add_user("u0", None)
    assert index.co_buyer("p", "q", "u1", {"u2", "u3"}) == ("u4", 9)
    assert index.co_buyer("q", "p", "u5", {"u1", "u2", "u3"}) == ("u4", 9)  # remembered: the same


def test_an_index_built_from_live_writes_alone_matches_too():
    rng = random.Random(99)
    index, ref = GraphIndex(), Ref()
    for u in ("a", "b", "c", "d"):
        apply([("add_user", (u, None, ()))], index, ref)
    apply(live_writes(rng, 80, ["a", "b", "c", "d"], ["p1", "p2"], "x"), index, ref)
    check_same(index, ref, rng)


def evidence(ref: Ref, uid: str) -> tuple:
    return (ref.bought.get(uid, {}), ref.touched.get(uid, set()), ref.friends.get(uid, set()),
            ref.follows.get(uid, set()), ref.followed_by.get(uid, set()), ref.interests.get(uid, ()))


@pytest.mark.parametrize("seed", range(8))
def test_a_reload_equals_the_new_read_plus_the_writes_replayed_and_restamps_exactly_the_changed(seed):
    """Served: read 1 + live writes. Then the graph changes behind the service's back (read 2 holds
    those, and the live writes that committed before it), and more writes land during the read
    (the journal). The successor equals read 2 + journal; every user whose evidence differs from
    what was served gets a new stamp, and users nobody touched keep theirs."""
    rng = random.Random(100 + seed)
    graph1 = random_graph(rng)
    served, served_ref = GraphIndex(build_arrays(graph1.run), loaded=True), Ref.of(graph1)
    users, products = list(graph1.users), list(graph1.products)
    before_read = live_writes(rng, 30, users, products, "before")
    before_read.append(("add_friend", tuple(rng.sample(users, 2))))  # undone behind the back, below
    apply(before_read, served, served_ref)
    # The graph at read 2: read 1's graph with the live writes committed, and foreign changes.
    graph2 = copy.deepcopy(graph1)
    for method, args in before_read:
        mirror_into_graph(graph2, method, args)
    foreign = random_graph(random.Random(seed), users=8, products=4)  # new nodes behind the back ...
    graph2.users.update({f"f-{u}": v for u, v in foreign.users.items()})
    edited = rng.sample(sorted(u for u in graph2.users if graph2.users[u]["bought"]), 6)
    for u in edited[:2]:  # ... and edits of existing ones: one field each
        graph2.users[u]["bought"] = graph2.users[u]["bought"][1:]
    for u in edited[2:4]:
        graph2.users[u]["bought"] = [(p, 5.0) for p, _ in graph2.users[u]["bought"]]  # only the times
    for u in edited[4:]:
        graph2.users[u]["friends_out"] = []
    # A live write undone behind the service's back: only the live set knows it was served.
    undone = before_read[-1][1]
    graph2.users[undone[0]]["friends_out"] = [f for f in graph2.users[undone[0]]["friends_out"] if f != undone[1]]
    for p in rng.sample(sorted(graph2.products), 3):
        name, _, cats = graph2.products[p]
        graph2.products[p] = (name, 77.0, cats[:1])
    arrays1, arrays2 = build_arrays(graph1.run), build_arrays(graph2.run)
    during_read = live_writes(rng, 15, users, products, "during")
    apply(during_read, served, served_ref)
    stamps = dict(served.versions)

    read_changes = compare(arrays1, arrays2)
    new, changes = served.successor(arrays2, read_changes)
    new_ref = Ref.of(graph2)
    apply(during_read, new, new_ref)  # the journal's replay
    check_same(new, new_ref, rng)

    every_user = set(served_ref.user_names) | set(new_ref.user_names) | set(served_ref.friends) | set(new_ref.friends)
    differ = {u for u in every_user if evidence(served_ref, u) != evidence(new_ref, u)}
    restamped = {u for u in every_user if new.version(u) != stamps.get(u, 0)}
    assert differ <= restamped
    assert restamped <= read_changes.users | served.live_users | new.live_users, "a stamp moved for nothing"
    assert len(restamped) < len(every_user)
    ref1, ref2 = Ref.of(graph1), Ref.of(graph2)

    def product(ref: Ref, p: str) -> tuple:
        return ref.product_prices.get(p), ref.product_categories.get(p), ref.buyers.get(p)
    assert {p for p in set(ref1.product_names) | set(ref2.product_names) if product(ref1, p) != product(ref2, p)} \
        == {p for p in read_changes.products if p in set(ref1.product_names) | set(ref2.product_names)}
    assert read_changes.users_gone == set(ref1.user_names) - set(ref2.user_names)
    assert read_changes.users_arrived == set(ref2.user_names) - set(ref1.user_names)


def mirror_into_graph(graph: Graph, method: str, args: tuple) -> None:
    """What a committed live write leaves in Neo4j (what the next read sees)."""
    if method == "add_user":
        uid, name, interests = args
        record = graph.users.setdefault(uid, {"name": None, "bought": [], "touched": [], "friends_out": [],
                                              "follows": [], "interests": None})
        record["name"] = name
        if interests:
            record["interests"] = list(interests)
    elif method == "add_category":
        graph.categories[args[0]] = args[1]
    elif method == "add_product":
        pid, name, price, cats = args
        graph.products[pid] = (name, price, sorted(set(cats) | set(graph.products.get(pid, (None, None, []))[2])))
    elif method == "add_interactions":
        for uid, pid, rel, ts in args[0]:
            graph.users[uid]["bought" if rel == BOUGHT else "touched"].append((pid, ts) if rel == BOUGHT else pid)
    elif method == "add_friend":
        graph.users[args[0]]["friends_out"].append(args[1])
    elif method == "add_follow":
        graph.users[args[0]]["follows"].append(args[1])
    elif method == "remove_user":
        uid = args[0]
        graph.users.pop(uid, None)
        for record in graph.users.values():
            for name in ("friends_out", "follows"):
                record[name] = [u for u in record[name] if u != uid]


def test_a_read_handed_over_through_a_file_is_the_same_read_and_read_only():
    rng = random.Random(7)
    graph = random_graph(rng)
    arrays = build_arrays(graph.run)
    update = transfer.load(transfer.dump(Update(3, arrays, compare(arrays, arrays))))
    assert update.read == 3 and update.changes.size() == 0  # a read compared with itself: nothing
    index = GraphIndex(update.arrays, loaded=True)
    check_same(index, Ref.of(graph), rng)
    bought = update.arrays.relations["bought"]
    with pytest.raises(ValueError):
        bought.indices[0] = 1  # the service cannot write a published read in place
    apply(live_writes(rng, 20, list(graph.users), list(graph.products), "t"), index)  # the overlay still can


def test_memory_per_relationship_stays_under_32_bytes():
    """The index's arrays for a shop of 20k users and about 10 purchases each (ids, names, prices
    and every relation both ways included), per stored relationship."""
    rng = np.random.default_rng(0)
    n_users, n_products = 20_000, 2_000
    g = Graph(categories={f"c{i}": f"Category {i}" for i in range(20)})
    for p in range(n_products):
        g.products[f"p{p}"] = (f"Product {p}", float(p % 50), [f"c{p % 20}"])
    bought = rng.integers(0, n_products, (n_users, 10))
    friends = rng.integers(0, n_users, (n_users, 4))
    for u in range(n_users):
        g.users[f"u{u}"] = {"name": f"User {u}", "bought": [(f"p{p}", 1.7e9 + u) for p in bought[u].tolist()],
                            "touched": [], "friends_out": [f"u{f}" for f in friends[u].tolist() if f != u],
                            "follows": [], "interests": None}
    index = GraphIndex(build_arrays(g.run), loaded=True)
    counts = index.counts()
    relationships = counts["bought"] + counts["friend_pairs"] + n_products  # + IN_CATEGORY
    per_rel = index.nbytes / relationships
    assert 12 < per_rel <= 32, per_rel


def _search_by_scan(names: dict, q: str, limit: int) -> list[str]:
    """The search box's rule, one user at a time (what the index's text scan must equal)."""
    q = q.strip()
    wanted = q.casefold()
    exact = [u for u in names if u == q]
    prefix = sorted(u for u in names if u != q and u.casefold().startswith(wanted))
    named = sorted(u for u, name in names.items() if u != q and not u.casefold().startswith(wanted)
                   and name and wanted in name.casefold())
    return (exact + prefix + named)[:limit]


@pytest.mark.parametrize("seed", range(3))
def test_user_search_equals_a_scan_of_every_user_after_live_writes_and_a_reload(seed):
    rng = random.Random(seed)
    graph = random_graph(rng, users=120)
    index, ref = GraphIndex(build_arrays(graph.run), loaded=True), Ref.of(graph)
    queries = ["u1", "U", "user-0001", "ü", "name", "NAME U", "zoë", "live", "renamed", "e", "x", " u 3 ", "gone-user"]
    for q in queries:  # before and after live writes (new users, renames, removals)
        for limit in (1, 5, 100):
            assert index.search_users(q, limit) == _search_by_scan(ref.user_names, q, limit), (q, limit)
    apply(live_writes(rng, 60, list(graph.users), list(graph.products), "n"), index, ref)
    for q in queries:
        for limit in (1, 5, 100):
            assert index.search_users(q, limit) == _search_by_scan(ref.user_names, q, limit), (q, limit)
    assert index.search_users("   ", 5) == []
    # A NUL in a name (the texts' separator) is read as a space: no match runs into the next user.
    nul = GraphIndex(build_arrays(Graph(users={"a1": {**graph.users[next(iter(graph.users))], "name": "x\0y"},
                                               "a2": {**graph.users[next(iter(graph.users))], "name": "z"}}).run),
                     loaded=True)
    assert nul.search_users("x y", 5) == ["a1"] and nul.search_users("z", 5) == ["a2"]
    assert nul.search_users("y\0z", 5) == []
    # A reload whose users and names are unchanged keeps the scanned texts; a rename drops them.
    same, _ = index.successor(build_arrays(graph.run), Changes(set(), set(), set(), set()))
    assert same._user_texts is index._user_texts
    renamed = next(iter(graph.users))
    graph.users[renamed]["name"] = "Someone Else"
    other, _ = index.successor(build_arrays(graph.run), Changes(set(), set(), set(), set()))
    assert other._user_texts is None and other.search_users("someone else", 5)[:1] == [renamed]


@pytest.mark.parametrize("seed", range(4))
def test_lookups_remembered_by_an_index_carry_over_only_where_the_next_read_agrees(seed):
    """A reload that adds no node keeps the served index's remembered lookups (ids, names, a
    product's categories) except where the new read differs: a renamed user, a product whose
    categories changed behind the service's back."""
    rng = random.Random(300 + seed)
    graph1 = random_graph(rng)
    served = GraphIndex(build_arrays(graph1.run), loaded=True)
    check_same(served, Ref.of(graph1), rng)  # every lookup remembered
    graph2 = copy.deepcopy(graph1)
    renamed = rng.choice(sorted(graph2.users))
    graph2.users[renamed]["name"] = "Renamed behind the back"
    for p in rng.sample(sorted(graph2.products), 3):
        name, price, cats = graph2.products[p]
        graph2.products[p] = (name, price, cats[1:] if len(cats) > 1 else [])
    arrays1, arrays2 = build_arrays(graph1.run), build_arrays(graph2.run)
    new, _ = served.successor(arrays2, compare(arrays1, arrays2))
    assert new._found["user"] is served._found["user"]  # the ids agree: the memo carried over
    check_same(new, Ref.of(graph2), rng)


@pytest.mark.integration
def test_purchase_times_leave_neo4j_as_the_driver_would_read_them(driver):
    """The index reads a DateTime as epoch seconds in Cypher (the driver's datetimes cost 30 us each):
    the same seconds as reading the value and converting it in Python, for every type a ts may have."""
    from graphrec.serving.graph_index import _TS_SECONDS, epoch_seconds

    records, _, _ = driver.execute_query(
        "UNWIND [datetime('2024-05-01T10:00:00.123+02:00'), datetime('1969-12-31T23:59:59.5Z'), "
        "date('2024-05-01'), '2024-05-01T00:00:00Z', 1714521600, 1714521600123, null] AS t "
        f"WITH {{ts: t}} AS r RETURN r.ts AS ts, {_TS_SECONDS} AS seconds")
    assert len(records) == 7
    for record in records:
        assert epoch_seconds(record["seconds"]) == epoch_seconds(record["ts"]), record["ts"]
