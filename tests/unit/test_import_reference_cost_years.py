"""Reference costs 2011/12, 2013/14, 2018/19 and 2024/25: the real files, read two ways.

Each figure is written by hand from the shared file, read here from that file with a
plain reader (csv, fastexcel, pyreadr) and from the shipped table, and the three agree.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path

import fastexcel
import polars as pl
import pytest

import costing
from costing.errors import ImportFormatError
from costing.importers import importer_for, ncc, nsrc_csv, stacked_schedules
from costing.importers import reference_costs as rc
from costing.tables import shipped_tables_path

pyreadr = pytest.importorskip("pyreadr", reason="reading .rds / .rda needs pyreadr "
                              "(pip install 'costing[test]' or 'costing[maintainers]')")

RC = "reference-costs"


@functools.cache
def _tables() -> costing.TableSet:
    """The shipped tables, loaded (and verified) once for this module."""
    return costing.load_tables()


def _shipped(edition: str, dept: str, currency: str, service: str | None = None) -> float:
    t = _tables().table("reference_cost", edition, "reference_costs")
    rows = t.filter((pl.col("department_code") == dept) & (pl.col("currency_code") == currency)
                    & (pl.col("service_code").is_null() if service is None
                       else pl.col("service_code") == service))
    assert rows.height == 1, (edition, dept, currency, service)
    return float(rows["unit_cost"][0])


def _manifest(edition: str) -> dict:  # type: ignore[type-arg]
    path = shipped_tables_path() / "reference_cost" / edition / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------
# 2018/19: the original National Schedule of NHS Costs workbook
# --------------------------------------------------------------------------------------


def _sheet_cost(path: Path, sheet: str, code: str) -> float:
    """National Average Unit Cost of ``code`` in a 2018/19 sheet (header on row 5)."""
    frame = fastexcel.read_excel(path).load_sheet(sheet, header_row=4).to_polars()
    row = frame.filter(pl.col("Currency Code") == code)
    assert row.height == 1
    return float(row["National Average Unit Cost"][0])


def test_2018_19_figures_from_the_workbook_and_the_shipped_table(shared_data: Path) -> None:
    path = shared_data / RC / "national-schedule-2018-19.xlsx"
    # DZ11V (shared data README; NEL and EL sheets of the workbook)
    for dept, published in (("NEL", 1662.10), ("EL", 1488.23)):
        in_file = _sheet_cost(path, dept, "DZ11V")
        assert round(in_file, 2) == published
        assert _shipped("2018-19", dept, "DZ11V") == in_file


def test_2018_19_has_no_excess_bed_day_departments() -> None:
    m = _manifest("2018-19")
    assert m["absent_departments"] == ["EL_XS", "NEL_XS"]
    assert m["sources"][0]["form"] == "original"
    assert any("folds excess bed days" in n for n in m["notes"])
    # the one published negative average (OPROC 141 CA28Z, -14.54 over 1 procedure) is no price
    assert any("CA28Z" in n and "-14.54" in n for n in m["notes"])
    t = _tables().table("reference_cost", "2018-19", "reference_costs")
    neg = t.filter((pl.col("currency_code") == "CA28Z") & (pl.col("service_code") == "141")
                   & (pl.col("department_code") == "OPROC"))
    assert neg["unit_cost"].to_list() == [None]


def test_a_reference_costs_workbook_without_excess_bed_day_sheets_is_refused(tmp_path: Path) -> None:
    # Only a National Schedule of NHS Costs (title) may lack EL_XS / NEL_XS.
    from tests.unit.test_import_reference_costs import _build

    path = _build(tmp_path / "s.xlsx", drop=("EL_XS", "NEL_XS"))
    with pytest.raises(ImportFormatError, match="EL_XS"):
        rc.read(path)
    path = _build(tmp_path / "t.xlsx", drop=("EL_XS", "NEL_XS"), edit={
        "EL!B1": "National Schedule of NHS Costs - Year 2099-00 - NHS trusts"})
    assert "EL_XS" not in rc.read(path)["reference_costs"]["department_code"].to_list()


# --------------------------------------------------------------------------------------
# 2011/12: admitted care only, rounded to whole pounds
# --------------------------------------------------------------------------------------


def test_2011_12_one_hrg_per_department_to_the_pound(shared_data: Path) -> None:
    path = shared_data / RC / "nsrc01-2011-12-rounded.csv"
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1631  # the README's HRG count
    aa02a = next(r for r in rows if r["Currency Code"] == "AA02A")
    # line 2 of the file: AA02A,...,7217,7547,157,7434,320,3775,3389
    published = {"TOTAL": 7217, "EL": 7547, "EL_XS": 157, "NEL": 7434, "NEL_XS": 320,
                  "NES": 3775, "DC": 3389}
    columns = {"TOTAL": "Total", "EL": "EI", "EL_XS": "EI_XS", "NEL": "NEI_L",
               "NEL_XS": "NEI_L_XS", "NES": "NEI_S", "DC": "DC"}
    for dept, pounds in published.items():
        assert int(aa02a[columns[dept]]) == pounds
        assert _shipped("2011-12", dept, "AA02A") == pounds
    # an empty cell is no row: AA02B has no EI_XS and no DC
    t = _tables().table("reference_cost", "2011-12", "reference_costs")
    aa02b = t.filter(pl.col("currency_code") == "AA02B")["department_code"].to_list()
    assert "EL_XS" not in aa02b and "DC" not in aa02b and "NEL_XS" in aa02b


def test_2011_12_manifest_says_extract_rounding_and_absent_departments() -> None:
    m = _manifest("2011-12")
    src = m["sources"][0]
    assert (src["form"], src["rounding"]) == ("extract", "whole pounds")
    assert src["obtained_from"].startswith("miqdadasaria/cost-of-inequality:")
    assert m["absent_departments"] == ["RP", "CL", "NCL", "OPROC", "AE"]


def test_admitted_care_csv_is_recognised_by_its_header(shared_data: Path, tmp_path: Path) -> None:
    assert importer_for("reference_cost", shared_data / RC / "nsrc01-2011-12-rounded.csv") is nsrc_csv
    assert importer_for("reference_cost", shared_data / RC / "ncc-2023-24.csv") is ncc
    bad = tmp_path / "bad.csv"
    bad.write_text("Currency Code,Currency Description,Total,EI,EI_XS,NEI_L,NEI_L_XS,NEI_S,DC\n"
                   "AA02A,Head,7217,7547,157,n/k,320,3775,3389\n", encoding="utf-8")
    with pytest.raises(ImportFormatError, match=r"line 2, column 'NEI_L'"):
        nsrc_csv.read(bad)


# --------------------------------------------------------------------------------------
# 2013/14: the ICCONIC stacked extract, unrounded
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stacked_2013(shared_data: Path) -> pl.DataFrame:
    frame = pyreadr.read_r(str(shared_data / RC / "icconic-hrgcosts-2013-14-to-2017-18.rds"))[None]
    return pl.from_pandas(frame).filter(pl.col("HRGyear") == "2013")


@pytest.mark.parametrize(("sheet", "dept", "hrg", "service", "published"), [
    # HRGyear "2013" rows of HRGcosts.rds, unitcost as R prints it (6 significant decimals)
    ("EL", "EL", "AA02C", None, 15975.275),
    ("EL_XS", "EL_XS", "AA20C", None, 314.818627),
    ("NEL", "NEL", "AA02C", None, 12668.141672),
    ("NEL_XS", "NEL_XS", "AA02C", None, None),
    ("NES", "NES", "AA02D", None, 4423.241076),
    ("DC", "DC", "AA20C", None, 1263.479429),
    ("RP", "RP", "AA21E", None, 561.795),
    ("CL", "CL", "WF01A", "100", 112.553722),
    ("NCL", "NCL", "WF01A", "100", 101.668384),
    ("OPROC", "OPROC", "AA21G", "100", 485.657045),
    ("EM", "AE", "VB01Z", "T01A", 72.171924),
    ("TotalHRGs", "TOTAL", "AA02C", None, 10378.15046),
])
def test_2013_14_one_per_department_unrounded(stacked_2013: pl.DataFrame, sheet: str, dept: str,
                                              hrg: str, service: str | None,
                                              published: float | None) -> None:
    rows = stacked_2013.filter((pl.col("type") == sheet) & (pl.col("HRG") == hrg)
                               & (pl.col("servicecode").is_null() if service is None
                                  else pl.col("servicecode") == service))
    if published is None:  # NEL_XS: the first HRG with a row
        rows = stacked_2013.filter(pl.col("type") == sheet).head(1)
        hrg = rows["HRG"][0]
    assert rows.height == 1
    in_file = float(rows["unitcost"][0])
    if published is not None:
        assert round(in_file, 6) == published
    assert _shipped("2013-14", dept, hrg, service) == in_file


def test_2013_14_row_counts_match_the_extract(stacked_2013: pl.DataFrame) -> None:
    t = _tables().table("reference_cost", "2013-14", "reference_costs")
    counts = dict(t.group_by("department_code").len().iter_rows())
    in_file = dict(stacked_2013.group_by("type").len().iter_rows())
    assert counts["AE"] == in_file["EM"] == 86
    assert counts["TOTAL"] == in_file["TotalHRGs"]
    assert counts["OPROC"] == in_file["OPROC"]
    m = _manifest("2013-14")
    assert m["sources"][0]["form"] == "extract" and "absent_departments" not in m


def test_stacked_extract_without_the_year_or_with_a_bad_cost_is_an_error(tmp_path: Path) -> None:
    import pandas as pd

    rows = {"label": ["EL2013"], "HRG": ["AA02C"], "currencydescription": ["Head"],
            "unitcost": [-1.0], "servicecode": [None], "servicedescription": [None],
            "departmentcode": [None], "departmentdescription": [None], "type": ["EL"],
            "HRGyear": ["2013"]}
    path = tmp_path / "stacked.rds"
    pyreadr.write_rds(str(path), pd.DataFrame(rows))
    with pytest.raises(ImportFormatError, match="no rows with HRGyear '2012'"):
        stacked_schedules.read(path, year="2012-13")
    with pytest.raises(ImportFormatError, match="no rows of department"):
        stacked_schedules.read(path, year="2013-14")


# --------------------------------------------------------------------------------------
# 2024/25: COSTmos's National Cost Collection extract (.rda)
# --------------------------------------------------------------------------------------


def test_2024_25_figures_from_the_rda_and_the_shipped_table(shared_data: Path) -> None:
    frame = pl.from_pandas(pyreadr.read_r(str(shared_data / RC / "ncc-2024-25.rda"))["ncc"])
    row = frame.filter((pl.col("department_code") == "Non-Elective Inpatient - Long Stay")
                       & (pl.col("currency_code") == "DZ11V"))
    in_file = float(row["unit_cost"][0])
    assert round(in_file, 2) == 2306.23  # shared data README
    assert _shipped("2024-25", "NEL", "DZ11V") == in_file
    # A&E: one row per HRG for all department types together (12 "Emergency Care" rows)
    t = _tables().table("reference_cost", "2024-25", "reference_costs")
    ae = t.filter(pl.col("department_code") == "AE")
    assert ae.height == frame.filter(pl.col("department_code") == "Emergency Care").height == 12
    assert ae["service_code"].null_count() == 12
    # no outpatient attendance currencies
    assert t.filter(pl.col("currency_code").str.starts_with("WF")).height == 0
    m = _manifest("2024-25")
    assert m["sources"][0]["form"] == "extract"
    assert m["absent_departments"] == ["EL_XS", "NEL_XS", "TOTAL"]
    assert any("No outpatient attendance currencies" in n for n in m["notes"])


# --------------------------------------------------------------------------------------
# the nine years together
# --------------------------------------------------------------------------------------

NINE = ["2011-12", "2013-14", "2014-15", "2015-16", "2016-17", "2017-18", "2018-19",
        "2023-24", "2024-25"]


def test_tables_list_shows_nine_years_with_their_status() -> None:
    from click.testing import CliRunner

    from costing.cli import main

    result = CliRunner().invoke(main, ["tables", "list"])
    assert result.exit_code == 0, result.output
    lines = {ln.split("┆")[1].strip(): ln for ln in result.output.splitlines()
             if "reference_cost" in ln}
    assert sorted(lines) == NINE
    assert "extract, rounded to whole pounds" in lines["2011-12"]
    assert "RP CL NCL OPROC AE" in lines["2011-12"]
    assert "original" in lines["2018-19"] and "extract" not in lines["2018-19"]
    for year in ("2013-14", "2023-24", "2024-25"):
        assert "extract" in lines[year]
