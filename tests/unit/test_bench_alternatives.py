"""Smoke test of benchmarks/bench_alternatives.py: DuckDB SQL and pandas agree with the
reference engine (every declared rule on every record, ``costing.pricing.reference``).

The alternatives re-implement the engine's provider pipeline (pricing + windows) for the
benchmark; if they drifted from the engine's rules the benchmark would compare different
work. Their totals are checked against the reference engine's, and so are the keyed
engine's (the one the benchmark times). They run here on about 2,000 generated records plus edge cases (missing, U-code,
unknown and wrong-version HRGs, RP, multi-professional OP, patients outside the cohort, end
of follow-up) and must give exactly the engine's totals. duckdb, pandas and pyarrow are in
the ``bench`` extra, not the ``test`` extra: the test skips, saying so, without them.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("duckdb", reason="duckdb is not installed (pip install -e '.[test]')")
pytest.importorskip("pandas", reason="pandas is not installed (pip install -e '.[test]')")
pytest.importorskip("pyarrow", reason="pyarrow is not installed (pip install -e '.[test]')")

from benchmarks.alternatives import duckdb_sql, engine  # noqa: E402
from benchmarks.alternatives import pandas_impl as pi  # noqa: E402
from benchmarks.alternatives.rules import FILES, compare, engine_rules, write_tables  # noqa: E402
from benchmarks.generate import generate, generate_cohort  # noqa: E402

# Provider, 2017-18 (docs/domain.md#verified-figures): emergency 12-day DZ11V episode, trim point 8:
# NEL £1,580.53 + (12 - 8) x NEL_XS £291.63 = £2,747.06.
HAND_ID, HAND_COST = "hand-DZ11V", 2747.06


def _activity() -> pl.DataFrame:
    act = generate(2_000, 200, seed=3)
    i = pl.int_range(pl.len())
    hrg, s = pl.col("hrg_code"), pl.col("setting")
    act = act.with_columns(
        pl.when(i % 97 == 1).then(None)
        .when(i % 89 == 2).then(pl.lit("UZ01Z"))
        .when(i % 83 == 3).then(pl.lit("ZZ99Z"))
        .otherwise(hrg).alias("hrg_code"),
        pl.when(i % 79 == 4).then(pl.lit("v3.5"))
        .when(i % 61 == 8).then(None)
        .otherwise(pl.col("hrg_version")).alias("hrg_version"),
        pl.when((s == "apc") & (i % 71 == 6)).then(pl.lit("3"))
        .otherwise(pl.col("patient_classification")).alias("patient_classification"),
        pl.when(s == "op").then(i % 73 < 15).alias("multi_professional"),
        pl.when((s == "op") & (i % 11 == 0)).then(pl.lit("3"))
        .when((s == "op") & (i % 13 == 0)).then(pl.lit("4"))
        .otherwise(pl.col("first_attendance")).alias("first_attendance"),
    )
    hand = pl.DataFrame({
        "record_id": [HAND_ID], "patient_id": ["0"], "setting": ["apc"],
        "activity_date": [dt.date(2017, 6, 1)], "discharge_date": [dt.date(2017, 6, 13)],
        "admission_method": ["21"], "patient_classification": ["1"], "hrg_code": ["DZ11V"],
        "hrg_version": ["HRG4"], "age": [70],
    })
    return pl.concat([act, hand], how="diagonal_relaxed")


def _cohort() -> pl.DataFrame:
    coh = generate_cohort(200, seed=3).filter(pl.col("patient_id").cast(pl.Int64) < 180)
    coh = coh.with_columns(
        pl.when(pl.col("patient_id").cast(pl.Int64) % 7 == 0)
        .then(pl.col("index_date") + pl.duration(days=30)).alias("end_of_follow_up"))
    no_activity = pl.DataFrame({"patient_id": ["no-activity"], "index_date": [dt.date(2017, 8, 31)],
                                "group": ["control"], "matched_set": ["x"]})
    return pl.concat([coh, no_activity], how="diagonal_relaxed")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("alternatives")
    _activity().write_parquet(d / FILES["activity"])
    _cohort().write_parquet(d / FILES["cohort"])
    write_tables(d)
    engine_rules().save(d / FILES["rules"])
    return d


@pytest.fixture(scope="module")
def engine_run(data: Path) -> tuple[pl.DataFrame, dict]:
    act, cohort, tables, cfg, rules = engine.load(data)
    priced, win = engine.pipeline(act, cohort, tables, cfg, rules)
    return priced, engine.totals(priced, win, rules)


@pytest.fixture(scope="module")
def reference_run(data: Path) -> tuple[pl.DataFrame, dict]:
    act, cohort, tables, cfg, rules = engine.load(data)
    priced, win = engine.reference_pipeline(act, cohort, tables, cfg, rules)
    return priced, engine.totals(priced, win, rules)


def test_the_keyed_engine_matches_the_reference_engine(
        engine_run: tuple[pl.DataFrame, dict], reference_run: tuple[pl.DataFrame, dict]) -> None:
    assert compare(reference_run[1], engine_run[1]) == []


def test_edge_cases_are_exercised(engine_run: tuple[pl.DataFrame, dict]) -> None:
    """The data reach every status the alternatives mirror, so agreement means something."""
    priced, t = engine_run
    # 3 priced, 20 excluded DNA, 50 HRG missing, 51 U-code, 52 not found, 53 version, 55 no POD price
    assert set(t["by_status"]) == {"3", "20", "50", "51", "52", "53", "55"}
    assert t["records"] == 2_001
    assert t["windows"]["rows"] == 181 * 2 * 4  # 180 generated + 1 no-activity patient, zero-filled
    assert t["windows"]["n_unpriced"] > 0 and t["windows"]["n_excluded"] > 0
    assert "RP" in t["by_pod"]
    hand = priced.filter(pl.col("record_id") == HAND_ID)
    assert hand["cost"].round(2).to_list() == [HAND_COST]


def test_duckdb_matches_reference_engine(data: Path, reference_run: tuple[pl.DataFrame, dict]) -> None:
    con = duckdb_sql.connect(threads=1)
    rules = duckdb_sql.load(con, data)
    duckdb_sql.pipeline(con, rules)
    assert compare(reference_run[1], duckdb_sql.totals(con, rules)) == []
    hand = con.execute("SELECT round(cost, 2) FROM priced WHERE record_id = ?", [HAND_ID]).fetchall()
    assert hand == [(HAND_COST,)]


def test_pandas_matches_reference_engine(data: Path, reference_run: tuple[pl.DataFrame, dict]) -> None:
    act, cohort, rc, tp, rules = pi.load(data)
    priced = pi.price(act, rc, tp, rules)
    win = pi.windows(priced, cohort, rules)
    assert compare(reference_run[1], pi.totals(priced, win, rules)) == []
    assert priced.loc[priced["record_id"] == HAND_ID, "cost"].round(2).tolist() == [HAND_COST]


def test_pandas_rowwise_matches_reference_engine(data: Path, reference_run: tuple[pl.DataFrame, dict]) -> None:
    act, cohort, rc, tp, rules = pi.load(data)
    priced = pi.price_rowwise(act, rc, tp, rules)
    win = pi.windows_rowwise(priced, cohort, rules)
    assert compare(reference_run[1], pi.totals(priced, win, rules)) == []
    assert priced.loc[priced["record_id"] == HAND_ID, "cost"].round(2).tolist() == [HAND_COST]


def test_compare_reports_a_difference() -> None:
    """The checker itself: a changed cost or count is reported, tiny float noise is not."""
    a = {"total_cost": 100.0, "by_status": {"3": [2, 100.0]}}
    assert compare(a, {"total_cost": 100.0 + 1e-10, "by_status": {"3": [2, 100.0]}}) == []
    assert compare(a, {"total_cost": 100.01, "by_status": {"3": [2, 100.0]}}) == [
        "totals.total_cost: 100.0 vs 100.01"]
    assert compare(a, {"total_cost": 100.0, "by_status": {"3": [3, 100.0]}}) == [
        "totals.by_status.3[0]: 2 vs 3"]
