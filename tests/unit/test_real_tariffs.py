"""The real national tariffs: the published workbooks import as they are, the shipped editions
are what the importer derives from them, and purchaser pricing at them gives the figures
worked out by hand below.

Every figure is written out by hand from the published workbook (sheet and row named) and
also read in the test from the shared workbook and from the shipped table.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import fastexcel
import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from costing import CostingConfig, Status
from costing.errors import ConfigError, ImportFormatError
from costing.importers import mff_workbook, tariff_workbook
from costing.importers.shipped_tariffs import SHIPPED_TARIFFS
from costing.pairing import hrg_not_found_by_edition, run_warnings
from tests.fixtures.tables import D, apc, frame

WORKBOOK = {s.edition: s.file for s in SHIPPED_TARIFFS}


@pytest.fixture(scope="module")
def read_editions(shared_data: Path) -> dict[str, dict[str, pl.DataFrame]]:
    """Every shipped tariff year, read from its shared workbook by the importer."""
    return {ed: tariff_workbook.read(shared_data / f, edition=ed) for ed, f in WORKBOOK.items()}


def _row(df: pl.DataFrame, key: str, code: str) -> dict[str, object]:
    return df.filter(pl.col(key) == code).row(0, named=True)


def test_every_workbook_imports_to_the_shipped_edition(
        read_editions: dict[str, dict[str, pl.DataFrame]], shipped_tables: costing.TableSet) -> None:
    for edition, frames in read_editions.items():
        ed = shipped_tables.get("tariff", edition)
        assert sorted(frames) == ["ae", "apc", "op_attendance"], edition
        for resource, df in frames.items():
            assert_frame_equal(df.sort(df.columns[0]), ed.table(resource))
    # sizes as published: HRG rows of "1 APC & OPROC" / "1a ... 17.18" / "1 APC & OPROC"
    assert {e: f["apc"].height for e, f in read_editions.items()} == {
        "2016-17": 1283, "2017-18": 2303, "2018-19": 2303, "2022-23": 2371}


def test_2016_17_figures(read_editions: dict[str, dict[str, pl.DataFrame]],
                         shipped_tables: costing.TableSet) -> None:
    for frames in (read_editions["2016-17"], shipped_tables.get("tariff", "2016-17").frames):
        aa02a = _row(frames["apc"], "hrg_code", "AA02A")  # sheet 1 APC & OPROC, row 4
        assert (aa02a["combined_dc_el_price"], aa02a["nel_price"]) == (7091.0, 6517.0)
        assert (aa02a["el_trim_days"], aa02a["nel_trim_days"]) == (37, 45)
        assert aa02a["excess_bed_day_price"] == 200.0
        assert aa02a["dc_price"] is None and aa02a["sse_applicable"] is False
        tfc100 = _row(frames["op_attendance"], "treatment_function_code", "100")  # 2 OP Attendances
        assert (tfc100["first_single_price"], tfc100["followup_single_price"]) == (144.0, 89.0)
        vb01z = _row(frames["ae"], "hrg_code", "VB01Z")  # 3 A&E, row 5
        assert (vb01z["type_1_2_price"], vb01z["type_3_price"]) == (246.0, 57.0)


def test_2017_18_consultation_figures(read_editions: dict[str, dict[str, pl.DataFrame]],
                                      shipped_tables: costing.TableSet) -> None:
    ed = shipped_tables.get("tariff", "2017-18")
    assert ed.manifest.status == "consultation"
    for frames in (read_editions["2017-18"], ed.frames):
        aa22c = _row(frames["apc"], "hrg_code", "AA22C")  # 1a APC & OPROC 17.18, row 4
        assert (aa22c["combined_dc_el_price"], aa22c["nel_price"]) == (8207.0, 9766.0)
        assert aa22c["sse_applicable"] is True and aa22c["sse_price"] == 2930.0
        assert aa22c["sse_percent"] == 30.0  # published as 0.3
    # the 18.19 sheet of the same workbook: AA22C 8,285 / 9,859 (1b APC & OPROC 18.19, row 4)
    aa22c = _row(read_editions["2018-19"]["apc"], "hrg_code", "AA22C")
    assert (aa22c["combined_dc_el_price"], aa22c["nel_price"]) == (8285.0, 9859.0)


def test_2022_23_figures(read_editions: dict[str, dict[str, pl.DataFrame]],
                         shipped_tables: costing.TableSet) -> None:
    ed = shipped_tables.get("tariff", "2022-23")
    assert ed.manifest.status is None and ed.manifest.published == dt.date(2022, 4, 19)
    for frames in (read_editions["2022-23"], ed.frames):
        aa22c = _row(frames["apc"], "hrg_code", "AA22C")  # 1 APC & OPROC, row 4
        assert (aa22c["combined_dc_el_price"], aa22c["nel_price"]) == (8640.0, 9953.0)
        assert aa22c["sse_price"] == 1991.0
        # no separate day-case / elective columns in 2022/23: null, the combined price applies
        assert frames["apc"]["dc_price"].null_count() == frames["apc"].height
        # 2 Outpatients starts with WF01A (follow-up 78), then WF01B (first 181)
        tfc100 = _row(frames["op_attendance"], "treatment_function_code", "100")
        assert (tfc100["first_single_price"], tfc100["followup_single_price"]) == (181.0, 78.0)
        vb01z = _row(frames["ae"], "hrg_code", "VB01Z")  # 3 A&E
        assert (vb01z["type_1_2_price"], vb01z["type_3_price"]) == (410.0, 85.0)


def test_manifests_record_provenance(shipped_tables: costing.TableSet) -> None:
    publishers = {"2016-17": "Monitor and NHS England", "2017-18": "NHS Improvement and NHS England",
                  "2018-19": "NHS Improvement and NHS England",
                  "2022-23": "NHS England and NHS Improvement"}
    for edition, publisher in publishers.items():
        for kind in ("tariff", "mff"):
            m = shipped_tables.get(kind, edition).manifest
            (src,) = m.sources
            assert src.publisher == publisher
            assert src.licence == "Open Government Licence v3.0"
            assert "commit" in (src.obtained_from or "")
            assert (m.valid_from, m.valid_to) == costing.tables.edition_dates(edition)
    assert shipped_tables.get("tariff", "2016-17").manifest.grouper == "HRG4 2016/17 Local Payment Grouper"
    summary = shipped_tables.summary().filter(pl.col("kind") == "tariff")
    assert dict(zip(summary["edition"], summary["status"], strict=True)) == {
        "2016-17": "final", "2017-18": "consultation", "2018-19": "consultation", "2022-23": "final"}


def test_mff_of_each_tariff_year(shared_data: Path, shipped_tables: costing.TableSet) -> None:
    # R1A Worcestershire Health and Care: 1.036391 in "19 MFF Payment values" (2016/17) and in
    # "12 MFF values" (2017/18, 2018/19: the 2016-17 values carried over); RCF Airedale
    # 1.017722 in "13 MFF values", column "2022/23 (Year 4)" (Year 5 2023/24: 1.014537)
    expected = {"2016-17": ("R1A", 1.036391), "2017-18": ("R1A", 1.036391),
                "2018-19": ("R1A", 1.036391), "2022-23": ("RCF", 1.017722)}
    for edition, (code, factor) in expected.items():
        read = mff_workbook.read(shared_data / WORKBOOK[edition], edition=edition)["mff"]
        assert_frame_equal(read.sort("provider_code"), shipped_tables.table("mff", edition, "mff"))
        assert _row(read, "provider_code", code)["mff_factor"] == factor
    with pytest.raises(ImportFormatError, match="no payment index column for 2019-20"):
        mff_workbook.read(shared_data / WORKBOOK["2016-17"], edition="2019-20")


def test_importer_refuses_a_copy_without_a_needed_column(shared_data: Path, tmp_path: Path) -> None:
    # a copy of the 2022/23 "1 APC & OPROC" sheet (title, header and the first HRG rows, cell
    # by cell as published) without its "Per day long stay payment" column
    sheet = "1 APC & OPROC"
    cells = fastexcel.read_excel(shared_data / WORKBOOK["2022-23"]).load_sheet(
        sheet, header_row=None, n_rows=20, dtypes="string").to_polars()
    per_day = [c for c in cells.columns if str(cells[c][2]).startswith("Per day long\n stay")]
    assert len(per_day) == 1
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    for row in cells.drop(per_day).rows():
        ws.append(list(row))
    copy = tmp_path / "no-per-day-price.xlsx"
    wb.save(copy)
    assert tariff_workbook.read(shared_data / WORKBOOK["2022-23"], edition="2022-23")  # the original reads
    with pytest.raises(ImportFormatError, match=r"sheet '1 APC & OPROC', row 3: .*no column "
                       r"headed 'Per day long stay payment \(for days exceeding trim point\) \(£\)'"):
        tariff_workbook.read(copy, edition="2022-23")


def test_two_year_workbook_needs_the_edition(shared_data: Path) -> None:
    with pytest.raises(ImportFormatError, match="give the edition"):
        tariff_workbook.read(shared_data / WORKBOOK["2017-18"])


# --------------------------------------------------------------------------------------
# purchaser pricing at the real tariffs, worked by hand
# --------------------------------------------------------------------------------------


def test_aa02a_non_elective_50_days_2016_17(shipped_tables: costing.TableSet) -> None:
    # 2016/17 AA02A: non-elective £6,517, trim point 45 days, £200 a day beyond it:
    # 6,517 + (50 - 45) x 200 = 7,517
    out = costing.price(frame(apc(los=50, method="21", hrg="AA02A", admit=D(2016, 6, 1))),
                        shipped_tables, CostingConfig(tariff_edition="2016-17"))
    row = out.row(0, named=True)
    assert row["cost"] == 7517.0 and row["excess_bed_days"] == 5
    assert row["status"] == Status.PRICED_TARIFF and row["tariff_edition"] == "2016-17"


def test_aa22c_short_stay_emergency_2022_23(shipped_tables: costing.TableSet) -> None:
    # emergency (21), 1 day: age 40 takes the short-stay emergency price £1,991; at 17 the
    # short-stay rule does not apply (under 19): the non-elective price £9,953
    # short-stay emergency methods are 21-25 and 2A-2D ("8 SSEM"): 2D takes it, 28 does not
    out = costing.price(frame(apc("adult", los=1, method="21", hrg="AA22C", age=40),
                              apc("child", los=1, method="21", hrg="AA22C", age=17),
                              apc("2d", los=0, method="2D", hrg="AA22C", age=19),
                              apc("28", los=1, method="28", hrg="AA22C", age=40),
                              apc("two_days", los=2, method="21", hrg="AA22C", age=40)),
                        shipped_tables, CostingConfig(tariff_edition="2022-23"))
    assert out["cost"].to_list() == [1991.0, 9953.0, 1991.0, 9953.0, 9953.0]
    assert out["short_stay_applied"].to_list() == [True, False, True, False, False]


def test_dated_mode_31_march_and_1_april(shipped_tables: costing.TableSet) -> None:
    # A&E VB01Z type 1 priced by arrival date: 2016/17 £246, 2017/18 (consultation) £322;
    # APC LB72A day case admitted on each side: 2016/17 combined £221; 2017/18 £... read below
    ae = {"patient_id": "p", "setting": "ae", "hrg_code": "VB01Z", "department_type": "01"}
    out = costing.price(frame({**ae, "record_id": "mar", "activity_date": D(2017, 3, 31)},
                              {**ae, "record_id": "apr", "activity_date": D(2017, 4, 1)}),
                        shipped_tables, CostingConfig())
    assert out["cost"].to_list() == [246.0, 322.0]
    assert out["tariff_edition"].cast(pl.String).to_list() == ["2016-17", "2017-18"]
    assert out["reference_cost_edition"].cast(pl.String).to_list() == ["2016-17", "2017-18"]
    spells = costing.price(frame(apc("mar", los=60, method="21", hrg="VA10D", admit=D(2017, 3, 31)),
                                 apc("apr", los=60, method="21", hrg="AA22C", admit=D(2017, 4, 1))),
                           shipped_tables, CostingConfig())
    # VA10D 2016/17: NEL 6,022 + (60 - trim) x per day; AA22C 2017/18: 9,766 + (60 - 98 <0) = 9,766
    va10d = _row(shipped_tables.table("tariff", "2016-17", "apc"), "hrg_code", "VA10D")
    excess = (60 - int(va10d["nel_trim_days"])) * float(va10d["excess_bed_day_price"])
    assert va10d["nel_price"] == 6022.0
    assert spells["cost"].to_list() == [6022.0 + max(excess, 0.0), 9766.0]
    assert spells["tariff_edition"].cast(pl.String).to_list() == ["2016-17", "2017-18"]


def test_fallback_pairs_with_the_reference_costs_of_the_same_year(shipped_tables: costing.TableSet) -> None:
    # DZ11V (HRG4+) is not in the 2016/17 tariff (HRG4 design): fixed 2016-17 tariff falls
    # back to the 2016-17 reference costs, never another year's
    rec = frame(apc(los=3, method="21", hrg="DZ11V"))
    out = costing.price(rec, shipped_tables, CostingConfig(tariff_edition="2016-17"))
    dz11v = shipped_tables.table("reference_cost", "2016-17").filter(
        (pl.col("currency_code") == "DZ11V") & (pl.col("department_code") == "NEL"))["unit_cost"][0]
    assert out["cost"][0] == dz11v
    assert out["status"][0] == Status.PRICED_REFERENCE_COST_FALLBACK
    assert out["reference_cost_edition"][0] == "2016-17"
    # 2022-23 has no reference costs of its own year: the record needing the fallback says so
    out = costing.price(rec.with_columns(pl.lit("ZZ99Z").alias("hrg_code")), shipped_tables,
                        CostingConfig(tariff_edition="2022-23"))
    assert out["status"][0] == Status.NO_EDITION_FOR_DATE and out["cost"][0] is None
    # ... unless a reference-cost edition is named: then priced, and the run warns
    cfg = CostingConfig(tariff_edition="2022-23", reference_cost_edition="2023-24")
    out = costing.price(frame(apc(los=3, method="21", hrg="DZ11V", admit=D(2022, 6, 1)),
                              apc("b", los=1, method="21", hrg="AA22C")), shipped_tables, cfg)
    assert out["reference_cost_edition"].cast(pl.String).to_list() == ["2023-24", "2023-24"]
    warnings = run_warnings(out, shipped_tables, cfg)
    assert any("tariff 2022-23 is paired with reference costs 2023-24" in w for w in warnings)


def test_consultation_and_grouper_phase_warnings(shipped_tables: costing.TableSet) -> None:
    cfg = CostingConfig()
    out = costing.price(frame(apc("a", admit=D(2016, 6, 1), hrg="VA10A"),
                              apc("b", admit=D(2017, 6, 1), hrg="AA22C")), shipped_tables, cfg)
    warnings = run_warnings(out, shipped_tables, cfg)
    assert [w.split(" holds")[0] for w in warnings if "consultation" in w] == ["tariff 2017-18"]
    # the 2016/17 tariff is on HRG4, its reference costs on HRG4+: a phase warning
    assert any(w.startswith("tariff 2016-17 (HRG4 2016/17 grouper) and reference costs 2016-17 "
                            "(HRG4+ 2016/17 grouper)") for w in warnings)
    by_edition = hrg_not_found_by_edition(out, shipped_tables)
    shares = {(k, e): s for k, e, s in by_edition.select("kind", "edition", "share_hrg_not_found").iter_rows()}
    # VA10A is in the 2016/17 tariff, AA22C in the 2017/18 one: none missing
    assert shares[("tariff", "2016-17")] == 0.0 and shares[("tariff", "2017-18")] == 0.0


def test_mff_defaults_to_the_tariff_year(shipped_tables: costing.TableSet) -> None:
    # VB01Z type 1 at Worcestershire Health and Care (R1A): 246 x 1.036391 (2016/17 MFF)
    rec = frame({"record_id": "a", "patient_id": "p", "setting": "ae", "hrg_code": "VB01Z",
                 "department_type": "01", "activity_date": D(2016, 6, 1), "provider_code": "R1A"})
    out = costing.price(rec, shipped_tables, CostingConfig(tariff_edition="2016-17", mff=True))
    assert out["mff_factor"][0] == 1.036391
    assert out["cost"][0] == pytest.approx(246 * 1.036391)


def test_compare_what_will_fall_back(shipped_tables: costing.TableSet) -> None:
    counts = shipped_tables.compare("2016-17", "2016-17")
    got = {(p, g): n for p, g, n in counts.select("pod", "group", "n_codes").iter_rows()}
    # A&E: the eleven HRGs VB01Z-VB11Z of sheet "3 A&E" are priced; VB99Z only in the
    # reference costs
    assert (got[("AE", "tariff")], got[("AE", "reference_cost_only")]) == (11, 1)
    assert ("AE", "neither") not in got
    # NEL: every tariff row with a non-elective price, then the HRG4+ codes only the
    # 2016/17 reference costs hold (NEL or NES) -- counted here from the two tables
    t = shipped_tables.table("tariff", "2016-17", "apc")
    rc = shipped_tables.table("reference_cost", "2016-17").filter(
        pl.col("department_code").is_in(["NEL", "NES"]))
    rc_codes = set(rc.filter(pl.col("unit_cost").is_not_null())["currency_code"])
    priced = set(t.filter(pl.col("nel_price").is_not_null())["hrg_code"])
    assert got[("NEL", "tariff")] == len(priced) == 1283
    assert got[("NEL", "reference_cost_only")] == len(rc_codes - priced)
    detail = shipped_tables.compare("2016-17", "2016-17", detail=True)
    # GA10D is listed in the tariff with no day-case price and has no DC reference cost
    assert detail.filter(pl.col("group") == "neither").select("pod", "code").rows() == [("DC", "GA10D")]


def test_compare_cli(shipped_tables: costing.TableSet, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from costing.cli import main

    out = tmp_path / "detail.csv"
    res = CliRunner().invoke(main, ["tables", "compare", "--tariff", "2016-17",
                                    "--reference-costs", "2016-17", "--detail", str(out)])
    assert res.exit_code == 0, res.output
    assert "AE" in res.output and "reference_cost_only" in res.output
    assert pl.read_csv(out).height == shipped_tables.compare("2016-17", "2016-17")["n_codes"].sum()


# --------------------------------------------------------------------------------------
# the 2008/09 (HRG v3.5) layout a user must supply: a fixture with invented prices
# --------------------------------------------------------------------------------------

PBR_2008_09 = Path(__file__).resolve().parents[1] / "fixtures" / "pbr_2008_09"


def test_v35_2008_09_layout_imports_and_prices(tmp_path: Path) -> None:
    costing.importers.import_edition("tariff", PBR_2008_09, edition="2008-09", into=tmp_path,
                                     hrg_version="v3.5")
    tables = costing.load_tables(tmp_path)
    assert tables.get("tariff", "2008-09").hrg_version == "v3.5"
    v35 = {"hrg_version": "v3.5", "admit": D(2008, 10, 1)}
    records = frame(
        apc("dc", los=0, method="11", cls="2", hrg="H02", **v35),    # day case: elective price 5,000
        apc("el", los=23, method="11", cls="1", hrg="H02", **v35),   # 5,000 + (23 - 20) x 200 = 5,600
        apc("nel", los=12, method="21", hrg="E12", **v35),           # 2,000 + (12 - 10) x 150 = 2,300
        apc("sse", los=1, method="21", hrg="E12", age=70, **v35),    # short-stay emergency 600
        apc("hrg4", los=2, method="21", hrg="DZ11V", admit=D(2008, 10, 1)),  # HRG4 code: mismatch
        {"record_id": "op", "patient_id": "p", "setting": "op", "activity_date": D(2008, 10, 1),
         "treatment_function_code": "300", "first_attendance": "1", "attended": "5"},  # 200
        {"record_id": "ae", "patient_id": "q", "setting": "ae", "activity_date": D(2008, 10, 1),
         "hrg_code": "V01", "hrg_version": "v3.5", "department_type": "03"},          # type 3: 50
    )
    cfg = CostingConfig(tariff_edition="2008-09", chain=("tariff",))
    # the parameter table starts 2016/17: a 2008/09 tariff with short-stay prices needs its rules
    with pytest.raises(ConfigError, match="2008-09 .* older than the policy parameter table.*sse_min_age"):
        costing.price(records, tables, cfg)
    # the fixture's short-stay rule: LoS 0 or 1 day, aged 19 and over, methods 21-25 and 2A-2D
    cfg = cfg.model_copy(update={"sse_max_los": 1, "sse_min_age": 19, "sse_admission_methods": (
        "21", "22", "23", "24", "25", "2A", "2B", "2C", "2D")})
    out = costing.price(records, tables, cfg)
    cost = dict(zip(out["record_id"], out["cost"], strict=True))
    assert cost == {"dc": 5000.0, "el": 5600.0, "nel": 2300.0, "sse": 600.0, "hrg4": None,
                    "op": 200.0, "ae": 50.0}
    status = dict(zip(out["record_id"], out["status"], strict=True))
    assert status["hrg4"] == Status.HRG_VERSION_MISMATCH
