"""Benchmark: cost per patient per window for a synthetic priced frame and cohort.

Usage::

    .venv/bin/python benchmarks/bench_windows.py --records 10000000 --patients 1000000

Builds (not timed) a synthetic priced frame (the ``costing.price`` output contract) and a
cohort, then times ``costing.windows.cost_by_window`` (2 windows x 4 categories: an
8M-row zero-filled output for 1M patients). Writes one JSON object to stdout (wall times,
CPU seconds, peak RSS, load, versions) and a readable line to stderr. Numbers in the data are
synthetic; nothing here is a real price.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import numpy as np
import polars as pl

from costing.schema import COST_CATEGORIES
from costing.windows import cost_by_window


def synthetic(n_records: int, n_patients: int, seed: int = 1) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A priced frame and a cohort (about 90% of records belong to cohort patients)."""
    rng = np.random.default_rng(seed)
    base = np.datetime64("2008-01-01", "D")
    index_days = rng.integers(0, 365, n_patients)
    cohort = pl.DataFrame(
        {
            "patient_id": pl.Series(np.arange(n_patients)).cast(pl.String),
            "index_date": pl.Series(base + index_days.astype("timedelta64[D]")),
            "group": np.where(np.arange(n_patients) % 2 == 0, "intervention", "control"),
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 50 == 0)
        .then(pl.col("index_date") + pl.duration(days=90))
        .alias("end_of_follow_up")
    )
    pid = rng.integers(0, int(n_patients * 1.1), n_records)
    setting_i = rng.integers(0, 3, n_records)
    settings = np.array(["apc", "op", "ae"])[setting_i]
    days = rng.integers(-200, 600, n_records)
    los = np.where(setting_i == 0, rng.integers(0, 12, n_records), 0)
    cat_i = np.where(setting_i == 0, rng.integers(0, 2, n_records), setting_i + 1)
    cost = rng.gamma(2.0, 300.0, n_records)
    status = np.where(rng.random(n_records) < 0.03, 52, 1).astype(np.int16)
    start = pl.Series(base + days.astype("timedelta64[D]"))
    priced = pl.DataFrame(
        {
            "record_id": pl.Series(np.arange(n_records)).cast(pl.String),
            "patient_id": pl.Series(pid).cast(pl.String),
            "setting": settings,
            "activity_date": start,
            "los_days": los.astype(np.int32),
            "cost_category": np.array(COST_CATEGORIES)[cat_i],
            "cost": cost,
            "status": status,
        }
    ).with_columns(
        pl.when(pl.col("setting") == "apc")
        .then(pl.col("activity_date") + pl.duration(days=pl.col("los_days")))
        .alias("discharge_date"),
        pl.when(pl.col("status") < 50).then(pl.col("cost")).alias("cost"),
        pl.lit("NEL").alias("pod"),
    )
    return priced, cohort


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process (all threads): the work, whatever the load."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=10_000_000)
    p.add_argument("--patients", type=int, default=1_000_000)
    p.add_argument("--assign", default="admission", choices=["admission", "discharge", "apportion"])
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    priced, cohort = synthetic(args.records, args.patients)
    print(
        f"built {priced.height:,} priced records, {cohort.height:,} cohort patients "
        f"in {time.perf_counter() - t0:.1f} s (not timed below)",
        file=sys.stderr,
    )
    times: list[float] = []
    cpu: list[float] = []
    out = pl.DataFrame()
    for _ in range(args.repeat):
        t, c = time.perf_counter(), _cpu_seconds()
        out = cost_by_window(priced, cohort, assign=args.assign)
        times.append(time.perf_counter() - t)
        cpu.append(_cpu_seconds() - c)
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = {
        "benchmark": "windows",
        "records": args.records,
        "patients": args.patients,
        "assign": args.assign,
        "rows_out": out.height,
        "wall_s": [round(x, 3) for x in times],
        "best_wall_s": round(min(times), 3),
        "cpu_s": [round(x, 3) for x in cpu],
        "peak_rss_mb": round(rss_kib / 1024, 1),
        "load_average": round(os.getloadavg()[0], 2),
        "polars": pl.__version__,
        "threads": pl.thread_pool_size(),
    }
    print(
        f"cost_by_window(assign={args.assign!r}): {out.height:,} output rows; wall "
        f"{min(times):.2f} s best of {args.repeat} ({', '.join(f'{x:.2f}' for x in times)}); "
        f"CPU (user+sys) {min(cpu):.2f} s; peak RSS {rss_kib / 1024**2:.2f} GiB",
        file=sys.stderr,
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
