"""The serving state's concurrency design, against the real Neo4j of the small shop:
reloads are single-flight and built off to the side, writes never wait on them and survive them."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from graphrec.serving import graph_index as graph_index_module
from graphrec.serving.graph_index import GraphIndex
from tests.serving.test_graph_index_parity import contents
from graphrec.serving.recommender import Filters
from graphrec.serving.service import Service
from graphrec.serving.writes import Interaction, Purchase

pytestmark = pytest.mark.integration


@pytest.fixture
def service(shop_db, shop_artifact, neo4j_settings, kit):
    svc = Service.open(kit.settings_for(neo4j_settings), shop_artifact)
    yield svc
    svc.close()


class SlowLoad:
    """GraphIndex.load against the real Neo4j, held open until released: a reload in flight."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()
        real = graph_index_module.GraphIndex.load.__func__

        def load(cls, driver, database="neo4j"):
            self.calls += 1
            index = real(cls, driver, database)  # read Neo4j now: writes below land after this read
            self.started.set()
            assert self.release.wait(300)
            return index

        monkeypatch.setattr(graph_index_module.GraphIndex, "load", classmethod(load))


def test_writes_do_not_wait_for_a_reload_and_survive_it(service, monkeypatch):
    slow = SlowLoad(monkeypatch)
    before = service.state
    reload = threading.Thread(target=service.load_index)
    reload.start()
    assert slow.started.wait(30)
    # The reload is in flight and has already read the graph, and it cannot finish until released
    # below: if these writes waited for it they would never return.
    service.create_user("mid-reload", "Mid", ["u01"], [], [Interaction("p101")])
    service.add_social("u03", "u20", "friend")
    assert service.record_purchases([Purchase("u04", "p402", "2024-06-01T00:00:00Z", 12.5)]) == 1
    assert reload.is_alive() and not slow.release.is_set()
    assert service.state is before  # the old state answers meanwhile, writes included
    assert service.state.index.has_user("mid-reload")
    slow.release.set()
    reload.join(30)
    after = service.state
    assert after is not before and after.generation == before.generation + 1
    # The new state was read before the writes committed: the journal replayed them onto it.
    assert after.index.has_user("mid-reload") and "p101" in after.index.bought("mid-reload")
    assert "u20" in after.index.friends("u03") and "u03" in after.index.friends("u20")
    assert "u04" in after.index.buyers("p402")
    assert service.recommend("mid-reload", 3).source == "fold_in"


class KnockingLock:
    """A lock that tells when its ``knocks``-th caller is about to wait for it."""

    def __init__(self, lock, knocks: int) -> None:
        self.lock, self.knocks, self.knocked = lock, knocks, threading.Event()

    def __enter__(self):
        self.knocks -= 1
        if not self.knocks:
            self.knocked.set()
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)


def test_reloads_are_single_flight(service, monkeypatch):
    slow = SlowLoad(monkeypatch)
    lock = KnockingLock(service._reload_lock, knocks=2)
    monkeypatch.setattr(service, "_reload_lock", lock)
    first = threading.Thread(target=service.load_index)
    first.start()
    assert slow.started.wait(30)
    second = threading.Thread(target=service.load_index)  # arrives while the first one runs
    second.start()
    assert lock.knocked.wait(30)  # the second is at the lock the first holds (no sleep to guess it)
    slow.release.set()
    first.join(30)
    second.join(30)
    assert slow.calls == 1  # the second caller took the first one's result


def test_a_vector_computed_from_old_evidence_is_not_served(service):
    """A cold user's cached vector carries the stamp of the evidence it came from."""
    service.create_user("stamp-user", None, ["u00"], [], [])
    first, _ = service.user_vector("stamp-user")
    stamp = service.state.index.version("stamp-user")
    assert service.state.recommender.user_vectors["stamp-user"][1] == stamp
    service.add_social("stamp-user", "u01", "friend")
    assert service.state.index.version("stamp-user") > stamp
    second, _ = service.user_vector("stamp-user")
    assert not (first == second).all()


def test_category_names_and_filters_that_match_nothing_warn(service):
    by_name = service.recommend("u01", 5, filters=_filters(category="folk"))
    by_id = service.recommend("u01", 5, filters=_filters(category="c3"))
    assert [i.product_id for i in by_name.items] == [i.product_id for i in by_id.items] and not by_name.warnings
    none = service.recommend("u01", 5, filters=_filters(category="polka"))
    assert not none.items and "polka" in none.warnings[0]
    scores = [i.percentile for i in by_id.items]
    assert scores == sorted(scores, reverse=True) and all(0 < p <= 1 for p in scores)


def _filters(**kw):
    return Filters(**kw)


@pytest.fixture
def reader_service(shop_db, shop_artifact, neo4j_settings, kit):
    svc = Service.open(kit.settings_for(neo4j_settings), shop_artifact, read_in_process=True)
    yield svc
    svc.close()


def test_a_reload_in_the_reader_process_sends_changes_and_equals_a_fresh_read(reader_service, shop_db):
    """Changes made behind the service's back and the service's own writes, through a reload read
    in a child process: the new index is exactly a fresh read, built from a diff (the recommender
    is kept), and the recommender sees the new product, the new price and the erased user."""
    svc = reader_service
    assert svc.state.index.loaded and svc.state.read == 1
    assert svc.recommend("u05", 3).source == "model"
    svc.create_user("live-user", "Live", ["u01"], [], [Interaction("p101")])
    svc.add_social("u06", "u07", "friend")
    with shop_db.session() as s:  # behind the service's back
        s.run("MATCH (p:Product {id: 'p101'}) SET p.price = 999.5").consume()
        s.run("MATCH (c:Category {id: 'c3'}) CREATE (:Product {id: 'ext-p', name: 'External'})"
              "-[:IN_CATEGORY]->(c)").consume()
        s.run("MATCH (:User {id: 'u02'})-[r:FRIEND]-(:User) DELETE r").consume()
        s.run("MATCH (u:User {id: 'u05'}) DETACH DELETE u").consume()
        s.run("MATCH (u:User {id: 'u03'}), (p:Product {id: 'p402'}) "
              "MERGE (u)-[r:BOUGHT]->(p) SET r.ts = datetime('2024-05-01T00:00:00Z')").consume()
        s.run("MATCH (u:User {id: 'live-user'})-[r]-() DELETE r").consume()  # undoes a live write
    before = svc.state
    svc.load_index()
    after = svc.state
    assert after.read == 2 and after.generation == before.generation + 1
    assert after.recommender is before.recommender  # applied as a diff, not rebuilt
    fresh = contents(GraphIndex.load(shop_db))
    assert contents(after.index) == fresh
    assert not after.index.friends("u02") and not after.index.has_user("u05")
    assert after.index.version("u03") > before.index.version("u03")  # new evidence
    cheap = svc.recommend("u01", 40, filters=Filters(max_price=100.0))
    assert "p101" not in [i.product_id for i in cheap.items]  # the new price filters it out
    folk = svc.recommend("u01", 40, filters=Filters(category="c3"))
    assert "ext-p" in [i.product_id for i in folk.items]  # new product, from its category
    assert not svc.state.recommender.is_trained("u05")  # deleted in the graph: never served again
    # The reader process keeps its previous read: the next reload is a diff with nothing in it.
    svc.load_index()
    assert svc.state.read == 3
    assert contents(svc.state.index) == fresh


def test_a_reader_process_that_died_is_replaced_and_reads_everything(reader_service):
    svc = reader_service
    svc.reader._process.kill()
    svc.reader._process.join(10)
    before = svc.state
    svc.load_index()
    assert svc.state.read == 1 and svc.state.recommender is not before.recommender  # a whole read
    assert svc.state.index.user_ids() == before.index.user_ids()


def test_a_read_that_hangs_is_given_up_and_the_service_keeps_its_state(reader_service):
    from graphrec.serving.db import GraphUnavailable

    svc = reader_service
    before = svc.state
    svc.reader._timeout_s = 0.0  # no read can finish in no time: the child is stopped
    with pytest.raises(GraphUnavailable):
        svc.load_index()
    assert svc.state is before and svc.reader._process is None
    svc.reader._timeout_s = 60.0
    svc.load_index()  # a new child, a whole read
    assert svc.state.read == 1 and svc.state.index.user_ids() == before.index.user_ids()


def test_a_cold_user_is_folded_in_from_friends_follows_and_followers_apart(service):
    """Directed trust: each kind of social edge reaches the fold-in as its own evidence, weighed
    as the artifact's validation chose (here set by hand: followers count, follows do not)."""
    from graphrec.coldstart import fold_in_user

    service.artifact.manifest["coldstart"] = {"friends": 1.0, "follows": 0.0, "followers": 1.0,
                                              "prior": 0.0, "popularity": 0.0, "categories": 0.0,
                                              "products": 1.0}
    service.create_user("trusted", None, ["u02"], [], [], follows=["u04"])
    service.add_social("u01", "trusted", "follows")
    idx = service.state.index
    assert idx.followed_by("trusted") == {"u01"} and idx.follows("trusted") == {"u04"}
    vec, source = service.user_vector("trusted")
    expected = fold_in_user(service.artifact, friends=["u02"], follows=["u04"], followers=["u01"])
    assert source == "fold_in" and np.allclose(vec, expected)
    assert not np.allclose(vec, fold_in_user(service.artifact, friends=["u02"]))  # followers count


def test_write_statements_are_planned_at_start_without_writing_anything(service, shop_db):
    from graphrec.serving import writes

    driver = shop_db
    def counts() -> tuple[int, int]:
        with driver.session() as s:
            return (s.run("MATCH (n) RETURN count(n) AS n").single()["n"],
                    s.run("MATCH ()-[r]->() RETURN count(r) AS n").single()["n"])

    def cached_plans() -> int:  # clearing the query caches says how many plans they held
        with driver.session() as s:
            message = s.run("CALL db.clearQueryCaches()").single()[0]
        return int(message.split(" of ")[1].split()[0]) if " of " in message else 0

    before = counts()
    cached_plans()
    writes.warm_up(driver, service.database)
    # create_user, add_edges, create_product (each with and without the id check), purchases,
    # erasure: at least one plan each, and the service's own count queries.
    assert cached_plans() >= 6
    assert counts() == before  # every transaction was rolled back
    with driver.session() as s:
        assert s.run("MATCH (n) WHERE n.id STARTS WITH 'graphrec-warm-up' RETURN count(n) AS n").single()["n"] == 0
    # The live writes run with the plan-keeping option (a statement Neo4j would refuse fails here).
    service.create_user("after-warm-up", "After", ["u01"], [], [Interaction("p101")])
    assert service.state.index.has_user("after-warm-up")
    assert writes.KEEP_PLAN.strip() == "CYPHER replan=skip"
    # And the warm-up's plans are the ones live writes use, whatever the sizes of their ids and lists
    # (Neo4j keys plans on top-level parameters' size classes, which would plan each anew).
    cached_plans()
    writes.warm_up(driver, service.database)
    warmed = cached_plans()
    writes.warm_up(driver, service.database)
    long_id = "a-user-id-of-forty-characters-0123456789"
    writes.create_user(driver, service.database, long_id, None, [], [], [])
    writes.create_user(driver, service.database, "x", "X", ["u01", "u02"], ["c1"], [Interaction("p101")], ["u03"])
    writes.add_edges(driver, service.database, "x", friends=["u04"])
    writes.add_edges(driver, service.database, long_id, interactions=[Interaction("p102"), Interaction("p103", "view")])
    writes.add_edges(driver, service.database, "u05", friends=["u06"], check=False)
    writes.record_purchases(driver, service.database, [writes.Purchase("x", "p101")])
    writes.record_purchases(driver, service.database, [writes.Purchase(f"u{i:02d}", "p201") for i in range(20)])
    writes.create_product(driver, service.database, "a-product-id-that-is-rather-long-too", "P", "c1", None)
    writes.delete_user(driver, service.database, long_id)
    assert cached_plans() == warmed  # nothing was planned on a live write
