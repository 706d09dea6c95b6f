"""Pricing throughput and peak memory (not a test; run by hand or `make bench`).

    python benchmarks/bench_pricing.py --records 1000000 10000000
    python benchmarks/bench_pricing.py --stream 100000000   # Parquet -> Parquet, streamed

Each size is priced in a fresh subprocess so peak RSS is that run's own. Activity is
generated in memory first (not timed), then priced in provider and purchaser
perspectives (the purchaser run uses a synthetic illustrative tariff built from the
reference costs so the tariff joins really happen).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _cpu_s() -> float:
    """User + system CPU seconds of this process (all threads): on a shared machine it
    moves far less with other load than the wall time does."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _tariff_tables():  # type: ignore[no-untyped-def]
    """Shipped tables plus a synthetic HRG4 tariff (reference costs x 0.9) for the benchmark."""
    import polars as pl

    import costing
    from costing.tables import Source, load_tables, write_edition

    tables = costing.load_tables()
    rc = tables.table("reference_cost", "2017-18", "reference_costs")
    nel = rc.filter(pl.col("department_code") == "NEL").select("currency_code", nel_price=pl.col("unit_cost") * 0.9)
    el = rc.filter(pl.col("department_code") == "EL").select("currency_code", el_price=pl.col("unit_cost") * 0.9)
    hrgs = pl.concat([nel.select("currency_code"), el.select("currency_code")]).unique()
    apc = (hrgs.join(nel, on="currency_code", how="left").join(el, on="currency_code", how="left")
           .rename({"currency_code": "hrg_code"})
           .with_columns(hrg_name=pl.col("hrg_code"), op_procedure_price=None, combined_dc_el_price=None,
                         dc_price=pl.col("el_price"), el_trim_days=pl.lit(5), nel_trim_days=pl.lit(5),
                         excess_bed_day_price=pl.lit(250.0), sse_applicable=pl.lit(True),
                         sse_percent=None, sse_price=pl.col("nel_price") * 0.3))
    tmp = Path(tempfile.mkdtemp())
    write_edition(tmp, kind="tariff", edition="2017-18", hrg_version="HRG4", illustrative=True,
                  frames={"apc": apc}, sources=[Source(title="benchmark synthetic", file_name="-", sha256="-")])
    return tables.with_editions(*load_tables(tmp))


def run_one(n: int, perspective: str) -> dict[str, float]:
    import polars as pl

    import costing
    from benchmarks.generate import generate

    act = generate(n, max(n // 10, 1))
    tables = _tariff_tables() if perspective == "purchaser" else costing.load_tables()
    cfg = costing.CostingConfig(perspective=perspective, tariff_edition="2017-18" if perspective == "purchaser" else None,
                                reference_cost_edition="2017-18")
    t0, c0 = time.perf_counter(), _cpu_s()
    out = costing.price(act, tables, cfg)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    priced = out.filter(pl.col("status") < 50).height
    return {"records": n, "perspective": perspective, "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
            "records_per_s": round(n / wall), "priced_share": round(priced / n, 3),
            "peak_rss_mb": round(_peak_rss_mb())}


def run_stream(n: int) -> dict[str, float]:
    import polars as pl

    import costing
    from benchmarks.generate import generate

    tmp = Path(tempfile.mkdtemp(dir=HERE.parent / "benchmarks"))
    chunk = 10_000_000
    parts = []
    for i in range(0, n, chunk):  # write in chunks so generation itself stays bounded
        p = tmp / f"act_{i // chunk}.parquet"
        generate(min(chunk, n - i), 1_000_000, seed=i).write_parquet(p)
        parts.append(p)
    gen_rss = _peak_rss_mb()
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    t0, c0 = time.perf_counter(), _cpu_s()
    lf = costing.price_lazy(pl.scan_parquet(parts), None, cfg)
    lf.sink_parquet(tmp / "priced.parquet")
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    rows = pl.scan_parquet(tmp / "priced.parquet").select(pl.len()).collect().item()
    for p in [*parts, tmp / "priced.parquet"]:
        p.unlink()
    tmp.rmdir()
    return {"records": n, "mode": "stream parquet->parquet (provider)", "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "rows_out": rows, "records_per_s": round(n / wall), "peak_rss_mb": round(_peak_rss_mb()),
            "peak_rss_mb_during_generation": round(gen_rss)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--perspective", choices=["provider", "purchaser", "both"], default="both")
    ap.add_argument("--stream", type=int, help="stream this many records Parquet -> Parquet")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, n, persp = a.child.split(":")
        res = run_stream(int(n)) if kind == "stream" else run_one(int(n), persp)
        print(json.dumps(res))
        return
    jobs = []
    persps = ["provider", "purchaser"] if a.perspective == "both" else [a.perspective]
    for n in a.records:
        jobs += [f"price:{n}:{p}" for p in persps]
    if a.stream:
        jobs.append(f"stream:{a.stream}:provider")
    for job in jobs:
        r = subprocess.run([sys.executable, __file__, "--child", job], capture_output=True, text=True,
                           check=False)
        print(r.stdout.strip() or r.stderr.strip()[-2000:], flush=True)


if __name__ == "__main__":
    main()
