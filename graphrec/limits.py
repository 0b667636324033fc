"""What the store can hold and what GraphRec accepts, defined once for files and the API alike.

The file validation (:mod:`graphrec.ingest.validate`, vectorised over whole columns) and the API's
request models (``api/schemas.py``) both take their rules from here, so an id, a weight, a price or
a timestamp that one accepts the other accepts too.

* Ids: 1 to :data:`ID_MAX_BYTES` bytes of UTF-8, printable characters only (no control, format
  such as zero-width or bidi overrides, separators other than the ASCII space, private-use,
  unassigned or surrogate code points), no space at either end. :func:`id_problem` is the rule.
* Indexed text (node ids, product and category names): at most :data:`INDEX_KEY_MAX_BYTES`, the
  largest string Neo4j 5's range index accepts (measured; ``tests/store/test_loader.py`` checks
  it on the real server). Over it, Neo4j fails the write halfway through a load.
* Other text properties: at most :data:`TEXT_MAX_BYTES`, so one row always fits in a write batch.
* Timestamps: :data:`TS_MIN_MS` .. :data:`TS_MAX_MS` (years 1 to 9999, UTC), what Neo4j stores
  *and* the Python driver can read back: Neo4j accepts any year up to 999,999,999, but the driver's
  ``DateTime`` stops at 9999 and a record holding a later one cannot be read at all.
* Numbers are finite; :data:`PRICE` and :data:`WEIGHT` bound them. Each weight is at most
  ``WEIGHT.le``, so the sum of the rows of one interaction stays finite (it would take 1e302 rows).
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

if TYPE_CHECKING:  # the API imports this module for its scalar rules: no pandas/pyarrow needed there
    import pandas as pd

INDEX_KEY_MAX_BYTES = 8164
ID_MAX_BYTES = 1024  # well under the index limit: ids travel in URLs, messages and explanation paths
TEXT_MAX_BYTES = 1 << 20

TS_MIN_MS = -62_135_596_800_000  # 0001-01-01T00:00:00Z
TS_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
TS_RANGE_TEXT = "0001-01-01 to 9999-12-31 (UTC)"

_KIND_OF_CHARACTER = {
    "Cc": "a control character", "Cf": "an invisible format character", "Cs": "a surrogate",
    "Co": "a private-use character", "Cn": "an unassigned code point", "Zl": "a line separator",
    "Zp": "a paragraph separator", "Zs": "a space other than U+0020",
}
# Everything that is not printable ASCII, or a space at either end: the only ids that can break
# the rule apart from their length. Values matching it get the exact check of id_problem.
_SUSPECT_ID = r"[^ -~]|^ | $"


def id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid id (to follow the id in a message), or None if it is one."""
    if value == "":
        return "is empty"
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid Unicode (it holds a lone surrogate)"
    if size > ID_MAX_BYTES:
        return f"is {size} bytes long (UTF-8); ids are at most {ID_MAX_BYTES} bytes"
    if not value.isprintable():
        char = next(c for c in value if not c.isprintable())
        name = unicodedata.name(char, "")
        kind = _KIND_OF_CHARACTER.get(unicodedata.category(char), "a non-printable character")
        return (f"contains U+{ord(char):04X}{' ' + name if name else ''} ({kind}); "
                "ids hold printable characters only")
    if value[0] == " " or value[-1] == " ":
        return "starts or ends with a space"
    return None


def id_problems(values: pd.Series) -> pd.Series:
    """:func:`id_problem` of every value (None where valid), for a whole column.

    Only distinct values that are not plain printable ASCII within the length go through the
    Python check, so a column of a million ordinary ids costs one pyarrow pass."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pd.Series([None] * len(values), index=values.index, dtype=object)
    if len(values) == 0:
        return out
    distinct = pa.array(pd.unique(values.to_numpy(dtype=object)), type=pa.large_string())
    suspect = pc.or_(pc.match_substring_regex(distinct, _SUSPECT_ID),
                     pc.greater(pc.binary_length(distinct), ID_MAX_BYTES))
    suspect = pc.or_(suspect, pc.equal(pc.binary_length(distinct), 0))
    flagged = distinct.filter(suspect).to_pylist()
    reasons = {v: r for v in flagged if (r := id_problem(v)) is not None}
    if reasons:
        out = values.map(reasons).astype(object)
        out = out.where(out.notna(), None)
    return out


def utf8_lengths(values: pd.Series) -> np.ndarray:
    """Bytes of UTF-8 of each text value (0 for missing), vectorised."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    lengths = pc.binary_length(pa.array(values.to_numpy(dtype=object), type=pa.large_string()))
    return lengths.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def ts_out_of_range(ms: np.ndarray) -> np.ndarray:
    """Epoch milliseconds outside what Neo4j and the driver round-trip (NaN = missing is fine)."""
    ms = np.asarray(ms, dtype=float)
    present = ~np.isnan(ms)
    return present & ~((ms >= TS_MIN_MS) & (ms <= TS_MAX_MS))


def check_datetime(value: datetime | None) -> datetime | None:
    """The API's timestamp rule: in range once converted to UTC (a naive time is UTC)."""
    if value is None:
        return None
    aware = value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    try:
        ms = aware.astimezone(timezone.utc).timestamp() * 1000
    except (OverflowError, ValueError):
        ms = math.nan
    if not TS_MIN_MS <= ms <= TS_MAX_MS:
        raise ValueError(f"timestamps must lie between {TS_RANGE_TEXT}")
    return value


def _plain(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


@dataclass(frozen=True)
class Bounds:
    """A finite number within bounds; ``gt``/``ge``/``le`` as in pydantic."""

    gt: float | None = None
    ge: float | None = None
    le: float | None = None

    def problem(self, value: float) -> str | None:
        """Why ``value`` breaks the rule (to follow the value in a message), or None."""
        if not math.isfinite(value):
            return "is not a finite number"
        if self.gt is not None and not value > self.gt:
            return f"must be greater than {_plain(self.gt)}"
        if self.ge is not None and not value >= self.ge:
            return "is negative" if self.ge == 0 else f"must be at least {_plain(self.ge)}"
        if self.le is not None and not value <= self.le:
            return f"must be at most {_plain(self.le)}"
        return None

    def violations(self, values: np.ndarray) -> np.ndarray:
        """Mask of the values that break the rule, for a whole column (NaN = missing is fine)."""
        values = np.asarray(values, dtype=float)
        bad = np.isinf(values)
        with np.errstate(invalid="ignore"):
            if self.gt is not None:
                bad |= values <= self.gt
            if self.ge is not None:
                bad |= values < self.ge
            if self.le is not None:
                bad |= values > self.le
        return bad

    def field(self, **kwargs: Any) -> Any:
        """The same rule as a pydantic field (for ``Annotated[float, rule.field()]``)."""
        return Field(gt=self.gt, ge=self.ge, le=self.le, allow_inf_nan=False, **kwargs)


PRICE = Bounds(ge=0, le=1e12)
# A weight is how much an interaction counts (a quantity, a play count, a rating): > 0. A zero or
# negative weight would make an interaction count against the product it records.
WEIGHT = Bounds(gt=0, le=1e6)
