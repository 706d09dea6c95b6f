"""Hypothesis strategies for I/O round trips: canonical activity frames with awkward values.

Every row has a ``record_id`` (as every real output row has): xlsx does not store an
all-empty trailing row. Text values avoid three things no spreadsheet format can carry
unchanged, documented in docs/reading-extracts.md: the empty string (Excel stores
no cell, read back as null), control characters other than tab/newline (not allowed in
xlsx XML), and a leading apostrophe before ``= + - @`` (that is how ``write_frame`` marks
neutralised formulas, so it is removed when read back).
"""

from __future__ import annotations

import datetime as dt

import polars as pl
from hypothesis import strategies as st

from costing.schema import ACTIVITY_SCHEMA, PRICED_COLUMNS

# Letters, digits, leading-zero material, CSV-hostile punctuation, formula starters, non-ASCII.
_ALPHABET = "AZaz09 01_,;\"'=+-@#&/\\.()\néö£€Ł中"

_text = st.text(alphabet=_ALPHABET, min_size=1, max_size=12).filter(
    lambda s: not (s[0] == "'" and len(s) > 1 and s[1] in "=+-@\t\r")
)
_codes = st.from_regex(r"\A0[0-9]{1,3}\Z") | st.sampled_from(
    ["01", "021", "DZ11V", "&", "-1", "=A1"]
)
_dates = st.dates(min_value=dt.date(1901, 1, 1), max_value=dt.date(2099, 12, 31))
_money = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)

# Columns whose values are codes (leading zeros matter); other String columns get free text.
_CODE_COLUMNS = {
    "admission_method",
    "patient_classification",
    "treatment_function_code",
    "first_attendance",
    "attended",
    "department_type",
    "hrg_code",
}

_EXTRA_PRICED = {
    c: PRICED_COLUMNS[c]
    for c in ("cost", "status", "status_name", "short_stay_applied", "los_days", "base_price")
}
#: The frame schema the round-trip strategies produce.
FRAME_SCHEMA: dict[str, pl.DataType] = {**ACTIVITY_SCHEMA, **_EXTRA_PRICED, "note": pl.String()}


def _value(column: str, dtype: pl.DataType) -> st.SearchStrategy[object]:
    if column == "record_id":
        # Every real output row has an id; an all-empty last row is not stored by xlsx at all.
        return _text
    if dtype == pl.String:
        base = _codes if column in _CODE_COLUMNS else _text
    elif dtype == pl.Categorical:  # table editions: a few code-like values
        base = _codes
    elif isinstance(dtype, pl.Enum):  # pricing's text outputs with a declared vocabulary
        base = st.sampled_from(dtype.categories.to_list())
    elif dtype == pl.Date:
        base = _dates
    elif dtype == pl.Boolean:
        base = st.booleans()
    elif dtype == pl.Float64:
        base = _money
    elif dtype == pl.Int16:
        base = st.integers(-(2**15), 2**15 - 1)
    elif dtype == pl.Int32:
        base = st.integers(-(2**31), 2**31 - 1)
    else:  # pragma: no cover - a new schema dtype needs a strategy here
        raise NotImplementedError(f"no strategy for {column}: {dtype}")
    return st.none() | base


@st.composite
def canonical_frames(draw: st.DrawFn, max_rows: int = 8) -> pl.DataFrame:
    """A frame with every activity column, some priced columns and a free-text extra column."""
    n = draw(st.integers(min_value=0, max_value=max_rows))
    data = {
        c: draw(st.lists(_value(c, t), min_size=n, max_size=n)) for c, t in FRAME_SCHEMA.items()
    }
    return pl.DataFrame(data, schema=FRAME_SCHEMA)
