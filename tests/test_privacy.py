"""Pseudonymised export end to end: keyed pseudonyms, a snapshot with no real id or name in any
byte, training on it, and serving the model by real user id with the shop's key (real Neo4j)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from graphrec.artifact import Artifact, ArtifactError
from graphrec.privacy import (FINGERPRINT_HEX, PSEUDONYM_HEX, PseudonymKey, PseudonymKeyError, RealIdIndex,
                              is_pseudonym, key_from, pseudonym)

KEY = "3f1c9a7e5b2d4f60a8c1e9b7d5f3a1c2e4b6d8f0a2c4e6b8d0f2a4c6e8b0d2f4"  # openssl rand -hex 32
OTHER_KEY = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"


# -- the pseudonym function -------------------------------------------------------------------------

def test_pseudonym_is_the_documented_keyed_hash():
    expected = hmac.new(KEY.encode(), b"graphrec-user\x00" + "alice@example.com".encode(), hashlib.sha256)
    p = pseudonym("alice@example.com", KEY)
    assert p == "u_" + expected.hexdigest()[:PSEUDONYM_HEX]
    assert is_pseudonym(p) and not is_pseudonym("alice") and not is_pseudonym("u_" + "g" * 32)
    # Deterministic per key, different per key and per id; non-ASCII ids are hashed as UTF-8.
    assert pseudonym("alice@example.com", SecretStr(KEY)) == p
    assert pseudonym("alice@example.com", OTHER_KEY) != p
    assert pseudonym("bob", KEY) != p
    assert pseudonym("Zoë", KEY) == "u_" + hmac.new(KEY.encode(), b"graphrec-user\x00" + "Zoë".encode(),
                                                    hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def test_fingerprint_names_the_key_without_revealing_it():
    key = PseudonymKey(KEY)
    assert key.fingerprint == hmac.new(KEY.encode(), b"graphrec-fingerprint",
                                       hashlib.sha256).hexdigest()[:FINGERPRINT_HEX]
    assert PseudonymKey(OTHER_KEY).fingerprint != key.fingerprint
    # A key pasted with its file's newline is the same key.
    assert PseudonymKey(KEY + "\n").fingerprint == key.fingerprint
    assert KEY not in repr(key) and KEY not in str(key) and key.fingerprint in repr(key)


@pytest.mark.parametrize("bad,why", [("short-key", "too short"), ("", "too short"),
                                     ("ab" * 20, "does not look random")])
def test_weak_keys_are_refused_without_echoing_them(bad, why):
    with pytest.raises(PseudonymKeyError, match=why) as err:
        PseudonymKey(bad)
    assert "GRAPHREC_PSEUDONYM_KEY" in str(err.value)
    if bad:
        assert bad not in str(err.value)


def test_missing_key_says_how_to_set_one():
    for missing in (None, SecretStr(""), SecretStr("   ")):
        with pytest.raises(PseudonymKeyError, match="GRAPHREC_PSEUDONYM_KEY.*openssl rand"):
            key_from(missing)
    assert key_from(SecretStr(KEY)).fingerprint == PseudonymKey(KEY).fingerprint


def test_settings_read_the_key_from_the_environment(monkeypatch):
    from graphrec.config import Settings

    monkeypatch.setenv("GRAPHREC_PSEUDONYM_KEY", KEY)
    settings = Settings()
    assert settings.pseudonym_key is not None and settings.pseudonym_key.get_secret_value() == KEY
    assert KEY not in repr(settings) and KEY not in str(settings.model_dump())


def test_real_id_index_answers_by_real_id():
    key = PseudonymKey(KEY)
    index = RealIdIndex({key.pseudonym("alice"): 0, key.pseudonym("bob"): 1}, key)
    assert index["alice"] == 0 and index.get("bob") == 1 and "alice" in index
    assert index.get("carol") is None and "carol" not in index and index.get("carol", -1) == -1
    # A pseudonym is not a real id: looking one up finds nobody (it would be hashed again).
    assert key.pseudonym("alice") not in index
    assert 7 not in index and index.get(7) is None  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        index["carol"]
    assert len(index) == 2 and set(index) == {key.pseudonym("alice"), key.pseudonym("bob")}
    assert KEY not in repr(index)


# -- end to end against a real Neo4j --------------------------------------------------------------

def _distinctive_shop(driver, tmp: Path) -> tuple[list[str], list[str]]:
    """A generated shop whose users have long, unmistakable ids and names; returns (ids, names)."""
    from graphrec.datasets.synthetic import generate_shop
    from graphrec.store.loader import load_directory

    generate_shop(80, tmp / "shop", seed=11)
    load_directory(driver, tmp / "shop", progress=False)
    with driver.session() as s:
        s.run("MATCH (u:User) SET u.id = 'customer-' + u.id + '@mail.example', "
              "u.name = 'Firstname' + substring(u.id, 1) + ' Lastname'").consume()
        rows = s.run("MATCH (u:User) RETURN u.id AS id, u.name AS name ORDER BY id").data()
    return [r["id"] for r in rows], [r["name"] for r in rows]


def _all_text(root: Path) -> str:
    """What a reader of the snapshot sees: meta.json, every Parquet table decoded to text (raw bytes
    are compressed, so a plain id need not appear in them), and every file's Parquet metadata
    (key-value metadata, and each column chunk's min/max statistics)."""
    parts = [(root / "meta.json").read_text()]
    for path in sorted(root.rglob("*.parquet")):
        parts.append(pq.read_table(path).to_pandas().to_csv(index=False))
        meta = pq.ParquetFile(path).metadata
        parts.append(repr(meta.metadata))
        for g in range(meta.num_row_groups):
            for c in range(meta.num_columns):
                stats = meta.row_group(g).column(c).statistics
                if stats is not None and stats.has_min_max:
                    parts += [str(stats.min), str(stats.max)]
    return "\n".join(parts)


@pytest.fixture(scope="module")
def exports(driver, neo4j_settings, tmp_path_factory) -> dict:
    """The distinctive shop in Neo4j, exported plain (library) and with two keys (CLI)."""
    from graphrec.cli import app
    from graphrec.learn.snapshot import export_snapshot
    from tests.conftest import wipe
    from tests.serving_fixtures import cli_env

    wipe(driver)
    tmp = tmp_path_factory.mktemp("privacy")
    ids, names = _distinctive_shop(driver, tmp)
    export_snapshot(driver, tmp / "plain")
    runner = CliRunner()
    metas = {}
    for name, key in (("a", KEY), ("a_again", KEY), ("b", OTHER_KEY)):
        # Small batches: the pseudonymised user file is written in several pieces too.
        res = runner.invoke(app, ["export", "--out", str(tmp / name), "--pseudonymise", "--batch-size", "17"],
                            env={**cli_env(neo4j_settings), "GRAPHREC_PSEUDONYM_KEY": key})
        assert res.exit_code == 0, res.output
        metas[name] = json.loads(res.stdout)
    return {"tmp": tmp, "ids": ids, "names": names, "metas": metas, "env": cli_env(neo4j_settings)}


def test_snapshot_holds_no_real_id_or_name_in_any_byte(exports):
    ids, names, root = exports["ids"], exports["names"], exports["tmp"] / "a"
    assert len(ids) == 80 and all(names)
    # The check can fail: the plain export of the same graph holds them all.
    plain = _all_text(exports["tmp"] / "plain")
    assert all(i in plain for i in ids) and all(n in plain for n in names)
    plain_bytes = (exports["tmp"] / "plain" / "nodes" / "user.parquet").read_bytes()
    assert min(ids).encode() in plain_bytes and max(ids).encode() in plain_bytes  # statistics
    text = _all_text(root)
    files = sorted(p for p in root.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"meta.json", "user.parquet", "bought.parquet", "friend.parquet"}
    for secret in [*ids, *names, KEY]:
        assert secret not in text, secret
        for path in files:  # raw bytes too (Parquet statistics, metadata, dictionary pages)
            assert secret.encode() not in path.read_bytes(), (secret, path)
    users = pq.read_table(root / "nodes" / "user.parquet")
    assert users.column_names == ["index", "id"]  # names (and any other property) dropped
    assert users.column("id").to_pylist() == sorted(pseudonym(i, KEY) for i in ids)


def test_meta_records_the_fingerprint_never_the_key(exports):
    meta = exports["metas"]["a"]
    assert meta["pseudonymised"] is True
    assert meta["pseudonym_key_fingerprint"] == PseudonymKey(KEY).fingerprint
    assert json.loads((exports["tmp"] / "a" / "meta.json").read_text())["pseudonymised"] is True
    assert KEY not in json.dumps(meta)
    plain = json.loads((exports["tmp"] / "plain" / "meta.json").read_text())
    assert plain["pseudonymised"] is False and "pseudonym_key_fingerprint" not in plain


def test_same_key_same_snapshot_other_key_other_pseudonyms(exports):
    metas, tmp = exports["metas"], exports["tmp"]
    assert metas["a"]["snapshot_id"] == metas["a_again"]["snapshot_id"]
    for path in sorted((tmp / "a").rglob("*.parquet")):
        again = tmp / "a_again" / path.relative_to(tmp / "a")
        assert pq.read_table(path).equals(pq.read_table(again)), path
    assert metas["b"]["snapshot_id"] != metas["a"]["snapshot_id"]
    assert metas["b"]["pseudonym_key_fingerprint"] != metas["a"]["pseudonym_key_fingerprint"]
    a_ids = set(pq.read_table(tmp / "a" / "nodes" / "user.parquet").column("id").to_pylist())
    b_ids = set(pq.read_table(tmp / "b" / "nodes" / "user.parquet").column("id").to_pylist())
    assert not a_ids & b_ids
    assert metas["a"]["counts"] == metas["b"]["counts"] == json.loads(
        (tmp / "plain" / "meta.json").read_text())["counts"]


def test_cli_refuses_a_missing_or_weak_key_and_writes_nothing(exports, tmp_path):
    from graphrec.cli import app

    runner = CliRunner()
    for env, why in (({}, "no pseudonym key"), ({"GRAPHREC_PSEUDONYM_KEY": "hunter2"}, "too short")):
        res = runner.invoke(app, ["export", "--out", str(tmp_path / "snap"), "--pseudonymise"],
                            env={**exports["env"], "GRAPHREC_PSEUDONYM_KEY": "", **env})
        assert res.exit_code == 2, res.output
        assert why in res.output and "Traceback" not in res.output and "hunter2" not in res.output
        assert not (tmp_path / "snap").exists()


@pytest.fixture(scope="module")
def trained(exports):
    """A tiny LightGCN trained on the pseudonymised snapshot, as a data scientist would."""
    from graphrec.learn.snapshot import load_snapshot, to_interactions
    from graphrec.learn.config import default_config
    from graphrec.learn.train import Trainer, build_artifact

    data = to_interactions(load_snapshot(exports["tmp"] / "a"))
    assert all(is_pseudonym(u) for u in data.user_ids)
    assert data.pseudonym_fingerprint == PseudonymKey(KEY).fingerprint
    config = default_config("lightgcn", data.train.shape[1], epochs=2, dim=8, batch_size=256, seed=1)
    result = Trainer(data, config).fit()
    path = build_artifact(result, data, exports["tmp"] / "model")
    return {"path": path, "data": data}


def test_artifact_carries_the_fingerprint_and_no_real_id(exports, trained):
    path = trained["path"]
    manifest = json.loads((path / "manifest.json").read_text())
    assert manifest["pseudonymised"] is True
    assert manifest["pseudonym_key_fingerprint"] == PseudonymKey(KEY).fingerprint
    for file in path.iterdir():
        blob = file.read_bytes()
        for secret in [*exports["ids"], KEY]:
            assert secret.encode() not in blob, (secret, file)


def test_evaluation_without_the_key_works_on_pseudonyms(exports, trained):
    from graphrec.learn.report import evaluate

    art = Artifact.load(trained["path"])  # the data scientist has no key
    assert art.pseudonymised and not isinstance(art.user_index, RealIdIndex)
    report = evaluate(art, trained["data"], (10,), [], seed=1)
    assert report["n_test_users"] > 0
    # Without the key nobody is found by real id.
    assert exports["ids"][0] not in art.user_index


def test_loaded_with_the_key_it_serves_real_ids_as_their_rows(exports, trained):
    from graphrec.coldstart import fold_in_user
    from graphrec.serving.recommender import Recommender

    stored = Artifact.load(trained["path"])
    art = Artifact.load(trained["path"], pseudonym_key=SecretStr(KEY), real_ids=True)
    rec = Recommender(art)
    for real in exports["ids"]:
        row = stored.user_index[pseudonym(real, KEY)]
        assert art.user_index[real] == row and real in art.user_index
        vec = rec.user_vector(real)
        assert vec is not None
        np.testing.assert_array_equal(vec, stored.user_emb[row])
        got = [s.product_id for s in rec.recommend(vec, 10)]
        order = np.lexsort((np.array(stored.product_ids), -(stored.product_emb @ stored.user_emb[row])))
        assert got == [stored.product_ids[i] for i in order[:10]]
    assert rec.user_vector("customer-nobody@mail.example") is None
    # Fold-in names friends by real id, unchanged code (friends weighted whatever this tiny
    # graph's validation chose: here they must count).
    friends = exports["ids"][:3]
    w = {"friends": 1.0}
    expected = fold_in_user(stored, friends=[pseudonym(f, KEY) for f in friends], weights=w)
    assert not np.allclose(expected, fold_in_user(stored, friends=[], weights=w))  # the friends do count
    np.testing.assert_allclose(fold_in_user(art, friends=friends, weights=w), expected)


def test_reveal_labels_rows_with_the_graphs_real_ids(exports, trained):
    art = Artifact.load(trained["path"], pseudonym_key=KEY)
    assert all(is_pseudonym(u) for u in art.user_ids)
    known = exports["ids"][:50]
    assert art.reveal_user_ids([*known, "customer-nobody@mail.example"]) == 50
    assert sorted(u for u in art.user_ids if not is_pseudonym(u)) == sorted(known)
    for real in known:
        assert art.user_ids[art.user_index[real]] == real
    # Revealing again from a smaller set (a user erased) forgets the others.
    assert art.reveal_user_ids(known[:10]) == 10
    assert sum(not is_pseudonym(u) for u in art.user_ids) == 10


def test_wrong_or_missing_key_fails_clearly_at_load(trained, caplog):
    path = trained["path"]
    fingerprint = PseudonymKey(KEY).fingerprint
    with caplog.at_level(logging.DEBUG):
        with pytest.raises(ArtifactError, match=f"fingerprint {fingerprint}.*{PseudonymKey(OTHER_KEY).fingerprint}") as err:
            Artifact.load(path, pseudonym_key=OTHER_KEY)
        assert OTHER_KEY not in str(err.value)
        with pytest.raises(ArtifactError, match="GRAPHREC_PSEUDONYM_KEY"):
            Artifact.load(path, real_ids=True)
        with pytest.raises(ArtifactError, match="too short") as err:
            Artifact.load(path, pseudonym_key="hunter2")
        assert "hunter2" not in str(err.value)
    assert KEY not in caplog.text and OTHER_KEY not in caplog.text


def test_the_api_serves_a_pseudonymised_model_by_real_id(exports, trained, driver, neo4j_settings, kit, walk):
    """The service holds the shop's key: requests name real users, explanations walk real paths,
    and the artifact (trained without ever seeing a real id) never needs to."""
    from api.main import create_app

    settings = kit.settings_for(neo4j_settings).model_copy(update={"pseudonym_key": SecretStr(KEY)})
    real = exports["ids"][:5]
    with kit.LiveServer(create_app(settings, trained["path"])) as server:
        for user in real:
            body = server.client.get(f"/users/{user}/recommendations", params={"k": 5}).json()
            assert body["source"] == "model" and len(body["items"]) == 5, body
            for item in body["items"]:
                for exp in item["explanations"]:
                    assert walk(driver, exp["path"]), exp
                    assert not any(is_pseudonym(step.get("id", "")) for step in exp["path"])
        # Erasure hides the row by its real id although the artifact names it by pseudonym.
        assert server.client.delete(f"/users/{real[0]}").status_code == 200
        assert server.client.get(f"/users/{real[0]}/recommendations").status_code == 404
