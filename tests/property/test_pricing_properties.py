"""Properties of pricing that must survive any refactor or new table edition.

Each property prices hypothesis-drawn canonical activity (all settings, valid and invalid
values mixed) against hypothesis-drawn fixture tables (``tests/property/strategies.py``),
written with the real ``write_edition`` and loaded with the real, verifying ``load_tables``.
Hypothesis profile ``ci`` (derandomized, bounded) by default; ``deep`` for many more
examples: ``COSTING_HYPOTHESIS_PROFILE=deep pytest tests/property``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import costing
from costing import CostingConfig, Status
from costing.cli import main
from costing.errors import TableError, TableIntegrityError
from costing.schema import EMERGENCY_METHODS
from costing.tables import shipped_tables_path
from tests.property.strategies import (
    ScratchFolders,
    EDITION,
    TableSpec,
    activity_frames,
    apc_records,
    table_specs,
    to_frame,
    write_tables,
)

FIXED = CostingConfig(tariff_edition=EDITION, reference_cost_edition=EDITION, apc_unit="episode")
TARIFF_ONLY = FIXED.model_copy(update={"chain": ("tariff",)})
RC_ONLY = FIXED.model_copy(update={"chain": ("reference_cost",)})
SPELLS = FIXED.model_copy(update={"apc_unit": "spell"})
CONFIGS = {
    "fixed_episode": FIXED,
    "fixed_spell": SPELLS,
    "provider": CostingConfig(perspective="provider", reference_cost_edition=EDITION),
    "dated": CostingConfig(apc_unit="episode"),
    "with_total": FIXED.model_copy(update={"chain": ("tariff", "reference_cost", "total_hrg_average")}),
    "rc_then_tariff": FIXED.model_copy(update={"chain": ("reference_cost", "tariff")}),
    "mff": FIXED.model_copy(update={"mff": True}),
}


_SCRATCH = ScratchFolders()


@pytest.fixture(scope="module", autouse=True)
def _clean_scratch() -> Iterator[None]:
    yield
    _SCRATCH.dir.cleanup()


def _tables(spec: TableSpec, **kwargs: Any) -> costing.TableSet:
    """Write the spec as fixture editions and load them with the verifying loader."""
    return write_tables(_SCRATCH.folder(), spec, **kwargs)


def _price(df: pl.DataFrame, tables: costing.TableSet, cfg: CostingConfig = FIXED) -> pl.DataFrame:
    return costing.price(df, tables, cfg)


def _by_record(out: pl.DataFrame) -> pl.DataFrame:
    """Priced rows in record_id order, without the input-position column."""
    return out.drop("source_row").sort("record_id")


# --------------------------------------------------------------------------------------
# conservation
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames())
def test_episode_level_pricing_returns_every_record_once_in_input_order(
        spec: TableSpec, df: pl.DataFrame) -> None:
    out = _price(df, _tables(spec))
    assert out.height == df.height
    assert out["record_id"].to_list() == df["record_id"].to_list()
    assert out["n_episodes"].to_list() == [1] * df.height


def _expected_spell_keys(df: pl.DataFrame) -> set[tuple[Any, ...]]:
    """Spell keys as documented in build_spells, computed row by row in plain Python."""
    keys: set[tuple[Any, ...]] = set()
    for i, r in enumerate(df.iter_rows(named=True)):
        if r["setting"] != "apc":
            keys.add(("other", i))
        elif r["spell_id"] is not None:
            keys.add(("S", r["spell_id"]))
        elif None not in (r["provider_code"], r["patient_id"], r["activity_date"]):
            keys.add(("K", r["provider_code"], r["patient_id"], r["activity_date"]))
        else:
            keys.add(("R", i))
    return keys


@given(table_specs(), activity_frames())
def test_spell_level_pricing_returns_one_row_per_spell_and_counts_every_episode(
        spec: TableSpec, df: pl.DataFrame) -> None:
    out = _price(df, _tables(spec), SPELLS)
    assert out.height == len(_expected_spell_keys(df))
    assert out["n_episodes"].sum() == df.height  # every episode is inside exactly one row
    assert set(out["record_id"]) <= set(df["record_id"])


# --------------------------------------------------------------------------------------
# locality
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames(prefix="a"), activity_frames(prefix="b"), st.data())
def test_pricing_is_local_and_input_order_only_permutes_the_output(
        spec: TableSpec, a: pl.DataFrame, b: pl.DataFrame, data: st.DataObject) -> None:
    # price(shuffle(A ++ B)) follows the shuffled input order and, row for row, equals
    # price(A) ++ price(B): no record's price depends on its neighbours or position
    tables = _tables(spec)
    both = pl.concat([a, b])
    order = data.draw(st.permutations(range(both.height)))
    shuffled = both[list(order)]
    out = _price(shuffled, tables)
    assert out["record_id"].to_list() == shuffled["record_id"].to_list()
    apart = pl.concat([_price(a, tables), _price(b, tables)])
    assert_frame_equal(_by_record(out), _by_record(apart))


# --------------------------------------------------------------------------------------
# fallback discipline
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames(), st.data())
def test_fallback_only_when_the_tariff_has_no_price_and_removing_an_hrg_moves_its_records(
        spec: TableSpec, df: pl.DataFrame, data: st.DataObject) -> None:
    tables = _tables(spec)
    full = _price(df, tables)
    tariff = _price(df, tables, TARIFF_ONLY)
    rc = _price(df, tables, RC_ONLY)
    both = pl.DataFrame({
        "status": full["status"], "cost": full["cost"],
        "t_status": tariff["status"], "t_cost": tariff["cost"],
        "rc_status": rc["status"], "rc_cost": rc["cost"],
    })
    by_tariff = both.filter(pl.col("status") == Status.PRICED_TARIFF)
    fallback = both.filter(pl.col("status") == Status.PRICED_REFERENCE_COST_FALLBACK)
    # tariff-priced in the chain <=> priced by the tariff alone, at the same cost
    assert by_tariff.height == both.filter(pl.col("t_status") == Status.PRICED_TARIFF).height
    assert by_tariff["cost"].to_list() == by_tariff["t_cost"].to_list()
    # a fallback row: the tariff alone could not price it; reference cost alone gives its cost
    assert (fallback["t_status"] >= 50).all()
    assert (fallback["rc_status"] == Status.PRICED_REFERENCE_COST).all()
    assert fallback["cost"].to_list() == fallback["rc_cost"].to_list()
    # unpriced in the chain: unpriced by each level alone
    unpriced = both.filter(pl.col("status") >= 50)
    assert (unpriced["t_status"] >= 50).all() and (unpriced["rc_status"] >= 50).all()

    # removing one HRG from the tariff (APC and A&E sheets) changes only its records ...
    in_tariff = sorted(spec.tariff_hrgs())
    if not in_tariff:
        return
    hrg = data.draw(st.sampled_from(in_tariff))
    after = _price(df, _tables(spec, drop_tariff_hrg=hrg))
    changed = pl.Series([
        x != y for x, y in zip(full.iter_rows(), after.iter_rows(), strict=True)
    ], dtype=pl.Boolean)
    assert (after.filter(changed)["hrg_code"] == hrg).all()
    # ... and its admitted-care and A&E records that the tariff priced get the next level
    moved = (full["status"] == Status.PRICED_TARIFF) & (full["hrg_code"] == hrg) & (
        full["setting"] != "op")
    assert (after.filter(moved)["status"] != Status.PRICED_TARIFF).all()
    assert after.filter(moved)["cost"].to_list() == rc.filter(moved)["cost"].to_list()
    rc_priced = rc.filter(moved)["status"] == Status.PRICED_REFERENCE_COST
    assert (after.filter(moved)["status"].filter(rc_priced)
            == Status.PRICED_REFERENCE_COST_FALLBACK).all()


# --------------------------------------------------------------------------------------
# monotonicity and short stay
# --------------------------------------------------------------------------------------


@given(table_specs(), apc_records(valid=True))
def test_cost_never_decreases_as_length_of_stay_grows(spec: TableSpec, record: dict[str, Any]) -> None:
    # the same valid admission with LOS 0..30; from LOS 2 on (past short stay and NES) the
    # status is fixed and the cost can only grow (excess bed days past the trim point)
    records = [{**record, "discharge_date": record["activity_date"] + dt.timedelta(days=los)}
               for los in range(31)]
    out = _price(to_frame(records), _tables(spec)).filter(pl.col("los_days") >= 2)
    assert out["status"].n_unique() == 1
    costs = out["cost"].drop_nulls().to_list()
    assert costs == sorted(costs)
    assert out["excess_bed_days"].drop_nulls().to_list() == sorted(
        out["excess_bed_days"].drop_nulls().to_list())
    if out["status"][0] < 50:
        assert len(costs) == out.height


def _tariff_frame(spec: TableSpec) -> pl.DataFrame:
    return pl.DataFrame(
        [{"hrg_code": r["hrg_code"], "t_sse": r["sse_applicable"], "t_sse_price": r["sse_price"]}
         for r in spec.tariff_apc],
        schema={"hrg_code": pl.String, "t_sse": pl.Boolean, "t_sse_price": pl.Float64},
    )


@given(table_specs(), activity_frames())
def test_short_stay_applies_exactly_to_eligible_short_emergency_stays(
        spec: TableSpec, df: pl.DataFrame) -> None:
    out = _price(df, _tables(spec)).join(_tariff_frame(spec), on="hrg_code", how="left")
    eligible = (
        (pl.col("status") == Status.PRICED_TARIFF)
        & (pl.col("setting") == "apc") & (pl.col("pod") == "NEL")
        & pl.col("admission_method").is_in(EMERGENCY_METHODS)
        & (pl.col("los_days") < 2) & (pl.col("age") >= 19)
        & pl.col("t_sse").fill_null(False) & pl.col("t_sse_price").is_not_null()
    ).fill_null(False)
    applied = pl.col("short_stay_applied").fill_null(False)
    assert out.filter(applied & ~eligible).height == 0
    assert out.filter(eligible & ~applied).height == 0
    sse = out.filter(applied)
    assert sse["cost"].to_list() == sse["t_sse_price"].to_list()


# --------------------------------------------------------------------------------------
# linearity and MFF
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames(), st.sampled_from([0.5, 1.1, 2.0, 3.0]),
       st.sampled_from(["tariff", "reference_cost"]))
def test_scaling_a_table_by_k_scales_exactly_its_costs_by_k(
        spec: TableSpec, df: pl.DataFrame, k: float, which: str) -> None:
    base = _price(df, _tables(spec), CONFIGS["with_total"])
    scale = {"tariff_scale": k} if which == "tariff" else {"rc_scale": k}
    scaled = _price(df, _tables(spec, **scale), CONFIGS["with_total"])
    assert scaled["status"].to_list() == base["status"].to_list()
    source = {"tariff": ["tariff"], "reference_cost": ["reference_cost", "total_hrg_average"]}[which]
    hit = base["cost_source"].is_in(source).fill_null(False)
    assert scaled.filter(hit)["cost"].to_list() == pytest.approx(
        [c * k for c in base.filter(hit)["cost"]], rel=1e-12)
    assert scaled.filter(~hit)["cost"].to_list() == base.filter(~hit)["cost"].to_list()


@given(table_specs(), activity_frames())
def test_mff_changes_only_tariff_priced_rows_by_their_providers_factor(
        spec: TableSpec, df: pl.DataFrame) -> None:
    tables = _tables(spec)
    off = _price(df, tables)
    on = _price(df, tables, CONFIGS["mff"])
    tariff = (off["cost_source"] == "tariff").fill_null(False)
    factors = off["provider_code"].replace_strict(spec.mff, default=None, return_dtype=pl.Float64)
    has_factor = factors.is_not_null().fill_null(False)
    # a tariff-priced record whose provider has no factor is not priced (status 58); every
    # other record keeps its status
    assert on.filter(tariff & ~has_factor)["status"].to_list() == [58] * (tariff & ~has_factor).sum()
    assert on.filter(tariff & ~has_factor)["cost"].null_count() == (tariff & ~has_factor).sum()
    keep = ~(tariff & ~has_factor)
    assert on.filter(keep)["status"].to_list() == off.filter(keep)["status"].to_list()
    scaled = tariff & has_factor
    assert on.filter(scaled)["mff_factor"].to_list() == factors.filter(scaled).to_list()
    expected = [c * f for c, f in zip(off.filter(scaled)["cost"], factors.filter(scaled), strict=True)]
    assert on.filter(scaled)["cost"].to_list() == pytest.approx(expected, rel=1e-12)
    assert on.filter(~tariff)["cost"].to_list() == off.filter(~tariff)["cost"].to_list()
    assert on.filter(~tariff)["mff_factor"].null_count() == (~tariff).sum()


# --------------------------------------------------------------------------------------
# fixed-price invariance
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames(dummy_dates=False), st.integers(-4000, 4000),
       st.sampled_from(["fixed_episode", "fixed_spell"]))
def test_shifting_every_date_leaves_fixed_mode_costs_unchanged(
        spec: TableSpec, df: pl.DataFrame, days: int, config: str) -> None:
    tables = _tables(spec)
    cfg = CONFIGS[config]
    shift = dt.timedelta(days=days)
    moved = df.with_columns(pl.col("activity_date") + shift, pl.col("discharge_date") + shift)
    dates = ["activity_date", "discharge_date", "spell_key"]  # the spell key spells the date
    assert_frame_equal(_price(moved, tables, cfg).drop(dates), _price(df, tables, cfg).drop(dates))


# --------------------------------------------------------------------------------------
# statuses
# --------------------------------------------------------------------------------------


@given(table_specs(), activity_frames(), st.sampled_from(sorted(CONFIGS)))
def test_status_cost_and_source_agree(spec: TableSpec, df: pl.DataFrame, config: str) -> None:
    out = _price(df, _tables(spec), CONFIGS[config])
    codes = {int(s) for s in Status}
    assert set(out["status"].to_list()) <= codes
    unpriced = out["status"] >= 50
    assert (out["cost"].is_null() == unpriced).all()
    assert (out["cost_source"].is_null() == unpriced).all()
    excluded = out.filter(pl.col("status") == Status.EXCLUDED_NOT_ATTENDED)
    assert excluded["cost"].to_list() == [0.0] * excluded.height
    assert (excluded["cost_source"] == "excluded").all()
    assert (out["cost"].drop_nulls() >= 0).all()
    assert out["status_name"].to_list() == [Status(s).label for s in out["status"]]


# --------------------------------------------------------------------------------------
# integrity of the shipped tables
# --------------------------------------------------------------------------------------


def _shipped_resource_files() -> list[Path]:
    """Every data file named in a shipped manifest, relative to the shipped tables folder."""
    root = shipped_tables_path()
    files = []
    for manifest in sorted(root.glob("*/*/manifest.json")):
        ed = costing.tables._read_manifest(manifest)
        files += [manifest.parent.relative_to(root) / r.path for r in ed.resources]
    return files


SHIPPED_FILES = _shipped_resource_files()


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped tables tree (each example flips one byte and restores it)."""
    dest = tmp_path_factory.mktemp("shipped") / "tables"
    shutil.copytree(shipped_tables_path(), dest)
    return dest


def test_the_shipped_tables_have_files_to_tamper_with() -> None:
    # at least the five reference-cost editions, trim points, MFF and two index editions
    assert len(SHIPPED_FILES) >= 9


@settings(suppress_health_check=[*settings.default.suppress_health_check,
                                 HealthCheck.function_scoped_fixture])
@given(st.sampled_from(SHIPPED_FILES), st.floats(0, 1, exclude_max=True), st.integers(1, 255))
def test_any_flipped_byte_in_a_shipped_table_is_refused(
        shipped_copy: Path, rel: Path, where: float, mask: int) -> None:
    file = shipped_copy / rel
    original = file.read_bytes()
    offset = int(where * len(original))
    tampered = bytearray(original)
    tampered[offset] ^= mask
    file.write_bytes(bytes(tampered))
    try:
        with pytest.raises(TableIntegrityError) as exc:
            costing.load_tables(file.parent)
        assert str(file) in str(exc.value) and "sha256 mismatch" in str(exc.value)
        result = CliRunner().invoke(main, ["tables", "verify", "--path", str(file.parent)])
        assert result.exit_code == 1, result.output
        assert "sha256 mismatch" in result.stderr and str(file) in result.stderr
        assert "Traceback" not in result.output
    finally:
        file.write_bytes(original)
    costing.load_tables(file.parent)  # restored: loads again


def test_flipped_byte_in_a_manifest_description_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "tables"
    shutil.copytree(shipped_tables_path(), dest, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    costing.load_tables(dest)  # the untouched copy loads
    manifest = dest / "mff" / "2026-27" / "manifest.json"
    text = manifest.read_bytes()
    at = text.index(b'"description": "') + len(b'"description": "')
    tampered = bytearray(text)
    tampered[at] ^= 0x01  # one letter becomes another
    manifest.write_bytes(bytes(tampered))
    with pytest.raises(TableIntegrityError, match="mff/2026-27/manifest.json"):
        costing.load_tables(dest)
