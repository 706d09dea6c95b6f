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

from dataclasses import dataclass

from costing.config import CostingConfig
from costing.pricing.rules import adjustments, ae, apc_tariff, chain, outpatients, pod
from costing.pricing.rules import reference_costs as rc
from costing.pricing.rules.base import Rule, first_applying

__all__ = ["Rule", "RuleSet", "first_applying", "rules_for", "rules_of_edition", "RULE_SETS",
           "RECORD", "TARIFF", "REFERENCE_COST", "ADJUSTMENTS"]

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


@dataclass(frozen=True)
class RuleSet:
    """The rules a level's editions use, in order, from ``first_edition`` (a financial year,
    ``YYYY-YY``) until the next set of that level. A rule that changes from a given year is a
    new rule in a new set from that year, not a condition inside a shared rule."""

    first_edition: str
    rules: tuple[Rule, ...]


# Per level, its rule sets by first edition (each edition uses the latest set not after it).
RULE_SETS: dict[str, tuple[RuleSet, ...]] = {
    "tariff": (RuleSet("2003-04", TARIFF),),
    "reference_cost": (RuleSet("2003-04", REFERENCE_COST),),
}


def rules_of_edition(level: str, edition: str,
                     sets: dict[str, tuple[RuleSet, ...]] | None = None) -> tuple[Rule, ...]:
    """The ordered rules ``edition`` of ``level`` uses: its set is the latest whose
    ``first_edition`` is not after it (none before the first set)."""
    held = [s for s in (RULE_SETS if sets is None else sets)[level] if s.first_edition <= edition]
    return max(held, key=lambda s: s.first_edition).rules if held else ()


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
