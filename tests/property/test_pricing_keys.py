"""Pricing by distinct key: records that share a pricing key are priced once and the result
joined back (``costing.pricing``). These properties check that this is invisible: a record
priced among others equals it priced alone, un-normalised codes price like normalised
ones, and colliding key hashes are caught and priced exactly.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from polars.testing import assert_frame_equal

import costing
from costing import activity, pricing
from tests.property.strategies import TableSpec, activity_frames, table_specs, to_frame
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


def _messy(df: pl.DataFrame) -> pl.DataFrame:
    """The same records with codes as an extract might hold them: padded with blanks,
    HRG and admission method in lower case, setting in upper case, A&E type unpadded."""
    lower = ("hrg_code", "admission_method")
    pad = [c for c, t in df.schema.items()
           if t == pl.String and c not in ("setting", "department_type", *lower)]
    return df.with_columns(
        *[(pl.lit(" ") + pl.col(c) + pl.lit("  ")).alias(c) for c in pad],
        *[(pl.lit(" ") + pl.col(c).str.to_lowercase() + pl.lit("\t")).alias(c)
          for c in lower],
        pl.col("setting").str.to_uppercase(),
        pl.col("department_type").str.strip_chars_start("0"),
    )


@settings(max_examples=10)
@given(table_specs(), activity_frames(max_size=20))
@pytest.mark.parametrize("config", ["fixed_episode", "fixed_spell", "mff"])
def test_unnormalised_codes_price_exactly_like_normalised_ones(
        config: str, spec: TableSpec, df: pl.DataFrame) -> None:
    tables = _tables(spec)
    cfg = CONFIGS[config]
    clean = costing.price(df, tables, cfg)
    messy = _messy(df)
    assert_frame_equal(costing.price(messy, tables, cfg), clean)
    assert_frame_equal(costing.price_lazy(messy.lazy(), tables, cfg).collect(), clean)


@settings(max_examples=10)
@given(table_specs(), activity_frames(max_size=20))
@pytest.mark.parametrize("config", ["fixed_episode", "dated", "provider"])
def test_colliding_key_hashes_are_caught_and_priced_exactly(
        config: str, spec: TableSpec, df: pl.DataFrame) -> None:
    # every key's first 64 bits made equal: in memory the check on the other 64 must
    # notice and fall back to the full 128; lazily the keys are joined on all 128
    tables = _tables(spec)
    cfg = CONFIGS[config]
    expected = costing.price(df, tables, cfg)
    real, real_row = pricing._key_hash, pricing._row_hash

    def colliding(values: list[pl.Expr]) -> list[pl.Expr]:  # the lazy path's key hash
        return [pl.lit(0, dtype=pl.UInt64).alias(pricing._HASH[0]), real(values)[1]]

    def colliding_row(key: pl.DataFrame, which: int) -> pl.Series:  # in memory
        if which == 0:
            return pl.zeros(key.height, dtype=pl.UInt64, eager=True).alias(pricing._HASH[0])
        return real_row(key, which)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pricing, "_key_hash", colliding)
        mp.setattr(pricing, "_row_hash", colliding_row)
        assert_frame_equal(costing.price(df, tables, cfg), expected)
        assert_frame_equal(costing.price_lazy(df.lazy(), tables, cfg).collect(), expected)


@settings(max_examples=10)
@given(table_specs(), activity_frames(max_size=20))
@pytest.mark.parametrize("config", ["fixed_episode", "dated", "mff"])
def test_rows_hash_alike_sliced_and_whole_so_the_fast_path_is_taken(
        config: str, spec: TableSpec, df: pl.DataFrame) -> None:
    # the in-memory check hashes rows a slice at a time and the keys from their first rows:
    # were a row's hash to depend on its neighbours, every run would fall back to the
    # slower exact path (still right, so only this test would notice)
    tables, cfg = _tables(spec), CONFIGS[config]
    calls: list[bool] = []
    real = pricing._price_rows

    def recording(k: pricing._Keyed, rows: pl.DataFrame, exact: bool) -> pl.DataFrame | None:
        out = real(k, rows, exact)
        calls.append(out is not None)
        return out

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pricing, "_price_rows", recording)
        mp.setattr(pricing, "_CHECK_ROWS", 3)  # several slices even for a few rows
        costing.price(df, tables, cfg)
    # one pricing of the records as read, and a second, normalised, when some id or code
    # needs it: each takes the fast path
    assert calls in ([True], [True, True])


def _in_pieces(df: pl.DataFrame, size: int) -> pl.DataFrame:
    """The same rows held in several chunks (as a Parquet read holds them)."""
    if df.height <= size:
        return df
    return pl.concat([df.slice(i, size) for i in range(0, df.height, size)], rechunk=False)


@settings(max_examples=5)
@given(table_specs(), activity_frames(max_size=20))
@pytest.mark.parametrize("drop_by_slices", [True, False])
@pytest.mark.parametrize("config", ["fixed_spell", "fixed_episode"])
def test_a_frame_in_chunks_prices_like_it_in_one_piece(
        config: str, drop_by_slices: bool, spec: TableSpec, df: pl.DataFrame) -> None:
    # episodes merged into spells are dropped by zero-copy slices (few) or a filter (many),
    # and new columns are cut like the input's chunks: neither may change a value or an order
    tables, cfg = _tables(spec), CONFIGS[config]
    expected = costing.price_lazy(df.lazy(), tables, cfg).collect()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(activity, "_DROP_BY_SLICES", 1 << 30 if drop_by_slices else 0)
        for size in (1, 3, 7):
            assert_frame_equal(costing.price(_in_pieces(df, size), tables, cfg), expected)


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


@pytest.mark.parametrize("needs_normalising", [False, True])
def test_records_are_priced_again_normalised_only_when_the_scan_finds_a_value_to_change(
        needs_normalising: bool) -> None:
    # the scan for values normalisation would change runs beside a pricing of the records as
    # read; only when it finds one are they priced again, and the output is the normalised one
    import datetime as dt

    record = {"record_id": "r1", "patient_id": "p1", "setting": "apc", "provider_code": "RXX",
              "activity_date": dt.date(2017, 6, 1), "discharge_date": dt.date(2017, 6, 13),
              "admission_method": "21", "patient_classification": "1", "hrg_code": "DZ11V",
              "hrg_version": "HRG4", "age": 50}
    padded = {**record, "record_id": " r1\t", "patient_id": "p1 ", "setting": " APC"} if needs_normalising else record
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    runs: list[bool] = []
    real = pricing._price_frame

    def recording(frame: pl.DataFrame, tables: costing.TableSet | None, c: costing.CostingConfig,
                  as_read: bool, **kw: Any) -> pl.DataFrame | None:
        runs.append(as_read)
        return real(frame, tables, c, as_read, **kw)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pricing, "_price_frame", recording)
        out = costing.price(pl.DataFrame([padded]), None, cfg)
    assert runs == ([True, False] if needs_normalising else [True])
    expected = costing.price_lazy(pl.DataFrame([record]).lazy(), None, cfg).collect()
    assert_frame_equal(out, expected)
    assert out.row(0, named=True)["record_id"] == "r1" and out["cost"].round(2).to_list() == [2747.06]
