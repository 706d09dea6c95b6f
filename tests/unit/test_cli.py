"""CLI: price, windows, run and report through click's CliRunner, ok paths and failures."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import costing
from costing.cli import main

APC_CSV = """PSEUDO_HESID,EPIKEY,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,PROCODE3,STARTAGE
p1,e1,2017-06-01,2017-06-13,21,1,DZ11V,RXX,50
p1,e2,2017-09-01,2017-09-10,11,1,HN12F,RXX,50
p2,e3,2017-06-05,2017-06-05,11,2,HN12F,RXX,70
p3,e4,2017-07-01,2017-07-02,21,1,ZZ99Z,RXX,30
"""
COHORT_CSV = """patient_id,index_date,group,matched_set
p1,2017-08-01,intervention,m1
p2,2017-08-01,control,m1
p9,2017-08-01,control,m1
"""
PROVIDER = ["--perspective", "provider", "--reference-costs", "2017-18"]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    apc = tmp_path / "apc.csv"
    apc.write_text(APC_CSV)
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(COHORT_CSV)
    return {"apc": apc, "cohort": cohort, "dir": tmp_path}


def _run(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_price_csv_to_parquet_matches_api(files: dict[str, Path]) -> None:
    out = files["dir"] / "priced.parquet"
    res = _run("price", str(files["apc"]), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert res.exit_code == 0, res.output
    assert "4 records read" in res.output and "priced by tariff 0, by reference cost 3" in res.output
    got = pl.read_parquet(out)
    api = costing.price(costing.read_activity(files["apc"], setting="apc"),
                        config=costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18"))
    assert got.equals(api)
    # DZ11V 12-day emergency episode, shipped 2017/18 schedule: 1,580.53 + 4 x 291.63
    assert round(got.filter(pl.col("record_id") == "e1")["cost"][0], 2) == 2747.06


def test_price_infers_setting_from_columns(files: dict[str, Path]) -> None:
    out = files["dir"] / "priced.csv"
    res = _run("price", str(files["apc"]), *PROVIDER, "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pl.read_csv(out)["setting"].unique().to_list() == ["apc"]


def test_price_xlsx_output(files: dict[str, Path]) -> None:
    out = files["dir"] / "priced.xlsx"
    res = _run("price", str(files["apc"]), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert res.exit_code == 0, res.output
    back = pl.read_excel(out)
    assert back.height == 4


def test_price_strict_exits_1_when_unpriced(files: dict[str, Path]) -> None:
    res = _run("price", str(files["apc"]), "--setting", "apc", *PROVIDER, "--strict",
               "-o", str(files["dir"] / "p.csv"))
    assert res.exit_code == 1
    assert "unpriced" in res.output


def test_price_missing_column_names_it(files: dict[str, Path]) -> None:
    bad = files["dir"] / "bad.csv"
    bad.write_text(APC_CSV.replace("ADMIMETH", "ADMIMETHOD"))
    res = _run("price", str(bad), "--setting", "apc", "-o", str(files["dir"] / "p.csv"))
    assert res.exit_code == 1
    assert "ADMIMETH" in res.output and "Traceback" not in res.output


def test_price_bad_date_reports_row_in_strict_mode(files: dict[str, Path]) -> None:
    bad = files["dir"] / "bad.csv"
    bad.write_text(APC_CSV.replace("2017-06-05,2017-06-05", "2017-06-05,2017-13-45"))
    res = _run("price", str(bad), "--setting", "apc", "--strict", "-o", str(files["dir"] / "p.csv"))
    assert res.exit_code == 1
    assert "row 3" in res.output and "discharge_date" in res.output
    assert not (files["dir"] / "p.csv").exists()


def test_price_unknown_edition(files: dict[str, Path]) -> None:
    res = _run("price", str(files["apc"]), "--setting", "apc", "--reference-costs", "2001-02",
               "--perspective", "provider", "-o", str(files["dir"] / "p.csv"))
    assert res.exit_code == 1
    assert "no reference_cost edition '2001-02'" in res.output


def test_price_wrong_output_extension_is_usage_error(files: dict[str, Path]) -> None:
    res = _run("price", str(files["apc"]), "--setting", "apc", "-o", str(files["dir"] / "p.txt"))
    assert res.exit_code == 2


def test_price_empty_file(files: dict[str, Path]) -> None:
    empty = files["dir"] / "empty.csv"
    empty.write_text("")
    res = _run("price", str(empty), "--setting", "apc", "-o", str(files["dir"] / "p.csv"))
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_price_unknown_sheet(files: dict[str, Path]) -> None:
    xlsx = files["dir"] / "apc.xlsx"
    pl.read_csv(files["apc"], infer_schema=False).write_excel(xlsx, worksheet="APC")
    ok = _run("price", str(xlsx), "--setting", "apc", "--sheet", "APC", *PROVIDER,
              "-o", str(files["dir"] / "p.csv"))
    assert ok.exit_code == 0, ok.output
    bad = _run("price", str(xlsx), "--setting", "apc", "--sheet", "Nope", "-o", str(files["dir"] / "p.csv"))
    assert bad.exit_code == 1 and "APC" in bad.output


def test_csv_price_windows_excel_round_trip_equals_api(files: dict[str, Path]) -> None:
    d = files["dir"]
    assert _run("price", str(files["apc"]), "--setting", "apc", *PROVIDER, "-o", str(d / "p.csv")).exit_code == 0
    res = _run("windows", str(d / "p.csv"), "--cohort", str(files["cohort"]), "--windows", "-1,0",
               "-o", str(d / "w.xlsx"))
    assert res.exit_code == 0, res.output
    got = pl.read_excel(d / "w.xlsx")
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    priced = costing.price(costing.read_activity(files["apc"], setting="apc"), config=cfg)
    api = costing.cost_by_window(priced, costing.read_cohort(files["cohort"]))
    assert got.height == api.height == 3 * 2 * 4
    assert got["cost"].sum() == pytest.approx(api["cost"].sum())
    assert sorted(got["cost"].round(6).to_list()) == sorted(api["cost"].round(6).to_list())


def test_windows_bad_window_list_is_usage_error(files: dict[str, Path]) -> None:
    res = _run("windows", str(files["apc"]), "--cohort", str(files["cohort"]), "--windows", "a,b",
               "-o", str(files["dir"] / "w.csv"))
    assert res.exit_code == 2


def test_run_and_report(files: dict[str, Path]) -> None:
    d = files["dir"]
    (d / "run.toml").write_text(
        '[inputs.apc]\npath = "apc.csv"\n\n[cohort]\npath = "cohort.csv"\n\n'
        '[pricing]\nperspective = "provider"\nreference_cost_edition = "2017-18"\n\n'
        '[output]\ndir = "out"\n'
    )
    res = _run("run", str(d / "run.toml"))
    assert res.exit_code == 0, res.output
    out = d / "out"
    for name in ("priced.parquet", "window_costs.csv", "coverage.csv", "audit_summary.csv",
                 "run_manifest.json", "report.xlsx", "window_means.png"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["engine"]["version"] == costing.__version__
    (out / "report.xlsx").unlink()
    rep = _run("report", str(out))
    assert rep.exit_code == 0, rep.output
    assert (out / "report.xlsx").exists()


def test_run_file_errors_are_clear(files: dict[str, Path]) -> None:
    d = files["dir"]
    (d / "bad.toml").write_text('[inputs.apc]\npath = "apc.csv"\n[pricing]\nperspective = "payer"\n')
    res = _run("run", str(d / "bad.toml"))
    assert res.exit_code == 1 and "perspective" in res.output and "Traceback" not in res.output
    res = _run("report", str(d))
    assert res.exit_code == 1 and "not a run output folder" in res.output


def test_version_and_help() -> None:
    assert costing.__version__ in _run("--version").output
    for cmd in ("price", "windows", "run", "report", "tables"):
        res = _run(cmd, "--help")
        assert res.exit_code == 0 and ("Example" in res.output or cmd == "tables")
