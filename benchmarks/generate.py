"""Synthetic canonical activity for benchmarks: realistic mix, real HRG codes, fixed seed.

About 75% outpatient, 12% admitted, 13% A&E records for a given number of patients, with
HRG codes drawn from the shipped 2017/18 reference costs so most records price. Vectorised
numpy; no per-row Python.

    python benchmarks/generate.py --records 10000000 --patients 1000000 -o benchmarks/data/act.parquet
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

import costing

MIX = {"op": 0.75, "apc": 0.12, "ae": 0.13}


def _codes(tables: costing.TableSet, dept: str) -> np.ndarray:
    rc = tables.table("reference_cost", "2017-18", "reference_costs")
    codes = rc.filter(pl.col("department_code") == dept)["currency_code"].unique().sort()
    return codes.to_numpy().astype(str)


def generate(n_records: int, n_patients: int, seed: int = 0,
             start: dt.date = dt.date(2017, 4, 1), days: int = 365) -> pl.DataFrame:
    """A canonical activity frame of ``n_records`` rows across ``n_patients`` patients."""
    rng = np.random.default_rng(seed)
    tables = costing.load_tables()
    setting = rng.choice(np.array(["op", "apc", "ae"]), size=n_records,
                         p=[MIX["op"], MIX["apc"], MIX["ae"]])
    is_apc, is_op, is_ae = setting == "apc", setting == "op", setting == "ae"
    apc_hrg = np.concatenate([_codes(tables, "NEL"), _codes(tables, "EL")])
    oproc = _codes(tables, "OPROC")
    ae_hrg = _codes(tables, "AE")
    hrg = np.where(is_apc, rng.choice(apc_hrg, n_records),
                   np.where(is_ae, rng.choice(ae_hrg, n_records),
                            np.where(rng.random(n_records) < 0.2, rng.choice(oproc, n_records),
                                     "WF01A")))
    day0 = rng.integers(0, days, n_records)
    los = np.minimum(rng.geometric(0.25, n_records) - 1, 120)
    method = rng.choice(np.array(["11", "12", "21", "22", "28", "31"]), n_records,
                        p=[0.3, 0.05, 0.45, 0.1, 0.05, 0.05])
    elective = np.isin(method, ["11", "12"])
    cls = np.where(elective & (rng.random(n_records) < 0.6), "2", "1")
    los = np.where(cls == "2", 0, los)
    tf = rng.choice(np.array(["100", "101", "110", "120", "130", "300", "320", "330", "340", "502"]),
                    n_records)
    base = pl.Series([start], dtype=pl.Date)[0]
    frame = pl.DataFrame({
        "record_id": pl.int_range(0, n_records, eager=True).cast(pl.String),
        "patient_id": pl.Series(rng.integers(0, n_patients, n_records)).cast(pl.String),
        "setting": setting,
        "provider_code": rng.choice(np.array(["RAE", "RBS", "RCF", "RJ1", "RR8"]), n_records),
        "day0": day0, "los": los,
        "admission_method": method, "patient_classification": cls,
        "hrg_code": hrg,
        "age": rng.integers(0, 95, n_records).astype(np.int32),
        "treatment_function_code": tf,
        "first_attendance": rng.choice(np.array(["1", "2"]), n_records, p=[0.3, 0.7]),
        "attended": rng.choice(np.array(["5", "6", "3", "2"]), n_records, p=[0.85, 0.05, 0.07, 0.03]),
        "department_type": rng.choice(np.array(["01", "02", "03", "04"]), n_records,
                                      p=[0.7, 0.05, 0.2, 0.05]),
        "ae_admitted": rng.random(n_records) < 0.25,
    })
    return frame.select(
        "record_id", "patient_id", "setting", "provider_code",
        (pl.lit(base) + pl.duration(days=pl.col("day0"))).alias("activity_date"),
        pl.when(pl.col("setting") == "apc")
        .then(pl.lit(base) + pl.duration(days=pl.col("day0") + pl.col("los")))
        .alias("discharge_date"),
        *[pl.when(pl.col("setting") == "apc").then(pl.col(c)).alias(c)
          for c in ("admission_method", "patient_classification")],
        "hrg_code", pl.lit("HRG4").alias("hrg_version"), "age",
        pl.when(pl.col("setting") == "op").then(pl.col("treatment_function_code"))
        .alias("treatment_function_code"),
        *[pl.when(pl.col("setting") == "op").then(pl.col(c)).alias(c)
          for c in ("first_attendance", "attended")],
        *[pl.when(pl.col("setting") == "ae").then(pl.col(c)).alias(c)
          for c in ("department_type", "ae_admitted")],
    )


def generate_cohort(n_patients: int, seed: int = 0, start: dt.date = dt.date(2017, 7, 1),
                    days: int = 180) -> pl.DataFrame:
    """One index date per patient, 1 case : 4 controls in matched sets of five."""
    rng = np.random.default_rng(seed + 1)
    ids = np.arange(n_patients)
    return pl.DataFrame({
        "patient_id": pl.Series(ids).cast(pl.String),
        "index_date": pl.Series([start], dtype=pl.Date)[0],
        "offset": rng.integers(0, days, n_patients),
        "group": np.where(ids % 5 == 0, "intervention", "control"),
        "matched_set": pl.Series(ids // 5).cast(pl.String),
    }).with_columns(
        (pl.col("index_date") + pl.duration(days=pl.col("offset"))).alias("index_date")
    ).drop("offset")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--patients", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--output", type=Path, required=True)
    ap.add_argument("--cohort", type=Path, help="also write a cohort of all patients here")
    a = ap.parse_args()
    a.output.parent.mkdir(parents=True, exist_ok=True)
    generate(a.records, a.patients, a.seed).write_parquet(a.output)
    if a.cohort:
        generate_cohort(a.patients, a.seed).write_parquet(a.cohort)


if __name__ == "__main__":
    main()
