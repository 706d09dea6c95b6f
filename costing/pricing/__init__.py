"""Pricing: every record priced by the declared source chain (tariff, reference cost, Total
HRG average), each level's rules small declared objects.

=====================  ===================================================================
``rules/``             every pricing rule, each a :class:`~costing.pricing.rules.base.Rule`
                       (what it reads, when it applies, its value, its docs/domain.md section)
``engine/keys.py``     the pricing key, derived from the rules' reads; the per-record stage
``engine/lookups.py``  table lookups on integer ids
``engine/evaluate.py`` the rules evaluated on a frame (of keys, or of records)
``engine/in_memory.py``  :func:`price`: keyed, in memory
``engine/streaming.py``  :func:`price_lazy`: keyed, streamed
``engine/spells.py``   in-memory spells
``parameters.py``      the rules' policy thresholds, resolved per edition from the dated
                       ``parameters`` table (the configuration only overrides them)
``options.py``         :class:`EngineOptions`: how the keyed engines work (never what they compute)
``reference.py``       ``price_reference``: every rule on every record, the definition the
                       keyed engines are tested against
=====================  ===================================================================

A record is priced by each level of the chain as columns side by side; the first level with
a price wins. Each level also says why it could not price (no edition, HRG version mismatch,
HRG not found, no price for the point of delivery), and the most specific reason becomes the
status of a record no level priced (docs/pricing.md).
"""

from __future__ import annotations

from costing.pricing.engine.in_memory import price
from costing.pricing.engine.streaming import price_lazy
from costing.pricing.options import EngineOptions
from costing.pricing.rules.reference_costs import TrimpointChoice, choose_trimpoints

__all__ = ["price", "price_lazy", "EngineOptions", "TrimpointChoice", "choose_trimpoints"]
