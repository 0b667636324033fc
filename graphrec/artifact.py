"""Model artifacts: everything serving needs to recommend without retraining.

An artifact is a directory::

    manifest.json           {format_version, model, snapshot_id, created_at, config, metrics, coldstart,
                             coldstart_validation (optional: how the fold-in weights were chosen),
                             circle (optional: the circle term's weight and how it was chosen)}
    user_ids.json           graph ids of users, in embedding-row order (same for products, categories)
    product_ids.json
    category_ids.json
    user_emb.npy            float32 [n_users, dim]
    product_emb.npy         float32 [n_products, dim]
    category_emb.npy        float32 [n_categories, dim]
    product_categories.npz  CSR (indptr, indices): product row -> category rows
    popularity.npy          int64 [n_products]: training interactions per product
    weights.pt              the model's state_dict (for retraining / inspection; scoring never needs it)

Scoring is always ``user_emb @ product_emb.T`` whatever the model kind, so serving is model-agnostic,
plus the circle term (:mod:`graphrec.circle`: what the user's friends bought) where validation gave
it a weight.

A model trained on a pseudonymised snapshot (``graphrec export --pseudonymise``) is *pseudonymised*:
its manifest says ``"pseudonymised": true`` with the key's fingerprint, and ``user_ids.json`` holds
pseudonyms. Loaded without a key, it answers by pseudonym (what training and evaluation on that
snapshot use). Loaded with the key (``Artifact.load(path, pseudonym_key=...)``), ``user_index``
answers by *real* user id (see :class:`graphrec.privacy.RealIdIndex`), so serving and fold-in work
unchanged; a key with another fingerprint fails. ``real_ids=True`` (serving) makes a missing key fail.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from graphrec.circle import circle_weight
from graphrec.privacy import KeyLike, PseudonymKey, PseudonymKeyError, RealIdIndex, as_key

FORMAT_VERSION = 1

MANIFEST = "manifest.json"


class ArtifactError(RuntimeError):
    """The directory is not a usable artifact (missing files, wrong format version, bad shapes)."""


@dataclass
class Artifact:
    path: Path
    manifest: dict[str, Any]
    user_ids: list[str]
    product_ids: list[str]
    category_ids: list[str]
    user_emb: np.ndarray
    product_emb: np.ndarray
    category_emb: np.ndarray
    product_categories: list[list[int]]
    popularity: np.ndarray
    # The key of a pseudonymised artifact: user_index then answers by real user id.
    pseudonym_key: PseudonymKey | None = field(default=None, repr=False)
    user_index: Mapping[str, int] = field(init=False)
    product_index: dict[str, int] = field(init=False)
    category_index: dict[str, int] = field(init=False)
    _pseudonyms: list[str] | None = field(init=False, default=None, repr=False)  # rows' stored ids

    def __post_init__(self) -> None:
        rows = {u: i for i, u in enumerate(self.user_ids)}
        self.user_index = rows if self.pseudonym_key is None else RealIdIndex(rows, self.pseudonym_key)
        self._pseudonyms = list(self.user_ids) if self.pseudonym_key is not None else None
        self.product_index = {p: i for i, p in enumerate(self.product_ids)}
        self.category_index = {c: i for i, c in enumerate(self.category_ids)}

    @cached_property
    def typical_product_norm(self) -> float:
        """Median embedding norm over the products, the scale every product fold-in takes.

        Computed once: per fold-in it made folding in a long-tail catalogue quadratic (60k untrained
        products of a Ciao-shaped shop: over 10 minutes). Read before the first fold-in row
        replaces an untrained one, so it does not drift with them."""
        return float(np.median(np.linalg.norm(self.product_emb, axis=1)))

    @property
    def model(self) -> str:
        return str(self.manifest["model"])

    @property
    def snapshot_id(self) -> str:
        return str(self.manifest["snapshot_id"])

    @property
    def metrics(self) -> dict[str, Any]:
        return self.manifest.get("metrics", {})

    @property
    def pseudonymised(self) -> bool:
        """Trained on a pseudonymised snapshot: its stored user ids are keyed hashes."""
        return bool(self.manifest.get("pseudonymised", False))

    @property
    def pseudonym_fingerprint(self) -> str | None:
        return self.manifest.get("pseudonym_key_fingerprint") if self.pseudonymised else None

    def reveal_user_ids(self, real_ids: Iterable[str], *, keep_revealed: bool = False) -> int:
        """Label rows by real id where known; returns how many rows carry a real id.

        For a pseudonymised artifact loaded with its key, the rows whose pseudonym is that of one of
        ``real_ids`` (the users the graph holds) get the real id in ``user_ids``; the others keep
        their pseudonym. Code that names users by row (similar users in explanations) needs this;
        lookups by id (``user_index``) do not. ``user_ids`` is replaced, never mutated in place, so
        a reader sees the old list or the new one. A plain artifact already names rows by real id.
        ``keep_revealed`` adds to the ids revealed before instead of starting from the pseudonyms
        (users who arrived in the graph since; the return value then counts only ``real_ids``).
        """
        if self._pseudonyms is None:
            return 0 if self.pseudonymised else len(self.user_ids)
        ids = list(self.user_ids if keep_revealed else self._pseudonyms)
        found = 0
        for real in real_ids:
            row = self.user_index.get(real)
            if row is not None:
                ids[row] = real
                found += 1
        self.user_ids = ids
        return found

    @property
    def coldstart(self) -> dict[str, float]:
        """Fold-in weights (see :mod:`graphrec.coldstart`); empty means its defaults."""
        return self.manifest.get("coldstart", {})

    @property
    def coldstart_validation(self) -> dict[str, Any]:
        """How the fold-in weights were chosen (:mod:`graphrec.learn.coldstart_validation`); empty for an
        artifact from before the validated fold-in, which uses the defaults."""
        return self.manifest.get("coldstart_validation", {})

    @property
    def circle_weight(self) -> float:
        """The circle term's weight (:mod:`graphrec.circle`); 0 for an artifact from before it."""
        return circle_weight(self.manifest)

    def scores(self, user_rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Dot-product scores of the given users against every product."""
        return self.user_emb[np.asarray(user_rows)] @ self.product_emb.T

    @classmethod
    def load(cls, path: str | Path, pseudonym_key: KeyLike | None = None, *,
             real_ids: bool = False) -> "Artifact":
        """Read an artifact directory; fails with :class:`ArtifactError` on anything unusable.

        ``pseudonym_key``: the key a pseudonymised artifact's snapshot was exported with; its
        ``user_index`` then answers by real user id, and a key with another fingerprint fails. A
        plain artifact ignores it. ``real_ids``: the caller looks users up by real id (serving),
        so a pseudonymised artifact without a key fails instead of knowing nobody.
        """
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise ArtifactError(f"{path} is not a model artifact: no {MANIFEST}")
        manifest = json.loads(manifest_path.read_text())
        version = manifest.get("format_version")
        if version != FORMAT_VERSION:
            raise ArtifactError(
                f"artifact {path} has format_version {version!r}, this GraphRec reads "
                f"format_version {FORMAT_VERSION}; retrain with `graphrec train` to rebuild it"
            )
        key = _checked_key(path, manifest, pseudonym_key, real_ids)
        try:
            ids = {k: json.loads((path / f"{k}_ids.json").read_text()) for k in _KINDS}
            emb = {k: np.load(path / f"{k}_emb.npy").astype(np.float32, copy=False) for k in _KINDS}
            csr = np.load(path / "product_categories.npz")
            popularity = np.load(path / "popularity.npy")
        except FileNotFoundError as exc:
            raise ArtifactError(f"artifact {path} is incomplete: {exc.filename} missing") from exc
        for kind in _KINDS:
            if emb[kind].ndim != 2 or emb[kind].shape[0] != len(ids[kind]):
                raise ArtifactError(
                    f"artifact {path}: {kind}_emb has shape {emb[kind].shape} "
                    f"but there are {len(ids[kind])} {kind} ids"
                )
        indptr, indices = csr["indptr"], csr["indices"]
        product_categories = [
            indices[indptr[i] : indptr[i + 1]].tolist() for i in range(len(indptr) - 1)
        ]
        return cls(
            path=path,
            manifest=manifest,
            user_ids=ids["user"],
            product_ids=ids["product"],
            category_ids=ids["category"],
            user_emb=emb["user"],
            product_emb=emb["product"],
            category_emb=emb["category"],
            product_categories=product_categories,
            popularity=popularity,
            pseudonym_key=key,
        )


def _checked_key(path: Path, manifest: dict[str, Any], key: KeyLike | None,
                 real_ids: bool) -> PseudonymKey | None:
    """The key to look users up with: None for a plain artifact or a pseudonym-keyed read."""
    if not manifest.get("pseudonymised", False):
        return None
    expected = manifest.get("pseudonym_key_fingerprint")
    if not isinstance(expected, str) or not expected:
        raise ArtifactError(f"artifact {path}: {MANIFEST} says pseudonymised but has no "
                            "pseudonym_key_fingerprint; retrain it from the pseudonymised snapshot")
    if key is None:
        if real_ids:
            raise ArtifactError(
                f"artifact {path} holds pseudonymised user ids (key fingerprint {expected}): set "
                "GRAPHREC_PSEUDONYM_KEY to the key its snapshot was exported with, so users can be "
                "found by their real ids")
        return None
    try:
        checked = as_key(key)
    except PseudonymKeyError as err:
        raise ArtifactError(f"artifact {path}: {err}") from None
    if checked.fingerprint != expected:
        raise ArtifactError(
            f"artifact {path} was pseudonymised with the key of fingerprint {expected}, but the "
            f"given key's fingerprint is {checked.fingerprint}: use the key its snapshot was "
            "exported with (GRAPHREC_PSEUDONYM_KEY)")
    return checked


_KINDS = ("user", "product", "category")


def save_artifact(
    out_dir: str | Path,
    *,
    model: str,
    snapshot_id: str,
    config: dict[str, Any],
    metrics: dict[str, Any],
    user_ids: Sequence[str],
    product_ids: Sequence[str],
    category_ids: Sequence[str],
    user_emb: np.ndarray,
    product_emb: np.ndarray,
    category_emb: np.ndarray,
    product_categories: Sequence[Sequence[int]],
    popularity: np.ndarray,
    state_dict: dict[str, Any] | None = None,
    coldstart: dict[str, float] | None = None,
    pseudonym_fingerprint: str | None = None,
    coldstart_validation: dict[str, Any] | None = None,
    circle: dict[str, Any] | None = None,
) -> Path:
    """Write an artifact directory (created if needed, files overwritten) and return its path.

    ``pseudonym_fingerprint``: the snapshot was pseudonymised with the key of this fingerprint
    (``user_ids`` are pseudonyms); the manifest records it so serving can demand the same key.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = {"user": list(map(str, user_ids)), "product": list(map(str, product_ids)),
           "category": list(map(str, category_ids))}
    emb = {"user": user_emb, "product": product_emb, "category": category_emb}
    for kind in _KINDS:
        if len(emb[kind]) != len(ids[kind]):
            raise ValueError(f"{kind}: {len(emb[kind])} embeddings for {len(ids[kind])} ids")
        (out / f"{kind}_ids.json").write_text(json.dumps(ids[kind]))
        np.save(out / f"{kind}_emb.npy", np.ascontiguousarray(emb[kind], dtype=np.float32))
    lengths = np.fromiter((len(c) for c in product_categories), dtype=np.int64,
                          count=len(product_categories))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = (np.fromiter((c for cats in product_categories for c in cats), dtype=np.int64)
               if indptr[-1] else np.zeros(0, dtype=np.int64))
    np.savez(out / "product_categories.npz", indptr=indptr, indices=indices)
    np.save(out / "popularity.npy", np.asarray(popularity, dtype=np.int64))
    if state_dict is not None:
        import torch  # only the writer needs torch; serving reads numpy files

        torch.save(state_dict, out / "weights.pt")
    manifest = {
        "format_version": FORMAT_VERSION,
        "model": model,
        "snapshot_id": snapshot_id,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": config,
        "metrics": metrics,
        "coldstart": coldstart or {},
        **({"coldstart_validation": coldstart_validation} if coldstart_validation else {}),
        **({"circle": circle} if circle else {}),
        "dim": int(user_emb.shape[1]),
        "counts": {k: len(ids[k]) for k in _KINDS},
        "pseudonymised": bool(pseudonym_fingerprint),
        **({"pseudonym_key_fingerprint": pseudonym_fingerprint} if pseudonym_fingerprint else {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out
