"""The Spark engine's parts that need no Spark: pickling tables, per-bucket checks, combining
per-bucket coverage and audit counts, counts standing in for priced records."""

from __future__ import annotations

import pickle
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from benchmarks.generate import generate, generate_cohort
from costing import spark as cs
from costing.coverage import combine_coverage
from costing.errors import ConservationError
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
