"""Unit costs of activity categories against the National Schedule's own totals, by hand."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import polars as pl
import pytest

import costing
from costing.errors import InputError
from costing.unit_costs import cost_of_change


def _index_sheet(shared: Path) -> dict[str, tuple[float, float, float]]:
    """The schedule's Index sheet: department -> (activity, unit cost, total cost)."""
    path = shared / "reference-costs" / "national-schedule-2016-17.xlsx"
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        out = {}
        for row in wb["Index"].iter_rows(min_row=12, max_row=24, values_only=True):
            values = [v for v in row if v is not None]
            if len(values) == 5:
                out[values[0]] = (values[2], values[3], values[4])
        return out
    finally:
        wb.close()


@pytest.fixture(scope="module")
def uc() -> pl.DataFrame:
    return costing.load_tables().unit_costs("2016-17")


def unit(uc: pl.DataFrame, category: str) -> float:
    return float(uc.filter(pl.col("category") == category)["unit_cost"].item())


def test_day_case_and_elective_against_the_schedule(shared_data: Path, uc: pl.DataFrame) -> None:
    index = _index_sheet(shared_data)
    # Index sheet, 2016-17 (written by hand from the workbook, checked against it here):
    # DC  Day Case                  5,994,769  £735.621486008892  £4,409,880,880.06
    # EL  Elective Inpatients       1,408,148  £3,669.11569869789 £5,166,657,932.89
    # EL_XS Elective excess bed days  408,832  £384.501962860049  £157,196,706.48
    # EM  Emergency Medicine       19,994,760  £148.359911712869  £2,966,420,828.32
    assert index["DC"] == pytest.approx((5_994_769, 735.621486008892, 4_409_880_880.06))
    assert index["EL"] == pytest.approx((1_408_148, 3669.11569869789, 5_166_657_932.89))
    assert index["EL_XS"][2] == pytest.approx(157_196_706.48)
    assert index["EM"] == pytest.approx((19_994_760, 148.359911712869, 2_966_420_828.32))
    assert unit(uc, "day_case") == pytest.approx(735.621486008892, rel=1e-9)
    # an ordinary elective admission carries its excess bed days' cost:
    # (5,166,657,932.89 + 157,196,706.48) / 1,408,148 = 3,780.7494...
    assert unit(uc, "elective_inpatient") == pytest.approx(
        (5_166_657_932.89 + 157_196_706.48) / 1_408_148, rel=1e-9
    )
    assert unit(uc, "ae") == pytest.approx(148.359911712869, rel=1e-9)


def test_unit_costs_are_activity_weighted_and_state_their_basis(uc: pl.DataFrame) -> None:
    assert uc["category"].to_list() == list(costing.unit_costs.UNIT_COST_CATEGORIES)
    assert (uc["unit_cost"] == uc["cost"] / uc["activity"]).all()
    # elective admission = (EL + EL_XS + DC cost) / (EL + DC activity): between its parts
    assert unit(uc, "day_case") < unit(uc, "elective_admission") < unit(uc, "elective_inpatient")
    # the per-type A&E activity adds up to all A&E
    types = uc.filter(pl.col("category").str.starts_with("ae_type_"))
    assert types["activity"].sum() == pytest.approx(unit_row(uc, "ae")["activity"].item())
    assert "NEL_XS" in unit_row(uc, "emergency_admission")["basis"].item()


def unit_row(uc: pl.DataFrame, category: str) -> pl.DataFrame:
    return uc.filter(pl.col("category") == category)


def test_cost_of_change_by_hand(uc: pl.DataFrame) -> None:
    # 87,000 more emergency admissions against a planned fall of 106,000: 193,000 over plan
    out = cost_of_change({"emergency_admission": 87_000 + 106_000, "day_case": -1_000}, uc)
    em, dc = unit(uc, "emergency_admission"), unit(uc, "day_case")
    assert out["cost"].to_list() == pytest.approx([193_000 * em, -1_000 * dc,
                                                   193_000 * em - 1_000 * dc])
    assert out["category"].to_list()[-1] == "total"
    with pytest.raises(InputError, match="no unit cost for 'bed_day'"):
        cost_of_change({"bed_day": 1}, uc)
    with pytest.raises(InputError, match="change"):
        cost_of_change(pl.DataFrame({"category": ["day_case"]}), uc)


def test_an_edition_without_a_department_gives_null_not_an_error() -> None:
    from costing.unit_costs import unit_costs_from_reference

    # a day-case-only extract: 10 FCEs at £500 and 30 at £700 -> (5,000 + 21,000) / 40 = £650
    rc = pl.DataFrame({"department_code": ["DC", "DC"], "service_code": [None, None],
                       "currency_code": ["AA01A", "AA02A"], "activity": [10.0, 30.0],
                       "unit_cost": [500.0, 700.0]}, schema_overrides={"service_code": pl.String})
    out = unit_costs_from_reference(rc, "x")
    assert out.filter(pl.col("category") == "day_case")["unit_cost"].item() == 650.0
    ae = out.filter(pl.col("category") == "ae").row(0, named=True)
    assert ae["unit_cost"] is None and ae["basis"].startswith("not in this edition")


# --- unit costs at tariff prices, weighted by the schedule's activity --------------------------

# National tariff 2016-17, Annex A workbook (written by hand; test_tariff_figures_are_the_
# workbooks checks them against the workbook itself):
#   sheet "1 APC & OPROC": VA10D non-elective spell £6,022, per-day long stay payment £211,
#                          reduced short stay emergency "Yes", £1,807
#                          VA12D non-elective £9,746, long stay £211/day, short stay "No"
#                          NZ19B: not in the sheet (an HRG4+ code of the schedule)
#   sheet "3 A&E":         VB01Z type 1 and 2 departments £246, VB02Z £232; VB99Z not in it
# National schedule of reference costs 2016-17 (shipped table), activity (FCEs; XS: days):
SCHEDULE_2016_17 = {
    ("NEL", None, "VA10D"): 11_795, ("NES", None, "VA10D"): 5_911, ("NEL_XS", None, "VA10D"): 27_474,
    ("NEL", None, "VA12D"): 3_180, ("NES", None, "VA12D"): 633, ("NEL_XS", None, "VA12D"): 4_601,
    ("NEL", None, "NZ19B"): 21_695, ("NES", None, "NZ19B"): 193_575, ("NEL_XS", None, "NZ19B"): 11_408,
    ("AE", "T01A", "VB01Z"): 21_801, ("AE", "T01A", "VB02Z"): 202_250, ("AE", "T01A", "VB99Z"): 178,
    ("AE", "T01NA", "VB01Z"): 14_010, ("AE", "T01NA", "VB02Z"): 74_028, ("AE", "T01NA", "VB99Z"): 946,
}


def _schedule_extract() -> pl.DataFrame:
    rc = costing.load_tables().table("reference_cost", "2016-17", "reference_costs")
    keys = pl.DataFrame([(d, s, c) for d, s, c in SCHEDULE_2016_17],
                        schema={"department_code": pl.String, "service_code": pl.String,
                                "currency_code": pl.String}, orient="row")
    return rc.join(keys, on=["department_code", "service_code", "currency_code"], nulls_equal=True)


def test_tariff_figures_are_the_workbooks(shared_data: Path) -> None:
    wb = openpyxl.load_workbook(shared_data / "tariffs" / "national-tariff-2016-17-annex-a.xlsx",
                                read_only=True)
    try:
        apc = {r[1]: r for r in wb["1 APC & OPROC"].iter_rows(min_row=4, values_only=True)}
        ae = {r[0]: r for r in wb["3 A&E"].iter_rows(min_row=5, values_only=True)}
    finally:
        wb.close()
    # HRG, ..., non-elective, trim point, per day, short stay applicable, %, short stay price
    assert (apc["VA10D"][8], apc["VA10D"][10], apc["VA10D"][11], apc["VA10D"][13]) == (
        6022, 211, "Yes", 1807)
    assert (apc["VA12D"][8], apc["VA12D"][10], apc["VA12D"][11]) == (9746, 211, "No")
    assert "NZ19B" not in apc and "VB99Z" not in ae
    assert (ae["VB01Z"][2], ae["VB02Z"][2]) == (246, 232)


def test_tariff_unit_costs_by_hand_over_a_few_hrgs() -> None:
    from costing.unit_costs import unit_costs_from_tariff

    rc = _schedule_extract()
    got = {(d, s, c): a for d, s, c, a in rc.select(
        "department_code", "service_code", "currency_code", "activity").iter_rows()}
    assert got == SCHEDULE_2016_17  # the activity written above is the schedule's
    uc = unit_costs_from_tariff(rc, costing.load_tables().get("tariff", "2016-17").frames,
                                "2016-17", "2016-17")
    em = uc.filter(pl.col("category") == "emergency_admission").row(0, named=True)
    # VA10D: NEL at £6,022, NES at the short-stay price £1,807, excess bed days at £211;
    # VA12D: no short-stay price, so NES at the non-elective £9,746; NZ19B unpriced, left out
    cost = (11_795 * 6_022 + 5_911 * 1_807 + 27_474 * 211
            + 3_180 * 9_746 + 633 * 9_746 + 4_601 * 211)
    activity = 11_795 + 5_911 + 3_180 + 633  # = 21,519 FCEs; excess bed days add no activity
    assert em["activity"] == activity
    assert em["cost"] == pytest.approx(cost, rel=1e-12)
    assert em["unit_cost"] == pytest.approx(cost / activity, rel=1e-12)  # £5,838.56
    assert em["tariff_coverage"] == pytest.approx(activity / (activity + 21_695 + 193_575))
    assert em["schedule_activity"] == activity + 21_695 + 193_575
    assert (em["excess_bed_days"], em["excess_bed_days_priced"]) == (27_474 + 4_601 + 11_408,
                                                                      27_474 + 4_601)
    assert (em["n_left_out"], em["left_out"]) == (1, "NZ19B")
    assert "9.1% of the schedule's 236,789 FCEs had a tariff price" in em["notes"]
    assert "NZ19B 215,270" in em["notes"]  # 21,695 + 193,575
    ae = uc.filter(pl.col("category") == "ae_type_1").row(0, named=True)
    priced = (21_801 + 14_010) * 246 + (202_250 + 74_028) * 232
    seen = 21_801 + 14_010 + 202_250 + 74_028
    assert ae["unit_cost"] == pytest.approx(priced / seen, rel=1e-12)  # £233.61
    assert ae["tariff_coverage"] == pytest.approx(seen / (seen + 178 + 946))
    assert ae["left_out"] == "T01NA VB99Z T01A VB99Z"  # largest first


def test_tariff_2016_17_over_the_whole_2016_17_schedule() -> None:
    ts = costing.load_tables()
    uc = ts.unit_costs("2016-17", tariff="2016-17")
    assert uc["category"].to_list() == list(costing.unit_costs.UNIT_COST_CATEGORIES)
    rc = ts.table("reference_cost", "2016-17", "reference_costs")
    nel = ts.table("tariff", "2016-17", "apc").filter(pl.col("nel_price").is_not_null())
    emergency = rc.filter(pl.col("department_code").is_in(["NEL", "NES"]))
    share = (emergency.filter(pl.col("currency_code").is_in(nel["hrg_code"].implode()))
             ["activity"].sum() / emergency["activity"].sum())
    em = unit_row(uc, "emergency_admission").row(0, named=True)
    # HRG4 tariff codes against the HRG4+ schedule: about 2% of emergency FCEs priced,
    # reported and warned about, never dropped silently
    assert em["tariff_coverage"] == pytest.approx(share) and share < 0.05
    assert "the average is that of the priced codes only" in em["notes"]
    assert em["n_left_out"] == len(em["left_out"].split()) > 2000
    # every type 3 A&E HRG is £57 in the 2016-17 tariff: the weighted average is £57
    assert unit(uc, "ae_type_3") == pytest.approx(57.0, rel=1e-12)
    t4 = unit_row(uc, "ae_type_4").row(0, named=True)
    assert t4["unit_cost"] is None and t4["tariff_coverage"] == 0.0
    assert t4["notes"].startswith("no unit cost: none of the schedule's 1,015,481 attendances")
    # cost_of_change takes tariff-based unit costs, and says why a category has none
    out = cost_of_change({"ae_type_3": 1_000}, uc)
    assert out["cost"].to_list() == pytest.approx([57_000.0, 57_000.0])
    assert out["tariff_edition"].to_list()[0] == "2016-17"
    with pytest.raises(InputError, match="no unit cost for 'ae_type_4' .*type 4 departments"):
        cost_of_change({"ae_type_4": 1}, uc)
