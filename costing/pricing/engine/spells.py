"""Spells for a frame in memory, and the chunk-aware steps that keep its columns apart.

:func:`costing.activity.build_spells` is the lazy (streaming) way to one row per spell; the
in-memory engine prices the episodes as read, with each changed spell's row appended, and
applies a :class:`SpellPlan` to the priced output (docs/decisions/0010-spells-applied-after-pricing.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate

import polars as pl

from costing.activity import RID, ROW, _apc_episodes, _spell_roles
from costing.config import CostingConfig
from costing.pricing.options import DEFAULT_OPTIONS

__all__ = ["SpellPlan", "spells_appended", "chunked_like", "DROP_BY_SLICES"]


# Up to this many merged episodes (dropped) and first episodes (replaced by their spell's
# row) are handled in memory by joining zero-copy slices of the rows around them (the result
# has a chunk more for each); more by one gather, which copies every column.
DROP_BY_SLICES = DEFAULT_OPTIONS.drop_by_slices


def _null_throughout(df: pl.DataFrame, rows: pl.DataFrame) -> list[str]:
    """The columns of ``df`` null on every row of it and of ``rows``, but its first (a frame
    of constants alone would have one row): set as constants after the two are joined, since
    slicing or joining would write them out."""
    return [c for c in df.columns[1:]
            if df.get_column(c).null_count() == df.height and rows.get_column(c).null_count() == rows.height]


def _rebuild(df: pl.DataFrame, drop: pl.Series, at: pl.Series, rows: pl.DataFrame,
             then: Sequence[pl.Expr] = ()) -> pl.DataFrame:
    """``df`` without its rows at positions ``drop`` and with its rows at positions ``at``
    replaced by ``rows`` (in order; positions sorted and distinct, none in both), by
    zero-copy slices: no column is copied, the frame just comes out in more chunks. Then
    the expressions ``then`` (each setting a column in place).

    A column null throughout is sliced as a stand-in and set back as a constant (slicing it
    would write it out); no frame operation but the last (on a frame whose chunks differ
    between columns, polars would first copy it into one chunk; and each pays per chunk).
    """
    stand_in, new_stand_in = df.get_column(df.columns[0]), rows.get_column(df.columns[0])
    nulls = _null_throughout(df, rows)
    kept = pl.DataFrame([stand_in.alias(c) if c in nulls else df.get_column(c) for c in df.columns])
    if drop.len() or at.len():
        new = pl.DataFrame([new_stand_in.alias(c) if c in nulls else rows.get_column(c) for c in df.columns])
        events = sorted([(p, False) for p in drop.to_list()] + [(p, True) for p in at.to_list()])
        pieces, start, j = [], 0, 0
        for pos, replaced in events:  # bounded: at most DROP_BY_SLICES
            if pos > start:
                pieces.append(kept.slice(start, pos - start))
            if replaced:
                pieces.append(new.slice(j, 1))
                j += 1
            start = pos + 1
        if start < df.height:
            pieces.append(kept.slice(start, df.height - start))
        kept = pl.concat(pieces, rechunk=False)
    last = [*(pl.lit(None, dtype=df.schema[c]).alias(c) for c in nulls), *then]
    return kept.with_columns(last) if last else kept


@dataclass(frozen=True)
class SpellPlan:
    """How a frame of episodes with their spells' first rows appended (:func:`spells_appended`)
    becomes one row per spell: the first ``height`` rows are the episodes; the merged ones
    (``drop``) go, and each first episode whose spell's values differ from its own (``at``)
    is replaced by its appended row. It applies to any frame row-aligned with that one, e.g.
    the priced output."""

    height: int
    drop: pl.Series
    at: pl.Series
    drop_by_slices: int = DROP_BY_SLICES  # up to this many changes by zero-copy slices

    def apply(self, frame: pl.DataFrame, then: Sequence[pl.Expr] = ()) -> pl.DataFrame:
        """``frame`` (row-aligned with the appended frame) as one row per spell, then the
        expressions ``then`` (each setting a column in place)."""
        n = self.height
        if self.drop.len() + self.at.len() > self.drop_by_slices:  # one gather of every column
            order = pl.int_range(0, n, dtype=pl.UInt32, eager=True).scatter(
                self.at, pl.int_range(n, n + self.at.len(), dtype=pl.UInt32, eager=True))
            out = frame[order.filter(pl.repeat(True, n, eager=True).scatter(self.drop, False))]
            return out.with_columns(then) if then else out
        return _rebuild(frame.slice(0, n), self.drop, self.at, frame.slice(n), then)


def spells_appended(df: pl.DataFrame, config: CostingConfig,
                    drop_by_slices: int = DROP_BY_SLICES) -> tuple[pl.DataFrame, SpellPlan | None]:
    """Spells for a frame in memory: ``df`` with ``n_episodes`` and ``spell_key``, and the
    first episode of each spell whose values differ from its own (a spell of several
    episodes, or a declared spell HRG) appended with the spell's values; and the
    :class:`SpellPlan` that turns it (or its priced output) into one row per spell, as
    :func:`build_spells` does. None when no spell changes anything.

    Pricing reads the rows as they are and applies the plan to its output, so the wide
    frame is neither copied nor cut into pieces before pricing (its steps pay per chunk).
    """
    n = df.height
    roles = _spell_roles(_apc_episodes(df), config).collect()
    heads = roles.filter(pl.col("_is_head"))
    changed = heads.filter(~pl.col("_discharge").eq_missing(pl.col("_own_discharge"))
                           | ~pl.col("_hrg").eq_missing(pl.col("_own_hrg"))
                           | (pl.col("n_episodes") > 1)).sort(RID)
    if not changed.height:
        return df.with_columns(pl.lit(1, dtype=pl.Int32).alias("n_episodes"),
                               pl.lit(None, dtype=pl.String).alias("spell_key")), None
    at = changed.get_column(RID)
    firsts = df[at].with_columns(
        changed.get_column("_discharge").alias("discharge_date"), changed.get_column("_hrg").alias("hrg_code"),
        changed.get_column("n_episodes"), changed.get_column("spell_key"))
    # Columns null throughout stay constants; every other column, and the new ones, cut like
    # the rows' chunks (a null text value's memory is never written)
    nulls = set(_null_throughout(df, firsts))
    kept = [c for c in df.columns if c not in nulls]
    added = [pl.repeat(1, n, dtype=pl.Int32, eager=True).alias("n_episodes"),
             pl.repeat(None, n, dtype=pl.String, eager=True).alias("spell_key")]
    cut = {s.name: s for s in chunked_like(df, [*added, *([df.get_column(ROW)] if ROW in kept else [])])}
    base = pl.DataFrame([cut[c] if c in cut else df.get_column(c) for c in [*kept, "n_episodes", "spell_key"]])
    frame = pl.concat([base, firsts.select(base.columns)], rechunk=False).with_columns(
        [pl.lit(None, dtype=df.schema[c]).alias(c) for c in nulls])
    plan = SpellPlan(n, roles.filter(~pl.col("_is_head")).get_column(RID).sort(), at, drop_by_slices)
    return frame.select(*df.columns, "n_episodes", "spell_key"), plan


def chunked_like(df: pl.DataFrame, columns: Sequence[pl.Series]) -> list[pl.Series]:
    """New one-piece ``columns`` cut (zero-copy) at the chunk boundaries of ``df``'s most
    chunked column (a Parquet read comes in row groups). Columns of a frame chunked alike
    stay apart; were one column's chunks to differ, polars would copy the whole frame into
    one chunk at its next step (docs/performance.md, point 6)."""
    counts = dict(zip(df.columns, df.n_chunks("all"), strict=True))
    most = max(counts, key=counts.__getitem__, default=None)
    if most is None or counts[most] == 1:
        return list(columns)
    lengths = [c.len() for c in df.get_column(most).get_chunks()]
    starts = list(accumulate(lengths[:-1], initial=0))
    return [pl.concat([c.slice(a, n) for a, n in zip(starts, lengths, strict=True)], rechunk=False)
            if c.n_chunks() == 1 else c for c in columns]
