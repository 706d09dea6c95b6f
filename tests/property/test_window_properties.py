"""Window properties over drawn cohorts and priced frames (strategies_windows.py)."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costing.schema import COST_CATEGORIES
from costing.windows import ASSIGN_RULES, audit, cost_by_window
from tests.property.strategies_windows import Scenario, scenarios, shift_days

RULES = st.sampled_from(ASSIGN_RULES)
FOUR_YEARS_DAYS = 1461  # 4 x 365 + 1: every 4-year span in 1901-2099 holds one 29 February


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def _run(s: Scenario, assign: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    kw = {"windows": s.windows, "months": s.months, "assign": assign}
    return cost_by_window(s.priced, s.cohort, **kw), audit(s.priced, s.cohort, **kw)  # type: ignore[arg-type]


@given(scenarios(), RULES)
def test_totals_conserved(s: Scenario, assign: str) -> None:
    """Window costs + every other audit bucket = the priced total; in-window costs match."""
    out, a = _run(s, assign)
    total = float(s.priced["cost"].sum())
    assert _close(float(a["cost"].sum()), total)
    in_window = float(a.filter(pl.col("bucket") == "in_window")["cost"].sum())
    assert _close(float(out["cost"].sum()), in_window)
    assert _close(
        float(out["cost"].sum()) + float(a.filter(pl.col("bucket") != "in_window")["cost"].sum()),
        total,
    )


@given(scenarios(), RULES)
def test_every_patient_every_window_every_category(s: Scenario, assign: str) -> None:
    out, _ = _run(s, assign)
    n = len(s.windows) * len(COST_CATEGORIES)
    assert out.height == s.cohort.height * n
    per = out.group_by("patient_id").agg(pl.len(), pl.col("window").unique().sort())
    assert sorted(per["patient_id"]) == sorted(s.cohort["patient_id"])
    assert set(per["len"]) == {n}
    assert all(list(w) == list(s.windows) for w in per["window"])
    assert (out["days_observed"] >= 0).all() and (out["days_observed"] <= out["window_days"]).all()


@given(scenarios(), RULES)
def test_a_record_is_in_at_most_one_window(s: Scenario, assign: str) -> None:
    """Whole-record rules: one audit row per record. Apportion: parts sum to the cost."""
    _, a = _run(s, assign)
    assert set(a["record_id"]) == set(s.priced["record_id"])
    if assign != "apportion":
        assert a.height == s.priced.height
        return
    per = a.group_by("record_id").agg(
        pl.col("cost").sum(),
        pl.col("record_cost").first(),
        pl.col("record_cost").null_count().alias("n_null"),
        pl.col("window").drop_nulls().is_duplicated().any().alias("window_twice"),
        pl.col("nights").sum(),
        pl.col("nights").is_not_null().any().alias("split"),
    )
    for r in per.iter_rows(named=True):
        assert not r["window_twice"]
        if r["n_null"] == 0:
            assert _close(r["cost"], r["record_cost"])
    los = dict(zip(s.priced["record_id"], s.priced["los_days"], strict=True))
    for r in per.filter(pl.col("split")).iter_rows(named=True):
        assert r["nights"] == los[r["record_id"]]


@given(scenarios(), RULES, st.integers(1, 10))
def test_shift_by_whole_leap_cycles_leaves_windows_unchanged(
    s: Scenario, assign: str, m: int
) -> None:
    """Shifting every date (records, index dates, end of follow-up) by 1461*m days changes nothing.

    What holds exactly: within 1901-2099 a shift of 1461*m days is a shift of 4*m calendar
    years that maps every date to the same month and day (29 February to 29 February), so
    month arithmetic with month-end clamping commutes with it and every window keeps its
    length and contents. A shift by an arbitrary number of days is NOT neutral: clamping makes
    window lengths depend on the day of month (see the test below), so records near a window
    bound can change windows. Drawn dates are in 1990-2045 (+ 40 years < 2099).
    """
    shifted = shift_days(s, FOUR_YEARS_DAYS * m)
    a, _ = _run(s, assign)
    b, _ = _run(shifted, assign)
    same = [
        "patient_id",
        "window",
        "window_days",
        "category",
        "cost",
        "n_records",
        "n_unpriced",
        "n_excluded",
        "days_observed",
    ]
    assert a.select(same).equals(b.select(same))
    starts = a["window_start"].to_list()
    assert b["window_start"].to_list() == [
        d + dt.timedelta(days=FOUR_YEARS_DAYS * m) for d in starts
    ]


def test_a_one_day_shift_is_not_neutral() -> None:
    """Why the shift property is limited to whole leap cycles: windows are calendar months."""
    cohort = pl.DataFrame({"patient_id": ["a"], "index_date": [dt.date(2008, 8, 30)]})
    empty = pl.DataFrame(
        schema={
            "patient_id": pl.String,
            "setting": pl.String,
            "activity_date": pl.Date,
            "cost_category": pl.String,
            "cost": pl.Float64,
            "status": pl.Int16,
        }
    )
    days = cost_by_window(empty, cohort)["window_days"].unique(maintain_order=True).to_list()
    shifted = (
        cost_by_window(empty, cohort.with_columns(pl.col("index_date") + pl.duration(days=1)))[
            "window_days"
        ]
        .unique(maintain_order=True)
        .to_list()
    )
    # 2008-08-30: [2008-02-29, 2008-08-30) = 183 days and [2008-08-30, 2009-02-28) = 182;
    # 2008-08-31: 184 and 181
    assert days == [183, 182]
    assert shifted == [184, 181]


@pytest.mark.slow
@given(scenarios(), RULES)
def test_lazy_equals_eager(s: Scenario, assign: str) -> None:
    eager, _ = _run(s, assign)
    lazy = cost_by_window(
        s.priced.lazy(), s.cohort.lazy(), windows=s.windows, months=s.months, assign=assign
    )  # type: ignore[arg-type]
    assert eager.equals(lazy)
