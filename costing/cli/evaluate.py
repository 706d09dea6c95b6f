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
@click.option("--measure", type=click.Choice(["both", "activity", "cost"]), default="both",
              show_default=True, help="Activity (admissions, attendances), cost, or both.")
@click.option("--subgroups", default=None,
              help="Cohort column(s), comma separated: the table again for each value, e.g. "
                   "site_type.")
@click.option("--adjust", default=None,
              help="Cohort covariates to risk-adjust for, comma separated, e.g. "
                   "age,sex,prior_cost (adds the adjusted_* columns).")
@click.option("--balance", "balance_out", type=click.Path(dir_okay=False), default=None,
              help="Also write the balance table (pre-period means and standardised "
                   "differences of the --adjust covariates and of activity and cost) here.")
@click.option("--chart", type=click.Path(dir_okay=False),
              help="Also write the event-study chart (PNG) here.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help=".csv, .parquet or .xlsx")
@unpriced_options
def evaluate_cmd(
    windows: str, cohort: str | None, pre: tuple[int, ...], post: tuple[int, ...],
    pretrend: tuple[int, ...] | None, by: str, group_col: str, treated: str, boot: int,
    seed: int, ci: float, weight: str | None, cluster: str, censoring: str, measure: str,
    subgroups: str | None, adjust: str | None, balance_out: str | None, chart: str | None,
    output: str, warn_unpriced: float | None, fail_unpriced: float | None,
) -> None:
    """Difference in differences of activity and cost per patient, per category and in total.

    WINDOWS is the long output of `costing windows` (one row per patient x window x
    category). Each row of the result is a measure (activity, cost) and category (and the
    total): arm means before and after, each arm's change, the DiD with its clustered
    bootstrap interval and p-value, and the relative effect (the treated arm's post/pre ratio
    over the control arm's, minus 1) with its interval.

    \b
    Examples:
      costing evaluate windows.parquet -o did.csv
      costing evaluate windows.csv --cohort cohort.csv --weight weight --pretrend -2,-1 \\
          --chart event_study.png -o did.xlsx
      costing evaluate windows.csv --cohort cohort.csv --subgroups site_type \\
          --adjust age,sex,prior_cost --balance balance.csv -o did.csv
    """
    from costing.did import did, did_pretrend
    from costing.io import read_table, refuse_overwriting_inputs, write_frame
    from costing.unpriced import FAIL_SHARE, WARN_SHARE, assess_unpriced

    def names(value: str | None) -> list[str] | None:
        return None if value is None else [v.strip() for v in value.split(",") if v.strip()]

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
    did_kwargs = {**kwargs, "measure": None if measure == "both" else measure}
    out = did(wc, pre=pre, post=post, subgroups=names(subgroups), adjust=names(adjust),
              **did_kwargs)  # type: ignore[arg-type]
    if pretrend:
        out = pl.concat([out, did_pretrend(wc, windows=pretrend, **did_kwargs)],
                        how="diagonal_relaxed")
    write_frame(out, output)
    if balance_out:
        from costing.balance import balance

        write_frame(balance(wc, cohort=coh, covariates=names(adjust) or [], pre=pre,
                            group=group_col, treated=treated, weight=weight, by=by),
                    balance_out)
    if chart:
        from costing.charts import event_study_chart

        event_study_chart(wc, path=chart, subgroups=names(subgroups),
                          **kwargs)  # type: ignore[arg-type]
    main_measure = "activity" if measure == "activity" else "cost"
    fmt = _money if main_measure == "cost" else (
        lambda v: "n/a" if v is None else f"{v:+,.3f} records")
    tot = out.filter((pl.col("comparison") == "did") & (pl.col("category") == "total")
                     & (pl.col("measure") == main_measure) & (pl.col("subgroup") == "all")
                     ).row(0, named=True)
    withheld = out.filter((pl.col("comparison") == "did")
                          & (pl.col("estimate_status") == "withheld_unpriced"))
    for r in withheld.iter_rows(named=True):
        echo_err(f"costing: warning: {r['category']}: no estimate: {r['estimate_note']}")
    estimate = (
        "total DiD withheld (mostly unpriced activity)"
        if tot.get("estimate_status") == "withheld_unpriced" else
        f"total DiD {fmt(tot['did'])} per patient "
        f"({ci:.0%} CI {fmt(tot['ci_low'])} to {fmt(tot['ci_high'])}, "
        f"p={tot['p_value'] if tot['p_value'] is None else format(tot['p_value'], '.3g')})"
    )
    echo_err(
        f"costing: {tot['n_treated']:,} {treated} vs {tot['n_control']:,} control patients "
        f"({tot['n_clusters']:,} clusters), windows {tot['pre_windows']} -> "
        f"{tot['post_windows']}: {estimate}; "
        f"{out.height} rows written to {output}; {time.perf_counter() - t0:.1f} s"
    )
    report_unpriced(unpriced)


def _change(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
            ) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in values:
        name, sep, number = v.partition("=")
        try:
            out[name.strip()] = float(number.replace(",", "").replace("_", ""))
        except ValueError:
            sep = ""
        if not sep:
            raise click.BadParameter(
                f"{v!r}: give CATEGORY=CHANGE, e.g. emergency_admission=193000"
            )
    return out


@main.command("unit-costs")
@click.option("--reference-costs", "edition", required=True,
              help="Reference-cost edition, e.g. 2016-17 (see `costing tables list`).")
@click.option("--tariff", "tariff", default=None,
              help="Tariff edition, e.g. 2016-17: its prices weighted by the reference-cost "
                   "edition's activity, with the share of activity it prices (coverage).")
@click.option("--path", "paths", multiple=True, type=click.Path(file_okay=False),
              help="Tables folder(s) instead of the shipped ones; 'shipped' adds the shipped ones.")
@click.option("--change", "changes", multiple=True, callback=_change,
              help="Price an activity change: CATEGORY=CHANGE (repeatable), e.g. "
                   "emergency_admission=193000.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Also write the table here (.csv, .parquet or .xlsx).")
def unit_costs_cmd(edition: str, tariff: str | None, paths: tuple[str, ...],
                   changes: dict[str, float], output: str | None) -> None:
    """National average unit costs per activity category, and the cost of an activity change.

    Activity-weighted averages of the chosen National Schedule of Reference Costs: emergency
    admission, elective admission (ordinary or day case), ordinary elective, day case,
    outpatient first and follow-up attendance, A&E attendance (all types and per type);
    excess bed days' cost included as the schedule counts it. The basis column says which
    schedule rows each one uses.

    With --tariff, each schedule row is priced at that tariff and weighted by the schedule's
    activity; rows without a tariff price are left out and reported: tariff_coverage (share
    of activity priced), notes (printed below the table) and left_out (the codes, in -o).

    \b
    Examples:
      costing unit-costs --reference-costs 2016-17
      costing unit-costs --reference-costs 2016-17 --tariff 2016-17
      costing unit-costs --reference-costs 2016-17 --change emergency_admission=193000
    """
    from costing.io import write_frame
    from costing.tables import load_tables
    from costing.unit_costs import cost_of_change

    uc = load_tables(list(paths) if paths else None).unit_costs(edition, tariff=tariff)
    table = cost_of_change(changes, uc) if changes else uc
    shown = [c for c in ("category", "change", "activity", "cost", "unit_cost", "tariff_coverage")
             if c in table.columns]
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=50,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True,
                   float_precision=2, thousands_separator=","):
        click.echo(str(table.select(shown)))
    if output:
        write_frame(table, output)
    source = (f"tariff {tariff} weighted by reference costs {edition} activity" if tariff
              else f"reference costs {edition} (activity-weighted national averages)")
    if tariff:
        for category, notes in uc.select("category", "notes").iter_rows():
            echo_err(f"costing: {category}: {notes}")
    echo_err(f"costing: unit costs from {source}; the basis column says how"
             + (f"; {table.height} rows written to {output}" if output else ""))
