"""I/O property: a canonical frame written by write_frame and read back by read_table is equal.

Covers CSV, Excel (.xlsx) and Parquet, with codes that carry leading zeros, formula-like text
(neutralised on write, restored on read), non-ASCII text, nulls and extreme dates/numbers.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given
from polars.testing import assert_frame_equal

from costing.io import read_table, write_frame
from tests.property.strategies_io import FRAME_SCHEMA, canonical_frames


@pytest.mark.parametrize("ext", [".csv", ".xlsx", ".parquet"])
@given(frame=canonical_frames())
def test_write_then_read_table_gives_the_same_frame(ext: str, frame: pl.DataFrame) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"out{ext}"
        write_frame(frame, path)
        back = read_table(path)
    assert back.columns == list(FRAME_SCHEMA)
    if ext == ".xlsx":
        # Excel stores numbers with 15 significant digits: equal to that precision, no more.
        assert_frame_equal(back, frame, check_exact=False, rel_tol=1e-14, abs_tol=0.0)
    else:
        assert_frame_equal(back, frame, check_exact=True)
