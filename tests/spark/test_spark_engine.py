"""costing.spark against the polars engine, record for record and window for window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from benchmarks.generate import generate, generate_cohort
from costing import spark as cs
from costing.schema import PRICED_COLUMNS, WINDOW_COLUMNS
from tests.fixtures.tables import D, apc, frame, two_rule_years
from tests.spark.conftest import collect

pytestmark = pytest.mark.spark

REPO = Path(__file__).resolve().parents[2]
ICP = REPO / "examples" / "icp"
PROVIDER = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")


def _numbered(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame with source_row (1-based), so both engines keep the same row numbers."""
    return frame.with_row_index("source_row", offset=1).with_columns(pl.col("source_row").cast(pl.Int64))


def _as_sent(frame: pl.DataFrame) -> pl.DataFrame:
    """A polars result as the Spark engine sends it (Enum/Categorical as strings, ...)."""
    return frame.cast(cs._sendable_schema(frame.schema))  # type: ignore[arg-type]


def _same(got: pl.DataFrame, want: pl.DataFrame, keys: list[str]) -> None:
    assert got.columns == want.columns
    assert_frame_equal(got.sort(keys), _as_sent(want).sort(keys))


@pytest.fixture(scope="module")
def activity() -> pl.DataFrame:
    # 3,000 records of 400 patients; the cohort below leaves out patients 0-49 (activity
    # outside the cohort) and adds 400-519 (cohort patients with no activity)
    return _numbered(generate(3000, 400, seed=3))


@pytest.fixture(scope="module")
def cohort() -> pl.DataFrame:
    return generate_cohort(520, seed=3).filter(pl.col("patient_id").cast(pl.Int64) >= 50)


def test_price_provider_equals_polars_record_for_record(spark: Any, activity: pl.DataFrame) -> None:
    priced = cs.price(cs._spark_frame(spark, activity), config=PROVIDER, partitions=3)
    got = collect(priced)
    want = costing.price(activity, config=PROVIDER)
    assert got.height == want.height == 3000
    _same(got, want, ["record_id"])
    # the schema is pinned: Enum and Categorical as strings, Int16 status as smallint
    types = {f.name: f.dataType.simpleString() for f in priced.schema.fields}
    assert {c: types[c] for c in ("n_episodes", "pod", "cost_category", "cost", "cost_source", "status",
                                  "status_name", "tariff_edition", "reference_cost_edition",
                                  "hrg_version_used", "source_row", "activity_date")} == {
        "n_episodes": "int", "pod": "string", "cost_category": "string", "cost": "double",
        "cost_source": "string", "status": "smallint", "status_name": "string",
        "tariff_edition": "string", "reference_cost_edition": "string",
        "hrg_version_used": "string", "source_row": "bigint", "activity_date": "date"}


def test_purchaser_spells_over_many_batches_and_custom_tables(spark: Any) -> None:
    # The ICP example's admitted episodes (18,783, many spells of several episodes) priced
    # at the shipped 2016-17 tariff, with a TableSet other than the shipped default (the
    # 2017-18 tariff left out) broadcast to the workers. Two partitions of about 9,000 rows
    # each reach the worker in batches of 1,000 rows.
    tables = costing.load_tables().without("tariff", "2017-18")
    apc = costing.read_activity(ICP / "data" / "apc.csv", setting="apc", columns="hes").collect()
    cfg = costing.CostingConfig(perspective="purchaser", tariff_edition="2016-17",
                                reference_cost_edition="2016-17")
    got = collect(cs.price(cs._spark_frame(spark, apc), tables, cfg, partitions=2))
    want = costing.price(apc, tables, cfg)
    assert int(want["n_episodes"].max()) > 1  # spells were built
    assert want.height < apc.height
    _same(got, want, ["record_id"])
    assert int(got["n_episodes"].sum()) == apc.height  # every episode counted in its spell
    by_tariff = got.filter(pl.col("cost_source") == "tariff")
    assert by_tariff.height > 0 and set(by_tariff["tariff_edition"]) == {"2016-17"}


def test_dated_policy_parameters_per_edition(spark: Any, tmp_path: Path) -> None:
    # the same one-day emergency stay of a 40-year-old in 2016/17 (short-stay age 19: the
    # short-stay price 600) and in 2017/18 (age 65: the NEL price 2,000), on two workers
    tables = two_rule_years(tmp_path)
    records = frame(*(apc(f"y{year}", admit=D(year, 10, 2), los=1, age=40) for year in (2016, 2017)))
    cfg = costing.CostingConfig(chain=("tariff",))
    got = collect(cs.price(cs._spark_frame(spark, records), tables, cfg, partitions=2))
    want = costing.price(records, tables, cfg)
    _same(got.select(want.columns), want, ["record_id"])
    assert dict(zip(got["record_id"], got["cost"], strict=True)) == {"y2016": 600.0, "y2017": 2000.0}


def test_empty_partitions_and_source_row_added(spark: Any) -> None:
    # 3 patients in 8 partitions: at least 5 partitions hold nothing. The input has no
    # source_row: Spark numbers the rows before the shuffle (unique, from 1).
    records = generate(12, 3, seed=5)
    got = collect(cs.price(cs._spark_frame(spark, records), config=PROVIDER, partitions=8))
    want = costing.price(records, config=PROVIDER)
    assert got["source_row"].null_count() == 0 and got["source_row"].n_unique() == 12
    assert got["source_row"].min() >= 1  # type: ignore[operator]
    _same(got.select(want.columns).drop("source_row"), want.drop("source_row"), ["record_id"])


def test_windows_all_assign_rules_equal_polars(spark: Any, activity: pl.DataFrame,
                                               cohort: pl.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    priced_polars = costing.price(activity, config=PROVIDER)
    sdf = cs._spark_frame(spark, activity)
    wanted = {a: costing.cost_by_window(priced_polars, cohort, windows=(-1, 0), assign=a)
              for a in ("admission", "discharge", "apportion")}
    assert wanted["admission"]["patient_id"].n_unique() == cohort.height  # zero-filled
    keys = ["patient_id", "window", "category"]
    # admission: priced and windowed in one shuffle
    fused = cs.price_and_window(sdf, cohort, config=PROVIDER, windows=(-1, 0), partitions=3)
    _same(collect(fused), wanted["admission"], keys)
    # discharge: from priced records (Spark 4's cogrouped applyInArrow)
    priced = cs._spark_frame(spark, priced_polars)
    _same(collect(cs.cost_by_window(priced, cohort, windows=(-1, 0), assign="discharge", partitions=3)),
          wanted["discharge"], keys)
    # apportion, through the Spark 3.3-3.5 fallback (applyInPandas)
    monkeypatch.setattr(cs, "_cogroup_api", lambda: "pandas")
    _same(collect(cs.cost_by_window(priced, cohort, windows=(-1, 0), assign="apportion", partitions=3)),
          wanted["apportion"], keys)


def test_a_costing_error_in_a_worker_is_raised_as_itself(spark: Any) -> None:
    # strict mode refuses an unknown admission method: in a Spark worker, as in polars
    from tests.fixtures.tables import apc, frame

    bad = frame(apc("r1"), apc("r2", method="XX")).with_columns(pl.col("age").cast(pl.Int32))
    strict = PROVIDER.model_copy(update={"strict": True})
    with pytest.raises(costing.InputError, match=r"admission_method: unknown admission method \(value 'XX'\)"):
        with cs.worker_errors():
            collect(cs.price(cs._spark_frame(spark, bad), config=strict, partitions=1))


def test_spark_schema_type_mapping(spark: Any) -> None:
    schema = cs.spark_schema({**PRICED_COLUMNS, **WINDOW_COLUMNS, "u8": pl.UInt8, "u16": pl.UInt16,
                              "when": pl.Datetime("us"), "nothing": pl.Null})
    types = {f.name: f.dataType.simpleString() for f in schema.fields}
    assert types["pod"] == types["status_name"] == types["tariff_edition"] == "string"
    assert types["n_records"] == "bigint"  # UInt32: Spark has no unsigned type
    assert (types["u8"], types["u16"], types["window_start"]) == ("smallint", "int", "date")
    assert (types["when"], types["nothing"]) == ("timestamp_ntz", "string")
    assert all(f.nullable for f in schema.fields)
    with pytest.raises(costing.InputError, match="'nested'.*no Spark type"):
        cs.spark_schema({"nested": pl.List(pl.Int64)})


def test_window_output_schema_is_pinned(spark: Any) -> None:
    types = {f.name: f.dataType.simpleString() for f in cs.spark_schema(cs._window_schema("category")).fields}
    assert types == {
        "patient_id": "string", "window": "int", "window_start": "date", "window_end": "date",
        "window_days": "int", "category": "string", "cost": "double", "n_records": "bigint",
        "n_unpriced": "bigint", "n_excluded": "bigint", "days_observed": "int",
        "index_date": "date", "group": "string", "site": "string", "matched_set": "string",
        "weight": "double", "end_of_follow_up": "date"}
