"""HetRec 2011 Last.fm -> the canonical layout.

Mapping: users -> users (raw Last.fm user id strings), artists -> products (raw artist id, name),
tags -> categories (tag id, name), listening count -> purchase ``weight``, ``user_friends.dat`` ->
``social.csv`` kind friend (the file lists each mutual friendship in both directions; the loader
stores it once). Each artist's most-used tag (most assignments, ties to the smaller tag id) is its
``category_id``; its other tags with at least ``min_tag_uses`` assignments go to
``product_categories.csv``. Only tags that end up used become categories.

The raw files have traps, handled here and counted in the report: ``tags.dat`` is Latin-1,
``artists.dat`` is UTF-8 with odd characters (and no quoting: a name may hold a quote), and tag
assignments name artists that ``artists.dat`` lacks (they are dropped).

With ``split_dir`` (the SocialLGN split) every interaction gets ``split`` train or test exactly as
published: ``userReindex.json`` / ``itemReindex.json`` map raw ids to the indices of
``train_set.txt`` / ``test_set.txt``. An interaction missing from the split, or a split row that is
not an interaction, is an error, not a guess.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pandas as pd

from graphrec.ingest import layout

MIN_TAG_USES = 3


class DatasetError(ValueError):
    """The raw files are missing or do not fit together; the message says which and how."""


def _read_dat(path: Path, encoding: str) -> pd.DataFrame:
    if not path.is_file():
        raise DatasetError(f"{path}: missing (is this the hetrec2011-lastfm-2k directory?)")
    # Tab-separated, no quoting at all: names such as 'Guns N" Roses' must stay as they are.
    return pd.read_csv(path, sep="\t", encoding=encoding, quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False, na_filter=False)


def _split_of(interactions: pd.DataFrame, split_dir: Path) -> pd.Series:
    """train/test for each (user_id, product_id) row, from the published re-indexed split."""
    files = {name: split_dir / name for name in ("userReindex.json", "itemReindex.json", "train_set.txt",
                                                 "test_set.txt")}
    for path in files.values():
        if not path.is_file():
            raise DatasetError(f"{path}: missing (is this the SocialLGN Last.fm split directory?)")
    users = json.loads(files["userReindex.json"].read_text())
    items = json.loads(files["itemReindex.json"].read_text())
    user_of = pd.Series(list(users.keys()), index=list(users.values()), dtype=str)
    item_of = pd.Series(list(items.keys()), index=list(items.values()), dtype=str)
    parts = []
    for split in ("train", "test"):
        rows = pd.read_csv(files[f"{split}_set.txt"])
        parts.append(pd.DataFrame({"user_id": user_of.reindex(rows["user"]).to_numpy(),
                                   "product_id": item_of.reindex(rows["item"]).to_numpy(), "split": split}))
    published = pd.concat(parts, ignore_index=True)
    unmapped = published["user_id"].isna() | published["product_id"].isna()
    if unmapped.any():
        raise DatasetError(f"{int(unmapped.sum())} split rows use indices missing from the reindex JSON files")
    if published.duplicated(["user_id", "product_id"]).any():
        raise DatasetError("the split lists some (user, item) pair more than once")
    merged = interactions[["user_id", "product_id"]].merge(published, on=["user_id", "product_id"], how="left")
    missing = int(merged["split"].isna().sum())
    extra = len(published) - (len(merged) - missing)
    if missing or extra:
        raise DatasetError(f"the split does not match the interactions: {missing} interactions are in neither "
                           f"train nor test, {extra} split rows are not interactions")
    return merged["split"]


def convert_lastfm(raw_dir: Path, out_dir: Path, split_dir: Path | None = None, *,
                   min_tag_uses: int = MIN_TAG_USES) -> dict[str, Any]:
    """Write the canonical files for HetRec Last.fm into ``out_dir``; return what was written and dropped."""
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    artists = _read_dat(raw_dir / "artists.dat", "utf-8")
    tags = _read_dat(raw_dir / "tags.dat", "latin-1")
    listened = _read_dat(raw_dir / "user_artists.dat", "utf-8")
    friends = _read_dat(raw_dir / "user_friends.dat", "utf-8")
    tagged = _read_dat(raw_dir / "user_taggedartists.dat", "utf-8")
    dropped: dict[str, Any] = {}

    known_artist = listened["artistID"].isin(artists["id"])
    dropped["listening_rows_unknown_artist"] = int((~known_artist).sum())
    listened = listened[known_artist]

    user_ids = pd.Index(pd.concat([listened["userID"], friends["userID"], friends["friendID"]]).unique())
    user_ids = user_ids[user_ids.astype(int).argsort()]
    users = pd.DataFrame({"user_id": user_ids})

    unknown_artist = ~tagged["artistID"].isin(artists["id"])
    unknown_tag = ~tagged["tagID"].isin(tags["tagID"])
    dropped["tag_assignments_unknown_artist"] = int(unknown_artist.sum())
    dropped["unknown_artists_in_tag_assignments"] = int(tagged.loc[unknown_artist, "artistID"].nunique())
    dropped["tag_assignments_unknown_tag"] = int((unknown_tag & ~unknown_artist).sum())
    tagged = tagged[~unknown_artist & ~unknown_tag]

    uses = tagged.groupby(["artistID", "tagID"]).size().rename("uses").reset_index()
    uses["tag_order"] = uses["tagID"].astype(int)
    uses = uses.sort_values(["artistID", "uses", "tag_order"], ascending=[True, False, True], kind="stable")
    primary = uses.drop_duplicates("artistID")
    others = uses[~uses.index.isin(primary.index)]
    extra = others[others["uses"] >= min_tag_uses]
    dropped["artist_tags_below_min_uses"] = int(len(others) - len(extra))

    products = pd.DataFrame({"product_id": artists["id"], "name": artists["name"]})
    products["category_id"] = products["product_id"].map(primary.set_index("artistID")["tagID"]).fillna("")
    used_tags = set(primary["tagID"]) | set(extra["tagID"])
    categories = tags[tags["tagID"].isin(used_tags)].rename(columns={"tagID": "category_id", "tagValue": "name"})
    dropped["tags_never_used_as_category"] = int(len(tags) - len(categories))
    product_categories = extra[["artistID", "tagID"]].rename(columns={"artistID": "product_id",
                                                                       "tagID": "category_id"})

    interactions = pd.DataFrame({"user_id": listened["userID"].to_numpy(),
                                 "product_id": listened["artistID"].to_numpy(),
                                 "weight": listened["weight"].to_numpy(), "kind": "purchase"})
    if split_dir is not None:
        interactions["split"] = _split_of(interactions, Path(split_dir)).to_numpy()
    social = pd.DataFrame({"user_id": friends["userID"], "other_user_id": friends["friendID"], "kind": "friend"})

    out_dir.mkdir(parents=True, exist_ok=True)
    for frame, spec in ((users, layout.USERS), (products, layout.PRODUCTS), (categories, layout.CATEGORIES),
                        (interactions, layout.INTERACTIONS), (social, layout.SOCIAL),
                        (product_categories, layout.PRODUCT_CATEGORIES)):
        layout.write_csv(frame.reset_index(drop=True), out_dir, spec)

    report: dict[str, Any] = {
        "out": str(out_dir),
        "written": {"users": len(users), "products": len(products), "categories": len(categories),
                    "interactions": len(interactions), "social": len(social),
                    "product_categories": len(product_categories)},
        "products_without_category": int((products["category_id"] == "").sum()),
        "dropped": dropped,
    }
    if split_dir is not None:
        report["split"] = {k: int(v) for k, v in interactions["split"].value_counts().sort_index().items()}
    return report
