"""The streaming engine: :func:`price_lazy`.

One streaming pass over the input finds its distinct pricing keys, batch by batch (memory
follows the batch and the number of keys, not the input); the keys are priced by the rules
and joined back to the records, lazily (docs/decisions/0008-price-lazy-collects-keys.md).
"""

from __future__ import annotations

import polars as pl

from costing.config import CostingConfig
from costing.pricing.engine.keys import _HASH, _Keyed, _keyed
from costing.pricing.options import DEFAULT_OPTIONS, EngineOptions
from costing.tables import TableSet

__all__ = ["price_lazy"]


def price_lazy(
    activity: pl.DataFrame | pl.LazyFrame,
    tables: TableSet | None = None,
    config: CostingConfig | None = None,
    options: EngineOptions | None = None,
) -> pl.LazyFrame:
    """Price activity lazily; see :func:`price`. Strict mode validates eagerly first.

    Each record's pricing key (its codes, LOS, editions, age eligibility and row checks)
    is hashed; the distinct keys are priced by the rules and joined back, so the work per
    record is a few integer operations and one join. The distinct keys are collected when
    this is called (one streaming pass over ``activity``, batch by batch: memory bounded by
    the batch and the number of keys); the records themselves are read again, lazily, when
    the result is collected or sunk. ``options`` (:class:`EngineOptions`) sets the batch
    size (``key_batch_rows``: memory is about this many rows of the key columns, plus the
    distinct keys); no option changes the output.
    """
    k = _keyed(activity, tables, config, options=options or DEFAULT_OPTIONS)
    return k.join(k.rows, _streamed_keys(k))


def _streamed_keys(k: _Keyed) -> pl.DataFrame:
    """The distinct pricing keys of a (possibly larger than memory) input, in batches.

    Each batch of the streaming engine is reduced to its distinct keys and the reductions
    are merged, so memory follows the batch size and the number of keys, not the input (a
    streaming ``unique`` or ``group_by`` grows with the input: docs/performance.md).
    Key strings are held as categoricals meanwhile: a kept string would otherwise be a view
    into its batch and keep the whole batch in memory.
    """
    lf = k.key_columns().with_columns(pl.col(pl.String).cast(pl.Categorical))
    merged: list[pl.DataFrame] = []
    for batch in lf.collect_batches(chunk_size=k.options.key_batch_rows, maintain_order=False):
        merged.append(batch.unique(subset=list(_HASH), keep="any"))
        if len(merged) >= 8:
            merged = [pl.concat(merged).unique(subset=list(_HASH), keep="any")]
    keys = (pl.concat(merged).unique(subset=list(_HASH), keep="any") if merged
            else pl.DataFrame(schema=lf.collect_schema()))
    return keys.with_columns(pl.col(pl.Categorical).cast(pl.String))


