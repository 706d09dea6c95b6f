"""The Spark engine beside the polars engine on the same data (not a test; run by hand).

    python benchmarks/bench_spark.py --records 1000000 5000000
    python benchmarks/bench_spark.py --records 200000 --master 'local[2]'

For each size, activity (one patient per ten records) and a cohort of every patient are
generated into Parquet by benchmarks/generate.py in a subprocess. Then, each in a fresh
subprocess so that peak memory is that run's own:

- ``polars``: ``costing.price`` then ``costing.cost_by_window`` in memory;
- ``spark price``: ``costing.spark.price`` (one shuffle; the 42 priced columns go back into
  the JVM), written to Spark's ``noop`` sink so that every row is computed;
- ``spark price_and_window``: ``costing.spark.price_and_window`` (activity and cohort
  cogrouped in one shuffle; only window costs go back), collected.

Each prints one JSON line: wall seconds, the driver's peak RSS (polars), the JVM's peak RSS
and the Python workers' (the largest one, and all of them together at their joint peak),
sampled five times a second from the process tree. Spark's start (about 10 s) is not timed;
reading the Parquet input is (Spark reads lazily). Window costs are checked equal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

PROVIDER = {"perspective": "provider", "reference_cost_edition": "2017-18"}


class _TreeMemory:
    """Peak RSS of this process's descendants, sampled in a thread: the JVM (``java``) and
    the Python workers it starts, in MiB."""

    def __init__(self, every_s: float = 0.2) -> None:
        import psutil

        self._me = psutil.Process()
        self.jvm = self.worker = self.workers = 0.0
        self._every, self._stop = every_s, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            workers = 0.0
            for p in self._me.children(recursive=True):
                try:
                    rss, name = p.memory_info().rss / 2**20, p.name()
                except psutil.Error:
                    continue
                if name.startswith("java"):
                    self.jvm = max(self.jvm, rss)
                elif name.startswith("python"):
                    self.worker = max(self.worker, rss)
                    workers += rss
            self.workers = max(self.workers, workers)
            self._stop.wait(self._every)

    def __enter__(self) -> _TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_polars(activity: Path, cohort: Path) -> dict[str, Any]:
    import polars as pl

    import costing

    act, coh = pl.read_parquet(activity), pl.read_parquet(cohort)
    t0 = time.perf_counter()
    priced = costing.price(act, config=costing.CostingConfig(**PROVIDER))
    t1 = time.perf_counter()
    windows = costing.cost_by_window(priced, coh)
    t2 = time.perf_counter()
    return {"engine": "polars", "records": act.height, "price_s": round(t1 - t0, 2),
            "wall_s": round(t2 - t0, 2), "peak_rss_mb": round(_peak_rss_mb()),
            "window_cost": round(float(windows["cost"].sum()), 2)}


def child_spark(activity: Path, cohort: Path, master: str, step: str) -> dict[str, Any]:
    import polars as pl

    import costing
    from costing import spark as cs

    spark = cs.session(master, {"spark.ui.enabled": "false", "spark.driver.memory": "2g"})
    spark.sparkContext.setLogLevel("ERROR")
    cfg, tables = costing.CostingConfig(**PROVIDER), costing.load_tables()
    coh = pl.read_parquet(cohort)
    out: dict[str, Any] = {"engine": "spark", "step": step, "master": master, "spark": spark.version}
    with _TreeMemory() as memory:
        t0 = time.perf_counter()
        act = spark.read.parquet(str(activity))
        rows = act.count()
        n = cs.default_partitions(rows)
        if step == "price":
            cs.price(act, tables, cfg, partitions=n).write.format("noop").mode("overwrite").save()
        else:
            windows = cs.price_and_window(act, coh, tables, cfg, partitions=n)
            got = pl.from_arrow(windows.toArrow())
            assert isinstance(got, pl.DataFrame)
            out["window_cost"] = round(float(got["cost"].sum()), 2)
        wall = time.perf_counter() - t0
    spark.stop()
    return {**out, "records": rows, "partitions": n, "wall_s": round(wall, 2),
            "jvm_peak_mb": round(memory.jvm), "worker_peak_mb": round(memory.worker),
            "workers_peak_sum_mb": round(memory.workers)}


def _child(args: list[str], timeout: float) -> dict[str, Any]:
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"], "args": args}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, nargs="+", default=[1_000_000, 5_000_000])
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds allowed per child")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, *rest = a.child
        if kind == "polars":
            result = child_polars(Path(rest[0]), Path(rest[1]))
        else:
            result = child_spark(Path(rest[0]), Path(rest[1]), rest[2], rest[3])
        print(json.dumps(result))
        return
    for n in a.records:
        with tempfile.TemporaryDirectory(dir=HERE) as folder:
            act, coh = Path(folder) / "activity.parquet", Path(folder) / "cohort.parquet"
            subprocess.run([sys.executable, str(HERE / "generate.py"), "--records", str(n),
                            "--patients", str(max(n // 10, 1)), "-o", str(act), "--cohort", str(coh)],
                           check=True)
            runs = [["polars", str(act), str(coh)],
                    ["spark", str(act), str(coh), a.master, "price"],
                    ["spark", str(act), str(coh), a.master, "price_and_window"]]
            results = [_child(r, a.timeout) for r in runs]
            costs = {r["window_cost"] for r in results if "window_cost" in r}
            for r in results:
                # a failed child has no window cost, so it claims no equality
                same = {"window_costs_equal": len(costs) == 1} if "window_cost" in r else {}
                print(json.dumps({**r, **same}), flush=True)


if __name__ == "__main__":
    main()
