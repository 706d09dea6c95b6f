"""The reference engine: every declared rule evaluated on every record.

No pricing keys, no hashes, no threads, no chunk tricks: the records are made canonical
(every code normalised, spells built), each record gets its per-record quantities (length of
stay, the edition of each level by its date, the per-record rules such as short-stay age
eligibility), and the rules (``costing.pricing.rules``, evaluated by
``costing.pricing.engine.evaluate``) price each record as it stands. It is slower than
:func:`costing.price` and :func:`costing.price_lazy` and exists to define what they must
return: ``tests/property/test_engine_equality.py`` holds all three equal, column for column.

Example (docs/domain.md#verified-figures: HN12F EL £6,060.96, EL_XS £412.76 a day, trim 7):
    >>> import datetime as dt, polars as pl, costing
    >>> from costing.pricing.reference import price_reference
    >>> stay = pl.DataFrame({
    ...     "record_id": ["s1"], "patient_id": ["p1"], "setting": ["apc"],
    ...     "activity_date": [dt.date(2017, 9, 4)], "discharge_date": [dt.date(2017, 9, 13)],
    ...     "admission_method": ["11"], "patient_classification": ["1"], "hrg_code": ["HN12F"]})
    >>> cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
    >>> out = price_reference(stay, config=cfg)
    >>> round(out["cost"][0], 2)  # 6,060.96 + (9 - 7) x 412.76
    6886.48
    >>> out.equals(costing.price(stay, config=cfg))
    True
"""

from __future__ import annotations

import polars as pl

from costing.activity import RID, apc_los, apc_price_date, validation_failures
from costing.config import CostingConfig
from costing.errors import ValidationError
from costing.pricing.engine.evaluate import edition_index, price_keys, resolve_tables, row_rule_columns
from costing.pricing.engine.keys import editions_for, keep_originals, prepare, row_rule_outputs
from costing.schema import PRICED_COLUMNS
from costing.tables import TableSet

__all__ = ["price_reference"]


def price_reference(activity: pl.DataFrame | pl.LazyFrame, tables: TableSet | None = None,
                    config: CostingConfig | None = None) -> pl.DataFrame:
    """Price every record by evaluating the rules on it: what :func:`costing.price` returns,
    computed the plain way (see the module docstring)."""
    cfg = config or CostingConfig()
    tables = resolve_tables(tables)
    activity = keep_originals(activity)
    if cfg.strict:
        failures = validation_failures(prepare(activity, cfg), cfg)
        if failures.height:
            raise ValidationError("activity", failures)

    # canonical records: every code normalised, one row per spell when spells are built
    records = prepare(activity, cfg)
    fields = [c for c in records.collect_schema().names() if c not in ("n_episodes", "spell_key", RID)]

    # per-record quantities: length of stay, each level's edition by the record's date
    editions = editions_for(tables, cfg)
    s = pl.col("setting")
    price_date = pl.when(s == "apc").then(apc_price_date(cfg)).otherwise(pl.col("activity_date"))
    records = records.with_columns(
        pl.when(s == "apc").then(apc_los(cfg)).alias("los_days"),
        *[ed.index_expr(price_date).alias(edition_index(kind)) for kind, ed in editions.items()],
    )
    # the per-record rules (they may read the length of stay); one not in use is null
    records = records.with_columns(row_rule_columns(cfg, editions, row_rule_outputs()))

    # every rule on every record: each record is its own "key", all its fields in it
    priced = price_keys(records, tables, cfg, cfg.resolved_chain(), editions, key_cols=fields,
                        keep=["n_episodes", "spell_key"])
    out = [*fields, "spell_key", *PRICED_COLUMNS]
    return priced.select(
        pl.col(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else pl.col(c) for c in out).collect()
