"""Costs per cohort patient per window around the index date, zero-filled, with an audit.

Window ``k`` of a patient is ``[index_date + months*k, index_date + months*(k+1))`` in
calendar months, each bound computed directly from the index date (never by chaining
offsets) with month-end clamping: 2008-08-31 + 6 months = 2009-02-28. Every priced record
(or apportioned part of a spell) lands in exactly one audit bucket (``BUCKETS``); the
bucket assignment (``_assign``) is shared by ``cost_by_window``, ``audit`` and
``coverage`` (``cost_by_window_and_audit`` gives the first two from one assignment), and
money and rows are checked for conservation before anything is returned.

Each record finds its cohort patient through ``_HashIndex`` (a numpy hash table on the
patient ids' 64-bit hashes, then an exact id comparison) and reads the patient's window
bounds by position; sums are scattered into the zero-filled output by position too.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import polars as pl

from costing.cohort import validate_cohort
from costing.errors import ConfigError, ConservationError, InputError, MissingColumnsError
from costing.schema import COST_CATEGORIES, POD_CODES, WINDOW_COLUMNS
from costing.status import Status

__all__ = [
    "ASSIGN_RULES",
    "BUCKETS",
    "COHORT_OUTPUT_COLUMNS",
    "DEFAULT_WINDOWS",
    "POD_CATEGORIES",
    "audit",
    "audit_summary",
    "cost_by_window",
    "cost_by_window_and_audit",
    "widen",
]

logger = logging.getLogger(__name__)

Assign = Literal["admission", "discharge", "apportion"]
By = Literal["category", "pod"]

#: Where a priced record (or apportioned part) is accounted for, in order of precedence.
BUCKETS: Final = (
    "in_window",
    "outside_windows",
    "after_end_of_follow_up",
    "not_in_cohort",
    "no_date",
)
#: Categories for ``by="pod"``, in output order; "unknown" holds records with a null POD.
POD_CATEGORIES: Final = (*POD_CODES, "unknown")
ASSIGN_RULES: Final = ("admission", "discharge", "apportion")
DEFAULT_WINDOWS: Final = (-1, 0)
#: Cohort columns carried onto every output row.
COHORT_OUTPUT_COLUMNS: Final = (
    "index_date",
    "group",
    "site",
    "matched_set",
    "weight",
    "end_of_follow_up",
)
_REL_TOL: Final = 1e-6
_BUCKET_DTYPE: Final = pl.Enum(BUCKETS)
_EXCLUDED: Final = int(Status.EXCLUDED_NOT_ATTENDED)


# --------------------------------------------------------------------------------------
# specification
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    windows: tuple[int, ...]
    months: int
    assign: Assign
    by: By

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(COST_CATEGORIES) if self.by == "category" else tuple(POD_CATEGORIES)

    @property
    def category_column(self) -> str:
        return "cost_category" if self.by == "category" else "pod"


def _spec(windows: Sequence[int], months: int, assign: str, by: str) -> _Spec:
    ws = tuple(windows)
    if not ws or not all(isinstance(k, int) and not isinstance(k, bool) for k in ws):
        raise ConfigError(
            f"windows must be a non-empty sequence of whole numbers (e.g. (-1, 0)); got {windows!r}"
        )
    if len(set(ws)) != len(ws):
        raise ConfigError(f"windows {ws} repeat a window; give each k once")
    if not isinstance(months, int) or isinstance(months, bool) or months < 1:
        raise ConfigError(f"months must be a whole number >= 1 (default 6); got {months!r}")
    if assign not in ASSIGN_RULES:
        raise ConfigError(f"assign must be one of {', '.join(ASSIGN_RULES)}; got {assign!r}")
    if by not in ("category", "pod"):
        raise ConfigError(f"by must be 'category' or 'pod'; got {by!r}")
    return _Spec(tuple(sorted(ws)), months, assign, by)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------
# small named rules
# --------------------------------------------------------------------------------------


def window_bound(k: int, months: int, index_date: str = "index_date") -> pl.Expr:
    """Start of window ``k``: index date + months*k calendar months, clamped at month end."""
    return pl.col(index_date).dt.offset_by(f"{months * k}mo")


def _days(expr: pl.Expr) -> pl.Expr:
    return expr.dt.total_days()


def _window_index(date: pl.Expr, spec: _Spec) -> pl.Expr:
    """Position (0-based) of the window holding ``date``, null if none (windows are disjoint)
    or if the record's patient is not in the cohort."""
    expr: pl.Expr = pl.lit(None, pl.UInt8)
    for i in reversed(range(len(spec.windows))):
        inside = (date >= _start(spec, i)) & (date < _end(spec, i))
        expr = pl.when(inside).then(pl.lit(i, pl.UInt8)).otherwise(expr)
    return pl.when(pl.col("_pidx").is_not_null()).then(expr)


def _category_index(cat: pl.Expr, categories: Sequence[str]) -> pl.Expr:
    """Position of a record's category in the output order; null for an unknown value."""
    expr: pl.Expr = pl.lit(None, pl.UInt8)
    for i in reversed(range(len(categories))):
        expr = pl.when(cat == categories[i]).then(pl.lit(i, pl.UInt8)).otherwise(expr)
    return expr


def _bucket_code(name: str) -> pl.Expr:
    return pl.lit(BUCKETS.index(name), pl.UInt8)


def _bucket(date: pl.Expr) -> pl.Expr:
    """Bucket of a whole record assigned by one date (precedence as in ``BUCKETS`` docs)."""
    return (
        pl.when(pl.col("_pidx").is_null())
        .then(_bucket_code("not_in_cohort"))
        .when(date.is_null())
        .then(_bucket_code("no_date"))
        .when(date > pl.col("_eofu"))
        .then(_bucket_code("after_end_of_follow_up"))
        .when(pl.col("_wi").is_not_null())
        .then(_bucket_code("in_window"))
        .otherwise(_bucket_code("outside_windows"))
    )


def _bucket_name(code: str = "_b") -> pl.Expr:
    """The bucket name (an Enum of ``BUCKETS``) for an integer bucket code."""
    return pl.col(code).replace_strict(
        list(range(len(BUCKETS))), list(BUCKETS), return_dtype=_BUCKET_DTYPE
    )


def _assign_date(spec: _Spec) -> pl.Expr:
    """Date a whole record is assigned by: admission/appointment/arrival, or APC discharge."""
    if spec.assign == "discharge":
        return (
            pl.when((pl.col("setting") == "apc") & pl.col("discharge_date").is_not_null())
            .then(pl.col("discharge_date"))
            .otherwise(pl.col("activity_date"))
        )
    return pl.col("activity_date")


# --------------------------------------------------------------------------------------
# inputs
# --------------------------------------------------------------------------------------


def _priced_lazy(priced: pl.DataFrame | pl.LazyFrame, spec: _Spec) -> pl.LazyFrame:
    lf = priced.lazy()
    names = lf.collect_schema().names()
    need = ["patient_id", "setting", "activity_date", "cost", "status", spec.category_column]
    if spec.assign != "admission":
        need.append("discharge_date")
    missing = [c for c in need if c not in names]
    if missing:
        raise MissingColumnsError("priced frame", missing)
    return lf


def _bound_name(k: int) -> str:
    """Column holding ``index_date + months*k`` (shared by window k's start and k-1's end)."""
    return f"_o{k}".replace("-", "m")


def _start(spec: _Spec, i: int) -> pl.Expr:
    return pl.col(_bound_name(spec.windows[i]))


def _end(spec: _Spec, i: int) -> pl.Expr:
    return pl.col(_bound_name(spec.windows[i] + 1))


def _cohort_bounds(cohort: pl.DataFrame, spec: _Spec) -> pl.DataFrame:
    """Per cohort patient: ``_eofu`` and each distinct window bound, computed once."""
    offsets = sorted({k + d for k in spec.windows for d in (0, 1)})
    return cohort.select(
        pl.col("end_of_follow_up").alias("_eofu"),
        *(window_bound(k, spec.months).alias(_bound_name(k)) for k in offsets),
    )


class _HashIndex:
    """Exact position of a value in a column of unique values, via a 64-bit hash table.

    An open-addressing table (linear probing) of key positions, placed by the top bits of
    the polars hash of each key, built and probed with whole-array numpy steps: each step
    places or probes every pending value at once, and the steps stop when none is pending
    (after the longest probe run: a few dozen at most), never one step per row. Hashes only
    find a candidate: ``positions`` then compares the values themselves, so the answer is
    exact. ``build`` gives ``None`` when two keys share a hash (then callers join on the
    values instead).
    """

    def __init__(self, keys: pl.Series) -> None:
        self.keys = keys.rechunk()  # a gather from many chunks (e.g. a Parquet read) is several times slower
        self.hashes = keys.hash().to_numpy()
        n = len(self.hashes)
        bits = max(4, (4 * n).bit_length())  # at most a quarter of the slots used
        self.shift = np.uint64(64 - bits)
        self.mask = np.int64((1 << bits) - 1)
        self.slot_of_key = np.full(1 << bits, -1, dtype=np.int32)
        home = self._home(self.hashes)
        pending = np.arange(n, dtype=np.int32)
        step = 0
        while pending.size:
            slot = (home[pending] + step) & self.mask
            free = np.flatnonzero(self.slot_of_key[slot] < 0)
            # every key after a free slot writes it; the one that reads itself back won
            # it, the others probe on
            slot, key = slot[free], pending[free]
            self.slot_of_key[slot] = key
            placed = np.zeros(pending.size, dtype=bool)
            placed[free[self.slot_of_key[slot] == key]] = True
            pending = pending[~placed]
            step += 1

    @classmethod
    def build(cls, keys: pl.Series) -> _HashIndex | None:
        index = cls(keys)
        if not np.array_equal(index._probe(index.hashes), np.arange(len(keys))):
            return None  # two keys share a hash: the second finds the first
        return index

    def _home(self, hashes: np.ndarray) -> np.ndarray:
        # the top bits of a uint64, shifted down, read the same as an int64
        return (hashes >> self.shift).view(np.int64)

    def _lookup(self, slots: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Key position in each slot (-1 if empty) and whether that key has the hash."""
        pos = np.take(self.slot_of_key, slots)
        # an empty slot (-1) reads the last key's hash: masked by pos >= 0
        same = np.take(self.hashes, pos) == hashes
        same &= pos >= 0
        return pos, same

    def _probe(self, hashes: np.ndarray) -> np.ndarray:
        """Position of the key with each hash, -1 if none."""
        home = self._home(hashes)
        pos, hit = self._lookup(home, hashes)
        todo = np.flatnonzero(~hit & (pos >= 0))  # slot taken by another key: probe on
        pos[~hit] = -1
        step = 1
        while todo.size:
            got, hit = self._lookup((home[todo] + step) & self.mask, hashes[todo])
            pos[todo[hit]] = got[hit]
            todo = todo[~hit & (got >= 0)]
            step += 1
        return pos

    def positions(self, values: pl.Series) -> pl.Series:
        """UInt32 position of each value among the keys; null if absent (or null)."""
        pos = self._probe(values.hash().to_numpy())
        found = pl.Series(pos >= 0)
        cand = pl.Series("_pidx", np.maximum(pos, 0).view(np.uint32))
        same = (self.keys.gather(cand) == values).fill_null(False)
        return pl.select(pl.when(same & found).then(cand)).to_series()


def _cohort_positions(ids: pl.Series, cohort: pl.DataFrame) -> pl.Series:
    """Position ``_pidx`` (UInt32) of each record's patient in the cohort, null if not in it.

    A numpy hash table on the 64-bit hashes of the cohort ids, then a comparison of the
    ids themselves: exact, and much cheaper than a string join on millions of records. If
    two cohort ids share a hash (vanishingly rare) a join on the ids is used.
    """
    keys = cohort["patient_id"]
    if keys.is_empty():
        return pl.repeat(None, ids.len(), dtype=pl.UInt32, eager=True).alias("_pidx")
    index = _HashIndex.build(keys)
    if index is not None:
        return index.positions(ids)
    logger.info("windows: patient_id hashes collide in the cohort; joining on the ids")
    ref = keys.to_frame().with_columns(pl.int_range(pl.len(), dtype=pl.UInt32).alias("_pidx"))
    return (
        ids.to_frame("patient_id")
        .join(ref, on="patient_id", how="left", maintain_order="left")
        .get_column("_pidx")
    )


def _join_cohort(records: pl.DataFrame, cohort: pl.DataFrame, bounds: pl.DataFrame) -> pl.LazyFrame:
    """Records with their cohort position ``_pidx`` (null if not in it) and the patient's
    ``bounds`` (``_cohort_bounds``).

    A record not in the cohort carries the first patient's bounds (a gather without nulls
    is over twice as fast): ``_bucket`` and ``_window_index`` look at ``_pidx`` first, and
    only records of cohort patients are apportioned.
    """
    pidx = _cohort_positions(records["patient_id"], cohort)
    mine = bounds.select(pl.all().gather(pidx.fill_null(0) if cohort.height else pidx))
    return records.with_columns(pidx).hstack(mine.get_columns()).lazy()


# --------------------------------------------------------------------------------------
# bucket assignment (shared by cost_by_window, audit and coverage)
# --------------------------------------------------------------------------------------


def _assign(
    priced: pl.DataFrame,
    cohort: pl.DataFrame,
    spec: _Spec,
    keep: Sequence[str] = (),
    bounds: pl.DataFrame | None = None,
) -> pl.LazyFrame:
    """One row per record, or per apportioned part of a spell, with its bucket.

    Columns: ``_row`` (input position), ``keep``, ``status``, ``_pidx`` (cohort
    position), ``_ci`` (category position), ``_record_cost`` (the record's cost), ``_wi``
    (window position), ``_b`` (bucket code, position in ``BUCKETS``), ``_part_cost`` (this
    part's cost), ``_first`` (True on exactly one part of each record), ``_nights``
    (apportioned nights, null when not split). Only what is asked for is materialised.
    """
    cats = spec.categories
    cat = pl.col(spec.category_column)
    if spec.by == "pod":
        cat = cat.fill_null("unknown")
    keep = [c for c in keep if c != "status"]
    cols = list(dict.fromkeys(["patient_id", "setting", "activity_date", "status", *keep]))
    if spec.assign != "admission" and "discharge_date" not in cols:
        cols.append("discharge_date")
    recs = priced.with_row_index("_row").select(
        "_row",
        *cols,
        pl.col("cost").cast(pl.Float64).alias("_record_cost"),
        _category_index(cat, cats).alias("_ci"),
    )
    if bounds is None:
        bounds = _cohort_bounds(cohort, spec)
    joined = _join_cohort(recs, cohort, bounds)
    base = ["_row", *keep, "status", "_pidx", "_ci", "_record_cost"]

    def whole(frame: pl.LazyFrame) -> pl.LazyFrame:
        date = _assign_date(spec)
        return (
            frame.with_columns(_window_index(date, spec).alias("_wi"))
            .with_columns(_bucket(date).alias("_b"))
            .select(
                *base,
                "_wi",
                "_b",
                pl.col("_record_cost").alias("_part_cost"),
                pl.lit(True).alias("_first"),
                pl.lit(None, pl.Int32).alias("_nights"),
            )
        )

    if spec.assign != "apportion":
        return whole(joined)
    return pl.concat([whole(joined.filter(~_split_rule())), *_apportioned(joined, spec, base)])


def _split_rule() -> pl.Expr:
    """An APC spell of a cohort patient with valid dates and at least one night is split."""
    nights = _days(pl.col("discharge_date") - pl.col("activity_date"))
    return ((pl.col("setting") == "apc") & pl.col("_pidx").is_not_null() & (nights > 0)).fill_null(
        False
    )


def _apportioned(joined: pl.LazyFrame, spec: _Spec, base: list[str]) -> list[pl.LazyFrame]:
    """Parts of split spells: nights per window, outside all windows, after follow-up.

    Night ``d`` is the night starting on day ``d``; a spell admitted on ``a`` and
    discharged on ``b`` has nights ``a .. b-1``. A night belongs to window ``k`` when
    ``start_k <= d < end_k`` and ``d <= end_of_follow_up``; nights after the end of
    follow-up go to ``after_end_of_follow_up``; the rest to ``outside_windows``. Each part
    costs ``cost * nights_part / nights``, except the last non-empty part (in the order
    windows, outside, after) which takes ``cost`` less the earlier parts, so parts sum to
    the cost.
    """
    n_w = len(spec.windows)
    a, b = pl.col("activity_date"), pl.col("discharge_date")
    censor = pl.col("_eofu").dt.offset_by("1d").fill_null(b)  # first day not observed
    names = [f"_n{i}" for i in range(n_w)] + ["_nout", "_naft"]
    buckets: list[tuple[str, int | None]] = [("in_window", i) for i in range(n_w)]
    buckets += [("outside_windows", None), ("after_end_of_follow_up", None)]
    in_win = [
        _days(pl.min_horizontal(b, _end(spec, i), censor) - pl.max_horizontal(a, _start(spec, i)))
        .clip(lower_bound=0)
        .alias(f"_n{i}")
        for i in range(n_w)
    ]
    after = _days(b - pl.max_horizontal(a, censor)).clip(lower_bound=0).alias("_naft")
    split = (
        joined.filter(_split_rule())
        .with_columns(_days(b - a).alias("_n"), *in_win, after)
        .with_columns(
            (
                pl.col("_n") - pl.sum_horizontal(f"_n{i}" for i in range(n_w)) - pl.col("_naft")
            ).alias("_nout")
        )
        .with_columns(
            (pl.col("_record_cost") * pl.col(nm) / pl.col("_n")).alias(f"_p{j}")
            for j, nm in enumerate(names)
        )
    )
    parts = []
    for j, (nm, (bucket, wi)) in enumerate(zip(names, buckets, strict=True)):
        later_empty = pl.all_horizontal([pl.col(x) == 0 for x in names[j + 1 :]] or [pl.lit(True)])
        earlier_empty = pl.all_horizontal([pl.col(x) == 0 for x in names[:j]] or [pl.lit(True)])
        earlier_sum = pl.sum_horizontal([pl.col(f"_p{x}") for x in range(j)] or [pl.lit(0.0)])
        part_cost = (
            pl.when(later_empty)
            .then(pl.col("_record_cost") - earlier_sum)
            .otherwise(pl.col(f"_p{j}"))
        )
        parts.append(
            split.filter(pl.col(nm) > 0).select(
                *base,
                pl.lit(wi, pl.UInt8).alias("_wi"),
                _bucket_code(bucket).alias("_b"),
                # a null cost stays null (sum_horizontal would treat it as 0)
                pl.when(pl.col("_record_cost").is_not_null()).then(part_cost).alias("_part_cost"),
                earlier_empty.alias("_first"),
                pl.col(nm).cast(pl.Int32).alias("_nights"),
            )
        )
    return parts


# --------------------------------------------------------------------------------------
# conservation
# --------------------------------------------------------------------------------------


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_REL_TOL, abs_tol=_REL_TOL)


def _bucket_totals(assigned: pl.DataFrame) -> pl.DataFrame:
    """Records, parts, cost and whole-record cost per bucket present, in ``BUCKETS`` order.

    Columns ``_b``, ``n_records`` (parts flagged ``_first``), ``n_parts``, ``cost`` (sum of
    part costs), ``_whole`` (sum of the costs of whole records, once each) and ``bucket``.
    One filtered sum per bucket and measure (a group_by on the bucket code costs about
    three times as much CPU).
    """
    first = pl.col("_first")
    measures: dict[str, Callable[[pl.Expr], pl.Expr]] = {
        "n_records": lambda inb: (inb & first).sum(),
        "n_parts": lambda inb: inb.sum(),
        "cost": lambda inb: pl.col("_part_cost").filter(inb).sum(),
        "_whole": lambda inb: pl.col("_record_cost").filter(inb & first).sum(),
    }
    codes = range(len(BUCKETS))
    sums = assigned.select(
        measure(pl.col("_b") == code).alias(f"{name}{code}")
        for name, measure in measures.items()
        for code in codes
    ).row(0, named=True)
    return (
        pl.DataFrame(
            {
                "_b": pl.Series(codes, dtype=pl.UInt8),
                **{name: [sums[f"{name}{code}"] for code in codes] for name in measures},
            },
            schema_overrides={"n_records": pl.UInt32, "n_parts": pl.UInt32},
        )
        .filter(pl.col("n_parts") > 0)
        .with_columns(pl.col("cost", "_whole").cast(pl.Float64), _bucket_name().alias("bucket"))
    )


def _check_assigned(assigned: pl.DataFrame, totals: pl.DataFrame, spec: _Spec) -> pl.DataFrame:
    """Check every input record is assigned once with its whole cost; return bucket totals."""
    n_in = int(totals["n"][0])
    cost_in = float(totals["cost"][0] or 0.0)
    by_bucket = _bucket_totals(assigned)
    n_out = int(by_bucket["n_records"].sum())
    cost_parts = float(by_bucket["cost"].sum())
    cost_whole = float(by_bucket["_whole"].sum())
    if n_out != n_in:
        raise ConservationError(
            f"windows: {n_in} priced records in but {n_out} assigned to buckets "
            f"({dict(zip(by_bucket['bucket'], by_bucket['n_records'], strict=True))}); "
            "a bug in costing, please report it"
        )
    if not (_close(cost_parts, cost_in) and _close(cost_whole, cost_in)):
        raise ConservationError(
            f"windows: priced cost {cost_in!r} but buckets hold {cost_parts!r} "
            f"(whole records {cost_whole!r}) under assign={spec.assign!r}; "
            "a bug in costing, please report it"
        )
    return by_bucket


def _check_categories(assigned: pl.DataFrame, priced: pl.LazyFrame, spec: _Spec) -> None:
    if assigned["_ci"].null_count():
        check_known_categories(priced, spec.category_column, spec.categories)


def check_known_categories(priced: pl.LazyFrame, col: str, categories: Sequence[str]) -> None:
    """Raise InputError naming the values of ``col`` outside ``categories`` (or missing)."""
    bad = (
        priced.select(pl.col(col).cast(pl.String))
        .filter(~pl.col(col).is_in(list(categories)) | pl.col(col).is_null())
        .group_by(col)
        .len()
        .sort("len", descending=True)
        .collect()
    )
    if bad.height == 0:
        return
    shown = ", ".join(f"{v!r} ({n} rows)" for v, n in bad.head(10).iter_rows())
    raise InputError(
        f"priced frame: column {col!r} has value(s) outside {list(categories)}: {shown}. "
        f"Every record needs a known {col} to be placed in a window; check the pricing output."
    )


def _collect_assigned(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    spec: _Spec,
    keep: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Validated cohort, assigned records (collected once) and bucket totals, checked.

    A LazyFrame input is collected once, with only the columns used, so the input totals
    and the assignment read the same rows without computing the upstream plan twice.
    """
    coh, _, assigned, by_bucket = _collect(priced, cohort, spec, keep)
    return coh, assigned, by_bucket


def _collect(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    spec: _Spec,
    keep: Sequence[str] = (),
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """``_collect_assigned`` and the cohort's window bounds (``_cohort_bounds``)."""
    lf = _priced_lazy(priced, spec)
    used = ["patient_id", "setting", "activity_date", "cost", "status", spec.category_column]
    if spec.assign != "admission":
        used.append("discharge_date")
    # one chunk per column: a priced frame read from Parquet (or priced from one) comes in
    # many chunks, and the gathers below are several times slower across chunks
    df = lf.select(list(dict.fromkeys([*used, *keep]))).collect().rechunk()
    coh = validate_cohort(cohort).rechunk()
    totals = df.select(pl.len().alias("n"), pl.col("cost").cast(pl.Float64).sum().alias("cost"))
    bounds = _cohort_bounds(coh, spec)
    assigned = _assign(df, coh, spec, keep, bounds).collect()
    _check_categories(assigned, df.lazy(), spec)
    by_bucket = _check_assigned(assigned, totals, spec)
    return coh, bounds, assigned, by_bucket


# --------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------


def _zero_filled(
    cohort: pl.DataFrame, bounds: pl.DataFrame, spec: _Spec, sums: dict[str, np.ndarray]
) -> pl.DataFrame:
    """Every cohort patient x window x category, in cohort, window, category order.

    Row ``r`` is patient ``r // (W*C)``, window ``(r // C) % W``, category ``r % C``: the
    same position ``_key`` gives an assigned record, so the per-position ``sums`` (cost,
    n_records, n_unpriced, n_excluded) are the measure columns as they stand. Window
    bounds (``bounds``, from ``_cohort_bounds``) and days observed are day numbers per
    patient and window, repeated for each category; cohort columns are gathered by patient.
    """
    n_p, n_w, n_c = cohort.height, len(spec.windows), len(spec.categories)

    def day_numbers(name: str) -> np.ndarray:
        return bounds[name].to_physical().fill_null(0).to_numpy()

    eofu, no_eofu = day_numbers("_eofu"), bounds["_eofu"].is_null().to_numpy()
    # patient-major (n_p, n_w) tables of day numbers
    start = np.column_stack([day_numbers(_bound_name(k)) for k in spec.windows])
    end = np.column_stack([day_numbers(_bound_name(k + 1)) for k in spec.windows])
    # days up to and including end_of_follow_up; 0 if the window starts after it
    observed_to = np.minimum(end, eofu[:, None] + 1)
    observed = np.where(no_eofu[:, None], end - start, np.maximum(observed_to - start, 0))

    def per_row(table: np.ndarray) -> pl.Series:
        """A patient x window table as a column: each value repeated for each category."""
        return pl.Series(np.repeat(table.ravel(), n_c))

    patient = pl.Series(np.repeat(np.arange(n_p, dtype=np.uint32), n_w * n_c))
    category = pl.Series(np.tile(np.arange(n_c, dtype=np.uint32), n_p * n_w))
    cohort_cols = cohort.select(
        pl.col("patient_id", *COHORT_OUTPUT_COLUMNS).gather(patient)
    ).get_columns()
    window = np.tile(np.repeat(np.array(spec.windows, dtype=np.int32), n_c), n_p)
    columns = {
        "patient_id": cohort_cols[0],
        "window": pl.Series(window),
        "window_start": per_row(start).cast(pl.Date),
        "window_end": per_row(end).cast(pl.Date),
        "window_days": per_row(end - start),
        "category": pl.Series(spec.categories, dtype=pl.String).gather(category),
        "cost": pl.Series(sums["cost"]),
        "n_records": pl.Series(sums["n_records"].astype(np.uint32)),
        "n_unpriced": pl.Series(sums["n_unpriced"].astype(np.uint32)),
        "n_excluded": pl.Series(sums["n_excluded"].astype(np.uint32)),
        "days_observed": per_row(observed),
    }
    out = pl.DataFrame([s.alias(name) for name, s in columns.items()] + cohort_cols[1:])
    return out.cast({c: t for c, t in WINDOW_COLUMNS.items()})


def _key(n_windows: int, n_categories: int) -> pl.Expr:
    """Position of (patient, window, category) in the zero-filled output."""
    return (
        pl.col("_pidx").cast(pl.UInt64) * (n_windows * n_categories)
        + pl.col("_wi").cast(pl.UInt64) * n_categories
        + pl.col("_ci").cast(pl.UInt64)
    )


def _wide(long: pl.DataFrame, categories: Sequence[str]) -> pl.DataFrame:
    n_c = len(categories)
    ids = ["patient_id", "window", "window_start", "window_end", "window_days", "days_observed"]
    base = long.gather_every(n_c, 0).select(*ids, *COHORT_OUTPUT_COLUMNS)
    measures = ("cost", "n_records", "n_unpriced", "n_excluded")
    per_cat = [
        long.gather_every(n_c, i).select(pl.col(m).alias(f"{m}_{c}") for m in measures)
        for i, c in enumerate(categories)
    ]
    out = base.with_columns(s for frame in per_cat for s in frame.get_columns())
    return out.with_columns(pl.sum_horizontal(f"cost_{c}" for c in categories).alias("cost_total"))


def widen(window_costs: pl.DataFrame, by: By = "category") -> pl.DataFrame:
    """The wide form of ``cost_by_window``'s long output, without recomputing it.

    One row per patient x window, with ``cost_<category>``, ``n_records_<category>``, ...
    columns and ``cost_total``. The long frame must be as ``cost_by_window`` returns it
    (every category of ``by``, in order, for each patient and window).
    """
    categories = tuple(COST_CATEGORIES) if by == "category" else tuple(POD_CATEGORIES)
    n_c = len(categories)
    expected = pl.Series(categories * (window_costs.height // n_c), dtype=pl.String)
    if window_costs.height % n_c or not window_costs["category"].equals(
        expected, check_names=False
    ):
        raise InputError(
            f"window costs are not cost_by_window's long output for by={by!r} (each patient and "
            f"window must list the categories {list(categories)} in order); pass the frame "
            "cost_by_window returned, or call it with wide=True"
        )
    return _wide(window_costs, categories)


def cost_by_window(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    months: int = 6,
    assign: Assign = "admission",
    by: By = "category",
    wide: bool = False,
) -> pl.DataFrame:
    """Cost per cohort patient per window per category, zero-filled.

    Args:
        priced: the output of ``costing.price`` (DataFrame or LazyFrame): one row per
            priced record with patient_id, setting, activity_date, discharge_date (APC),
            cost_category (or pod), cost and status. Other columns are ignored.
        cohort: one row per patient (see ``validate_cohort``).
        windows: the window indices k; window k covers
            ``[index_date + months*k, index_date + months*(k+1))`` in calendar months.
        months: window length in calendar months.
        assign: how an APC spell is placed: ``"admission"`` (its admission date),
            ``"discharge"`` (its discharge date) or ``"apportion"`` (split pro rata over
            its nights: see ``docs/windows.md``). OP and A&E use their date.
        by: ``"category"`` (elective, non_elective, outpatient, ae) or ``"pod"``
            (``POD_CATEGORIES``).
        wide: one row per patient x window with ``cost_<category>``, ``n_records_<..>``,
            ``n_unpriced_<..>``, ``n_excluded_<..>`` and ``cost_total`` columns.

    Returns:
        Long form: one row per cohort patient x window x category (cohort order, then
        window, then category order) with the ``WINDOW_COLUMNS`` and the cohort columns
        ``COHORT_OUTPUT_COLUMNS``. ``cost`` is the sum of the costs of priced records only
        (excluded records add 0); unpriced records (null cost) are counted in
        ``n_unpriced`` and add nothing to ``cost``, so a window with unpriced activity
        is an underestimate, never silently zero-costed. ``n_records`` counts every record
        placed in the window, priced or not (an apportioned spell counts in each window
        it has nights in). Activity after ``end_of_follow_up``, outside all windows, of
        patients not in the cohort or with no date is left out here and listed by
        ``audit``.

    Raises:
        ConfigError: bad windows, months, assign or by.
        MissingColumnsError, CohortError, InputError: unusable priced frame or cohort.
        ConservationError: money or rows not conserved (a bug in costing).

    Example:
        >>> out = cost_by_window(priced, cohort)  # doctest: +SKIP
        >>> out.group_by("group", "window").agg(pl.col("cost").sum())  # doctest: +SKIP
    """
    spec = _spec(windows, months, assign, by)
    return _window_costs(*_collect(priced, cohort, spec), spec, wide)


def _window_costs(
    coh: pl.DataFrame,
    bounds: pl.DataFrame,
    assigned: pl.DataFrame,
    by_bucket: pl.DataFrame,
    spec: _Spec,
    wide: bool,
) -> pl.DataFrame:
    """``cost_by_window``'s output from the checked assignment (``_collect``)."""
    n_w, n_c = len(spec.windows), len(spec.categories)
    size = coh.height * n_w * n_c
    inw = (
        assigned.lazy()
        .filter(pl.col("_b") == BUCKETS.index("in_window"))
        .select(
            _key(n_w, n_c).cast(pl.Int64).alias("_key"),
            pl.col("_part_cost").fill_null(0.0).alias("cost"),
            pl.col("_part_cost").is_null().alias("unpriced"),
            (pl.col("status") == _EXCLUDED).fill_null(False).alias("excluded"),
        )
        .collect()
    )
    # a dense scatter-add over output positions: the group_by + zero-fill join in one step
    key = inw["_key"].to_numpy()
    sums = {
        "cost": np.bincount(key, weights=inw["cost"].to_numpy(), minlength=size),
        "n_records": np.bincount(key, minlength=size),
        "n_unpriced": np.bincount(key[inw["unpriced"].to_numpy()], minlength=size),
        "n_excluded": np.bincount(key[inw["excluded"].to_numpy()], minlength=size),
    }
    if any(len(v) != size for v in sums.values()):
        raise ConservationError(
            f"windows: an in-window record points past the {size} output rows; "
            "a bug in costing, please report it"
        )
    long = _zero_filled(coh, bounds, spec, sums)
    in_window = by_bucket.filter(pl.col("bucket") == "in_window")
    want_cost = float(in_window["cost"].sum())
    want_parts = int(in_window["n_parts"].sum())
    got_cost = float(long["cost"].sum())
    got_rows = int(long["n_records"].sum())
    expected_height = coh.height * n_w * n_c
    if long.height != expected_height or got_rows != want_parts or not _close(got_cost, want_cost):
        raise ConservationError(
            f"windows: zero-filled output has {long.height} rows (expected {expected_height}), "
            f"{got_rows} records (expected {want_parts}) and cost {got_cost!r} "
            f"(expected {want_cost!r}); a bug in costing, please report it"
        )
    logger.info(
        "windows: %d patients x %d windows x %d categories; buckets %s",
        coh.height,
        n_w,
        n_c,
        dict(zip(by_bucket["bucket"].cast(pl.String), by_bucket["n_records"], strict=True)),
    )
    return _wide(long, spec.categories) if wide else long


_AUDIT_KEEP: Final = (
    "record_id",
    "patient_id",
    "setting",
    "activity_date",
    "discharge_date",
    "pod",
    "cost_category",
    "cost_source",
    "status",
    "status_name",
)


def audit(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    months: int = 6,
    assign: Assign = "admission",
    by: By = "category",
) -> pl.DataFrame:
    """Every priced record (or apportioned part) with the bucket it was accounted in.

    Buckets (``BUCKETS``), in order of precedence: ``not_in_cohort`` (patient_id not in
    the cohort), ``no_date`` (no activity date), ``after_end_of_follow_up`` (assigned
    date after the cohort's end_of_follow_up), ``in_window`` (with its window k and
    bounds) and ``outside_windows``. Under ``assign="apportion"`` a split spell has one
    row per part, with ``nights`` and the part's ``cost``; ``record_cost`` is always the
    whole record's cost. Same arguments as ``cost_by_window``; rows in input order.

    Returns:
        The input's identifying columns present among record_id, patient_id, setting,
        activity_date, discharge_date, pod, cost_category, cost_source, status,
        status_name; then bucket, window, window_start, window_end, nights, record_cost,
        cost.
    """
    spec = _spec(windows, months, assign, by)
    keep = _audit_keep(priced, spec)
    _, bounds, assigned, _ = _collect(priced, cohort, spec, keep)
    return _audit_frame(bounds, assigned, spec, keep)


def _audit_keep(priced: pl.DataFrame | pl.LazyFrame, spec: _Spec) -> list[str]:
    """The identifying columns ``audit`` carries: those of ``_AUDIT_KEEP`` in ``priced``."""
    names = _priced_lazy(priced, spec).collect_schema().names()
    return [c for c in _AUDIT_KEEP if c in names]


def _audit_frame(
    bounds: pl.DataFrame, assigned: pl.DataFrame, spec: _Spec, keep: Sequence[str]
) -> pl.DataFrame:
    """``audit``'s output from the checked assignment (``_collect`` with ``keep``).

    A placed record's window k and bounds are read by position: its patient's bounds
    (``_cohort_bounds``) gathered by ``_pidx``, chosen by ``_wi`` (a join on patient and
    window did the same at several times the cost). Rows are put in input order (record,
    then part) by a sort only when they are not in it already.
    """
    pidx = assigned["_pidx"]
    if bounds.height:
        pidx = pidx.fill_null(0)  # records with no patient have no window (``_wi`` null)
    offsets = sorted({k + d for k in spec.windows for d in (0, 1)})
    gathered = [bounds[_bound_name(k)].gather(pidx) for k in offsets]

    def of_window(value: Callable[[int], pl.Expr]) -> pl.Expr:
        expr: pl.Expr = pl.lit(None)
        for i in reversed(range(len(spec.windows))):
            expr = pl.when(pl.col("_wi") == i).then(value(i)).otherwise(expr)
        return expr

    out = assigned.with_columns(gathered)
    if not out["_row"].is_sorted():
        out = out.sort("_row", maintain_order=True)  # a record's parts keep their order
    return out.select(
        *keep,
        _bucket_name().alias("bucket"),
        of_window(lambda i: pl.lit(spec.windows[i], pl.Int32)).alias("window"),
        of_window(lambda i: _start(spec, i)).alias("window_start"),
        of_window(lambda i: _end(spec, i)).alias("window_end"),
        pl.col("_nights").alias("nights"),
        pl.col("_record_cost").alias("record_cost"),
        pl.col("_part_cost").alias("cost"),
    )


def cost_by_window_and_audit(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_WINDOWS,
    months: int = 6,
    assign: Assign = "admission",
    by: By = "category",
    wide: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``cost_by_window(...)`` and ``audit(...)`` from one bucket assignment.

    The same two frames as calling both with these arguments (``wide`` applies to the
    window costs), with the cohort validated, every record placed and the conservation
    checks run once instead of twice: what ``costing run`` needs.
    """
    spec = _spec(windows, months, assign, by)
    keep = _audit_keep(priced, spec)
    coh, bounds, assigned, by_bucket = _collect(priced, cohort, spec, keep)
    costs = _window_costs(coh, bounds, assigned, by_bucket, spec, wide)
    return costs, _audit_frame(bounds, assigned, spec, keep)


def audit_summary(audit_frame: pl.DataFrame) -> pl.DataFrame:
    """Rows and cost by bucket (and window) from an ``audit`` frame.

    Returns:
        bucket, window, n_rows (records or parts), n_unpriced, n_excluded, cost: one
        row per bucket in ``BUCKETS`` order (every bucket present, zero when empty) and,
        for ``in_window``, one row per window seen. The cost column sums to the priced
        total.
    """
    all_buckets = pl.DataFrame({"bucket": list(BUCKETS)}, schema={"bucket": _BUCKET_DTYPE})
    got = audit_frame.group_by("bucket", "window").agg(
        pl.len().cast(pl.UInt32).alias("n_rows"),
        pl.col("cost").is_null().sum().cast(pl.UInt32).alias("n_unpriced"),
        (pl.col("status") == _EXCLUDED).sum().cast(pl.UInt32).alias("n_excluded"),
        pl.col("cost").sum().alias("cost"),
    )
    return (
        all_buckets.join(got, on="bucket", how="left")
        .with_columns(
            pl.col(c).fill_null(0) for c in ("n_rows", "n_unpriced", "n_excluded", "cost")
        )
        .sort("bucket", "window", nulls_last=True)
    )
