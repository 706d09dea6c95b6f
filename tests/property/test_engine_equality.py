"""The three engines agree: the reference engine (every rule on every record,
``costing.pricing.reference``), the keyed in-memory engine (``costing.price``) and the
streaming engine (``costing.price_lazy``) return the same frame, every column, for every
configuration: both perspectives, declared chains, fixed and dated editions, MFF, inflation,
spells, adjustments switched off; on input held in several chunks, with codes as read or
as an extract might hold them, and under engine options that force the rare paths (tiny
batches and check slices, colliding hashes, no threads).

Hypothesis profile ``ci`` by default; ``COSTING_HYPOTHESIS_PROFILE=deep`` for many more.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    "adjustments_off": FIXED.model_copy(update={
        "short_stay_emergency": False, "long_stay": False, "rp_source": "tariff_day_case",
        "op_reference_department": "NCL"}),
}
OPTIONS = st.sampled_from([
    costing.EngineOptions(),
    costing.EngineOptions(key_batch_rows=2, check_rows=3, drop_by_slices=0),
    costing.EngineOptions(colliding_hashes=True),
    costing.EngineOptions(threads=False, drop_by_slices=1),
])


class _Scratch:
    """A folder for this module's fixture editions (one subfolder per example)."""

    def __init__(self) -> None:
        shm = Path("/dev/shm")
        self.dir = tempfile.TemporaryDirectory(
            prefix="costing-equality-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
        self.n = 0

    def folder(self) -> Path:
        self.n += 1
        return Path(self.dir.name) / str(self.n)


_SCRATCH = _Scratch()


@pytest.fixture(scope="module", autouse=True)
def _clean_scratch() -> Iterator[None]:
    yield
    _SCRATCH.dir.cleanup()


def _in_pieces(df: pl.DataFrame, size: int) -> pl.DataFrame:
    """The same rows held in chunks of ``size`` (as a Parquet read holds row groups)."""
    if df.height <= size:
        return df
    return pl.concat([df.slice(i, size) for i in range(0, df.height, size)], rechunk=False)


def _outcome(run: object) -> pl.DataFrame | type[CostingError]:
    """The engine's frame, or the kind of error it refused the input with."""
    try:
        out = run()  # type: ignore[operator]
        return out.collect() if isinstance(out, pl.LazyFrame) else out
    except CostingError as e:
        return type(e)


@settings(max_examples=6)
@given(spec=table_specs(), df=activity_frames(min_size=8, max_size=40), piece=st.integers(1, 9),
       as_read=st.booleans(), options=OPTIONS)
@pytest.mark.parametrize("config", list(CONFIGS))
def test_reference_in_memory_and_streaming_engines_give_the_same_frame(
        config: str, spec: TableSpec, df: pl.DataFrame, piece: int, as_read: bool,
        options: costing.EngineOptions) -> None:
    tables = write_tables(_SCRATCH.folder(), spec, earlier=EARLIER,
                          index={EARLIER: 96.5, EDITION: 100.0})
    cfg = CONFIGS[config]
    records = df if as_read else messy(df)
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
