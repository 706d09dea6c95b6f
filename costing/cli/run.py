"""``costing run`` (the whole pipeline from a run file) and ``costing report``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err
from costing.unpriced import UnpricedAssessment


def unpriced_options(f: Any) -> Any:
    """--warn-unpriced and --fail-unpriced, shared by `costing run` and `costing evaluate`."""
    f = click.option("--fail-unpriced", type=click.FloatRange(0, 1), default=None,
                     help="Exit 1 when the unpriced share of records or of £-weighted activity "
                          "passes this (0-1; default 0.25, or [unpriced] fail in the run file). "
                          "A wholly unpriced category always fails.")(f)
    return click.option("--warn-unpriced", type=click.FloatRange(0, 1), default=None,
                        help="Warn when the unpriced share of records or of £-weighted activity "
                             "passes this (0-1; default 0.05, or [unpriced] warn).")(f)


def report_unpriced(assessment: UnpricedAssessment | None) -> None:
    """Show the unpriced summary on stderr; exit 1 when it failed (outputs are kept)."""
    if assessment is None or assessment.level == "ok":
        return
    tag = "error" if assessment.level == "fail" else "warning"
    for line in assessment.messages:
        echo_err(f"costing: {tag}: {line}")
    if assessment.level == "fail":
        echo_err(f"costing: error: failing: the unpriced activity is past the failure threshold "
                 f"({assessment.fail:.0%}) or a whole category is unpriced; the outputs are "
                 "written, but do not use their costs as they stand")
        raise SystemExit(1)


@main.command("run")
@click.argument("run_file", type=click.Path(exists=True, dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="No progress lines, only the summary.")
@unpriced_options
@click.option("--engine", type=click.Choice(["polars", "spark"]), default=None,
              help="Where to compute (default: the run file's [engine] name, else polars).")
@click.option("--master", default=None, metavar="URL",
              help="Spark master: local[*], spark://host:7077, yarn (default: [engine] master).")
def run_cmd(run_file: str, quiet: bool, warn_unpriced: float | None,
            fail_unpriced: float | None, engine: str | None, master: str | None) -> None:
    """Run the whole pipeline from a TOML run file: read extracts, price, windows, optional
    difference in differences, and write priced records, window costs, coverage, audit, the
    run manifest, an Excel report and charts into the output folder.

    \b
    Example:
      costing run examples/icp/run.toml
      costing run examples/icp/run.toml --engine spark --master 'local[*]'
    """
    from costing.report import summary_line
    from costing.run import RunConfig, run

    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        if not quiet:
            echo_err(f"costing: [{time.perf_counter() - t0:5.1f} s] {msg}")

    cfg = RunConfig.from_toml(run_file)
    override = {k: v for k, v in (("warn", warn_unpriced), ("fail", fail_unpriced)) if v is not None}
    if override:
        cfg = RunConfig.from_mapping(
            cfg.model_dump() | {"unpriced": cfg.unpriced.model_dump() | override}, source=run_file)
    result = run(cfg, progress=progress, engine=engine, master=master)  # type: ignore[arg-type]
    for name, path in result.files.items():
        click.echo(f"{name}: {path}")
    for warning in result.warnings:  # also in run_manifest.json ("warnings")
        echo_err(f"costing: warning: {warning}")
    echo_err("costing: " + summary_line(result.priced, result.seconds, records_in=result.records_in,
                                        trimpoints=result.trimpoints))
    report_unpriced(result.unpriced)


@main.command("report")
@click.argument("output_dir", type=click.Path(exists=True, file_okay=False))
def report_cmd(output_dir: str) -> None:
    """Rebuild report.xlsx and the charts from a run's output folder.

    \b
    Example:
      costing report examples/icp/output
    """
    from costing.errors import InputError
    from costing.io import read_table
    from costing.report import write_report

    d = Path(output_dir)
    priced_path = next((p for p in (d / "priced.parquet", d / "priced.csv") if p.exists()), None)
    if priced_path is None or not (d / "coverage.csv").exists() or not (d / "run_manifest.json").exists():
        raise InputError(f"{d}: not a run output folder (needs priced.parquet|csv, coverage.csv, "
                         "run_manifest.json); run `costing run RUN.toml` first")
    # our own outputs: codes stay text, counts and money are read as numbers
    from costing.schema import COHORT_SCHEMA, WINDOW_COLUMNS

    window_costs = (read_table(d / "window_costs.csv", schema={**WINDOW_COLUMNS, **COHORT_SCHEMA})
                    if (d / "window_costs.csv").exists() else None)
    did_table = pl.read_csv(d / "did.csv") if (d / "did.csv").exists() else None
    unpriced = pl.read_csv(d / "unpriced.csv") if (d / "unpriced.csv").exists() else None
    balance_table = pl.read_csv(d / "balance.csv") if (d / "balance.csv").exists() else None
    match_balance = (pl.read_csv(d / "match_balance.csv") if (d / "match_balance.csv").exists()
                     else None)
    files = write_report(d, priced=read_table(priced_path), coverage=pl.read_csv(d / "coverage.csv"),
                         window_costs=window_costs, did_table=did_table, match_balance=match_balance,
                         manifest=json.loads((d / "run_manifest.json").read_text(encoding="utf-8")),
                         unpriced_windows=unpriced, balance_table=balance_table)
    for name, path in files.items():
        click.echo(f"{name}: {path}")
