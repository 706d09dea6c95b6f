"""Pricing throughput and peak memory (not a test; run by hand or `make bench`).

    python benchmarks/bench_pricing.py --records 1000000 10000000
    python benchmarks/bench_pricing.py --records --stream 100000000   # Parquet -> Parquet, streamed
    python benchmarks/bench_pricing.py --records 10000000 --out results.json

Each run's result is one JSON object on standard output, and with ``--out`` all of them as
a JSON list in that file.

Each size is priced in a fresh subprocess so peak RSS is that run's own. Activity is
generated once per size by benchmarks/generate.py in its own subprocess, before the timed
runs, and each run reads it from Parquet (not timed), then prices it, in provider and
purchaser perspectives (the purchaser run prices at the shipped 2017-18 tariff; tables
without one get a synthetic illustrative tariff built from the reference costs, so the
tariff lookups really happen). ``rss_mb_with_input_only`` is the process's RSS holding just the input frame.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _cpu_s() -> float:
    """User + system CPU seconds of this process (all threads): on a shared machine it
    moves far less with other load than the wall time does."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (``peak_rss_gb`` is the same in 10^9 bytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _MemorySampler:
    """Samples this process's resident memory a few times a second in a thread (Linux:
    ``/proc/self/status``), split as the kernel counts it: ``RssAnon`` is the process's own
    heap (what pricing holds); ``RssFile`` is file pages mapped into it (the Parquet input
    being read, the libraries), which the kernel can drop at will. ``ru_maxrss`` counts both.
    Each phase's maxima are kept, and the anonymous memory at each tenth of a phase."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.samples: list[tuple[float, int, int]] = []
        self.phases: list[tuple[str, float, float]] = []
        self._every = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _read() -> tuple[int, int] | None:
        try:
            with open("/proc/self/status") as f:
                kb = {k: int(v.split()[0]) for k, v in (line.split(":", 1) for line in f)
                      if k in ("RssAnon", "RssFile")}
        except OSError:  # not Linux: no phase figures
            return None
        if "RssAnon" not in kb or "RssFile" not in kb:
            return None
        return kb["RssAnon"] // 1024, kb["RssFile"] // 1024

    def _run(self) -> None:
        while not self._stop.is_set():
            got = self._read()
            if got is None:
                return
            self.samples.append((time.perf_counter(), *got))
            self._stop.wait(self._every)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def phase(self, name: str, start: float, end: float) -> None:
        self.phases.append((name, start, end))

    def report(self) -> dict[str, object]:
        """Per phase: its maxima of anonymous and file-backed memory (MiB) and the anonymous
        memory at each tenth of it (flat when memory is bounded)."""
        out: dict[str, object] = {}
        for name, start, end in self.phases:
            s = [x for x in self.samples if start <= x[0] <= end]
            if not s:
                continue
            out[name] = {"max_anon_mb": max(x[1] for x in s), "max_file_mb": max(x[2] for x in s),
                         "anon_mb_by_tenth": [s[round(i * (len(s) - 1) / 10)][1] for i in range(11)]}
        return out


def _tariff_tables():  # type: ignore[no-untyped-def]
    """The shipped tables, with their 2017-18 tariff; where they hold none, a synthetic HRG4
    tariff (reference costs x 0.9) is added for the benchmark."""
    import polars as pl

    import costing
    from costing.tables import Source, load_tables, write_edition

    tables = costing.load_tables()
    if "2017-18" in tables.editions("tariff"):
        return tables
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
    with tempfile.TemporaryDirectory() as folder:  # loaded tables are held in memory
        tmp = Path(folder)
        write_edition(tmp, kind="tariff", edition="2017-18", hrg_version="HRG4", illustrative=True,
                      frames={"apc": apc}, sources=[Source(title="benchmark synthetic", file_name="-", sha256="-")])
        return tables.with_editions(*load_tables(tmp))


def _setup(perspective: str):  # type: ignore[no-untyped-def]
    """Tables and configuration of a run: fixed 2017-18 editions (the purchaser run's tariff
    from :func:`_tariff_tables`)."""
    import costing

    tables = _tariff_tables() if perspective == "purchaser" else costing.load_tables()
    cfg = costing.CostingConfig(perspective=perspective, reference_cost_edition="2017-18",
                                tariff_edition="2017-18" if perspective == "purchaser" else None)
    return tables, cfg


def run_one(path: Path, perspective: str) -> dict[str, float | str]:
    """Price the generated records in ``path`` in memory with ``costing.price``. The records
    were generated by the parent (another process) and are read from Parquet here, so the
    peak RSS is pricing's own (plus the input frame, reported separately)."""
    import polars as pl

    import costing

    act = pl.read_parquet(path)
    n = act.height
    input_rss = _peak_rss_mb()
    tables, cfg = _setup(perspective)
    t0, c0 = time.perf_counter(), _cpu_s()
    out = costing.price(act, tables, cfg)
    wall, cpu = time.perf_counter() - t0, _cpu_s() - c0
    peak = _peak_rss_mb()  # before anything else touches the output
    priced = int((out.get_column("status") < 50).sum())
    return {"records": n, "perspective": perspective, "wall_s": round(wall, 3), "cpu_s": round(cpu, 2),
            "records_per_s": round(n / wall), "priced_share": round(priced / n, 3),
            "rows_out": out.height, "peak_rss_mb": round(peak), "peak_rss_gb": round(peak * 2**20 / 1e9, 2),
            "rss_mb_with_input_only": round(input_rss)}


def _generate_parts(n: int, folder: Path, chunk: int = 10_000_000) -> list[Path]:
    # one patient per ten records, at most a million (the mix: 10M records, 1M patients)
    """Write ``n`` generated records as Parquet files of ``chunk`` records, each in its own
    subprocess, so generation's memory is not the pricing process's peak."""
    parts = []
    for i in range(0, n, chunk):
        p = folder / f"act_{i // chunk:04d}.parquet"
        subprocess.run([sys.executable, str(HERE / "generate.py"), "--records", str(min(chunk, n - i)),
                        "--patients", str(min(max(n // 10, 1), 1_000_000)), "--seed", str(i), "-o", str(p)],
                       check=True)
        parts.append(p)
    return parts


def run_stream(n: int, perspective: str = "provider") -> dict[str, float | str]:
    """Parquet -> Parquet through ``price_lazy(...).sink_parquet`` (the streaming engine)."""
    import polars as pl

    import costing

    with tempfile.TemporaryDirectory(dir=HERE) as folder:
        tmp = Path(folder)
        parts = _generate_parts(n, tmp)
        before = _peak_rss_mb()
        tables, cfg = _setup(perspective)
        with _MemorySampler() as memory:
            t0, c0 = time.perf_counter(), _cpu_s()
            lf = costing.price_lazy(pl.scan_parquet(parts), tables, cfg)  # keys (and spell roles) found here
            t1 = time.perf_counter()
            lf.sink_parquet(tmp / "priced.parquet")
            t2 = time.perf_counter()
            wall, cpu = t2 - t0, _cpu_s() - c0
            memory.phase("price_lazy", t0, t1)
            memory.phase("sink", t1, t2)
        rows, total = pl.scan_parquet(tmp / "priced.parquet").select(
            pl.len(), pl.col("n_episodes").sum()).collect().row(0)
    return {"records": n, "mode": f"stream parquet->parquet ({perspective})", "wall_s": round(wall, 2),
            "cpu_s": round(cpu, 2), "rows_out": rows, "episodes_out": total,
            "records_per_s": round(n / wall), "peak_rss_mb": round(_peak_rss_mb()),
            "rss_mb_before_pricing": round(before), "price_lazy_s": round(t1 - t0, 1), **memory.report()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="*", default=[1_000_000])
    ap.add_argument("--perspective", choices=["provider", "purchaser", "both"], default="both")
    ap.add_argument("--stream", type=int, help="stream this many records Parquet -> Parquet")
    ap.add_argument("--out", type=Path, help="also write every result to this JSON file (a list)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, rest = a.child.split(":", 1)
        arg, persp = rest.rsplit(":", 1)
        res = run_stream(int(arg), persp) if kind == "stream" else run_one(Path(arg), persp)
        print(json.dumps(res))
        return
    persps = ["provider", "purchaser"] if a.perspective == "both" else [a.perspective]
    results: list[dict[str, object]] = []

    def child(job: str) -> None:
        r = subprocess.run([sys.executable, __file__, "--child", job], capture_output=True, text=True,
                           check=False)
        out = r.stdout.strip() or json.dumps({"job": job, "error": r.stderr.strip()[-2000:]})
        print(out, flush=True)
        results.append(json.loads(out))

    with tempfile.TemporaryDirectory(dir=HERE) as tmp:
        for n in a.records:
            # generated once per size, before any timed run (generating right before one
            # slowed it: the generator's memory and writes were still being settled)
            folder = Path(tmp) / str(n)
            folder.mkdir()
            path = _generate_parts(n, folder, chunk=n)[0]
            time.sleep(1)
            for p in persps:
                child(f"price:{path}:{p}")
    if a.stream:
        for p in persps:
            child(f"stream:{a.stream}:{p}")
    if a.out is not None:
        a.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
