"""Model artifacts: everything serving needs to recommend without retraining.

An artifact is a directory::

    manifest.json           {format_version, model, snapshot_id, created_at, config, metrics, coldstart}
    user_ids.json           graph ids of users, in embedding-row order (same for products, categories)
    product_ids.json
    category_ids.json
    user_emb.npy            float32 [n_users, dim]
    product_emb.npy         float32 [n_products, dim]
    category_emb.npy        float32 [n_categories, dim]
    product_categories.npz  CSR (indptr, indices): product row -> category rows
    popularity.npy          int64 [n_products]: training interactions per product
    weights.pt              the model's state_dict (for retraining / inspection; scoring never needs it)

Scoring is always ``user_emb @ product_emb.T`` whatever the model kind, so serving is model-agnostic.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

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
    user_index: dict[str, int] = field(init=False)
    product_index: dict[str, int] = field(init=False)
    category_index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.user_index = {u: i for i, u in enumerate(self.user_ids)}
        self.product_index = {p: i for i, p in enumerate(self.product_ids)}
        self.category_index = {c: i for i, c in enumerate(self.category_ids)}

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
    def coldstart(self) -> dict[str, float]:
        """Fold-in weights (see :mod:`graphrec.coldstart`); empty means its defaults."""
        return self.manifest.get("coldstart", {})

    def scores(self, user_rows: np.ndarray | Sequence[int]) -> np.ndarray:
        """Dot-product scores of the given users against every product."""
        return self.user_emb[np.asarray(user_rows)] @ self.product_emb.T

    @classmethod
    def load(cls, path: str | Path) -> "Artifact":
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
        )


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
) -> Path:
    """Write an artifact directory (created if needed, files overwritten) and return its path."""
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
        "dim": int(user_emb.shape[1]),
        "counts": {k: len(ids[k]) for k in _KINDS},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return out
