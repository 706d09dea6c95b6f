"""Pricing rules, one test per rule, with the arithmetic written in each test.

Real figures come from the shipped 2017/18 National Schedule of Reference Costs (values
quoted in docs/domain.md#verified-figures); tariff rules use invented fixture prices.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from costing import CostingConfig, Status
from tests.fixtures.tables import (
    D,
    apc,
    apc_rows,
    frame,
    load,
    write_index,
    write_mff,
    write_reference_costs,
    write_tariff,
    write_trimpoints,
)

PROVIDER_1718 = CostingConfig(perspective="provider", reference_cost_edition="2017-18")


def _has_trimpoints(tables: costing.TableSet) -> bool:
    return "2017-18" in tables.editions("trimpoints")


# --------------------------------------------------------------------------------------
# real figures, provider perspective, shipped 2017/18 schedule
# --------------------------------------------------------------------------------------


def test_provider_emergency_dz11v_12_days_real_schedule(shipped_tables: costing.TableSet) -> None:
    if not _has_trimpoints(shipped_tables):
        pytest.fail("shipped tables lack the 2017-18 trim points")
    # NEL DZ11V 1,580.53 + (12 - trim 8) x NEL_XS 291.63 = 2,747.06 (unrounded unit costs)
    out = costing.price(frame(apc(los=12, method="21", hrg="DZ11V")), shipped_tables, PROVIDER_1718)
    row = out.row(0, named=True)
    assert round(row["cost"], 2) == 2747.06
    assert row["excess_bed_days"] == 4
    assert round(row["base_price"], 2) == 1580.53
    assert row["status"] == Status.PRICED_REFERENCE_COST
    assert row["reference_cost_edition"] == "2017-18"


def test_provider_elective_hn12f_9_days_real_schedule(shipped_tables: costing.TableSet) -> None:
    # EL HN12F 6,060.96 + (9 - trim 7) x EL_XS 412.76 = 6,886.48
    out = costing.price(frame(apc(los=9, method="11", hrg="HN12F")), shipped_tables, PROVIDER_1718)
    assert round(out["cost"][0], 2) == 6886.48
    assert out["pod"][0] == "EL"


def test_provider_emergency_aa22c_60_days_real_schedule(shipped_tables: costing.TableSet) -> None:
    # issue 3: an emergency 60-day AA22C = 11,346.30 (NEL + (60 - 46) x NEL_XS)
    out = costing.price(frame(apc(los=60, method="21", hrg="AA22C")), shipped_tables, PROVIDER_1718)
    assert round(out["cost"][0], 2) == 11346.30
    assert out["excess_bed_days"][0] == 60 - 46


def test_provider_short_stay_uses_nes_and_day_case_uses_dc(shipped_tables: costing.TableSet) -> None:
    # DZ11V NES 439.56 for LOS 1 (< threshold 2); HN12F DC 2,811.53 for a day case
    out = costing.price(
        frame(apc("a", los=1, method="21", hrg="DZ11V"), apc("b", los=0, method="11", cls="2", hrg="HN12F")),
        shipped_tables, PROVIDER_1718,
    )
    assert [round(c, 2) for c in out["cost"]] == [439.56, 2811.53]
    assert out["pod"].to_list() == ["NEL", "DC"]


def test_provider_ae_t01a_vb01z_real_schedule(shipped_tables: costing.TableSet) -> None:
    rec = {"record_id": "ae1", "patient_id": "p", "setting": "ae", "activity_date": D(2017, 6, 1),
           "hrg_code": "VB01Z", "hrg_version": "HRG4", "department_type": "01", "ae_admitted": True}
    out = costing.price(frame(rec), shipped_tables, PROVIDER_1718)
    assert round(out["cost"][0], 2) == 399.46
    assert out["pod"][0] == "AE_T12"
    assert out["cost_category"][0] == "ae"


# --------------------------------------------------------------------------------------
# purchaser rules on fixture tariffs
# --------------------------------------------------------------------------------------


@pytest.fixture
def fixture_tables(tmp_path: Path) -> costing.TableSet:
    write_tariff(tmp_path, "2017-18", apc_rows(
        # invented prices: NEL 1000, trim 5, 200/day, short stay 300
        dict(hrg_code="DZ11V", nel_price=1000.0, nel_trim_days=5, excess_bed_day_price=200.0,
             sse_applicable=True, sse_percent=30.0, sse_price=300.0),
        # separate DC 500 / EL 800 prices, elective trim 3
        dict(hrg_code="HN12F", dc_price=500.0, el_price=800.0, el_trim_days=3,
             excess_bed_day_price=100.0),
        # combined DC/EL price 650 alongside separate ones (combined wins)
        dict(hrg_code="FZ22Z", combined_dc_el_price=650.0, dc_price=1.0, el_price=2.0),
        # an HRG in the tariff with no price for any POD
        dict(hrg_code="WA14Z"),
        dict(hrg_code="BZ23Z", op_procedure_price=120.0),
    ), op_attendance=pl.DataFrame({
        "treatment_function_code": ["100"], "treatment_function_description": ["General Surgery"],
        "first_single_price": [160.0], "first_multi_price": [200.0],
        "followup_single_price": [80.0], "followup_multi_price": [110.0],
    }), ae=pl.DataFrame({"hrg_code": ["VB01Z"], "hrg_name": ["x"], "type_1_2_price": [250.0],
                         "type_3_price": [70.0]}))
    write_reference_costs(tmp_path, "2017-18", [
        ("EL", None, "HN12F", 6060.96), ("NEL", None, "WA14Z", 900.0), ("NES", None, "WA14Z", 400.0),
        ("NEL", None, "XX01A", 1234.0), ("TOTAL", None, "YY01A", 777.0), ("CL", "100", "WF01B", 150.0),
        ("AE", "T04NA", "VB01Z", 60.0),
    ])
    write_trimpoints(tmp_path, "2017-18", {"WA14Z": 4})
    write_mff(tmp_path, "2026-27", {"RAA": 1.10, "RBB": 0.95})
    write_index(tmp_path, "2025-26", "gdp_deflator", {"2017-18": 80.0, "2024-25": 100.0})
    return load(tmp_path)


PURCHASER = CostingConfig(tariff_edition="2017-18", reference_cost_edition="2017-18")


def _price(tables: costing.TableSet, *records: dict, cfg: CostingConfig = PURCHASER) -> pl.DataFrame:
    return costing.price(frame(*records), tables, cfg)


def test_short_stay_emergency_applies_from_age_19(fixture_tables: costing.TableSet) -> None:
    # LOS 1, emergency: age 45 -> reduced price 300; age 17 -> full NEL price 1000
    out = _price(fixture_tables, apc("adult", los=1, age=45), apc("child", los=1, age=17))
    assert out["cost"].to_list() == [300.0, 1000.0]
    assert out["short_stay_applied"].to_list() == [True, False]


def test_short_stay_emergency_needs_los_below_2(fixture_tables: costing.TableSet) -> None:
    # LOS 1 -> 300 (short stay); LOS 2 -> 1000 (full price, under the trim point of 5)
    out = _price(fixture_tables, apc("a", los=1), apc("b", los=2))
    assert out["cost"].to_list() == [300.0, 1000.0]


def test_maternity_admission_not_eligible_for_short_stay(fixture_tables: costing.TableSet) -> None:
    # method 31 (maternity) is NEL but not emergency: full price 1000
    out = _price(fixture_tables, apc(los=0, method="31"))
    assert out["cost"][0] == 1000.0
    assert out["pod"][0] == "NEL"
    assert out["short_stay_applied"][0] is False


def test_short_stay_can_be_turned_off(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"short_stay_emergency": False})
    assert _price(fixture_tables, apc(los=1), cfg=cfg)["cost"][0] == 1000.0


def test_long_stay_trim_boundary(fixture_tables: costing.TableSet) -> None:
    # trim 5: LOS 5 -> 1000 + 0; LOS 6 -> 1000 + 1 x 200 = 1200
    out = _price(fixture_tables, apc("a", los=5), apc("b", los=6))
    assert out["cost"].to_list() == [1000.0, 1200.0]
    assert out["excess_bed_days"].to_list() == [0, 1]
    assert out["excess_bed_day_cost"].to_list() == [0.0, 200.0]


def test_long_stay_can_be_turned_off(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"long_stay": False})
    assert _price(fixture_tables, apc(los=20), cfg=cfg)["cost"][0] == 1000.0


def test_separate_day_case_and_elective_prices(fixture_tables: costing.TableSet) -> None:
    # no combined price: day case -> DC 500; ordinary elective LOS 2 -> EL 800 (never 1300)
    out = _price(fixture_tables, apc("dc", los=0, method="11", cls="2", hrg="HN12F"),
                 apc("el", los=2, method="11", cls="1", hrg="HN12F"))
    assert out["cost"].to_list() == [500.0, 800.0]
    assert out["pod"].to_list() == ["DC", "EL"]
    assert out["cost_category"].to_list() == ["elective", "elective"]


def test_combined_price_used_for_both_day_case_and_elective(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc("dc", method="12", cls="2", hrg="FZ22Z"),
                 apc("el", los=1, method="12", cls="1", hrg="FZ22Z"))
    assert out["cost"].to_list() == [650.0, 650.0]


def test_elective_excess_bed_days_beyond_elective_trim(fixture_tables: costing.TableSet) -> None:
    # EL 800, elective trim 3, 100/day: LOS 5 -> 800 + 2 x 100 = 1000
    out = _price(fixture_tables, apc(los=5, method="11", hrg="HN12F"))
    assert out["cost"][0] == 1000.0


def test_fallback_to_reference_cost_when_tariff_has_no_price(fixture_tables: costing.TableSet) -> None:
    # WA14Z is in the tariff without a price: NEL reference cost 900 + (6 - trim 4) x no XS
    # price (none in the fixture) = 900; LOS 1 -> NES 400
    out = _price(fixture_tables, apc("a", los=6, hrg="WA14Z"), apc("b", los=1, hrg="WA14Z"))
    assert out["cost"].to_list() == [900.0, 400.0]
    assert out["status"].to_list() == [Status.PRICED_REFERENCE_COST_FALLBACK] * 2
    assert out["cost_source"].to_list() == ["reference_cost"] * 2


def test_nes_threshold_is_configurable(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"nes_los_threshold": 3})
    out = _price(fixture_tables, apc("a", los=2, hrg="WA14Z"), cfg=cfg)
    assert out["cost"][0] == 400.0  # LOS 2 < 3 -> NES


def test_unpriced_statuses_are_distinct(fixture_tables: costing.TableSet) -> None:
    out = _price(
        fixture_tables,
        apc("missing", hrg=None),
        apc("ungroupable", hrg="UZ01Z"),
        apc("notfound", hrg="ZZ99Z"),
        apc("nopod", hrg="FZ22Z"),  # NEL, but FZ22Z has only DC/EL prices and no reference cost
        apc("invalid", method="77"),
    )
    assert out["status"].to_list() == [
        Status.HRG_MISSING, Status.HRG_UNGROUPABLE, Status.HRG_NOT_FOUND,
        Status.NO_PRICE_FOR_POD, Status.INVALID_RECORD,
    ]
    assert out["cost"].null_count() == 5
    assert "admission_method: unknown admission method" in out["invalid_reason"][4]


def test_hrg_version_mismatch_is_its_own_status(fixture_tables: costing.TableSet) -> None:
    # a v3.5 code against HRG4 tables (both levels) -> mismatch, not "not found"
    out = _price(fixture_tables, apc(hrg="H02", version="v3.5"))
    assert out["status"][0] == Status.HRG_VERSION_MISMATCH
    assert out["cost"][0] is None


def test_v35_tariff_prices_v35_records(tmp_path: Path) -> None:
    write_tariff(tmp_path, "2008-09", apc_rows(dict(hrg_code="H02", nel_price=2500.0)),
                 hrg_version="v3.5")
    write_reference_costs(tmp_path, "2017-18", [("NEL", None, "HN12F", 1.0)])
    tables = load(tmp_path)
    cfg = CostingConfig(tariff_edition="2008-09", reference_cost_edition="2017-18")
    out = costing.price(frame(apc("a", hrg="H02", version="v3.5", los=3),
                              apc("b", hrg="HN12F", version="HRG4", los=3)), tables, cfg)
    assert out["cost"].to_list() == [2500.0, 1.0]
    assert out["hrg_version_used"].to_list() == ["v3.5", "HRG4"]


def test_total_hrg_average_as_declared_last_resort(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"chain": ("tariff", "reference_cost", "total_hrg_average")})
    out = _price(fixture_tables, apc(hrg="YY01A", los=30), cfg=cfg)
    assert out["cost"][0] == 777.0  # never plus bed days
    assert out["status"][0] == Status.PRICED_LAST_RESORT_AVERAGE
    assert out["cost_source"][0] == "total_hrg_average"
    without = _price(fixture_tables, apc(hrg="YY01A", los=30))
    assert without["status"][0] == Status.HRG_NOT_FOUND


def test_tariff_after_reference_cost_chain(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"chain": ("reference_cost", "tariff")})
    out = _price(fixture_tables, apc("rc", hrg="WA14Z", los=6), apc("t", los=2), cfg=cfg)
    assert out["status"].to_list() == [Status.PRICED_REFERENCE_COST,
                                       Status.PRICED_TARIFF_AFTER_REFERENCE_COST]
    assert out["cost"].to_list() == [900.0, 1000.0]


def test_mff_changes_only_tariff_priced_rows(fixture_tables: costing.TableSet) -> None:
    records = (apc("t", los=2, provider="RAA"), apc("rc", hrg="WA14Z", los=6, provider="RAA"),
               apc("t2", los=2, provider="RBB"))
    off = _price(fixture_tables, *records)
    on = _price(fixture_tables, *records, cfg=PURCHASER.model_copy(update={"mff": True}))
    # tariff 1000 x 1.10 = 1100; reference cost unchanged; 1000 x 0.95 = 950
    assert off["cost"].to_list() == [1000.0, 900.0, 1000.0]
    assert on["cost"].to_list() == pytest.approx([1100.0, 900.0, 950.0])
    assert on["mff_factor"].to_list() == [1.10, None, 0.95]


def test_inflation_to_price_base(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"price_base": "2024-25", "index": "gdp_deflator"})
    out = _price(fixture_tables, apc(los=2), cfg=cfg)
    # 1000 at 2017-18 prices x 100 / 80 = 1250 at 2024-25 prices
    assert out["cost"][0] == pytest.approx(1250.0)
    assert out["inflation_factor"][0] == pytest.approx(1.25)


def test_outpatient_attendance_and_procedure(fixture_tables: costing.TableSet) -> None:
    base = {"patient_id": "p", "setting": "op", "activity_date": D(2017, 6, 1),
            "treatment_function_code": "100", "attended": "5", "hrg_version": "HRG4"}
    out = _price(
        fixture_tables,
        {**base, "record_id": "first", "first_attendance": "1", "hrg_code": "WF01B"},
        {**base, "record_id": "fu_multi", "first_attendance": "2", "multi_professional": True},
        {**base, "record_id": "proc", "first_attendance": "2", "hrg_code": "BZ23Z"},
        {**base, "record_id": "dna", "first_attendance": "1", "attended": "3"},
    )
    # first single 160; follow-up multi 110; procedure 120 replaces the attendance; DNA 0
    assert out["cost"].to_list() == [160.0, 110.0, 120.0, 0.0]
    assert out["pod"].to_list() == ["OP_FIRST", "OP_FOLLOWUP", "OP_PROC", "OP_FIRST"]
    assert out["status"][3] == Status.EXCLUDED_NOT_ATTENDED
    assert out["cost_source"][3] == "excluded"


def test_ae_by_department_type(fixture_tables: costing.TableSet) -> None:
    base = {"patient_id": "p", "setting": "ae", "activity_date": D(2017, 6, 1),
            "hrg_code": "VB01Z", "hrg_version": "HRG4"}
    out = _price(fixture_tables, *[{**base, "record_id": t, "department_type": t}
                                   for t in ("01", "02", "03", "04")])
    # types 1-2 250, type 3 70, type 4 no tariff -> reference cost T04NA 60
    assert out["cost"].to_list() == [250.0, 250.0, 70.0, 60.0]
    assert out["status"][3] == Status.PRICED_REFERENCE_COST_FALLBACK


# --------------------------------------------------------------------------------------
# editions: fixed and dated
# --------------------------------------------------------------------------------------


def test_dated_mode_across_31_march_1_april(tmp_path: Path) -> None:
    write_tariff(tmp_path, "2016-17", apc_rows(dict(hrg_code="DZ11V", nel_price=900.0)))
    write_tariff(tmp_path, "2017-18", apc_rows(dict(hrg_code="DZ11V", nel_price=1000.0)))
    write_reference_costs(tmp_path, "2017-18", [("NEL", None, "XX01A", 1.0)])
    tables = load(tmp_path)
    cfg = CostingConfig()  # tariff and reference costs both dated
    out = costing.price(frame(apc("mar", admit=D(2017, 3, 31), los=3),
                              apc("apr", admit=D(2017, 4, 1), los=3),
                              apc("old", admit=D(2015, 6, 1), los=3)), tables, cfg)
    assert out["cost"].to_list() == [900.0, 1000.0, None]
    assert out["tariff_edition"].to_list() == ["2016-17", "2017-18", None]
    # 2015: no tariff edition and no reference-cost edition in force -> its own status
    assert out["status"][2] == Status.NO_EDITION_FOR_DATE
    assert out["reference_cost_edition"].to_list() == [None, "2017-18", None]


def test_dated_mode_by_discharge_date(tmp_path: Path) -> None:
    write_tariff(tmp_path, "2016-17", apc_rows(dict(hrg_code="DZ11V", nel_price=900.0)))
    write_tariff(tmp_path, "2017-18", apc_rows(dict(hrg_code="DZ11V", nel_price=1000.0)))
    write_reference_costs(tmp_path, "2017-18", [("NEL", None, "XX01A", 1.0)])
    tables = load(tmp_path)
    cfg = CostingConfig(reference_cost_edition="2017-18", apc_date="discharge")
    out = costing.price(frame(apc("span", admit=D(2017, 3, 30), los=3)), tables, cfg)
    assert out["cost"][0] == 1000.0  # discharged 2 April 2017


def test_fixed_mode_prices_every_year_at_one_edition(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc("a", admit=D(2008, 6, 1), los=2), apc("b", admit=D(2024, 6, 1), los=2))
    assert out["cost"].to_list() == [1000.0, 1000.0]


def test_unknown_fixed_edition_is_an_error(fixture_tables: costing.TableSet) -> None:
    with pytest.raises(costing.EditionNotFoundError, match="2099-00"):
        _price(fixture_tables, apc(), cfg=CostingConfig(tariff_edition="2099-00"))


# --------------------------------------------------------------------------------------
# spells, validation, output shape
# --------------------------------------------------------------------------------------


def test_multi_episode_spell_priced_once(fixture_tables: costing.TableSet) -> None:
    eps = [
        apc("e1", los=6, spell_id="S1", episode_order=1, hrg="HN12F", spell_hrg_code="DZ11V"),
        apc("e2", los=6, spell_id="S1", episode_order=2, hrg="WA14Z"),
        apc("single", los=2, spell_id="S2"),
    ]
    out = _price(fixture_tables, *eps)
    # S1: one spell, spell HRG DZ11V, LOS 6, trim 5 -> 1000 + 200 = 1200; S2: 1000
    assert out.height == 2
    assert out["record_id"].to_list() == ["e1", "single"]
    assert out["n_episodes"].to_list() == [2, 1]
    assert out["cost"].to_list() == [1200.0, 1000.0]


def test_spells_from_provider_patient_admission_date(fixture_tables: costing.TableSet) -> None:
    d = D(2017, 6, 1)
    eps = [
        apc("e2", los=2, episode_order=2, admit=d, hrg="WA14Z", patient="p1"),
        apc("e1", los=2, episode_order=1, admit=d, patient="p1"),
        apc("other_patient", los=2, admit=d, patient="p2"),
    ]
    out = _price(fixture_tables, *eps, cfg=PURCHASER.model_copy(update={"spell_hrg": "first_episode"}))
    assert out.height == 2
    assert sorted(out["n_episodes"].to_list()) == [1, 2]
    # first episode by episode_order is e1 (HRG DZ11V): priced 1000
    spell = out.filter(pl.col("n_episodes") == 2).row(0, named=True)
    assert spell["record_id"] == "e1" and spell["cost"] == 1000.0


@pytest.mark.parametrize("by_slices", [True, False])
@pytest.mark.parametrize("pieces", [1, 2, 3, 100])
def test_spell_key_names_merged_spells_only_and_spell_values_land_on_the_head(
        fixture_tables: costing.TableSet, by_slices: bool, pieces: int) -> None:
    d = D(2017, 6, 1)
    eps = [
        apc("lone", los=2),
        apc("s1_second", los=3, admit=d + dt.timedelta(days=3), spell_id="S1", episode_order=2, hrg="WA14Z"),
        apc("declared", los=1, spell_hrg_code="WA14Z"),  # alone, but its spell HRG is declared
        apc("k_first", los=2, admit=d, patient="p9", episode_order=1),
        apc("s1_first", los=3, admit=d, spell_id="S1", episode_order=1, spell_hrg_code="DZ11V"),
        apc("k_second", los=4, admit=d, patient="p9", episode_order=2, hrg="WA14Z"),
        {"record_id": "o1", "patient_id": "p1", "setting": "op", "activity_date": d,
         "treatment_function_code": "100", "first_attendance": "1", "attended": "5"},
    ]
    df = frame(*eps)
    held = pl.concat([df.slice(i, pieces) for i in range(0, df.height, pieces)], rechunk=False)
    # few changed rows: slices; many: a copy
    options = costing.EngineOptions(drop_by_slices=1 << 30 if by_slices else 0)
    out = costing.price(held, fixture_tables, PURCHASER, options=options)
    assert_frame_equal(out, costing.price_lazy(df.lazy(), fixture_tables, PURCHASER).collect())
    got = {r["record_id"]: r for r in out.iter_rows(named=True)}
    # each spell at its first episode's place, in input order
    assert out["record_id"].to_list() == ["lone", "declared", "k_first", "s1_first", "o1"]
    assert {k: v["spell_key"] for k, v in got.items()} == {
        "lone": None, "declared": None, "o1": None,
        "k_first": "K|RXX|p9|2017-06-01", "s1_first": "S|S1"}
    assert {k: v["n_episodes"] for k, v in got.items()} == {
        "lone": 1, "declared": 1, "o1": 1, "k_first": 2, "s1_first": 2}
    # the spell's HRG (declared, else the first episode's under the "column" rule for a lone
    # episode) and the discharge date of its last episode
    assert got["declared"]["hrg_code"] == "WA14Z" and got["lone"]["hrg_code"] == "DZ11V"
    assert got["s1_first"]["hrg_code"] == "DZ11V"
    assert got["s1_first"]["discharge_date"] == d + dt.timedelta(days=6)
    assert got["k_first"]["discharge_date"] == d + dt.timedelta(days=4)
    assert got["s1_first"]["los_days"] == 6 and got["k_first"]["los_days"] == 4


@pytest.mark.parametrize("with_spell_ids", [False, True])
def test_episodes_without_a_full_key_stay_alone_and_keyed_ones_merge(
        fixture_tables: costing.TableSet, with_spell_ids: bool) -> None:
    # in memory the key parts are hashed as they are when no record has a spell id (else
    # each part only where the spell id is null): episodes missing a part never merge,
    # even with equal other parts, and those sharing provider, patient and date do
    d = D(2017, 6, 1)
    eps = [
        apc("k1", los=1, admit=d, patient="p9", episode_order=1),
        apc("no_provider_a", los=1, admit=d, patient="p8", provider=None),
        apc("k2", los=3, admit=d, patient="p9", episode_order=2),
        apc("no_provider_b", los=2, admit=d, patient="p8", provider=None),
        apc("no_patient", los=1, admit=d, patient=None),
    ]
    if with_spell_ids:
        eps.append(apc("s_only", los=2, admit=d + dt.timedelta(days=9), spell_id="S7", provider=None))
    out = costing.price(frame(*eps), fixture_tables, PURCHASER)
    got = {r["record_id"]: (r["n_episodes"], r["spell_key"], r["discharge_date"]) for r in out.iter_rows(named=True)}
    expected = {"k1": (2, "K|RXX|p9|2017-06-01", d + dt.timedelta(days=3)),
                "no_provider_a": (1, None, d + dt.timedelta(days=1)),
                "no_provider_b": (1, None, d + dt.timedelta(days=2)),
                "no_patient": (1, None, d + dt.timedelta(days=1))}
    if with_spell_ids:
        expected["s_only"] = (1, None, d + dt.timedelta(days=11))
    assert got == expected
    assert_frame_equal(out, costing.price_lazy(frame(*eps).lazy(), fixture_tables, PURCHASER).collect())


def test_multi_episode_spell_without_spell_hrg_is_hrg_missing(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc("e1", spell_id="S", patient="p1"),
                 apc("e2", spell_id="S", patient="p1"))
    assert out["status"].to_list() == [Status.HRG_MISSING]


def test_episode_level_pricing_for_provider(fixture_tables: costing.TableSet) -> None:
    cfg = CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    out = _price(fixture_tables, apc("e1", spell_id="S", hrg="WA14Z", los=1),
                 apc("e2", spell_id="S", hrg="WA14Z", los=1), cfg=cfg)
    assert out.height == 2 and out["cost"].to_list() == [400.0, 400.0]


def test_strict_mode_reports_every_failure(fixture_tables: costing.TableSet) -> None:
    bad = [apc("a", method="77"), apc("b", los=-2), apc("c", cls="7", patient=None)]
    with pytest.raises(costing.ValidationError) as exc:
        _price(fixture_tables, *bad, cfg=PURCHASER.model_copy(update={"strict": True}))
    f = exc.value.failures
    assert set(zip(f["row"].to_list(), f["column"].to_list())) == {
        (1, "admission_method"), (2, "discharge_date"), (3, "patient_classification"),
        (3, "patient_id"),
    }


def test_lenient_mode_keeps_every_row_with_a_status(fixture_tables: costing.TableSet) -> None:
    bad = [apc("a", method="77"), apc("b", los=-2), apc("c", los=99999), apc("d", hrg="12345")]
    out = _price(fixture_tables, *bad)
    assert out.height == 4
    assert out["status"].to_list() == [Status.INVALID_RECORD] * 4
    assert out["cost"].null_count() == 4


def test_hes_dummy_dates_make_the_record_invalid(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc(admit=dt.date(1800, 1, 1), los=1))
    assert out["status"][0] == Status.INVALID_RECORD
    assert "HES dummy date" in out["invalid_reason"][0]


@pytest.mark.parametrize("flawed", [False, True])
def test_checks_ruled_out_by_column_statistics_still_fire_where_they_apply(
        fixture_tables: costing.TableSet, flawed: bool) -> None:
    # In memory, a check whose column statistics prove it never fails (no null in a required
    # column, no date as early as a dummy date) is a constant; the lazy path evaluates every
    # check on every row, so the two must agree with and without a flawed record.
    records = [apc("a", los=2), apc("b", hrg="WA14Z", los=6)]
    if flawed:
        records += [apc("c", patient=None), apc("d", admit=dt.date(1582, 10, 15), los=0)]
    activity = frame(*records)
    out = costing.price(activity, fixture_tables, PURCHASER)
    assert_frame_equal(out, costing.price_lazy(activity.lazy(), fixture_tables, PURCHASER).collect())
    reasons = dict(zip(out["record_id"], out["invalid_reason"], strict=True))
    assert reasons["a"] is None and reasons["b"] is None
    if flawed:
        assert reasons["c"] == "patient_id: missing patient_id"
        assert "activity_date: HES dummy date" in reasons["d"]


def test_output_keeps_input_columns_and_appends_priced_columns(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc(los=2, my_extra="keep me"))
    assert out["my_extra"][0] == "keep me"
    for col, dtype in costing.schema.PRICED_COLUMNS.items():
        assert out.schema[col] == dtype, col


# --------------------------------------------------------------------------------------
# regressions
# --------------------------------------------------------------------------------------


def test_two_files_with_the_same_source_rows_lose_nothing(fixture_tables: costing.TableSet) -> None:
    # each file of a multi-file extract numbers its rows from 1: spells must not merge them
    a = frame(apc("a1", los=2), apc("a2", los=2)).with_columns(source_row=pl.Series([1, 2]))
    b = frame(apc("b1", los=2), apc("b2", los=2)).with_columns(source_row=pl.Series([1, 2]))
    op = frame({"record_id": "o1", "patient_id": "p", "setting": "op", "activity_date": D(2017, 6, 1),
                "treatment_function_code": "100", "first_attendance": "1", "attended": "5"}
               ).with_columns(source_row=pl.Series([1]))
    out = costing.price(pl.concat([a, b, op], how="diagonal_relaxed"), fixture_tables, PURCHASER)
    assert out["record_id"].to_list() == ["a1", "a2", "b1", "b2", "o1"]
    assert out["cost"].to_list() == [1000.0] * 4 + [160.0]


def test_ae_pods_share_types_1_and_2(fixture_tables: costing.TableSet) -> None:
    base = {"patient_id": "p", "setting": "ae", "activity_date": D(2017, 6, 1), "hrg_code": "VB01Z"}
    out = _price(fixture_tables, *[{**base, "record_id": t, "department_type": t}
                                   for t in ("01", "02", "03", "04", "99")])
    assert out["pod"].to_list() == ["AE_T12", "AE_T12", "AE_T3", "AE_T4", None]
    assert set(out["pod"].drop_nulls()) <= set(costing.schema.POD_CODES)


def test_invalid_first_attendance_has_no_follow_up_pod(fixture_tables: costing.TableSet) -> None:
    rec = {"record_id": "x", "patient_id": "p", "setting": "op", "activity_date": D(2017, 6, 1),
           "treatment_function_code": "100", "first_attendance": "9", "attended": "5"}
    out = _price(fixture_tables, rec)
    assert out["status"][0] == Status.INVALID_RECORD and out["pod"][0] is None


def test_missing_setting_is_an_invalid_record(fixture_tables: costing.TableSet) -> None:
    out = _price(fixture_tables, apc("a", los=2), {**apc("b", los=2), "setting": None})
    assert out.height == 2
    assert out["status"].to_list() == [Status.PRICED_TARIFF, Status.INVALID_RECORD]


def test_mff_without_a_factor_for_the_provider_is_its_own_status(fixture_tables: costing.TableSet) -> None:
    cfg = PURCHASER.model_copy(update={"mff": True})
    out = _price(fixture_tables, apc("known", los=2, provider="RAA"), apc("unknown", los=2, provider="RZZ"),
                 apc("rc", hrg="WA14Z", los=6, provider="RZZ"), cfg=cfg)
    assert out["status"].to_list() == [Status.PRICED_TARIFF, Status.NO_MFF_FOR_PROVIDER,
                                       Status.PRICED_REFERENCE_COST_FALLBACK]
    assert out["cost"][0] == pytest.approx(1100.0) and out["cost"][1] is None
    assert out["cost"][2] == 900.0


def test_department_wide_reference_cost_when_no_service_split(tmp_path: Path) -> None:
    # National Cost Collection layout: service_code null for CL, OPROC and AE rows
    write_reference_costs(tmp_path, "2023-24", [
        ("CL", None, "WF01B", 192.0), ("OPROC", None, "BZ23Z", 140.0), ("AE", None, "VB01Z", 333.18),
    ])
    tables = load(tmp_path)
    cfg = CostingConfig(perspective="provider", reference_cost_edition="2023-24")
    base = {"patient_id": "p", "activity_date": D(2023, 6, 1), "hrg_version": "HRG4"}
    out = costing.price(frame(
        {**base, "record_id": "att", "setting": "op", "treatment_function_code": "100",
         "first_attendance": "1", "attended": "5"},
        {**base, "record_id": "proc", "setting": "op", "treatment_function_code": "100",
         "first_attendance": "2", "attended": "5", "hrg_code": "BZ23Z"},
        {**base, "record_id": "ae", "setting": "ae", "department_type": "01", "hrg_code": "VB01Z"},
    ), tables, cfg)
    assert out["cost"].to_list() == [192.0, 140.0, 333.18]


def test_episode_los_from_episode_dates_for_provider(fixture_tables: costing.TableSet) -> None:
    # two episodes of one 6-day spell: 1 + 5 days; per episode, NES (LOS 1 < 2) then NEL
    cfg = CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    d = D(2017, 6, 1)
    e1 = apc("e1", los=6, hrg="WA14Z", episode_start=d, episode_end=D(2017, 6, 2))
    e2 = apc("e2", los=6, hrg="WA14Z", episode_start=D(2017, 6, 2), episode_end=D(2017, 6, 7))
    out = _price(fixture_tables, e1, e2, cfg=cfg)
    assert out["los_days"].to_list() == [1, 5]
    # e1: NES 400; e2: NEL 900 + (5 - trim 4) x no XS price in the fixture = 900
    assert out["cost"].to_list() == [400.0, 900.0]


def test_codes_are_trimmed_cased_and_blanks_become_null() -> None:
    from costing.activity import canonicalise

    df = pl.DataFrame({"record_id": ["a", "b", "c"], "setting": [" AE", "ae", "ae"],
                       "department_type": ["", " 1", "03 "], "hrg_code": [" vb01z ", "", None]})
    out = canonicalise(df).collect()
    assert out["setting"].to_list() == ["ae", "ae", "ae"]
    assert out["department_type"].to_list() == [None, "01", "03"]
    assert out["hrg_code"].to_list() == ["VB01Z", None, None]
