"""The engine itself (``costing.price`` + ``costing.cost_by_window``) behind the same
load / pipeline / totals interface as the alternatives."""

from __future__ import annotations

from pathlib import Path

import polars as pl

import costing
from benchmarks.alternatives.rules import FILES, Rules, Totals


def load(data: Path) -> tuple[pl.DataFrame, pl.DataFrame, costing.TableSet, costing.CostingConfig, Rules]:
    """Activity, cohort, the shipped tables and the provider configuration (not timed)."""
    rules = Rules.load(data / FILES["rules"])
    act = pl.read_parquet(data / FILES["activity"])
    cohort = pl.read_parquet(data / FILES["cohort"])
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition=rules.edition)
    return act, cohort, costing.load_tables(), cfg, rules


def pipeline(act: pl.DataFrame, cohort: pl.DataFrame, tables: costing.TableSet,
             cfg: costing.CostingConfig, rules: Rules) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The timed part: price, then cost per window."""
    priced = costing.price(act, tables, cfg)
    win = costing.cost_by_window(priced, cohort, windows=rules.windows, months=rules.months)
    return priced, win


def reference_pipeline(act: pl.DataFrame, cohort: pl.DataFrame, tables: costing.TableSet,
                       cfg: costing.CostingConfig, rules: Rules) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`pipeline` with the reference engine (every rule on every record): the yardstick
    the alternatives are checked against (not timed: it is the plain, slow way)."""
    from costing.pricing.reference import price_reference

    priced = price_reference(act, tables, cfg)
    win = costing.cost_by_window(priced, cohort, windows=rules.windows, months=rules.months)
    return priced, win


def totals(priced: pl.DataFrame, win: pl.DataFrame, rules: Rules) -> Totals:
    """The comparison totals from the engine's outputs."""
    by_status = priced.group_by("status").agg(pl.len(), pl.col("cost").sum()).sort("status")
    by_cat = priced.group_by("cost_category").agg(pl.len(), pl.col("cost").sum())
    by_pod = priced.group_by("pod").len()
    pr = priced["status"] < rules.not_priced_from
    return {
        "records": priced.height, "total_cost": float(priced["cost"].sum()),
        "n_priced": int(pr.sum()), "n_unpriced": int((~pr).sum()),
        "by_status": {str(s): [int(n), float(c)] for s, n, c in by_status.iter_rows()},
        "by_category": {str(k): [int(n), float(c)] for k, n, c in by_cat.iter_rows()},
        "by_pod": {str(k): int(n) for k, n in by_pod.iter_rows()},
        "windows": {"rows": win.height, "cost": float(win["cost"].sum()),
                    "n_records": int(win["n_records"].sum()), "n_unpriced": int(win["n_unpriced"].sum()),
                    "n_excluded": int(win["n_excluded"].sum()), "patients": int(win["patient_id"].n_unique())},
    }
