"""The canonical input layout: which files a shop directory holds and their columns.

Every input adapter (:mod:`graphrec.datasets`) writes this layout and :mod:`graphrec.ingest.validate`
reads it; the column names live here and nowhere else. Each file is ``<name>.csv`` (UTF-8, comma,
header row) or ``<name>.parquet`` with the same columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class FileSpec:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    required_file: bool = True
    # users.csv keeps any extra column as a node property; other files ignore extras (with a warning).
    open_columns: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


USERS = FileSpec("users", ("user_id",), ("name",), open_columns=True)
PRODUCTS = FileSpec("products", ("product_id",), ("name", "category_id", "price", "brand"))
CATEGORIES = FileSpec("categories", ("category_id",), ("name", "parent_id"))
INTERACTIONS = FileSpec("interactions", ("user_id", "product_id"), ("ts", "weight", "kind", "split"))
SOCIAL = FileSpec("social", ("user_id", "other_user_id"), ("kind",))
PRODUCT_CATEGORIES = FileSpec("product_categories", ("product_id", "category_id"), required_file=False)

FILES: tuple[FileSpec, ...] = (CATEGORIES, PRODUCTS, USERS, INTERACTIONS, SOCIAL, PRODUCT_CATEGORIES)
EXTENSIONS = (".csv", ".parquet")


def write_csv(frame: pd.DataFrame, out_dir: Path, spec: FileSpec) -> Path:
    """Write one canonical file as UTF-8 CSV; known columns first, in the layout's order."""
    missing = [c for c in spec.required if c not in frame.columns]
    if missing:
        raise ValueError(f"{spec.name}: missing required columns {missing}")
    known = [c for c in spec.columns if c in frame.columns]
    extra = [c for c in frame.columns if c not in spec.columns]
    if extra and not spec.open_columns:
        raise ValueError(f"{spec.name}: unknown columns {extra}")
    path = Path(out_dir) / f"{spec.name}.csv"
    frame[known + extra].to_csv(path, index=False, encoding="utf-8")
    return path
