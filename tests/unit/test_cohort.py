"""Cohort validation: canonical columns, and every problem reported at once."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from costing.cohort import CohortError, validate_cohort
from costing.errors import InputError, MissingColumnsError
from costing.schema import COHORT_SCHEMA

D = dt.date


def test_canonical_columns_typed_nulls_and_extras_kept() -> None:
    raw = pl.DataFrame(
        {
            "age_band": ["70-74", "80+"],
            "patient_id": [101, 102],
            "index_date": ["2008-08-31", "2009-02-28"],
        }
    )
    out = validate_cohort(raw)
    assert out.columns == [*COHORT_SCHEMA, "age_band"]
    assert out.schema == pl.Schema({**COHORT_SCHEMA, "age_band": pl.String})
    # integer ids become strings; ISO strings become dates; absent optional columns are nulls
    assert out["patient_id"].to_list() == ["101", "102"]
    assert out["index_date"].to_list() == [D(2008, 8, 31), D(2009, 2, 28)]
    assert out["weight"].null_count() == 2
    assert out["age_band"].to_list() == ["70-74", "80+"]


def test_lazy_and_datetime_input() -> None:
    raw = pl.LazyFrame(
        {"patient_id": ["a"], "index_date": [dt.datetime(2008, 8, 31, 13, 5)], "weight": [2]}
    )
    out = validate_cohort(raw)
    assert out["index_date"].to_list() == [D(2008, 8, 31)]
    assert out["weight"].to_list() == [2.0]


def test_end_of_follow_up_before_index_is_allowed() -> None:
    out = validate_cohort(
        pl.DataFrame(
            {
                "patient_id": ["a"],
                "index_date": [D(2008, 8, 31)],
                "end_of_follow_up": [D(2001, 1, 1)],
            }
        )
    )
    assert out["end_of_follow_up"].to_list() == [D(2001, 1, 1)]


def test_missing_required_column() -> None:
    with pytest.raises(MissingColumnsError, match="'index_date'") as err:
        validate_cohort(pl.DataFrame({"patient_id": ["a"]}), source="study.csv")
    assert "study.csv" in str(err.value)


def test_every_problem_reported_once() -> None:
    raw = pl.DataFrame(
        {
            "patient_id": ["a", "b", "a", None, "c", "d"],
            "index_date": [
                "2008-08-31",
                "1800-01-01",
                "2008-01-01",
                "2008-01-01",
                None,
                "31/08/2008",
            ],
            "end_of_follow_up": [None, None, "1801-01-01", None, None, None],
            "weight": [1.0, -0.5, 1.0, 1.0, 1.0, 1.0],
        }
    )
    with pytest.raises(CohortError) as err:
        validate_cohort(raw, source="cohort.csv")
    assert isinstance(err.value, InputError)
    got = err.value.failures.select("row", "column", "value").rows()
    assert got == [
        (1, "patient_id", "a"),  # duplicate of row 3
        (2, "index_date", "1800-01-01"),  # HES dummy date
        (2, "weight", "-0.5"),  # negative
        (3, "end_of_follow_up", "1801-01-01"),  # HES dummy date
        (3, "patient_id", "a"),  # duplicate of row 1
        (4, "patient_id", None),  # missing
        (5, "index_date", None),  # missing
        (6, "index_date", "31/08/2008"),  # not ISO
    ]
    message = str(err.value)
    assert message.startswith("cohort.csv: 8 problem(s)")
    assert "row 6, column index_date: index_date is not a date (expected YYYY-MM-DD)" in message


def test_unparseable_weight() -> None:
    raw = pl.DataFrame({"patient_id": ["a"], "index_date": [D(2008, 1, 1)], "weight": ["heavy"]})
    with pytest.raises(CohortError, match="weight is not a number"):
        validate_cohort(raw)
