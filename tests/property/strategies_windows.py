"""Hypothesis strategies for window properties: cohorts and priced frames.

A ``Scenario`` is a small cohort (index dates in 1990-2045, with month ends and 29 February
over-represented, some patients with an end of follow-up) and a priced frame following the
``costing.price`` output contract: APC spells (0-40 nights), outpatient and A&E records of
cohort patients and of strangers, dated up to ~14 months either side of the index date
(so some fall outside every window and some after the end of follow-up), priced, excluded
(cost 0) or unpriced (cost null). Every cost is invented.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from hypothesis import strategies as st

from costing.status import Status

FIRST_INDEX = dt.date(1990, 1, 1)
LAST_INDEX = dt.date(2045, 12, 31)
MONTHS = (1, 3, 6, 12)

PRICED_SCHEMA: dict[str, pl.DataType] = {
    "record_id": pl.String(),
    "patient_id": pl.String(),
    "setting": pl.String(),
    "activity_date": pl.Date(),
    "discharge_date": pl.Date(),
    "pod": pl.String(),
    "cost_category": pl.String(),
    "cost": pl.Float64(),
    "cost_source": pl.String(),
    "status": pl.Int16(),
    "status_name": pl.String(),
    "los_days": pl.Int32(),
    "n_episodes": pl.Int32(),
}
_COHORT_SCHEMA: dict[str, pl.DataType] = {
    "patient_id": pl.String(),
    "index_date": pl.Date(),
    "group": pl.String(),
    "end_of_follow_up": pl.Date(),
}


@dataclass(frozen=True)
class Scenario:
    """A cohort, a priced frame and window options drawn together."""

    cohort: pl.DataFrame
    priced: pl.DataFrame
    windows: tuple[int, ...]
    months: int


@st.composite
def index_dates(draw: st.DrawFn) -> dt.date:
    """A date in 1990-2045, often a month end or 29 February."""
    kind = draw(st.sampled_from(["any", "month_end", "leap_day"]))
    if kind == "leap_day":
        return dt.date(draw(st.sampled_from(range(1992, 2045, 4))), 2, 29)
    d = draw(st.dates(min_value=FIRST_INDEX, max_value=LAST_INDEX))
    if kind == "month_end":
        nxt = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)
    return d


@st.composite
def windows_options(draw: st.DrawFn) -> tuple[tuple[int, ...], int]:
    ks = draw(st.lists(st.integers(-3, 2), min_size=1, max_size=3, unique=True))
    return tuple(sorted(ks)), draw(st.sampled_from(MONTHS))


@st.composite
def cohorts(draw: st.DrawFn, min_patients: int = 1, max_patients: int = 5) -> pl.DataFrame:
    n = draw(st.integers(min_patients, max_patients))
    rows = []
    for i in range(n):
        t0 = draw(index_dates())
        eofu = draw(
            st.none() | st.integers(-200, 300).map(lambda d, t0=t0: t0 + dt.timedelta(days=d))
        )
        rows.append(
            {
                "patient_id": f"p{i}",
                "index_date": t0,
                "group": draw(st.sampled_from(["intervention", "control"])),
                "end_of_follow_up": eofu,
            }
        )
    return pl.DataFrame(rows, schema=_COHORT_SCHEMA)


@st.composite
def _record(draw: st.DrawFn, i: int, patients: dict[str, dt.date]) -> dict[str, object]:
    pid = draw(st.sampled_from([*patients, "stranger"]))
    anchor = patients.get(pid, dt.date(2008, 8, 31))
    start = anchor + dt.timedelta(days=draw(st.integers(-430, 430)))
    setting = draw(st.sampled_from(["apc", "op", "ae"]))
    nights = draw(st.integers(0, 40)) if setting == "apc" else None
    category, pod = {
        "apc": draw(
            st.sampled_from([("elective", "EL"), ("non_elective", "NEL"), ("elective", "DC")])
        ),
        "op": ("outpatient", "OP_FIRST"),
        "ae": ("ae", "AE_T12"),
    }[setting]
    fate = draw(st.sampled_from(["priced", "priced", "fallback", "unpriced", "excluded"]))
    if fate == "excluded" and setting != "op":
        fate = "priced"
    status, cost, source = {
        "priced": (Status.PRICED_TARIFF, draw(st.floats(0.01, 20_000, allow_nan=False)), "tariff"),
        "fallback": (
            Status.PRICED_REFERENCE_COST_FALLBACK,
            draw(st.floats(0.01, 20_000, allow_nan=False)),
            "reference_cost",
        ),
        "unpriced": (Status.HRG_NOT_FOUND, None, None),
        "excluded": (Status.EXCLUDED_NOT_ATTENDED, 0.0, "excluded"),
    }[fate]
    return {
        "record_id": f"r{i}",
        "patient_id": pid,
        "setting": setting,
        "activity_date": start,
        "discharge_date": start + dt.timedelta(days=nights) if nights is not None else None,
        "pod": pod,
        "cost_category": category,
        "cost": cost,
        "cost_source": source,
        "status": int(status),
        "status_name": status.label,
        "los_days": nights,
        "n_episodes": 1,
    }


@st.composite
def priced_frames(draw: st.DrawFn, cohort: pl.DataFrame, max_records: int = 25) -> pl.DataFrame:
    patients = dict(zip(cohort["patient_id"], cohort["index_date"], strict=True))
    n = draw(st.integers(0, max_records))
    rows = [draw(_record(i, patients)) for i in range(n)]
    return pl.DataFrame(rows, schema=PRICED_SCHEMA)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    cohort = draw(cohorts())
    windows, months = draw(windows_options())
    return Scenario(cohort, draw(priced_frames(cohort)), windows, months)


def shift_days(s: Scenario, days: int) -> Scenario:
    """Every date of a scenario (records, index dates, end of follow-up) moved by ``days``."""
    by = pl.duration(days=days)
    dates = ("activity_date", "discharge_date", "index_date", "end_of_follow_up")
    return Scenario(
        s.cohort.with_columns((pl.col(c) + by).alias(c) for c in dates if c in s.cohort.columns),
        s.priced.with_columns((pl.col(c) + by).alias(c) for c in dates if c in s.priced.columns),
        s.windows,
        s.months,
    )
