"""Admitted patient care at the tariff (docs/domain.md#purchaser): the base price by point of
delivery, the short-stay emergency price, and excess bed days beyond the trim point.

The tariff lookups (``costing.pricing.engine.lookups``) set the ``_t_*`` columns: the prices
and trim points of the record's HRG in its tariff edition. The short-stay emergency thresholds
(length of stay, age, admission methods) are policy parameters: the configuration the rules
read holds the values of the tariff edition they price at (``costing.pricing.parameters``).
"""

from __future__ import annotations

import polars as pl

from costing.activity import one_of
from costing.config import CostingConfig
from costing.pricing.rules.base import Rule, parameter

__all__ = ["SSE_AGE", "SSE_ELIGIBLE", "NO_SSE_TEST", "SHORT_STAY_EMERGENCY", "POD_PRICE", "TRIM_POINT",
           "EXCESS_BED_DAYS", "SSE_PRICE", "APC_PRICE", "excess_days", "short_stay"]

SSE_AGE_COLUMN = "_sse_age_ok"


def short_stay(cfg: CostingConfig) -> pl.Expr:
    """A stay short enough for the short-stay emergency price: the one place this is said."""
    return pl.col("los_days") <= parameter(cfg, "sse_max_los", pl.Int32)


def _eligible(cfg: CostingConfig) -> pl.Expr:
    """Everything the short-stay emergency test asks but the age."""
    if not cfg.short_stay_emergency:
        return pl.lit(False)
    methods = cfg.sse_admission_methods
    return (
        (pl.col("_apc_pod") == "NEL")
        & (pl.lit(None, dtype=pl.Boolean) if methods is None else one_of(pl.col("admission_method"), methods))
        & pl.col("_t_sse_applicable").fill_null(False)
        & short_stay(cfg)
        & pl.col("_t_sse_price").is_not_null()
    ).fill_null(False)


def excess_days(los: pl.Expr, trim: pl.Expr) -> pl.Expr:
    """Days beyond the trim point (never negative)."""
    return pl.max_horizontal(los - trim, pl.lit(0)).cast(pl.Int32)


# Age is a per-record quantity: it is read on every record, and only where it matters (an
# admitted stay short enough), so it does not split records that price the same.
SSE_AGE = Rule(
    name="short_stay_emergency_age", output=SSE_AGE_COLUMN, reads=("setting", "los_days", "age"),
    when=lambda cfg: (pl.col("setting") == "apc") & short_stay(cfg),
    value=lambda cfg: pl.col("age") >= parameter(cfg, "sse_min_age", pl.Int32),
    active=lambda cfg: cfg.short_stay_emergency, row=True, section="sse",
)

# Everything the short-stay emergency test asks but the age: an impossible age blocks the
# record only where this holds (see the chain's status precedence).
SSE_ELIGIBLE = Rule(
    name="short_stay_emergency_eligible", output="_t_sse_needs_age",
    reads=("_apc_pod", "admission_method", "_t_sse_applicable", "los_days", "_t_sse_price"),
    value=_eligible, section="sse",
)

# Without the tariff in the chain no record is asked its age.
NO_SSE_TEST = Rule(
    name="no_short_stay_emergency_test", output=SSE_ELIGIBLE.output, reads=(),
    value=lambda cfg: pl.lit(False), active=lambda cfg: "tariff" not in cfg.resolved_chain(),
    section="sse",
)

SHORT_STAY_EMERGENCY = Rule(
    name="short_stay_emergency", output="_t_sse", reads=("_t_sse_needs_age", SSE_AGE_COLUMN),
    value=lambda cfg: (pl.col("_t_sse_needs_age") & pl.col(SSE_AGE_COLUMN)).fill_null(False),
    section="sse",
)


def _combined_or(separate: str) -> pl.Expr:
    """The combined day case / elective price where published, else the separate one."""
    return pl.coalesce(pl.col("_t_combined_dc_el_price"), pl.col(separate))


_POD = pl.col("_apc_pod")
POD_PRICE = (  # the base price by point of delivery
    Rule(name="day_case_price", output="_t_pod_price",
         reads=("_apc_pod", "_t_combined_dc_el_price", "_t_dc_price"),
         when=lambda cfg: _POD == "DC", value=lambda cfg: _combined_or("_t_dc_price"), section="base-price"),
    Rule(name="elective_price", output="_t_pod_price",
         reads=("_apc_pod", "_t_combined_dc_el_price", "_t_el_price"),
         when=lambda cfg: _POD == "EL", value=lambda cfg: _combined_or("_t_el_price"), section="base-price"),
    Rule(name="non_elective_price", output="_t_pod_price", reads=("_apc_pod", "_t_nel_price"),
         when=lambda cfg: _POD == "NEL", value=lambda cfg: pl.col("_t_nel_price"), section="base-price"),
    # regular attenders: by default the RP reference cost; optionally the day-case tariff
    Rule(name="regular_attender_day_case_price", output="_t_pod_price",
         reads=("_apc_pod", "_t_combined_dc_el_price", "_t_dc_price"),
         when=lambda cfg: _POD == "RP", value=lambda cfg: _combined_or("_t_dc_price"),
         active=lambda cfg: cfg.rp_source == "tariff_day_case", section="base-price"),
)

TRIM_POINT = (
    Rule(name="elective_trim_point", output="_t_trim", reads=("_apc_pod", "_t_el_trim_days"),
         when=lambda cfg: _POD == "EL", value=lambda cfg: pl.col("_t_el_trim_days"), section="base-price"),
    Rule(name="non_elective_trim_point", output="_t_trim", reads=("_apc_pod", "_t_nel_trim_days"),
         when=lambda cfg: _POD == "NEL", value=lambda cfg: pl.col("_t_nel_trim_days"), section="base-price"),
)

EXCESS_BED_DAYS = Rule(
    name="tariff_excess_bed_days", output="_tariff_xs_days",
    reads=("setting", "_t_sse", "_t_pod_price", "_t_trim", "_t_excess_bed_day_price", "los_days"),
    when=lambda cfg: ((pl.col("setting") == "apc") & pl.lit(cfg.long_stay) & ~pl.col("_t_sse")
                      & pl.col("_t_pod_price").is_not_null() & pl.col("_t_trim").is_not_null()
                      & pl.col("_t_excess_bed_day_price").is_not_null()),
    value=lambda cfg: excess_days(pl.col("los_days"), pl.col("_t_trim")),
    section="long-stay",
)

# The tariff base price of an admitted stay (rules setting _tariff_base, in order).
SSE_PRICE = Rule(
    name="short_stay_emergency_price", output="_tariff_base", reads=("_t_sse", "_t_sse_price"),
    when=lambda cfg: pl.col("_t_sse"), value=lambda cfg: pl.col("_t_sse_price"), section="sse",
)
APC_PRICE = Rule(
    name="admitted_care_price", output="_tariff_base", reads=("setting", "_t_pod_price"),
    when=lambda cfg: pl.col("setting") == "apc", value=lambda cfg: pl.col("_t_pod_price"),
    section="base-price",
)
