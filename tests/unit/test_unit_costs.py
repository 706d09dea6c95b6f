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
