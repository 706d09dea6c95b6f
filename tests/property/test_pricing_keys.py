"""Pricing by distinct key: records that share a pricing key are priced once and the result
joined back (``costing.pricing``). These properties check that this is invisible: a record
priced among others equals it priced alone, un-normalised codes price like normalised
ones, and row hashes do not depend on their neighbours. That the keyed engines equal the
reference engine (colliding hashes, chunked input, every configuration) is
``test_engine_equality.py``.
"""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import costing
from costing.pricing.engine.in_memory import _row_hash
from tests.property.strategies import TableSpec, activity_frames, messy, table_specs, to_frame
from tests.property.test_pricing_properties import CONFIGS, _tables

EPISODE_CONFIGS = ["fixed_episode", "dated", "mff"]


@settings(max_examples=5)
@given(table_specs(), activity_frames(max_size=12))
@pytest.mark.parametrize("config", EPISODE_CONFIGS)
def test_a_record_priced_among_others_equals_it_priced_alone(
        config: str, spec: TableSpec, df: pl.DataFrame) -> None:
    tables = _tables(spec)
    cfg = CONFIGS[config]
    together = costing.price(df, tables, cfg).drop("source_row")
    alone = [costing.price(df.slice(i, 1), tables, cfg).drop("source_row") for i in range(df.height)]
    if alone:
        assert_frame_equal(together, pl.concat(alone))
    else:
        assert together.height == 0


@settings(max_examples=10)
@given(table_specs(), activity_frames(max_size=20))
@pytest.mark.parametrize("config", ["fixed_episode", "fixed_spell", "mff"])
def test_unnormalised_codes_price_exactly_like_normalised_ones(
        config: str, spec: TableSpec, df: pl.DataFrame) -> None:
    tables = _tables(spec)
    cfg = CONFIGS[config]
    clean = costing.price(df, tables, cfg)
    as_extracted = messy(df)
    assert_frame_equal(costing.price(as_extracted, tables, cfg), clean)
    assert_frame_equal(costing.price_lazy(as_extracted.lazy(), tables, cfg).collect(), clean)


@settings(max_examples=10)
@given(activity_frames(max_size=20), st.integers(min_value=1, max_value=7))
def test_rows_hash_alike_sliced_and_whole_so_the_fast_path_is_taken(df: pl.DataFrame, size: int) -> None:
    # the in-memory check hashes rows a slice at a time and the keys from their first rows:
    # were a row's hash to depend on its neighbours, every run would fall back to the
    # slower exact path (still right, so only this test would notice)
    key = df.drop("source_row", strict=False)
    whole = _row_hash(key, 1)
    sliced = pl.concat([_row_hash(key.slice(i, size), 1) for i in range(0, key.height, size)] or [whole])
    assert whole.to_list() == sliced.to_list()
    # and a row's hash is its own: the same row alone hashes alike
    for i in range(key.height):
        assert _row_hash(key.slice(i, 1), 1)[0] == whole[i]


@settings(max_examples=2)
@given(table_specs())
@pytest.mark.parametrize("config", ["fixed_spell", "fixed_episode", "provider"])
def test_no_records_price_to_no_rows(config: str, spec: TableSpec) -> None:
    # an empty frame: every column is "null throughout", which must not make spells
    # rebuild it as a frame of constants alone (one row)
    empty = to_frame([])
    out = costing.price(empty, _tables(spec), CONFIGS[config])
    assert out.height == 0
    assert_frame_equal(out, costing.price_lazy(empty.lazy(), _tables(spec), CONFIGS[config]).collect())


@pytest.mark.parametrize("threads", [True, False])
@pytest.mark.parametrize("needs_normalising", [False, True])
def test_records_needing_normalisation_price_as_normalised_ones_with_or_without_threads(
        needs_normalising: bool, threads: bool) -> None:
    # the scan for values normalisation would change runs beside a pricing of the records as
    # read (threads) or before it; when it finds one the output is the normalised one
    import datetime as dt

    from costing.activity import strings_to_normalise

    record = {"record_id": "r1", "patient_id": "p1", "setting": "apc", "provider_code": "RXX",
              "activity_date": dt.date(2017, 6, 1), "discharge_date": dt.date(2017, 6, 13),
              "admission_method": "21", "patient_classification": "1", "hrg_code": "DZ11V",
              "hrg_version": "HRG4", "age": 50}
    padded = {**record, "record_id": " r1\t", "patient_id": "p1 ", "setting": " APC"} if needs_normalising else record
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    frame = pl.DataFrame([padded])
    assert ("record_id" in strings_to_normalise(frame)) == needs_normalising
    out = costing.price(frame, None, cfg, options=costing.EngineOptions(threads=threads))
    expected = costing.price_lazy(pl.DataFrame([record]).lazy(), None, cfg).collect()
    assert_frame_equal(out, expected)
    assert out.row(0, named=True)["record_id"] == "r1" and out["cost"].round(2).to_list() == [2747.06]
