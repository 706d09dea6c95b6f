"""What a pricing rule is: a small declared object.

A :class:`Rule` names the column it sets, the columns it reads, when it applies and the
value it gives, each a polars expression built from the run's configuration, and the
section of ``docs/domain.md`` it implements. Rules that set the same column form an
ordered list: the first that applies gives the value (:func:`first_applying`).

The engines never list the columns a rule reads a second time: the pricing key is derived
from the declared reads (``costing.pricing.engine.keys``), so a rule that reads a new
column cannot be left out of it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl

from costing.config import CostingConfig

Expr = Callable[[CostingConfig], pl.Expr]


def _always(cfg: CostingConfig) -> pl.Expr:
    return pl.lit(True)


def _on(cfg: CostingConfig) -> bool:
    return True


@dataclass(frozen=True)
class Rule:
    """One pricing rule.

    Attributes:
        name: a short stable name (``short_stay_emergency``).
        output: the column it sets; rules setting the same column are tried in order.
        reads: every column its expressions read (activity fields, or columns set by
            earlier rules and table lookups).
        value: the value it gives (a polars expression, from the configuration).
        section: the ``docs/domain.md`` anchor it implements.
        when: where it applies (default: everywhere).
        active: whether the configuration uses it at all (default: always).
        row: evaluated on every record before records are grouped by pricing key (a
            per-record quantity such as age eligibility), not once per key.
    """

    name: str
    output: str
    reads: tuple[str, ...]
    value: Expr
    section: str
    when: Expr = _always
    active: Callable[[CostingConfig], bool] = _on
    row: bool = False

    def expr(self, cfg: CostingConfig) -> pl.Expr:
        """The rule's value where it applies, else null."""
        return pl.when(self.when(cfg)).then(self.value(cfg))


def parameter(cfg: CostingConfig, name: str, dtype: pl.DataType) -> pl.Expr:
    """A policy parameter (``costing.pricing.parameters``) as a literal: the engines give each
    edition's rules a configuration holding that edition's values. None (no row in force, where
    the edition cannot use it) is a null literal, so a condition on it never holds."""
    return pl.lit(getattr(cfg, name), dtype=dtype)


def first_applying(rules: Sequence[Rule], cfg: CostingConfig,
                   otherwise: pl.Expr | None = None) -> pl.Expr:
    """The value of the first of ``rules`` that applies (else ``otherwise``, else null)."""
    out: pl.Expr = pl.lit(None) if otherwise is None else otherwise
    for rule in reversed(rules):
        out = pl.when(rule.when(cfg)).then(rule.value(cfg)).otherwise(out)
    return out
