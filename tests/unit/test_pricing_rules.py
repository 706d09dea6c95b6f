"""The declared pricing rules (costing/pricing/rules/) and the key derived from them.

A rule that reads a column must never be left out of the pricing key: the key is derived
from the rules' declared reads, and a read nothing supplies is refused.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import polars as pl
import pytest

import costing
from costing.pricing import rules as rules_pkg
from costing.pricing.engine.keys import KEYABLE, RuleReadError, carried_quantities, key_columns
from costing.pricing.rules import ADJUSTMENTS, RECORD, REFERENCE_COST, TARIFF, Rule, rules_for

REPO = Path(__file__).resolve().parents[2]
CONFIGS = [
    costing.CostingConfig(),
    costing.CostingConfig(perspective="provider"),
    costing.CostingConfig(mff=True),
    costing.CostingConfig(chain=("tariff",)),
    costing.CostingConfig(chain=("reference_cost", "tariff", "total_hrg_average")),
    costing.CostingConfig(short_stay_emergency=False, long_stay=False, rp_source="tariff_day_case"),
]


def _declared() -> list[Rule]:
    """Every Rule object defined at module level in costing/pricing/rules/."""
    found: list[Rule] = []
    for info in pkgutil.iter_modules(rules_pkg.__path__):
        module = importlib.import_module(f"costing.pricing.rules.{info.name}")
        for value in vars(module).values():
            items = value if isinstance(value, tuple) else (value,)
            found += [r for r in items if isinstance(r, Rule)]
    return found


def test_every_declared_rule_is_registered_so_the_key_sees_its_reads() -> None:
    registered = {id(r) for r in (*RECORD, *TARIFF, *REFERENCE_COST, *ADJUSTMENTS)}
    missing = {r.name for r in _declared() if id(r) not in registered}
    assert not missing, f"rules not in costing.pricing.rules' lists: {missing}"


def test_every_rule_names_a_section_of_the_domain_brief() -> None:
    anchors = set(re.findall(r'<a id="([^"]+)"></a>', (REPO / "docs/domain.md").read_text(encoding="utf-8")))
    for rule in _declared():
        assert rule.section in anchors, f"{rule.name}: docs/domain.md has no section {rule.section!r}"


@pytest.mark.parametrize("cfg", CONFIGS, ids=range(len(CONFIGS)))
def test_every_field_an_active_rule_reads_is_in_the_derived_key(cfg: costing.CostingConfig) -> None:
    key = set(key_columns(cfg))
    for rule in rules_for(cfg):
        if rule.row:  # read on every record, before keys: its output is carried instead
            assert rule.output in carried_quantities()
            continue
        assert {c for c in rule.reads if c in KEYABLE} <= key, rule.name


def test_the_default_key_holds_exactly_the_fields_the_rules_read() -> None:
    # purchaser chain (tariff, then reference cost): the codes looked up, the POD fields, the
    # outpatient and A&E fields, the input's own reasons; not age (carried as a flag), not
    # the provider (no MFF), not dates (carried as LOS and edition)
    assert set(key_columns(costing.CostingConfig())) == {
        "setting", "hrg_code", "hrg_version", "admission_method", "patient_classification",
        "treatment_function_code", "first_attendance", "attended", "multi_professional",
        "department_type", "ae_admitted", "invalid_reason"}
    assert "provider_code" in key_columns(costing.CostingConfig(mff=True))


def test_a_rule_reading_a_column_nothing_supplies_is_refused() -> None:
    stray = Rule(name="stray", output="_x", reads=("setting", "_not_set_anywhere"),
                 value=lambda cfg: pl.col("_not_set_anywhere"), section="fallback")
    with pytest.raises(RuleReadError, match="'stray' reads '_not_set_anywhere'"):
        key_columns(costing.CostingConfig(), [*rules_for(costing.CostingConfig()), stray])


def test_a_rule_reading_a_new_activity_field_puts_it_in_the_key() -> None:
    cfg = costing.CostingConfig()
    by_age = Rule(name="by_age", output="_y", reads=("age",), value=lambda c: pl.col("age"),
                  section="sse")
    assert "age" not in key_columns(cfg)
    assert "age" in key_columns(cfg, [*rules_for(cfg), by_age])


def test_rules_a_configuration_turns_off_are_not_used() -> None:
    names = {r.name for r in rules_for(costing.CostingConfig(short_stay_emergency=False))}
    assert "short_stay_emergency_age" not in names
    assert "regular_attender_day_case_price" not in names
    assert "regular_attender_day_case_price" in {
        r.name for r in rules_for(costing.CostingConfig(rp_source="tariff_day_case"))}
    provider = {r.name for r in rules_for(costing.CostingConfig(perspective="provider"))}
    assert "short_stay_emergency" not in provider and "admitted_care_department" in provider


# --------------------------------------------------------------------------------------
# per-edition rule sets
# --------------------------------------------------------------------------------------


def test_an_edition_uses_the_latest_rule_set_not_after_it() -> None:
    from costing.pricing.rules import RuleSet, rules_of_edition
    from costing.pricing.rules import apc_tariff

    later = tuple(r for r in TARIFF if r is not apc_tariff.EXCESS_BED_DAYS)
    sets = {"tariff": (RuleSet("2003-04", TARIFF), RuleSet("2017-18", later))}
    assert rules_of_edition("tariff", "2016-17", sets) == TARIFF
    assert rules_of_edition("tariff", "2017-18", sets) == later
    assert rules_of_edition("tariff", "2022-23", sets) == later
    assert rules_of_edition("tariff", "2002-03", sets) == ()
    # the shipped registry: every edition of each level has its rules, in evaluation order
    assert rules_of_edition("tariff", "2017-18") == TARIFF
    assert rules_of_edition("reference_cost", "2023-24") == REFERENCE_COST


def test_a_rule_registered_from_a_year_applies_to_records_of_that_year_only() -> None:
    # two dated tariff editions; from 2017-18 a new excess-bed-day rule pays double days
    # (a rule that changes from a year is a new rule in a new set, not an if inside one)
    import dataclasses

    from costing.pricing.engine.evaluate import edition_index, level_column
    from costing.pricing.engine.lookups import Editions
    from costing.pricing.rules import RuleSet
    from costing.pricing.rules import apc_tariff

    doubled = dataclasses.replace(apc_tariff.EXCESS_BED_DAYS, name="tariff_excess_bed_days_doubled",
                                  value=lambda cfg: apc_tariff.EXCESS_BED_DAYS.value(cfg) * 2)
    sets = {"tariff": (RuleSet("2003-04", TARIFF),
                       RuleSet("2017-18", tuple(doubled if r is apc_tariff.EXCESS_BED_DAYS else r
                                                for r in TARIFF)))}

    class _Edition:  # the two fields level_column reads of an edition
        def __init__(self, edition: str) -> None:
            self.edition = edition

    ed = Editions("tariff", (_Edition("2016-17"), _Edition("2017-18")), None)  # type: ignore[arg-type]
    frame = pl.DataFrame({
        "setting": ["apc", "apc"], "_t_sse": [False, False], "_t_pod_price": [1000.0, 1000.0],
        "_t_trim": [5, 5], "_t_excess_bed_day_price": [100.0, 100.0], "los_days": [8, 8],
        edition_index("tariff"): [0, 1]})
    days = frame.select(level_column("_tariff_xs_days", costing.CostingConfig(), "tariff", ed,
                                     pl.lit(0, dtype=pl.Int32), sets))
    assert days["_tariff_xs_days"].to_list() == [3, 6]  # 8 - 5 = 3 days; doubled from 2017-18
