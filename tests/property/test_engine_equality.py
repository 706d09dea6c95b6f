"""The three engines agree: the reference engine (every rule on every record,
``costing.pricing.reference``), the keyed in-memory engine (``costing.price``) and the
streaming engine (``costing.price_lazy``) return the same frame, every column, for every
configuration: both perspectives, declared chains, fixed and dated editions, MFF, inflation,
spells, thresholds moved, policy parameters differing by edition, adjustments switched off; on input held in several chunks, with
codes as read or as an extract might hold them, and under engine options that force the rare
paths (tiny batches and check slices, colliding hashes, no threads).

Hypothesis profile ``ci`` by default; ``COSTING_HYPOTHESIS_PROFILE=deep`` for many more.
"""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import costing
from costing import CostingConfig
from costing.errors import CostingError
from costing.pricing.reference import price_reference
from tests.property.strategies import (
    ScratchFolders,
    EDITION,
    INDEX_NAME,
    TableSpec,
    activity_frames,
    messy,
    table_specs,
    write_tables,
)

EARLIER = "2016-17"  # dated editions: the spec again, at 90% of its prices
FIXED = CostingConfig(tariff_edition=EDITION, reference_cost_edition=EDITION, apc_unit="episode")
INFLATION = {"price_base": EDITION, "index": INDEX_NAME}
CONFIGS = {
    "purchaser_fixed_spells": FIXED.model_copy(update={"apc_unit": "spell"}),
    "purchaser_fixed_episodes": FIXED,
    "purchaser_dated_spells": CostingConfig(),
    "provider_fixed": CostingConfig(perspective="provider", reference_cost_edition=EDITION),
    "provider_dated_inflation": CostingConfig(perspective="provider", **INFLATION),
    "chain_with_total": FIXED.model_copy(update={"chain": ("tariff", "reference_cost", "total_hrg_average")}),
    "chain_rc_then_tariff": FIXED.model_copy(update={"chain": ("reference_cost", "tariff")}),
    "mff_fixed": FIXED.model_copy(update={"mff": True}),
    "mff_dated_inflation_spells": CostingConfig(mff=True, **INFLATION),
    # thresholds moved: a stay newly short enough must get the short-stay price in every
    # engine (the stay test is read per record for age and per key for the price)
    "thresholds_moved": FIXED.model_copy(update={"sse_max_los": 3, "sse_min_age": 40, "nes_los_threshold": 4}),
    # dated, each edition its own policy parameters (the tables' PARAMETERS below): a record's
    # tariff and reference-cost editions choose the short-stay and NES thresholds
    "dated_parameters_differ": CostingConfig(),
    "adjustments_off": FIXED.model_copy(update={
        "short_stay_emergency": False, "long_stay": False, "rp_source": "tariff_day_case",
        "op_reference_department": "NCL"}),
}
_SSE = "21 22 23 24 25 2A 2B 2C 2D"
PARAMETERS = {"dated_parameters_differ": {
    EARLIER: {"sse_max_los": "2", "sse_min_age": "65", "sse_admission_methods": "21 2A", "nes_los_threshold": "3"},
    EDITION: {"sse_max_los": "1", "sse_min_age": "19", "sse_admission_methods": _SSE, "nes_los_threshold": "2"},
}}
OPTIONS = st.sampled_from([
    costing.EngineOptions(),
    costing.EngineOptions(key_batch_rows=2, check_rows=3, drop_by_slices=0),
    costing.EngineOptions(colliding_hashes=True),
    costing.EngineOptions(threads=False, drop_by_slices=1),
])


_SCRATCH = ScratchFolders()


@pytest.fixture(scope="module", autouse=True)
def _clean_scratch() -> Iterator[None]:
    yield
    _SCRATCH.dir.cleanup()


def _in_pieces(df: pl.DataFrame, size: int) -> pl.DataFrame:
    """The same rows held in chunks of ``size`` (as a Parquet read holds row groups)."""
    if df.height <= size:
        return df
    return pl.concat([df.slice(i, size) for i in range(0, df.height, size)], rechunk=False)


def _with_twins(df: pl.DataFrame) -> pl.DataFrame:
    """``df``, each admitted record again as a same-day emergency stay (the short-stay
    emergency candidates random records seldom are), then every one of those twice more under
    a new id: once with its age moved across the short-stay emergency age, once staying a day
    longer. Twins share every code with their record, so an engine that merged keys which
    differ only in a per-record quantity (age eligibility, length of stay) would price a twin
    like its record."""
    age, rid = pl.col("age"), pl.col("record_id")
    short = df.filter(pl.col("setting") == "apc").with_columns(
        (rid + "-sse").alias("record_id"), pl.lit("21").alias("admission_method"),
        pl.lit("1").alias("patient_classification"), pl.col("activity_date").alias("discharge_date"))
    base = pl.concat([df, short])
    return pl.concat([
        base,
        base.with_columns((rid + "-age").alias("record_id"),
                          pl.when(age.is_null()).then(45).when(age >= 19).then(age - 19)
                          .otherwise(age + 40).cast(pl.Int32).alias("age")),
        base.with_columns((rid + "-los").alias("record_id"),
                          (pl.col("discharge_date") + pl.duration(days=1)).alias("discharge_date")),
    ])


def _outcome(run: object) -> pl.DataFrame | type[CostingError]:
    """The engine's frame, or the kind of error it refused the input with."""
    try:
        out = run()  # type: ignore[operator]
        return out.collect() if isinstance(out, pl.LazyFrame) else out
    except CostingError as e:
        return type(e)


@settings(max_examples=6)
@given(spec=table_specs(), df=activity_frames(min_size=5, max_size=20), piece=st.integers(1, 9),
       as_read=st.booleans(), options=OPTIONS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_reference_in_memory_and_streaming_engines_give_the_same_frame(
        config: str, spec: TableSpec, df: pl.DataFrame, piece: int, as_read: bool,
        options: costing.EngineOptions) -> None:
    tables = write_tables(_SCRATCH.folder(), spec, earlier=EARLIER,
                          index={EARLIER: 96.5, EDITION: 100.0}, parameters=PARAMETERS.get(config))
    cfg = CONFIGS[config]
    records = _with_twins(df) if as_read else messy(_with_twins(df))
    expected = _outcome(lambda: price_reference(records, tables, cfg))
    chunked = _in_pieces(records, piece)
    for engine in (lambda: costing.price(chunked, tables, cfg, options=options),
                   lambda: costing.price_lazy(chunked.lazy(), tables, cfg, options=options)):
        got = _outcome(engine)
        if isinstance(expected, pl.DataFrame):
            assert isinstance(got, pl.DataFrame), got
            assert_frame_equal(got, expected)
        else:
            assert got is expected
