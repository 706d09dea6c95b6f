"""National Schedule of Reference Costs importer: real workbooks and synthetic bad input."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest

import costing
from costing.errors import ImportFormatError
from costing.importers import reference_costs as rc
from costing.tables import sha256_file, shipped_tables_path

YEARS = ("2014-15", "2015-16", "2016-17", "2017-18")
REQUIRED = ("EL", "EL_XS", "NEL", "NEL_XS", "NES", "DC", "RP", "CL", "NCL", "OPROC", "AE")


def _workbook(shared: Path, year: str) -> Path:
    return shared / "reference-costs" / f"national-schedule-{year}.xlsx"


@pytest.fixture(scope="module")
def imported(shared_data: Path) -> dict[str, pl.DataFrame]:
    """Each real workbook read once for this module (reading them is the slow part)."""
    return {y: rc.read(_workbook(shared_data, y))["reference_costs"] for y in YEARS}


def _cost(frame: pl.DataFrame, dept: str, currency: str, service: str | None = None) -> float:
    rows = frame.filter(
        (pl.col("department_code") == dept)
        & (pl.col("currency_code") == currency)
        & (pl.col("service_code").is_null() if service is None
           else pl.col("service_code") == service)
    )
    assert rows.height == 1, (dept, currency, service, rows)
    return round(float(rows["unit_cost"][0]), 2)


# --------------------------------------------------------------------------------------
# published figures
# --------------------------------------------------------------------------------------


def test_2017_18_reproduces_published_figures(imported: dict[str, pl.DataFrame]) -> None:
    # Published 2017/18 figures (docs/domain.md#verified-figures; EL sheet row 1187, NEL row 338,
    # NES row 384, NEL_XS row 273, EL_XS row 928, DC row 1027, AE row 6).
    f = imported["2017-18"]
    assert _cost(f, "NEL", "DZ11V") == 1580.53
    assert _cost(f, "NES", "DZ11V") == 439.56
    assert _cost(f, "NEL_XS", "DZ11V") == 291.63
    assert _cost(f, "EL", "HN12F") == 6060.96
    assert _cost(f, "EL_XS", "HN12F") == 412.76
    assert _cost(f, "DC", "HN12F") == 2811.53
    assert _cost(f, "AE", "VB01Z", "T01A") == 399.46


# Values read with openpyxl from the "National Average Unit Cost" column of each workbook
# (sheet, Excel row): rounded to 2 dp.
EARLIER_YEARS = {
    "2014-15": [  # A&E sheet is named "EM" in this year and stored as AE
        ("NEL", "DZ11V", None, 1489.17),  # NEL row 336: 1489.16678800191
        ("NES", "DZ11V", None, 443.88),  # NES row 377: 443.881975012429
        ("NEL_XS", "DZ11V", None, 261.81),  # NEL_XS row 277: 261.807853934408
        ("EL", "HN12F", None, 5735.79),  # EL row 1169: 5735.79476228046
        ("EL_XS", "HN12F", None, 307.20),  # EL_XS row 909: 307.195561953932
        ("DC", "HN12F", None, 2342.62),  # DC row 970: 2342.6220212766
        ("CL", "WF01B", "100", 155.93),  # CL row 149: 155.928319177378
        ("AE", "VB01Z", "T01A", 417.12),  # EM row 5: 417.122893676117
    ],
    "2015-16": [
        ("NEL", "DZ11V", None, 1514.94),  # NEL row 338: 1514.93600424293
        ("NES", "DZ11V", None, 465.77),  # NES row 377: 465.769333266512
        ("NEL_XS", "DZ11V", None, 260.49),  # NEL_XS row 274: 260.489258792257
        ("EL", "HN12F", None, 5877.41),  # EL row 1169: 5877.40780873522
        ("EL_XS", "HN12F", None, 334.07),  # EL_XS row 909: 334.074732131275
        ("DC", "HN12F", None, 2898.10),  # DC row 995: 2898.10263565891
        ("CL", "WF01B", "100", 153.33),  # CL row 152: 153.325210502799
        ("AE", "VB01Z", "T01A", 408.73),  # EM row 6: 408.730420633379
    ],
    "2016-17": [
        ("NEL", "DZ11V", None, 1510.86),  # NEL row 334: 1510.85878366451
        ("NES", "DZ11V", None, 447.69),  # NES row 384: 447.693770398912
        ("NEL_XS", "DZ11V", None, 246.21),  # NEL_XS row 278: 246.205252342835
        ("EL", "HN12F", None, 5823.53),  # EL row 1172: 5823.5275032317
        ("EL_XS", "HN12F", None, 325.65),  # EL_XS row 904: 325.649087940792
        ("DC", "HN12F", None, 2902.01),  # DC row 1008: 2902.00668918919
        ("CL", "WF01B", "100", 162.40),  # CL row 153: 162.404213303206
        ("AE", "VB01Z", "T01A", 435.89),  # EM row 6: 435.893853492959
    ],
}


@pytest.mark.parametrize("year", sorted(EARLIER_YEARS))
def test_earlier_years_reproduce_workbook_figures(
    imported: dict[str, pl.DataFrame], year: str
) -> None:
    f = imported[year]
    for dept, currency, service, expected in EARLIER_YEARS[year]:
        assert _cost(f, dept, currency, service) == expected, (year, dept, currency)


def test_total_hrg_is_the_first_total_block(imported: dict[str, pl.DataFrame]) -> None:
    # "Total HRG's" 2017-18, row 402 (DZ11V): Total block C..E = 92776, 937.5413564930583,
    # 86981336.89; the next block (EL) starts at F with 642, the EL sheet's FCEs.
    f = imported["2017-18"].filter(
        (pl.col("department_code") == "TOTAL") & (pl.col("currency_code") == "DZ11V")
    )
    assert f["activity"].to_list() == [92776.0]
    assert round(f["unit_cost"][0], 2) == 937.54
    # The block's own columns agree: activity x unit cost = Total Cost (to the penny).
    assert abs(f["activity"][0] * f["unit_cost"][0] - 86981336.89) < 0.01
    assert f["service_code"].to_list() == [None]


def test_total_activity_excludes_excess_bed_days(
    shared_data: Path, imported: dict[str, pl.DataFrame]
) -> None:
    # "Total HRG's" 2017-18 row 402 (DZ11V), read with openpyxl: the Total block's activity
    # equals the sum of the other blocks' activity except the two excess-bed-day blocks
    # (row 5 names the blocks), and differs from the sum that includes bed days.
    ws = openpyxl.load_workbook(_workbook(shared_data, "2017-18"), read_only=True,
                                data_only=True)["Total HRG's"]
    rows = list(ws.iter_rows(min_row=5, max_row=402, values_only=True))
    blocks, dz11v = rows[0], rows[-1]
    assert dz11v[0] == "DZ11V"
    acts = {str(blocks[c]).strip(): dz11v[c] for c in range(5, len(blocks), 3) if blocks[c]}
    xs = acts.pop("Elective Inpatient Excess Bed Days") + acts.pop("Non-Elective Excess Bed Days")
    total = imported["2017-18"].filter(
        (pl.col("department_code") == "TOTAL") & (pl.col("currency_code") == "DZ11V")
    )["activity"][0]
    assert total == sum(acts.values()) == 92776
    assert xs > 0 and total != sum(acts.values()) + xs


def _count_rows_xml(path: Path, sheet: str, column: str, header_row: int) -> int:
    """Filled cells of ``column`` below ``header_row``, counted in the sheet's raw XML."""
    with zipfile.ZipFile(path) as z:
        book = z.read("xl/workbook.xml").decode()
        rels = z.read("xl/_rels/workbook.xml.rels").decode()
        rid = re.search(rf'<sheet name="{re.escape(sheet)}" sheetId="\d+" r:id="(rId\d+)"', book)
        assert rid, sheet
        target = re.search(rf'Id="{rid.group(1)}"[^>]*Target="([^"]+)"', rels)
        assert target, sheet
        xml = z.read("xl/" + target.group(1)).decode()
    cells = re.findall(rf'<c r="{column}(\d+)"[^>]*?(?:/>|>(.*?)</c>)', xml)
    return sum(1 for row, body in cells if int(row) > header_row and "<v>" in body)


def test_2017_18_department_row_counts_match_the_sheets(
    shared_data: Path, imported: dict[str, pl.DataFrame]
) -> None:
    # Counted in the workbook's XML, not with the importer: the currency code column is A
    # (C in OPROC and AE, whose first columns are the service), header on row 5 (row 6 in
    # "Total HRG's"); every sheet carries its department's name in 2017-18.
    path = _workbook(shared_data, "2017-18")
    counts = dict(imported["2017-18"].group_by("department_code").len().iter_rows())
    for dept in REQUIRED:
        column = "C" if dept in ("OPROC", "AE") else "A"
        assert counts[dept] == _count_rows_xml(path, dept, column, 5), dept
    assert counts["TOTAL"] == _count_rows_xml(path, "Total HRG's", "A", 6)
    assert set(counts) == {*REQUIRED, "TOTAL"}
    assert counts["EL"] == 2504  # EL: HRGs on rows 6-2509


# Data rows per sheet of the earlier workbooks, counted once with openpyxl (rows below
# the header row with a filled "Currency Code" / "Currency" cell). AE is the "EM"
# sheet; TOTAL is "Total HRG's" ("Total HRGs" in 2016-17).
EARLIER_COUNTS = {
    "2014-15": {"EL": 2413, "EL_XS": 1854, "NEL": 2298, "NEL_XS": 2035, "NES": 2362,
                "DC": 2058, "RP": 1100, "CL": 831, "NCL": 653, "OPROC": 7981, "AE": 85,
                "TOTAL": 2756},
    "2015-16": {"EL": 2413, "EL_XS": 1870, "NEL": 2302, "NEL_XS": 2033, "NES": 2365,
                "DC": 2102, "RP": 1111, "CL": 849, "NCL": 697, "OPROC": 8070, "AE": 88,
                "TOTAL": 2782},
    "2016-17": {"EL": 2454, "EL_XS": 1882, "NEL": 2333, "NEL_XS": 2076, "NES": 2416,
                "DC": 2176, "RP": 1116, "CL": 873, "NCL": 703, "OPROC": 8051, "AE": 89,
                "TOTAL": 2813},
}


@pytest.mark.parametrize("year", sorted(EARLIER_COUNTS))
def test_earlier_department_row_counts_match_the_sheets(
    imported: dict[str, pl.DataFrame], year: str
) -> None:
    counts = dict(imported[year].group_by("department_code").len().iter_rows())
    assert counts == EARLIER_COUNTS[year]


def test_every_year_has_all_departments_and_clean_keys(imported: dict[str, pl.DataFrame]) -> None:
    for year, f in imported.items():
        assert set(f["department_code"].unique()) == {*REQUIRED, "TOTAL"}, year
        assert f.select(pl.struct("department_code", "service_code", "currency_code")
                        .is_duplicated().any()).item() is False
        assert f.filter(pl.col("unit_cost") < 0).height == 0
        # service code exactly where the sheet has one
        svc = f.filter(pl.col("service_code").is_not_null())["department_code"].unique()
        assert set(svc) == {"CL", "NCL", "OPROC", "AE"}, year


def test_zero_activity_rows_have_no_unit_cost(imported: dict[str, pl.DataFrame]) -> None:
    # Total HRG's 2017-18: MC15Z has activity 0 and unit cost 0 in every block (0/0).
    f = imported["2017-18"].filter(
        (pl.col("department_code") == "TOTAL") & (pl.col("currency_code") == "MC15Z")
    )
    assert f["activity"].to_list() == [0.0]
    assert f["unit_cost"].to_list() == [None]


# --------------------------------------------------------------------------------------
# shipped tables
# --------------------------------------------------------------------------------------


def _readme_sha256(shared: Path) -> dict[str, str]:
    text = (shared / "README.md").read_text(encoding="utf-8")
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 5 and re.fullmatch(r"[0-9a-f]{64}", cells[-1]):
            out[Path(cells[0]).name] = cells[-1]
    return out


def test_shipped_tables_equal_a_fresh_import(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("pyreadr", reason="the 2013-14 and 2024-25 extracts are R data files")
    written = rc.build_shipped(shared_data, tmp_path)
    assert [p.name for p in written] == ["2011-12", "2013-14", *YEARS, "2018-19", "2023-24",
                                         "2024-25"]
    shipped = shipped_tables_path() / "reference_cost"
    readme = _readme_sha256(shared_data)
    for folder in written:
        fresh = json.loads((folder / "manifest.json").read_text())
        ours = json.loads((shipped / folder.name / "manifest.json").read_text())
        assert [r["sha256"] for r in fresh["resources"]] == [r["sha256"] for r in ours["resources"]]
        for res in ours["resources"]:
            assert sha256_file(shipped / folder.name / res["path"]) == res["sha256"]
        src = ours["sources"][0]
        assert src["sha256"] == readme[src["file_name"]], folder.name
        assert src["obtained_from"] and ":" in src["obtained_from"]
        assert src["form"] in ("original", "extract")
        assert fresh == ours
        assert ours["hrg_version"] == "HRG4" and ours["grouper"]


def test_load_tables_finds_the_shipped_editions() -> None:
    tables = costing.load_tables()
    assert tables.editions("reference_cost") == ["2011-12", "2013-14", *YEARS, "2018-19",
                                                 "2023-24", "2024-25"]
    ed = tables.get("reference_cost", "2017-18")
    t = ed.table("reference_costs")
    nel = t.filter((pl.col("department_code") == "NEL") & (pl.col("currency_code") == "DZ11V"))
    assert round(nel["unit_cost"][0], 2) == 1580.53


# --------------------------------------------------------------------------------------
# synthetic workbooks
# --------------------------------------------------------------------------------------

APC_HEADER = ["Currency Code", "Currency Description", "Number of FCEs\n",
              "National  Average\nUnit Cost", "Total Costs"]
XS_HEADER = ["Currency Code", "Currency Description", "Excess Bed days",
             "National Average Unit Cost", "Total Costs"]
OP_HEADER = ["Currency Code", "Currency Description", "Service Code", "Service Description",
             "No. of attendances", "National Average Unit Cost", "Total Cost"]
SVC_FIRST = ["Service Code", "Service Description", "Currency Code", "Currency Description",
             "Attendances", "National Average Unit Cost", "Total Cost"]


def _sheet_rows(dept: str) -> tuple[str, list[str], list[list[object]]]:
    """Title, header and two data rows of a minimal department sheet."""
    if dept in ("CL", "NCL"):
        return "CONSULTANT LED" if dept == "CL" else "NON CONSULTANT LED", OP_HEADER, [
            ["WF01A", "Follow-up", "100", "General Surgery", 10, 120.5, 1205],
            ["WF01B", "First", 100, "General Surgery", 5, 150.0, 750],
        ]
    if dept == "OPROC":
        return "OUTPATIENT PROCEDURES", SVC_FIRST[:4] + ["Procedures"] + SVC_FIRST[5:], [
            ["100", "General Surgery", "AA32Z", "Neuropsychology Tests", 1, 171.98, 171.98],
            ["101", "Urology", "AA32Z", "Neuropsychology Tests", 2, 45.8, 91.6],
        ]
    if dept == "AE":
        return "EMERGENCY MEDICINE", SVC_FIRST, [
            ["T01A", "Type 01 admitted", "VB01Z", "Emergency Medicine", 7, 399.5, 2796.5],
            ["T01NA", "Type 01 non admitted", "VB01Z", "Emergency Medicine", 3, 444.0, 1332],
        ]
    header = XS_HEADER if dept.endswith("_XS") else APC_HEADER
    return f"{dept} TITLE", header, [
        ["DZ11V", "Pneumonia", 100, 1580.53, 158053],
        ["HN12F", "Hip", 20, 6060.96, 121219.2],
    ]


def _build(
    path: Path,
    *,
    edit: dict[str, object] | None = None,
    rename: dict[str, str] | None = None,
    drop: tuple[str, ...] = (),
) -> Path:
    """A complete minimal schedule: title rows, a header on row 5, data from row 6.

    ``edit`` sets cells as ``{"SHEET!D6": value}`` after building.
    """
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    total = wb.create_sheet("Total HRG's")
    total["B1"] = "National Schedule of Reference Costs - All NHS trusts - HRG Data"
    total["C5"], total["F5"] = "Total", "Elective Inpatient "
    for i, h in enumerate(["Currency ", "Currency Description", "Activity ", "Unit Cost ",
                           "Total Cost", "Activity ", "Unit Cost ", "Total Cost"]):
        total.cell(row=6, column=i + 1, value=h)
    for r, row in enumerate([["DZ11V", "Pneumonia", 1000, 937.54, 937540, 100, 1580.53, 158053],
                             ["HN12F", "Hip", 0, 0, 0, 0, 0, 0]]):
        for c, v in enumerate(row):
            total.cell(row=7 + r, column=c + 1, value=v)
    for dept in REQUIRED:
        name = (rename or {}).get(dept, dept)
        if dept in drop:
            continue
        ws = wb.create_sheet(name)
        title, header, rows = _sheet_rows(dept)
        ws["A1"] = "Back to Index"
        ws["B1"] = "National Schedule of Reference Costs - Year 2099-00 - NHS trusts"
        ws["B2"] = title
        for c, h in enumerate(header):
            ws.cell(row=5, column=c + 1, value=h)
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                ws.cell(row=6 + r, column=c + 1, value=v)
    for ref, value in (edit or {}).items():
        sheet, cell = ref.split("!")
        wb[sheet][cell] = value
    wb.save(path)
    return path


def test_synthetic_workbook_reads_to_canonical_rows(tmp_path: Path) -> None:
    path = _build(tmp_path / "s.xlsx", edit={
        "EL!J3": "stray note right of the table",
        "EL!J6": 411860.78,  # stray figure in an unlabelled column
        "EL!A12": "Source: a footnote below the table",
        "NES!D7": "-",  # suppressed cost
        "NEL!D7": " 1,234.50 ",  # thousands separator and spaces in a text cell
        "DC!D7": None,  # blank cost
    })
    f = rc.read(path)["reference_costs"]
    assert f.columns == ["department_code", "service_code", "currency_code",
                         "currency_description", "activity", "unit_cost"]
    # 11 departments x 2 rows + 2 TOTAL rows; the footnote and stray cells add nothing.
    assert f.height == 24
    assert _cost(f, "EL", "DZ11V") == 1580.53
    nes = f.filter((pl.col("department_code") == "NES") & (pl.col("currency_code") == "HN12F"))
    assert nes["unit_cost"].to_list() == [None] and nes["activity"].to_list() == [20.0]
    assert _cost(f, "NEL", "HN12F") == 1234.50
    dc = f.filter((pl.col("department_code") == "DC") & (pl.col("currency_code") == "HN12F"))
    assert dc["unit_cost"].to_list() == [None]
    # a numeric service code cell (100) and a text one ("100") both give "100"
    cl = f.filter(pl.col("department_code") == "CL")
    assert cl["service_code"].to_list() == ["100", "100"]
    assert _cost(f, "AE", "VB01Z", "T01NA") == 444.0
    # TOTAL: first block; HN12F has 0 activity and 0 cost -> null unit cost
    tot = f.filter(pl.col("department_code") == "TOTAL").sort("currency_code")
    assert tot["activity"].to_list() == [1000.0, 0.0]
    assert tot["unit_cost"].to_list() == [937.54, None]


def test_renamed_sheet_is_found_by_its_title(tmp_path: Path) -> None:
    # The A&E sheet under a new name still carries the title "EMERGENCY MEDICINE".
    path = _build(tmp_path / "r.xlsx", rename={"AE": "A and E 2099"})
    f = rc.read(path)["reference_costs"]
    assert _cost(f, "AE", "VB01Z", "T01A") == 399.5


def test_em_sheet_is_stored_as_ae(tmp_path: Path) -> None:
    path = _build(tmp_path / "em.xlsx", rename={"AE": "EM"})
    f = rc.read(path)["reference_costs"]
    assert "EM" not in f["department_code"].to_list()
    assert f.filter(pl.col("department_code") == "AE").height == 2


def test_missing_sheet_is_an_error_naming_it(tmp_path: Path) -> None:
    path = _build(tmp_path / "m.xlsx", drop=("NEL_XS",))
    with pytest.raises(ImportFormatError, match=r"m\.xlsx: required sheet\(s\) missing: NEL_XS"):
        rc.read(path)


def test_renamed_sheet_with_unknown_title_is_missing(tmp_path: Path) -> None:
    path = _build(tmp_path / "n.xlsx", rename={"NES": "Short stay"})
    with pytest.raises(ImportFormatError, match=r"missing: NES .*'Short stay'"):
        rc.read(path)


def test_non_numeric_price_names_file_sheet_row_and_column(tmp_path: Path) -> None:
    path = _build(tmp_path / "p.xlsx", edit={"EL!D7": "about 6k"})
    with pytest.raises(ImportFormatError) as err:
        rc.read(path)
    msg = str(err.value)
    assert "p.xlsx, sheet 'EL', row 7, column D ('national average unit cost')" in msg
    assert "'about 6k' is not a number" in msg


def test_negative_price_is_an_error(tmp_path: Path) -> None:
    path = _build(tmp_path / "n.xlsx", edit={"CL!F7": -150.0})
    with pytest.raises(ImportFormatError, match=r"sheet 'CL', row 7, column F .*negative value"):
        rc.read(path)


def test_missing_header_row_is_an_error(tmp_path: Path) -> None:
    path = _build(tmp_path / "h.xlsx", edit={"DC!A5": "Code"})
    with pytest.raises(ImportFormatError, match=r"sheet 'DC': no header row found"):
        rc.read(path)


def test_duplicate_key_is_refused_with_both_rows(tmp_path: Path) -> None:
    path = _build(tmp_path / "d.xlsx", edit={"RP!A7": "DZ11V"})
    with pytest.raises(ImportFormatError, match=r"sheet 'RP': duplicate key.*DZ11V at rows 6, 7"):
        rc.read(path)


def test_figures_without_a_currency_code_are_refused(tmp_path: Path) -> None:
    # A "Total" line below the table would otherwise be lost or taken for an HRG.
    path = _build(tmp_path / "t.xlsx", edit={"EL!A9": "Total", "EL!C9": 120, "EL!D9": 2100.0})
    with pytest.raises(ImportFormatError,
                       match=r"sheet 'EL', row 9, column A.*no valid currency code"):
        rc.read(path)


def test_not_a_workbook_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "x.xlsx"
    bad.write_text("not a workbook")
    with pytest.raises(ImportFormatError, match="cannot be read as an Excel workbook"):
        rc.read(bad)


def test_import_edition_writes_a_loadable_edition(tmp_path: Path) -> None:
    path = _build(tmp_path / "s.xlsx")
    folder = rc.import_edition(path, edition="2099-00", into=tmp_path / "tables")
    ed = costing.load_tables(tmp_path / "tables").get("reference_cost", "2099-00")
    assert folder == tmp_path / "tables" / "reference_cost" / "2099-00"
    assert ed.manifest.sources[0].sha256 == sha256_file(path)
    assert ed.manifest.grouper == "HRG4+ 2099/00 Reference Costs Grouper"
    assert ed.table("reference_costs").height == 24
