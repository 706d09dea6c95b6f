"""``costing run`` on Spark (``--engine spark`` or ``[engine] name = "spark"``).

The run file's pipeline with one shuffle: the extracts are read by Spark and typed by the
polars reader's code a part at a time; activity and cohort are cogrouped by patient bucket,
and each bucket is priced, windowed, audited and counted whole by the polars engine. The
priced records come back into Spark and are written as a Parquet dataset (``priced/``); each
bucket's small results (window costs, coverage, audit, unpriced and edition counts, rows in)
come back beside them as one summary row, and are combined on the driver, checked (rows in =
rows priced, summed over buckets) and written as in the polars run. DiD and the balance table run on the
collected window costs, which are small (one row per patient x window x category).

Each bucket's audit rows (one per record, or apportioned part) come back in the same pass
and are written as a Parquet dataset (``audit/``); the unpriced assessment is made from each
bucket's unpriced counts (``costing.unpriced.unpriced_counts``), stacked on the driver. See
``docs/spark.md``.
"""

from __future__ import annotations

import io
import logging
import math
import pickle
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from costing.errors import ConfigError, ConservationError
from costing.run import (
    Progress,
    RunConfig,
    RunResult,
    balance_table,
    evaluate_windows,
    unpriced_table,
    write_manifest_and_report,
)
from costing.tables import TableSet

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["run_spark"]

logger = logging.getLogger("costing.run")  # the polars run's logger: the same warnings

SUMMARY = "_costing_summary"  # the binary column of each bucket's summary row
AUDIT = "_costing_audit"  # true on a bucket's audit rows (the priced rows leave it null)
_COUNT_KEYS = ("cost_category", "status", "status_name", "cost_source")
# what costing.pairing.run_warnings and the manifest's policy parameters read of the priced
# records: the editions used
_EDITION_COLUMNS = ("tariff_edition", "reference_cost_edition", "mff_factor")


def _ipc(frame: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.write_ipc(buf)
    return buf.getvalue()


def priced_counts(priced: pl.DataFrame) -> pl.DataFrame:
    """Records (``n_records``) and £ by cost category, status and source: what the report's
    summary, the summary line and the manifest need of the priced records."""
    text = [pl.col(c).cast(pl.String) for c in ("cost_category", "status_name", "cost_source")]
    return (priced.group_by(text[0], "status", *text[1:])
            .agg(pl.len().cast(pl.Int64).alias("n_records"), pl.col("cost").sum())
            .select(*_COUNT_KEYS, "n_records", "cost"))


def audit_schema(priced: Mapping[str, pl.DataType], cfg: RunConfig) -> pl.Schema:
    """The columns of the audit of priced records of this schema (``costing.audit``)."""
    from costing.cohort import validate_cohort
    from costing.schema import COHORT_SCHEMA
    from costing.windows import audit

    w = cfg.windows
    return audit(pl.DataFrame(schema=priced), validate_cohort(pl.DataFrame(schema=COHORT_SCHEMA)),
                 windows=w.windows, months=w.months, assign=w.assign, by=w.by).schema


def output_schema(priced: Mapping[str, pl.DataType], audit: Mapping[str, pl.DataType]) -> dict[str, pl.DataType]:
    """The schema of a bucket's output: the priced columns, the audit's other columns, the
    audit flag and the summary. A column in both holds the same type in both."""
    clash = {c: (priced[c], t) for c, t in audit.items() if c in priced and priced[c] != t}
    if clash:
        raise ConfigError(f"spark run: the audit and the priced records type {sorted(clash)} "
                          "differently; a bug in costing, please report it")
    return {**priced, **{c: t for c, t in audit.items() if c not in priced},
            AUDIT: pl.Boolean(), SUMMARY: pl.Binary()}


def bucket_outputs(bucket: int, records: pl.DataFrame, cohort: pl.DataFrame | None,
                   tables: TableSet, cfg: RunConfig) -> pl.DataFrame:
    """One bucket priced, windowed and counted: its priced rows, its audit rows (with a
    cohort; flagged ``AUDIT``), then one summary row."""
    from costing import spark as cs
    from costing.coverage import coverage, trimpoint_coverage
    from costing.io import duplicate_records
    from costing.pairing import hrg_not_found_by_edition
    from costing.pricing import price
    from costing.unpriced import unpriced_counts
    from costing.windows import audit_summary, cost_by_window_and_audit

    priced = price(records, tables, cfg.pricing)
    cs.check_rows(bucket, records.height, priced)
    parts = {"rows_in": pl.DataFrame({"rows_in": [records.height]}), "counts": priced_counts(priced)}
    parts |= {f"unpriced_{name}": frame for name, frame in unpriced_counts(priced).items()}
    parts |= {"editions": priced.select(c for c in _EDITION_COLUMNS if c in priced.columns).unique(),
              "by_edition": hrg_not_found_by_edition(priced, tables),
              "duplicates": duplicate_records(priced),
              "trimpoints": trimpoint_coverage(priced, tables, cfg.pricing)}
    w = cfg.windows
    out = [priced]
    if cohort is not None:
        windows, audit = cs.in_bucket(bucket, cohort["patient_id"], lambda: cost_by_window_and_audit(
            priced, cohort, windows=w.windows, months=w.months, assign=w.assign, by=w.by))
        parts |= {"window_costs": windows, "audit_summary": audit_summary(audit),
                  "coverage": coverage(priced, cohort, windows=w.windows, months=w.months, assign=w.assign)}
        out.append(audit.with_columns(pl.lit(True).alias(AUDIT)))
    else:
        parts["coverage"] = coverage(priced)
    blob = pickle.dumps({name: _ipc(frame) for name, frame in parts.items()})
    return pl.concat([*out, pl.DataFrame({SUMMARY: [blob]}, schema={SUMMARY: pl.Binary})],
                     how="diagonal_relaxed")


def _combine(summaries: list[dict[str, bytes]], name: str) -> pl.DataFrame | None:
    frames = [pl.read_ipc(io.BytesIO(s[name])) for s in summaries if name in s]
    return pl.concat(frames, how="vertical_relaxed") if frames else None


def _summed(frame: pl.DataFrame, keys: list[str], measures: Mapping[str, pl.DataType]) -> pl.DataFrame:
    return (frame.group_by(keys).agg(pl.col(m).sum().cast(t) for m, t in measures.items())
            .sort(keys, nulls_last=True))


def combine_audit_summaries(parts: pl.DataFrame) -> pl.DataFrame:
    """``audit_summary`` tables of disjoint sets of patients (stacked) as the table of them all:
    summed per bucket and window; a bucket's zero row (there when a part had none of it) kept
    only where the bucket has no other row, as ``audit_summary`` gives it."""
    summed = _summed(parts, ["bucket", "window"], {"n_rows": pl.UInt32(), "n_unpriced": pl.UInt32(),
                                                   "n_excluded": pl.UInt32(), "cost": pl.Float64()})
    alone = pl.len().over("bucket") == 1
    return summed.filter(alone | (pl.col("n_rows") > 0))


def _summed_like(parts: pl.DataFrame, measures: list[str]) -> pl.DataFrame:
    """Stacked tables summed over ``measures`` per the other columns, in their types."""
    keys = [c for c in parts.columns if c not in measures]
    return (parts.group_by(keys, maintain_order=True).agg(pl.col(measures).sum())
            .select(parts.columns).cast(dict(parts.schema)))


def combine_by_edition(parts: pl.DataFrame) -> pl.DataFrame:
    """``hrg_not_found_by_edition`` tables of disjoint sets of records (stacked) as the table
    of them all: counts summed per kind and edition, the share found again, in its order
    (tariff editions, then reference-cost editions, each by edition)."""
    out = _summed_like(parts.drop("share_hrg_not_found"), ["n_records", "n_hrg_not_found"])
    share = pl.when(pl.col("n_records") > 0).then(pl.col("n_hrg_not_found") / pl.col("n_records"))
    return (out.with_columns(share.cast(pl.Float64).alias("share_hrg_not_found"))
            .sort(pl.col("kind") != "tariff", "edition"))


def combine_trimpoints(parts: pl.DataFrame) -> pl.DataFrame:
    """``trimpoint_coverage`` tables of disjoint sets of records (stacked) as the table of
    them all: records summed per reference-cost edition (its trim-point choice is the same in
    every part), by edition."""
    return (_summed_like(parts, ["n_records", "n_without_trim_point"])
            .sort("reference_cost_edition"))


def combine_duplicates(parts: pl.DataFrame, files: list[str]) -> pl.DataFrame:
    """``duplicate_records`` tables of disjoint sets of records (stacked) as the table of
    them all: repeated records summed per file, the first row the least, files in the order
    read (``files``)."""
    order = {f: i for i, f in enumerate(files)}
    return (parts.group_by("source_file").agg(pl.col("n_duplicates").sum(), pl.col("first_row").min())
            .sort(pl.col("source_file").replace_strict(order, default=len(order)), "source_file")
            .select(parts.columns).cast(dict(parts.schema)))


def check_money(priced: float, audit_sum: pl.DataFrame, in_windows: float) -> None:
    """Summed over buckets, the priced £ is the £ of the audit's buckets, and the in-window
    bucket's £ is the £ of the window costs (each bucket was checked alone already)."""
    buckets = float(audit_sum["cost"].sum())
    in_window = float(audit_sum.filter(pl.col("bucket") == "in_window")["cost"].sum())
    for what, want, got in (("the audit's buckets", priced, buckets), ("the window costs", in_window, in_windows)):
        if not math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-6):
            raise ConservationError(f"spark run: summed over buckets, {what} hold £{got!r}, expected "
                                    f"£{want!r}; a bug in costing, please report it")


def _input_entries(cfg: RunConfig) -> tuple[list[Path], list[dict[str, Any]]]:
    """Input files (hashed in the manifest as in the polars run) and the other inputs
    (Parquet folders by file count and size, tables by name)."""
    files, others = [], []
    for spec in cfg.inputs.values():
        for p in [spec.path] if isinstance(spec.path, str) else spec.path:
            if p.startswith("table:"):
                others.append({"table": p.removeprefix("table:")})
            elif cfg.resolve(p).is_dir():
                parts = [f for f in cfg.resolve(p).rglob("*") if f.is_file() and not f.name.startswith((".", "_"))]
                others.append({"name": cfg.resolve(p).name, "files": len(parts),
                               "bytes": sum(f.stat().st_size for f in parts)})
            else:
                files.append(cfg.resolve(p))
    if cfg.cohort:
        files.append(cfg.resolve(cfg.cohort.path))
    return files, others


def _spark_path(cfg: RunConfig, p: str) -> str:
    return p if p.startswith("table:") else str(cfg.resolve(p))


def _read_inputs(spark: SparkSession, cfg: RunConfig) -> tuple[DataFrame, int]:
    """Every extract as one canonical Spark frame, and how many rows they hold."""
    from costing import spark as cs
    from costing.run import _columns_arg

    frames, counted = [], []
    for setting, spec in cfg.inputs.items():
        paths = [_spark_path(cfg, p) for p in ([spec.path] if isinstance(spec.path, str) else spec.path)]
        frames.append(cs.read_activity(spark, paths, setting, columns=_columns_arg(cfg, spec.columns),
                                       encoding=spec.encoding, hrg_version=spec.hrg_version,
                                       date_format=spec.date_format))
        counted += [cs._raw(spark, p, spec.encoding).select() for p in paths]
    return _union(frames), _union(counted).count()  # every extract counted in one job


def _union(frames: list[DataFrame]) -> DataFrame:
    out = frames[0]
    for more in frames[1:]:
        out = out.unionByName(more, allowMissingColumns=True)
    return out


def run_spark(cfg: RunConfig, ts: TableSet, say: Progress, out_dir: Path | None = None) -> RunResult:
    """:func:`costing.run` on Spark (see the module's docstring); ``out_dir``: where to write
    (``costing.run`` passes its temporary folder), default the run file's output folder."""
    # refused before pyspark is imported: the message is for users without Spark too
    if cfg.match is not None:
        raise ConfigError(
            "[match] runs on the polars engine only, so the Spark run refuses it: build the "
            "matched cohort first, with `costing match CASES POOL PRICED -o matched_cohort.csv` "
            "(PRICED: the cases' and pool's priced records, e.g. from `costing price`) or a "
            "polars `costing run` with [match] (it writes matched_cohort.csv); then replace "
            "[match] in the run file with [cohort] path = \"matched_cohort.csv\" and run on "
            "Spark again (see docs/spark.md)")
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from costing import spark as cs
    from costing.cohort import validate_cohort
    from costing.coverage import combine_coverage
    from costing.io import duplicate_lines, read_cohort, write_frame
    from costing.manifest import _COST_DECIMALS, run_manifest
    from costing.pairing import run_warnings
    from costing.pricing.parameters import parameters_used
    from costing.schema import COHORT_SCHEMA
    from costing.unpriced import assess_unpriced_counts
    from costing.windows import widen

    t0 = time.perf_counter()
    e = cfg.engine
    spark = cs.session(e.master, e.conf)
    out_dir = out_dir or cfg.resolve(cfg.output.dir)
    files: dict[str, Path] = {}
    say(f"Spark {spark.version} ({spark.sparkContext.master}): reading inputs")
    activity, rows_read = _read_inputs(spark, cfg)
    n = e.partitions or cs.default_partitions(rows_read)
    cohort = None
    if cfg.cohort is not None:
        say("reading cohort")
        cohort = read_cohort(cfg.resolve(cfg.cohort.path), columns=cfg.cohort.columns,
                             sheet=cfg.cohort.sheet, date_format=cfg.cohort.date_format)
    coh = cohort if cohort is not None else validate_cohort(pl.DataFrame(schema=COHORT_SCHEMA))
    with_cohort = cohort is not None
    activity = cs._with_source_row(activity)
    priced_cols = cs.priced_schema(activity.schema, ts, cfg.pricing)
    audit_cols = audit_schema(priced_cols, cfg)
    out_schema = output_schema(priced_cols, audit_cols)
    shared = spark.sparkContext.broadcast((ts, cfg))

    def work(bucket: int, records: pl.DataFrame, patients: pl.DataFrame) -> pl.DataFrame:
        tables, run_cfg = shared.value
        return bucket_outputs(bucket, records, patients if with_cohort else None, tables, run_cfg)

    say(f"pricing and windows: {rows_read:,} records in {n} patient bucket(s)")
    fused = cs._cogrouped(activity, cs._cohort_frame(spark, coh), n, out_schema, work)
    fused = fused.persist(StorageLevel.MEMORY_AND_DISK)
    files["priced"] = out_dir / "priced"
    rows = F.col(SUMMARY).isNull()
    priced = fused.filter(rows & F.col(AUDIT).isNull()).select(*priced_cols)
    try:
        with cs.worker_errors():
            priced.write.mode("overwrite").parquet(files["priced"].as_uri())
            if with_cohort:  # the audit: one row per record (or apportioned part), as audit.parquet
                files["audit"] = out_dir / "audit"
                (fused.filter(rows & F.col(AUDIT)).select(*audit_cols)
                 .write.mode("overwrite").parquet(files["audit"].as_uri()))
            summaries = [pickle.loads(r[0]) for r in
                         fused.filter(F.col(SUMMARY).isNotNull()).select(SUMMARY).collect()]
    finally:
        fused.unpersist()

    rows_in = int(_combine(summaries, "rows_in")["rows_in"].sum())  # type: ignore[index]
    if rows_in != rows_read:
        raise ConservationError(f"spark run: {rows_read} records read but {rows_in} priced over "
                                f"{len(summaries)} bucket(s); a bug in costing, please report it")
    counts = _summed(_combine(summaries, "counts"), list(_COUNT_KEYS),  # type: ignore[arg-type]
                     {"n_records": pl.Int64(), "cost": pl.Float64()})
    unpriced = assess_unpriced_counts({k: _combine(summaries, f"unpriced_{k}") for k in  # type: ignore[misc]
                                       ("categories", "reasons", "files")},
                                      warn=cfg.unpriced.warn, fail=cfg.unpriced.fail)
    windows = audit_sum = did_frame = unpriced_windows = balance_frame = None
    w = cfg.windows
    if cohort is not None:
        say("windows")
        order = validate_cohort(cohort).select("patient_id").with_row_index("_order")
        windows = (_combine(summaries, "window_costs").join(order, on="patient_id", how="left")  # type: ignore[union-attr]
                   .sort("_order", maintain_order=True).drop("_order"))
        files["window_costs"] = write_frame(windows, out_dir / "window_costs.csv")
        if cfg.output.wide:
            files["window_costs_wide"] = write_frame(widen(windows, by=w.by), out_dir / "window_costs_wide.csv")
        unpriced_windows = unpriced_table(cfg, windows)
        files["unpriced"] = write_frame(unpriced_windows, out_dir / "unpriced.csv")
        audit_sum = combine_audit_summaries(_combine(summaries, "audit_summary"))  # type: ignore[arg-type]
        check_money(float(counts["cost"].sum()), audit_sum, float(windows["cost"].sum()))
        files["audit_summary"] = write_frame(audit_sum, out_dir / "audit_summary.csv")
        if cfg.evaluate is not None:
            did_frame, _ = evaluate_windows(cfg.evaluate, windows, cohort, say, cfg.evaluate.pretrend)
            files["did"] = write_frame(did_frame, out_dir / "did.csv")
            balance_frame = balance_table(cfg.evaluate, windows, cohort)
            if balance_frame is not None:
                files["balance"] = write_frame(balance_frame, out_dir / "balance.csv")
    cov = combine_coverage(_combine(summaries, "coverage"))  # type: ignore[arg-type]
    files["coverage"] = write_frame(cov, out_dir / "coverage.csv")
    by_edition = combine_by_edition(_combine(summaries, "by_edition"))  # type: ignore[arg-type]
    files["coverage_by_edition"] = write_frame(by_edition, out_dir / "coverage_by_edition.csv")
    # file-level: repeated record ids; then the editions the records used (all that
    # run_warnings reads of them)
    read = [_spark_path(cfg, p) for spec in cfg.inputs.values()
            for p in ([spec.path] if isinstance(spec.path, str) else spec.path)]
    warnings = duplicate_lines(combine_duplicates(_combine(summaries, "duplicates"), read))  # type: ignore[arg-type]
    editions = _combine(summaries, "editions").unique()  # type: ignore[union-attr]
    warnings += run_warnings(editions, ts, cfg.pricing)
    trim = combine_trimpoints(_combine(summaries, "trimpoints"))  # type: ignore[arg-type]
    files["coverage_trimpoints"] = write_frame(trim, out_dir / "coverage_trimpoints.csv")

    say("manifest")
    inputs, other_inputs = _input_entries(cfg)
    n_priced, cost = int(counts["n_records"].sum()), float(counts["cost"].sum())
    manifest = run_manifest(
        config=cfg.model_dump(mode="json", exclude={"base_dir", "run_file", "engine"})
        | {"pricing": cfg.pricing.resolved()},
        tables=ts, inputs=inputs,
        outputs={k: v for k, v in {"window_costs": windows, "did": did_frame}.items() if v is not None},
        counts_by_status=counts,
        rows_in={"records": rows_in, "cohort_patients": cohort.height if cohort is not None else 0},
    )
    manifest["outputs"]["priced"] = {"rows": n_priced, "columns": priced.columns,
                                     "cost_total": round(cost, _COST_DECIMALS)}
    manifest["inputs"] += other_inputs
    manifest["engine"] |= {"spark": spark.version, "master": spark.sparkContext.master, "partitions": n}
    manifest["trimpoints"] = trim.to_dicts()
    manifest["parameters"] = parameters_used(ts, cfg.pricing, editions)
    write_manifest_and_report(cfg, manifest, unpriced, warnings, files, out_dir, say, cohort,
                              priced=counts, coverage=cov, window_costs=windows,
                              did_table=did_frame, unpriced_windows=unpriced_windows,
                              balance_table=balance_frame)
    return RunResult(priced=counts, window_costs=windows, audit=None, coverage=cov, did=did_frame,
                     manifest=manifest, output_dir=out_dir, files=files,
                     seconds=time.perf_counter() - t0, records_in=rows_in, unpriced=unpriced,
                     balance=balance_frame, warnings=warnings, trimpoints=trim)

