"""Benchmark: risk-set matching of cases against a large candidate pool (``costing.match``).

Usage::

    .venv/bin/python benchmarks/bench_match.py --cases 4000 --pool 1000000 --records 10000000
    .venv/bin/python benchmarks/bench_match.py --cases 400 --pool 100000 --records 1000000

Builds (not timed) a simulated study (``benchmarks/match_sim.py``: persistent individual use,
selection on recent emergency admissions) whose priced records number about ``--records``,
then times ``costing.match`` (features in four six-month windows for every case and, per
index month, every eligible candidate; both scores; greedy matching) and the balance table,
and prints wall time, CPU time and peak RSS. Everything is synthetic.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

from benchmarks.match_sim import simulate
from costing.match import match

RECORDS_PER_PATIENT = 10.5  # the simulation's mean over 48 months at rate 1.0


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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
    print(f"match: {sim.cases.height:,} cases x {args.pool:,} pool ({sim.priced.height:,} records, "
          f"{args.index_months} index months, k={args.k}, score={args.score}): wall {wall:.2f} s, "
          f"CPU {cpu:.2f} s, peak RSS {peak_gib:.2f} GiB, load {os.getloadavg()[0]:.1f}; "
          f"{d.n_matched:,} matched, {d.n_controls:,} controls, "
          f"max |SMD| after {result.balance['smd_after'].abs().max():.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
