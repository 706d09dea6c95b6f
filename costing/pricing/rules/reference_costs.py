"""Reference costs (docs/domain.md#reference-costs, #fallback, #provider): which department a
record is costed in, the excess-bed-day department, and which episode trim points apply.

The rules name departments, service codes and currencies as the schedules write them; the
lookup (``costing.pricing.engine.lookups``) turns them into the unit costs ``_rc_p1`` (the
department price) and ``_rc_p2`` (the excess-bed-day rate, or an outpatient attendance).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from costing.config import DEFAULT_TRIMPOINTS_SUBSTITUTE, CostingConfig
from costing.errors import ConfigError
from costing.pricing.rules import ae, outpatients
from costing.pricing.rules.apc_tariff import excess_days
from costing.pricing.rules.base import Rule, parameter
from costing.tables import Edition, TableSet

__all__ = ["DEPARTMENT", "SERVICE", "EXCESS_DAY_DEPARTMENT", "EXCESS_DAY_SERVICE", "EXCESS_DAY_CODE",
           "EXCESS_BED_DAYS", "PRICE", "TrimpointChoice", "choose_trimpoints"]

_S = pl.col("setting")
_POD = pl.col("_apc_pod")


def _non_elective_short(cfg: CostingConfig) -> pl.Expr:
    """A non-elective stay below the threshold is costed as a short stay (NES)."""
    return pl.col("los_days") < parameter(cfg, "nes_los_threshold", pl.Int32)


def _dept(name: str) -> pl.Expr:
    return pl.lit(name)


def _apc_department(cfg: CostingConfig) -> pl.Expr:
    return (pl.when(_POD == "NEL").then(pl.when(_non_elective_short(cfg)).then(_dept("NES")).otherwise(_dept("NEL")))
            .when(_POD == "EL").then(_dept("EL")).when(_POD == "DC").then(_dept("DC"))
            .when(_POD == "RP").then(_dept("RP")))


# The department of the record's price (rules setting _rc_dept1, in order).
DEPARTMENT = (
    Rule(name="admitted_care_department", output="_rc_dept1", reads=("setting", "_apc_pod", "los_days"),
         when=lambda cfg: _S == "apc", value=_apc_department, section="fallback"),
    Rule(name="outpatient_procedure_department", output="_rc_dept1", reads=("setting",),
         when=lambda cfg: _S == "op", value=lambda cfg: _dept("OPROC"), section="op-ae-rules"),
    Rule(name="ae_department", output="_rc_dept1", reads=("setting",),
         when=lambda cfg: _S == "ae", value=lambda cfg: _dept("AE"), section="op-ae-rules"),
)
# Its service code: the treatment function (outpatients), T0{type}{A|NA} (A&E), else none.
SERVICE = (
    Rule(name="outpatient_service", output="_rc_service1", reads=("setting", "treatment_function_code"),
         when=lambda cfg: _S == "op", value=lambda cfg: pl.col("treatment_function_code"),
         section="op-ae-rules"),
    ae.SERVICE,
)

# The second lookup: excess bed days (admitted care) or the attendance (outpatients).
EXCESS_DAY_DEPARTMENT = (
    Rule(name="elective_excess_day_department", output="_rc_dept2", reads=("setting", "_apc_pod"),
         when=lambda cfg: (_S == "apc") & (_POD == "EL"), value=lambda cfg: _dept("EL_XS"), section="fallback"),
    Rule(name="non_elective_excess_day_department", output="_rc_dept2",
         reads=("setting", "_apc_pod", "los_days"),
         when=lambda cfg: (_S == "apc") & (_POD == "NEL") & ~_non_elective_short(cfg),
         value=lambda cfg: _dept("NEL_XS"), section="fallback"),
    Rule(name="outpatient_attendance_department", output="_rc_dept2", reads=("setting",),
         when=lambda cfg: _S == "op", value=lambda cfg: _dept(cfg.op_reference_department),
         section="op-ae-rules"),
)
EXCESS_DAY_SERVICE = (
    Rule(name="outpatient_attendance_service", output="_rc_service2",
         reads=("setting", "treatment_function_code"), when=lambda cfg: _S == "op",
         value=lambda cfg: pl.col("treatment_function_code"), section="op-ae-rules"),
)
EXCESS_DAY_CODE = (
    outpatients.ATTENDANCE_CURRENCY,
    Rule(name="excess_day_hrg", output="_rc_code2", reads=("hrg_code",),
         value=lambda cfg: pl.col("hrg_code"), section="fallback"),
)

EXCESS_BED_DAYS = Rule(
    name="reference_cost_excess_bed_days", output="_rc_xs_days",
    reads=("setting", "_rc_p1", "_rc_p2", "_rc_trim", "los_days"),
    when=lambda cfg: ((_S == "apc") & pl.lit(cfg.long_stay) & pl.col("_rc_p1").is_not_null()
                      & pl.col("_rc_p2").is_not_null() & pl.col("_rc_trim").is_not_null()),
    value=lambda cfg: excess_days(pl.col("los_days"), pl.col("_rc_trim")),
    section="fallback",
)

# The reference-cost base price: an outpatient procedure's where there is one, else the
# attendance's; the department price elsewhere.
PROCEDURE = Rule(
    name="reference_cost_outpatient_procedure", output="_rc_proc", reads=("setting", "_rc_p1"),
    value=lambda cfg: (_S == "op") & pl.col("_rc_p1").is_not_null(), section="op-ae-rules",
)
PRICE = (
    Rule(name="reference_cost_outpatient_procedure_price", output="_rc_base", reads=("_rc_proc", "_rc_p1"),
         when=lambda cfg: pl.col("_rc_proc"), value=lambda cfg: pl.col("_rc_p1"), section="op-ae-rules"),
    Rule(name="reference_cost_outpatient_attendance_price", output="_rc_base", reads=("setting", "_rc_p2"),
         when=lambda cfg: _S == "op", value=lambda cfg: pl.col("_rc_p2"), section="op-ae-rules"),
    Rule(name="reference_cost_department_price", output="_rc_base", reads=("_rc_p1",),
         value=lambda cfg: pl.col("_rc_p1"), section="fallback"),
)


@dataclass(frozen=True)
class TrimpointChoice:
    """Which episode trim points price a reference-cost edition's excess bed days, and why.

    ``basis`` is one of ``own year``, ``configured substitute`` (``trimpoints_edition``),
    ``default substitute`` (:data:`costing.config.DEFAULT_TRIMPOINTS_SUBSTITUTE`) or
    ``not used`` (``reason`` says why: the edition has no excess-bed-day costs, or long
    stay is off); ``trimpoints_edition`` is None when not used.
    """

    reference_cost_edition: str
    trimpoints_edition: str | None
    basis: str
    reason: str = ""


def choose_trimpoints(tables: TableSet, rc_edition: Edition, cfg: CostingConfig) -> TrimpointChoice:
    """The trim-point edition for a reference-cost edition: its own year's when held, else the
    configured ``trimpoints_edition``, else the declared default substitute; never silently
    the latest. An edition without excess-bed-day costs (2018/19 on) uses none.

    Raises:
        ConfigError: the edition needs trim points, none of its year is held and the
            substitute (configured or default) is not in the tables.
    """
    ed = rc_edition.edition
    if not cfg.long_stay:
        return TrimpointChoice(ed, None, "not used", "long_stay is off")
    depts = rc_edition.table("reference_costs")["department_code"]
    if not depts.is_in(["EL_XS", "NEL_XS"]).any():
        return TrimpointChoice(ed, None, "not used",
                               "no excess-bed-day costs: bed days are in the unit costs")
    held = tables.editions("trimpoints")
    if ed in held:
        return TrimpointChoice(ed, ed, "own year")
    substitute, basis = ((cfg.trimpoints_edition, "configured substitute") if cfg.trimpoints_edition
                         else (DEFAULT_TRIMPOINTS_SUBSTITUTE, "default substitute"))
    if substitute not in held:
        raise ConfigError(
            f"reference costs {ed} need episode trim points for excess bed days; none of {ed} "
            f"is held and the {basis} {substitute} is not in the tables (trim points held: "
            f"{', '.join(held) or 'none'}). Set trimpoints_edition to one of those, import "
            "trim points of that year, or set long_stay = false.")
    return TrimpointChoice(ed, substitute, basis)
