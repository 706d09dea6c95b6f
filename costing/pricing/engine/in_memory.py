"""The keyed in-memory engine: :func:`price`.

Records are grouped by pricing key (``costing.pricing.engine.keys``) with two 64-bit row
hashes, the distinct keys are priced by the rules (``costing.pricing.engine.evaluate``), and
the prices are gathered back to the records (docs/decisions/0007-price-by-distinct-key.md,
0012-worker-threads-in-price.md).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor

import polars as pl

from costing.activity import strings_to_normalise
from costing.config import CostingConfig
from costing.pricing.engine.keys import _HASH, _Keyed, _keyed, _per_key_codes
from costing.pricing.engine.spells import chunked_like
from costing.pricing.options import DEFAULT_OPTIONS, EngineOptions
from costing.schema import PRICED_COLUMNS
from costing.tables import TableSet

__all__ = ["price"]


def price(
    activity: pl.DataFrame | pl.LazyFrame,
    tables: TableSet | None = None,
    config: CostingConfig | None = None,
    options: EngineOptions | None = None,
) -> pl.DataFrame:
    """Price every record: one output row per input record (per spell when spells are built).

    Args:
        activity: canonical activity (see costing.schema.ACTIVITY_SCHEMA), e.g. from
            ``costing.read_activity``; a DataFrame or LazyFrame with a ``setting`` column.
        tables: a TableSet; default the shipped tables.
        config: a CostingConfig; default purchaser perspective, dated editions.
        options: how the engine works (:class:`costing.EngineOptions`: slice sizes, threads);
            no option changes the output.

    Returns:
        Every input column plus pod, cost_category, cost (null when not priced), cost_source,
        status, status_name, table editions and the price components.

    Example:
        >>> import datetime as dt, polars as pl, costing
        >>> episode = pl.DataFrame({
        ...     "record_id": ["e1"], "patient_id": ["p1"], "setting": ["apc"],
        ...     "activity_date": [dt.date(2017, 6, 1)], "discharge_date": [dt.date(2017, 6, 13)],
        ...     "admission_method": ["21"], "patient_classification": ["1"],
        ...     "hrg_code": ["DZ11V"], "hrg_version": ["HRG4"]})
        >>> cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
        >>> round(costing.price(episode, config=cfg)["cost"][0], 2)  # NEL + 4 excess days
        2747.06
    """
    cfg = config or CostingConfig()
    opts = options or DEFAULT_OPTIONS
    frame = activity.collect() if isinstance(activity, pl.LazyFrame) else activity
    if not opts.threads:  # scan first, then price once
        normalise = strings_to_normalise(frame, _per_key_codes(cfg))
        out = _price_frame(frame, tables, cfg, opts, as_read=not normalise, normalise=normalise)
        assert out is not None  # nothing to abandon
        return out
    # Ids and codes read per row are normalised (trimmed, cased) only where a scan finds a
    # value that would change, which it seldom does. The scan runs in a worker thread while
    # the records are priced as they are; should it find one, they are priced again,
    # normalised. The output is the same either way. (The first pricing stops at its next
    # step once the scan has found one, so input needing it costs little more.)
    with ThreadPoolExecutor(max_workers=1) as pool:
        rewrite = pool.submit(strings_to_normalise, frame, _per_key_codes(cfg))
        try:
            out = _price_frame(frame, tables, cfg, opts, as_read=True,
                               abandon=lambda: rewrite.done() and bool(rewrite.result()))
        except Exception:
            if not rewrite.result():
                raise
            out = None
        if rewrite.result():
            out = _price_frame(frame, tables, cfg, opts, as_read=False, normalise=rewrite.result())
    assert out is not None
    return out


def _price_frame(frame: pl.DataFrame, tables: TableSet | None, cfg: CostingConfig,
                 options: EngineOptions, as_read: bool,
                 abandon: Callable[[], bool] = lambda: False,
                 normalise: Collection[str] | None = None) -> pl.DataFrame | None:
    """:func:`price` of a frame in memory; with ``as_read``, no String column is normalised,
    else those in ``normalise`` (found by :func:`price`'s scan; None: scanned here). None if
    ``abandon()`` says to stop (asked between steps)."""
    k = _keyed(frame, tables, cfg, eager=True, normalise=() if as_read else normalise, options=options)
    if abandon():
        return None
    rows = k.rows.collect()  # the per-row stage once, shared by the keys and the output
    if abandon():
        return None
    out = _price_rows(k, rows, exact=False)
    if out is None:  # two keys share their first 64 bits: find keys by all 128
        out = _price_rows(k, rows, exact=True)
    assert out is not None
    return out


# Seeds of the two row hashes of the in-memory path (mixing constants, not prices).
_SEEDS = ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0, 0x082EFA98, 0xEC4E6C89))


def _row_hash(key: pl.DataFrame, which: int, colliding: bool = False) -> pl.Series:
    """Hash ``which`` (0 or 1: independent seeds) of each row of ``key``, its pricing key.

    ``hash_rows`` hashes every column and combines the hashes row by row in one pass (several
    times faster than hashing column by column and folding with expressions); a row's hash
    depends on its values only, so a slice of the rows hashes as it does in the whole. Two
    distinct keys share both hashes only if a column holds two distinct values with the
    same hash under both seeds, or by chance (about n^2 / 2^128 for n keys).
    """
    if key.width == 0 or (colliding and which == 0):  # no key column at all: every row has
        # the same key (or EngineOptions.colliding_hashes: every key shares its first 64 bits)
        return pl.zeros(key.height, dtype=pl.UInt64, eager=True).alias(_HASH[which])
    return key.hash_rows(*_SEEDS[which]).alias(_HASH[which])


def _second_hash_agrees(hashed: pl.DataFrame, key_k2: pl.Series, row_of: pl.Series, rows: int) -> bool:
    """Whether every row's second hash equals its key's (``key_k2`` at ``row_of``), computed
    ``rows`` rows at a time so it is never held for all rows."""
    for start in range(0, hashed.height, rows):
        own = _row_hash(hashed.slice(start, rows), 1)
        if not (key_k2.gather(row_of.slice(start, rows)) == own).all():
            return False
    return True


def _price_rows(k: _Keyed, rows: pl.DataFrame, exact: bool) -> pl.DataFrame | None:
    """Price collected rows by key, in memory. Each key's first row is found by the first
    row hash, and every row is checked on the second (None if two keys share the first);
    with ``exact``, keys are found and joined by both.

    Output columns that are the same for every key are written as constants, and a key
    code is taken from the rows themselves when no key's value changed in normalisation,
    so only what really varies is gathered per row.
    """
    opts = k.options
    hashed = rows.select(k.hashed_columns(rows))
    hashes = pl.DataFrame([_row_hash(hashed, 0, opts.colliding_hashes), *([_row_hash(hashed, 1)] if exact else [])])
    if exact:
        first = hashes.with_row_index("_i").unique(list(_HASH), keep="first").get_column("_i")
    else:
        first = hashes.get_column(_HASH[0]).arg_unique()
    # each key's first row, by a mask (a filter of chunked columns is several times faster
    # than a gather from them); keys are in the order of their first rows, and in one piece:
    # the rules run many steps over them, each paying per chunk (docs/performance.md, point 2)
    is_first = pl.repeat(False, rows.height, eager=True).scatter(first, True)
    # a fixed edition's index is a literal in the rows: set on the keys, not filtered (a
    # filter writes a literal out for every row first)
    fixed = k.fixed_indices()
    keys = rows.select(*k.key_cols, *(c for c in k.carried if c not in fixed)).filter(is_first).rechunk()
    keys = keys.with_columns(fixed.values()).select(*k.key_cols, *k.carried)
    key_hashes = hashes.filter(is_first)
    if not exact:  # the keys' second hash from their own columns
        key_hashes = key_hashes.with_columns(_row_hash(keys.select(hashed.columns), 1))
    on = list(_HASH) if exact else [_HASH[0]]
    keys = keys.hstack(key_hashes)
    # The keys are priced in a worker thread while each row finds its key (a join of the
    # row hashes) and, but with ``exact``, is checked on its second hash: the rules run
    # many small steps over a few hundred thousand keys and keep neither core busy alone,
    # the row steps keep both (polars releases the GIL). Both come before the gather.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pricing: Future[pl.DataFrame] | None = pool.submit(k.priced_keys, keys) if opts.threads else None
        row_of = hashes.join(key_hashes.select(on).with_row_index("_i"), on=on, how="left",
                             maintain_order="left").get_column("_i")
        del hashes  # 8 or 16 bytes a row
        agrees = exact or _second_hash_agrees(hashed, key_hashes.get_column(_HASH[1]), row_of,
                                              opts.check_rows)
        priced = pricing.result() if pricing is not None else k.priced_keys(keys)
    if not agrees:
        return None
    del hashed
    if not priced.select(on).equals(key_hashes.select(on)):  # row_of points into the keys' order
        priced = priced[key_hashes.select(on).join(priced.select(on).with_row_index("_p"), on=on,
                                                   how="left", maintain_order="left").get_column("_p")]
    priced = priced.hstack(keys.select([pl.col(c).alias(f"_raw_{c}") for c in k.key_cols]).get_columns())
    order = [*k.input_cols, "spell_key", *PRICED_COLUMNS]
    constants: dict[str, pl.Expr] = {}
    gathered: list[pl.Series] = []
    from_rows: list[str] = []
    for c in order:
        if c in PRICED_COLUMNS and c not in ("n_episodes", "los_days"):
            values = priced[c].cast(PRICED_COLUMNS[c])
        elif c in k.key_cols and not priced[c].eq_missing(priced[f"_raw_{c}"]).all():
            values = priced[c]  # normalisation changed some key's code: the normalised one
        else:
            from_rows.append(c)
            continue
        if values.n_unique() == 1 and rows.height:  # the same on every row: a constant
            constants[c] = pl.lit(values[0], dtype=values.dtype).alias(c)
        else:
            gathered.append(values)
    del priced, keys  # the keys' frames (tens of MB) are not held through the gather
    # one gather of every varying column (a frame's row gather: polars spreads the columns
    # over its threads; about twice as fast as a select of per-column gathers)
    by_row = chunked_like(rows, pl.DataFrame(gathered)[row_of].get_columns()) if gathered else []
    # The output is assembled Series by Series, in order (a select over forty columns in
    # many chunks is slow); a constant is set in its place over a stand-in.
    series = {s.name: s for s in by_row}
    series.update((c, rows.get_column(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else rows.get_column(c))
                  for c in from_rows)
    stand_in = rows.get_column(rows.columns[0])
    out = pl.DataFrame([series[c] if c in series else stand_in.alias(c) for c in order])
    if k.spells is not None:  # one row per spell: merged episodes go, first ones take the spell's row
        return k.spells.apply(out, list(constants.values()))
    return out.with_columns(constants.values()) if constants else out
