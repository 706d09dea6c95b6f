"""Summaries for people: the one-line run summary, totals, and the Excel/PNG report."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl

from costing.status import NOT_PRICED_FROM, Status

__all__ = ["summary_line", "totals", "coverage_table", "window_means", "write_report", "number_formats"]


def _n(priced: pl.DataFrame) -> pl.Expr:
    """Records of a priced frame, or of its counts (``n_records``, as the Spark run gives)."""
    return pl.col("n_records").sum() if is_counts(priced) else pl.len()


def is_counts(priced: pl.DataFrame) -> bool:
    """Counts of priced records (``n_records`` by status, ...), not the records themselves."""
    return "n_records" in priced.columns and "record_id" not in priced.columns


def summary_line(priced: pl.DataFrame, seconds: float | None = None, records_in: int | None = None,
                 trimpoints: pl.DataFrame | None = None) -> str:
    """One line: records read, priced by tariff / reference cost, excluded, unpriced by reason,
    and any substitute trim points (``trimpoints``: see ``costing.coverage.trimpoint_coverage``).
    ``priced`` may be the records or their counts (see ``is_counts``)."""
    n = int(priced["n_records"].sum()) if is_counts(priced) else priced.height
    by = dict(priced.group_by("status").agg(_n(priced)).iter_rows())
    tariff = by.get(Status.PRICED_TARIFF, 0) + by.get(Status.PRICED_TARIFF_AFTER_REFERENCE_COST, 0)
    rc = sum(by.get(st, 0) for st in (
        Status.PRICED_REFERENCE_COST, Status.PRICED_REFERENCE_COST_FALLBACK,
        Status.PRICED_REFERENCE_COST_DEPARTMENT_WIDE, Status.PRICED_REFERENCE_COST_FALLBACK_DEPARTMENT_WIDE))
    avg = by.get(Status.PRICED_LAST_RESORT_AVERAGE, 0)
    excluded = by.get(Status.EXCLUDED_NOT_ATTENDED, 0)
    unpriced = {Status(s).label: c for s, c in sorted(by.items()) if s >= NOT_PRICED_FROM}
    parts = [f"{records_in if records_in is not None else n:,} records read"]
    if records_in is not None and records_in != n:
        parts.append(f"{n:,} priced units (spells)")
    parts.append(f"priced by tariff {tariff:,}, by reference cost {rc:,}")
    if avg:
        parts.append(f"by Total HRG average {avg:,}")
    parts.append(f"excluded {excluded:,}")
    total_unpriced = sum(unpriced.values())
    detail = ", ".join(f"{k} {v:,}" for k, v in unpriced.items())
    parts.append(f"unpriced {total_unpriced:,}" + (f" ({detail})" if detail else ""))
    cost = priced["cost"].sum()
    parts.append(f"total £{cost:,.2f}")
    if trimpoints is not None:
        from costing.coverage import trimpoint_summary

        parts += [p for p in [trimpoint_summary(trimpoints)] if p]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return "; ".join(parts)


def totals(priced: pl.DataFrame) -> pl.DataFrame:
    """Records and £ by cost category, status and source (the report's summary sheet)."""
    text = [pl.col(c).cast(pl.String) for c in ("cost_category", "status_name", "cost_source")]
    return (
        priced.group_by(*text, "status")
        .agg(_n(priced).alias("records"), pl.col("cost").sum().alias("cost_gbp"))
        .select("cost_category", "status", "status_name", "cost_source", "records", "cost_gbp")
        .sort("cost_category", "status")
    )


def coverage_table(priced: pl.DataFrame, cohort: pl.DataFrame | None = None,
                   windows: Any = None, months: int = 6,
                   assign: Literal["admission", "discharge", "apportion"] = "admission") -> pl.DataFrame:
    """Coverage by status and source (per arm and window when a cohort is given)."""
    from costing.coverage import coverage

    if cohort is None:
        return coverage(priced)
    return coverage(priced, cohort, windows=windows, months=months, assign=assign)


def window_means(window_costs: pl.DataFrame) -> pl.DataFrame:
    """Mean cost per patient per window by group and category."""
    group = "group" if "group" in window_costs.columns else None
    keys = [k for k in (group, "window", "category") if k]
    return (
        window_costs.group_by(keys)
        .agg(pl.col("patient_id").n_unique().alias("patients"),
             pl.col("cost").mean().alias("mean_cost_gbp"), pl.col("cost").sum().alias("total_cost_gbp"))
        .sort(keys)
    )


def unpriced_sheets(manifest: dict[str, Any], unpriced_windows: pl.DataFrame | None
                    ) -> dict[str, pl.DataFrame]:
    """The report's unpriced sheets: the warning lines and per-category shares (from the run
    manifest's ``unpriced`` entry) and the counts per arm, window and category."""
    entry = manifest.get("unpriced") or {}
    sheets: dict[str, pl.DataFrame] = {}
    if entry:
        head = (f"level: {entry['level']} (warn past {entry['thresholds']['warn']:.0%}, fail past "
                f"{entry['thresholds']['fail']:.0%} of records or of £-weighted activity, or with "
                "a whole category unpriced)")
        sheets["unpriced"] = pl.DataFrame({"unpriced activity": [head, *entry["messages"]]})
        if entry.get("categories"):
            sheets["unpriced_by_category"] = pl.DataFrame(entry["categories"])
    if unpriced_windows is not None:
        sheets["unpriced_by_window"] = unpriced_windows
    return sheets


# Excel number formats by what a column holds (money and counts keep "#,##0.00"): a p-value
# to three decimals (p <= 0.001 would show as 0.00), a share (a fraction) as a percentage.
_P_VALUE_FORMAT = "0.000"
_SHARE_FORMAT = "0.0%"


def number_formats(frame: pl.DataFrame) -> dict[str, str]:
    """The Excel number format of each float column of ``frame`` that is not money: p-values
    (``p_value``, ``*_p``) as 0.000, shares (``*share*``, fractions) as percentages."""
    out: dict[str, str] = {}
    for name, dtype in frame.schema.items():
        if not dtype.is_float():
            continue
        if name == "p_value" or name.endswith("_p_value") or name.endswith("_p"):
            out[name] = _P_VALUE_FORMAT
        elif "share" in name:
            out[name] = _SHARE_FORMAT
    return out


def write_report(out_dir: Path, *, priced: pl.DataFrame, coverage: pl.DataFrame,
                 window_costs: pl.DataFrame | None, did_table: pl.DataFrame | None,
                 manifest: dict[str, Any], unpriced_windows: pl.DataFrame | None = None,
                 match_balance: pl.DataFrame | None = None,
                 balance_table: pl.DataFrame | None = None,
                 event_study: Mapping[str, Any] | None = None) -> dict[str, Path]:
    """Write report.xlsx (summary, unpriced activity, coverage, window means, DiD, balance,
    manifest) and the PNG charts. ``event_study``: arguments of the event-study charts
    (``costing.charts.event_study_chart``: cohort, subgroups, weight, ...), so that they
    show what the DiD table estimates; the chart's defaults without it."""
    import xlsxwriter  # noqa: F401  (polars' Excel writer)

    from costing.io import atomic_path, neutralise_formulas

    files: dict[str, Path] = {}
    sheets: dict[str, pl.DataFrame] = {
        "summary": totals(priced),
        **unpriced_sheets(manifest, unpriced_windows),
        "coverage": coverage,
    }
    if window_costs is not None:
        sheets["window_means"] = window_means(window_costs)
    if did_table is not None:
        sheets["difference_in_differences"] = did_table
    if balance_table is not None:
        sheets["balance"] = balance_table
    if match_balance is not None:  # a matched cohort (costing.match): before and after
        sheets["match_balance"] = match_balance
    manifest_rows = pl.DataFrame({
        "key": list(manifest),
        "value": [json.dumps(v, default=str) if not isinstance(v, str) else v for v in manifest.values()],
    })
    sheets["manifest"] = manifest_rows
    target = out_dir / "report.xlsx"
    with atomic_path(target) as tmp:
        import xlsxwriter as xw

        wb = xw.Workbook(str(tmp))
        for name, frame in sheets.items():
            neutralise_formulas(frame).write_excel(wb, worksheet=name[:31], autofit=True,
                                                   float_precision=2, column_formats=number_formats(frame))
        wb.close()
    files["report"] = target
    if window_costs is not None:
        from costing.charts import window_means_chart

        files["chart_window_means"] = out_dir / "window_means.png"
        window_means_chart(window_costs, path=files["chart_window_means"])
        if did_table is not None and "group" in window_costs.columns:
            from costing.charts import event_study_chart

            files["chart_event_study"] = out_dir / "event_study.png"
            options = dict(event_study or {})
            event_study_chart(window_costs, path=files["chart_event_study"], **options)
            if "measure" in did_table.columns and "activity" in did_table["measure"]:
                files["chart_event_study_activity"] = out_dir / "event_study_activity.png"
                event_study_chart(window_costs, path=files["chart_event_study_activity"],
                                  measure="activity", **options)
    if did_table is not None and "relative_effect_pct" in did_table.columns:
        from costing.charts import did_chart

        files["chart_did"] = out_dir / "did.png"
        did_chart(did_table, path=files["chart_did"])
    if balance_table is not None:
        from costing.charts import balance_chart

        files["chart_balance"] = out_dir / "balance.png"
        balance_chart(balance_table, path=files["chart_balance"])
    return files
