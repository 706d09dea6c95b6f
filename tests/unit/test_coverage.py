"""Coverage: rows and money by status and source, per category, arm and window."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from costing.coverage import coverage

D = dt.date
DAY = D(2008, 9, 1)  # in window 0 of index 2008-08-31

# intervention arm (i1, i2): two tariff-priced OP (£100 each) and one reference-cost fallback (£50)
# control arm (c1): one tariff (£100), one fallback (£60), one unpriced (HRG not found)
# stranger: a patient not in the cohort (£10)
PRICED = pl.DataFrame(
    {
        "record_id": ["1", "2", "3", "4", "5", "6", "7"],
        "patient_id": ["i1", "i1", "i2", "c1", "c1", "c1", "stranger"],
        "setting": ["op"] * 7,
        "activity_date": [DAY] * 7,
        "discharge_date": [None] * 7,
        "cost_category": ["outpatient"] * 7,
        "cost": [100.0, 100.0, 50.0, 100.0, 60.0, None, 10.0],
        "cost_source": [
            "tariff",
            "tariff",
            "reference_cost",
            "tariff",
            "reference_cost",
            None,
            "tariff",
        ],
        "status": pl.Series([1, 1, 2, 1, 2, 52, 1], dtype=pl.Int16),
    },
    schema_overrides={"discharge_date": pl.Date},
)
COHORT = pl.DataFrame(
    {
        "patient_id": ["i1", "i2", "c1"],
        "index_date": [D(2008, 8, 31)] * 3,
        "group": ["intervention", "intervention", "control"],
    }
)


def test_coverage_without_cohort() -> None:
    out = coverage(PRICED)
    assert out.columns == [
        "category",
        "status",
        "status_name",
        "cost_source",
        "n_records",
        "cost",
        "share_records",
        "share_cost",
    ]
    rows = {r["status"]: r for r in out.iter_rows(named=True)}
    # 4 tariff records (£310), 2 fallback (£110), 1 unpriced, of 7 outpatient records (£420)
    assert rows[1]["n_records"] == 4 and rows[1]["cost"] == 310.0
    assert rows[1]["share_records"] == pytest.approx(4 / 7)
    assert rows[1]["share_cost"] == pytest.approx(310 / 420)
    assert rows[2]["cost_source"] == "reference_cost"
    assert rows[2]["status_name"] == "priced_reference_cost_fallback"
    assert rows[52]["status_name"] == "hrg_not_found"
    assert (rows[52]["n_records"], rows[52]["cost"], rows[52]["share_cost"]) == (1, 0.0, 0.0)


def test_coverage_by_arm_shows_unequal_fallback() -> None:
    out = coverage(PRICED, COHORT)
    in_window = out.filter(pl.col("bucket") == "in_window")
    got = {
        (r["group"], r["status"]): (r["n_records"], r["cost"], r["share_records"], r["share_cost"])
        for r in in_window.iter_rows(named=True)
    }
    assert got == {
        # intervention: 2/3 of records by tariff (£200 of £250 = 0.8), 1/3 by fallback
        ("intervention", 1): (2, 200.0, pytest.approx(2 / 3), pytest.approx(0.8)),
        ("intervention", 2): (1, 50.0, pytest.approx(1 / 3), pytest.approx(0.2)),
        # control: a third each; £100 of £160 = 0.625 by tariff, £60 = 0.375 by fallback
        ("control", 1): (1, 100.0, pytest.approx(1 / 3), pytest.approx(0.625)),
        ("control", 2): (1, 60.0, pytest.approx(1 / 3), pytest.approx(0.375)),
        ("control", 52): (1, 0.0, pytest.approx(1 / 3), 0.0),
    }
    assert set(in_window["window"]) == {0}
    stranger = out.filter(pl.col("bucket") == "not_in_cohort")
    assert stranger.select("group", "window", "n_records", "cost").rows() == [(None, None, 1, 10.0)]
    # every record is in the table once
    assert out["n_records"].sum() == PRICED.height
    assert out["cost"].sum() == 420.0


def test_status_name_derived_when_absent() -> None:
    out = coverage(PRICED.drop("cost_source"))
    assert out["cost_source"].null_count() == out.height
    assert "priced_tariff" in out["status_name"].to_list()
