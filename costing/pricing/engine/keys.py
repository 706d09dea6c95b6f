"""Pricing keys: the per-record stage, and the key each record is priced by.

Each distinct combination of the activity fields the active rules read (a "pricing key"),
with the per-record quantities they read (length of stay, each table kind's edition, age
eligibility, the row checks), is priced once and the result joined back to its records.
Codes are few and repeat (docs/performance.md gives the key counts), so the lookups, rules
and status texts run on the distinct keys, not on every record.

The key columns are derived from the rules' declared reads (:func:`key_columns`): a rule
that reads a new field puts it in the key, and a read nothing supplies is an error.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import polars as pl

from costing.activity import (
    RID,
    Check,
    apc_los,
    apc_price_date,
    build_spells,
    canonical_frame,
    canonicalise,
    row_check_column,
    row_checks,
    string_columns,
    validation_failures,
)
from costing.config import CostingConfig
from costing.errors import CostingError, ValidationError
from costing.pairing import reference_cost_pairing
from costing.pricing.engine.evaluate import (
    ENGINE_COLUMNS,
    ENGINE_READS,
    edition_index,
    price_keys,
    resolve_tables,
    row_rule_columns,
)
from costing.pricing.engine.lookups import Editions, editions_of
from costing.pricing.engine.spells import SpellPlan, spells_appended
from costing.pricing.options import DEFAULT_OPTIONS, EngineOptions
from costing.pricing.rules import Rule, rules_for
from costing.schema import ACTIVITY_SCHEMA, PRICED_COLUMNS
from costing.tables import TableSet

_HASH = ("_k1", "_k2")  # the two 64-bit halves of a key's hash
# The fields a key may hold: any activity field, and the input's own invalid_reason.
KEYABLE = (*ACTIVITY_SCHEMA, "invalid_reason")


class RuleReadError(CostingError):
    """A rule reads a column that neither the pricing key nor an earlier step supplies."""


def key_columns(cfg: CostingConfig, rules: Sequence[Rule] | None = None) -> tuple[str, ...]:
    """The activity fields of the pricing key: those the rules ``cfg`` uses (or ``rules``)
    and the engine's lookups read, in schema order.

    A per-record rule (``row``) reads fields on every record and adds none; any other read
    must be a field (it joins the key), a per-record quantity the key carries, a lookup's
    column or the output of a rule.

    Raises:
        RuleReadError: a rule reads a column nothing supplies.
    """
    rules = rules_for(cfg) if rules is None else rules
    supplied = {*ENGINE_COLUMNS, *carried_quantities(), *(r.output for r in rules)}
    fields = set(ENGINE_READS)
    for rule in rules:
        if rule.row:
            continue
        for col in rule.reads:
            if col in KEYABLE:
                fields.add(col)
            elif col not in supplied:
                raise RuleReadError(
                    f"pricing rule {rule.name!r} reads {col!r}, which is neither an activity field "
                    "(it would join the pricing key), a per-record quantity the key carries, nor a "
                    "column a lookup or another rule sets; declare the rule that sets it")
    return tuple(c for c in KEYABLE if c in fields)


def row_rule_outputs() -> tuple[str, ...]:
    """The Boolean quantities per-record rules (:attr:`Rule.row`) set, whatever the
    configuration (one it does not use is null on every row)."""
    from costing.pricing.rules import ADJUSTMENTS, RECORD, REFERENCE_COST, TARIFF
    return tuple(r.output for r in (*RECORD, *TARIFF, *REFERENCE_COST, *ADJUSTMENTS) if r.row)


def carried_quantities() -> tuple[str, ...]:
    """The per-record quantities a key may carry: length of stay, each level's edition and
    the outputs of per-record rules."""
    return ("los_days", *row_rule_outputs(), *(edition_index(k) for k in ("tariff", "reference_cost")))


# Columns normalised per row although they are key codes: spells and row checks read them.
_ROW_NORMALISED = ("setting", "provider_code")


def _row_check_columns(cfg: CostingConfig, key_columns: Collection[str]) -> list[str]:
    """The per-row Booleans of the checks that read ids and dates (:func:`row_checks`)."""
    return [row_check_column(i) for i, _ in row_checks(cfg, key_columns)]


def _per_key_codes(cfg: CostingConfig) -> list[str]:
    """The key codes normalised once per distinct key, not per row (see :func:`canonicalise`)."""
    return [c for c in key_columns(cfg) if c not in _ROW_NORMALISED]


def prepare(activity: pl.DataFrame | pl.LazyFrame, cfg: CostingConfig,
            raw: Sequence[str] = ()) -> pl.LazyFrame:
    """Canonical activity with spells built when asked (validation reasons are added later).
    String columns in ``raw`` are left un-normalised (see :func:`canonicalise`)."""
    lf = canonicalise(activity, raw=raw)
    if cfg.resolved_apc_unit() == "spell":
        # spells read the canonical frame twice (APC keys, then every record); not cached:
        # a cache holds the whole input, and a streamed input must not be held
        lf = build_spells(lf, cfg)
    else:
        lf = lf.with_columns(pl.lit(1, dtype=pl.Int32).alias("n_episodes"),
                             pl.lit(None, dtype=pl.String).alias("spell_key"))
    return lf


# Start values and odd multipliers of the two folds of the key hash (mixing constants, not
# prices): each column is hashed once and folded twice into two 64-bit values.
_FOLD = ((0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F), (0x165667B19E3779F9, 0xD6E8FEB86659FD93))


def _key_hash(values: Sequence[pl.Expr], colliding: bool = False) -> list[pl.Expr]:
    """Two 64-bit hashes of a row's pricing key (its ``values``).

    Each value is hashed once (polars' 64-bit hash, a seed per column) and the column
    hashes are folded two ways. Two distinct keys share both folds only if some column
    holds two distinct values with the same 64-bit hash (about d^2 / 2^65 for a column of
    d distinct values: below 1e-9 even for 100,000) or both folds coincide by chance
    (about n^2 / 2^129 for n keys).
    """
    hashes = [v.hash(seed=i) for i, v in enumerate(values)]
    out = []
    for name, (mul, add) in zip(_HASH, _FOLD, strict=True):
        h: pl.Expr = pl.lit(add, dtype=pl.UInt64)
        for x in hashes:
            h = (h ^ x) * pl.lit(mul, dtype=pl.UInt64)
            mul = (mul * 0x2545F4914F6CDD1D) % (1 << 64) | 1  # a different odd multiplier per column
        out.append(h.alias(name))
    if colliding:  # EngineOptions.colliding_hashes: every key shares its first 64 bits
        out[0] = pl.lit(0, dtype=pl.UInt64).alias(_HASH[0])
    return out


def _pack(parts: Sequence[tuple[pl.Expr, int]]) -> list[pl.Expr]:
    """Small non-negative integers (each below its radix) packed exactly, mixed radix, into
    as few Int64 values as fit: one hash instead of one per quantity."""
    out: list[pl.Expr] = []
    acc: pl.Expr | None = None
    size = 1
    for expr, radix in parts:
        if acc is not None and size * radix >= 1 << 63:
            out.append(acc)
            acc, size = None, 1
        acc = expr.cast(pl.Int64) if acc is None else acc * radix + expr.cast(pl.Int64)
        size *= radix
    return out if acc is None else [*out, acc]


def _carried(cfg: CostingConfig, eds: dict[str, Editions], key_cols: Sequence[str]) -> list[str]:
    """The per-row quantities a pricing key carries besides its codes (los_days last: it
    is also an output column, taken from the rows)."""
    return [*map(edition_index, eds), *row_rule_outputs(), *_row_check_columns(cfg, key_cols), "los_days"]


def _row_key(cfg: CostingConfig, eds: dict[str, Editions], present: Collection[str],
             key_cols: Sequence[str]) -> list[pl.Expr]:
    """What a row's pricing key is hashed from, lazily: its key codes (a column absent from
    the input is null on every row and adds nothing) and its per-row quantities, packed."""
    parts: list[tuple[pl.Expr, int]] = [
        ((pl.col("los_days").cast(pl.Int64) + (1 << 31)).fill_null(1 << 32), (1 << 32) + 1),
        *[(pl.col(c).cast(pl.Int64).fill_null(2), 3) for c in row_rule_outputs()],
        *[(pl.col(c).cast(pl.Int64), 2) for c in _row_check_columns(cfg, key_cols)],
    ]
    for kind, ed in eds.items():
        if ed.fixed is None:
            n = len(ed.editions)
            parts.append((pl.col(edition_index(kind)).fill_null(n), n + 1))
    return [*[pl.col(c) for c in key_cols if c in present], *_pack(parts)]


def _row_stage(cfg: CostingConfig, eds: dict[str, Editions], key_columns: Sequence[str],
               frame: pl.DataFrame | None = None) -> list[list[pl.Expr]]:
    """Per-row quantities pricing needs besides the key codes, in two steps: LOS, each
    kind's edition (by the record's date) and the row-level checks; then the per-record
    rules (:attr:`Rule.row`, e.g. short-stay age eligibility), which may read LOS. A check
    that its column's statistics in ``frame`` (the rows, in memory) prove never fails (no
    null where a value is required, no date as early as a dummy date) is false on every
    row: a constant, not evaluated per row."""
    s = pl.col("setting")
    los = apc_los(cfg)  # reference costs are per episode: an episode's own length
    price_date = pl.when(s == "apc").then(apc_price_date(cfg)).otherwise(pl.col("activity_date"))
    first = [
        pl.when(s == "apc").then(los).alias("los_days"),
        *[(pl.lit(False) if _never_fails(c, frame) else c.fails.fill_null(False)).alias(row_check_column(i))
          for i, c in row_checks(cfg, key_columns)],
    ]
    first += [ed.index_expr(price_date).alias(edition_index(kind)) for kind, ed in eds.items()]
    return [first, row_rule_columns(cfg, eds, row_rule_outputs())]


def _never_fails(check: Check, frame: pl.DataFrame | None) -> bool:
    """Whether ``check`` provably fails on no row of ``frame``, by its column's statistics."""
    return (frame is not None and check.never_if is not None and check.column in frame.columns
            and check.never_if(frame.get_column(check.column)))


def _constant_flag(flag: pl.Series) -> bool:
    """Whether a Boolean column holds one value (or null) on every row: by counts, several
    times faster than ``n_unique``."""
    nulls = flag.null_count()
    return nulls == flag.len() or (nulls == 0 and (not flag.any() or flag.all()))


def _constant_code(code: pl.Series) -> bool:
    """Whether a key code column holds one value on every row (e.g. one HRG version, or null
    throughout): by its null count, then a comparison with its first value, of a few spread
    values before all (several times cheaper than hashing it, twice, with the rest of the key)."""
    nulls = code.null_count()
    if nulls == code.len():
        return True
    # a varying code almost always differs already among a few values spread over the column
    return (nulls == 0 and bool((code.gather_every(max(code.len() // 64, 1)) == code[0]).all())
            and bool((code == code[0]).all()))


@dataclass(frozen=True)
class _Keyed:
    """Activity with its per-row pricing quantities and key hash, ready to price by key."""

    rows: pl.LazyFrame
    input_cols: list[str]
    key_cols: tuple[str, ...]
    carried: list[str]
    ts: TableSet
    cfg: CostingConfig
    chain: tuple[str, ...]
    eds: dict[str, Editions]
    present: frozenset[str]  # the input's columns: an absent key column is null throughout
    spells: SpellPlan | None = None  # in memory: how the priced rows become one row per spell
    options: EngineOptions = DEFAULT_OPTIONS

    def fixed_indices(self) -> dict[str, pl.Expr]:
        """The edition index columns of fixed editions, each the same literal on every row."""
        return {edition_index(kind): ed.index_expr(pl.lit(None, dtype=pl.Date)).alias(edition_index(kind))
                for kind, ed in self.eds.items() if ed.fixed is not None}

    def hashed_columns(self, rows: pl.DataFrame) -> list[str]:
        """What each row's key is hashed from, in memory: its key codes and the per-row
        quantities that vary. A fixed edition's index, and a code or flag (age, row check)
        that is the same on every row, are the same for every key and are left out."""
        fixed = self.fixed_indices()
        flags = {*row_rule_outputs(), *_row_check_columns(self.cfg, self.key_cols)}
        return [*(c for c in self.key_cols if c in self.present and not _constant_code(rows[c])),
                *(c for c in self.carried if c not in fixed and not (c in flags and _constant_flag(rows[c])))]

    def key_columns(self) -> pl.LazyFrame:
        """Each row's key hash, key codes and per-row quantities."""
        return self.rows.select(*_HASH, *self.key_cols, *self.carried)

    def price_keys(self, keys: pl.DataFrame) -> pl.LazyFrame:
        """The priced keys (see :func:`price_keys`)."""
        return price_keys(keys.lazy(), self.ts, self.cfg, self.chain, self.eds, self.key_cols, keep=_HASH)

    def priced_keys(self, keys: pl.DataFrame) -> pl.DataFrame:
        """:meth:`price_keys`, collected."""
        return self.price_keys(keys).collect()

    def join(self, rows: pl.LazyFrame, keys: pl.DataFrame) -> pl.LazyFrame:
        """Price ``keys`` (from :func:`_streamed_keys`) and join the prices back to ``rows``."""
        priced = self.price_keys(keys)
        # The first 64 bits alone identify a key whenever they are unique among this run's
        # keys (all but certainly: a single join column is several times faster); else
        # the join uses all 128.
        on = [_HASH[0]] if keys[_HASH[0]].n_unique() == keys.height else list(_HASH)
        out = rows.drop([*self.key_cols, *self.carried[:-1], *_HASH[len(on):]]).join(
            priced.drop("los_days", *_HASH[len(on):]), on=on, how="left", maintain_order="left")
        out_cols = self.input_cols + ["spell_key"] + list(PRICED_COLUMNS)
        # Output order is input order (a spell at its first episode's place): spells are
        # built by a left join that keeps the left order, and so is the join back of keys.
        return out.select(
            [pl.col(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else pl.col(c) for c in out_cols])


def keep_originals(activity: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Input columns named like an output column (cost, status, pod, ...) kept as
    ``<name>_original``, never silently replaced by the priced value."""
    names = activity.collect_schema().names()
    clash = {c: f"{c}_original" for c in names if c in PRICED_COLUMNS and c != "n_episodes"}
    return activity.rename(clash) if clash else activity


def _keyed(activity: pl.DataFrame | pl.LazyFrame, tables: TableSet | None,
           config: CostingConfig | None, eager: bool = False,
           normalise: Collection[str] | None = None, options: EngineOptions = DEFAULT_OPTIONS) -> _Keyed:
    """The per-row stage. With ``eager``, the canonical frame and its spells are built in
    memory (:func:`canonical_frame`, :func:`spells_appended`) and the key hash is left
    to :func:`_row_hash`; lazily, the key hash is an expression (:func:`_key_hash`).
    ``normalise`` names the String columns normalised per row in memory, when a scan has
    already found them (:func:`strings_to_normalise`); None: :func:`canonical_frame` scans."""
    cfg = config or CostingConfig()
    activity = keep_originals(activity)
    ts = resolve_tables(tables)
    chain = cfg.resolved_chain()
    if cfg.strict:
        failures = validation_failures(prepare(activity, cfg), cfg)
        if failures.height:
            raise ValidationError("activity", failures)
    eds = editions_for(ts, cfg)
    key_cols = key_columns(cfg)
    present = frozenset(activity.collect_schema().names())
    raw = _per_key_codes(cfg)
    spells: SpellPlan | None = None
    if eager:
        frame = activity.collect() if isinstance(activity, pl.LazyFrame) else activity
        if normalise is not None:  # every other String column is kept as read
            raw = [*raw, *(c for c in string_columns(frame, raw) if c not in normalise)]
        df = canonical_frame(frame, raw=raw)
        if cfg.resolved_apc_unit() == "spell":
            df, spells = spells_appended(df, cfg, options.drop_by_slices)
        else:
            df = df.with_columns(pl.lit(1, dtype=pl.Int32).alias("n_episodes"),
                                 pl.lit(None, dtype=pl.String).alias("spell_key"))
        rows = df.lazy()
    else:
        rows = prepare(activity, cfg, raw=raw)
    input_cols = [c for c in rows.collect_schema().names() if c not in ("n_episodes", "spell_key", RID)]
    for step in _row_stage(cfg, eds, key_cols, df if eager else None):
        rows = rows.with_columns(step)
    carried = _carried(cfg, eds, key_cols)
    if not eager:
        rows = rows.with_columns(_key_hash(_row_key(cfg, eds, present, key_cols), options.colliding_hashes))
    return _Keyed(rows, input_cols, key_cols, carried, ts, cfg, chain, eds, present, spells, options)


def editions_for(ts: TableSet, cfg: CostingConfig) -> dict[str, Editions]:
    """The editions each level of the chain prices at (fixed, or dated by the record)."""
    chain = cfg.resolved_chain()
    eds: dict[str, Editions] = {}
    if "tariff" in chain:
        eds["tariff"] = editions_of(ts, "tariff", cfg.tariff_edition, cfg)
    if "reference_cost" in chain or "total_hrg_average" in chain:
        eds["reference_cost"] = editions_of(ts, "reference_cost", reference_cost_pairing(ts, cfg), cfg)
    return eds


