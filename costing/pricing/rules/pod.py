"""Point of delivery (docs/domain.md#pod) and cost category: the admitted care POD that the
tariff and reference-cost rules price by, and the POD and category written on every row."""

from __future__ import annotations

import polars as pl

from costing.activity import one_of
from costing.config import CostingConfig
from costing.pricing.rules.base import Rule
from costing.schema import ADMISSION_METHODS, ELECTIVE_METHODS, EMERGENCY_METHODS

__all__ = ["APC_POD", "HRG_VERSION", "apc_pod", "ae_pod", "category_expr", "is_emergency"]


def apc_pod() -> pl.Expr:
    """DC, EL, NEL or RP for admitted care (docs/domain.md#pod); null if undeterminable."""
    method = pl.col("admission_method")
    cls = pl.col("patient_classification")
    elective = one_of(method, ELECTIVE_METHODS)
    return (
        pl.when(one_of(cls, ["3", "4"])).then(pl.lit("RP"))
        .when(elective & (cls == "2")).then(pl.lit("DC"))
        .when(elective & cls.is_not_null()).then(pl.lit("EL"))
        .when(one_of(method, ADMISSION_METHODS) & ~elective & cls.is_not_null()).then(pl.lit("NEL"))
    )


def ae_pod() -> pl.Expr:
    """AE_T12 (types 1 and 2 share a tariff price), AE_T3 or AE_T4 by department type."""
    t = pl.col("department_type")
    return (
        pl.when(one_of(t, ["01", "02"])).then(pl.lit("AE_T12"))
        .when(t == "03").then(pl.lit("AE_T3"))
        .when(t == "04").then(pl.lit("AE_T4"))
    )


def category_expr() -> pl.Expr:
    """elective / non_elective / outpatient / ae. Day case and RP report under elective;
    an APC record whose method is not elective (or unknown) is non_elective."""
    s = pl.col("setting")
    return (
        pl.when(s == "op").then(pl.lit("outpatient"))
        .when(s == "ae").then(pl.lit("ae"))
        .when(one_of(pl.col("pod"), ["DC", "EL", "RP"])).then(pl.lit("elective"))
        .when(one_of(pl.col("admission_method"), ELECTIVE_METHODS) & pl.col("pod").is_null())
        .then(pl.lit("elective"))
        .otherwise(pl.lit("non_elective"))
    )


def is_emergency() -> pl.Expr:
    return one_of(pl.col("admission_method"), EMERGENCY_METHODS)


APC_POD = Rule(
    name="apc_point_of_delivery", output="_apc_pod",
    reads=("setting", "admission_method", "patient_classification"),
    when=lambda cfg: pl.col("setting") == "apc",
    value=lambda cfg: apc_pod(),
    section="pod",
)


def _hrg_version(cfg: CostingConfig) -> pl.Expr:
    return pl.coalesce(pl.col("hrg_version"), pl.lit(cfg.default_hrg_version))


HRG_VERSION = Rule(  # a code means nothing without its version: the default fills a gap
    name="hrg_version", output="_hrg_version", reads=("hrg_version",),
    value=_hrg_version, section="hrg-version",
)
