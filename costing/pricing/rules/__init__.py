"""Every pricing rule, each a small declared :class:`~costing.pricing.rules.base.Rule`.

=====================  ==================================================================
module                 rules
=====================  ==================================================================
``pod``                admitted care point of delivery, HRG version
``apc_tariff``         tariff base price by POD, short-stay emergency, excess bed days
``outpatients``        procedure and attendance prices, the attendance currency
``ae``                 A&E price by department type, the A&E service code
``reference_costs``    department, service, excess-day department, trim point choice
``adjustments``        Market Forces Factor, inflation
``chain``              record-level status precedence; the first level with a price wins
=====================  ==================================================================

:func:`rules_for` lists the rules a configuration uses: the pricing key is derived from
their declared reads (``costing.pricing.engine.keys``).
"""

from __future__ import annotations

from costing.config import CostingConfig
from costing.pricing.rules import adjustments, ae, apc_tariff, chain, outpatients, pod
from costing.pricing.rules import reference_costs as rc
from costing.pricing.rules.base import Rule, first_applying

__all__ = ["Rule", "first_applying", "rules_for", "RECORD", "TARIFF", "REFERENCE_COST", "ADJUSTMENTS"]

RECORD: tuple[Rule, ...] = (pod.HRG_VERSION, pod.APC_POD, apc_tariff.NO_SSE_TEST, *chain.STATUS_PRECEDENCE)
TARIFF: tuple[Rule, ...] = (
    apc_tariff.SSE_AGE, *apc_tariff.POD_PRICE, *apc_tariff.TRIM_POINT, apc_tariff.SSE_ELIGIBLE,
    apc_tariff.SHORT_STAY_EMERGENCY, outpatients.TARIFF_PROCEDURE,
    apc_tariff.SSE_PRICE, apc_tariff.APC_PRICE, outpatients.TARIFF_PROCEDURE_PRICE,
    outpatients.TARIFF_ATTENDANCE_PRICE, ae.TARIFF_PRICE, apc_tariff.EXCESS_BED_DAYS,
)
REFERENCE_COST: tuple[Rule, ...] = (
    *rc.DEPARTMENT, *rc.SERVICE, *rc.EXCESS_DAY_DEPARTMENT, *rc.EXCESS_DAY_SERVICE,
    *rc.EXCESS_DAY_CODE, rc.PROCEDURE, *rc.PRICE, rc.EXCESS_BED_DAYS,
)
ADJUSTMENTS: tuple[Rule, ...] = (adjustments.MFF, adjustments.INFLATION)


def rules_for(cfg: CostingConfig) -> tuple[Rule, ...]:
    """The rules ``cfg`` uses, in the order they are evaluated: record rules, each level of
    the chain, then the adjustments; a rule the configuration turns off is left out."""
    levels = cfg.resolved_chain()
    rules = [*RECORD]
    if "tariff" in levels:
        rules += TARIFF
    if "reference_cost" in levels or "total_hrg_average" in levels:
        rules += REFERENCE_COST
    rules += ADJUSTMENTS
    return tuple(r for r in rules if r.active(cfg))
