"""`costing run --engine spark` against the polars run of the same run file (the ICP example)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from costing.errors import ConfigError

pytestmark = pytest.mark.spark

ICP = Path(__file__).resolve().parents[2] / "examples" / "icp"


def _run_file(tmp: Path, engine: str, cohort: Path | None = None) -> Path:
    """The ICP run file in its own folder, the same but for the engine (n_boot cut to 40);
    with ``cohort``, its ``[match]`` section becomes ``[cohort]`` (Spark does not match)."""
    text = (ICP / "run.toml").read_text(encoding="utf-8")
    if cohort is not None:
        text = re.sub(r"\[match\].*?\n\n", f'[cohort]\npath = "{cohort.as_posix()}"\n\n', text,
                      count=1, flags=re.DOTALL)
    text = re.sub(r'= "data/', f'= "{ICP.as_posix()}/data/', text)
    text = text.replace('paths = ["shipped", "tables"]', f'paths = ["shipped", "{ICP.as_posix()}/tables"]')
    text = text.replace("n_boot = 2000", "n_boot = 40")
    text = text.replace("[output]", "[output]\nreport = false")
    text += f'\n[engine]\nname = "{engine}"\npartitions = 2\n'
    path = tmp / engine / "run.toml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    return path


def test_run_spark_equals_polars_run(spark: Any, tmp_path: Path) -> None:
    # the polars run matches; the Spark run takes the cohort it built as [cohort]
    want = costing.run(_run_file(tmp_path, "polars"))
    got = costing.run(_run_file(tmp_path, "spark", cohort=want.files["matched_cohort"]))
    # priced records: a Parquet dataset with the polars run's rows and values
    priced = pl.read_parquet(got.files["priced"] / "*.parquet")
    expected = want.priced.cast({c: pl.String for c, t in want.priced.schema.items()
                                 if isinstance(t, (pl.Enum, pl.Categorical))})
    assert priced.columns == expected.columns
    # source_row of a CSV read by Spark is not the line number: compared by record
    assert_frame_equal(priced.drop("source_row").sort("setting", "record_id"),
                       expected.drop("source_row").sort("setting", "record_id"))
    assert got.records_in == want.records_in == int(want.priced["n_episodes"].sum())
    # window costs (cohort order), coverage, audit summary and DiD as in the polars run
    assert got.window_costs is not None and want.window_costs is not None
    assert_frame_equal(got.window_costs, want.window_costs)
    assert_frame_equal(got.coverage, want.coverage)
    for name in ("window_costs.csv", "window_costs_wide.csv", "coverage.csv", "did.csv", "audit_summary.csv",
                 "coverage_by_edition.csv", "coverage_trimpoints.csv"):
        assert_frame_equal(pl.read_csv(got.files[name.removesuffix(".csv")]),
                           pl.read_csv(want.files[name.removesuffix(".csv")]), check_exact=False)
    # the manifest: same configuration, tables, inputs, counts and outputs; the engine named
    m_got, m_want = (json.loads(r.files["manifest"].read_text()) for r in (got, want))
    for key in ("tables_sha256", "rows_in", "counts_by_status", "trimpoints", "warnings", "parameters"):
        assert m_got[key] == m_want[key], key
    assert len(m_want["parameters"]) == 4  # the tariff's three short-stay thresholds and NES
    # the same configuration but [cohort] for [match], and the inputs the matched cohort's file
    assert ({k: v for k, v in m_got["config"].items() if k not in ("cohort", "match")}
            == {k: v for k, v in m_want["config"].items() if k not in ("cohort", "match")})
    assert m_got["config"]["match"] is None and m_want["config"]["cohort"] is None
    extracts = [[e for e in m["inputs"] if e["name"] in ("apc.csv", "op.csv", "ae.csv")]
                for m in (m_got, m_want)]
    assert extracts[0] == extracts[1] and len(extracts[1]) == 3
    assert m_got["outputs"]["window_costs"] == m_want["outputs"]["window_costs"]
    assert m_got["outputs"]["priced"]["rows"] == m_want["outputs"]["priced"]["rows"]
    assert m_got["outputs"]["priced"]["cost_total"] == pytest.approx(m_want["outputs"]["priced"]["cost_total"])
    assert m_got["engine"]["spark"] == spark.version and m_got["engine"]["partitions"] == 2
    # the CLI's summary line reads the Spark run's counts as it reads the priced records
    from costing.report import summary_line

    assert summary_line(got.priced, trimpoints=got.trimpoints) == summary_line(want.priced, trimpoints=want.trimpoints)
    assert got.warnings == want.warnings and want.warnings, "the ICP run's edition pairing warning"
    # the unpriced assessment (from the buckets' counts), unpriced.csv and the balance table
    assert got.unpriced is not None and want.unpriced is not None
    assert want.unpriced.n_unpriced > 0, "the ICP example should hold unpriced records to compare"
    assert _rounded(m_got["unpriced"]) == _rounded(m_want["unpriced"])
    assert got.unpriced.messages == want.unpriced.messages
    assert got.balance is not None and want.balance is not None
    assert_frame_equal(got.balance, want.balance)
    for name in ("unpriced", "balance"):
        assert_frame_equal(pl.read_csv(got.files[name]), pl.read_csv(want.files[name]))
    # the audit: a Parquet dataset with the polars run's columns and rows (Enum as strings)
    audit = pl.read_parquet(got.files["audit"] / "*.parquet")
    assert want.audit is not None
    expected = want.audit.cast({c: pl.String for c, t in want.audit.schema.items()
                                if isinstance(t, (pl.Enum, pl.Categorical))})
    assert audit.columns == expected.columns and audit.height == expected.height
    assert_frame_equal(audit.sort(audit.columns, nulls_last=True),
                       expected.sort(expected.columns, nulls_last=True))


def _rounded(value: Any) -> Any:
    """A manifest entry with its floats to 6 significant digits: the buckets' sums of £ are
    added in another order than the polars run's."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return float(f"{value:.6g}") if isinstance(value, float) else value


def test_spark_run_past_the_fail_threshold_exits_1_as_the_polars_run(spark: Any, tmp_path: Path) -> None:
    """Four of six records unpriced (HRG codes no table holds: one admission and every A&E
    record; one admission repeating another's id): 67% is past --fail-unpriced 0.5, and A&E
    is wholly unpriced; both engines price the same and exit 1 with the same error and warning
    lines (the A&E file, the repeated id, the edition pairing)."""
    from click.testing import CliRunner

    from costing.cli import main

    data = tmp_path / "data"
    data.mkdir()
    header = "EPIKEY,PSEUDO_HESID,PROCODE3,SPELL_ID,EPIORDER,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,STARTAGE,SUSHRG,SPELL_HRG"
    apc = [r.split(",") for r in ("1,P1,ZZA,S1,1,2016-10-19,2016-10-19,11,2,65,LB72A,LB72A",
                                  "2,P2,ZZA,S2,1,2016-10-20,2016-10-21,28,1,68,DZ65K,DZ65K",
                                  "3,P2,ZZA,S3,1,2016-11-20,2016-11-21,28,1,68,ZZ99Q,ZZ99Q",
                                  # record 2's id again: a duplicate, not priced (row 4)
                                  "2,P2,ZZA,S2,1,2016-12-20,2016-12-21,28,1,68,DZ65K,DZ65K")]
    # Parquet: its row numbers are exact under Spark too, as the duplicate warning gives them
    pl.DataFrame(apc, schema=header.split(","), orient="row").write_parquet(data / "apc.parquet")
    (data / "ae.csv").write_text(
        "AEKEY,PSEUDO_HESID,PROCODE3,ARRIVALDATE,ARRIVALAGE,AEDEPTTYPE,AEATTENDDISP,SUSHRG\n"
        "4,P1,ZZA,2016-10-24,65,01,02,VB99Q\n5,P2,ZZA,2016-10-28,71,01,01,VB99Q\n", encoding="utf-8")
    (data / "cohort.csv").write_text("patient_id,index_date,group\nP1,2016-12-01,intervention\n"
                                     "P2,2016-12-01,control\n", encoding="utf-8")
    results = {}
    for engine in ("polars", "spark"):
        run_file = tmp_path / engine / "run.toml"
        run_file.parent.mkdir()
        run_file.write_text(
            f'[inputs.apc]\npath = "{data.as_posix()}/apc.parquet"\n[inputs.ae]\npath = "{data.as_posix()}/ae.csv"\n'
            f'[cohort]\npath = "{data.as_posix()}/cohort.csv"\n'
            '[pricing]\nperspective = "purchaser"\ntariff_edition = "2016-17"\nreference_cost_edition = "2016-17"\n'
            f'[output]\nreport = false\n[engine]\nname = "{engine}"\npartitions = 2\n', encoding="utf-8")
        results[engine] = CliRunner().invoke(main, ["run", str(run_file), "-q", "--fail-unpriced", "0.5"])
    polars, spark_run = results["polars"], results["spark"]
    assert polars.exit_code == spark_run.exit_code == 1, (polars.output, spark_run.output)
    warnings = [[line for line in r.stderr.splitlines() if line.startswith(("costing: error:", "costing: warning:"))]
                for r in (polars, spark_run)]
    assert warnings[0] == warnings[1]
    errors = [[line for line in w if line.startswith("costing: error:")] for w in warnings]
    assert "costing: error: 4 of 6 records unpriced (66.7% of records" in errors[0][0]
    assert any(f"{data.as_posix()}/ae.csv: all 2 records unpriced" in e for e in errors[0])
    assert any(e.startswith(f"costing: warning: {data.as_posix()}/apc.parquet: 1 record(s) repeat an "
                            "earlier record's id (first at row 4)") for e in warnings[0])
    keys = ["setting", "record_id", "activity_date"]
    priced = [pl.read_parquet(tmp_path / "polars" / "output" / "priced.parquet").select(*keys, "status", "cost"),
              pl.read_parquet(tmp_path / "spark" / "output" / "priced" / "*.parquet").select(*keys, "status", "cost")]
    assert priced[0]["status"].to_list().count(59) == 1  # duplicate_record
    assert_frame_equal(priced[1].sort(keys), priced[0].sort(keys))
    for engine in ("polars", "spark"):  # the outputs are written all the same
        assert (tmp_path / engine / "output" / "unpriced.csv").is_file()


def test_excel_input_refused_by_spark(spark: Any, tmp_path: Path) -> None:
    from costing import spark as cs

    with pytest.raises(ConfigError, match=r"x\.xlsx: the Spark engine reads CSV, Parquet or a table"):
        cs.read_activity(spark, tmp_path / "x.xlsx", "apc")
