"""Tariff importers: the official workbook layout (fixture workbooks) and canonical CSV.

No real tariff workbook is available, so fixtures are built two ways: with
``write_tariff_workbook`` (the layout the worked example uses) and by hand with raw
openpyxl, independent of that writer. Expected rows are written out in the tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from costing.errors import ImportFormatError
from costing.importers import tariff_csv, tariff_workbook
from costing.importers.tariff_workbook import ILLUSTRATIVE_NOTE, write_tariff_workbook
from costing.schema import TABLE_SCHEMAS
from costing.tables import load_tables, sha256_file

SCHEMA = TABLE_SCHEMAS["tariff"]

# Illustrative prices (not a published tariff). HN12F has a combined DC/EL price only;
# DZ11V separate DC and EL prices plus short-stay emergency columns; AA22C a price of
# £12,345.67 (written as text with a thousands separator) and no trim points; WF01A
# (an outpatient procedure HRG) only an outpatient procedure price.
APC = pl.DataFrame(
    {
        "hrg_code": ["HN12F", "DZ11V", "AA22C", "WH50B"],
        "hrg_name": ["Very Major Hip Procedures, CC 0-1", "Lobar Pneumonia, CC 0-2",
                     "Cerebrovascular Accident, CC 13+", "Procedure X"],
        "op_procedure_price": [None, None, None, 112.0],
        "combined_dc_el_price": [5872.0, None, None, None],
        "dc_price": [None, 1234.56, None, None],
        "el_price": [None, 2345.67, 12345.67, None],
        "el_trim_days": [7, 5, None, None],
        "nel_price": [6000.0, 1580.53, 15000.25, None],
        "nel_trim_days": [10, 8, None, None],
        "excess_bed_day_price": [250.5, 291.63, None, None],
        "sse_applicable": [False, True, None, None],
        "sse_percent": [None, 35.0, None, None],
        "sse_price": [None, 553.19, None, None],
    },
    schema=SCHEMA["apc"],
)
OP = pl.DataFrame(
    {
        "treatment_function_code": ["100", "010", "300"],
        "treatment_function_description": ["General Surgery", "Retyped code", "General Medicine"],
        "first_single_price": [150.0, None, 200.0],
        "first_multi_price": [210.0, 11.0, 260.0],
        "followup_single_price": [100.0, 12.0, 90.0],
        "followup_multi_price": [None, 13.0, 120.0],
    },
    schema=SCHEMA["op_attendance"],
)
AE = pl.DataFrame(
    {
        "hrg_code": ["VB01Z", "VB11Z"],
        "hrg_name": ["Emergency Medicine, Any Investigation with Category 5 Treatment",
                     "Emergency Medicine, No Investigation with No Significant Treatment"],
        "type_1_2_price": [399.46, 60.0],
        "type_3_price": [None, 55.0],
    },
    schema=SCHEMA["ae"],
)


@pytest.fixture()
def written(tmp_path: Path) -> Path:
    return write_tariff_workbook(tmp_path / "tariff-2017-18.xlsx", APC, OP, AE,
                                 title="National tariff 2017/18 (test fixture)")


# --------------------------------------------------------------------------------------
# writer + reader
# --------------------------------------------------------------------------------------


def test_writer_produces_the_published_messiness(written: Path) -> None:
    wb = openpyxl.load_workbook(written)
    ws = wb["1 APC & OPROC"]
    assert ws["A1"].value == "National tariff 2017/18 (test fixture)"
    assert ws["A2"].value == ILLUSTRATIVE_NOTE
    headers = [c.value for c in ws[5]]
    assert headers[0] == "HRG code"
    assert "Combined day case /\nordinary elective spell tariff (£)" in headers
    assert "Per day long stay payment  (for days exceeding trim point) (£)" in headers
    # AA22C (row 8): the £12,345.67 elective price is text with a thousands separator,
    # its missing day-case price is "-" and its trim point is blank.
    row = {h: c.value for h, c in zip(headers, ws[8], strict=True)}
    assert row["HRG code"] == "AA22C"
    assert row["Ordinary elective spell tariff (£)"] == "12,345.67"
    assert row["Day case spell tariff (£)"] == "-"
    assert row["Ordinary elective long stay trim point (days)"] is None
    assert ws["K7"].value == "Yes" and ws["K6"].value == "No"


def test_written_workbook_reads_back_to_the_same_rows(written: Path) -> None:
    frames = tariff_workbook.read(written)
    assert set(frames) == {"apc", "op_attendance", "ae"}
    assert frames["apc"].equals(APC)
    assert frames["op_attendance"].equals(OP)
    assert frames["ae"].equals(AE)


def test_combined_and_separate_prices_kept_as_published(written: Path) -> None:
    apc = tariff_workbook.read(written)["apc"]
    hn12f = apc.filter(pl.col("hrg_code") == "HN12F").row(0, named=True)
    dz11v = apc.filter(pl.col("hrg_code") == "DZ11V").row(0, named=True)
    # Combined only: separate prices stay null (never filled from the combined price).
    cols = ("combined_dc_el_price", "dc_price", "el_price")
    assert tuple(hn12f[c] for c in cols) == (5872.0, None, None)
    # Separate only: combined stays null (never their sum).
    assert tuple(dz11v[c] for c in cols) == (None, 1234.56, 2345.67)
    sse = ("sse_applicable", "sse_percent", "sse_price")
    assert tuple(dz11v[c] for c in sse) == (True, 35.0, 553.19)


def test_import_edition_writes_a_verified_illustrative_edition(
    written: Path, tmp_path: Path
) -> None:
    folder = tariff_workbook.import_edition(
        written, edition="2017-18", into=tmp_path / "tables", hrg_version="HRG4",
        grouper="HRG4+ 2017/18 Local Payment Grouper",
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["illustrative"] is True  # detected from the title row
    assert manifest["hrg_version"] == "HRG4"
    assert manifest["grouper"] == "HRG4+ 2017/18 Local Payment Grouper"
    assert manifest["sources"][0]["sha256"] == sha256_file(written)
    assert manifest["sources"][0]["file_name"] == "tariff-2017-18.xlsx"
    ed = load_tables(tmp_path / "tables").get("tariff", "2017-18")
    assert ed.table("apc").sort("hrg_code").equals(APC.sort("hrg_code"))
    assert ed.table("op_attendance").height == 3


def test_import_edition_needs_the_hrg_version(written: Path, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="--hrg-version"):
        tariff_workbook.import_edition(written, edition="2017-18", into=tmp_path)
    with pytest.raises(ImportFormatError, match=r"do not look like v3\.5"):
        tariff_workbook.import_edition(written, edition="2017-18", into=tmp_path,
                                       hrg_version="v3.5")


# --------------------------------------------------------------------------------------
# a workbook built by hand with openpyxl (independent of write_tariff_workbook)
# --------------------------------------------------------------------------------------


def _hand_built(path: Path) -> Path:
    wb = openpyxl.Workbook()
    cover = wb.active
    assert cover is not None
    cover.title = "Contents"
    cover["A1"] = "2017/18 and 2018/19 National Tariff Payment System: Annex A"
    cover["A3"] = "HRG code"  # a stray header-like word on a cover sheet

    apc = wb.create_sheet("APC & OPROC ")  # renamed, trailing space
    apc["B1"] = "Annex A: national prices"
    apc["B2"] = "Admitted patient care & outpatient procedures"
    apc["B4"] = "Prices exclude the market forces factor"
    headers = [
        "HRG code", "HRG name", "Outpatient procedure tariff (£)",
        "Combined day case /\nordinary elective spell tariff (£)",
        "Day case\u00a0spell tariff (£)", "Ordinary  elective spell tariff (£)",
        "Ordinary elective long stay trim point (days)", "Non-elective spell tariff (£)",
        "Non-elective long stay trim point\n(days)",
        "Per day long stay payment (for days exceeding trim point) (£)",
        "Reduced short stay emergency tariff applicable?",
        "% applied in calculation of reduced short stay emergency tariff",
        "Reduced short stay emergency tariff (£)",
        "BPT applies?", "BPT price (£)",
    ]
    for j, h in enumerate(headers, start=2):  # table starts in column B, header on row 7
        apc.cell(row=7, column=j, value=h)
    rows = [
        # code, name, oproc, combined, dc, el, el_trim, nel, nel_trim, xs, sse?, %, sse £
        ["HN12F", "Very Major Hip Procedures, CC 0-1", "-", "5,872", "-", "-", 7,
         "6,000.00", 10, 250.5, "No", "-", "-", "No", None],
        ["DZ11V", "Lobar Pneumonia", None, None, 1234.56, "2,345.67", None, 1580.53, 8,
         "291.63", "Yes", "35%", 553.19, None, None],
        ["FZ91A", "Non-Malignant Gastrointestinal Disorders", 120, "-", "-", "-", "-",
         "1,020.5", "6.0", 200, "yes", 0.5, 510.25, None, None],
        [None, None, None, None, None, None, None, None, None, None, None, None, None,
         None, None],
        ["Note: prices are in £ and exclude MFF", None, None, None, None, None, None,
         None, None, None, None, None, None, None, None],
    ]
    for i, values in enumerate(rows, start=8):
        for j, v in enumerate(values, start=2):
            apc.cell(row=i, column=j, value=v)

    op = wb.create_sheet("OP attendances")
    op["A1"] = "Outpatient attendances by treatment function"
    op_headers = ["Treatment function code", "Treatment function name",
                  "First attendance\n- single professional",
                  "First attendance - multi-professional",
                  "Follow-up attendance - single professional",
                  "Follow-up attendance - multi-professional"]
    for j, h in enumerate(op_headers, start=1):
        op.cell(row=3, column=j, value=h)
    for i, values in enumerate([[100, "General Surgery", 150, "210", 100, "-"],
                                ["010", "Old code", "-", 11, 12, 13]], start=4):
        for j, v in enumerate(values, start=1):
            op.cell(row=i, column=j, value=v)

    ae = wb.create_sheet("Emergency medicine")
    ae["A1"] = "A&E by department type"
    for j, h in enumerate(["HRG code", "HRG name", "Type 1 and 2 Departments",
                           "Type 3 Departments"], start=1):
        ae.cell(row=2, column=j, value=h)
    for i, values in enumerate([["VB01Z", "Any investigation, category 5", "399.46", "-"],
                                ["VB11Z", "No investigation", 60, 55]], start=3):
        for j, v in enumerate(values, start=1):
            ae.cell(row=i, column=j, value=v)
    wb.save(path)
    return path


def test_hand_built_workbook_imports_to_expected_rows(tmp_path: Path) -> None:
    frames = tariff_workbook.read(_hand_built(tmp_path / "annex-a.xlsx"))
    expected_apc = pl.DataFrame(
        {
            "hrg_code": ["HN12F", "DZ11V", "FZ91A"],
            "hrg_name": ["Very Major Hip Procedures, CC 0-1", "Lobar Pneumonia",
                         "Non-Malignant Gastrointestinal Disorders"],
            "op_procedure_price": [None, None, 120.0],
            "combined_dc_el_price": [5872.0, None, None],
            "dc_price": [None, 1234.56, None],
            "el_price": [None, 2345.67, None],
            "el_trim_days": [7, None, None],
            "nel_price": [6000.0, 1580.53, 1020.5],
            "nel_trim_days": [10, 8, 6],
            "excess_bed_day_price": [250.5, 291.63, 200.0],
            "sse_applicable": [False, True, True],
            "sse_percent": [None, 35.0, 50.0],  # "35%" text; 0.5 fraction -> 50 points
            "sse_price": [None, 553.19, 510.25],
        },
        schema=SCHEMA["apc"],
    )
    assert frames["apc"].equals(expected_apc)  # the note row below the table is not a record
    expected_op = pl.DataFrame(
        {
            "treatment_function_code": ["100", "010"],  # numeric 100 and text "010"
            "treatment_function_description": ["General Surgery", "Old code"],
            "first_single_price": [150.0, None],
            "first_multi_price": [210.0, 11.0],
            "followup_single_price": [100.0, 12.0],
            "followup_multi_price": [None, 13.0],
        },
        schema=SCHEMA["op_attendance"],
    )
    assert frames["op_attendance"].equals(expected_op)
    expected_ae = pl.DataFrame(
        {"hrg_code": ["VB01Z", "VB11Z"],
         "hrg_name": ["Any investigation, category 5", "No investigation"],
         "type_1_2_price": [399.46, 60.0], "type_3_price": [None, 55.0]},
        schema=SCHEMA["ae"],
    )
    assert frames["ae"].equals(expected_ae)


def test_hand_built_workbook_is_not_flagged_illustrative(tmp_path: Path) -> None:
    folder = tariff_workbook.import_edition(
        _hand_built(tmp_path / "annex-a.xlsx"), edition="2017-18", into=tmp_path / "t",
        hrg_version="HRG4",
    )
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["illustrative"] is False
    assert manifest["sources"][0]["title"] == "Annex A: national prices"


# --------------------------------------------------------------------------------------
# errors name file, sheet, Excel row and column
# --------------------------------------------------------------------------------------


def _edit(path: Path, sheet: str, cell: str, value: object) -> Path:
    wb = openpyxl.load_workbook(path)
    wb[sheet][cell] = value
    wb.save(path)
    return path


def test_missing_apc_sheet(tmp_path: Path) -> None:
    path = write_tariff_workbook(tmp_path / "x.xlsx", APC, OP, AE, title="t")
    wb = openpyxl.load_workbook(path)
    del wb["1 APC & OPROC"]
    wb.save(path)
    with pytest.raises(ImportFormatError, match=r"x\.xlsx: no apc table found in any sheet"):
        tariff_workbook.read(path)


def test_missing_header_column_is_named(written: Path) -> None:
    _edit(written, "1 APC & OPROC", "I5", "Something else")  # the NEL trim point header
    with pytest.raises(ImportFormatError) as info:
        tariff_workbook.read(written)
    msg = str(info.value)
    assert "sheet '1 APC & OPROC', row 5" in msg
    assert "Non-elective long stay trim point (days)" in msg


def test_non_numeric_price_names_sheet_row_and_column(written: Path) -> None:
    _edit(written, "1 APC & OPROC", "H7", "12x")  # DZ11V non-elective price
    with pytest.raises(ImportFormatError) as info:
        tariff_workbook.read(written)
    msg = str(info.value)
    assert "tariff-2017-18.xlsx, sheet '1 APC & OPROC', row 7, column H" in msg
    assert "not a number" in msg and "'12x'" in msg


def test_european_decimal_comma_is_refused(written: Path) -> None:
    _edit(written, "3 A&E", "C6", "1.234,56")
    with pytest.raises(ImportFormatError, match=r"sheet '3 A&E', row 6, column C"):
        tariff_workbook.read(written)


def test_negative_price(written: Path) -> None:
    _edit(written, "2 OP attendances", "C6", -5)
    with pytest.raises(ImportFormatError,
                       match=r"'2 OP attendances', row 6, column C .*negative price"):
        tariff_workbook.read(written)


def test_fractional_trim_point_and_bad_flag(written: Path) -> None:
    _edit(written, "1 APC & OPROC", "G6", 7.5)
    _edit(written, "1 APC & OPROC", "K7", "Maybe")
    with pytest.raises(ImportFormatError) as info:
        tariff_workbook.read(written)
    msg = str(info.value)
    assert "2 cell(s)" in msg
    assert "row 6, column G" in msg and "not a whole number of days" in msg
    assert "row 7, column K" in msg and "not Yes or No" in msg


def test_duplicate_hrg(written: Path) -> None:
    _edit(written, "1 APC & OPROC", "A7", "HN12F")
    with pytest.raises(ImportFormatError, match=r"duplicate HRG code: HN12F in rows \[6, 7\]"):
        tariff_workbook.read(written)


def test_prices_without_a_code(written: Path) -> None:
    _edit(written, "3 A&E", "A6", None)
    with pytest.raises(ImportFormatError, match=r"sheet '3 A&E', row 6, column A .*no HRG code"):
        tariff_workbook.read(written)


def test_not_a_workbook(tmp_path: Path) -> None:
    bad = tmp_path / "tariff.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(ImportFormatError, match="not a readable Excel workbook"):
        tariff_workbook.read(bad)


# --------------------------------------------------------------------------------------
# canonical CSV (e.g. the 2008/09 HRG v3.5 tariff)
# --------------------------------------------------------------------------------------

V35_CSV = (
    "hrg_code,hrg_name,el_price,el_trim_days,nel_price,nel_trim_days,excess_bed_day_price\n"
    "H02,Primary Hip Replacement,\"5,012.00\",21,5300,24,199.5\n"
    "F35,Large Intestinal Disorders,-,,1200.25,9,\n"
)


def test_v35_csv_imports(tmp_path: Path) -> None:
    src = tmp_path / "pbr-2008-09.csv"
    src.write_text(V35_CSV)
    folder = tariff_csv.import_edition(src, edition="2008-09", into=tmp_path / "t",
                                       hrg_version="v3.5")
    apc = load_tables(tmp_path / "t").table("tariff", "2008-09", "apc")
    h02 = apc.filter(pl.col("hrg_code") == "H02").row(0, named=True)
    f35 = apc.filter(pl.col("hrg_code") == "F35").row(0, named=True)
    assert (h02["el_price"], h02["el_trim_days"], h02["nel_price"]) == (5012.0, 21, 5300.0)
    assert (f35["el_price"], f35["el_trim_days"], f35["excess_bed_day_price"]) == (None, None, None)
    assert h02["dc_price"] is None and h02["sse_applicable"] is None  # absent columns: null
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["hrg_version"] == "v3.5"
    assert manifest["sources"][0]["sha256"] == sha256_file(src)


def test_csv_folder_with_op_and_ae(tmp_path: Path) -> None:
    folder = tmp_path / "tariff"
    folder.mkdir()
    (folder / "apc.csv").write_text(V35_CSV)
    (folder / "op_attendance.csv").write_text(
        "treatment_function_code,first_single_price,followup_single_price\n010,100,\"1,000\"\n"
    )
    frames = tariff_csv.read(folder)
    assert set(frames) == {"apc", "op_attendance"}
    op = frames["op_attendance"].row(0, named=True)
    assert op["treatment_function_code"] == "010"  # leading zero kept
    assert (op["first_single_price"], op["followup_single_price"]) == (100.0, 1000.0)


def test_csv_missing_code_column_suggests(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("hrg,nel_price\nH02,5\n")
    with pytest.raises(ImportFormatError, match=r"'hrg_code' is missing \(did you mean 'hrg'\?\)"):
        tariff_csv.read(src)


def test_csv_column_typo_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("hrg_code,nel_prices\nH02,5\n")
    with pytest.raises(ImportFormatError, match=r"'nel_prices' \(did you mean 'nel_price'\?\)"):
        tariff_csv.read(src)


def test_csv_bad_cells_name_line_and_column(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text("hrg_code,nel_price\nH02,5\nF35,-3\nH02,7\n")
    with pytest.raises(ImportFormatError,
                       match=r"t\.csv, line 3, column 'nel_price'.*negative price"):
        tariff_csv.read(src)
    src.write_text("hrg_code,nel_price\nH02,5\nF35,3\nH02,7\n")
    with pytest.raises(ImportFormatError, match=r"duplicate HRG code: H02 in lines \[2, 4\]"):
        tariff_csv.read(src)


def test_csv_version_mismatch(tmp_path: Path) -> None:
    src = tmp_path / "t.csv"
    src.write_text(V35_CSV)
    with pytest.raises(ImportFormatError,
                       match=r"do not look like HRG4 codes, e\.g\. \['H02', 'F35'\]"):
        tariff_csv.import_edition(src, edition="2008-09", into=tmp_path, hrg_version="HRG4")
