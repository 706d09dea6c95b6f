"""``costing windows``: priced records -> cost per patient per window (zero-filled)."""

from __future__ import annotations

import time
from pathlib import Path

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers, e.g. -1,0") from None


def _read_priced(paths: tuple[str, ...]) -> pl.DataFrame:
    """Several priced files as one frame; a file given twice, or a record in two of them
    (same setting and record id), is an error: it would be counted twice."""
    from costing.errors import InputError
    from costing.io import read_table

    resolved = [str(Path(p).resolve()) for p in paths]
    twice = sorted({p for p in resolved if resolved.count(p) > 1})
    if twice:
        raise InputError(f"{', '.join(twice)}: given more than once; each priced file must be given once "
                         "(its records would be counted twice)")
    frames = [read_table(p).with_columns(pl.lit(p).alias("_priced_file")) for p in paths]
    if len(frames) == 1:
        return frames[0].drop("_priced_file")
    for f, path in zip(frames, paths, strict=True):
        lacking = [c for c in ("setting", "record_id") if c not in f.columns]
        if lacking:
            raise InputError(f"{path}: not a priced file (no {', '.join(lacking)} column); "
                             "give files written by `costing price`")
    both = pl.concat([f.select("setting", "record_id", "_priced_file") for f in frames],
                     how="vertical_relaxed").filter(pl.col("record_id").is_not_null())
    shared = both.group_by("setting", "record_id").agg(pl.col("_priced_file").unique().sort()).filter(
        pl.col("_priced_file").list.len() > 1)
    if shared.height:
        first = shared.row(0, named=True)
        raise InputError(
            f"{shared.height:,} record(s) appear in more than one priced file, e.g. {first['setting']} "
            f"record {first['record_id']!r} in {' and '.join(first['_priced_file'])}; give each record's "
            "priced file once (they would be counted twice)")
    return pl.concat(frames, how="diagonal_relaxed").drop("_priced_file")


@main.command("windows")
@click.argument("priced", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
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
def windows_cmd(priced: tuple[str, ...], cohort: str, windows_: str, months: int, assign: str, by: str,
                wide: bool, audit_path: str | None, output: str) -> None:
    """Sum priced records per cohort patient per window around the index date.

    \b
    Examples:
      costing windows priced.parquet --cohort cohort.csv -o windows.csv
      costing windows apc_priced.parquet op_priced.parquet ae_priced.parquet --cohort cohort.csv -o windows.csv
      costing windows priced.parquet --cohort cohort.csv --windows -2,-1,0,1 --assign apportion --wide -o w.xlsx
    """
    from costing.io import read_cohort, read_table, write_frame
    from costing.windows import audit, audit_summary, cost_by_window

    t0 = time.perf_counter()
    ks = _int_list(windows_)
    p = _read_priced(priced)
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
