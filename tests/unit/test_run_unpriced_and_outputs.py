"""`costing run` / `evaluate` on unpriced activity (warn, fail, statuses) and the safety of
outputs (atomic output folder, no input overwritten, clashing input columns kept)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import costing
from costing.cli import main
from costing.errors import InputError
from costing.run import RunConfig, run
from tests.unit.test_cli import APC_CSV

# Four APC episodes in 2017 (priced by the shipped 2017-18 reference costs); ZZ99Z is not an
# HRG, so one record in four is unpriced (25% of records).
APC_2017 = APC_CSV
COHORT = """patient_id,index_date,group,matched_set
p1,2017-08-01,intervention,m1
p2,2017-08-01,control,m1
p3,2017-08-01,control,m2
"""
RUN = """[inputs.apc]
path = "apc.csv"

[cohort]
path = "cohort.csv"

[pricing]
perspective = "provider"
{edition}

[evaluate]
n_boot = 50

[output]
dir = "out"
report = false
{extra}"""


def write_run(d: Path, *, apc: str = APC_2017, edition: str = 'reference_cost_edition = "2017-18"',
              extra: str = "") -> Path:
    (d / "apc.csv").write_text(apc)
    (d / "cohort.csv").write_text(COHORT)
    (d / "run.toml").write_text(RUN.format(edition=edition, extra=extra))
    return d / "run.toml"


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def cli(*args: str) -> object:
    return CliRunner().invoke(main, list(args))


def test_dated_mode_without_an_edition_fails_and_says_what_to_do(tmp_path: Path) -> None:
    # the same activity in 2003: dated mode (no edition set) finds no edition in force
    run_file = write_run(tmp_path, apc=APC_2017.replace("2017-", "2003-"), edition="")
    edit(run_file, "report = false", "report = true")
    (tmp_path / "cohort.csv").write_text(COHORT.replace("2017-", "2003-"))
    res = cli("run", "-q", str(run_file))
    assert res.exit_code == 1, res.output
    assert "no table edition for 2003-04 dates: 4 records" in res.output
    assert "set tariff_edition/reference_cost_edition (fixed mode)" in res.output
    assert "whole categories unpriced" in res.output and "Traceback" not in res.output
    out = tmp_path / "out"
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["unpriced"]["level"] == "fail"
    assert manifest["unpriced"]["n_unpriced"] == manifest["unpriced"]["n_records"] == 4
    did = pl.read_csv(out / "did.csv").filter(pl.col("measure") == "cost")  # £, not activity
    status = dict(zip(did["category"], did["estimate_status"], strict=True))
    # APC only: elective (p1 e2, p2 e3) and emergency (p1 e1, p3 e4) withheld, the total too;
    # outpatient and A&E have no activity at all
    assert status == {"elective": "withheld_unpriced", "non_elective": "withheld_unpriced",
                      "outpatient": "no_activity", "ae": "no_activity",
                      "total": "withheld_unpriced"}
    withheld = did.filter(pl.col("estimate_status") == "withheld_unpriced")
    assert withheld["did"].null_count() == withheld.height == 3  # no confident £0
    unpriced = pl.read_csv(out / "unpriced.csv")
    assert unpriced.filter(pl.col("category") == "total")["n_unpriced"].sum() == 4
    sheets = pl.read_excel(out / "report.xlsx", sheet_id=0)
    assert {"unpriced", "unpriced_by_category", "unpriced_by_window"} <= set(sheets)
    assert "no table edition for 2003-04" in " ".join(sheets["unpriced"].to_series().to_list())
    # `costing evaluate` on those window costs says the same and exits 1
    res = cli("evaluate", str(out / "window_costs.csv"), "--boot", "50", "-o",
              str(tmp_path / "did.csv"))
    assert res.exit_code == 1, res.output
    assert "no estimate" in res.output and "total DiD withheld" in res.output
    evaluated = pl.read_csv(tmp_path / "did.csv").filter(pl.col("measure") == "cost")
    assert evaluated["estimate_status"].to_list() == list(status.values())


def test_thresholds_from_options_and_run_file(tmp_path: Path) -> None:
    run_file = write_run(tmp_path)
    # 1 of 4 records unpriced (25%), whatever the £-weighted share
    res = cli("run", "-q", str(run_file), "--warn-unpriced", "0.2", "--fail-unpriced", "0.99")
    assert res.exit_code == 0, res.output
    assert "costing: warning: 1 of 4 records unpriced (25.0% of records" in res.output
    assert "ZZ99Z" in res.output
    res = cli("run", "-q", str(run_file), "--fail-unpriced", "0.2")
    assert res.exit_code == 1 and "costing: error: 1 of 4 records unpriced" in res.output
    write_run(tmp_path, extra="\n[unpriced]\nwarn = 0.1\nfail = 0.2\n")
    res = cli("run", "-q", str(run_file))
    assert res.exit_code == 1, res.output
    assert json.loads((tmp_path / "out" / "run_manifest.json").read_text())["unpriced"][
        "thresholds"] == {"warn": 0.1, "fail": 0.2}
    write_run(tmp_path, extra="\n[unpriced]\nwarn = 0.5\nfail = 0.2\n")
    res = cli("run", "-q", str(run_file))
    assert res.exit_code == 1 and "above the fail threshold" in res.output
    # a refused run file writes nothing: the previous output stands
    assert json.loads((tmp_path / "out" / "run_manifest.json").read_text())["unpriced"][
        "thresholds"] == {"warn": 0.1, "fail": 0.2}


def test_a_failed_run_leaves_the_previous_output_folder_complete(tmp_path: Path) -> None:
    run_file = write_run(tmp_path)
    first = run(run_file)
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert first.files["did"] == out / "did.csv" and first.output_dir == out
    # the same run with an evaluation that fails after pricing and windows were written
    edit(run_file, "n_boot = 50", 'n_boot = 50\ngroup = "arm"')
    with pytest.raises(InputError, match="arm"):
        run(run_file)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_an_interrupted_run_leaves_the_previous_folder(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    run_file = write_run(tmp_path)
    run(run_file)
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("costing.manifest.write_run_manifest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(run_file)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_new_run_replaces_the_whole_folder(tmp_path: Path) -> None:
    run_file = write_run(tmp_path)
    run(run_file)
    out = tmp_path / "out"
    assert (out / "did.csv").is_file()
    # without an evaluation there is no did.csv: the old one must not linger beside the new
    edit(run_file, "[evaluate]\nn_boot = 50\n", "")
    run(run_file)
    assert not (out / "did.csv").exists() and (out / "run_manifest.json").is_file()


@pytest.mark.parametrize("target", [".", "apc.csv", "cohort.csv", "run.toml"])
def test_an_output_folder_that_is_or_holds_an_input_is_refused(tmp_path: Path, target: str) -> None:
    run_file = write_run(tmp_path)
    edit(run_file, 'dir = "out"', f'dir = "{target}"')
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    res = cli("run", "-q", str(run_file))
    assert res.exit_code == 1, res.output
    assert "refusing to write here" in res.output
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_folder_of_other_files_is_not_replaced(tmp_path: Path) -> None:
    run_file = write_run(tmp_path)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    res = cli("run", "-q", str(run_file))
    assert res.exit_code == 1 and "not a costing output folder" in res.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_price_and_evaluate_refuse_to_overwrite_their_input(tmp_path: Path) -> None:
    apc = tmp_path / "apc.csv"
    apc.write_text(APC_2017)
    res = cli("price", str(apc), "--setting", "apc", "-o", str(apc))
    assert res.exit_code == 1 and "refusing to write here" in res.output
    assert apc.read_text() == APC_2017
    cohort = tmp_path / "cohort.csv"
    cohort.write_text(COHORT)
    res = cli("windows", str(apc), "--cohort", str(cohort), "-o", str(cohort))
    assert res.exit_code == 1 and cohort.read_text() == COHORT


def test_input_columns_named_like_outputs_are_kept_as_original(tmp_path: Path) -> None:
    apc = tmp_path / "apc.csv"
    lines = APC_2017.splitlines()
    apc.write_text("\n".join([lines[0] + ",cost,status,pod"]
                             + [ln + ",1.5,mine,XX" for ln in lines[1:]]) + "\n")
    out = tmp_path / "p.csv"
    res = cli("price", str(apc), "--setting", "apc", "--perspective", "provider",
              "--reference-costs", "2017-18", "-o", str(out))
    assert res.exit_code == 0, res.output
    priced = pl.read_csv(out, infer_schema=False)
    assert priced["cost_original"].to_list() == ["1.5"] * 4
    assert priced["status_original"].to_list() == ["mine"] * 4
    assert priced["pod_original"].to_list() == ["XX"] * 4
    assert "XX" not in priced["pod"].to_list() and "mine" not in priced["status"].to_list()
    # the API too: a canonical frame with a `cost` column keeps it as cost_original
    frame = costing.read_activity(apc, setting="apc").collect().rename({"cost_original": "cost"})
    api = costing.price(frame, costing.load_tables(),
                        costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18"))
    assert api["cost_original"].to_list() == ["1.5"] * 4
    assert api["cost"].drop_nulls().len() == 3  # priced values, not the input's


def test_run_config_refuses_bad_thresholds() -> None:
    with pytest.raises(costing.ConfigError, match="unpriced"):
        RunConfig.from_mapping({"inputs": {"apc": {"path": "a.csv"}},
                                "unpriced": {"warn": 0.5, "fail": 0.2}})
    with pytest.raises(costing.ConfigError, match="fail"):
        RunConfig.from_mapping({"inputs": {"apc": {"path": "a.csv"}}, "unpriced": {"fail": 2}})


def test_run_warns_per_file_of_repeated_record_ids(tmp_path: Path) -> None:
    # e2 given twice in the extract: the second is duplicate_record (not priced again), and the
    # run says so per file on stderr and in the manifest, not only in its status counts
    run_file = write_run(tmp_path, apc=APC_2017 + "p1,e2,2017-09-01,2017-09-10,11,1,HN12F,RXX,50\n")
    res = cli("run", "-q", str(run_file))
    line = "1 record(s) repeat an earlier record's id (first at row 5)"
    assert line in res.output, res.output
    manifest = json.loads((tmp_path / "out" / "run_manifest.json").read_text())
    assert any(line in w and "apc.csv" in w for w in manifest["warnings"])
    priced = pl.read_parquet(tmp_path / "out" / "priced.parquet")
    assert priced.filter(pl.col("status_name") == "duplicate_record").height == 1
