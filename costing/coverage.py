"""How much of the activity was priced, and by which source, per category (and arm, window).

An analyst reads ``coverage`` to see at a glance whether the intervention and control arms
were priced alike: the share of records (and of cost) priced by the tariff, by the
reference-cost fallback, excluded, or left unpriced, in each group and window.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from costing.config import CostingConfig
from costing.errors import MissingColumnsError
from costing.status import status_name_expr
from costing.tables import TableSet
from costing.windows import DEFAULT_WINDOWS, Assign, _bucket_name, _collect_assigned, _spec

__all__ = ["coverage", "combine_coverage", "trimpoint_coverage", "trimpoint_summary"]

_MEASURES = ("n_records", "cost", "share_records", "share_cost")
_KEYS = ["category", "status", "status_name", "cost_source"]
_COHORT_KEYS = ["group", "bucket", "window", *_KEYS]


def _shares(frame: pl.LazyFrame, within: Sequence[str]) -> pl.LazyFrame:
    """Add each row's share of records and of cost within ``within`` (null share of £0)."""
    total_n = pl.col("n_records").sum().over(within) if within else pl.col("n_records").sum()
    total_c = pl.col("cost").sum().over(within) if within else pl.col("cost").sum()
    return frame.with_columns(
        (pl.col("n_records") / total_n).alias("share_records"),
        pl.when(total_c != 0).then(pl.col("cost") / total_c).alias("share_cost"),
    )


def _status_name(names: Sequence[str]) -> pl.Expr:
    return pl.col("status_name") if "status_name" in names else status_name_expr("status")


def coverage(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    windows: Sequence[int] | None = None,
    months: int = 6,
    assign: Assign = "admission",
) -> pl.DataFrame:
    """Rows and £ by status and cost source, per category (and per group and window).

    Args:
        priced: the output of ``costing.price`` (cost_category, cost, cost_source, status;
            status_name is derived from status when absent).
        cohort: optional cohort (see ``validate_cohort``). With it, records are placed as
            ``cost_by_window`` places them and the table is split by the cohort's
            ``group``, the audit ``bucket`` and the ``window``.
        windows: window indices used with a cohort (default ``(-1, 0)``).
        months: window length in months, with a cohort.
        assign: APC assignment rule, with a cohort (see ``cost_by_window``).

    Returns:
        Without a cohort: category, status, status_name, cost_source, n_records, cost,
        share_records and share_cost (shares within the category). With a cohort:
        group, bucket, window, category, status, status_name, cost_source and the same
        measures, shares within group x bucket x window x category (a spell apportioned
        over two windows counts once in each). ``cost`` sums non-null costs; unpriced
        rows (status >= 50) appear with cost 0 and their own share of records.

    Example:
        >>> coverage(priced, cohort).filter(pl.col("bucket") == "in_window")  # doctest: +SKIP
    """
    lf = priced.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in ("cost_category", "cost", "status") if c not in names]
    if missing:
        raise MissingColumnsError("priced frame", missing)
    source = pl.col("cost_source") if "cost_source" in names else pl.lit(None, pl.String)
    if cohort is None:
        keys = _KEYS
        out = (
            lf.select(
                pl.col("cost_category").cast(pl.String).alias("category"),
                pl.col("status"),
                _status_name(names).cast(pl.String).alias("status_name"),
                source.cast(pl.String).alias("cost_source"),
                pl.col("cost").cast(pl.Float64),
            )
            .group_by(keys)
            .agg(pl.len().cast(pl.UInt32).alias("n_records"), pl.col("cost").sum())
        )
        return _shares(out, ["category"]).sort(keys, nulls_last=True).collect()
    spec = _spec(DEFAULT_WINDOWS if windows is None else windows, months, assign, "category")
    keep = [c for c in ("cost_category", "cost_source", "status_name") if c in names]
    coh, assigned, _ = _collect_assigned(lf, cohort, spec, keep)
    window_of = pl.Series(list(spec.windows), dtype=pl.Int32)
    groups = coh.lazy().select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias("_pidx"), pl.col("group")
    )
    keys = _COHORT_KEYS
    out = (
        assigned.lazy()
        .join(groups, on="_pidx", how="left")
        .select(
            "group",
            _bucket_name().alias("bucket"),
            pl.when(pl.col("_b") == 0)
            .then(pl.lit(window_of).gather(pl.col("_wi")))
            .alias("window"),
            pl.col("cost_category").cast(pl.String).alias("category"),
            "status",
            _status_name(names).cast(pl.String).alias("status_name"),
            (pl.col("cost_source") if "cost_source" in keep else pl.lit(None, pl.String))
            .cast(pl.String).alias("cost_source"),
            pl.col("_part_cost").alias("cost"),
        )
        .group_by(keys)
        .agg(pl.len().cast(pl.UInt32).alias("n_records"), pl.col("cost").sum())
    )
    return _shares(out, keys[:4]).sort(keys, nulls_last=True).collect()


_TRIM_SCHEMA = {
    "reference_cost_edition": pl.String, "trimpoints_edition": pl.String, "basis": pl.String,
    "reason": pl.String, "n_records": pl.UInt32, "n_without_trim_point": pl.UInt32,
}


def trimpoint_coverage(priced: pl.DataFrame | pl.LazyFrame, tables: TableSet,
                       config: CostingConfig | None = None) -> pl.DataFrame:
    """Which trim points priced which reference-cost year, and the records they missed.

    One row per reference-cost edition that priced a record: the trim-point edition used
    (see ``costing.pricing.choose_trimpoints``), its basis (own year, configured or default
    substitute, not used) and why, the admitted elective / non-elective records priced at
    that edition's reference costs (``n_records``), and of those the records whose HRG has
    no trim point in that trim-point edition (``n_without_trim_point``: no excess bed day
    can be counted for them).

    Example:
        >>> trimpoint_coverage(priced, costing.load_tables(), cfg)  # doctest: +SKIP
    """
    from costing.pricing import choose_trimpoints

    cfg = config or CostingConfig()
    lf = priced.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in ("reference_cost_edition", "cost_source", "pod", "hrg_code") if c not in names]
    if missing:
        raise MissingColumnsError("priced frame", missing)
    by_rc = (
        lf.filter(pl.col("cost_source").cast(pl.String) == "reference_cost")
        .select(pl.col("reference_cost_edition").cast(pl.String), pl.col("hrg_code"),
                pl.col("pod").cast(pl.String).is_in(["EL", "NEL"]).alias("_el_nel"))
        .collect()
    )
    rows = []
    for ed in sorted(by_rc["reference_cost_edition"].drop_nulls().unique().to_list()):
        choice = choose_trimpoints(tables, tables.get("reference_cost", ed), cfg)
        mine = by_rc.filter((pl.col("reference_cost_edition") == ed) & pl.col("_el_nel"))
        without = 0
        if choice.trimpoints_edition is not None:
            held = tables.table("trimpoints", choice.trimpoints_edition, "trimpoints")["hrg_code"]
            without = mine.filter(~pl.col("hrg_code").is_in(held.implode())).height
        rows.append({"reference_cost_edition": ed, "trimpoints_edition": choice.trimpoints_edition,
                     "basis": choice.basis, "reason": choice.reason, "n_records": mine.height,
                     "n_without_trim_point": without})
    return pl.DataFrame(rows, schema=_TRIM_SCHEMA)


def trimpoint_summary(trim: pl.DataFrame) -> str:
    """The trim points of each substitute in a few words, for a summary line ("" if none):
    e.g. ``trim points 2017-18 (default substitute) for reference costs 2013-14, 2014-15
    (HRG without a trim point: 12 records)``."""
    subs = trim.filter(pl.col("basis").str.ends_with("substitute"))
    parts = []
    for (tp, basis), group in subs.group_by("trimpoints_edition", "basis", maintain_order=True):
        missed = int(group["n_without_trim_point"].sum())
        parts.append(f"trim points {tp} ({basis}) for reference costs "
                     f"{', '.join(group['reference_cost_edition'].to_list())} "
                     f"(HRG without a trim point: {missed:,} records)")
    return "; ".join(parts)


def combine_coverage(parts: pl.DataFrame) -> pl.DataFrame:
    """Coverage tables of disjoint sets of patients (stacked) as the table of them all.

    Records and £ are summed per row key and the shares found again: the Spark engine
    computes coverage per patient bucket and combines the buckets' tables with this.
    """
    keys = _COHORT_KEYS if "group" in parts.columns else _KEYS
    summed = parts.lazy().group_by(keys).agg(
        pl.col("n_records").sum().cast(pl.UInt32), pl.col("cost").sum())
    return _shares(summed, keys[:4] if keys is _COHORT_KEYS else ["category"]).sort(
        keys, nulls_last=True).collect()
