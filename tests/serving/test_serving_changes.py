"""A scheduled refresh reads the graph only when someone other than the service wrote to it:
transaction numbers from the real Neo4j's bookmarks, the service's own commits subtracted."""

from __future__ import annotations

import base64

import neo4j
import pytest

from graphrec.serving.changes import OwnCommits, Version, current_version, version_of
from graphrec.serving.graph_index import GraphIndex
from tests.serving.test_graph_index_parity import contents
from graphrec.serving.service import Service
from graphrec.serving.writes import Interaction


def _bookmarks(payload: bytes) -> neo4j.Bookmarks:
    return neo4j.Bookmarks.from_raw_values(["FB:" + base64.b64encode(payload).decode()])


DB = bytes(range(16))


@pytest.mark.parametrize("txn, encoded", [
    (5, b"\x05"), (200, b"\xc9\x00\xc8"), (6339, b"\xc9\x18\xc3"), (70000, b"\xca\x00\x01\x11\x70"),
    (2 ** 40, b"\xcb" + (2 ** 40).to_bytes(8, "big")),
])
def test_a_bookmark_names_its_database_and_transaction(txn, encoded):
    assert version_of(_bookmarks(b"\x91\xcc\x10" + DB + encoded + b"\x90")) == Version(DB, txn)


@pytest.mark.parametrize("raw", [
    [], ["FB:%%%"], ["FB:" + base64.b64encode(b"\x92\xcc\x10" + DB + b"\x05").decode()],  # two databases
    ["FB:" + base64.b64encode(b"\x91\xcc\x10" + DB + b"\xc9\x18").decode()],  # cut short
    ["neo4j:bookmark:v1:tx42"],  # Neo4j 4's format
])
def test_a_bookmark_that_cannot_be_read_gives_nothing(raw):
    assert version_of(neo4j.Bookmarks.from_raw_values(raw)) is None


def test_only_commits_that_were_not_ours_count():
    ours = OwnCommits()
    for txn in (11, 12, 14):
        ours.add(_bookmarks(b"\x91\xcc\x10" + DB + bytes([txn]) + b"\x90"))
    assert ours.foreign_since(Version(DB, 10), Version(DB, 12)) == 0
    assert ours.foreign_since(Version(DB, 10), Version(DB, 14)) == 1  # 13 was someone else's
    assert ours.foreign_since(Version(DB, 13), Version(DB, 14)) == 0  # forgets what a read covered
    assert ours.foreign_since(Version(DB, 12), Version(DB, 14)) == 1  # 13 still was not
    assert ours.foreign_since(Version(DB, 10), Version(bytes(16), 14)) is None  # another database
    ours.add(neo4j.Bookmarks.from_raw_values(["unreadable"]))  # not recorded: counts as foreign
    assert ours.foreign_since(Version(DB, 14), Version(DB, 15)) == 1


@pytest.mark.integration
def test_the_real_servers_bookmarks_number_each_commit(shop_db):
    before = current_version(shop_db, "neo4j")
    assert before is not None, "Neo4j's bookmark format changed: refreshes would read every time"
    written = []
    for i in range(3):
        with shop_db.session() as s:
            s.execute_write(lambda tx: tx.run("MATCH (p:Product {id: 'p101'}) SET p.price = $i", i=i).consume())
            written.append(version_of(s.last_bookmarks()))
    # (A property key new to the database would take a number of its own: Neo4j's token transaction.)
    assert [v.txn for v in written] == [before.txn + 1, before.txn + 2, before.txn + 3]
    with shop_db.session() as s:  # a read commits nothing
        s.run("MATCH (n) RETURN count(n)").consume()
    assert current_version(shop_db, "neo4j") == written[-1]


@pytest.mark.integration
class TestRefresh:
    @pytest.fixture
    def service(self, shop_db, shop_artifact, neo4j_settings, kit, monkeypatch):
        svc = Service.open(kit.settings_for(neo4j_settings), shop_artifact)
        self.reads = 0
        real = svc.reader.read

        def counted(*args, **kwargs):
            self.reads += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(svc.reader, "read", counted)
        yield svc
        svc.close()

    def test_the_services_own_writes_need_no_read(self, service):
        service.create_user("own-1", "Own", ["u01"], [], [Interaction("p101")])
        service.add_social("u03", "u20", "friend")
        service.create_product("own-p", "Own product", "c2", 9.5)
        generation = service.state.generation
        assert service.refresh() and self.reads == 0 and service.state.generation == generation
        assert service.state.index.has_user("own-1") and service.state.index.has_product("own-p")

    def test_a_write_by_anyone_else_is_read(self, service, shop_db):
        service.create_user("own-2", None, ["u01"], [], [])
        with shop_db.session() as s:  # behind the service's back
            s.run("MATCH (c:Category {id: 'c3'}) CREATE (:Product {id: 'ext-p', name: 'External'})"
                  "-[:IN_CATEGORY]->(c)").consume()
        service.add_social("u03", "u20", "friend")  # own writes on both sides of the foreign one
        assert service.refresh() and self.reads == 1
        assert service.state.index.has_product("ext-p") and service.state.index.has_user("own-2")
        assert contents(service.state.index) == contents(GraphIndex.load(shop_db))
        assert service.refresh() and self.reads == 1  # and once read, it is not read again

    def test_an_unreadable_bookmark_makes_every_refresh_read(self, service, monkeypatch):
        monkeypatch.setattr("graphrec.serving.service.current_version", lambda driver, database: None)
        assert service.refresh() and service.refresh() and self.reads == 2

    def test_enough_own_writes_are_read_anyway(self, service, monkeypatch):
        """The entities the service's writes touched travel with the next read: a read bounds them."""
        monkeypatch.setattr("graphrec.serving.service.MAX_LIVE_BEFORE_READ", 2)
        service.add_social("u03", "u20", "friend")
        assert service.refresh() and self.reads == 0  # 2 entities touched: not yet
        service.add_social("u04", "u21", "friend")
        assert service.refresh() and self.reads == 1 and not service.state.index.live_size()

