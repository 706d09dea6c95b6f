"""The Spark engine's parts that need no Spark: pickling tables, per-bucket checks, combining
per-bucket coverage and audit counts, counts standing in for priced records."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from benchmarks.generate import generate, generate_cohort
from costing import spark as cs
from costing.coverage import combine_coverage
from costing.errors import ConfigError, ConservationError
from costing.report import summary_line, totals
from costing.spark_run import check_money, combine_audit_summaries, priced_counts

PROVIDER = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")


@pytest.fixture(scope="module")
def priced() -> pl.DataFrame:
    return costing.price(generate(2000, 300, seed=11), config=PROVIDER)


@pytest.fixture(scope="module")
def cohort() -> pl.DataFrame:
    return generate_cohort(320, seed=11).filter(pl.col("patient_id").cast(pl.Int64) >= 20)


def _halves(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """Two disjoint sets of patients, as two Spark buckets would hold them."""
    odd = pl.col("patient_id").cast(pl.Int64) % 2 == 1
    return [frame.filter(odd), frame.filter(~odd)]


def test_tableset_pickles_round_trip() -> None:
    tables = costing.load_tables()
    back = pickle.loads(pickle.dumps(tables))
    assert back.fingerprint() == tables.fingerprint()
    for edition in tables:
        again = back.get(edition.kind, edition.edition)
        assert sorted(again.frames) == sorted(edition.frames)
        for name, frame in edition.frames.items():
            assert_frame_equal(again.frames[name], frame)
        with pytest.raises(TypeError):  # still read-only after the round trip
            again.frames["x"] = frame  # type: ignore[index]
    with pytest.raises(AttributeError):
        back._editions = {}  # type: ignore[misc]


def test_a_failing_bucket_names_its_patients(priced: pl.DataFrame) -> None:
    # rows in must equal the episodes priced: 1 row more than were priced fails
    part = priced.head(5)
    with pytest.raises(ConservationError, match=r"spark bucket 7 \(\d patient\(s\): .*6 records in but 5 priced"):
        cs.check_rows(7, 6, part)
    cs.check_rows(7, 5, part)  # balanced: no error

    def fails() -> None:
        raise ConservationError("windows: priced cost 1.0 but buckets hold 2.0")

    ids = pl.Series([f"p{i:03d}" for i in range(105)])
    with pytest.raises(ConservationError, match=r"spark bucket 3 \(105 patient\(s\): p000, p001, .*p099, \.\.\.\): windows"):
        cs.in_bucket(3, ids, fails)


def test_coverage_of_buckets_combined_equals_coverage_of_all(priced: pl.DataFrame, cohort: pl.DataFrame) -> None:
    whole = costing.coverage(priced, cohort, windows=(-1, 0))
    parts = [costing.coverage(p, c, windows=(-1, 0)) for p, c in zip(_halves(priced), _halves(cohort), strict=True)]
    assert_frame_equal(combine_coverage(pl.concat(parts)), whole)
    plain = [costing.coverage(p) for p in _halves(priced)]
    assert_frame_equal(combine_coverage(pl.concat(plain)), costing.coverage(priced))


def test_audit_summaries_combined_equal_the_whole(priced: pl.DataFrame, cohort: pl.DataFrame) -> None:
    whole = costing.audit_summary(costing.audit(priced, cohort, windows=(-1, 0)))
    # a part with no record at all: its in_window row is a zero row, not kept when summed
    parts = [costing.audit_summary(costing.audit(p, c, windows=(-1, 0)))
             for p, c in zip(_halves(priced), _halves(cohort), strict=True)]
    parts.append(costing.audit_summary(costing.audit(priced.head(0), cohort.head(1), windows=(-1, 0))))
    assert parts[-1].filter(pl.col("bucket") == "in_window")["n_rows"].to_list() == [0]
    assert_frame_equal(combine_audit_summaries(pl.concat(parts)), whole)
    # summed over buckets the money balances; a pound lost in the windows is caught
    windows = costing.cost_by_window(priced, cohort, windows=(-1, 0))
    total, in_windows = float(priced["cost"].sum()), float(windows["cost"].sum())
    check_money(total, whole, in_windows)
    with pytest.raises(ConservationError, match="the window costs hold"):
        check_money(total, whole, in_windows - 1.0)
    with pytest.raises(ConservationError, match="the audit's buckets hold"):
        check_money(total + 1.0, whole, in_windows)


def test_counts_stand_in_for_priced_records(priced: pl.DataFrame) -> None:
    counts = pl.concat([priced_counts(p) for p in _halves(priced)])
    assert int(counts["n_records"].sum()) == priced.height
    assert summary_line(counts, records_in=2000) == summary_line(priced, records_in=2000)
    keys: Any = ["cost_category", "status"]
    summed = counts.group_by("cost_category", "status", "status_name", "cost_source").agg(
        pl.col("n_records").sum(), pl.col("cost").sum())
    assert_frame_equal(totals(summed).sort(keys), totals(priced).sort(keys), check_dtypes=False)
    m = costing.run_manifest(config=PROVIDER, tables=None, counts_by_status=counts)
    assert m["counts_by_status"] == costing.run_manifest(config=PROVIDER, tables=None,
                                                         counts_by_status=priced)["counts_by_status"]


def test_engine_table_in_run_file() -> None:
    base = {"inputs": {"apc": {"path": "apc.csv"}}}
    cfg = costing.RunConfig.from_mapping({**base, "engine": {"name": "spark", "master": "local[2]",
                                                             "partitions": 4}})
    assert (cfg.engine.name, cfg.engine.master, cfg.engine.partitions) == ("spark", "local[2]", 4)
    assert costing.RunConfig.from_mapping(base).engine.name == "polars"
    with pytest.raises(costing.ConfigError, match=r"engine\.name"):
        costing.RunConfig.from_mapping({**base, "engine": {"name": "dask"}})
    with pytest.raises(costing.ConfigError, match=r"engine\.partitions"):
        costing.RunConfig.from_mapping({**base, "engine": {"partitions": 0}})


def test_default_partitions_from_row_count() -> None:
    assert cs.default_partitions(1) == 1
    assert cs.default_partitions(cs.ROWS_PER_PARTITION + 1) == 2
    assert cs.default_partitions(1_700_000_000) == 1700


def test_match_under_spark_is_refused_saying_what_to_do(tmp_path: Path) -> None:
    """[match] under the Spark engine: a ConfigError that names the way round it (build the
    cohort with `costing match` or a polars run, then give it as [cohort]); before any Spark."""
    cfg = costing.RunConfig.from_mapping({
        "inputs": {"apc": {"path": "apc.csv"}}, "match": {"cases": "cases.csv", "pool": "pool.csv"},
        "engine": {"name": "spark"}, "output": {"dir": str(tmp_path / "out")}, "base_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"`costing match CASES POOL PRICED -o matched_cohort\.csv`.*"
                                          r"\[cohort\] path = \"matched_cohort\.csv\""):
        costing.run(cfg, tables=costing.load_tables(["shipped"]))


def test_unpriced_counts_of_parts_stack_to_the_whole_assessment(priced: pl.DataFrame) -> None:
    """The Spark run's assessment: each bucket's unpriced counts, stacked, give the polars
    run's assessment of all the records (shares, reasons with their values, file lines)."""
    from costing.unpriced import assess_unpriced, assess_unpriced_counts, unpriced_counts

    # some unpriced records to count, in one file wholly unpriced
    frame = priced.with_columns(
        pl.when(pl.col("patient_id").str.ends_with("7")).then(pl.lit("b.csv")).otherwise(pl.lit("a.csv"))
        .alias("source_file"))
    frame = frame.with_columns(
        pl.when(pl.col("source_file") == "b.csv").then(pl.lit(52, frame["status"].dtype))
        .otherwise(pl.col("status")).alias("status"),
        pl.when(pl.col("source_file") == "b.csv").then(None).otherwise(pl.col("cost")).alias("cost"))
    whole = assess_unpriced(frame, warn=0.01, fail=0.9)
    assert whole.n_unpriced > 0 and whole.file_lines and whole.file_lines[0].startswith("b.csv: all ")
    parts = [unpriced_counts(frame.filter(pl.col("patient_id").hash() % 3 == k)) for k in range(3)]
    stacked = {name: pl.concat([p[name] for p in parts]) for name in parts[0]}
    got = assess_unpriced_counts(stacked, warn=0.01, fail=0.9)
    assert got.messages == whole.messages and got.level == whole.level
    assert got.n_unpriced == whole.n_unpriced and got.share_gbp == pytest.approx(whole.share_gbp)
    assert_frame_equal(got.reasons, whole.reasons)
    assert_frame_equal(got.categories, whole.categories, check_exact=False)


def test_audit_and_priced_columns_share_types(priced: pl.DataFrame) -> None:
    """The Spark run sends a bucket's priced and audit rows in one frame: a column both have
    holds the same type in both, and the audit's own columns follow the priced ones."""
    from costing.run import RunConfig
    from costing.spark_run import AUDIT, SUMMARY, audit_schema, output_schema

    cfg = RunConfig.from_mapping({"inputs": {"apc": {"path": "x.csv"}},
                                  "windows": {"windows": [-1, 0], "assign": "apportion"}})
    audit = audit_schema(priced.schema, cfg)
    assert {"bucket", "window", "record_cost", "cost", "record_id"} <= set(audit)
    out = output_schema(priced.schema, audit)
    assert list(out)[:len(priced.columns)] == priced.columns and list(out)[-2:] == [AUDIT, SUMMARY]
    assert all(out[c] == t for c, t in audit.items())
    with pytest.raises(ConfigError, match="type \\['cost'\\] differently"):
        output_schema(priced.schema, {**audit, "cost": pl.String()})


def test_edition_tables_and_warnings_of_buckets_equal_the_whole() -> None:
    """coverage_by_edition, the trim points and the edition warnings of a Spark run come from
    its buckets: summed (or, for the warnings, from the editions each bucket used), they equal
    the polars run's of all the records."""
    from costing.coverage import trimpoint_coverage
    from costing.pairing import hrg_not_found_by_edition, run_warnings
    from costing.spark_run import _EDITION_COLUMNS, combine_by_edition, combine_trimpoints

    cfg = costing.CostingConfig(perspective="purchaser", tariff_edition="2016-17",
                                reference_cost_edition="2016-17")
    tables = costing.load_tables()
    whole = costing.price(generate(1500, 200, seed=5), tables, cfg)
    parts = _halves(whole)
    by_edition = combine_by_edition(pl.concat([hrg_not_found_by_edition(p, tables) for p in parts]))
    assert by_edition["kind"].to_list() == ["tariff", "reference_cost"]
    assert_frame_equal(by_edition, hrg_not_found_by_edition(whole, tables))
    trim = combine_trimpoints(pl.concat([trimpoint_coverage(p, tables, cfg) for p in parts]))
    assert trim["n_records"].sum() > 0
    assert_frame_equal(trim, trimpoint_coverage(whole, tables, cfg))
    used = pl.concat([p.select(c for c in _EDITION_COLUMNS if c in p.columns).unique() for p in parts])
    warnings = run_warnings(whole, tables, cfg)
    assert any("different HRG grouper phases" in w for w in warnings)  # 2016/17: HRG4 and HRG4+
    assert run_warnings(used.unique(), tables, cfg) == warnings
