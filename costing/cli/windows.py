"""``costing windows``: priced records -> cost per patient per window (zero-filled)."""

from __future__ import annotations

import time

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. -1,0") from None


@main.command("windows")
@click.argument("priced", type=click.Path(exists=True, dir_okay=False))
@click.option("--cohort", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Cohort file: patient_id, index_date, optional group, site, matched_set, weight, end_of_follow_up.")
@click.option("--windows", "windows_", default="-1,0", show_default=True, help="Window indices k, comma separated.")
@click.option("--months", default=6, show_default=True, type=click.IntRange(min=1), help="Window length in months.")
@click.option("--assign", type=click.Choice(["admission", "discharge", "apportion"]), default="admission",
              show_default=True, help="How admitted spells are placed in windows.")
@click.option("--by", type=click.Choice(["category", "pod"]), default="category", show_default=True)
@click.option("--wide", is_flag=True, help="One row per patient x window, a column per category.")
@click.option("--audit", "audit_path", type=click.Path(dir_okay=False), help="Also write the per-record audit here.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=".csv, .parquet or .xlsx")
def windows_cmd(priced: str, cohort: str, windows_: str, months: int, assign: str, by: str,
                wide: bool, audit_path: str | None, output: str) -> None:
    """Sum priced records per cohort patient per window around the index date.

    \b
    Examples:
      costing windows priced.parquet --cohort cohort.csv -o windows.csv
      costing windows priced.parquet --cohort cohort.csv --windows -2,-1,0,1 --assign apportion --wide -o w.xlsx
    """
    from costing.io import read_cohort, read_table, refuse_overwriting_inputs, write_frame
    from costing.windows import audit, audit_summary, cost_by_window

    refuse_overwriting_inputs([p for p in (output, audit_path) if p], [priced, cohort])
    t0 = time.perf_counter()
    ks = _int_list(windows_)
    p = read_table(priced)
    c = read_cohort(cohort)
    out = cost_by_window(p, c, windows=ks, months=months, assign=assign, by=by, wide=wide)  # type: ignore[arg-type]
    write_frame(out, output)
    a = audit(p, c, windows=ks, months=months, assign=assign, by=by)  # type: ignore[arg-type]
    if audit_path:
        write_frame(a, audit_path)
    summ = audit_summary(a).group_by("bucket", maintain_order=True).agg(
        pl.col("n_rows").sum(), pl.col("cost").sum())
    parts = ", ".join(f"{r['bucket']} {r['n_rows']:,} (£{r['cost'] or 0:,.2f})" for r in summ.iter_rows(named=True))
    echo_err(f"costing: {p.height:,} priced records, {c.height:,} cohort patients, {out.height:,} rows written; "
             f"{parts}; {time.perf_counter() - t0:.1f} s")
