"""Artifact round trip, the format-version check, and cold-start fold-in."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graphrec.artifact import FORMAT_VERSION, Artifact, ArtifactError, save_artifact
from graphrec.coldstart import DEFAULT_WEIGHTS, fold_in_product, fold_in_user


def _save(path, **kw):
    rng = np.random.default_rng(0)
    args = dict(model="lightgcn", snapshot_id="snap1", config={"dim": 4}, metrics={"recall@20": 0.3},
                user_ids=["u1", "u2", "u3"], product_ids=["p1", "p2"], category_ids=["c1"],
                user_emb=rng.normal(size=(3, 4)), product_emb=rng.normal(size=(2, 4)),
                category_emb=rng.normal(size=(1, 4)), product_categories=[[0], []],
                popularity=np.array([5, 1]), state_dict=None)
    args.update(kw)
    return save_artifact(path, **args)


def test_round_trip(tmp_path):
    _save(tmp_path)
    a = Artifact.load(tmp_path)
    assert a.user_ids == ["u1", "u2", "u3"] and a.product_index == {"p1": 0, "p2": 1}
    assert a.user_emb.dtype == np.float32 and a.user_emb.shape == (3, 4)
    assert a.product_categories == [[0], []]
    assert a.popularity.tolist() == [5, 1]
    assert a.manifest["snapshot_id"] == "snap1" and a.manifest["format_version"] == FORMAT_VERSION
    np.testing.assert_allclose(a.scores([0]), a.user_emb[[0]] @ a.product_emb.T)


def test_version_mismatch_fails_clearly(tmp_path):
    _save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = FORMAT_VERSION + 1
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="format_version"):
        Artifact.load(tmp_path)


def test_missing_or_inconsistent_files_fail(tmp_path):
    with pytest.raises(ArtifactError, match="no manifest"):
        Artifact.load(tmp_path)
    _save(tmp_path)
    np.save(tmp_path / "user_emb.npy", np.zeros((2, 4), np.float32))
    with pytest.raises(ArtifactError, match="user_emb"):
        Artifact.load(tmp_path)
    with pytest.raises(ValueError):
        _save(tmp_path / "bad", user_ids=["only-one"])


def test_fold_in_user_follows_friends(tmp_path):
    # Two taste clusters along axis 0 and axis 1; a new user whose friends are in cluster A
    # must rank cluster A's product first.
    users = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], np.float32)
    products = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    _save(tmp_path, user_ids=["a1", "a2", "b1"], user_emb=users, product_emb=products,
          category_emb=np.array([[0.0, 1.0]], np.float32), popularity=np.array([1, 9]))
    art = Artifact.load(tmp_path)
    vec = fold_in_user(art, friends=["a1", "a2", "unknown"], weights={"prior": 0.0})
    assert vec.dtype == np.float32 and vec.shape == (2,)
    assert np.argmax(products @ vec) == 0
    vec_b = fold_in_user(art, friends=["b1"], weights={"prior": 0.0})
    assert np.argmax(products @ vec_b) == 1
    # Nothing known: only the prior remains (mean user), never NaN.
    assert np.isfinite(fold_in_user(art)).all()


def test_fold_in_product_from_categories(tmp_path):
    _save(tmp_path, category_emb=np.array([[0.0, 3.0, 0.0, 0.0]], np.float32))
    art = Artifact.load(tmp_path)
    vec = fold_in_product(art, categories=["c1"])
    assert vec[1] > 0 and np.allclose(vec[[0, 2, 3]], 0)
    # Rescaled to product_scale x the median product norm: ranks like a modest product, and a
    # category centroid never outranks real products for everyone.
    median = np.median(np.linalg.norm(art.product_emb, axis=1))
    assert np.linalg.norm(vec) == pytest.approx(DEFAULT_WEIGHTS["product_scale"] * median, rel=1e-5)
    vec2 = fold_in_product(art, categories=["c1"], weights={"product_scale": 1.0})
    assert np.linalg.norm(vec2) == pytest.approx(median, rel=1e-5)
    assert np.allclose(fold_in_product(art, categories=["nope"]), 0)


# -- pseudonymised artifacts (graphrec.privacy) -------------------------------------------------------

KEY = "c0ffee1234567890abcdef0fedcba9876543210deadbeefcafef00d5eed1e5ab"


def _save_pseudonymised(path, real_ids=("alice", "bob", "carol"), key=KEY, **kw):
    from graphrec.privacy import PseudonymKey

    k = PseudonymKey(key)
    users = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0]], np.float32)[: len(real_ids)]
    return _save(path, user_ids=[k.pseudonym(u) for u in real_ids], user_emb=users,
                 product_emb=np.array([[1.0, 0.0], [0.0, 1.0]], np.float32),
                 category_emb=np.array([[0.0, 1.0]], np.float32), pseudonym_fingerprint=k.fingerprint, **kw)


def test_manifest_records_pseudonymisation(tmp_path):
    from graphrec.privacy import PseudonymKey

    _save_pseudonymised(tmp_path / "p")
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    assert manifest["pseudonymised"] is True
    assert manifest["pseudonym_key_fingerprint"] == PseudonymKey(KEY).fingerprint
    _save(tmp_path / "plain")
    plain = json.loads((tmp_path / "plain" / "manifest.json").read_text())
    assert plain["pseudonymised"] is False and "pseudonym_key_fingerprint" not in plain
    assert not Artifact.load(tmp_path / "plain").pseudonymised


def test_pseudonymised_artifact_by_key_or_by_pseudonym(tmp_path):
    from graphrec.privacy import pseudonym

    _save_pseudonymised(tmp_path)
    stored = Artifact.load(tmp_path)  # evaluation: by the ids it was trained on
    assert stored.pseudonymised and "alice" not in stored.user_index
    assert stored.user_index[pseudonym("alice", KEY)] == 0
    keyed = Artifact.load(tmp_path, pseudonym_key=KEY, real_ids=True)  # serving
    assert keyed.user_index["alice"] == 0 and keyed.user_index.get("carol") == 2
    assert "dave" not in keyed.user_index and keyed.user_index.get("dave") is None
    assert keyed.pseudonym_fingerprint == stored.pseudonym_fingerprint
    # Fold-in looks friends up in user_index: real ids work unchanged.
    products = keyed.product_emb
    assert np.argmax(products @ fold_in_user(keyed, friends=["alice", "bob"], weights={"prior": 0.0})) == 0
    assert np.argmax(products @ fold_in_user(keyed, friends=["carol"], weights={"prior": 0.0})) == 1
    bought_by_carol = fold_in_product(keyed, buyers=["carol"], weights={"product_categories": 0.0})
    assert bought_by_carol[1] > 0 and bought_by_carol[0] == 0


def test_pseudonymised_artifact_refuses_a_wrong_or_missing_key(tmp_path):
    from graphrec.privacy import PseudonymKey

    _save_pseudonymised(tmp_path)
    wrong = "0123456789abcdef" * 4
    with pytest.raises(ArtifactError, match=f"fingerprint {PseudonymKey(KEY).fingerprint}") as err:
        Artifact.load(tmp_path, pseudonym_key=wrong)
    assert wrong not in str(err.value) and KEY not in str(err.value)
    with pytest.raises(ArtifactError, match="holds pseudonymised user ids.*GRAPHREC_PSEUDONYM_KEY"):
        Artifact.load(tmp_path, real_ids=True)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    del manifest["pseudonym_key_fingerprint"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="no pseudonym_key_fingerprint"):
        Artifact.load(tmp_path, pseudonym_key=KEY)


def test_a_plain_artifact_ignores_the_key(tmp_path):
    _save(tmp_path)
    art = Artifact.load(tmp_path, pseudonym_key=KEY, real_ids=True)
    assert art.user_index == {"u1": 0, "u2": 1, "u3": 2}
    assert art.reveal_user_ids(["u1"]) == 3 and art.user_ids == ["u1", "u2", "u3"]
