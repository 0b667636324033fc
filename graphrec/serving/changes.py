"""Has anyone but this service written to Neo4j since the serving index was read?

A scheduled refresh (``graphrec serve --refresh-every``) exists for writes the service did not make
itself (a ``graphrec load``, another API process, someone in Neo4j Browser): its own writes are
mirrored into the index as they commit. Reading the whole graph costs Neo4j about a second of CPU
on Last.fm, and writes that land meanwhile wait for that CPU (write p99 of 200 ms in a 10-minute
soak with a refresh every 5 s, against 24 ms without refreshes). So a refresh first asks whether a
read could find anything new, and reads only then.

Neo4j numbers a database's committed transactions one by one, and every transaction's bookmark
names the last one committed when it ended: a read's bookmark says how far the database is, a
write's says which number was its own. Between a read at ``base`` and now, the commits that were
not ours are ``(now - base)`` minus the numbers this service recorded in between. Only numbers the
service saw for its own commits are subtracted, so every doubt counts as a foreign write and makes
a refresh read: a write whose outcome is unknown (the connection died during commit), one that
committed but was not recorded yet, Neo4j's own token transactions (a property key used for the
first time), a bookmark this code cannot read (then every refresh reads, as before).

The bookmark's content is not a documented API. Neo4j 5 writes ``FB:`` and base64 of PackStream:
a one-element list holding the database's 16-byte id, then the transaction number. The tests read
it from the real server, so a format change fails them instead of silently skipping reads.
"""

from __future__ import annotations

import base64
import threading
from typing import NamedTuple

import neo4j
from neo4j import Driver

_PREFIX = "FB:"
_INT_SIZES = {0xC8: 1, 0xC9: 2, 0xCA: 4, 0xCB: 8}  # PackStream INT_8 .. INT_64


class Version(NamedTuple):
    """A database (its store id) and the number of a committed transaction in it."""

    database: bytes
    txn: int


def version_of(bookmarks: neo4j.Bookmarks) -> Version | None:
    """The (database, transaction) a session's bookmarks name, or None if they cannot be read."""
    values = list(bookmarks.raw_values)
    if len(values) != 1 or not values[0].startswith(_PREFIX):
        return None
    try:
        raw = base64.b64decode(values[0][len(_PREFIX):] + "==")
    except ValueError:
        return None
    # 0x91: a list of one; 0xCC 0x10: 16 bytes (the database id); then the number, as an integer.
    if len(raw) < 20 or raw[:3] != b"\x91\xcc\x10":
        return None
    database, rest = raw[3:19], raw[19:]
    marker = rest[0]
    if marker < 0x80:  # TINY_INT 0..127
        return Version(database, marker)
    size = _INT_SIZES.get(marker)
    if size is None or len(rest) < 1 + size:
        return None
    return Version(database, int.from_bytes(rest[1:1 + size], "big", signed=True))


def current_version(driver: Driver, database: str) -> Version | None:
    """How far the database is now: the last committed transaction, from an empty read's bookmark."""
    with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS) as session:
        session.execute_read(lambda tx: tx.run("RETURN 1").consume())
        return version_of(session.last_bookmarks())


class OwnCommits:
    """The transaction numbers of this service's committed writes, since the last read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # writers add from request threads; a refresh counts
        self._txns: set[int] = set()
        self._database: bytes | None = None

    def add(self, bookmarks: neo4j.Bookmarks) -> None:
        """Record a committed write, by the bookmarks of the session that committed it."""
        version = version_of(bookmarks)
        if version is None:
            return  # unrecorded: the next refresh counts it as foreign and reads
        with self._lock:
            if version.database != self._database:
                self._database, self._txns = version.database, set()
            self._txns.add(version.txn)

    def foreign_since(self, base: Version, now: Version) -> int | None:
        """Commits between ``base`` and ``now`` that were not this service's (None: cannot tell, as
        when the database was replaced), and forget what ``base`` already covers."""
        if base.database != now.database:
            return None
        with self._lock:
            ours = 0
            if self._database == now.database:
                self._txns = {t for t in self._txns if t > base.txn}
                ours = sum(1 for t in self._txns if t <= now.txn)
        return now.txn - base.txn - ours
