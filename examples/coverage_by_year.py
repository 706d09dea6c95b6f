"""Coverage by year in dated mode: the share of one extract's records each year's tables price.

The worked example's SYNTHETIC extracts (examples/icp/data: admitted care, outpatients, A&E,
HRG4+ codes of 2017/18) are moved, whole, into each financial year from 2011/12 to 2024/25
(every date of a record shifted by the same whole number of days, so lengths of stay are
kept) and priced in dated mode: each record at the tables in force on its own date. The
table says, per year, what share of the records was priced and by what, and the most
frequent reason the others were not.

The codes are those of one grouper year (2017/18), so years of another HRG design (2011/12,
2013/14: HRG4; 2018/19 on: later HRG4+ groupers) price fewer of them; a real extract grouped
with each year's own grouper would do better there. Run from the repository root::

    .venv/bin/python examples/coverage_by_year.py [--perspective provider|purchaser] [--markdown]
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import polars as pl

import costing
from costing.coverage import trimpoint_coverage
from costing.status import NOT_PRICED_FROM, Status

DATA = Path(__file__).resolve().parent / "icp" / "data"
YEARS = range(2011, 2025)
_DATES = ("activity_date", "discharge_date", "episode_start", "episode_end", "admission_date")


def _extract() -> pl.DataFrame:
    """The three example extracts as one canonical activity frame."""
    frames = [costing.read_activity(DATA / f"{s}.csv", setting=s).collect() for s in ("apc", "op", "ae")]
    return pl.concat(frames, how="diagonal_relaxed")


def _moved_to(extract: pl.DataFrame, year: int) -> pl.DataFrame:
    """Every record moved to financial year ``year`` (its day within the year kept)."""
    d = pl.col("activity_date")
    own_start = pl.date(pl.when(d.dt.month() >= 4).then(d.dt.year()).otherwise(d.dt.year() - 1), 4, 1)
    shift = pl.lit(dt.date(year, 4, 1)) - own_start
    dates = [c for c in _DATES if c in extract.columns]
    return extract.with_columns([(pl.col(c) + shift).alias(c) for c in dates]).with_columns(
        pl.col("record_id") + f"@{year}")


def coverage_by_year(perspective: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per year: records, share priced, share by source, the main unpriced reason; and the
    trim points used per reference-cost year."""
    extract = _extract()
    moved = pl.concat([_moved_to(extract, y) for y in YEARS], how="vertical_relaxed")
    tables = costing.load_tables()
    cfg = costing.CostingConfig(perspective=perspective, apc_unit="episode")
    priced = costing.price(moved, tables, cfg)
    fy = pl.col("activity_date")
    year = pl.when(fy.dt.month() >= 4).then(fy.dt.year()).otherwise(fy.dt.year() - 1)
    by = priced.with_columns(
        pl.format("{}-{}", year, (year + 1).mod(100).cast(pl.String).str.zfill(2)).alias("year"))
    unpriced = by.filter(pl.col("status") >= NOT_PRICED_FROM)
    reason = (unpriced.group_by("year", "status_name").len().sort("len", descending=True)
              .group_by("year", maintain_order=True).first()
              .select("year", pl.col("status_name").cast(pl.String).alias("main_unpriced_reason")))
    source = pl.col("cost_source").cast(pl.String)
    priced_by = source.is_in(["tariff", "reference_cost", "total_hrg_average"]).fill_null(False)
    excluded = pl.col("status") == Status.EXCLUDED_NOT_ATTENDED
    table = (
        by.filter(pl.col("year").is_in([f"{y}-{(y + 1) % 100:02d}" for y in YEARS]))
        .group_by("year").agg(
            pl.len().alias("records"),
            excluded.sum().alias("excluded_dna"),
            (priced_by.sum() / (~excluded).sum()).round(3).alias("share_priced"),
            ((source == "tariff").fill_null(False).sum() / (~excluded).sum()).round(3).alias("by_tariff"),
            ((source == "reference_cost").fill_null(False).sum() / (~excluded).sum()).round(3)
            .alias("by_reference_cost"),
            pl.col("reference_cost_edition").cast(pl.String).drop_nulls().first()
            .alias("reference_costs"),
            pl.col("tariff_edition").cast(pl.String).drop_nulls().first().alias("tariff"),
        )
        .join(reason, on="year", how="left")
        .sort("year")
    )
    return table, trimpoint_coverage(priced, tables, cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--perspective", choices=["provider", "purchaser"], default="provider")
    ap.add_argument("--markdown", action="store_true", help="Print Markdown tables.")
    a = ap.parse_args()
    table, trims = coverage_by_year(a.perspective)
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60,
                   tbl_formatting="MARKDOWN" if a.markdown else "UTF8_FULL_CONDENSED",
                   tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True):
        print(table)
        print(trims)


if __name__ == "__main__":
    main()
