"""``costing match``: cases + candidate pool + priced records -> a matched cohort."""

from __future__ import annotations

import time
from pathlib import Path

import click

from costing.cli import main
from costing.cli._common import echo_err


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip()) if value else ()


@main.command("match")
@click.argument("cases", type=click.Path(exists=True, dir_okay=False))
@click.argument("pool", type=click.Path(exists=True, dir_okay=False))
@click.argument("priced", type=click.Path(exists=True, dir_okay=False))
@click.option("-k", "--k", "k", default=1, show_default=True, type=click.IntRange(1, 5),
              help="Controls per case.")
@click.option("--min-k", default=1, show_default=True, type=click.IntRange(1, 5),
              help="Cases with fewer controls are reported unmatched.")
@click.option("--covariates", default=None, help="Further pool columns for the models, comma separated.")
@click.option("--exact", default=None, help="Columns to match exactly (as well as the index month).")
@click.option("--caliper", default=0.2, show_default=True, type=float,
              help="In SDs of the logit propensity score; 0 for none.")
@click.option("--score", type=click.Choice(["both", "propensity", "prognostic"]), default="both",
              show_default=True)
@click.option("--windows", "windows_", default="-4,-3,-2,-1", show_default=True,
              help="Pre-index feature windows, comma separated.")
@click.option("--months", default=6, show_default=True, type=click.IntRange(min=1))
@click.option("--exclude-same", default=None, help="Leave out candidates sharing a case's value of this column (practice, site).")
@click.option("--index-spell-days", default=None, type=click.IntRange(min=0),
              help="Leave out the index spell (in progress at, or ended up to N days before, the index date).")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--balance", "balance_path", type=click.Path(dir_okay=False), help="Write the balance table here.")
@click.option("--love-plot", "love_path", type=click.Path(dir_okay=False), help="Write the love plot (PNG) here.")
@click.option("--diagnostics", "diag_path", type=click.Path(dir_okay=False),
              help="Write the strata and unmatched cases here (two files: NAME and NAME with _unmatched).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="The matched cohort: .csv, .parquet or .xlsx")
def match_cmd(cases: str, pool: str, priced: str, k: int, min_k: int, covariates: str | None,
              exact: str | None, caliper: float, score: str, windows_: str, months: int,
              exclude_same: str | None, index_spell_days: int | None, seed: int,
              balance_path: str | None, love_path: str | None, diag_path: str | None,
              output: str) -> None:
    """Build risk-matched controls for CASES from the candidate POOL, using PRICED activity.

    \b
    Examples:
      costing match cases.csv pool.csv priced.parquet -k 4 -o cohort.csv --balance balance.csv
      costing match cases.csv pool.csv priced.parquet --exact sex --love-plot love.png -o cohort.csv
    """
    from costing.cli.windows import _int_list
    from costing.io import read_cohort, read_table, write_frame
    from costing.match import match

    t0 = time.perf_counter()
    if min_k > k:
        raise click.BadParameter(f"--min-k {min_k} is more than -k {k}", param_hint="--min-k")
    result = match(
        read_cohort(cases), read_table(pool), read_table(priced), covariates=_names(covariates),
        k=k, exact=_names(exact), caliper=caliper or None, score=score,  # type: ignore[arg-type]
        seed=seed, min_k=min_k, windows=_int_list(windows_), months=months,
        exclude_same=exclude_same, index_spell_days=index_spell_days,
    )
    write_frame(result.cohort, output)
    if balance_path:
        write_frame(result.balance, balance_path)
    if love_path:
        result.love_plot(love_path)
    d = result.diagnostics
    if diag_path:
        p = Path(diag_path)
        write_frame(d.strata, p)
        write_frame(d.unmatched, p.with_name(f"{p.stem}_unmatched{p.suffix}"))
    worst = result.balance["smd_after"].abs().max()
    echo_err(f"costing: {d.n_matched:,} of {d.n_cases:,} cases matched with {d.n_controls:,} controls "
             f"(effective sample size {d.effective_sample_size:,.1f}); largest |SMD| after matching "
             f"{worst if worst is not None else float('nan'):.3f}; {time.perf_counter() - t0:.1f} s")
