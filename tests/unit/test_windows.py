"""Windows: hand-built cohorts and priced frames with answers worked out in the comments.

Day counts are computed by hand from day-of-year numbers: in 2008 (a leap year) 29 Feb is
day 60 and 31 Aug is day 244 of 366; in 2009 28 Feb is day 59; in 2007 29 Aug is day 241
of 365.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from costing.errors import ConfigError, ConservationError, InputError, MissingColumnsError
from costing.schema import COST_CATEGORIES, WINDOW_COLUMNS
from tests.property.strategies_windows import PRICED_SCHEMA as _PRICED_SCHEMA
from costing.windows import (
    BUCKETS,
    COHORT_OUTPUT_COLUMNS,
    POD_CATEGORIES,
    _check_assigned,
    _spec,
    audit,
    audit_summary,
    cost_by_window,
)

D = dt.date
INDEX = D(2008, 8, 31)


_POD = {"elective": "EL", "non_elective": "NEL", "outpatient": "OP_FIRST", "ae": "AE_T12"}


def rec(
    rid: str,
    pid: str,
    setting: str,
    date: dt.date | None,
    cost: float | None,
    *,
    discharge: dt.date | None = None,
    category: str | None = None,
    status: int | None = None,
    n_episodes: int = 1,
) -> dict[str, Any]:
    """One priced record following the priced-frame contract."""
    category = category or {"apc": "non_elective", "op": "outpatient", "ae": "ae"}[setting]
    if status is None:
        status = 52 if cost is None else 1
    return {
        "record_id": rid,
        "patient_id": pid,
        "setting": setting,
        "activity_date": date,
        "discharge_date": discharge if setting == "apc" else None,
        "pod": _POD[category],
        "cost_category": category,
        "cost": cost,
        "cost_source": None if cost is None else ("excluded" if status == 20 else "tariff"),
        "status": status,
        "status_name": "x",
        "los_days": (discharge - date).days if (setting == "apc" and discharge and date) else None,
        "n_episodes": n_episodes,
    }


def priced(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows), schema=_PRICED_SCHEMA)


def cohort(*rows: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(list(rows))


def cell(out: pl.DataFrame, pid: str, window: int, category: str) -> dict[str, Any]:
    hit = out.filter(
        (pl.col("patient_id") == pid)
        & (pl.col("window") == window)
        & (pl.col("category") == category)
    )
    assert hit.height == 1
    return hit.row(0, named=True)


def windows_of(out: pl.DataFrame, pid: str) -> list[tuple[int, dt.date, dt.date, int]]:
    return (
        out.filter(pl.col("patient_id") == pid)
        .select("window", "window_start", "window_end", "window_days")
        .unique(maintain_order=True)
        .rows()
    )


COHORT = cohort({"patient_id": "a", "index_date": INDEX})


# --------------------------------------------------------------------------------------
# window bounds
# --------------------------------------------------------------------------------------


def test_month_end_index_gives_clamped_windows() -> None:
    out = cost_by_window(priced(), COHORT)
    # 2008-08-31 - 6 months clamps to 2008-02-29 (leap year), + 6 months to 2009-02-28.
    # window -1: day 60 -> day 244 of 2008 = 184 days; window 0: (366 - 244) + 59 = 181 days.
    assert windows_of(out, "a") == [
        (-1, D(2008, 2, 29), D(2008, 8, 31), 184),
        (0, D(2008, 8, 31), D(2009, 2, 28), 181),
    ]


def test_index_on_29_february() -> None:
    out = cost_by_window(
        priced(), cohort({"patient_id": "a", "index_date": D(2008, 2, 29)}), windows=(-1, 0, 1)
    )
    # -1: 2007-08-29 (day 241 of 365) -> 2008-02-29: (365 - 241) + 60 = 184 days
    #  0: 2008-02-29 (day 60) -> 2008-08-29 (day 242): 182 days
    #  1: 2008-08-29 -> index + 12 months = 2009-02-28 (no 29 Feb in 2009): (366-242)+59 = 183
    # (never chained: 2008-08-29 + 6 months would be 2009-02-28 too, but window 1's end is
    # computed from the index date directly)
    assert windows_of(out, "a") == [
        (-1, D(2007, 8, 29), D(2008, 2, 29), 184),
        (0, D(2008, 2, 29), D(2008, 8, 29), 182),
        (1, D(2008, 8, 29), D(2009, 2, 28), 183),
    ]


def test_bounds_computed_from_index_not_chained() -> None:
    # Index 2008-08-31, window 1 with 6 months: start = index + 6 months = 2009-02-28,
    # end = index + 12 months = 2009-08-31. Chaining (2009-02-28 + 6 months) would give
    # 2009-08-28 and lose three days.
    out = cost_by_window(priced(), COHORT, windows=(1,))
    assert windows_of(out, "a") == [(1, D(2009, 2, 28), D(2009, 8, 31), 184)]


def test_month_length_option() -> None:
    out = cost_by_window(priced(), COHORT, windows=(0,), months=1)
    # 2008-08-31 + 1 month clamps to 2008-09-30: 30 days
    assert windows_of(out, "a") == [(0, D(2008, 8, 31), D(2008, 9, 30), 30)]


# --------------------------------------------------------------------------------------
# assignment
# --------------------------------------------------------------------------------------


def test_record_on_window_start_is_in_and_on_window_end_is_out() -> None:
    p = priced(
        rec("start", "a", "op", D(2008, 2, 29), 100.0),  # first day of window -1: in
        rec("last", "a", "op", D(2008, 8, 30), 10.0),  # last day of window -1: in
        rec("index", "a", "op", INDEX, 1.0),  # = end of -1 = start of 0: in window 0
        rec("end", "a", "op", D(2009, 2, 28), 1000.0),  # end of window 0 (exclusive): out
        rec("before", "a", "op", D(2008, 2, 28), 5000.0),  # day before window -1: out
    )
    out = cost_by_window(p, COHORT)
    assert cell(out, "a", -1, "outpatient")["cost"] == 110.0
    assert cell(out, "a", -1, "outpatient")["n_records"] == 2
    assert cell(out, "a", 0, "outpatient")["cost"] == 1.0
    a = audit(p, COHORT)
    assert dict(zip(a["record_id"], a["bucket"], strict=True)) == {
        "start": "in_window",
        "last": "in_window",
        "index": "in_window",
        "end": "outside_windows",
        "before": "outside_windows",
    }
    assert a.filter(pl.col("bucket") == "outside_windows")["cost"].sum() == 6000.0


SPANNING = priced(
    # admitted 2008-08-25, discharged 2008-09-04: 10 nights (25..30 Aug = 6 nights before
    # the index date 31 Aug, 31 Aug..3 Sep = 4 nights from it)
    rec("spell", "a", "apc", D(2008, 8, 25), 1000.0, discharge=D(2008, 9, 4)),
)


def test_spell_spanning_index_by_admission() -> None:
    out = cost_by_window(SPANNING, COHORT, assign="admission")
    assert cell(out, "a", -1, "non_elective")["cost"] == 1000.0
    assert cell(out, "a", 0, "non_elective")["cost"] == 0.0


def test_spell_spanning_index_by_discharge() -> None:
    out = cost_by_window(SPANNING, COHORT, assign="discharge")
    assert cell(out, "a", -1, "non_elective")["cost"] == 0.0
    assert cell(out, "a", 0, "non_elective")["cost"] == 1000.0


def test_spell_spanning_index_apportioned() -> None:
    out = cost_by_window(SPANNING, COHORT, assign="apportion")
    # 1000 x 6/10 = 600 before, 1000 x 4/10 = 400 after
    assert cell(out, "a", -1, "non_elective")["cost"] == pytest.approx(600.0)
    assert cell(out, "a", 0, "non_elective")["cost"] == pytest.approx(400.0)
    # the spell counts as a record in both windows it has nights in
    assert cell(out, "a", -1, "non_elective")["n_records"] == 1
    assert cell(out, "a", 0, "non_elective")["n_records"] == 1
    a = audit(SPANNING, COHORT, assign="apportion")
    assert a.select("window", "nights").rows() == [(-1, 6), (0, 4)]
    assert a["record_cost"].to_list() == [1000.0, 1000.0]


def test_apportioned_parts_sum_exactly_to_cost() -> None:
    # Admitted 30 Aug, discharged 2 Sep: 3 nights, 30 Aug in window -1, 31 Aug and 1 Sep in
    # window 0. Parts: 100 x 1/3, then the last part takes the remainder 100 - 100/3.
    p = priced(rec("s", "a", "apc", D(2008, 8, 30), 100.0, discharge=D(2008, 9, 2)))
    a = audit(p, COHORT, assign="apportion")
    assert a["nights"].to_list() == [1, 2]
    assert a["cost"][0] == 100.0 / 3
    assert a["cost"][0] + a["cost"][1] == 100.0


def test_apportion_nights_outside_windows_and_after_death() -> None:
    # Admitted 2009-02-20, discharged 2009-03-05: 13 nights. 20..27 Feb = 8 nights in
    # window 0 (ends 2009-02-28 exclusive); 28 Feb..4 Mar = 5 nights outside all windows.
    # Patient b died 2009-02-24: nights 20..24 Feb (5) in window 0; 25 Feb..4 Mar (8)
    # after end of follow-up. Cost 1300: 100 per night.
    p = priced(
        rec("late", "a", "apc", D(2009, 2, 20), 1300.0, discharge=D(2009, 3, 5)),
        rec("died", "b", "apc", D(2009, 2, 20), 1300.0, discharge=D(2009, 3, 5)),
    )
    coh = cohort(
        {"patient_id": "a", "index_date": INDEX, "end_of_follow_up": None},
        {"patient_id": "b", "index_date": INDEX, "end_of_follow_up": D(2009, 2, 24)},
    )
    a = audit(p, coh, assign="apportion")
    assert a.select("record_id", "bucket", "nights", "cost").rows() == [
        ("late", "in_window", 8, pytest.approx(800.0)),
        ("late", "outside_windows", 5, pytest.approx(500.0)),
        ("died", "in_window", 5, pytest.approx(500.0)),
        ("died", "after_end_of_follow_up", 8, pytest.approx(800.0)),
    ]
    out = cost_by_window(p, coh, assign="apportion")
    assert cell(out, "a", 0, "non_elective")["cost"] == pytest.approx(800.0)
    assert cell(out, "b", 0, "non_elective")["cost"] == pytest.approx(500.0)


def test_same_day_spell_wholly_in_its_window_under_apportion() -> None:
    p = priced(
        rec("dc", "a", "apc", D(2008, 8, 30), 500.0, discharge=D(2008, 8, 30), category="elective")
    )
    a = audit(p, COHORT, assign="apportion")
    assert a.select("bucket", "window", "nights", "cost").rows() == [("in_window", -1, None, 500.0)]


def test_outpatients_and_ae_use_their_date_under_every_rule() -> None:
    p = priced(rec("op", "a", "op", D(2008, 8, 30), 70.0), rec("ae", "a", "ae", INDEX, 80.0))
    for rule in ("admission", "discharge", "apportion"):
        out = cost_by_window(p, COHORT, assign=rule)
        assert cell(out, "a", -1, "outpatient")["cost"] == 70.0
        assert cell(out, "a", 0, "ae")["cost"] == 80.0


def test_multi_episode_spell_priced_once() -> None:
    # pricing returns one row per spell (n_episodes = 3); the window counts it once
    p = priced(
        rec("spell", "a", "apc", D(2008, 9, 1), 2500.0, discharge=D(2008, 9, 9), n_episodes=3)
    )
    out = cost_by_window(p, COHORT)
    assert cell(out, "a", 0, "non_elective")["cost"] == 2500.0
    assert cell(out, "a", 0, "non_elective")["n_records"] == 1


# --------------------------------------------------------------------------------------
# zero fill, censoring, counts, audit
# --------------------------------------------------------------------------------------


def test_patient_with_no_activity_has_all_zero_rows() -> None:
    coh = cohort(
        {"patient_id": "busy", "index_date": INDEX},
        {"patient_id": "idle", "index_date": D(2010, 1, 15)},
    )
    out = cost_by_window(priced(rec("r", "busy", "ae", INDEX, 90.0)), coh)
    idle = out.filter(pl.col("patient_id") == "idle")
    assert idle.height == 2 * 4
    assert idle.select("window", "category").rows() == [
        (w, c) for w in (-1, 0) for c in COST_CATEGORIES
    ]
    assert idle["cost"].to_list() == [0.0] * 8
    assert idle["n_records"].to_list() == [0] * 8
    assert out.height == 2 * 2 * 4
    assert out.columns == [*WINDOW_COLUMNS, *COHORT_OUTPUT_COLUMNS]
    assert out.schema["n_records"] == pl.UInt32


def test_patient_who_dies_in_window_0() -> None:
    coh = cohort(
        {"patient_id": "a", "index_date": INDEX, "end_of_follow_up": D(2008, 10, 15)},
        {"patient_id": "early", "index_date": INDEX, "end_of_follow_up": D(2007, 1, 1)},
        {"patient_id": "alive", "index_date": INDEX, "end_of_follow_up": None},
    )
    p = priced(
        rec("on_death_day", "a", "ae", D(2008, 10, 15), 100.0),
        rec("after_death", "a", "ae", D(2008, 10, 16), 999.0),
    )
    out = cost_by_window(p, coh)
    days = {(r["patient_id"], r["window"]): r["days_observed"] for r in out.iter_rows(named=True)}
    # window 0 observed 31 Aug .. 15 Oct inclusive: 1 + 30 + 15 = 46 days; window -1 whole
    assert days[("a", -1)] == 184
    assert days[("a", 0)] == 46
    # follow-up ended before the first window: nothing observed
    assert days[("early", -1)] == 0 and days[("early", 0)] == 0
    assert days[("alive", -1)] == 184 and days[("alive", 0)] == 181
    # activity on the death day counts; the day after goes to the audit, not the window
    assert cell(out, "a", 0, "ae")["cost"] == 100.0
    a = audit(p, coh)
    assert a.filter(pl.col("record_id") == "after_death")["bucket"].to_list() == [
        "after_end_of_follow_up"
    ]


def test_non_cohort_patient_goes_to_audit_and_money_is_conserved() -> None:
    p = priced(
        rec("mine", "a", "op", D(2008, 9, 1), 120.0),
        rec("stranger", "zz", "op", D(2008, 9, 1), 75.0),
        rec("no_id", None, "op", D(2008, 9, 1), 5.0),  # type: ignore[arg-type]
        rec("undated", "a", "op", None, 7.0),
    )
    out = cost_by_window(p, COHORT)
    assert out["cost"].sum() == 120.0
    assert set(out["patient_id"]) == {"a"}
    a = audit(p, COHORT)
    assert a["bucket"].to_list() == ["in_window", "not_in_cohort", "not_in_cohort", "no_date"]
    s = audit_summary(a)
    assert s["bucket"].unique(maintain_order=True).to_list() == list(BUCKETS)
    # 120 + 75 + 5 + 7 = 207
    assert s["cost"].sum() == 207.0
    assert s.filter(pl.col("bucket") == "not_in_cohort")["cost"].item() == 80.0


def test_unpriced_and_excluded_counts() -> None:
    p = priced(
        rec("priced", "a", "op", D(2008, 9, 1), 100.0),
        rec("dna", "a", "op", D(2008, 9, 2), 0.0, status=20),
        rec("unpriced", "a", "op", D(2008, 9, 3), None, status=52),
        rec("unpriced_apc", "a", "apc", D(2008, 9, 3), None, discharge=D(2008, 9, 5), status=55),
    )
    out = cost_by_window(p, COHORT)
    op = cell(out, "a", 0, "outpatient")
    # cost sums priced records only; the unpriced one is counted, not costed as 0
    assert (op["cost"], op["n_records"], op["n_unpriced"], op["n_excluded"]) == (100.0, 3, 1, 1)
    apc = cell(out, "a", 0, "non_elective")
    assert (apc["cost"], apc["n_records"], apc["n_unpriced"]) == (0.0, 1, 1)


def test_wide_form() -> None:
    p = priced(
        rec("op", "a", "op", D(2008, 9, 1), 100.0),
        rec("ae", "a", "ae", D(2008, 9, 1), 50.0),
        rec("el", "a", "apc", D(2008, 3, 1), 900.0, discharge=D(2008, 3, 2), category="elective"),
    )
    wide = cost_by_window(p, COHORT, wide=True)
    assert wide.height == 2
    assert wide.select("window", *(f"cost_{c}" for c in COST_CATEGORIES), "cost_total").rows() == [
        (-1, 900.0, 0.0, 0.0, 0.0, 900.0),
        (0, 0.0, 0.0, 100.0, 50.0, 150.0),
    ]
    assert wide["n_records_outpatient"].to_list() == [0, 1]


def test_by_pod() -> None:
    p = priced(
        rec("op", "a", "op", D(2008, 9, 1), 100.0),
        rec("nopod", "a", "ae", D(2008, 9, 1), None, status=56),
    ).with_columns(pl.when(pl.col("record_id") == "nopod").then(None).otherwise("pod").alias("pod"))
    out = cost_by_window(p, COHORT, by="pod")
    assert out.height == 2 * len(POD_CATEGORIES)
    assert cell(out, "a", 0, "OP_FIRST")["cost"] == 100.0
    assert cell(out, "a", 0, "unknown")["n_unpriced"] == 1


def test_unknown_category_is_a_clear_error() -> None:
    p = priced(rec("x", "a", "op", D(2008, 9, 1), 10.0)).with_columns(
        pl.lit("maternity").alias("cost_category")
    )
    with pytest.raises(InputError, match="'maternity'"):
        cost_by_window(p, COHORT)


def test_lazy_input_and_extra_columns_give_the_same_answer() -> None:
    p = SPANNING.with_columns(pl.lit("anything").alias("extra_column"))
    eager = cost_by_window(p, COHORT, assign="apportion")
    lazy = cost_by_window(p.lazy(), COHORT.lazy(), assign="apportion")
    assert eager.equals(lazy)


def test_pre_trend_windows() -> None:
    out = cost_by_window(
        priced(rec("r", "a", "op", D(2007, 9, 1), 40.0)), COHORT, windows=(-2, -1, 0, 1)
    )
    assert out.height == 4 * 4
    # window -2 = [2007-08-31, 2008-02-29): 2007-09-01 falls in it
    assert cell(out, "a", -2, "outpatient")["cost"] == 40.0
    assert windows_of(out, "a")[0][:3] == (-2, D(2007, 8, 31), D(2008, 2, 29))


def test_cohort_columns_carried() -> None:
    coh = cohort(
        {
            "patient_id": "a",
            "index_date": INDEX,
            "group": "intervention",
            "site": "S1",
            "matched_set": "m1",
            "weight": 0.5,
        }
    )
    out = cost_by_window(priced(), coh)
    assert set(out["group"]) == {"intervention"}
    assert set(out["weight"]) == {0.5}
    assert set(out["index_date"]) == {INDEX}


# --------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"windows": ()}, "non-empty"),
        ({"windows": (0, 0)}, "repeat"),
        ({"windows": (0.5,)}, "whole numbers"),
        ({"months": 0}, "months"),
        ({"assign": "midpoint"}, "assign"),
        ({"by": "hrg"}, "by"),
    ],
)
def test_bad_options(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        cost_by_window(priced(), COHORT, **kwargs)


def test_missing_priced_columns() -> None:
    with pytest.raises(MissingColumnsError, match="cost_category"):
        cost_by_window(priced().drop("cost_category"), COHORT)
    with pytest.raises(MissingColumnsError, match="discharge_date"):
        cost_by_window(priced().drop("discharge_date"), COHORT, assign="discharge")


def test_conservation_check_catches_a_lost_record() -> None:
    spec = _spec((-1, 0), 6, "admission", "category")
    assigned = pl.DataFrame(
        {
            "_b": pl.Series([BUCKETS.index("in_window")], dtype=pl.UInt8),
            "_first": [True],
            "_part_cost": [10.0],
            "_record_cost": [10.0],
        }
    )
    ok = pl.DataFrame({"n": [1], "cost": [10.0]})
    assert _check_assigned(assigned, ok, spec)["cost"].sum() == 10.0
    with pytest.raises(ConservationError, match="2 priced records in but 1"):
        _check_assigned(assigned, pl.DataFrame({"n": [2], "cost": [20.0]}), spec)
    with pytest.raises(ConservationError, match="priced cost 11.0"):
        _check_assigned(assigned, pl.DataFrame({"n": [1], "cost": [11.0]}), spec)


@pytest.mark.parametrize("by", ["category", "pod"])
def test_widen_equals_wide_output_without_recomputing(by: str) -> None:
    from costing.windows import widen

    p = priced(
        rec("a", "p1", "apc", D(2008, 9, 10), 100.0, discharge=D(2008, 9, 12), category="elective"),
        rec("b", "p1", "op", D(2008, 3, 10), 40.0),
        rec("c", "p2", "ae", D(2008, 10, 1), None),
    )
    coh = cohort(*({"patient_id": pid, "index_date": INDEX} for pid in ("p1", "p2", "p3")))
    long = cost_by_window(p, coh, by=by)  # type: ignore[arg-type]
    assert widen(long, by=by).equals(cost_by_window(p, coh, by=by, wide=True))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="long output"):
        widen(long.reverse(), by=by)  # type: ignore[arg-type]
