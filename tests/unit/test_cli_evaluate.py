"""``costing evaluate`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from costing.cli import main

T, C = "intervention", "control"
# Hand example (windows -1, 0): treated A, B; controls C, D.
COSTS = {
    "A": (T, {"elective": (100, 50), "ae": (0, 200)}),
    "B": (T, {"elective": (300, 150), "ae": (100, 100)}),
    "C": (C, {"elective": (200, 200), "ae": (0, 0)}),
    "D": (C, {"elective": (0, 100), "ae": (50, 150)}),
}


def _write(tmp_path: Path, with_group: bool = True) -> Path:
    rows = [
        {"patient_id": pid, "window": w, "window_start": "2010-01-01", "window_end": "2010-07-01",
         "window_days": 181, "category": cat, "cost": float(c), "n_records": 1, "n_unpriced": 0,
         "n_excluded": 0, "days_observed": 181, "group": grp, "matched_set": f"m{pid}"}
        for pid, (grp, costs) in COSTS.items()
        for cat, pair in costs.items()
        for w, c in zip((-1, 0), pair, strict=True)
    ]
    df = pl.DataFrame(rows)
    if not with_group:
        df = df.drop("group")
    path = tmp_path / "windows.csv"
    df.write_csv(path)
    return path


def test_evaluate_ok(tmp_path: Path) -> None:
    wc = _write(tmp_path)
    out = tmp_path / "did.csv"
    chart = tmp_path / "event.png"
    res = CliRunner().invoke(
        main, ["evaluate", str(wc), "--pre", "-1", "--post", "0", "--boot", "100",
               "--measure", "cost", "--chart", str(chart), "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    got = pl.read_csv(out)
    # elective DiD -150, ae +50, total -100 (hand figures in tests/unit/test_did.py)
    assert got["category"].to_list() == ["elective", "ae", "total"]
    assert got["did"].to_list() == [-150.0, 50.0, -100.0]
    assert got["pre_windows"].to_list() == ["[-1]"] * 3
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert "total DiD £-100.00 per patient" in res.stderr


def test_evaluate_with_cohort_and_pretrend(tmp_path: Path) -> None:
    wc = _write(tmp_path, with_group=False)
    cohort = tmp_path / "cohort.csv"
    pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "group": [T, T, C, C],
                  "weight": [1.0, 1.0, 1.0, 3.0]}).write_csv(cohort)
    out = tmp_path / "did.parquet"
    res = CliRunner().invoke(
        main, ["evaluate", str(wc), "--cohort", str(cohort), "--weight", "weight",
               "--boot", "50", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    # weighted control (C weight 1, D weight 3): elective change +75, DiD -100 - 75 = -175
    got = pl.read_parquet(out)
    assert got.filter((pl.col("category") == "elective") & (pl.col("measure") == "cost"))[
        "did"].item() == -175.0


def test_evaluate_subgroups_adjust_and_balance(tmp_path: Path) -> None:
    wc = _write(tmp_path, with_group=False)
    cohort = tmp_path / "cohort.csv"
    pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "group": [T, T, C, C],
                  "site": ["x", "y", "x", "y"], "age": [70, 90, 60, 80]}).write_csv(cohort)
    out, bal = tmp_path / "did.csv", tmp_path / "balance.csv"
    res = CliRunner().invoke(
        main, ["evaluate", str(wc), "--cohort", str(cohort), "--boot", "20", "--subgroups",
               "site", "--adjust", "", "--balance", str(bal), "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    got = pl.read_csv(out)
    # activity and cost, for all patients and sites x and y: 2 x 3 blocks of 3 rows
    assert got.height == 18
    assert set(got["subgroup_value"].drop_nulls()) == {"x", "y"}
    cost = got.filter(pl.col("measure") == "cost")
    # site x elective: A 100 -> 50, C 200 -> 200: DiD -50 (tests/unit/test_did_evaluation.py)
    assert cost.filter((pl.col("subgroup_value") == "x") & (pl.col("category") == "elective"))[
        "did"].item() == -50
    # --adjust "" fits the regression with no covariates: it equals the DiD
    assert (cost["adjusted_did"] - cost["did"]).abs().max() < 1e-9
    assert pl.read_csv(bal)["kind"].unique().sort().to_list() == ["activity", "cost"]


def _unit_costs(tmp_path: Path, *args: str):  # type: ignore[no-untyped-def]
    """``costing unit-costs --reference-costs 2016-17 ARGS -o uc.csv``: the result and the file."""
    out = tmp_path / "uc.csv"
    res = CliRunner().invoke(main, ["unit-costs", "--reference-costs", "2016-17", *args,
                                    "-o", str(out)])
    assert res.exit_code == 0, res.output
    return res, pl.read_csv(out)


def test_unit_costs_command(tmp_path: Path) -> None:
    res, got = _unit_costs(tmp_path, "--change", "day_case=-1,000")
    # 2016-17 day case: £735.621486 (national schedule, Index sheet; tests/unit/test_unit_costs)
    assert got["cost"].to_list()[0] == pytest.approx(-735_621.486, abs=0.01)
    assert "day_case" in res.output
    bad = CliRunner().invoke(main, ["unit-costs", "--reference-costs", "2016-17",
                                    "--change", "day_case"])
    assert bad.exit_code == 2


def test_evaluate_missing_group_column_exits_1(tmp_path: Path) -> None:
    wc = _write(tmp_path, with_group=False)
    res = CliRunner().invoke(main, ["evaluate", str(wc), "-o", str(tmp_path / "did.csv")])
    assert res.exit_code == 1
    assert "group column 'group' not found" in res.stderr
    assert not (tmp_path / "did.csv").exists()


def test_evaluate_window_absent_exits_1(tmp_path: Path) -> None:
    wc = _write(tmp_path)
    res = CliRunner().invoke(main, ["evaluate", str(wc), "--pre", "-2",
                                    "-o", str(tmp_path / "did.csv")])
    assert res.exit_code == 1
    assert "window(s) -2 not present" in res.stderr


def test_evaluate_bad_option_exits_2(tmp_path: Path) -> None:
    wc = _write(tmp_path)
    for bad in (["--censoring", "drop"], ["--pre", "minus one"], ["--ci", "1.5"],
                ["--boot", "0"]):
        res = CliRunner().invoke(main, ["evaluate", str(wc), *bad, "-o", "x.csv"])
        assert res.exit_code == 2, bad


def test_evaluate_help_has_example() -> None:
    res = CliRunner().invoke(main, ["evaluate", "--help"])
    assert res.exit_code == 0
    assert "costing evaluate windows.parquet -o did.csv" in res.output


def test_unit_costs_command_with_a_tariff(tmp_path: Path) -> None:
    res, got = _unit_costs(tmp_path, "--tariff", "2016-17")
    # every type 3 A&E HRG is £57 in the 2016-17 tariff (tests/unit/test_unit_costs.py)
    assert got.filter(pl.col("category") == "ae_type_3")["unit_cost"].item() == pytest.approx(57.0)
    assert {"tariff_coverage", "left_out", "notes", "basis"} <= set(got.columns)
    assert "tariff_coverage" in res.stdout
    assert "ae_type_4: no unit cost" in res.stderr and "had a tariff price" in res.stderr
    bad = CliRunner().invoke(main, ["unit-costs", "--reference-costs", "2016-17",
                                    "--tariff", "2015-16"])
    assert bad.exit_code == 1 and "no tariff edition '2015-16'" in bad.stderr
