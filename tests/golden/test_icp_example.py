"""Golden test of the worked example in examples/icp/ (``make demo``).

The generator runs twice into temporary folders (its output must be byte-identical, and equal
to the files committed in examples/icp/), then the whole pipeline (``costing.run``: price,
match the cases to the candidate pool, windows, evaluate) runs on the generated files with the
example's run file. Its results are compared with the committed golden CSVs in
tests/golden/icp/:

* ``match_balance.csv``: the matching's balance table (means, standardised differences and
  variance ratios before and after matching, 2 dp);

* ``window_means.csv``: per arm x window x category, patients, total and mean cost, records,
  unpriced and excluded records, days observed (money rounded to 2 dp);
* ``window_patient_totals.csv``: every patient's total cost per window (2 dp), so a change
  to a single patient shows;
* ``did.csv``: the difference-in-differences point estimates (and pre-trend check) per
  category; the bootstrap interval is left out (the test uses few replicates for speed);
* ``coverage.csv``: the coverage table (money rounded to 2 dp, shares to 4 dp).

After a deliberate change, regenerate the golden files with
``COSTING_REGENERATE_GOLDEN=1 .venv/bin/pytest tests/golden/test_icp_example.py``
(the test then writes them and is skipped), and review the diff.
"""

from __future__ import annotations

import filecmp
import importlib.util
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from costing.run import RunConfig, RunResult, run

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "icp"
GOLDEN = Path(__file__).resolve().parent / "icp"
REGENERATE = os.environ.get("COSTING_REGENERATE_GOLDEN") == "1"
N_BOOT = 20  # point estimates do not depend on it; the interval is not compared

# Point-estimate columns of the DiD table (costing.did).
DID_COLUMNS = (
    "comparison", "measure", "subgroup", "subgroup_value", "category", "pre_windows", "post_windows", "n_treated", "n_control",
    "n_clusters", "treated_pre", "treated_post", "treated_change", "control_pre",
    "control_post", "control_change", "did", "relative_effect_pct", "did_pct_of_treated_pre",
)
# Present when the run file asks for risk adjustment: the regression's point estimate.
ADJUSTED_COLUMNS = ("adjusted_did", "adjusted_for")


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("icp_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _round_floats(df: pl.DataFrame) -> pl.DataFrame:
    """Money (and percentages) to 2 dp; shares (0-1) to 4 dp."""
    floats = [c for c, t in df.schema.items() if t in (pl.Float32, pl.Float64)]
    return df.with_columns(
        pl.col(c).round(4 if c.startswith("share") else 2) for c in floats
    )


def _as_text(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as its golden CSV reads back: every column a string, floats at 2 dp."""
    data = _round_floats(df).write_csv(line_terminator="\n")
    return pl.read_csv(io.StringIO(data), infer_schema=False)


def _window_means(window_costs: pl.DataFrame) -> pl.DataFrame:
    keys = ["group", "window", "category"]
    return (
        window_costs.group_by(keys)
        .agg(
            pl.col("patient_id").n_unique().alias("patients"),
            pl.col("cost").sum().alias("total_cost"),
            pl.col("cost").mean().alias("mean_cost"),
            pl.col("n_records").sum().alias("records"),
            pl.col("n_unpriced").sum().alias("unpriced"),
            pl.col("n_excluded").sum().alias("excluded"),
            pl.col("days_observed").sum().alias("days_observed"),
        )
        .sort(keys)
    )


def _patient_totals(window_costs: pl.DataFrame) -> pl.DataFrame:
    keys = ["patient_id", "window"]
    return (
        window_costs.group_by(keys)
        .agg(pl.col("cost").sum().round(2).alias("cost"),
             pl.col("n_records").sum().alias("records"))
        .sort(keys)
    )


def _did_points(did: pl.DataFrame) -> pl.DataFrame:
    return did.select(*DID_COLUMNS, *(c for c in ADJUSTED_COLUMNS if c in did.columns))


def _coverage(coverage: pl.DataFrame) -> pl.DataFrame:
    return coverage.with_columns(
        pl.col(c).cast(pl.String) for c, t in coverage.schema.items() if t == pl.Date
    )


GOLDEN_FRAMES: dict[str, Callable[[RunResult], pl.DataFrame]] = {
    "match_balance.csv": lambda r: r.match.balance,
    "window_means.csv": lambda r: _window_means(_require(r.window_costs)),
    "window_patient_totals.csv": lambda r: _patient_totals(_require(r.window_costs)),
    "did.csv": lambda r: _did_points(_require(r.did)),
    "coverage.csv": lambda r: _coverage(r.coverage),
}


def _require(frame: pl.DataFrame | None) -> pl.DataFrame:
    assert frame is not None, "the example run file asks for windows and an evaluation"
    return frame


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Run the generator twice into two folders laid out like examples/icp/."""
    gen = _load_generator()
    roots = []
    for name in ("first", "second"):
        root = tmp_path_factory.mktemp(name)
        gen.generate(data_dir=root / "data")
        roots.append(root)
    return roots[0], roots[1]


@pytest.fixture(scope="module")
def result(generated: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    root = generated[0]
    cfg = RunConfig.from_toml(EXAMPLE / "run.toml")
    assert cfg.evaluate is not None
    out = tmp_path_factory.mktemp("output")
    cfg = cfg.model_copy(update={
        "base_dir": str(root),
        "evaluate": cfg.evaluate.model_copy(update={"n_boot": N_BOOT}),
        "output": cfg.output.model_copy(update={"dir": str(out)}),
    })
    return run(cfg)


def test_generator_is_deterministic(generated: tuple[Path, Path]) -> None:
    first, second = generated
    files = _files(first)
    assert len(files) == 5, files  # cases, pool + 3 extracts (the tariff is a shipped edition)
    assert files == _files(second)
    _, mismatch, errors = filecmp.cmpfiles(first, second, files, shallow=False)
    assert mismatch == [] and errors == []


def test_committed_example_matches_generator(generated: tuple[Path, Path]) -> None:
    """examples/icp/data is exactly what generate.py writes."""
    first = generated[0]
    files = _files(first)
    _, mismatch, errors = filecmp.cmpfiles(first, EXAMPLE, files, shallow=False)
    assert mismatch == [] and errors == [], (
        f"committed example files differ from generate.py output: {mismatch + errors}; "
        "run `.venv/bin/python examples/icp/generate.py` and commit"
    )


def test_generated_files_are_small(generated: tuple[Path, Path]) -> None:
    # the extracts hold a candidate pool of 4,000 patients over three and a half years
    for p in (generated[0] / "data").iterdir():
        assert p.stat().st_size < 2_000_000, p


def test_run_writes_every_output(result: RunResult, generated: tuple[Path, Path]) -> None:
    for key in ("priced", "window_costs", "audit", "coverage", "did", "manifest",
                "matched_cohort", "match_balance", "love_plot"):
        assert result.files[key].is_file(), key
    # Never lose a record: one priced row per OP and A&E record, one per APC spell (spell
    # id), and the spells' episode counts add up to the APC rows of the extract.
    data = generated[0] / "data"
    extract = {s: pl.read_csv(data / f"{s}.csv", infer_schema=False) for s in ("apc", "op", "ae")}
    priced = result.priced
    rows = dict(priced.group_by("setting").len().iter_rows())
    assert rows["op"] == extract["op"].height
    assert rows["ae"] == extract["ae"].height
    assert rows["apc"] == extract["apc"]["SPELL_ID"].n_unique()
    assert priced.filter(pl.col("setting") == "apc")["n_episodes"].sum() == extract["apc"].height
    assert priced["status"].null_count() == 0


@pytest.mark.parametrize("name", sorted(GOLDEN_FRAMES))
def test_golden(result: RunResult, name: str) -> None:
    actual = _as_text(GOLDEN_FRAMES[name](result))
    path = GOLDEN / name
    if REGENERATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        _round_floats(GOLDEN_FRAMES[name](result)).write_csv(path, line_terminator="\n")
        pytest.skip(f"COSTING_REGENERATE_GOLDEN=1: wrote {path.relative_to(REPO)}")
    assert path.is_file(), f"{path} missing: run with COSTING_REGENERATE_GOLDEN=1 to create it"
    expected = pl.read_csv(path, infer_schema=False)
    assert_frame_equal(actual, expected)


def test_did_has_the_icp_shape(result: RunResult) -> None:
    """The data are built so case management raises emergency cost and lowers elective and
    outpatient cost (generate.py EFFECT); the point estimates must show that sign."""
    did = _require(result.did).filter(pl.col("comparison") == "did")
    # the full effect is built in at the case-management site, in activity and in cost
    for measure in ("activity", "cost"):
        block = did.filter((pl.col("measure") == measure)
                           & (pl.col("subgroup_value") == "case management"))
        est = dict(zip(block["category"], block["did"], strict=True))
        assert est["non_elective"] > 0, measure
        assert est["elective"] < 0, measure
        assert est["outpatient"] < 0, measure
    assert did["adjusted_did"].null_count() == 0


def test_matching_removes_the_built_in_imbalance(result: RunResult, generated: tuple[Path, Path]) -> None:
    """generate.py picks the cases for their long-term conditions and more often women, so
    before matching they have more conditions, more prior use and fewer men than the pool;
    after matching no |SMD| exceeds 0.1."""
    m = result.match
    assert m is not None
    before = dict(zip(m.balance["variable"], m.balance["smd_before"], strict=True))
    assert before["ltc_count"] > 0.5 and before["sex=M"] < -0.1
    assert before["n_non_elective_m1"] > 0.1 and before["cost_outpatient_m2"] > 0.1
    assert m.balance["smd_after"].abs().max() < 0.1
    assert m.balance["imbalanced_before"].sum() > 10 and not m.balance["imbalanced_after"].any()
    # controls come from the pool, never a case, each used once, and take their case's site type
    data = generated[0] / "data"
    cases = pl.read_csv(data / "cases.csv", infer_schema=False)
    pool = pl.read_csv(data / "pool.csv", infer_schema=False)
    controls = m.cohort.filter(pl.col("group") == "control")
    assert controls["patient_id"].is_in(pool["patient_id"].implode()).all()
    assert not controls["patient_id"].is_in(cases["patient_id"].implode()).any()
    assert controls["patient_id"].n_unique() == controls.height
    site_type = dict(zip(cases["patient_id"], cases["site_type"], strict=True))
    assert [site_type[s] for s in controls["matched_set"]] == controls["site_type"].to_list()
    sums = controls.group_by("matched_set").agg(pl.col("weight").sum())["weight"]
    assert ((sums - 1.0).abs() < 1e-9).all()
    assert result.files["love_plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_manifest_counts_match_the_priced_output(result: RunResult) -> None:
    """run_manifest.json counts each status's records and £ exactly as priced.parquet has them
    (a frame already counted by group_by().len() once came out as 1 record, £0 per status)."""
    written = json.loads(result.files["manifest"].read_text(encoding="utf-8"))
    priced = pl.read_parquet(result.files["priced"])
    expected = {
        int(r["status"]): (int(r["n"]), round(float(r["cost"] or 0.0), 6))
        for r in priced.group_by("status")
        .agg(pl.len().alias("n"), pl.col("cost").sum())
        .iter_rows(named=True)
    }
    got = {int(e["status"]): (e["n_records"], e["cost"]) for e in written["counts_by_status"]}
    assert got == expected
    assert sum(n for n, _ in got.values()) == priced.height
    assert sum(n for n, _ in got.values()) > len(got)  # more records than statuses


def test_real_tariff_pairing_is_reported(result: RunResult) -> None:
    """The example prices at the real 2016-17 tariff with the 2016-17 reference costs: the run
    records the HRG4 / HRG4+ grouper-phase warning, and coverage_by_edition gives the tariff's
    hrg_not_found share, recomputed here from the priced rows and the tariff's own table."""
    assert result.manifest["config"]["pricing"]["tariff_edition"] == "2016-17"
    assert any(w.startswith("tariff 2016-17 (HRG4 2016/17 grouper) and reference costs 2016-17")
               for w in result.manifest["warnings"])
    by_edition = pl.read_csv(result.files["coverage_by_edition"])
    tariff = by_edition.filter(pl.col("kind") == "tariff").row(0, named=True)
    from costing import load_tables

    tables = load_tables()
    held = pl.concat([tables.table("tariff", "2016-17", r)["hrg_code"] for r in ("apc", "ae")])
    coded = result.priced.filter(pl.col("setting").is_in(["apc", "ae"]) & pl.col("hrg_code").is_not_null())
    missing = coded.filter(~pl.col("hrg_code").is_in(held.to_list())).height
    assert (tariff["n_records"], tariff["n_hrg_not_found"]) == (coded.height, missing)
    assert 0 < missing < coded.height  # some fall back on purpose, most do not


def test_the_manifest_records_the_policy_parameters_each_edition_used(result: RunResult) -> None:
    """docs/tables.md#parameters: the 2016-17 tariff's short-stay thresholds (the stay read from
    the 2016/17 workbook's glossary, age and methods recalled) and the 2016-17 reference
    costs' NES threshold (recalled, in force from 2011/12), none overridden."""
    got = {(p["level"], p["edition"], p["parameter"]): (p["value"], p["verified"], p["table"], p["overridden"])
           for p in result.manifest["parameters"]}
    assert got == {
        ("tariff", "2016-17", "sse_max_los"): (1, True, "parameters/2016-17", False),
        ("tariff", "2016-17", "sse_min_age"): (19, False, "parameters/2016-17", False),
        ("tariff", "2016-17", "sse_admission_methods"): (
            ["21", "22", "23", "24", "25", "2A", "2B", "2C", "2D"], False, "parameters/2016-17", False),
        ("reference_cost", "2016-17", "nes_los_threshold"): (2, False, "parameters/2011-12", False),
    }
