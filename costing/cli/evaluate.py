"""``costing evaluate``: window costs -> difference-in-differences table (and chart)."""

from __future__ import annotations

import time

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err
from costing.cli.run import report_unpriced, unpriced_options


def _int_list(value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not a window number or a comma-separated list of them, e.g. -1 or -2,-1"
        ) from None
    return out


def _money(value: float | None) -> str:
    return "n/a" if value is None else f"£{value:,.2f}"


def _windows_param(ctx: click.Context, param: click.Parameter, value: str | None
                   ) -> tuple[int, ...] | None:
    return None if value is None else _int_list(value)


@main.command("evaluate")
@click.argument("windows", type=click.Path(exists=True, dir_okay=False))
@click.option("--cohort", type=click.Path(exists=True, dir_okay=False),
              help="Cohort file (.csv/.parquet/.xlsx) with patient_id, group, matched_set, weight; "
                   "its columns replace those in WINDOWS.")
@click.option("--pre", default="-1", show_default=True, callback=_windows_param,
              help="Pre window, or several comma separated (their per-window mean), e.g. -2,-1.")
@click.option("--post", default="0", show_default=True, callback=_windows_param,
              help="Post window, or several comma separated.")
@click.option("--pretrend", default=None, callback=_windows_param,
              help="Also add pre-trend rows for these consecutive windows, e.g. -2,-1.")
@click.option("--by", type=click.Choice(["category", "pod"]), default="category",
              show_default=True, help="Split by cost category, or by POD (windows built by POD).")
@click.option("--group", "group_col", default="group", show_default=True,
              help="Column naming each patient's arm.")
@click.option("--treated", default="intervention", show_default=True,
              help="Value of the group column for the treated arm.")
@click.option("--boot", default=2000, show_default=True, type=click.IntRange(min=1),
              help="Bootstrap replicates.")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed.")
@click.option("--ci", default=0.95, show_default=True,
              type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Confidence level.")
@click.option("--weight", default=None, help="Weight column, e.g. 1/k for k controls per case.")
@click.option("--cluster", default="matched_set", show_default=True,
              help="Cluster column resampled as a whole; 'none' resamples patients.")
@click.option("--censoring", type=click.Choice(["observed", "complete", "scale"]),
              default="observed", show_default=True,
              help="observed: as observed; complete: drop patients not observed for whole "
                   "windows; scale: cost per observed day x window days.")
@click.option("--chart", type=click.Path(dir_okay=False),
              help="Also write the event-study chart (PNG) here.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help=".csv, .parquet or .xlsx")
@unpriced_options
def evaluate_cmd(
    windows: str, cohort: str | None, pre: tuple[int, ...], post: tuple[int, ...],
    pretrend: tuple[int, ...] | None, by: str, group_col: str, treated: str, boot: int,
    seed: int, ci: float, weight: str | None, cluster: str, censoring: str, chart: str | None,
    output: str, warn_unpriced: float | None, fail_unpriced: float | None,
) -> None:
    """Difference in differences of mean cost per patient, per category and in total.

    WINDOWS is the long output of `costing windows` (one row per patient x window x
    category). Each row of the result is a category (and the total): arm means before and
    after, each arm's change, the DiD with its clustered bootstrap interval and p-value.

    \b
    Examples:
      costing evaluate windows.parquet -o did.csv
      costing evaluate windows.csv --cohort cohort.csv --weight weight --pretrend -2,-1 \\
          --chart event_study.png -o did.xlsx
    """
    from costing.did import did, did_pretrend
    from costing.io import read_table, refuse_overwriting_inputs, write_frame
    from costing.unpriced import FAIL_SHARE, WARN_SHARE, assess_unpriced

    t0 = time.perf_counter()
    refuse_overwriting_inputs([p for p in (output, chart) if p], [p for p in (windows, cohort) if p])
    wc = read_table(windows)
    coh = read_table(cohort) if cohort else None
    used = {*pre, *post, *(pretrend or ())}
    unpriced = (assess_unpriced(wc, warn=WARN_SHARE if warn_unpriced is None else warn_unpriced,
                                fail=FAIL_SHARE if fail_unpriced is None else fail_unpriced,
                                windows=sorted(used))
                if "n_unpriced" in wc.columns else None)
    kwargs = {
        "cohort": coh, "group": group_col, "treated": treated, "by": by, "weight": weight,
        "cluster": None if cluster.lower() in ("", "none") else cluster, "n_boot": boot,
        "seed": seed, "ci": ci, "censoring": censoring,
    }
    out = did(wc, pre=pre, post=post, **kwargs)  # type: ignore[arg-type]
    if pretrend:
        out = pl.concat([out, did_pretrend(wc, windows=pretrend, **kwargs)])
    write_frame(out, output)
    if chart:
        from costing.charts import event_study_chart

        event_study_chart(wc, path=chart, **kwargs)  # type: ignore[arg-type]
    tot = out.filter((pl.col("comparison") == "did") & (pl.col("category") == "total")).row(
        0, named=True
    )
    withheld = out.filter((pl.col("comparison") == "did")
                          & (pl.col("estimate_status") == "withheld_unpriced"))
    for r in withheld.iter_rows(named=True):
        echo_err(f"costing: warning: {r['category']}: no estimate: {r['estimate_note']}")
    estimate = (
        "total DiD withheld (mostly unpriced activity)"
        if tot.get("estimate_status") == "withheld_unpriced" else
        f"total DiD {_money(tot['did'])} per patient "
        f"({ci:.0%} CI {_money(tot['ci_low'])} to {_money(tot['ci_high'])}, "
        f"p={tot['p_value'] if tot['p_value'] is None else format(tot['p_value'], '.3g')})"
    )
    echo_err(
        f"costing: {tot['n_treated']:,} {treated} vs {tot['n_control']:,} control patients "
        f"({tot['n_clusters']:,} clusters), windows {tot['pre_windows']} -> "
        f"{tot['post_windows']}: {estimate}; "
        f"{out.height} rows written to {output}; {time.perf_counter() - t0:.1f} s"
    )
    report_unpriced(unpriced)
