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
    for name in ("window_costs.csv", "window_costs_wide.csv", "coverage.csv", "did.csv", "audit_summary.csv"):
        assert_frame_equal(pl.read_csv(got.files[name.removesuffix(".csv")]),
                           pl.read_csv(want.files[name.removesuffix(".csv")]), check_exact=False)
    # the manifest: same configuration, tables, inputs, counts and outputs; the engine named
    m_got, m_want = (json.loads(r.files["manifest"].read_text()) for r in (got, want))
    for key in ("tables_sha256", "rows_in", "counts_by_status"):
        assert m_got[key] == m_want[key], key
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

    assert summary_line(got.priced) == summary_line(want.priced)


def test_excel_input_refused_by_spark(spark: Any, tmp_path: Path) -> None:
    from costing import spark as cs

    with pytest.raises(ConfigError, match=r"x\.xlsx: the Spark engine reads CSV, Parquet or a table"):
        cs.read_activity(spark, tmp_path / "x.xlsx", "apc")
