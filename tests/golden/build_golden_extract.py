"""The golden pricing extract: a small synthetic canonical extract, its tables and scenarios.

Every point of delivery, setting and reachable status code (``costing.status.Status``) is
covered, with the edge cases named in each record's ``case``: trim boundary, short stay
(age 17/19/45), DNA, U-code, HRG version mismatch, no edition for the date (also across
31 March / 1 April), invalid records, a multi-episode spell. Records are priced with the
shipped reference costs, trim points, MFF and indices, plus an invented fixture tariff
(2017-18 HRG4 and 2008-09 v3.5) written with ``tests/fixtures/tables.py``, under five
scenarios (``SCENARIOS``). ``tests/golden/test_pricing_golden.py`` compares the result with
the committed ``tests/golden/pricing/priced.csv`` and ``coverage.csv``.

Regenerate (after a deliberate change, then review the diff):
    COSTING_REGENERATE_GOLDEN=1 pytest tests/golden/test_pricing_golden.py
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl

import costing
from costing import CostingConfig
from costing.activity import DUPLICATE_REASON
from costing.schema import ACTIVITY_SCHEMA
from tests.fixtures.tables import apc_rows, write_tariff

__all__ = [
    "GOLDEN_DIR",
    "PRICED_COLUMNS_KEPT",
    "SCENARIOS",
    "build_extract",
    "coverage",
    "golden_tables",
    "price_golden",
    "to_csv_text",
    "write_fixture_tariffs",
]

GOLDEN_DIR = Path(__file__).resolve().parent / "pricing"

#: Scenario name -> configuration. Dated editions unless fixed; purchaser spells.
SCENARIOS: dict[str, CostingConfig] = {
    "purchaser_dated": CostingConfig(),
    "provider_2017_18": CostingConfig(perspective="provider", reference_cost_edition="2017-18"),
    "purchaser_with_total_average": CostingConfig(
        chain=("tariff", "reference_cost", "total_hrg_average")),
    "reference_cost_then_tariff": CostingConfig(chain=("reference_cost", "tariff")),
    "purchaser_mff_nhscii_2022_23": CostingConfig(
        mff=True, mff_edition="2026-27", price_base="2022-23", index="nhscii_pay_prices"),
}

#: Columns written to priced.csv (money rounded to 2 dp, factors to 6 dp).
PRICED_COLUMNS_KEPT = (
    "scenario", "case", "record_id", "setting", "provider_code", "hrg_code", "n_episodes",
    "los_days", "pod", "cost_category", "status", "status_name", "cost_source", "cost",
    "base_price", "excess_bed_days", "excess_bed_day_cost", "short_stay_applied",
    "mff_factor", "inflation_factor", "tariff_edition", "reference_cost_edition",
    "hrg_version_used", "invalid_reason",
)
_MONEY = ("cost", "base_price", "excess_bed_day_cost")
_FACTORS = ("mff_factor", "inflation_factor")

D = dt.date
_JUNE_2017 = D(2017, 6, 1)
MFF_PROVIDER = "R0A"  # in the shipped 2026-27 MFF (factor 1.037386)
NO_MFF_PROVIDER = "ZZZ"  # not in it


# the reading problem read_activity writes for STARTAGE 999 (the age itself is then null)
_BAD_AGE = "age: not an age in years (0-130, or HES 7001-7007 for under one) '999'"


def _apc(case: str, *, hrg: str | None = "DZ11V", method: str = "21", cls: str = "1",
         los: int = 3, admit: dt.date = _JUNE_2017, age: int | None = 50,
         version: str | None = "HRG4", provider: str = MFF_PROVIDER, **extra: Any) -> dict[str, Any]:
    return {"case": case, "setting": "apc", "provider_code": provider, "activity_date": admit,
            "discharge_date": admit + dt.timedelta(days=los), "admission_method": method,
            "patient_classification": cls, "hrg_code": hrg, "hrg_version": version, "age": age,
            **extra}


def _op(case: str, *, tf: str | None = "100", first: str | None = "1", attended: str | None = "5",
        multi: bool | None = False, hrg: str | None = None, day: dt.date = _JUNE_2017) -> dict[str, Any]:
    return {"case": case, "setting": "op", "provider_code": MFF_PROVIDER,
            "activity_date": day, "treatment_function_code": tf, "first_attendance": first,
            "attended": attended, "multi_professional": multi, "hrg_code": hrg,
            "hrg_version": "HRG4", "age": 40}


def _ae(case: str, *, hrg: str | None = "VB01Z", dept: str | None = "01",
        admitted: bool | None = False, day: dt.date = _JUNE_2017) -> dict[str, Any]:
    return {"case": case, "setting": "ae", "provider_code": NO_MFF_PROVIDER,
            "activity_date": day, "hrg_code": hrg, "hrg_version": "HRG4",
            "department_type": dept, "ae_admitted": admitted, "age": 30}


def _records() -> list[dict[str, Any]]:
    return [
        # admitted care: tariff rules (fixture DZ11V: NEL 1000, trim 5, 200/day, SSE 300)
        _apc("nel_tariff_under_trim", los=3),
        _apc("nel_trim_boundary_los_eq_trim", los=5),
        _apc("nel_trim_boundary_los_trim_plus_1", los=6),
        _apc("nel_long_stay", los=12),
        _apc("short_stay_age_45_los_1", los=1, age=45),
        _apc("short_stay_age_19_los_0", los=0, age=19),
        _apc("short_stay_age_17_not_eligible", los=1, age=17),
        _apc("short_stay_los_2_not_eligible", los=2, age=45),
        _apc("maternity_method_no_short_stay", los=1, method="31"),
        _apc("nel_no_mff_factor_provider", los=3, provider=NO_MFF_PROVIDER),
        _apc("day_case_separate_price", hrg="HN12F", method="11", cls="2", los=0),
        _apc("elective_past_elective_trim", hrg="HN12F", method="11", cls="1", los=5),
        _apc("combined_dc_el_price_elective", hrg="FZ22Z", method="12", cls="1", los=1),
        _apc("regular_day_attender_rp", method="11", cls="3", los=0),
        # tariff has no price: reference-cost fallback (real 2017/18 figures)
        _apc("tariff_no_nel_price_rc_fallback", hrg="HN12F", method="21", los=9),
        _apc("hrg_not_in_tariff_rc_fallback_aa22c_60_days", hrg="AA22C", los=60),
        _apc("rc_el_only_nel_total_average", hrg="AA32Z", los=3),
        # not priced
        _apc("no_price_for_pod_anywhere", hrg="FZ22Z", method="21", los=3),
        _apc("hrg_missing", hrg=None),
        _apc("u_code_ungroupable", hrg="UZ01Z"),
        _apc("hrg_not_found", hrg="ZZ99Z"),
        _apc("v35_code_against_hrg4_tables", hrg="H02", version="v3.5"),
        _apc("v35_code_2008_at_v35_tariff", hrg="H02", version="v3.5", admit=D(2008, 6, 1)),
        _apc("no_edition_for_2012_13", admit=D(2012, 6, 1)),  # no reference costs of 2012/13
        _apc("last_day_of_2017_18", admit=D(2018, 3, 31)),
        _apc("first_day_of_2019_20_no_edition", admit=D(2019, 4, 1)),
        _apc("invalid_admission_method", method="77"),
        _apc("invalid_discharge_before_admission", los=-2),
        _apc("invalid_hes_dummy_date", admit=D(1800, 1, 1), los=0),
        _apc("invalid_malformed_hrg", hrg="12345"),
        # a two-episode spell (spell HRG DZ11V, LOS 6) and its second episode
        _apc("spell_episode_1_of_2", hrg="HN12F", los=6, spell_id="S1", episode_order=1,
             spell_hrg_code="DZ11V"),
        _apc("spell_episode_2_of_2", hrg="WA14Z", los=6, spell_id="S1", episode_order=2),
        # outpatients (fixture tf 100: first single 160, follow-up multi 110; BZ23Z proc 120)
        _op("op_first_single"),
        _op("op_followup_multi", first="2", multi=True),
        _op("op_procedure_replaces_attendance", first="2", hrg="BZ23Z"),
        _op("op_dna_excluded", attended="3"),
        _op("op_cancelled_by_patient_excluded", attended="2"),
        _op("op_tf_not_in_tariff_rc_cl", tf="110"),
        _op("op_tf_999_not_in_tariff_rc_cl_999", tf="999"),
        _op("op_invalid_first_attendance", first="9"),
        # A&E (fixture VB01Z: types 1-2 250, type 3 70)
        _ae("ae_type_1"),
        _ae("ae_type_2", dept="02"),
        _ae("ae_type_3", dept="03"),
        _ae("ae_type_4_rc_fallback", dept="04"),
        _ae("ae_hrg_not_in_tariff_admitted_rc", hrg="VB02Z", admitted=True),
        _ae("ae_hrg_missing", hrg=None),
        _ae("ae_invalid_department_type", dept="05"),
        # real HES episodes (issue 17): an episode with its own dates but no DISDATE (priced per
        # episode on them, a spell without discharge date per spell); an unreadable age as
        # read_activity leaves it (blocks the short-stay test only); a TFC that is not a code;
        # a record id repeating g01's as read_activity marks it
        _apc("episode_own_dates_no_discharge_date", los=0, discharge_date=None,
             episode_start=_JUNE_2017, episode_end=_JUNE_2017 + dt.timedelta(days=7)),
        _apc("impossible_age_short_stay", los=1, age=None, invalid_reason=_BAD_AGE),
        _apc("impossible_age_long_stay", los=3, age=None, invalid_reason=_BAD_AGE),
        _op("op_tf_not_a_code", tf="&"),
        _apc("duplicate_record_id_of_g01", los=3, invalid_reason=DUPLICATE_REASON),
        # reference-cost editions lacking a department (2011/12: admitted care only; 2024/25:
        # no outpatient attendance currencies) and A&E at the 2024/25 all-types row
        _op("op_2011_12_no_outpatient_costs", day=D(2011, 6, 1)),
        _ae("ae_2011_12_no_ae_costs", day=D(2011, 6, 1)),
        _apc("rp_2011_12_no_regular_attender_costs", hrg="AA02A", method="11", cls="3", los=0,
             admit=D(2011, 6, 1)),
        _op("op_2024_25_no_attendance_currencies", day=D(2024, 6, 1)),
        _ae("ae_2024_25_all_types_row", day=D(2024, 6, 1)),
    ]


def build_extract() -> pl.DataFrame:
    """The golden extract: canonical activity columns plus ``case``; ids g01, g02, ..."""
    recs = _records()
    data: dict[str, list[Any]] = {"case": [r["case"] for r in recs]}
    data.update({c: [r.get(c) for r in recs] for c in (*ACTIVITY_SCHEMA, "invalid_reason")})
    data["record_id"] = [f"g{i:02d}" if r["case"] != "duplicate_record_id_of_g01" else "g01"
                         for i, r in enumerate(recs, start=1)]
    data["patient_id"] = [f"p{i:02d}" for i in range(1, len(recs) + 1)]
    # the two episodes of spell S1 belong to one patient
    s1 = [i for i, r in enumerate(recs) if r.get("spell_id") == "S1"]
    for i in s1:
        data["patient_id"][i] = data["patient_id"][s1[0]]
    return pl.DataFrame(data, schema={"case": pl.String, **ACTIVITY_SCHEMA, "invalid_reason": pl.String})


def write_fixture_tariffs(root: Path) -> None:
    """Invented tariffs: 2017-18 (HRG4: APC, OP, A&E) and 2008-09 (v3.5, one HRG)."""
    write_tariff(root, "2017-18", apc_rows(
        {"hrg_code": "DZ11V", "nel_price": 1000.0, "nel_trim_days": 5, "excess_bed_day_price": 200.0,
             "sse_applicable": True, "sse_percent": 30.0, "sse_price": 300.0},
        {"hrg_code": "HN12F", "dc_price": 500.0, "el_price": 800.0, "el_trim_days": 3,
             "excess_bed_day_price": 100.0},
        {"hrg_code": "FZ22Z", "combined_dc_el_price": 650.0},
        {"hrg_code": "WA14Z"},
        {"hrg_code": "BZ23Z", "op_procedure_price": 120.0},
    ), op_attendance=pl.DataFrame({
        "treatment_function_code": ["100"], "treatment_function_description": ["General Surgery"],
        "first_single_price": [160.0], "first_multi_price": [200.0],
        "followup_single_price": [80.0], "followup_multi_price": [110.0],
    }), ae=pl.DataFrame({"hrg_code": ["VB01Z"], "hrg_name": ["x"], "type_1_2_price": [250.0],
                         "type_3_price": [70.0]}))
    write_tariff(root, "2008-09", apc_rows({"hrg_code": "H02", "nel_price": 2500.0}),
                 hrg_version="v3.5")


def golden_tables(root: Path) -> costing.TableSet:
    """Fixture tariffs written under ``root`` plus the shipped tables but their tariffs (the
    invented 2017-18 tariff stands in for the shipped one)."""
    write_fixture_tariffs(root)
    return costing.TableSet([*costing.load_tables(root), *costing.load_tables().without("tariff")])


def price_golden(tables: costing.TableSet) -> pl.DataFrame:
    """Price the extract under every scenario; kept columns, money at 2 dp."""
    extract = build_extract()
    frames = [
        costing.price(extract, tables, cfg).with_columns(pl.lit(name).alias("scenario"))
        for name, cfg in SCENARIOS.items()
    ]
    out = pl.concat(frames, how="diagonal_relaxed").select(PRICED_COLUMNS_KEPT)
    return out.with_columns(
        *[pl.col(c).round(2) for c in _MONEY],
        *[pl.col(c).round(6) for c in _FACTORS],
    )


def coverage(priced: pl.DataFrame) -> pl.DataFrame:
    """Records and cost (2 dp) per scenario x status."""
    return (
        priced.group_by("scenario", "status", "status_name")
        .agg(pl.len().alias("n_records"), pl.col("cost").sum().round(2).alias("cost"))
        .sort("scenario", "status")
    )


def _two_decimals(c: str) -> pl.Expr:
    """A non-negative money column as text with exactly two decimals (null stays null)."""
    cents = (pl.col(c) * 100).round(0).cast(pl.Int64)
    return pl.concat_str([(cents // 100).cast(pl.String), pl.lit("."),
                          (cents % 100).cast(pl.String).str.zfill(2)]).alias(c)


def to_csv_text(df: pl.DataFrame) -> str:
    """CSV text as committed: money with exactly 2 decimals, factors with up to 6."""
    text = df.with_columns(
        *[_two_decimals(c) for c in _MONEY if c in df.columns],
        *[pl.col(c).cast(pl.String) for c in _FACTORS if c in df.columns],
    ).write_csv(line_terminator="\n")
    return text
