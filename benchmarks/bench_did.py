"""Benchmark: costing.did on a zero-filled window output.

Default: 1M patients x 2 windows x 4 categories (8M rows), 2,000 bootstrap replicates,
matched sets of one case and two controls (weights 1 and 1/2). Writes one JSON object to
stdout: the wall and CPU time of did() alone (data generation excluded), the process's peak
RSS and the 1-minute load average (a busy machine inflates the wall time: OpenBLAS threads
compete for the cores); the estimates go to stderr.

    .venv/bin/python benchmarks/bench_did.py
    .venv/bin/python benchmarks/bench_did.py --cluster none      # 1M single-patient clusters
    .venv/bin/python benchmarks/bench_did.py --patients 200000 --boot 500
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

from costing.did import did

CATEGORIES = ("elective", "non_elective", "outpatient", "ae")


def window_costs(n_patients: int, seed: int = 1) -> pl.DataFrame:
    """Synthetic zero-filled window output: most patient-windows cost nothing."""
    rng = np.random.default_rng(seed)
    pid = np.arange(n_patients)
    is_case = pid % 3 == 0
    n = n_patients * 2 * len(CATEGORIES)
    any_cost = rng.random(n) < 0.3
    cost = np.where(any_cost, rng.lognormal(6.5, 1.2, n), 0.0)
    patients = pl.DataFrame(
        {
            "patient_id": pl.Series(pid).cast(pl.String).str.zfill(8),
            "group": np.where(is_case, "intervention", "control"),
            "matched_set": pl.Series(pid // 3).cast(pl.String).str.zfill(8),
            "weight": np.where(is_case, 1.0, 0.5),
        }
    )
    grid = pl.DataFrame(
        {
            "window": pl.Series([-1] * 4 + [0] * 4, dtype=pl.Int32),
            "category": list(CATEGORIES) * 2,
        }
    )
    return (
        patients.join(grid, how="cross")
        .with_columns(
            pl.Series("cost", cost),
            pl.lit(182, dtype=pl.Int32).alias("days_observed"),
            pl.lit(182, dtype=pl.Int32).alias("window_days"),
        )
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--patients", type=int, default=1_000_000)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--censoring", default="observed")
    ap.add_argument("--cluster", default="matched_set",
                    help="cluster column; 'none' resamples the 1M patients one by one")
    args = ap.parse_args(argv)

    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    wc = window_costs(args.patients)
    t1, c1 = time.perf_counter(), time.process_time()
    cluster = None if args.cluster == "none" else args.cluster
    out = did(wc, n_boot=args.boot, weight="weight", censoring=args.censoring, cluster=cluster)
    t2, c2 = time.perf_counter(), time.process_time()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with pl.Config(tbl_cols=-1, tbl_width_chars=200):
        print(out.select("category", "n_treated", "n_control", "did", "ci_low", "ci_high",
                         "p_value"), file=sys.stderr)
    print(json.dumps({
        "benchmark": "did",
        "patients": args.patients,
        "rows": wc.height,
        "replicates": args.boot,
        "clusters": int(out["n_clusters"][0]),
        "wall_s": round(t2 - t1, 3),
        "cpu_s": round(c2 - c1, 3),
        "generate_s": round(t1 - t0, 3),
        "peak_rss_mb": round(peak_mib, 1),
        "load_average_before": round(load_before, 2),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
