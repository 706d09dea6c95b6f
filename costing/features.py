"""Prior hospital use per patient, strictly before an index date: the features ``match``
reads (``prior_use``).

The windows, the apportioning of spells by night and the counting follow
``costing.windows`` (``cost_by_window(assign="apportion")``): window ``k`` (negative) is
``[index_date + months*k, index_date + months*(k+1))``; a record that is not an admitted
spell with nights, and a spell without a discharge date, falls wholly in the window of its
activity date; a spell's nights (night ``d`` runs from day ``d`` to ``d + 1``) are shared
among the windows, and its cost with them in proportion (``cost * nights / stay``); a record
is counted once, in the first window that holds it (a spell admitted before the first
window and running into it counts there); a did-not-attend is not use; nothing after a
patient's end of follow-up counts. ``tests/unit/test_features.py`` holds the two equal on
generated records.

Matching asks for the features of about a million candidates at each index month. Running
the windows machinery once per month (a hash join of every record into a million-row cohort,
bucket and conservation bookkeeping) cost most of its time, so the records are turned into
arrays once (``PriorRecords``: patients as integer codes, days as integers), and each set of features is a few vectorised passes over the records in its look-back
(docs/performance.md#matching).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl

from costing.cohort import validate_cohort
from costing.errors import ConfigError
from costing.schema import COST_CATEGORIES
from costing.status import Status
from costing.windows import _priced_lazy, _spec, check_known_categories, window_bound

__all__ = [
    "DEFAULT_FEATURE_WINDOWS",
    "PriorRecords",
    "any_record",
    "check_windows",
    "feature_names",
    "features",
    "index_spells",
    "iter_features",
    "prior_records",
    "prior_use",
]

DEFAULT_FEATURE_WINDOWS: Final = (-4, -3, -2, -1)
#: what the features read from a priced frame
FEATURE_READS: Final = ("patient_id", "setting", "activity_date", "discharge_date", "cost_category",
                        "cost", "status")
_EXCLUDED: Final = int(Status.EXCLUDED_NOT_ATTENDED)
_N_CAT: Final = len(COST_CATEGORIES)
_NEVER: Final = np.iinfo(np.int64).max // 2  # a day after every date (no end of follow-up)


def _window_label(k: int) -> str:
    return f"m{-k}" if k < 0 else f"p{k}"


def feature_names(windows: Sequence[int] = DEFAULT_FEATURE_WINDOWS) -> list[str]:
    """Names of the ``prior_use`` columns, in order: per window, per category the number
    of records and their cost, then the bed days.

    Example:
        >>> feature_names((-1,))
        ['n_elective_m1', 'cost_elective_m1', 'n_non_elective_m1', 'cost_non_elective_m1', 'n_outpatient_m1', 'cost_outpatient_m1', 'n_ae_m1', 'cost_ae_m1', 'bed_days_m1']
    """
    names = []
    for k in windows:
        for c in COST_CATEGORIES:
            names += [f"n_{c}_{_window_label(k)}", f"cost_{c}_{_window_label(k)}"]
        names.append(f"bed_days_{_window_label(k)}")
    return names


def check_windows(windows: Sequence[int], months: int) -> tuple[int, ...]:
    """The feature windows, sorted, checked: negative whole numbers, each once."""
    ws = tuple(windows)
    if not ws or any(not isinstance(k, int) or isinstance(k, bool) or k >= 0 for k in ws):
        raise ConfigError(
            f"feature windows must be negative whole numbers (before the index date), e.g. "
            f"(-4, -3, -2, -1); got {windows!r}"
        )
    return _spec(ws, months, "apportion", "category").windows


def index_spells(
    priced: pl.DataFrame | pl.LazyFrame, cohort: pl.DataFrame, days: int
) -> pl.Series:
    """Whether each priced record is its patient's index spell (a boolean per record).

    An index spell is an admitted-patient-care record of a cohort patient admitted on or
    before the index date and discharged on or after ``index_date - days`` (the spell in
    progress at the index date, or one that ended at most ``days`` days before it): the
    admission that typically triggers enrolment. ``match(index_spell_days=...)`` leaves these
    out of the features of both arms and ``costing run`` out of their windows.

    Example:
        >>> import datetime as d, polars as pl
        >>> p = pl.DataFrame({"patient_id": ["a", "a"], "setting": ["apc", "op"],
        ...     "activity_date": [d.date(2009, 1, 1)] * 2, "discharge_date": [d.date(2009, 1, 9), None]})
        >>> c = pl.DataFrame({"patient_id": ["a"], "index_date": [d.date(2009, 1, 5)]})
        >>> index_spells(p, c, days=0).to_list()
        [True, False]
    """
    _check_index_spell_days(days)
    lf = priced.lazy().select("patient_id", "setting", "activity_date", "discharge_date")
    idx = cohort.lazy().select(pl.col("patient_id").cast(pl.String), "index_date")
    out = (
        lf.with_columns(pl.col("patient_id").cast(pl.String))
        .join(idx, on="patient_id", how="left", maintain_order="left")
        .select(
            (
                (pl.col("setting") == "apc")
                & (pl.col("activity_date") <= pl.col("index_date"))
                & (pl.col("discharge_date") >= pl.col("index_date") - pl.duration(days=days))
            )
            .fill_null(False)
            .alias("index_spell")
        )
        .collect()
    )
    return out.to_series()


def _check_index_spell_days(days: int | None) -> None:
    if days is not None and days < 0:
        raise ConfigError(f"index_spell_days={days!r}: give a number of days >= 0")


# --------------------------------------------------------------------------------------
# records as arrays
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Part:
    """One kind of record as arrays, one entry per record, sorted by patient (the records
    of patient code ``c`` are ``offsets[c]:offsets[c + 1]``)."""

    patient: np.ndarray  # int64 code: position in PriorRecords.ids
    start: np.ndarray  # int64 day number of activity_date
    stop: np.ndarray  # int64 day number of discharge_date (start where there is none)
    apc: np.ndarray  # bool: admitted patient care with a discharge date (index-spell test)
    category: np.ndarray  # int64 position in COST_CATEGORIES
    cost: np.ndarray  # float64, 0 where unpriced
    attended: np.ndarray  # bool: not a did-not-attend
    offsets: np.ndarray  # int64, one more than there are patient codes


_PART_FIELDS: Final = ("patient", "start", "stop", "apc", "category", "cost", "attended")


@dataclass(frozen=True)
class PriorRecords:
    """Priced records as the features read them, patients coded by position in ``ids``.

    ``whole`` holds the records that fall wholly on their activity date; ``spells`` the
    admitted spells with at least one night, whose nights are shared among the windows.
    Records without an activity date are left out (they fall in no window).
    """

    ids: pl.Series
    whole: _Part
    spells: _Part


def _category_codes(lf: pl.LazyFrame) -> pl.Expr:
    """Each record's position in COST_CATEGORIES (checked: an unknown value is an error)."""
    if lf.collect_schema()["cost_category"] == pl.Enum(COST_CATEGORIES):  # as costing.price writes it
        if lf.select(pl.col("cost_category").null_count()).collect().item():
            check_known_categories(lf, "cost_category", COST_CATEGORIES)
        return pl.col("cost_category").to_physical().cast(pl.Int64)
    check_known_categories(lf, "cost_category", COST_CATEGORIES)
    return pl.col("cost_category").cast(pl.String).replace_strict(
        list(COST_CATEGORIES), list(range(_N_CAT)), return_dtype=pl.Int64)


def prior_records(priced: pl.DataFrame | pl.LazyFrame, ids: pl.Series) -> PriorRecords:
    """The records of patients ``ids`` (distinct) as arrays, patient ``ids[i]`` coded ``i``.

    Raises:
        MissingColumnsError: a column the features read is absent.
        InputError: a cost category outside ``COST_CATEGORIES``.
    """
    lf = _priced_lazy(priced, _spec((-1,), 6, "apportion", "category"))
    category = _category_codes(lf)
    ids = ids.cast(pl.String)
    codes = pl.DataFrame({"patient_id": ids, "_code": np.arange(len(ids), dtype=np.int64)})
    days = (
        lf.select(*FEATURE_READS)
        .with_columns(pl.col("patient_id").cast(pl.String))
        .join(codes.lazy(), on="patient_id", how="inner")
        .filter(pl.col("activity_date").is_not_null())
        .select(
            pl.col("_code").alias("patient"),
            pl.col("activity_date").cast(pl.Date).to_physical().cast(pl.Int64).alias("start"),
            pl.col("discharge_date").cast(pl.Date).to_physical().cast(pl.Int64).alias("_stop"),
            (pl.col("setting") == "apc").fill_null(False).alias("_apc"),
            category.alias("category"),
            pl.col("cost").cast(pl.Float64).fill_null(0.0).alias("cost"),
            (pl.col("status").cast(pl.Int64) != _EXCLUDED).fill_null(True).alias("attended"),
        )
        .with_columns(
            (pl.col("_apc") & pl.col("_stop").is_not_null()).alias("apc"),
            pl.col("_stop").fill_null(pl.col("start")).alias("stop"),
        )
        .with_columns((pl.col("apc") & (pl.col("stop") > pl.col("start"))).alias("_split"))
        # one order whatever the input's: each patient's records together, and each sum
        # adding its terms in the same order
        .sort("patient", "start", "stop", "cost", "category", "attended")
        .collect()
    )

    def part(frame: pl.DataFrame) -> _Part:
        arrays = {f: frame[f].to_numpy() for f in _PART_FIELDS}
        offsets = np.searchsorted(arrays["patient"], np.arange(len(ids) + 1), side="left")
        return _Part(**arrays, offsets=offsets)

    split = days["_split"]
    return PriorRecords(ids, part(days.filter(~split)), part(days.filter(split)))


# --------------------------------------------------------------------------------------
# the sums
# --------------------------------------------------------------------------------------

_BLOCK: Final = 1 << 16  # patients summed at a time: bounds the temporaries of a large call


def _bounds(dates: pl.Series, windows: tuple[int, ...], months: int) -> np.ndarray:
    """Per date, the day numbers of each window's start and end: (n, 2W), starts first."""
    frame = pl.DataFrame({"index_date": dates.cast(pl.Date)})
    cols = [window_bound(k, months).alias(f"s{i}") for i, k in enumerate(windows)]
    cols += [window_bound(k + 1, months).alias(f"e{i}") for i, k in enumerate(windows)]
    out = frame.select(c.dt.epoch("d").cast(pl.Int64) for c in cols)
    return out.to_numpy().reshape(len(dates), 2 * len(windows))


def _ranges(offsets: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Positions of the records of patients ``codes`` (records sorted by patient)."""
    lo, n = offsets[codes], offsets[codes + 1] - offsets[codes]
    starts = np.repeat(lo - np.cumsum(n) + n, n)
    return starts + np.arange(int(n.sum()), dtype=np.int64)


@dataclass(frozen=True)
class _Frame:
    """What one call of ``features`` asks: rows (patient codes), their bounds and dates."""

    row_of: np.ndarray  # per patient code, its row (-1: not asked)
    bounds: np.ndarray  # (1 or rows, 2W): window starts then ends, day numbers
    index_day: np.ndarray  # (1 or rows,)
    censor: np.ndarray | None  # per row, the first day not observed (None: no end)
    n_w: int
    index_spell_days: int | None

    @property
    def first(self) -> int:
        """The first day of any window asked for."""
        return int(self.bounds[:, : self.n_w].min())

    @property
    def last(self) -> int:
        """The day after the last day of any window asked for."""
        return int(self.bounds[:, self.n_w :].max())

    def per_record(self, r: np.ndarray, values: np.ndarray) -> np.ndarray:
        return values if len(values) == 1 else values[r]


def _sums(fr: _Frame, rec: PriorRecords, whole: np.ndarray, spells: np.ndarray,
          slot: np.ndarray, n_slots: int) -> np.ndarray:
    """Feature sums (n_slots, n_features) of the records at positions ``whole`` and
    ``spells``; a patient code ``c``'s sums go to slot ``slot[c]``."""
    n_w = fr.n_w
    width = 2 * _N_CAT + 1  # columns per window: count and cost per category, bed days
    n_feat = n_w * width
    keys: list[np.ndarray] = []
    weights: list[np.ndarray] = []

    def mine(part: _Part, at: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The asked-for records among ``at`` (where ``keep``): positions, rows, bounds."""
        r = fr.row_of[part.patient[at]]
        keep &= r >= 0
        if fr.index_spell_days is not None:  # the index spell is left out
            d = fr.per_record(np.maximum(r, 0), fr.index_day)
            keep &= ~(part.apc[at] & (part.start[at] <= d) & (part.stop[at] >= d - fr.index_spell_days))
        at, r = at[keep], r[keep]
        return at, r, fr.per_record(r, fr.bounds)

    def add(key: np.ndarray, weight: np.ndarray) -> None:
        keys.append(key)
        weights.append(weight.astype(np.float64, copy=False))

    # records that fall wholly on their activity date: in the window holding that date
    w = rec.whole
    first, last = fr.first, fr.last
    at, r, b = mine(w, whole, (w.start[whole] >= first) & (w.start[whole] < last))
    start = w.start[at]
    wi = np.full(len(at), -1, dtype=np.int64)
    for i in range(n_w):
        wi[(start >= b[:, i]) & (start < b[:, n_w + i])] = i
    if fr.censor is not None:
        wi[start >= fr.censor[r]] = -1  # after the end of follow-up
    inw = np.flatnonzero(wi >= 0)
    at = at[inw]
    key = slot[w.patient[at]] * n_feat + wi[inw] * width + 2 * w.category[at]
    attended = w.attended[at]
    add(key[attended], np.ones(int(attended.sum())))
    add(key + 1, w.cost[at])

    # spells with nights: each window's nights and that share of the cost; the spell counts
    # once, in the first window holding one of its nights
    sp = rec.spells
    at, r, b = mine(sp, spells, (sp.start[spells] < last) & (sp.stop[spells] > first))
    a, stop, stay = sp.start[at], sp.stop[at], sp.stop[at] - sp.start[at]
    if fr.censor is not None:
        stop = np.minimum(stop, fr.censor[r])
    row = slot[sp.patient[at]] * n_feat
    cat, cost, attended = 2 * sp.category[at], sp.cost[at], sp.attended[at]
    counted = np.zeros(len(at), dtype=bool)
    for i in range(n_w):
        nights = np.maximum(np.minimum(stop, b[:, n_w + i]) - np.maximum(a, b[:, i]), 0)
        has = np.flatnonzero(nights > 0)
        window = row[has] + i * width
        key = window + cat[has]
        first_here = ~counted[has] & attended[has]
        counted[has] = True
        add(key[first_here], np.ones(int(first_here.sum())))
        add(key + 1, cost[has] * nights[has] / stay[has])
        add(window + 2 * _N_CAT, nights[has])

    sums = np.bincount(np.concatenate(keys), weights=np.concatenate(weights),
                       minlength=n_slots * n_feat)
    return sums.reshape(n_slots, n_feat)


def iter_features(
    rec: PriorRecords,
    rows: np.ndarray,
    dates: pl.Series | dt.date,
    windows: tuple[int, ...],
    months: int,
    index_spell_days: int | None = None,
    end_of_follow_up: pl.Series | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``features`` a block of rows at a time: (row positions, their feature rows). A
    caller that reduces each block (to scores, say) never holds the whole matrix."""
    _check_index_spell_days(index_spell_days)
    rows = np.asarray(rows, dtype=np.int64)
    n_rows, n_w, n_ids = len(rows), len(windows), len(rec.ids)
    if n_rows == 0:
        return
    row_of = np.full(n_ids, -1, dtype=np.int64)
    row_of[rows] = np.arange(n_rows, dtype=np.int64)
    date_series = pl.Series([dates], dtype=pl.Date) if isinstance(dates, dt.date) else dates.cast(pl.Date)
    censor = None
    if end_of_follow_up is not None and end_of_follow_up.null_count() < len(end_of_follow_up):
        eofu = end_of_follow_up.cast(pl.Date).to_physical().cast(pl.Int64)
        censor = (eofu + 1).fill_null(_NEVER).to_numpy()  # the first day not observed
    fr = _Frame(row_of, _bounds(date_series, windows, months),
                date_series.to_physical().to_numpy().astype(np.int64), censor, n_w, index_spell_days)
    if n_rows * 8 < n_ids:  # a few patients: their own records, each sum straight to its row
        yield np.arange(n_rows), _sums(fr, rec, _ranges(rec.whole.offsets, rows),
                                       _ranges(rec.spells.offsets, rows), row_of, n_rows)
        return
    # many: block by block of patient codes (each block's records are contiguous)
    slot = np.arange(n_ids, dtype=np.int64)
    for c0 in range(0, n_ids, _BLOCK):
        c1 = min(c0 + _BLOCK, n_ids)
        here = row_of[c0:c1]
        asked = here >= 0
        if not asked.any():
            continue
        whole = np.arange(rec.whole.offsets[c0], rec.whole.offsets[c1], dtype=np.int64)
        spells = np.arange(rec.spells.offsets[c0], rec.spells.offsets[c1], dtype=np.int64)
        yield here[asked], _sums(fr, rec, whole, spells, slot - c0, c1 - c0)[asked]


def features(
    rec: PriorRecords,
    rows: np.ndarray,
    dates: pl.Series | dt.date,
    windows: tuple[int, ...],
    months: int,
    index_spell_days: int | None = None,
    end_of_follow_up: pl.Series | None = None,
) -> np.ndarray:
    """The ``feature_names(windows)`` columns for patients ``rec.ids[rows]`` (distinct), at
    their ``dates`` (one per row, or one date for all): a float matrix, one row per patient.

    ``index_spell_days`` leaves out each patient's index spell (``index_spells``);
    ``end_of_follow_up`` (per row, may be null) leaves out what happens after it.
    """
    out = np.zeros((len(rows), len(windows) * (2 * _N_CAT + 1)))
    for at, values in iter_features(rec, rows, dates, windows, months, index_spell_days,
                                    end_of_follow_up):
        out[at] = values
    return out


def any_record(rec: PriorRecords, rows: np.ndarray, start: dt.date, months: int,
               category: str) -> np.ndarray:
    """Whether each patient ``rec.ids[rows]`` has a record of ``category`` whose activity
    date falls in ``[start, start + months)`` (a record placed by its admission date, as
    ``cost_by_window`` places it by default)."""
    first, last = _bounds(pl.Series([start], dtype=pl.Date), (0,), months)[0]
    row_of = np.full(len(rec.ids), -1, dtype=np.int64)
    row_of[rows] = np.arange(len(rows), dtype=np.int64)
    hit = np.zeros(len(rows), dtype=bool)
    cat = COST_CATEGORIES.index(category)
    for part in (rec.whole, rec.spells):
        at = _ranges(part.offsets, np.asarray(rows, dtype=np.int64))
        at = at[(part.category[at] == cat) & (part.start[at] >= first) & (part.start[at] < last)]
        hit[row_of[part.patient[at]]] = True
    return hit


def as_frame(ids: pl.Series, values: np.ndarray, windows: Sequence[int]) -> pl.DataFrame:
    """``features`` output as ``prior_use`` returns it: patient_id then the features
    (counts and bed days as whole numbers)."""
    columns: dict[str, Any] = {"patient_id": ids}
    for j, name in enumerate(feature_names(windows)):
        col = pl.Series(values[:, j])
        columns[name] = col if name.startswith("cost_") else col.cast(pl.Int32)
    return pl.DataFrame(columns)


def prior_use(
    priced: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = DEFAULT_FEATURE_WINDOWS,
    months: int = 6,
    index_spell_days: int | None = None,
) -> pl.DataFrame:
    """Prior hospital use per cohort patient, strictly before the index date.

    Window ``k`` (negative) is ``[index_date + months*k, index_date + months*(k+1))`` as in
    ``cost_by_window``. Spells are apportioned by night (``assign="apportion"``), so a spell
    running over the index date contributes only its nights (and that share of its cost)
    before it; activity on or after the index date never enters a feature. Per window and
    category: ``n_<category>_<w>`` (attended records, each counted in the first window that
    holds it: a did-not-attend is not use) and ``cost_<category>_<w>`` (priced cost; an
    unpriced record adds nothing), and ``bed_days_<w>`` (nights in hospital in the window).
    ``w`` is ``m4`` for k = -4. Nothing after a patient's ``end_of_follow_up`` counts.

    Args:
        priced: ``costing.price`` output (patient_id, setting, activity_date,
            discharge_date, cost_category, cost, status).
        cohort: one row per patient with patient_id and index_date.
        windows: negative window numbers.
        months: window length in calendar months.
        index_spell_days: leave out each patient's index spell (``index_spells``).

    Returns:
        patient_id then ``feature_names(windows)``, one row per cohort patient in cohort
        order (zero where there was no use).

    Example:
        >>> import datetime as d, polars as pl
        >>> p = pl.DataFrame({"patient_id": ["a", "a"], "setting": ["op", "op"],
        ...     "activity_date": [d.date(2009, 3, 1), d.date(2009, 7, 1)],
        ...     "discharge_date": pl.Series([None, None], dtype=pl.Date),
        ...     "cost_category": ["outpatient", "outpatient"], "cost": [100.0, 120.0], "status": [0, 0]})
        >>> c = pl.DataFrame({"patient_id": ["a"], "index_date": [d.date(2009, 7, 1)]})
        >>> prior_use(p, c, windows=(-1,)).select("n_outpatient_m1", "cost_outpatient_m1").row(0)
        (1, 100.0)
    """
    ws = check_windows(windows, months)
    _check_index_spell_days(index_spell_days)
    coh = validate_cohort(cohort)
    rec = prior_records(priced, coh["patient_id"])
    values = features(rec, np.arange(coh.height), coh["index_date"], ws, months, index_spell_days,
                      coh["end_of_follow_up"])
    return as_frame(coh["patient_id"], values, ws)
