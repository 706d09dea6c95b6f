"""Pricing at the reference-cost years 2011/12-2024/25: what an edition lacks is a status,
bed days folded into unit costs are never added again, and trim points are chosen openly."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import costing
from costing import CostingConfig, Status
from costing.cli import main
from costing.coverage import trimpoint_coverage
from costing.errors import ConfigError
from costing.pricing import choose_trimpoints
from costing.report import summary_line

D = dt.date
PROVIDER = CostingConfig(perspective="provider")


@pytest.fixture(scope="module")
def tables() -> costing.TableSet:
    return costing.load_tables()


def _unit_cost(tables: costing.TableSet, edition: str, dept: str, code: str) -> float:
    t = tables.table("reference_cost", edition, "reference_costs")
    row = t.filter((pl.col("department_code") == dept) & (pl.col("currency_code") == code)
                   & pl.col("service_code").is_null())
    assert row.height == 1, (edition, dept, code)
    return float(row["unit_cost"][0])


def _trim(tables: costing.TableSet, edition: str, hrg: str) -> int:
    t = tables.table("trimpoints", edition, "trimpoints").filter(pl.col("hrg_code") == hrg)
    return int(t["trim_days"][0])


def _record(rid: str, setting: str, day: dt.date, **extra: object) -> dict[str, object]:
    return {"record_id": rid, "patient_id": "p1", "setting": setting, "activity_date": day,
            "hrg_version": "HRG4", **extra}


def _emergency(rid: str, admitted: dt.date, los: int, hrg: str = "DZ11V") -> dict[str, object]:
    return _record(rid, "apc", admitted, discharge_date=admitted + dt.timedelta(days=los),
                   admission_method="21", patient_classification="1", hrg_code=hrg)


def _price(tables: costing.TableSet, *records: dict[str, object],
           cfg: CostingConfig = PROVIDER) -> pl.DataFrame:
    return costing.price(pl.DataFrame(list(records)), tables, cfg)


# --------------------------------------------------------------------------------------
# bed days folded into the unit costs (2018/19 on)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("edition", ["2018-19", "2024-25"])
def test_twenty_day_emergency_spell_has_no_excess_day_component(
        tables: costing.TableSet, edition: str) -> None:
    # 20 days is far beyond DZ11V's 2017/18 trim point (8 days): an edition with excess-bed-day
    # costs would add 12 days. These editions have none: the price is the NEL unit cost alone.
    assert _trim(tables, "2017-18", "DZ11V") < 20
    nel = _unit_cost(tables, edition, "NEL", "DZ11V")  # 1,662.10 (2018/19), 2,306.23 (2024/25)
    for cfg in (CostingConfig(perspective="provider", reference_cost_edition=edition),
                CostingConfig(perspective="provider", reference_cost_edition=edition,
                              trimpoints_edition="2017-18")):
        out = _price(tables, _emergency("e1", D(2018, 6, 1), 20), cfg=cfg)
        row = out.row(0, named=True)
        assert (row["excess_bed_days"], row["excess_bed_day_cost"]) == (0, 0.0)
        assert row["cost"] == row["base_price"] == nel
    assert round(_unit_cost(tables, "2018-19", "NEL", "DZ11V"), 2) == 1662.10
    assert round(_unit_cost(tables, "2024-25", "NEL", "DZ11V"), 2) == 2306.23


# --------------------------------------------------------------------------------------
# what an edition lacks is a status
# --------------------------------------------------------------------------------------


AT_2011_12 = CostingConfig(perspective="provider", reference_cost_edition="2011-12")


def test_departments_absent_from_2011_12_are_statuses_naming_them(tables: costing.TableSet) -> None:
    out = _price(
        tables,
        _record("op", "op", D(2011, 6, 1), treatment_function_code="100", first_attendance="1",
                attended="5"),
        _record("op_proc", "op", D(2011, 6, 1), treatment_function_code="100",
                first_attendance="2", attended="5", hrg_code="AA02A"),
        _record("ae", "ae", D(2011, 6, 1), hrg_code="VB01Z", department_type="01"),
        _record("rp", "apc", D(2011, 6, 1), discharge_date=D(2011, 6, 1), admission_method="11",
                patient_classification="3", hrg_code="AA02A"),
        cfg=AT_2011_12,
    )
    assert out["cost"].to_list() == [None] * 4
    assert out["reference_cost_edition"].cast(pl.String).to_list() == ["2011-12"] * 4
    assert out["status"].to_list() == [
        Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION,
        Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION,
        Status.NO_AE_COSTS_IN_EDITION,
        Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION,
    ]
    assert "outpatient" in out["status_name"][0] and "ae" in out["status_name"][2]


def test_2011_12_admitted_care_is_priced_to_the_pound(tables: costing.TableSet) -> None:
    # AA02A NEL 7,434 + (20 - trim) x NEL_XS 320 (shared CSV line 2), trim points substituted
    # from 2017/18 (the declared default) where the 2011/12 HRG has one
    out = _price(tables, _emergency("e1", D(2011, 6, 1), 20, hrg="AA02A"), cfg=AT_2011_12)
    row = out.row(0, named=True)
    assert row["base_price"] == 7434.0
    trims = tables.table("trimpoints", "2017-18", "trimpoints")
    if "AA02A" in trims["hrg_code"].to_list():
        assert row["cost"] == 7434.0 + (20 - _trim(tables, "2017-18", "AA02A")) * 320.0
    else:
        assert (row["cost"], row["excess_bed_days"]) == (7434.0, 0)


def test_ae_at_2024_25_is_priced_at_the_all_types_row_and_says_so(tables: costing.TableSet) -> None:
    out = _price(tables, *[_record(f"a{t}", "ae", D(2024, 6, 1), hrg_code="VB01Z",
                                   department_type=t) for t in ("01", "03")],
                 cfg=CostingConfig(perspective="provider", reference_cost_edition="2024-25"))
    all_types = _unit_cost(tables, "2024-25", "AE", "VB01Z")  # 1,179.98, "Emergency Care" VB01Z
    assert out["cost"].to_list() == [all_types, all_types]
    assert out["status"].to_list() == [Status.PRICED_REFERENCE_COST_DEPARTMENT_WIDE] * 2
    cov = costing.coverage(out)
    assert cov["status_name"].to_list() == ["priced_reference_cost_department_wide"]
    # 2017/18 has the department-type rows: no department-wide status there
    typed = _price(tables, _record("a", "ae", D(2017, 6, 1), hrg_code="VB01Z", department_type="01"),
                   cfg=CostingConfig(perspective="provider", reference_cost_edition="2017-18"))
    assert typed["status"].to_list() == [Status.PRICED_REFERENCE_COST]


# --------------------------------------------------------------------------------------
# trim points chosen openly
# --------------------------------------------------------------------------------------


def test_trimpoint_edition_is_own_year_configured_or_declared_default(
        tables: costing.TableSet, tmp_path: Path) -> None:
    rc = lambda e: tables.get("reference_cost", e)  # noqa: E731
    own = choose_trimpoints(tables, rc("2017-18"), PROVIDER)
    assert (own.trimpoints_edition, own.basis) == ("2017-18", "own year")
    default = choose_trimpoints(tables, rc("2014-15"), PROVIDER)
    assert (default.trimpoints_edition, default.basis) == ("2017-18", "default substitute")
    named = choose_trimpoints(tables, rc("2014-15"), CostingConfig(trimpoints_edition="2017-18"))
    assert (named.trimpoints_edition, named.basis) == ("2017-18", "configured substitute")
    folded = choose_trimpoints(tables, rc("2018-19"), PROVIDER)
    assert (folded.trimpoints_edition, folded.basis) == (None, "not used")
    # no trim points held at all: an edition that needs them is refused, not silently unpriced
    without = tables.without("trimpoints")
    with pytest.raises(ConfigError, match="trimpoints_edition"):
        choose_trimpoints(without, rc("2014-15"), PROVIDER)
    off = choose_trimpoints(without, rc("2014-15"), CostingConfig(long_stay=False))
    assert off.basis == "not used"


def test_substitute_trim_points_price_2014_15_and_are_reported(tables: costing.TableSet) -> None:
    # a 2013/14 emergency HRG that the 2017/18 trim points (HRG4+) do not hold
    trim_codes = tables.table("trimpoints", "2017-18", "trimpoints")["hrg_code"]
    old = tables.table("reference_cost", "2013-14", "reference_costs").filter(
        (pl.col("department_code") == "NEL") & ~pl.col("currency_code").is_in(trim_codes.implode())
        & pl.col("unit_cost").is_not_null())["currency_code"].sort()[0]
    out = _price(tables, _emergency("e1", D(2014, 6, 1), 20), _emergency("e2", D(2017, 6, 1), 20),
                 _emergency("e3", D(2013, 6, 1), 20, hrg=old))
    # e1: 2014/15 NEL DZ11V + (20 - 2017/18 trim) x 2014/15 NEL_XS
    trim = _trim(tables, "2017-18", "DZ11V")
    expected = (_unit_cost(tables, "2014-15", "NEL", "DZ11V")
                + (20 - trim) * _unit_cost(tables, "2014-15", "NEL_XS", "DZ11V"))
    assert out["cost"][0] == pytest.approx(expected, rel=1e-12)
    assert out["excess_bed_days"][0] == 20 - trim
    trim_cov = trimpoint_coverage(out, tables, PROVIDER)
    rows = {r["reference_cost_edition"]: r for r in trim_cov.iter_rows(named=True)}
    assert rows["2014-15"]["basis"] == "default substitute"
    assert rows["2017-18"]["basis"] == "own year"
    # the 2013/14 HRG has no 2017/18 trim point: counted, and no bed days added
    assert (rows["2013-14"]["n_records"], rows["2013-14"]["n_without_trim_point"]) == (1, 1)
    assert out["excess_bed_days"][2] == 0 and out["cost"][2] is not None
    line = summary_line(out, trimpoints=trim_cov)
    assert "trim points 2017-18 (default substitute) for reference costs 2013-14, 2014-15" in line
    assert "HRG without a trim point: 1 records" in line


APC_CSV = """PSEUDO_HESID,EPIKEY,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,PROCODE3,STARTAGE
p1,e1,2014-06-01,2014-06-21,21,1,DZ11V,RXX,50
p1,e2,2018-06-01,2018-06-21,21,1,DZ11V,RXX,50
"""


def test_run_manifest_and_summary_say_which_trim_points_priced_which_year(tmp_path: Path) -> None:
    (tmp_path / "apc.csv").write_text(APC_CSV)
    (tmp_path / "run.toml").write_text(
        '[inputs.apc]\npath = "apc.csv"\n\n[pricing]\nperspective = "provider"\n\n'
        '[output]\ndir = "out"\nreport = false\n')
    res = CliRunner().invoke(main, ["run", str(tmp_path / "run.toml"), "-q"])
    assert res.exit_code == 0, res.output
    assert "trim points 2017-18 (default substitute) for reference costs 2014-15" in res.output
    manifest = json.loads((tmp_path / "out" / "run_manifest.json").read_text())
    used = {r["reference_cost_edition"]: r for r in manifest["trimpoints"]}
    assert used["2014-15"]["trimpoints_edition"] == "2017-18"
    assert used["2014-15"]["basis"] == "default substitute"
    assert (used["2018-19"]["trimpoints_edition"], used["2018-19"]["basis"]) == (None, "not used")
    cov = pl.read_csv(tmp_path / "out" / "coverage_trimpoints.csv")
    assert cov["reference_cost_edition"].to_list() == ["2014-15", "2018-19"]


def test_dated_mode_prices_2011_12_to_2018_19_each_at_its_own_year(tables: costing.TableSet) -> None:
    years = range(2011, 2019)
    out = _price(tables, *[_emergency(f"y{y}", D(y, 6, 1), 3) for y in years])
    editions = out["reference_cost_edition"].cast(pl.String).to_list()
    assert editions == [f"{y}-{(y + 1) % 100:02d}" if y != 2012 else None for y in years]
    status = dict(zip(years, out["status"].to_list(), strict=True))
    assert status[2012] == Status.NO_EDITION_FOR_DATE  # no public copy of 2012/13
    # DZ11V is an HRG4+ code (2014/15 on): not in the HRG4 schedules of 2011/12 and 2013/14
    assert status[2011] == status[2013] == Status.HRG_NOT_FOUND
    for y in range(2014, 2019):
        nel = _unit_cost(tables, f"{y}-{(y + 1) % 100:02d}", "NEL", "DZ11V")
        assert out.filter(pl.col("record_id") == f"y{y}")["cost"][0] == nel, y
