"""A simulated study for matching: persistent individual use, selection on recent emergencies.

Every patient has a frailty and a latent monthly level of use that follows an AR(1) process,
so use is persistent and a patient picked at a peak drifts back towards their mean afterwards
(regression to the mean). Cases are drawn from patients alive at a month within the index
span with probability proportional to ``exp(selection * emergency admissions in the six
previous months)``; a case's index date is a day of that month. The true effect is known:
each case gets ``effect`` extra emergency admissions (each at ``EMERGENCY_COST``) in the six
months from its index date and nothing else changes, so the true difference in differences
of emergency (and total) cost per patient, window 0 against window -1, is
``effect * EMERGENCY_COST``.

Used by ``tests/unit/test_match.py`` (small) and ``benchmarks/bench_match.py`` (large).
Vectorised numpy; no loop over patients or records.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

EMERGENCY_COST = 2000.0
ELECTIVE_COST = 1200.0
OUTPATIENT_COST = 120.0
AE_COST = 150.0
START = dt.date(2006, 1, 1)


@dataclass(frozen=True)
class Simulated:
    cases: pl.DataFrame  # patient_id, index_date
    pool: pl.DataFrame  # every patient: patient_id, sex, age, deprivation_decile, death_date, intervention_start
    priced: pl.DataFrame  # priced records (the columns windows and matching read)
    true_effect: float  # per case, on emergency and total cost in window 0


def _month_start(months: np.ndarray) -> np.ndarray:
    base = np.datetime64(START, "M")
    return (base + months.astype("timedelta64[M]")).astype("datetime64[D]")


def simulate(
    n_patients: int = 3000,
    n_cases: int = 150,
    *,
    effect: float = 1.0,
    selection: float = 0.8,
    months: int = 48,
    index_months: tuple[int, int] = (36, 42),
    rate: float = 1.0,
    seed: int = 0,
) -> Simulated:
    """Simulate cases, a pool (all patients, cases included) and their priced records.

    ``rate`` scales every event rate (about 10 records per patient over 48 months at 1.0).
    Index dates fall in months ``index_months[0]`` to ``index_months[1] - 1`` from 2006-01.
    """
    rng = np.random.default_rng(seed)
    n, t = n_patients, months
    frailty = rng.gamma(2.0, 0.5, size=n)
    rho, sigma = 0.9, 0.35
    u = np.empty((n, t), dtype=np.float32)
    u[:, 0] = rng.normal(0.0, sigma / np.sqrt(1 - rho**2), size=n)
    for m in range(1, t):  # a loop over months (48), not over patients
        u[:, m] = rho * u[:, m - 1] + rng.normal(0.0, sigma, size=n)
    level = frailty[:, None] * np.exp(u)
    base = {"non_elective": 0.025, "elective": 0.02, "outpatient": 0.12, "ae": 0.035}
    counts = {
        "non_elective": rng.poisson(rate * base["non_elective"] * level),
        "elective": rng.poisson(rate * base["elective"] * frailty[:, None], size=(n, t)),
        "outpatient": rng.poisson(rate * base["outpatient"] * np.sqrt(level)),
        "ae": rng.poisson(rate * base["ae"] * level),
    }
    # deaths and later interventions among the pool
    dies = rng.random(n) < 0.04
    death_month = np.where(dies, rng.integers(0, t, size=n), t + 1)
    death_day = _month_start(np.minimum(death_month, t)) + rng.integers(0, 28, size=n)
    # cases: alive at a month of the index span, chosen by recent emergencies (Gumbel top-k)
    month = rng.integers(index_months[0], index_months[1], size=n)
    cum = np.concatenate([np.zeros((n, 1), np.int64), counts["non_elective"].cumsum(axis=1)], axis=1)
    recent = cum[np.arange(n), month] - cum[np.arange(n), month - 6]
    key = selection * recent + rng.gumbel(size=n)
    key[death_month <= month] = -np.inf
    case_pos = np.sort(np.argpartition(-key, n_cases)[:n_cases])
    is_case = np.zeros(n, dtype=bool)
    is_case[case_pos] = True
    index_day = _month_start(month) + rng.integers(0, 28, size=n)
    treated_later = ~is_case & (rng.random(n) < 0.05)
    later = _month_start(rng.integers(index_months[0] - 6, t, size=n)) + rng.integers(0, 28, size=n)

    frames = []
    settings = {"non_elective": "apc", "elective": "apc", "outpatient": "op", "ae": "ae"}
    costs = {"non_elective": EMERGENCY_COST, "elective": ELECTIVE_COST,
             "outpatient": OUTPATIENT_COST, "ae": AE_COST}
    for cat, c in counts.items():
        flat = c.ravel()
        pat = np.repeat(np.arange(n * t) // t, flat)
        mon = np.repeat(np.arange(n * t) % t, flat)
        day = _month_start(mon) + rng.integers(0, 28, size=pat.size)
        los = (rng.poisson(3.0, size=pat.size) + 1 if cat == "non_elective"
               else rng.integers(0, 2, size=pat.size) if cat == "elective" else None)
        frames.append((cat, pat, day, los))
    if effect:
        extra = np.repeat(case_pos, rng.poisson(effect, size=n_cases) if effect != int(effect)
                          else np.full(n_cases, int(effect)))
        day = index_day[extra] + rng.integers(0, 150, size=extra.size)
        frames.append(("non_elective", extra, day, rng.poisson(3.0, size=extra.size) + 1))
    parts = []
    for cat, pat, day, los in frames:
        keep = day < death_day[pat]
        pat, day = pat[keep], day[keep]
        discharge = day + los[keep] if los is not None else None
        parts.append(pl.DataFrame({
            "patient_id": pat, "setting": [settings[cat]] * pat.size,
            "activity_date": day.astype("datetime64[D]"),
            "discharge_date": discharge.astype("datetime64[D]") if discharge is not None
            else np.full(pat.size, np.datetime64("NaT"), dtype="datetime64[D]"),
            "cost_category": [cat] * pat.size, "cost": np.full(pat.size, costs[cat]),
        }))
    priced = (
        pl.concat(parts)
        .with_columns(
            pl.format("p{}", pl.col("patient_id")).alias("patient_id"),
            pl.col("activity_date", "discharge_date").cast(pl.Date),
            pl.lit(0, pl.Int16).alias("status"),
        )
        .with_row_index("record_id")
        .with_columns(pl.format("r{}", "record_id").alias("record_id"))
    )
    ids = pl.Series([f"p{i}" for i in range(n)]) if n <= 100_000 else pl.select(
        pl.format("p{}", pl.int_range(n))).to_series()
    pool = pl.DataFrame({
        "patient_id": ids,
        "sex": np.where(rng.random(n) < 0.55, "F", "M"),
        "age": rng.integers(65, 96, size=n),
        "deprivation_decile": rng.integers(1, 11, size=n),
        "death_date": pl.Series(np.where(dies, death_day, np.datetime64("NaT"))).cast(pl.Date),
        "intervention_start": pl.Series(
            np.where(treated_later, later, np.datetime64("NaT"))).cast(pl.Date),
    })
    cases = pl.DataFrame({
        "patient_id": ids.gather(case_pos),
        "index_date": pl.Series(index_day[case_pos]).cast(pl.Date),
    })
    return Simulated(cases=cases, pool=pool, priced=priced, true_effect=effect * EMERGENCY_COST)
