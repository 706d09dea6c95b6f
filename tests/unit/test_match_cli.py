"""``costing match`` on the CLI and the ``[match]`` section of the run file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import costing
from benchmarks.match_sim import simulate
from costing.cli import main
from costing.errors import ConfigError
from costing.run import RunConfig


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    s = simulate(1200, 40, seed=7)
    d = tmp_path_factory.mktemp("match")
    paths = {"cases": d / "cases.csv", "pool": d / "pool.csv", "priced": d / "priced.parquet"}
    s.cases.write_csv(paths["cases"])
    s.pool.write_csv(paths["pool"])
    s.priced.write_parquet(paths["priced"])
    return {**paths, "dir": d}


def test_match_command_writes_cohort_balance_plot_and_diagnostics(files):
    d = files["dir"]
    res = CliRunner().invoke(main, [
        "match", str(files["cases"]), str(files["pool"]), str(files["priced"]), "-k", "2",
        "--windows", "-2,-1", "--exact", "sex", "--balance", str(d / "balance.csv"),
        "--love-plot", str(d / "love.png"), "--diagnostics", str(d / "strata.csv"),
        "-o", str(d / "cohort.csv"),
    ])
    assert res.exit_code == 0, res.output
    assert "cases matched with" in res.output
    cohort = costing.read_cohort(d / "cohort.csv")
    cases = cohort.filter(pl.col("group") == "intervention")
    assert cases.height > 0 and set(cohort["group"]) == {"intervention", "control"}
    # the pool's numbers were read from text (age, deprivation decile) and used
    balance = pl.read_csv(d / "balance.csv")
    assert {"age", "deprivation_decile", "n_non_elective_m1"} <= set(balance["variable"])
    assert (d / "love.png").read_bytes()[:4] == b"\x89PNG"
    assert pl.read_csv(d / "strata.csv")["n_cases"].sum() == 40
    assert pl.read_csv(d / "strata_unmatched.csv").height == 40 - cases.height


def test_match_command_refuses_min_k_above_k(files):
    res = CliRunner().invoke(main, [
        "match", str(files["cases"]), str(files["pool"]), str(files["priced"]), "-k", "1",
        "--min-k", "2", "-o", str(files["dir"] / "x.csv"),
    ])
    assert res.exit_code == 2 and "--min-k" in res.output
    assert not (files["dir"] / "x.csv").exists()


def test_run_file_match_section():
    base = {"inputs": {"apc": {"path": "apc.csv"}}}
    cfg = RunConfig.from_mapping({**base, "match": {"cases": "c.csv", "pool": "p.csv", "k": 4,
                                                    "exact": ["sex"], "seed": 3}})
    assert cfg.match is not None and cfg.match.k == 4 and cfg.match.seed == 3
    assert cfg.model_dump(mode="json")["match"]["seed"] == 3  # recorded in the run manifest
    with pytest.raises(ConfigError, match="not both"):
        RunConfig.from_mapping({**base, "match": {"cases": "c.csv", "pool": "p.csv"},
                                "cohort": {"path": "c.csv"}})
    with pytest.raises(ConfigError, match="match.k"):
        RunConfig.from_mapping({**base, "match": {"cases": "c.csv", "pool": "p.csv", "k": 6}})


def test_run_with_a_match_section_matches_windows_and_evaluates(tmp_path):
    """The worked example's outpatient and A&E extracts, with its cases and pool (their ids
    and dates only): costing run prices, matches, windows and evaluates."""
    example = Path(__file__).resolve().parents[2] / "examples" / "icp"
    pl.read_csv(example / "data" / "cases.csv", infer_schema=False) \
        .select("patient_id", "index_date", "site").write_csv(tmp_path / "cases.csv")
    pl.read_csv(example / "data" / "pool.csv", infer_schema=False) \
        .select("patient_id", "death_date").write_csv(tmp_path / "pool.csv")
    inputs = "\n".join(f'[inputs.{s}]\npath = "{example / "data" / f"{s}.csv"}"\n' for s in ("op", "ae"))
    (tmp_path / "run.toml").write_text(f"""
[tables]
paths = ["shipped"]
{inputs}
[pricing]
tariff_edition = "2016-17"
reference_cost_edition = "2016-17"
[match]
cases = "cases.csv"
pool = "pool.csv"
k = 1
windows = [-2, -1]
score = "propensity"
seed = 4
[windows]
windows = [-2, -1, 0]
[evaluate]
weight = "weight"
n_boot = 50
[output]
dir = "out"
""")
    result = costing.run(tmp_path / "run.toml")
    out = tmp_path / "out"
    for name in ("matched_cohort.csv", "match_balance.csv", "love_plot.png", "match_strata.csv",
                 "match_unmatched.csv", "match_summary.csv", "did.csv", "report.xlsx"):
        assert (out / name).is_file(), name
    assert result.match is not None
    assert result.window_costs is not None
    assert result.window_costs["patient_id"].n_unique() == result.match.cohort.height
    # the pre-trend is produced for a matched cohort though the run file does not ask for it
    assert result.did is not None and set(result.did["comparison"]) == {"did", "pretrend"}
    assert result.manifest["config"]["match"]["seed"] == 4
    import openpyxl
    assert "match_balance" in openpyxl.load_workbook(out / "report.xlsx", read_only=True).sheetnames


def test_a_pretrend_outside_its_interval_is_named_in_a_warning():
    from costing.run import _matched_pretrend, _pretrend_warnings

    trend = pl.DataFrame({
        "pre_windows": ["[-2]", "[-2]"], "post_windows": ["[-1]", "[-1]"],
        "category": ["non_elective", "outpatient"], "did": [-150.0, 3.0],
        "ci_low": [-260.0, -20.0], "ci_high": [-40.0, 25.0],
    })
    msgs = _pretrend_warnings(trend)
    assert len(msgs) == 1
    assert "[-2] -> [-1] in non_elective" in msgs[0] and "regress to the mean" in msgs[0]
    warnings: list[str] = []
    assert _matched_pretrend((-2, -1, 0), warnings) == (-2, -1) and warnings == []
    assert _matched_pretrend((-1, 0), warnings) is None and "no pre-trend check" in warnings[0]
