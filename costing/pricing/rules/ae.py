"""A&E (docs/domain.md#ae, #op-ae-rules): the tariff by HRG and department type (types 1 and 2
share a price, type 3 its own, type 4 none); reference costs by HRG in service T0{type}{A|NA}."""

from __future__ import annotations

import polars as pl

from costing.pricing.rules.base import Rule

__all__ = ["TARIFF_PRICE", "SERVICE"]

_AE = pl.col("setting") == "ae"


def _type_price() -> pl.Expr:
    t = pl.col("department_type")
    return pl.when(t.is_in(["01", "02"])).then(pl.col("_t_type_1_2_price")).when(
        t == "03").then(pl.col("_t_type_3_price"))


TARIFF_PRICE = Rule(
    name="tariff_ae_price", output="_tariff_base",
    reads=("setting", "department_type", "_t_type_1_2_price", "_t_type_3_price"),
    when=lambda cfg: _AE, value=lambda cfg: _type_price(), section="ae",
)


def _service() -> pl.Expr:
    admitted = pl.col("ae_admitted").fill_null(False)
    return pl.concat_str(pl.lit("T"), pl.col("department_type"),
                         pl.when(admitted).then(pl.lit("A")).otherwise(pl.lit("NA")))


SERVICE = Rule(
    name="reference_cost_ae_service", output="_rc_service1",
    reads=("setting", "department_type", "ae_admitted"),
    when=lambda cfg: _AE, value=lambda cfg: _service(), section="op-ae-rules",
)
