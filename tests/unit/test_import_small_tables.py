"""Trim points, MFF and inflation-index importers, and the shipped small tables.

Real files come from ../shared/data through the ``shared_data`` fixture; expected figures
are from docs/domain.md, read from the source file in the test, or hand calculations written
in the comments.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from costing.errors import ImportFormatError
from costing.importers import indices, mff, trimpoints
from costing.importers.provenance import Provenance
from costing.importers.small_tables import SHIPPED, build_shipped, readme_sha256
from costing.tables import load_tables, sha256_file, shipped_tables_path

TRIM = "trimpoints/rc-2017-18-episode-trimpoints.csv"
MFF = "mff/mff-2026-27.csv"
DEFLATOR = "indices/uk-cost-indices.csv"
NHSCII = "indices/nhs-cost-inflation-index.csv"


def _value(frame: pl.DataFrame, name: str, year: str) -> float:
    row = frame.filter((pl.col("index_name") == name) & (pl.col("financial_year") == year))
    assert row.height == 1, (name, year)
    return float(row["value"][0])


# --------------------------------------------------------------------------------------
# real files
# --------------------------------------------------------------------------------------


def test_trimpoints_2017_18(shared_data: Path) -> None:
    t = trimpoints.read(shared_data / TRIM)["trimpoints"]
    assert t.schema == {"hrg_code": pl.String, "trim_days": pl.Int32}
    assert t.height == 2879  # README: 2,879 HRGs
    days = dict(zip(t["hrg_code"], t["trim_days"], strict=True))
    # docs/domain.md#verified-figures: DZ11V trim 8, HN12F trim 7; the file's first row AA22C 46.0.
    assert (days["DZ11V"], days["HN12F"], days["AA22C"]) == (8, 7, 46)


def test_mff_2026_27(shared_data: Path) -> None:
    m = mff.read(shared_data / MFF)["mff"]
    assert m.height == 205  # README: 205 providers
    with open(shared_data / MFF, newline="", encoding="utf-8") as fh:
        rows = {r["provider_code"]: r for r in csv.DictReader(fh)}
    # A provider whose name holds a comma (quoted in the file).
    rf4 = m.filter(pl.col("provider_code") == "RF4").row(0, named=True)
    assert rf4["mff_factor"] == float(rows["RF4"]["mff_factor"])
    assert rf4["provider_name"] == rows["RF4"]["provider_name"]
    assert "," in rf4["provider_name"]


def test_deflator_file(shared_data: Path) -> None:
    ix = indices.read(shared_data / DEFLATOR)["index"]
    assert _value(ix, "gdp_deflator", "2024-25") == 100.0  # the published base year
    assert _value(ix, "gdp_deflator", "2008-09") == 66.8397
    assert _value(ix, "cpi", "2017-18") == 104.05
    assert _value(ix, "cpih", "2017-18") == 104.2167
    forecast = ix.filter(pl.col("financial_year") == "2025-26")
    # 2025-26 is a forecast; CPI/CPIH have no value there, so only the deflator has a row.
    assert forecast["index_name"].to_list() == ["gdp_deflator"]
    assert forecast["is_forecast"].to_list() == [True]
    # 31 deflator years (2000-01..2030-31) + 25 each for CPI and CPIH (2000-01..2024-25).
    assert ix.height == 31 + 25 + 25


def test_nhscii_chained_levels(shared_data: Path) -> None:
    ix = indices.read(shared_data / NHSCII)["index"]
    # Base: 2014-15 (the year before the first change, label 2015 = 2015-16) = 100.
    for name in ("nhscii_prices", "nhscii_pay", "nhscii_pay_prices"):
        assert _value(ix, name, "2014-15") == 100.0
    # pay & prices: 2015 +0.40%, 2016 +2.09% -> 100 * 1.0040 * 1.0209 = 102.49836
    assert _value(ix, "nhscii_pay_prices", "2016-17") == pytest.approx(102.49836, abs=1e-9)
    # pay: 2015 +0.30%, 2016 +2.10%, 2017 +1.21%
    # -> 100 * 1.003 * 1.021 * 1.0121 = 100 * 1.024063 * 1.0121 = 103.64541623
    assert _value(ix, "nhscii_pay", "2017-18") == pytest.approx(103.64541623, abs=1e-9)
    # last year present is 2023-24 (label 2023); 10 years x 3 series
    assert ix["financial_year"].max() == "2023-24"
    assert ix.height == 30


# --------------------------------------------------------------------------------------
# shipped tables
# --------------------------------------------------------------------------------------


def test_shipped_tables_equal_a_fresh_import(shared_data: Path, tmp_path: Path) -> None:
    written = build_shipped(shared_data, tmp_path)
    assert len(written) == len(SHIPPED) == 4
    shipped = shipped_tables_path()
    for folder in written:
        rel = folder.relative_to(tmp_path)
        fresh = json.loads((folder / "manifest.json").read_text())
        ours = json.loads((shipped / rel / "manifest.json").read_text())
        hashes = [r["sha256"] for r in fresh["resources"]]
        assert [r["sha256"] for r in ours["resources"]] == hashes, rel
        assert ours["sources"] == fresh["sources"], rel


def test_shipped_sources_match_the_readme(shared_data: Path) -> None:
    listed = readme_sha256(shared_data)
    tables = load_tables()
    for s in SHIPPED:
        kind = {"trimpoints": "trimpoints", "mff": "mff", "indices": "index"}[s.module]
        src = tables.get(kind, s.edition).manifest.sources[0]
        assert src.file_name == Path(s.file).name
        assert src.sha256 == listed[s.file] == sha256_file(shared_data / s.file)


def test_shipped_editions_as_documented() -> None:
    tables = load_tables()
    assert tables.get("trimpoints", "2017-18").hrg_version == "HRG4"
    assert tables.table("mff", "2026-27").height == 205
    assert tables.index_series("gdp_deflator").filter(
        pl.col("financial_year") == "2024-25")["value"].to_list() == [100.0]
    assert tables.index_series("nhscii_pay_prices")["financial_year"].min() == "2014-15"


def test_build_shipped_refuses_an_undocumented_file(shared_data: Path, tmp_path: Path) -> None:
    copy = tmp_path / "data"
    for s in SHIPPED:
        (copy / s.file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(shared_data / s.file, copy / s.file)
    readme = (shared_data / "README.md").read_text()
    (copy / "README.md").write_text(readme)
    with open(copy / MFF, "a", encoding="utf-8") as fh:
        fh.write("ZZZ,Made-up Trust,1.0\n")
    with pytest.raises(ImportFormatError,
                       match=r"mff-2026-27\.csv: sha256 .* differs from the README"):
        build_shipped(copy, tmp_path / "out")


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_trimpoint_errors_name_line_and_column(tmp_path: Path) -> None:
    src = tmp_path / "tp.csv"
    src.write_text("sushrg,Episode.Trimpoint\nAA22C,46.0\nDZ11V,7.5\nHN12F,x\nAA22C,3\nH02,4\n")
    with pytest.raises(ImportFormatError) as info:
        trimpoints.read(src)
    msg = str(info.value)
    assert "line 3, column 'Episode.Trimpoint': trim point is not a whole number" in msg
    assert "line 4, column 'Episode.Trimpoint': trim point is not a number" in msg
    assert "line 2, column 'sushrg': duplicate code" in msg and "line 5" in msg
    assert "line 6, column 'sushrg': not an HRG4 HRG code" in msg


def test_trimpoint_blank_is_kept_as_null(tmp_path: Path) -> None:
    src = tmp_path / "tp.csv"
    src.write_text("hrg_code,trim_days\nAA22C,46\nAA22D,NA\n")
    t = trimpoints.read(src)["trimpoints"]
    assert t.to_dicts() == [{"hrg_code": "AA22C", "trim_days": 46},
                            {"hrg_code": "AA22D", "trim_days": None}]


def test_trimpoints_missing_column(tmp_path: Path) -> None:
    src = tmp_path / "tp.csv"
    src.write_text("sushrg,Episode.Trim\nAA22C,46\n")
    with pytest.raises(ImportFormatError, match=r"missing column\(s\) 'Episode.Trimpoint'"):
        trimpoints.read(src)


def test_mff_errors(tmp_path: Path) -> None:
    src = tmp_path / "mff.csv"
    src.write_text("provider_code,provider_name,mff_factor\nRCF,A,1.01\nRBS,B,-1\n,C,1\nRCF,D,1\n")
    with pytest.raises(ImportFormatError) as info:
        mff.read(src)
    msg = str(info.value)
    assert "line 3, column 'mff_factor': MFF factor must be positive" in msg
    assert "line 4, column 'provider_code': provider code is empty" in msg
    assert "line 5, column 'provider_code': duplicate code" in msg


def test_nhscii_gap_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "nhscii.csv"
    src.write_text("\ufeff,prices,pay,pay&prices\n2015,0.56%,0.30%,0.40%\n2017,1.30%,1.21%,1.24%\n")
    with pytest.raises(ImportFormatError,
                       match=r"line 3, column 'year': years must be consecutive"):
        indices.read(src)


def test_nhscii_without_years_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "nhscii.csv"
    src.write_text(",prices,pay,pay&prices\n")
    with pytest.raises(ImportFormatError, match=r"nhscii\.csv: no years"):
        indices.read(src)


def test_provenance_goes_into_the_manifest(tmp_path: Path) -> None:
    src = tmp_path / "mff.csv"
    src.write_text("provider_code,provider_name,mff_factor\nRCF,A,1.01\n")
    given = Provenance(publisher="NHS England", obtained_from="my-repo:seeds/mff.csv",
                       published=dt.date(2026, 3, 31), licence="my licence")
    folder = mff.import_edition(src, edition="2026-27", into=tmp_path / "t", provenance=given)
    manifest = json.loads((folder / "manifest.json").read_text())
    (source,) = manifest["sources"]
    assert (source["title"], source["publisher"], source["obtained_from"], source["licence"]) == (
        "Market forces factor 2026-27", "NHS England", "my-repo:seeds/mff.csv", "my licence")
    assert (source["file_name"], source["sha256"]) == ("mff.csv", sha256_file(src))
    assert manifest["published"] == "2026-03-31"
    plain = mff.import_edition(src, edition="2025-26", into=tmp_path / "t")
    (source,) = json.loads((plain / "manifest.json").read_text())["sources"]
    assert source["obtained_from"] == "supplied by the user"
    assert source["licence"].startswith("Open Government Licence")


def test_canonical_index_csv(tmp_path: Path) -> None:
    src = tmp_path / "my-index.csv"
    src.write_text("index_name,financial_year,value\nmy_index,2019-20,98.5\nmy_index,2020-21,100\n")
    folder = indices.import_edition(src, edition="2020-21", into=tmp_path / "t")
    series = load_tables(tmp_path / "t").index_series("my_index")
    assert series["value"].to_list() == [98.5, 100.0]
    assert series["is_forecast"].to_list() == [False, False]
    assert folder.name == "2020-21"
    src.write_text("index_name,financial_year,value\nmy_index,2019-21,98.5\n")
    with pytest.raises(ImportFormatError, match="line 2, column 'financial_year'"):
        indices.read(src)


def test_unknown_index_layout(tmp_path: Path) -> None:
    src = tmp_path / "x.csv"
    src.write_text("year,value\n2019,1\n")
    with pytest.raises(ImportFormatError, match="not a known index layout"):
        indices.read(src)
