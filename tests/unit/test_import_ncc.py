"""National Cost Collection long-CSV importer: the real 2023/24 file and synthetic bad input."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

import costing
from costing.errors import ImportFormatError
from costing.importers import ncc

HEADER = "Service Code,Dept or Currency Code,Dept or Currency Desc,Activity,Unit cost,Cost"
NAMES = {
    "Elective Inpatients": "EL",
    "Non-Elective Inpatient - Long Stay": "NEL",
    "Non-Elective Inpatient - Short Stay": "NES",
    "Daycase": "DC",
    "Regular Day or Night Admissions": "RP",
    "Consultant Led": "CL",
    "Non Consultant Led": "NCL",
    "Outpatient Procedures": "OPROC",
    "Emergency Care": "AE",
}


@pytest.fixture(scope="module")
def ncc_2023(shared_data: Path) -> pl.DataFrame:
    return ncc.read(shared_data / "reference-costs" / "ncc-2023-24.csv")["reference_costs"]


def _cost(frame: pl.DataFrame, dept: str, currency: str) -> float:
    rows = frame.filter((pl.col("department_code") == dept) & (pl.col("currency_code") == currency))
    assert rows.height == 1, (dept, currency)
    return round(float(rows["unit_cost"][0]), 2)


def test_2023_24_reproduces_published_figures(ncc_2023: pl.DataFrame) -> None:
    # ncc-2023-24.csv (line numbers of the file, header = line 1), "Unit cost" column:
    assert _cost(ncc_2023, "NEL", "DZ11V") == 2179.54  # line 5143: 2179.5412
    assert _cost(ncc_2023, "NES", "DZ11V") == 547.81  # line 7388: 547.8064
    assert _cost(ncc_2023, "EL", "HN12F") == 8358.10  # line 3500: 8358.0993
    assert _cost(ncc_2023, "DC", "HN12F") == 5721.73  # line 1092: 5721.732
    assert _cost(ncc_2023, "AE", "VB01Z") == 333.18  # line 4770: 333.1771
    assert _cost(ncc_2023, "CL", "WF01A") == 192.28  # line 190: 192.2812
    assert _cost(ncc_2023, "NCL", "WF01A") == 124.29  # "Non Consultant Led,WF01A": 124.2894
    # line 1821 "Daycase,RD97Z ,...,574,0,0": a real zero with activity stays 0
    assert _cost(ncc_2023, "DC", "RD97Z") == 0.0


def test_2023_24_codes_are_clean_and_service_code_is_null(ncc_2023: pl.DataFrame) -> None:
    # The file writes "DZ11V " and " Lobar, ..." (trailing / leading spaces).
    assert ncc_2023.filter(pl.col("currency_code").str.contains(r"\s")).height == 0
    assert ncc_2023.filter(pl.col("currency_description").str.starts_with(" ")).height == 0
    assert ncc_2023["service_code"].null_count() == ncc_2023.height
    assert set(ncc_2023["department_code"].unique()) == set(NAMES.values())  # no XS from 2018/19


def test_2023_24_row_counts_match_the_file(shared_data: Path, ncc_2023: pl.DataFrame) -> None:
    # Counted with the csv module: rows per department name in the first column.
    with open(shared_data / "reference-costs" / "ncc-2023-24.csv", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        next(reader)
        per_name = Counter(row[0] for row in reader)
    assert sum(per_name.values()) == 11303  # the README's row count
    expected = {code: per_name[name] for name, code in NAMES.items()}
    assert expected["EL"] == 2418  # e.g. 2418 "Elective Inpatients" rows
    counts = dict(ncc_2023.group_by("department_code").len().iter_rows())
    assert counts == expected


def test_shipped_2023_24_edition_loads() -> None:
    ed = costing.load_tables().get("reference_cost", "2023-24")
    assert ed.manifest.grouper == "HRG4+ 2023/24 National Costs Grouper"
    assert ed.manifest.sources[0].publisher == "NHS England"
    assert ed.manifest.sources[0].sha256 == (
        "d085736d69c08e380af2c5c51e49c689b73025628ef034d816414906d7543f10"  # shared README
    )
    assert _cost(ed.table("reference_costs"), "NEL", "DZ11V") == 2179.54


# --------------------------------------------------------------------------------------
# synthetic files
# --------------------------------------------------------------------------------------


def _rows() -> list[str]:
    """One row per required department (codes with trailing spaces, as in the real file)."""
    return [f"{name},DZ11V , Pneumonia,10,{100 + i}.5,{(100 + i) * 10 + 5}"
            for i, name in enumerate(NAMES)]


def _write(path: Path, rows: list[str], header: str = HEADER) -> Path:
    path.write_bytes(("\ufeff" + "\n".join([header, *rows]) + "\n").encode("utf-8"))
    return path


def test_synthetic_file_reads_to_canonical_rows(tmp_path: Path) -> None:
    rows = _rows() + [
        "Critical care,XC01Z ,Adult critical care,5,2000,10000",  # another department: not imported
        "Daycase,HN12F , Hip,3,-,0",  # suppressed cost
        "Daycase,HN13F , Hip,0,0,0",  # no activity, zero cost: no average
    ]
    f = ncc.read(_write(tmp_path / "n.csv", rows))["reference_costs"]
    assert f.columns == ["department_code", "service_code", "currency_code",
                         "currency_description", "activity", "unit_cost"]
    assert f.height == 11  # 9 departments + the two extra Daycase rows
    assert _cost(f, "EL", "DZ11V") == 100.5  # first row: 100 + 0 + .5
    assert _cost(f, "AE", "DZ11V") == 108.5  # ninth row: "Emergency Care"
    hn = f.filter(pl.col("currency_code").is_in(["HN12F", "HN13F"])).sort("currency_code")
    assert hn["unit_cost"].to_list() == [None, None]
    assert hn["activity"].to_list() == [3.0, 0.0]
    assert "XC01Z" not in f["currency_code"].to_list()


def test_missing_column_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.csv", [r.rsplit(",", 2)[0] for r in _rows()],
                  header="Service Code,Dept or Currency Code,Dept or Currency Desc,Activity")
    with pytest.raises(ImportFormatError, match=r"c\.csv: missing column\(s\) 'unit cost'"):
        ncc.read(path)


def test_missing_department_is_an_error(tmp_path: Path) -> None:
    rows = [r for r in _rows() if not r.startswith("Emergency Care")]
    with pytest.raises(ImportFormatError, match=r"department\(s\) 'emergency care' not found"):
        ncc.read(_write(tmp_path / "d.csv", rows))


def test_non_numeric_unit_cost_names_line_and_column(tmp_path: Path) -> None:
    rows = _rows()
    rows[2] = "Non-Elective Inpatient - Short Stay,DZ11V , Pneumonia,10,n/k,0"
    with pytest.raises(ImportFormatError,
                       match=r"u\.csv, line 4, column 'Unit cost': 'n/k' is not a number"):
        ncc.read(_write(tmp_path / "u.csv", rows))


def test_negative_unit_cost_is_an_error(tmp_path: Path) -> None:
    rows = _rows()
    rows[0] = "Elective Inpatients,DZ11V , Pneumonia,10,-5,-50"
    with pytest.raises(ImportFormatError, match=r"line 2, column 'Unit cost': negative value '-5'"):
        ncc.read(_write(tmp_path / "m.csv", rows))


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    rows = _rows() + ["Daycase,DZ11V,Pneumonia again,1,1,1"]  # same code without the space
    with pytest.raises(ImportFormatError, match=r"DC DZ11V appears on lines 5, 11"):
        ncc.read(_write(tmp_path / "k.csv", rows))


def test_import_edition_writes_a_loadable_edition(tmp_path: Path) -> None:
    path = _write(tmp_path / "n.csv", _rows())
    ncc.import_edition(path, edition="2030-31", into=tmp_path / "t")
    ed = costing.load_tables(tmp_path / "t").get("reference_cost", "2030-31")
    assert ed.table().height == 9
    assert ed.manifest.sources[0].file_name == "n.csv"
