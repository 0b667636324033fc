"""Validating a canonical input directory completely before anything is written to Neo4j.

Every rule is a vectorised mask over a whole column (pandas/numpy), so a million rows validate in
seconds; only rows that fail are turned into messages. A problem names the file, the line as in
the file (header = line 1; Parquet: the 1-based row) and the column, e.g.
``interactions.csv:91234: product_id 'p999' is not defined in products.csv``.

Rules
  * required files and columns exist, each named once; CSV is UTF-8 (a row with invalid bytes is
    an error; a UTF-16 or UTF-32 file is refused as such);
  * ids follow :func:`graphrec.limits.id_problem` (non-empty, at most ``ID_MAX_BYTES``, printable
    characters only, no space at either end); an id defined twice with different attributes is an
    error on every row of that id (identical repeats are merged);
  * text fits the store: indexed properties (those of :func:`graphrec.schema.index_statements`)
    at most ``INDEX_KEY_MAX_BYTES``, the others at most ``TEXT_MAX_BYTES``;
  * every referenced id is defined (user, product, category, parent category); the category tree
    has no cycles;
  * ``price`` and ``weight`` follow :data:`graphrec.limits.PRICE` and :data:`~graphrec.limits.WEIGHT`
    (finite, bounded); ``ts`` is ISO-8601 (a missing offset means UTC) or unix seconds, within
    years 1 to 9999 (UTC); ``kind`` and ``split`` come from :mod:`graphrec.schema`;
  * nobody befriends or follows themselves.

Duplicates
  * ``social``: a friendship is mutual, so ``a,b`` and ``b,a`` are one FRIEND, stored from the
    smaller id to the larger; repeated follows are one FOLLOWS.
  * ``interactions``: rows with the same (user_id, product_id, kind) become ONE relationship whose
    ``weight`` is the SUM of the rows' weights (a missing weight counts 1, so repeated purchase rows
    count purchases) and whose ``ts`` is the LATEST of their timestamps. Their ``split`` values must
    agree: one pair in both train and test would leak, so that is an error.
  * ``product_categories`` rows repeating a product's primary ``category_id`` add nothing.

With ``skip_invalid`` a failing row is rejected instead, and so is every row that depends on a
rejected one (an edge whose endpoint was rejected, a category below a rejected parent, the other
rows of an id whose definitions conflict), so each input row is either loaded or rejected, exactly.
"""

from __future__ import annotations

import csv
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graphrec import limits, schema
from graphrec.ingest import layout
from graphrec.ingest.read import InputFileError, Table, locate, read_table

MAX_SHOWN = 50
_INT = r"[+-]?\d+"
_NUMBER = r"[+-]?\d+(\.\d*)?"
DEFAULT_KIND = "purchase"
DEFAULT_SOCIAL_KIND = "friend"


@dataclass
class FileCount:
    rows: int
    loaded: int
    rejected: int


@dataclass
class Graph:
    """Validated, de-duplicated, typed content, ready for the loader (missing values are None/NaN)."""

    users: pd.DataFrame  # id, then one column per user property (name, attributes)
    products: pd.DataFrame  # id, name, price, brand
    categories: pd.DataFrame  # id, name
    subcategories: pd.DataFrame  # child, parent
    in_category: pd.DataFrame  # product, category, primary
    interactions: dict[str, pd.DataFrame]  # relationship type -> user, product, ts (epoch ms), weight, split
    social: dict[str, pd.DataFrame]  # relationship type -> start, end

    def expected_counts(self) -> dict[str, dict[str, int]]:
        rels = {t: len(f) for t, f in {**self.interactions, **self.social}.items()}
        rels[schema.IN_CATEGORY.type] = len(self.in_category)
        rels[schema.SUBCATEGORY_OF.type] = len(self.subcategories)
        return {
            "nodes": {schema.USER.label: len(self.users), schema.PRODUCT.label: len(self.products),
                      schema.CATEGORY.label: len(self.categories)},
            "relationships": rels,
        }


@dataclass
class ValidationReport:
    directory: Path
    fatal: list[str] = field(default_factory=list)
    problems: pd.DataFrame = field(default_factory=lambda: _no_problems())
    files: dict[str, FileCount] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    tables: dict[str, Table] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def errors(self) -> pd.DataFrame:
        """Root causes; rows rejected only because something they depend on was rejected are not."""
        return self.problems[~self.problems["cascade"].to_numpy(dtype=bool)]

    @property
    def ok(self) -> bool:
        return not self.fatal and self.problems.empty

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.files.values())

    def messages(self, limit: int = MAX_SHOWN) -> list[str]:
        """Human-readable problems, at most ``limit`` of them, then how many more there are."""
        out = list(self.fatal)
        errors = self.errors
        shown = errors.head(max(limit - len(out), 0))
        for spec, line, reason in zip(shown["spec"], shown["line"], shown["reason"]):
            out.append(f"{self.tables[spec].where(int(line))}: {reason}")
        total = len(self.fatal) + len(errors)
        if total > len(out):
            out.append(f"... and {total - len(out)} more ({total} errors in all)")
        return out

    def write_rejects(self, path: Path) -> int:
        """One CSV row per rejected input row: file, line, column, reason and the row's values."""
        first = self.problems.drop_duplicates(["spec", "row"], keep="first")
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["file", "line", "column", "reason", "record"])
            for spec, group in first.groupby("spec", sort=False):
                frame = self.tables[spec].frame
                records = frame.iloc[group["row"].to_numpy()].astype(str).to_dict("records")
                for file, line, column, reason, record in zip(group["file"], group["line"], group["column"],
                                                              group["reason"], records):
                    writer.writerow([file, int(line), column, reason, json.dumps(record, ensure_ascii=False)])
        return len(first)


_PROBLEM_COLUMNS = ["spec", "file", "row", "line", "column", "reason", "cascade"]


def _no_problems() -> pd.DataFrame:
    return pd.DataFrame(columns=_PROBLEM_COLUMNS).astype({"row": np.int64, "line": np.int64, "cascade": bool})


class _Problems:
    """Problems found so far, and which rows of each table they reject."""

    def __init__(self, tables: dict[str, Table]) -> None:
        self.tables = tables
        self.parts: list[pd.DataFrame] = []
        self.rejected = {name: np.zeros(len(t), dtype=bool) for name, t in tables.items()}

    def add(self, table: Table, mask: np.ndarray | pd.Series, column: str,
            reason: str | Callable[[str], str] | dict[int, str], values: pd.Series | None = None,
            *, cascade: bool = False) -> None:
        """Reject the rows of ``mask``; ``reason`` is a text, a function of the row's value, or a
        text per row index."""
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        if len(rows) == 0:
            return
        if isinstance(reason, dict):
            texts = [reason[int(r)] for r in rows]
        elif callable(reason):
            picked = values.to_numpy(dtype=object)[rows] if values is not None else [None] * len(rows)
            texts = [reason(v) for v in picked]
        else:
            texts = [reason] * len(rows)
        self.parts.append(pd.DataFrame({
            "spec": table.spec.name, "file": table.file, "row": rows, "line": table.lines[rows],
            "column": column, "reason": texts, "cascade": cascade,
        }))
        self.rejected[table.spec.name][rows] = True

    def live(self, table: Table) -> np.ndarray:
        return ~self.rejected[table.spec.name]

    def frame(self) -> pd.DataFrame:
        if not self.parts:
            return _no_problems()
        order = {spec.name: i for i, spec in enumerate(layout.FILES)}
        problems = pd.concat(self.parts, ignore_index=True)
        problems["_file"] = problems["spec"].map(order)
        # Roots before cascades for the same row, so the rejects file gives the root cause.
        problems = problems.sort_values(["_file", "line", "cascade"], kind="stable").drop(columns="_file")
        return problems.reset_index(drop=True)


# -- column helpers ---------------------------------------------------------------------------

def _text(table: Table, column: str) -> pd.Series:
    """A column as text, "" for missing (typed Parquet columns are rendered as text)."""
    if not table.has(column):
        return pd.Series([""] * len(table), dtype=str)
    series = table.frame[column]
    if pd.api.types.is_string_dtype(series.dtype) and series.dtype != object:
        return series.fillna("") if series.hasnans else series
    if pd.api.types.is_float_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(values)
        out = series.astype(str)  # "inf", "-inf" stay as they are
        if finite.any() and np.all(values[finite] == np.round(values[finite])):  # integer ids read as float
            whole = pd.Series(np.where(finite, values, 0), dtype="Int64").astype(str)
            out = out.where(~finite, whole.to_numpy())
        return out.where(~np.isnan(values), "").astype(str)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        # numpy renders any year (Timestamp.isoformat fails past 9999, which validation must report).
        aware = getattr(series.dt, "tz", None) is not None
        naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series
        text = pd.Series(np.datetime_as_string(naive.to_numpy()), dtype=object) + ("+00:00" if aware else "")
        return text.where(series.notna().to_numpy(), "").astype(str)
    out = series.astype(object).where(series.notna(), "")
    return out.map(lambda v: v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)).astype(str)


def _numbers(table: Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(values with NaN where missing, ±inf kept; mask of present values that are not numbers)."""
    series = table.frame[column]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=float, na_value=np.nan)
        return values, np.zeros(len(values), dtype=bool)
    text = _text(table, column)
    empty = (text == "").to_numpy()
    values = pd.to_numeric(text.where(~empty), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values, ~empty & np.isnan(values)


def _bounded(problems: _Problems, table: Table, column: str, rule: limits.Bounds) -> np.ndarray:
    """The column's numbers (NaN where missing); unparsable ones and those breaking ``rule`` are errors."""
    values, unparsable = _numbers(table, column)
    raw = _text(table, column)
    problems.add(table, unparsable, column, lambda v: f"{column} {v!r} is not a number", raw)
    broken = rule.violations(values) & ~unparsable
    texts = {int(r): f"{column} {raw.iloc[r]!r} {rule.problem(float(values[r]))}" for r in np.flatnonzero(broken)}
    problems.add(table, broken, column, texts)
    return values


def _times(table: Table, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch milliseconds as float, NaN where missing; mask of unparsable values).

    Text is ISO-8601 (no offset = UTC) or unix seconds; Parquet timestamps are taken as they are.
    """
    series = table.frame[column]
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        stamps = pd.to_datetime(series, utc=True)
        return _epoch_ms(stamps), np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        seconds = series.to_numpy(dtype=float, na_value=np.nan)
        return np.round(seconds * 1000.0), np.isinf(seconds)
    text = _text(table, column)
    empty = (text == "").to_numpy()
    numeric = text.str.fullmatch(_NUMBER).to_numpy(dtype=bool)
    ms = np.full(len(text), np.nan)
    if numeric.any():  # whole milliseconds, as stored
        ms[numeric] = np.round(pd.to_numeric(text[numeric], errors="coerce").to_numpy(dtype=float) * 1000.0)
    iso = ~numeric & ~empty
    if iso.any():
        stamps = pd.to_datetime(text[iso], format="ISO8601", utc=True, errors="coerce")
        ms[iso] = _epoch_ms(stamps)
    return ms, ~empty & ~np.isfinite(ms)


def _timestamps(problems: _Problems, table: Table, column: str) -> np.ndarray:
    """Epoch milliseconds (NaN where missing); unparsable ones and those out of range are errors."""
    ms, unparsable = _times(table, column)
    raw = _text(table, column)
    problems.add(table, unparsable, column, lambda v: f"{column} {v!r} is neither ISO-8601 nor unix seconds", raw)
    problems.add(table, limits.ts_out_of_range(np.where(unparsable, np.nan, ms)), column,
                 lambda v: f"{column} {v!r} is outside {limits.TS_RANGE_TEXT}", raw)
    return ms


def _epoch_ms(stamps: pd.Series) -> np.ndarray:
    values = stamps.to_numpy(dtype="datetime64[ms]")
    out = values.astype(np.int64).astype(float)
    out[np.isnat(values)] = np.nan
    return out


def _isin(values: pd.Series, ids: pd.Index | pd.Series | tuple[str, ...]) -> np.ndarray:
    """``values.isin(ids)`` as a bool array, through pyarrow: pandas' own isin on text columns
    converts the id set value by value in Python (seconds for 100k ids)."""
    needles = pa.array(values)
    haystack = pa.array(list(ids) if isinstance(ids, tuple) else ids)
    if len(needles) == 0:
        return np.zeros(0, dtype=bool)
    if haystack.type != needles.type:
        haystack = haystack.cast(needles.type)
    return pc.is_in(needles, value_set=haystack).to_numpy(zero_copy_only=False)


def _where(table: Table, line: int) -> str:
    return f"row {line}" if table.parquet else f"line {line}"


# -- rules ------------------------------------------------------------------------------------

def _shown(value: str) -> str:
    """A value for a message: quoted, and cut short when long (ids can be kilobytes)."""
    return repr(value if len(value) <= 40 else value[:30] + "…")


def _require_ids(problems: _Problems, table: Table, column: str, ids: pd.Series) -> None:
    """Ids that are defined here: non-empty and within the id rule of :mod:`graphrec.limits`."""
    empty = (ids == "").to_numpy()
    problems.add(table, empty, column, f"{column} is empty")
    reasons = limits.id_problems(ids)
    bad = reasons.notna().to_numpy() & ~empty
    texts = {int(r): f"{column} {_shown(ids.iloc[r])} {reasons.iloc[r]}" for r in np.flatnonzero(bad)}
    problems.add(table, bad, column, texts)


def _indexed_properties() -> set[tuple[str, str]]:
    """(label, property) pairs Neo4j indexes, besides node keys: read from the schema's statements."""
    found = (re.search(r"FOR \(n:(\w+)\) ON \(n\.(\w+)\)", s) for s in schema.index_statements())
    return {(m[1], m[2]) for m in found if m}


def _text_sizes(problems: _Problems, table: Table, label: str, columns: dict[str, pd.Series]) -> None:
    """Text properties must fit the store: indexed ones its index key, the others a batch."""
    indexed = _indexed_properties()
    for column, values in columns.items():
        if (label, column) in indexed:
            limit, what = limits.INDEX_KEY_MAX_BYTES, "Neo4j indexes at most"
        else:
            limit, what = limits.TEXT_MAX_BYTES, "text properties are at most"
        sizes = limits.utf8_lengths(values)
        over = sizes > limit
        problems.add(table, over, column,
                     {int(r): f"{column} is {sizes[r]} bytes long (UTF-8); {what} {limit} bytes"
                      for r in np.flatnonzero(over)})


def _conflicts(problems: _Problems, table: Table, column: str, ids: pd.Series,
               attributes: dict[str, pd.Series]) -> None:
    """An id given twice with different attributes: every row of that id is an error."""
    repeated = (ids.duplicated(keep=False) & (ids != "")).to_numpy()
    if not repeated.any() or not attributes:
        return
    rows = np.flatnonzero(repeated)
    key = None
    for values in attributes.values():
        part = values.iloc[rows].astype(str).reset_index(drop=True)
        key = part if key is None else key.str.cat(part, sep="\x1f")
    frame = pd.DataFrame({"id": ids.iloc[rows].to_numpy(), "key": key.to_numpy(), "line": table.lines[rows]})
    groups = frame.groupby("id", sort=False)
    conflict = (groups["key"].transform("nunique") > 1).to_numpy()
    if not conflict.any():
        return
    first_key = groups["key"].transform("first")
    first_line = groups["line"].transform("min")
    other_line = frame["line"].where(frame["key"] != first_key).groupby(frame["id"]).transform("min")
    ref = np.where(frame["key"] == first_key, other_line, first_line)
    mask = np.zeros(len(table), dtype=bool)
    mask[rows[conflict]] = True
    ref_of_row = dict(zip(rows[conflict], ref[conflict].astype(np.int64)))
    texts = {int(r): f"{column} {ids.iloc[r]!r} has conflicting definitions "
                     f"(see {_where(table, int(ref_of_row[r]))})" for r in rows[conflict]}
    problems.add(table, mask, column, texts)


def _settle(problems: _Problems, table: Table, column: str, ids: pd.Series) -> pd.Index:
    """The ids that will be loaded: an id is out if any of its rows was rejected."""
    nonempty = (ids != "").to_numpy()
    out = pd.Index(ids[problems.rejected[table.spec.name] & nonempty].unique())
    follow = problems.live(table) & nonempty & _isin(ids, out)
    problems.add(table, follow, column, lambda v: f"{column} {v!r} has another definition that was rejected",
                 ids, cascade=True)
    return pd.Index(ids[problems.live(table) & nonempty].unique())


def _references(problems: _Problems, table: Table, column: str, values: pd.Series, target: Table,
                defined: pd.Index, valid: pd.Index, *, required: bool) -> None:
    """Dangling references are errors; references to rejected ids are rejected in turn."""
    empty = (values == "").to_numpy()
    if required:
        problems.add(table, empty, column, f"{column} is empty")
    known = _isin(values, defined)
    problems.add(table, ~empty & ~known, column,
                 lambda v: f"{column} {_shown(v)} is not defined in {target.file}", values)
    rejected = ~empty & known & ~_isin(values, valid)
    problems.add(table, rejected & problems.live(table), column,
                 lambda v: f"{column} {_shown(v)} was rejected in {target.file}", values, cascade=True)


def _vocabulary(problems: _Problems, table: Table, column: str, allowed: tuple[str, ...]) -> pd.Series:
    values = _text(table, column)
    bad = ((values != "") & ~_isin(values, allowed)).to_numpy()
    problems.add(table, bad, column, lambda v: f"{column} {v!r} is not one of {', '.join(allowed)}", values)
    return values


def _defined(ids: pd.Series) -> pd.Index:
    return pd.Index(ids[ids != ""].unique())


# -- the whole directory ----------------------------------------------------------------------

def read_directory(directory: Path) -> tuple[dict[str, Table], list[str], list[str]]:
    """Every canonical file present: (tables by name, fatal problems, warnings)."""
    directory = Path(directory)
    tables: dict[str, Table] = {}
    fatal: list[str] = []
    warnings: list[str] = []
    if not directory.is_dir():
        return tables, [f"{directory}: not a directory"], warnings
    for spec in layout.FILES:
        try:
            path = locate(directory, spec)
            if path is None:
                if spec.required_file:
                    fatal.append(f"{spec.name}.csv: required file is missing in {directory} "
                                 f"(or {spec.name}.parquet)")
                continue
            table = read_table(path, spec)
        except InputFileError as err:
            fatal.append(str(err))
            continue
        tables[spec.name] = table
        if not spec.open_columns:
            extra = [table.column_name(c) for c in table.frame.columns if c not in spec.columns]
            if extra:
                warnings.append(f"{table.file}: ignoring unknown column{'s' if len(extra) > 1 else ''} "
                                + ", ".join(extra))
        if spec is layout.USERS:
            fatal.extend(_user_column_problems(table))
    return tables, fatal, warnings


def _user_column_problems(table: Table) -> list[str]:
    """Every users column becomes a property, so each needs a name (repeats are refused on reading)."""
    names = list(table.frame.columns)
    out = []
    if schema.USER.key in names:
        out.append(f"{table.file}:1: column {schema.USER.key!r} would clash with the node key "
                   f"(user_id is stored as {schema.USER.key})")
    header = table.header or tuple(names)
    for position, name in enumerate(header, start=1):
        if not name:
            out.append(f"{table.file}:1: column {position} has no name")
    return out


def validate_directory(directory: Path, *, skip_invalid: bool = False) -> tuple[Graph | None, ValidationReport]:
    """Check everything in ``directory``; the graph is returned only if it may be loaded.

    Without ``skip_invalid`` any problem means no graph; with it, problems reject rows (and the
    rows depending on them) and the rest is returned. Unreadable files are always fatal.
    """
    started = time.perf_counter()
    tables, fatal, warnings = read_directory(Path(directory))
    report = ValidationReport(Path(directory), fatal=fatal, warnings=warnings, tables=tables)
    if fatal:
        report.seconds = time.perf_counter() - started
        return None, report
    problems = _Problems(tables)
    for table in tables.values():
        for fault in table.encoding_faults:
            mask = np.zeros(len(table), dtype=bool)
            mask[fault.row] = True
            problems.add(table, mask, fault.column, f"{fault.column}: invalid UTF-8 bytes (the file must be UTF-8)")
    graph = _check(tables, problems)
    report.problems = problems.frame()
    report.files = {
        t.file: FileCount(len(t), int((~problems.rejected[name]).sum()), int(problems.rejected[name].sum()))
        for name, t in tables.items()
    }
    report.seconds = time.perf_counter() - started
    if not report.problems.empty and not skip_invalid:
        return None, report
    return graph, report


def _check(tables: dict[str, Table], problems: _Problems) -> Graph:
    cat, prod, user = tables["categories"], tables["products"], tables["users"]
    inter, social = tables["interactions"], tables["social"]
    extra = tables.get("product_categories")

    # Categories and their tree.
    cat_ids = _text(cat, "category_id")
    _require_ids(problems, cat, "category_id", cat_ids)
    cat_name, parent = _text(cat, "name"), _text(cat, "parent_id")
    _text_sizes(problems, cat, schema.CATEGORY.label, {"name": cat_name})
    _conflicts(problems, cat, "category_id", cat_ids, {"name": cat_name, "parent_id": parent})
    cat_defined = _defined(cat_ids)
    has_parent = (parent != "").to_numpy()
    problems.add(cat, has_parent & (parent == cat_ids).to_numpy(), "parent_id",
                 lambda v: f"parent_id {v!r} is the category itself", parent)
    problems.add(cat, has_parent & ~_isin(parent, cat_defined), "parent_id",
                 lambda v: f"parent_id {v!r} is not defined in {cat.file}", parent)
    _cycles(problems, cat, cat_ids, parent)
    while True:  # a category under a rejected parent is rejected, down the tree
        cat_valid = _settle(problems, cat, "category_id", cat_ids)
        below = problems.live(cat) & has_parent & ~_isin(parent, cat_valid)
        if not below.any():
            break
        problems.add(cat, below, "parent_id", lambda v: f"parent_id {v!r} was rejected in {cat.file}",
                     parent, cascade=True)

    # Products.
    prod_ids = _text(prod, "product_id")
    _require_ids(problems, prod, "product_id", prod_ids)
    price = np.full(len(prod), np.nan)
    if prod.has("price"):
        price = _bounded(problems, prod, "price", limits.PRICE)
    primary = _text(prod, "category_id")
    prod_name, brand = _text(prod, "name"), _text(prod, "brand")
    _text_sizes(problems, prod, schema.PRODUCT.label, {"name": prod_name, "brand": brand})
    _conflicts(problems, prod, "product_id", prod_ids,
               {"name": prod_name, "category_id": primary, "price": pd.Series(price), "brand": brand})
    _references(problems, prod, "category_id", primary, cat, cat_defined, cat_valid, required=False)
    prod_defined = _defined(prod_ids)
    prod_valid = _settle(problems, prod, "product_id", prod_ids)

    # Users: every column but user_id is a property.
    user_ids = _text(user, "user_id")
    _require_ids(problems, user, "user_id", user_ids)
    attributes = {c: _text(user, c) for c in user.frame.columns if c != "user_id"}
    _text_sizes(problems, user, schema.USER.label, attributes)
    _conflicts(problems, user, "user_id", user_ids, attributes)
    user_defined = _defined(user_ids)
    user_valid = _settle(problems, user, "user_id", user_ids)

    # Interactions.
    i_user, i_prod = _text(inter, "user_id"), _text(inter, "product_id")
    _references(problems, inter, "user_id", i_user, user, user_defined, user_valid, required=True)
    _references(problems, inter, "product_id", i_prod, prod, prod_defined, prod_valid, required=True)
    ts = np.full(len(inter), np.nan)
    if inter.has("ts"):
        ts = _timestamps(problems, inter, "ts")
    weight = np.full(len(inter), np.nan)
    if inter.has("weight"):
        # Each weight is bounded, so summing repeated rows (below) cannot overflow to infinity.
        weight = _bounded(problems, inter, "weight", limits.WEIGHT)
    kind = _vocabulary(problems, inter, "kind", tuple(schema.INTERACTION_KINDS))
    split = _vocabulary(problems, inter, "split", schema.SPLITS)
    kind = kind.where(kind != "", DEFAULT_KIND)
    _split_conflicts(problems, inter, i_user, i_prod, kind, split)

    # Social.
    s_user, s_other = _text(social, "user_id"), _text(social, "other_user_id")
    _references(problems, social, "user_id", s_user, user, user_defined, user_valid, required=True)
    _references(problems, social, "other_user_id", s_other, user, user_defined, user_valid, required=True)
    s_kind = _vocabulary(problems, social, "kind", tuple(schema.SOCIAL_KINDS))
    s_kind = s_kind.where(s_kind != "", DEFAULT_SOCIAL_KIND)
    itself = ((s_user == s_other) & (s_user != "")).to_numpy()
    for k, noun in (("friend", "self-friendship"), ("follows", "self-follow")):
        problems.add(social, itself & (s_kind == k).to_numpy(), "other_user_id",
                     lambda v, noun=noun: f"other_user_id {v!r} is the same as user_id ({noun})", s_other)

    # Extra product categories.
    if extra is not None:
        e_prod, e_cat = _text(extra, "product_id"), _text(extra, "category_id")
        _references(problems, extra, "product_id", e_prod, prod, prod_defined, prod_valid, required=True)
        _references(problems, extra, "category_id", e_cat, cat, cat_defined, cat_valid, required=True)

    # What survives, de-duplicated and typed.
    live_cat, live_prod, live_user = problems.live(cat), problems.live(prod), problems.live(user)
    categories = pd.DataFrame({"id": cat_ids[live_cat].to_numpy(), "name": _none(cat_name[live_cat]).to_numpy()})
    categories = categories.drop_duplicates("id").reset_index(drop=True)
    sub = pd.DataFrame({"child": cat_ids[live_cat & has_parent].to_numpy(),
                        "parent": parent[live_cat & has_parent].to_numpy()})
    sub = sub.drop_duplicates().reset_index(drop=True)
    products = pd.DataFrame({
        "id": prod_ids[live_prod].to_numpy(), "name": _none(prod_name[live_prod]).to_numpy(),
        "price": price[live_prod], "brand": _none(brand[live_prod]).to_numpy(),
    }).drop_duplicates("id").reset_index(drop=True)
    users = pd.DataFrame({"id": user_ids[live_user].to_numpy()})
    for name, values in attributes.items():
        users[name] = _typed(values[live_user]).to_numpy()
    users = users.drop_duplicates("id").reset_index(drop=True)

    has_primary = live_prod & (primary != "").to_numpy()
    links = [pd.DataFrame({"product": prod_ids[has_primary].to_numpy(), "category": primary[has_primary].to_numpy(),
                           "primary": True})]
    if extra is not None:
        live = problems.live(extra)
        links.append(pd.DataFrame({"product": e_prod[live].to_numpy(), "category": e_cat[live].to_numpy(),
                                   "primary": False}))
    in_category = (pd.concat(links, ignore_index=True).sort_values("primary", ascending=False, kind="stable")
                   .drop_duplicates(["product", "category"]).reset_index(drop=True))

    live = problems.live(inter)
    interactions = _aggregate(pd.DataFrame({
        "user": _kept(i_user, live), "product": _kept(i_prod, live), "kind": _kept(kind, live),
        "ts": ts[live], "weight": np.where(np.isnan(weight[live]), 1.0, weight[live]),
        "split": _kept(split, live),
    }))
    by_kind = {rel.type: interactions[interactions["kind"] == k].drop(columns="kind").reset_index(drop=True)
               for k, rel in schema.INTERACTION_KINDS.items()}

    live = problems.live(social)
    pairs = pd.DataFrame({"start": _kept(s_user, live), "end": _kept(s_other, live), "kind": _kept(s_kind, live)})
    by_social: dict[str, pd.DataFrame] = {}
    for k, rel in schema.SOCIAL_KINDS.items():
        part = pairs[pairs["kind"] == k][["start", "end"]]
        if rel.undirected:  # once per pair, smaller id first
            swap = (part["start"] > part["end"]).to_numpy()
            part = pd.DataFrame({"start": part["start"].where(~swap, part["end"]),
                                 "end": part["end"].where(~swap, part["start"])})
        by_social[rel.type] = part.drop_duplicates().reset_index(drop=True)

    return Graph(users, products, categories, sub, in_category, by_kind, by_social)


def _kept(values: pd.Series, live: np.ndarray) -> pd.Series:
    """The rows of a text column that survive, numbered afresh: kept as the Arrow strings they are
    (``to_numpy`` makes a Python string of each, and a frame built from those converts them back:
    a third of validating ten million rows)."""
    return values[live].reset_index(drop=True)


def _cycles(problems: _Problems, cat: Table, ids: pd.Series, parent: pd.Series) -> None:
    """Categories whose chain of parents never reaches a root (pointer doubling, no Python walk)."""
    live = problems.live(cat) & (ids != "").to_numpy()
    nodes = pd.Index(ids[live].unique())
    if len(nodes) == 0:
        return
    first = pd.Series(np.arange(len(ids)))[live].groupby(ids[live].to_numpy()).first()
    up = nodes.get_indexer(parent.iloc[first.reindex(nodes).to_numpy()].to_numpy())  # -1: root or unknown
    jump = up.copy()
    for _ in range(int(np.ceil(np.log2(len(nodes) + 1))) + 1):
        jump = np.where(jump >= 0, jump[np.maximum(jump, 0)], -1)
    endless = pd.Index(nodes[jump >= 0])
    mask = live & _isin(ids, endless)
    problems.add(cat, mask, "parent_id",
                 lambda v: f"parent_id {v!r} makes a cycle in the category tree", parent)


def _split_conflicts(problems: _Problems, inter: Table, user: pd.Series, product: pd.Series,
                     kind: pd.Series, split: pd.Series) -> None:
    """Repeated (user, product, kind) rows must not disagree on their split (a train/test leak)."""
    live = problems.live(inter)
    frame = pd.DataFrame({"user": user, "product": product, "kind": kind, "split": split,
                          "line": inter.lines})[live & (split != "").to_numpy()]
    repeated = frame.duplicated(["user", "product", "kind"], keep=False)
    if not repeated.any():
        return
    frame = frame[repeated]
    groups = frame.groupby(["user", "product", "kind"], sort=False)
    clash = groups["split"].transform("nunique") > 1
    if not clash.any():
        return
    first_split = groups["split"].transform("first")
    first_line = groups["line"].transform("min")
    other_line = frame["line"].where(frame["split"] != first_split).groupby(
        [frame["user"], frame["product"], frame["kind"]]).transform("min")
    frame = frame.assign(ref=np.where(frame["split"] == first_split, other_line, first_line),
                         ref_split=np.where(frame["split"] == first_split,
                                            frame["split"].where(frame["split"] != first_split)
                                            .groupby([frame["user"], frame["product"], frame["kind"]])
                                            .transform("first"), first_split))[clash]
    texts = {int(i): f"split {s!r} contradicts split {o!r} at {_where(inter, int(r))} for the same user_id, "
                     f"product_id and kind" for i, s, o, r in zip(frame.index, frame["split"], frame["ref_split"],
                                                                  frame["ref"])}
    mask = np.zeros(len(inter), dtype=bool)
    mask[list(texts)] = True
    problems.add(inter, mask, "split", texts)


def _aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (user, product, kind): weights summed, latest ts, the (agreed) split."""
    repeated = frame.duplicated(["user", "product", "kind"], keep=False).to_numpy()
    if repeated.any():
        merged = (frame[repeated].groupby(["user", "product", "kind"], sort=False, as_index=False)
                  .agg(ts=("ts", "max"), weight=("weight", "sum"), split=("split", "max")))
        frame = pd.concat([frame[~repeated], merged], ignore_index=True)
    frame["split"] = _none(frame["split"])
    return frame.reset_index(drop=True)


def _none(values: pd.Series) -> pd.Series:
    """Text with "" as None, as the loader sends it (a property set to null is absent)."""
    out = values.astype(object)
    return out.where(values != "", None)


def _typed(values: pd.Series) -> pd.Series:
    """A user attribute column as int, float, bool or text, whichever every present value is."""
    given = values != ""
    present = values[given]
    if len(present) and present.str.fullmatch(_INT).all() and present.str.len().max() < 19:
        return pd.to_numeric(values.where(given)).astype("Int64").astype(object).where(given, None)
    numbers = pd.to_numeric(present, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if len(present) and np.isfinite(numbers).all():  # "inf" or "nan" among them: the column stays text
        return pd.to_numeric(values.where(given), errors="coerce").astype(object).where(given, None)
    lower = present.str.lower()
    if len(present) and lower.isin(["true", "false"]).all():
        return (values.str.lower() == "true").astype(object).where(values != "", None)
    return _none(values)
