"""Benchmark: risk-set matching of cases against a large candidate pool (``costing.match``).

Usage::

    .venv/bin/python benchmarks/bench_match.py --cases 4000 --pool 1000000 --records 10000000
    .venv/bin/python benchmarks/bench_match.py --cases 400 --pool 100000 --records 1000000

Builds (not timed) a simulated study (``benchmarks/match_sim.py``: persistent individual use,
selection on recent emergency admissions) whose priced records number about ``--records``,
then times ``costing.match`` (features in four six-month windows for every case and, per
index month, every eligible candidate; both scores; greedy matching) and the balance table,
and prints its results as one JSON line (wall and CPU seconds, peak RSS, the matches and
the largest |SMD| after matching). Everything is synthetic.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.bench_windows import _cpu_seconds  # noqa: E402
from benchmarks.match_sim import simulate  # noqa: E402
from costing.match import match  # noqa: E402

RECORDS_PER_PATIENT = 10.5  # the simulation's mean over 48 months at rate 1.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--pool", type=int, default=100_000, help="candidate patients")
    ap.add_argument("--records", type=int, default=1_000_000, help="priced records (about)")
    ap.add_argument("--index-months", type=int, default=6, help="months the index dates span")
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--score", default="both", choices=["both", "propensity", "prognostic"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    t = time.perf_counter()
    rate = args.records / (args.pool * RECORDS_PER_PATIENT)
    sim = simulate(args.pool, args.cases, rate=rate, seed=args.seed,
                   index_months=(36, 36 + args.index_months))
    print(f"built {sim.priced.height:,} priced records, {args.pool:,} pool, "
          f"{sim.cases.height:,} cases in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    result = match(sim.cases, sim.pool, sim.priced, k=args.k, score=args.score, seed=args.seed)
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    d = result.diagnostics
    print(f"# match: {sim.cases.height:,} cases x {args.pool:,} pool ({sim.priced.height:,} records): "
          f"wall {wall:.2f} s, CPU {cpu:.2f} s, peak RSS {peak_gib:.2f} GiB", file=sys.stderr)
    print(json.dumps({
        "benchmark": "match", "cases": sim.cases.height, "pool": args.pool,
        "records": sim.priced.height, "index_months": args.index_months, "k": args.k,
        "score": args.score, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "peak_rss_gib": round(peak_gib, 3), "load_1min": round(os.getloadavg()[0], 1),
        "matched": d.n_matched, "controls": d.n_controls,
        "max_abs_smd_after": round(float(result.balance["smd_after"].abs().max() or 0.0), 4),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
