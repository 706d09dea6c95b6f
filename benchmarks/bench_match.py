"""Benchmark: risk-set matching of cases against a large candidate pool (``costing.match``).

Usage::

    .venv/bin/python benchmarks/bench_match.py --cases 4000 --pool 1000000 --records 10000000
    .venv/bin/python benchmarks/bench_match.py --cases 400 --pool 100000 --records 1000000

Builds (not timed) a simulated study (``benchmarks/match_sim.py``: persistent individual use,
selection on recent emergency admissions) whose priced records number about ``--records``,
then times ``costing.match`` (features in four six-month windows for every case and, per
index month, every eligible candidate; both scores; greedy matching) and the balance table,
and prints its results as one JSON line: wall and CPU seconds, the resident memory before
matching (the simulated inputs) and its peak during matching, the matches and the largest
|SMD| after matching. The libraries matching loads on first use (scikit-learn, SciPy) are
imported before the clock starts and their import time reported apart. ``--profile N``
prints the N functions with the most cumulative time (cProfile) as ``#`` lines on stderr.
Everything is synthetic.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from benchmarks.match_sim import simulate  # noqa: E402
from costing.match import match  # noqa: E402

RECORDS_PER_PATIENT = 10.5  # the simulation's mean over 48 months at rate 1.0


def _rss_gib(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process from /proc, in GiB (0 where absent)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    """Reset the process's peak RSS (Linux: 5 > /proc/self/clear_refs); whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=400)
    ap.add_argument("--pool", type=int, default=100_000, help="candidate patients")
    ap.add_argument("--records", type=int, default=1_000_000, help="priced records (about)")
    ap.add_argument("--index-months", type=int, default=6, help="months the index dates span")
    ap.add_argument("-k", type=int, default=1)
    ap.add_argument("--score", default="both", choices=["both", "propensity", "prognostic"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="print the N functions with the most cumulative time")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    rate = args.records / (args.pool * RECORDS_PER_PATIENT)
    sim = simulate(args.pool, args.cases, rate=rate, seed=args.seed,
                   index_months=(36, 36 + args.index_months))
    print(f"built {sim.priced.height:,} priced records, {args.pool:,} pool, "
          f"{sim.cases.height:,} cases in {time.perf_counter() - t:.1f} s", file=sys.stderr)

    t = time.perf_counter()
    import scipy.linalg  # noqa: F401  (loaded by match on first use)
    import scipy.spatial  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    import_s = time.perf_counter() - t

    rss_before = _rss_gib("VmRSS")
    reset = _reset_peak()
    profiler = cProfile.Profile() if args.profile else None
    ru0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    result = match(sim.cases, sim.pool, sim.priced, k=args.k, score=args.score, seed=args.seed)
    if profiler is not None:
        profiler.disable()
    wall, ru1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    user, system = ru1.ru_utime - ru0.ru_utime, ru1.ru_stime - ru0.ru_stime
    cpu = user + system
    # the peak since the reset (matching alone), else the process's (the simulation too)
    peak_gib = _rss_gib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    d = result.diagnostics
    print(f"# match: {sim.cases.height:,} cases x {args.pool:,} pool ({sim.priced.height:,} records): "
          f"wall {wall:.2f} s, CPU {cpu:.2f} s, RSS {rss_before:.2f} GiB before, peak "
          f"{peak_gib:.2f} GiB{' during matching' if reset else ' (process)'}", file=sys.stderr)
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(args.profile)
        print("\n".join("# " + line for line in out.getvalue().splitlines()), file=sys.stderr)
    print(json.dumps({
        "benchmark": "match", "cases": sim.cases.height, "pool": args.pool,
        "records": sim.priced.height, "index_months": args.index_months, "k": args.k,
        "score": args.score, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
        "cpu_user_s": round(user, 3), "cpu_sys_s": round(system, 3),
        "rss_before_gib": round(rss_before, 3), "peak_rss_gib": round(peak_gib, 3),
        "peak_is_matching_only": reset, "import_s": round(import_s, 3),
        "profiled": bool(profiler), "load_1min": round(os.getloadavg()[0], 1),
        "matched": d.n_matched, "controls": d.n_controls,
        "max_abs_smd_after": round(float(result.balance["smd_after"].abs().max() or 0.0), 4),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
