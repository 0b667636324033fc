"""The loader against the real Neo4j: types, idempotence, refusal without writes, skip-invalid."""

from __future__ import annotations

import csv
import json

import pandas as pd
import pytest
from neo4j.time import DateTime
from typer.testing import CliRunner

from graphrec.cli import app as cli
from graphrec.store.loader import InvalidInput, database_counts, load_directory
from graphrec.store.query import run_read
from tests.conftest import wipe
from ingest.shop import BAD_CASES, BASE_NODES, BASE_RELS, write_bad_shop, write_shop

pytestmark = pytest.mark.integration


def rows(driver, cypher: str) -> list[list]:
    return run_read(driver, cypher).rows


def test_load_writes_every_type_with_typed_properties(empty_db, tmp_path):
    result = load_directory(empty_db, write_shop(tmp_path), progress=False)
    assert result.nodes == BASE_NODES and result.relationships == BASE_RELS and result.rejected == 0
    assert set(result.summary()) == {"nodes", "relationships", "rejected", "seconds"}
    with empty_db.session() as s:
        r = s.run("MATCH (:User {id: 'u1'})-[r:BOUGHT]->(:Product {id: 'p1'}) RETURN r").single()["r"]
        assert isinstance(r["ts"], DateTime) and r["ts"].utcoffset().total_seconds() == 0
        assert r["ts"].iso_format().startswith("2024-02-02T09:00:00")
        assert r["weight"] == 4.0 and isinstance(r["weight"], float) and r["split"] == "train"
        no_ts = s.run("MATCH (:User {id: 'u3'})-[r:BOUGHT]->() RETURN r").single()["r"]
        assert "ts" not in no_ts and "split" not in no_ts and no_ts["weight"] == 1.0
        p1 = s.run("MATCH (p:Product {id: 'p1'}) RETURN p").single()["p"]
        assert dict(p1) == {"id": "p1", "name": "Dune", "price": 9.99, "brand": "Ace"}
        assert dict(s.run("MATCH (p:Product {id: 'p4'}) RETURN p").single()["p"]) == {"id": "p4", "name": "Gift card"}
        u1 = s.run("MATCH (u:User {id: 'u1'}) RETURN u").single()["u"]
        assert dict(u1) == {"id": "u1", "name": "Ann", "age": 34}
    assert rows(empty_db, "MATCH (p:Product {id: 'p1'})-[r:IN_CATEGORY]->(c) RETURN c.id, r.primary ORDER BY c.id") \
        == [["c1", False], ["c2", True]]
    assert rows(empty_db, "MATCH (a)-[:SUBCATEGORY_OF]->(b) RETURN a.id, b.id") == [["c2", "c1"]]
    assert rows(empty_db, "MATCH (a)-[:FRIEND]->(b) RETURN a.id, b.id ORDER BY a.id") == [["u1", "u2"], ["u3", "u4"]]
    assert rows(empty_db, "MATCH (a)-[:FOLLOWS]->(b) RETURN a.id, b.id") == [["u2", "u3"]]
    assert rows(empty_db, "MATCH (:User {id: 'u2'})-[r:VIEWED]->(:Product {id: 'p1'}) RETURN r.weight") == [[1.0]]


def test_loading_twice_changes_nothing(empty_db, tmp_path):
    shop = write_shop(tmp_path)
    load_directory(empty_db, shop, progress=False, batch_size=2)  # small batches: many transactions
    snapshot = "MATCH (a)-[r]->(b) RETURN a.id, type(r), b.id, properties(r) ORDER BY a.id, type(r), b.id"
    first = (database_counts(empty_db), rows(empty_db, snapshot))
    load_directory(empty_db, shop, progress=False)
    assert (database_counts(empty_db), rows(empty_db, snapshot)) == first


@pytest.fixture
def base_db(driver, tmp_path_factory):
    """The database holding exactly the base shop; loaded only when it does not (bad loads write nothing)."""
    if database_counts(driver) != (BASE_NODES, BASE_RELS):
        wipe(driver)
        load_directory(driver, write_shop(tmp_path_factory.mktemp("base")), progress=False)
    return driver


@pytest.mark.parametrize("case, expected", [(c[1], c[2]) for c in BAD_CASES], ids=[c[0] for c in BAD_CASES])
def test_bad_input_writes_nothing(base_db, tmp_path, case, expected):
    before = database_counts(base_db)
    assert before == (BASE_NODES, BASE_RELS)
    with pytest.raises(InvalidInput) as refused:
        load_directory(base_db, write_bad_shop(tmp_path / "bad", case), progress=False)
    assert str(refused.value).splitlines()[0].startswith(expected)
    assert database_counts(base_db) == before
    assert rows(base_db, "MATCH (u:User {id: 'u9'}) RETURN count(u)") == [[0]]


def test_skip_invalid_loads_the_rest_and_accounts_for_every_row(empty_db, tmp_path):
    shop = write_shop(tmp_path / "shop", append={
        "products.csv": "p1,Dune,c2,12.50,Ace\n",  # conflicts with line 2: both p1 rows go, and what uses p1
        "interactions.csv": "u2,p3,yesterday,,,\nu9,p3,,,,\n",  # bad ts; dangling user
        "social.csv": "u4,u4,friend\n",  # self-friendship
        "users.csv": "u5,New,\n",  # fine
    })
    rejects = tmp_path / "rejects.csv"
    result = load_directory(empty_db, shop, skip_invalid=True, rejects=rejects, progress=False)
    with open(rejects, newline="", encoding="utf-8") as f:
        rejected = list(csv.DictReader(f))
    assert result.rejected == len(rejected) == 2 + 3 + 2 + 1 + 1 + 1
    for name, count in result.files.items():
        text = (shop / name).read_text(encoding="utf-8")
        assert count["loaded"] + count["rejected"] == count["rows"] == len(text.splitlines()) - 1, name
    reasons = {(r["file"], int(r["line"])): r["reason"] for r in rejected}
    assert reasons[("products.csv", 2)] == "product_id 'p1' has conflicting definitions (see line 6)"
    assert reasons[("interactions.csv", 4)] == "product_id 'p1' was rejected in products.csv"
    assert reasons[("interactions.csv", 8)] == "ts 'yesterday' is neither ISO-8601 nor unix seconds"
    assert reasons[("product_categories.csv", 2)] == "product_id 'p1' was rejected in products.csv"
    assert json.loads(next(r["record"] for r in rejected if r["line"] == "9" and r["file"] == "interactions.csv")) \
        == {"user_id": "u9", "product_id": "p3", "ts": "", "weight": "", "kind": "", "split": ""}
    assert result.nodes == {"User": 5, "Product": 3, "Category": 3}
    assert result.relationships["BOUGHT"] == 2 and result.relationships["VIEWED"] == 0
    assert result.relationships["IN_CATEGORY"] == 2 and result.relationships["FRIEND"] == 2
    assert database_counts(empty_db) == (result.nodes, result.relationships)


def test_parquet_input_loads_like_csv(empty_db, tmp_path):
    csv_shop = write_shop(tmp_path / "csv")
    load_directory(empty_db, csv_shop, progress=False)
    snapshot = ("MATCH (a)-[r]->(b) RETURN a.id, type(r), b.id, properties(r), properties(a), properties(b) "
                "ORDER BY a.id, type(r), b.id")
    expected = rows(empty_db, snapshot)
    parquet_shop = tmp_path / "parquet"
    parquet_shop.mkdir()
    for path in csv_shop.glob("*.csv"):
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.stem == "products":
            frame["price"] = pd.to_numeric(frame["price"])  # typed columns, as Parquet files have them
        if path.stem == "users":
            frame["age"] = pd.to_numeric(frame["age"]).astype("Int64")
        if path.stem == "interactions":
            frame["weight"] = pd.to_numeric(frame["weight"])
        frame.to_parquet(parquet_shop / f"{path.stem}.parquet", index=False)
    empty_db.execute_query("MATCH (n) DETACH DELETE n")
    result = load_directory(empty_db, parquet_shop, progress=False)
    assert result.nodes == BASE_NODES and result.relationships == BASE_RELS
    assert rows(empty_db, snapshot) == expected


def cli_env(settings) -> dict[str, str]:
    from graphrec.store.driver import neo4j_uri

    env = {"NEO4J_URI": neo4j_uri(settings)}
    if settings.neo4j_password is not None:
        env["NEO4J_PASSWORD"] = settings.neo4j_password.get_secret_value()
    return env


def test_cli_load_prints_the_summary_and_refuses_bad_input(empty_db, neo4j_settings, tmp_path):
    runner = CliRunner()
    good = runner.invoke(cli, ["load", str(write_shop(tmp_path / "good"))], env=cli_env(neo4j_settings))
    assert good.exit_code == 0, good.output
    summary = json.loads(good.stdout)
    assert summary["nodes"] == BASE_NODES and summary["relationships"] == BASE_RELS and summary["rejected"] == 0
    bad = runner.invoke(cli, ["load", str(write_bad_shop(tmp_path / "bad", BAD_CASES[0][1]))],
                        env=cli_env(neo4j_settings))
    assert bad.exit_code == 1 and bad.stdout == ""
    assert BAD_CASES[0][2] in bad.stderr and "nothing was written" in bad.stderr
    partial = runner.invoke(cli, ["load", str(write_bad_shop(tmp_path / "bad2", BAD_CASES[0][1])), "--skip-invalid",
                                   "--rejects", str(tmp_path / "rejects.csv")], env=cli_env(neo4j_settings))
    assert partial.exit_code == 0 and json.loads(partial.stdout)["rejected"] == 1
    assert "interactions.csv: 7 rows, 6 loaded, 1 rejected" in partial.stderr
    lonely = runner.invoke(cli, ["load", str(tmp_path / "good"), "--skip-invalid"], env=cli_env(neo4j_settings))
    assert lonely.exit_code == 2 and "--rejects" in lonely.stderr
    nodes, rels = database_counts(empty_db)
    assert rels == BASE_RELS and nodes == {**BASE_NODES, "User": BASE_NODES["User"] + 1}  # u9 of the partial load


# -- the store's limits, checked on the real server ------------------------------------------------

def test_the_index_key_limit_is_the_servers(empty_db):
    """graphrec.limits.INDEX_KEY_MAX_BYTES is what Neo4j really indexes: one byte more fails the write."""
    from neo4j.exceptions import Neo4jError

    from graphrec import limits

    for label, prop in (("User", "id"), ("Product", "name"), ("Category", "name")):
        for char in ("x", "é", "€", "😀"):  # 1 to 4 bytes of UTF-8
            fits = char * (limits.INDEX_KEY_MAX_BYTES // len(char.encode()))
            over = fits + "x" * (limits.INDEX_KEY_MAX_BYTES - len(fits.encode()) + 1)
            empty_db.execute_query(f"CREATE (n:{label} {{{prop}: $v}}) DELETE n", v=fits)
            with pytest.raises(Neo4jError, match="too large to index"):
                empty_db.execute_query(f"CREATE (n:{label} {{{prop}: $v}}) DELETE n", v=over)
    assert limits.ID_MAX_BYTES <= limits.INDEX_KEY_MAX_BYTES


def test_the_timestamp_range_is_what_neo4j_and_the_driver_round_trip(empty_db):
    from neo4j.exceptions import BrokenRecordError

    from graphrec import limits

    for ms in (limits.TS_MIN_MS, limits.TS_MAX_MS):
        value = empty_db.execute_query("RETURN datetime({epochMillis: $ms}) AS t", ms=ms).records[0]["t"]
        assert value.to_native().timestamp() * 1000 == pytest.approx(ms)
    for ms in (limits.TS_MIN_MS - 1, limits.TS_MAX_MS + 1):  # one millisecond out: stored, but unreadable
        with pytest.raises(BrokenRecordError):
            empty_db.execute_query("RETURN datetime({epochMillis: $ms}) AS t", ms=ms).records[0]["t"]


def test_values_at_the_limits_load_and_read_back(empty_db, tmp_path):
    from graphrec import limits

    longest_id = "u" + "€" * ((limits.ID_MAX_BYTES - 1) // 3)
    longest_name = "é" * (limits.INDEX_KEY_MAX_BYTES // 2)
    shop = write_shop(tmp_path, append={
        "users.csv": f"{longest_id},Max,1\n",
        "products.csv": f"p5,{longest_name},c3,1000000000000,\n",
        "interactions.csv": f"{longest_id},p5,0001-01-01T00:00:00Z,1000000,,\nu2,p3,9999-12-31T23:59:59.999Z,0.001,,\n",
    })
    load_directory(empty_db, shop, progress=False)
    got = rows(empty_db, "MATCH (u:User)-[r:BOUGHT]->(p:Product {id: 'p5'}) RETURN u.id, p.name, p.price, r.weight, "
                         "toString(r.ts)")
    assert got == [[longest_id, longest_name, 1e12, 1e6, "0001-01-01T00:00:00Z"]]
    assert rows(empty_db, "MATCH (:User {id: 'u2'})-[r:BOUGHT]->(:Product {id: 'p3'}) RETURN toString(r.ts)") \
        == [["9999-12-31T23:59:59.999Z"]]
    # Every timestamp in the graph reads back through the driver (none is past year 9999).
    assert len(rows(empty_db, "MATCH ()-[r:BOUGHT]->() WHERE r.ts IS NOT NULL RETURN r.ts")) == 4


def test_batches_are_bounded_in_bytes_too(tmp_path):
    from graphrec.store.loader import _Step

    step = _Step("User", "", "", [["x" * 1000] * 50], ids=[f"u{i}" for i in range(50)])
    batches = list(step.batches(size=40, max_bytes=10_100))  # rows of about 1003
    assert [len(b["ids"]) for b in batches] == [10, 10, 10, 10, 10]
    assert [len(b["ids"]) for b in step.batches(size=40, max_bytes=10**9)] == [40, 10]
    big = _Step("User", "", "", [["x" * 50_000, "y"]], ids=["u1", "u2"])  # one row over the budget still goes
    assert [len(b["ids"]) for b in big.batches(size=10, max_bytes=10_000)] == [1, 1]


# -- two loads at once -----------------------------------------------------------------------------

def fresh_database(driver) -> None:
    """An empty database without GraphRec's constraints and indexes, as on first use."""
    wipe(driver)
    with driver.session() as s:
        for name in [r["name"] for r in s.run("SHOW CONSTRAINTS YIELD name")]:
            s.run(f"DROP CONSTRAINT `{name}`").consume()
        for name in [r["name"] for r in s.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name")]:
            s.run(f"DROP INDEX `{name}`").consume()


def test_concurrent_loads_on_a_fresh_database_do_not_collide(driver, tmp_path):
    import threading

    from graphrec.store.loader import LoadInProgress

    shop = write_shop(tmp_path)
    for _ in range(3):
        fresh_database(driver)
        outcomes: list[str] = []
        start = threading.Barrier(3)

        def load() -> None:
            start.wait()
            try:
                load_directory(driver, shop, progress=False)
                outcomes.append("loaded")
            except LoadInProgress as err:
                assert "another graphrec load is writing to this database" in str(err)
                outcomes.append("refused")
            except Exception as err:  # noqa: BLE001 - the defect: a raw schema or deadlock error
                outcomes.append(f"{type(err).__name__}: {err}")

        threads = [threading.Thread(target=load) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert "loaded" in outcomes and set(outcomes) <= {"loaded", "refused"}, outcomes
        assert database_counts(driver) == (BASE_NODES, BASE_RELS)


def test_a_load_while_another_holds_the_lock_is_refused_clearly(empty_db, neo4j_settings, tmp_path):
    from graphrec.store.driver import connect
    from graphrec.store.loader import LoadInProgress, load_lock

    shop = write_shop(tmp_path)
    other = connect(neo4j_settings)  # another process, as far as Neo4j can tell
    try:
        with load_lock(other):
            with pytest.raises(LoadInProgress, match="another graphrec load is writing to this database"):
                load_directory(empty_db, shop, progress=False)
            result = CliRunner().invoke(cli, ["load", str(shop)], env=cli_env(neo4j_settings))
            assert result.exit_code == 1 and "another graphrec load is writing to this database" in result.stderr
            assert database_counts(empty_db) == ({k: 0 for k in BASE_NODES}, {k: 0 for k in BASE_RELS})
        # Released: the next load goes ahead. A holder that dies releases it too (its transaction ends).
        lock = load_lock(other)
        lock.__enter__()
    finally:
        other.close()
    assert load_directory(empty_db, shop, progress=False).nodes == BASE_NODES
    assert rows(empty_db, "MATCH (l:GraphRecLock) RETURN count(l)") == [[0]]  # never committed
