"""Reading a CSV: Arrow's fast reader gives exactly the frame pandas' parser gives, or steps aside."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from graphrec.ingest import layout
from graphrec.ingest.read import _csv_header, _read_csv_fast, read_table

TRICKY = (
    'user_id,name,note\n'
    'u1,"Smith, Anna","she said ""hi"""\n'
    'u2,,\n'
    'u3, padded ,"two\nlines"\n'
    '\n'
    'u4,Zoë 東京,"trailing space "\n'
    'u5,"",007\n'
    'u6,NA,null\n'
)


def pandas_frame(raw: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(raw), dtype=str, keep_default_na=False, na_filter=False, encoding="utf-8")


@pytest.mark.parametrize("text", [
    TRICKY,
    TRICKY.replace("\n", "\r\n"),
    "user_id,age\n",  # header only
    "user_id\nu1\nu2\n",
    'user_id,age\nu1,1\nu2,2',  # no final newline
])
def test_fast_reader_equals_pandas(text):
    raw = text.encode()
    fast = _read_csv_fast(raw, _csv_header(raw, None))
    assert fast is not None
    pd.testing.assert_frame_equal(fast, pandas_frame(raw))


@pytest.mark.parametrize("text", [
    "user_id,user_id\nu1,u2\n",  # a repeated column: refused later, by name
    "user_id,,age\nu1,x,3\n",  # a nameless column
    "user_id,age\nu1,3\ru2,4\n",  # a lone carriage return
    "user_id,age\nu1,3,extra\n",  # a row with too many fields
])
def test_fast_reader_steps_aside_where_pandas_words_the_outcome(text):
    raw = text.encode()
    assert _read_csv_fast(raw, _csv_header(raw, None)) is None


def test_a_malformed_row_is_still_named_by_line(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("user_id,age\nu1,3\nu2,4,5,6\n")
    from graphrec.ingest.read import InputFileError

    with pytest.raises(InputFileError, match=r"users\.csv:3: expected 2 fields, saw 4"):
        read_table(path, layout.USERS)
