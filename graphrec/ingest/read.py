"""Reading one canonical file into a DataFrame, keeping each row's line number in the file.

CSV is read with every column as text (an empty field is missing), so validation sees exactly what
the file says. Line numbers are as in the file, header = line 1; they are computed from the row
index unless blank lines or quoted newlines make rows and lines differ, in which case the file is
re-scanned with :mod:`csv`. Invalid UTF-8 bytes never abort the read: they become U+FFFD and the
rows that held them are reported, so one bad byte costs one row under ``--skip-invalid``.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from graphrec.ingest.layout import EXTENSIONS, FileSpec

_BOM = b"\xef\xbb\xbf"
_SURROGATE = re.compile("[\udc80-\udcff]+")


class InputFileError(ValueError):
    """A file that cannot be read at all (missing, ambiguous, malformed CSV, missing columns)."""


@dataclass
class EncodingFault:
    row: int  # index of the row in the frame
    column: str


@dataclass
class Table:
    spec: FileSpec
    path: Path
    frame: pd.DataFrame
    lines: np.ndarray  # CSV: line in the file (header = 1); Parquet: 1-based row number
    parquet: bool = False
    encoding_faults: list[EncodingFault] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.path.name

    def __len__(self) -> int:
        return len(self.frame)

    def where(self, line: int) -> str:
        return f"{self.file}:row {line}" if self.parquet else f"{self.file}:{line}"

    def has(self, column: str) -> bool:
        return column in self.frame.columns


def locate(directory: Path, spec: FileSpec) -> Path | None:
    """The file holding ``spec`` in ``directory`` (CSV or Parquet), None if absent; both is an error."""
    found = [directory / f"{spec.name}{ext}" for ext in EXTENSIONS if (directory / f"{spec.name}{ext}").is_file()]
    if len(found) > 1:
        raise InputFileError(f"{directory}: both {found[0].name} and {found[1].name} exist; keep one")
    return found[0] if found else None


def read_table(path: Path, spec: FileSpec) -> Table:
    table = _read_parquet(path, spec) if path.suffix == ".parquet" else _read_csv(path, spec)
    missing = [c for c in spec.required if c not in table.frame.columns]
    if missing:
        raise InputFileError(f"{path.name}:1: missing required column{'s' if len(missing) > 1 else ''} "
                             + ", ".join(missing) + f" (columns are: {', '.join(table.frame.columns) or 'none'})")
    return table


def _read_parquet(path: Path, spec: FileSpec) -> Table:
    try:
        frame = pq.read_table(path).to_pandas()
    except Exception as err:  # pyarrow raises several types for corrupt files
        raise InputFileError(f"{path.name}: not a readable Parquet file: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return Table(spec, path, frame.reset_index(drop=True), np.arange(1, len(frame) + 1), parquet=True)


def _read_csv(path: Path, spec: FileSpec) -> Table:
    raw = path.read_bytes()
    if raw.startswith(_BOM):
        raw = raw[len(_BOM):]
    faults_at: list[int] = []  # character offsets of invalid bytes
    try:
        raw.decode("utf-8")
        text = None
    except UnicodeDecodeError:
        escaped = raw.decode("utf-8", errors="surrogateescape")
        faults_at = [m.start() for m in _SURROGATE.finditer(escaped)]
        text = _SURROGATE.sub("\ufffd", escaped)
    if not raw.strip():
        raise InputFileError(f"{path.name}:1: empty file (a header line is required)")
    source = io.StringIO(text) if text is not None else io.BytesIO(raw)
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")
    except pd.errors.ParserError as err:
        raise InputFileError(f"{path.name}:{_parser_message(err)}") from None
    except pd.errors.EmptyDataError:
        raise InputFileError(f"{path.name}:1: empty file (a header line is required)") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    lines = _line_numbers(raw, text, len(frame))
    table = Table(spec, path, frame, lines)
    if faults_at:
        table.encoding_faults = _encoding_faults(text, faults_at, table)
    return table


def _parser_message(err: Exception) -> str:
    message = str(err).strip().splitlines()[-1].replace("Error tokenizing data. C error: ", "")
    found = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if found:  # pandas counts lines from 1 with the header, as we do
        return f"{found[2]}: expected {found[1]} fields, saw {found[3]}"
    return message


def _line_numbers(raw: bytes, text: str | None, rows: int) -> np.ndarray:
    """Line of each data row; the fast path holds when every row is exactly one line."""
    newlines = raw.count(b"\n")
    physical = newlines + (0 if raw.endswith(b"\n") else 1)
    # A lone \r is a line break to the CSV parser but not to this count: take the slow path.
    if physical == rows + 1 and raw.count(b"\r") == raw.count(b"\r\n"):
        return np.arange(2, rows + 2, dtype=np.int64)
    reader = csv.reader(io.StringIO(text if text is not None else raw.decode("utf-8"), newline=""))
    next(reader, None)
    lines: list[int] = []
    start = reader.line_num + 1
    for record in reader:
        if record:  # pandas skips blank lines too
            lines.append(start)
        start = reader.line_num + 1
    if len(lines) != rows:  # should not happen; fall back to the row count
        return np.arange(2, rows + 2, dtype=np.int64)
    return np.asarray(lines, dtype=np.int64)


def _encoding_faults(text: str, offsets: list[int], table: Table) -> list[EncodingFault]:
    """Map character offsets of invalid bytes to (row, column)."""
    newline_at = np.fromiter((m.start() for m in re.finditer("\n", text)), dtype=np.int64)
    faults: list[EncodingFault] = []
    seen: set[tuple[int, str]] = set()
    for offset in offsets:
        line = int(np.searchsorted(newline_at, offset)) + 1
        line_start = int(newline_at[line - 2]) + 1 if line >= 2 else 0
        # The record that contains this line: the last row starting at or before it.
        row = int(np.searchsorted(table.lines, line, side="right")) - 1
        if row < 0:  # the header itself is broken
            raise InputFileError(f"{table.file}:1: invalid UTF-8 bytes in the header")
        field_index = text.count(",", line_start, offset)  # approximate inside quoted fields
        columns = list(table.frame.columns)
        column = columns[min(field_index, len(columns) - 1)]
        if (row, column) not in seen:
            seen.add((row, column))
            faults.append(EncodingFault(row, column))
    return faults
