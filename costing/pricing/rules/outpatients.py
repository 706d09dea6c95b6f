"""Outpatients (docs/domain.md#outpatients, #op-ae-rules): a procedure HRG's price replaces the
attendance price; attendances are priced by treatment function, first or follow-up and single
or multi-professional (tariff), or by currency WF01A-WF02B and service code (reference cost)."""

from __future__ import annotations

import polars as pl

from costing.activity import OP_FIRST, one_of
from costing.pricing.rules.base import Rule

__all__ = ["TARIFF_PROCEDURE", "TARIFF_PROCEDURE_PRICE", "TARIFF_ATTENDANCE_PRICE",
           "ATTENDANCE_CURRENCY"]

_OP = pl.col("setting") == "op"

# The tariff: the procedure price where the HRG has one (also a flag: the row's POD is OP_PROC)
TARIFF_PROCEDURE = Rule(
    name="tariff_outpatient_procedure", output="_tariff_proc",
    reads=("setting", "_t_op_procedure_price"),
    value=lambda cfg: _OP & pl.col("_t_op_procedure_price").is_not_null(), section="outpatients",
)
TARIFF_PROCEDURE_PRICE = Rule(
    name="tariff_outpatient_procedure_price", output="_tariff_base",
    reads=("_tariff_proc", "_t_op_procedure_price"),
    when=lambda cfg: pl.col("_tariff_proc"), value=lambda cfg: pl.col("_t_op_procedure_price"),
    section="outpatients",
)


def _attendance_price() -> pl.Expr:
    multi = pl.col("multi_professional").fill_null(False)
    first = pl.col("first_attendance").is_in(OP_FIRST)
    return (
        pl.when(first & ~multi).then(pl.col("_t_first_single_price"))
        .when(first & multi).then(pl.col("_t_first_multi_price"))
        .when(~first & ~multi).then(pl.col("_t_followup_single_price"))
        .otherwise(pl.col("_t_followup_multi_price"))
    )


TARIFF_ATTENDANCE_PRICE = Rule(
    name="tariff_outpatient_attendance_price", output="_tariff_base",
    reads=("setting", "first_attendance", "multi_professional", "_t_first_single_price",
           "_t_first_multi_price", "_t_followup_single_price", "_t_followup_multi_price"),
    when=lambda cfg: _OP, value=lambda cfg: _attendance_price(), section="op-ae-rules",
)


def _currency() -> pl.Expr:
    multi = pl.col("multi_professional").fill_null(False)
    first = one_of(pl.col("first_attendance"), OP_FIRST).fill_null(False)
    return (
        pl.when(multi & first).then(pl.lit("WF02B"))
        .when(multi).then(pl.lit("WF02A"))
        .when(first).then(pl.lit("WF01B"))
        .otherwise(pl.lit("WF01A"))
    )


# Reference costs: the attendance currency (the code looked up in CL/NCL with the service code)
ATTENDANCE_CURRENCY = Rule(
    name="outpatient_attendance_currency", output="_rc_code2",
    reads=("setting", "first_attendance", "multi_professional"),
    when=lambda cfg: _OP, value=lambda cfg: _currency(), section="op-ae-rules",
)
