"""Duplicates are reported, never priced twice; one CLI call prices a whole study (several
extracts of different settings) and `costing windows` takes several priced files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner, Result

import costing
from costing import Status
from costing.cli import main
from costing.errors import InputError, ValidationError
from costing.io import DUPLICATE_REASON, detect_setting, duplicate_records, read_activity
from tests.fixtures.tables import write_reference_costs

APC = """PSEUDO_HESID,EPIKEY,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,PROCODE3
p1,e1,2017-06-01,2017-06-03,21,1,DZ11V,RXX
p2,e2,2017-06-05,2017-06-08,21,1,DZ11V,RXX
p3,e1,2017-07-01,2017-07-04,21,1,DZ11V,RXX
"""
OP = """PSEUDO_HESID,ATTENDKEY,APPTDATE,ATTENDED,FIRSTATT,TRETSPEF
p1,o1,2017-08-01,5,1,100
p2,o2,2017-08-02,5,2,100
"""
AE = """PSEUDO_HESID,AEKEY,ARRIVALDATE,AEDEPTTYPE,SUSHRG,AEATTENDDISP
p1,a1,2017-09-01,01,VB01Z,02
"""
RC = ["--perspective", "provider", "--reference-costs", "2017-18"]


@pytest.fixture
def study(tmp_path: Path) -> dict[str, Path]:
    # invented prices: NEL 1000, CL first 150 / follow-up 90, A&E type 1 not admitted 100
    write_reference_costs(tmp_path / "tables", "2017-18", [
        ("NEL", None, "DZ11V", 1000.0), ("CL", "100", "WF01B", 150.0), ("CL", "100", "WF01A", 90.0),
        ("AE", "T01NA", "VB01Z", 100.0)])
    out = {"tables": tmp_path / "tables"}
    for name, text in (("apc", APC), ("op", OP), ("ae", AE)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text)
    return out


def _run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_a_repeated_record_id_in_a_file_is_kept_with_a_status_and_not_priced(study: dict[str, Path]) -> None:
    tables = costing.load_tables(study["tables"])
    activity = read_activity(study["apc"], setting="apc")
    out = costing.price(activity, tables, costing.CostingConfig(perspective="provider",
                                                                reference_cost_edition="2017-18"))
    assert out.height == 3  # every row comes out
    assert out["status"].to_list() == [Status.PRICED_REFERENCE_COST, Status.PRICED_REFERENCE_COST,
                                       Status.DUPLICATE_RECORD]
    assert out["cost"].to_list() == [1000.0, 1000.0, None]  # priced once
    assert out["invalid_reason"][2] == DUPLICATE_REASON
    summary = duplicate_records(activity)
    assert summary.select("n_duplicates", "first_row").rows() == [(1, 3)]


def test_per_spell_a_duplicate_episode_is_not_merged_into_the_spell(study: dict[str, Path]) -> None:
    # the same file twice: each episode's second copy would otherwise join its spell
    tables = costing.load_tables(study["tables"])
    activity = read_activity([study["apc"], study["apc"]], setting="apc")
    out = costing.price(activity, tables, costing.CostingConfig(reference_cost_edition="2017-18",
                                                                chain=("reference_cost",)))
    assert out.height == 6 and out["n_episodes"].sum() == 6
    assert out["status"].to_list().count(Status.DUPLICATE_RECORD) == 4  # e1 (row 3) and 3 copies
    assert out["cost"].sum() == 2000.0  # e1 and e2, once each


def test_strict_reading_refuses_a_file_given_twice(study: dict[str, Path]) -> None:
    with pytest.raises(ValidationError) as err:
        read_activity([study["op"], study["op"]], setting="op", strict=True)
    assert "the same file given twice" in str(err.value)
    assert "repeats an earlier record's id" in str(err.value)
    assert err.value.failures.height == 2


def test_cli_warns_per_file_and_strict_exits_1(study: dict[str, Path], tmp_path: Path) -> None:
    res = _run("price", "--apc", study["apc"], "--tables", study["tables"], *RC, "-o", tmp_path / "p.csv")
    assert res.exit_code == 0, res.output
    assert f"warning: {study['apc']}: 1 record(s) repeat an earlier record's id (first at row 3)" in res.output
    assert pl.read_csv(tmp_path / "p.csv").height == 3
    res = _run("price", "--apc", study["apc"], "--strict", "--tables", study["tables"], *RC,
               "-o", tmp_path / "q.csv")
    assert res.exit_code == 1 and "record_id" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "q.csv").exists()


def test_one_call_prices_a_study_with_settings_told_from_columns(study: dict[str, Path], tmp_path: Path) -> None:
    res = _run("price", study["apc"], study["op"], study["ae"], "--tables", study["tables"], *RC,
               "-o", tmp_path / "study.parquet")
    assert res.exit_code == 0, res.output
    assert f"{study['op']}: setting op, told by its columns ATTENDKEY" in res.output
    assert f"{study['ae']}: setting ae" in res.output
    out = pl.read_parquet(tmp_path / "study.parquet")
    assert out.height == 3 + 2 + 1  # rows conserved
    assert out.group_by("setting").len().sort("setting").rows() == [("ae", 1), ("apc", 3), ("op", 2)]
    # 1000 + 1000 (e1's repeat unpriced) + 150 + 90 + 100
    assert out["cost"].sum() == 2340.0


def test_per_file_flags_and_a_file_of_no_known_setting(study: dict[str, Path], tmp_path: Path) -> None:
    res = _run("price", "--apc", study["apc"], "--op", study["op"], "--ae", study["ae"], "--tables",
               study["tables"], *RC, "-o", tmp_path / "flags.csv")
    assert res.exit_code == 0, res.output
    assert "told by its columns" not in res.output
    assert pl.read_csv(tmp_path / "flags.csv").height == 6
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    res = _run("price", odd, "--tables", study["tables"], *RC, "-o", tmp_path / "odd_out.csv")
    assert res.exit_code == 1 and "cannot tell its setting" in res.output and "--apc/--op/--ae" in res.output
    with pytest.raises(InputError, match="cannot tell its setting"):
        detect_setting(odd)


def test_windows_takes_several_priced_files_but_not_one_twice(study: dict[str, Path], tmp_path: Path) -> None:
    for s in ("apc", "op", "ae"):
        assert _run("price", f"--{s}", study[s], "--tables", study["tables"], *RC,
                    "-o", tmp_path / f"{s}.parquet").exit_code == 0
    cohort = tmp_path / "cohort.csv"
    cohort.write_text("patient_id,index_date\np1,2017-07-01\np2,2017-07-01\np3,2017-07-01\n")
    files = [tmp_path / f"{s}.parquet" for s in ("apc", "op", "ae")]
    res = _run("windows", *files, "--cohort", cohort, "--windows", "-1,0", "-o", tmp_path / "w.csv")
    assert res.exit_code == 0, res.output
    w = pl.read_csv(tmp_path / "w.csv")
    # window -1 (Jan-Jun 2017): e1 1000 + e2 1000; window 0 (Jul-Dec): op 150 + 90, A&E 100
    # (e1's repeat, 1 July, is unpriced)
    assert w.group_by("window").agg(pl.col("cost").sum()).sort("window").rows() == [(-1, 2000.0), (0, 340.0)]
    res = _run("windows", files[0], files[0], "--cohort", cohort, "-o", tmp_path / "w2.csv")
    assert res.exit_code == 1 and "given more than once" in res.output
    assert not (tmp_path / "w2.csv").exists()
