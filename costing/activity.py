"""Canonical activity: typing, validation reasons, spells from episodes.

Point of delivery is a pricing rule (costing/pricing/rules/pod.py); the in-memory spell
steps live with the in-memory engine (costing/pricing/engine/spells.py).

Pricing calls ``prepare``; everything here is lazy polars expressions, no row loops.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import polars as pl

from costing.config import CostingConfig
from costing.errors import InputError
from costing.schema import (
    ACTIVITY_REQUIRED,
    ACTIVITY_SCHEMA,
    ADMISSION_METHODS,
    HES_DUMMY_DAYS,
    PATIENT_CLASSIFICATIONS,
    PRICED_COLUMNS,
    SETTINGS,
)

__all__ = [
    "canonicalise",
    "canonical_frame",
    "string_columns",
    "strings_to_normalise",
    "normalise_codes",
    "row_checks",
    "row_check_column",
    "checks",
    "with_invalid_reason",
    "reason_fields",
    "OPTIONAL_FIELD_RULES",
    "DUPLICATE_REASON",
    "validation_failures",
    "build_spells",
    "with_los",
    "has_episode_dates",
    "apc_los",
    "apc_price_date",
    "days_between",
    "Check",
    "OP_ATTENDED",
    "OP_NOT_ATTENDED",
    "OP_FIRST",
    "OP_FOLLOWUP",
    "AE_TYPES",
    "HRG4_PATTERN",
    "HRG35_PATTERN",
    "TFC_PATTERN",
    "one_of",
]

# Code sets (codes, not numbers-as-prices: they belong with the schema of the input).
OP_ATTENDED = ("5", "6")
OP_NOT_ATTENDED = ("2", "3", "4", "7")  # cancelled by patient, DNA, cancelled by provider, late not seen
OP_FIRST = ("1", "3")
OP_FOLLOWUP = ("2", "4")
AE_TYPES = ("01", "02", "03", "04")
HRG4_PATTERN = r"^[A-Z]{2}[0-9]{2}[A-Z]$"
HRG35_PATTERN = r"^[A-Z][0-9]{2}[A-Z]?$"
TFC_PATTERN = r"^[0-9]{3}$"  # treatment function (TRETSPEF/MAINSPEF): three digits, e.g. 100

#: Optional fields whose unreadable value (read as null, the problem noted in
#: ``invalid_reason``) leaves the record priced, unless the rule named here prices it.
OPTIONAL_FIELD_RULES: dict[str, str] = {
    "age": "short-stay emergency tariff (age limit)",
    "episode_start": "episode length of stay (per-episode pricing)",
    "episode_end": "episode length of stay (per-episode pricing)",
    "episode_order": "order of a spell's episodes (per-spell pricing)",
}

#: The reading problem of a record whose id an earlier record already has (within a file, or
#: across files read together, e.g. a file given twice): it is kept, with the status
#: duplicate_record, and never priced twice.
DUPLICATE_REASON = "record_id: repeats an earlier record's id (a duplicate, not priced)"

ROW = "source_row"
REASON = "invalid_reason"
# Internal row id, unique across every input file (source_row restarts at 1 in each file of
# a multi-file extract, so it must never be used as a key). Dropped from the output.
RID = "_rid"


def one_of(expr: pl.Expr, values: Sequence[object]) -> pl.Expr:
    """``expr`` equals one of a few literal ``values`` (null stays null, like ``is_in``).

    A chain of equality tests: for a handful of codes this is several times faster than
    ``is_in``, which hashes every row.
    """
    if len(values) > 12:
        return expr.is_in(list(values))
    out: pl.Expr | None = None
    for v in values:
        eq = expr == pl.lit(v)
        out = eq if out is None else (out | eq)
    return out if out is not None else pl.lit(False)


# Case rules for codes (applied in the same pass as trimming): HRG and admission-method codes
# upper case, the setting lower case. A&E department type "1" -> "01" is padded after blanks
# became null (padding "" would make "00"); OP codes stay as given.
_CODE_CASE: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "setting": lambda c: c.str.to_lowercase(),
    "hrg_code": lambda c: c.str.to_uppercase(),
    "spell_hrg_code": lambda c: c.str.to_uppercase(),
    "admission_method": lambda c: c.str.to_uppercase(),
}


def _code(col: str) -> pl.Expr:
    """Trimmed code in its canonical case (an empty string stays empty: see _blank_to_null)."""
    c = pl.col(col).cast(pl.String).str.strip_chars()
    case = _CODE_CASE.get(col)
    return case(c) if case is not None else c


def _blank_to_null(col: str) -> pl.Expr:
    """Empty string -> null, by length (no string comparison or copy)."""
    value = pl.col(col).str.zfill(2) if col == "department_type" else pl.col(col)
    return pl.when(pl.col(col).str.len_bytes() > 0).then(value)


def canonicalise(frame: pl.DataFrame | pl.LazyFrame, raw: Collection[str] = ()) -> pl.LazyFrame:
    """Add absent canonical columns as typed nulls, cast present ones, normalise codes.

    Keeps every other column. Adds ``source_row`` (1-based) and ``invalid_reason`` when
    absent. Columns that pricing appends (cost, status, ...) are dropped from the input so
    a priced file can be priced again.

    String columns named in ``raw`` are cast but not normalised here: pricing normalises
    them once per distinct value instead of once per row (see :func:`normalise_codes`).
    """
    lf = frame.lazy()
    names = lf.collect_schema().names()
    if "setting" not in names:
        raise InputError(
            "activity has no 'setting' column; say which setting each record is "
            f"({', '.join(SETTINGS)}), e.g. read it with costing.read_activity(path, setting='apc')"
        )
    lf = lf.drop([c for c in PRICED_COLUMNS if c in names])
    if ROW not in names:
        lf = lf.with_row_index(ROW, offset=1).with_columns(pl.col(ROW).cast(pl.Int64))
    if REASON not in names:
        lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias(REASON))
    present = set(names)
    casts = []
    for col, dtype in ACTIVITY_SCHEMA.items():
        if col not in present:
            casts.append(pl.lit(None, dtype=dtype).alias(col))
        elif dtype == pl.String and col not in raw:
            casts.append(_code(col).alias(col))
        elif dtype == pl.String:
            casts.append(pl.col(col).cast(pl.String).alias(col))
        else:
            casts.append(pl.col(col).cast(dtype, strict=False).alias(col))
    # Two passes: trimming (with case) once per code column, then blanks to null by length.
    # (One when/then around the trimmed value made polars trim twice.)
    strings = [c for c, t in ACTIVITY_SCHEMA.items() if t == pl.String and c in present and c not in raw]
    return lf.with_columns(casts).with_columns([_blank_to_null(c).alias(c) for c in strings])


def normalise_codes(lf: pl.LazyFrame, columns: Collection[str]) -> pl.LazyFrame:
    """The normalisation :func:`canonicalise` skips for its ``raw`` columns (trim, case,
    blank to null, A&E type padding); idempotent on columns already normalised."""
    strings = [c for c in columns if ACTIVITY_SCHEMA.get(c) == pl.String]
    return lf.with_columns([_code(c).alias(c) for c in strings]).with_columns(
        [_blank_to_null(c).alias(c) for c in strings])


# Unicode White_Space: what ``str.strip_chars()`` strips (Rust's char::is_whitespace).
_WHITESPACE = tuple(chr(c) for c in (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                     0x2028, 0x2029, 0x202F, 0x205F, 0x3000))


def _normal_already(col: str) -> pl.Expr:
    """True when normalising String column ``col`` per row would change none of its values:
    no whitespace anywhere (a superset of "at either end") and no empty string; for the
    setting, every value one of the canonical settings. A cheap scan, no string is built.
    Columns with a case rule or padding are always normalised."""
    c = pl.col(col)
    if col == "setting":
        return (one_of(c, SETTINGS) | c.is_null()).all()
    if col in _CODE_CASE or col == "department_type":
        return pl.lit(False)
    return ~(c.str.contains_any(list(_WHITESPACE)) | (c.str.len_bytes() == 0)).any()


def string_columns(frame: pl.DataFrame, raw: Collection[str] = ()) -> list[str]:
    """The canonical String columns of ``frame`` that :func:`canonicalise` normalises per row
    (all but ``raw``)."""
    return [c for c, t in ACTIVITY_SCHEMA.items()
            if t == pl.String and c not in raw and frame.schema.get(c) == pl.String]


def strings_to_normalise(frame: pl.DataFrame, raw: Collection[str] = ()) -> list[str]:
    """Those of :func:`string_columns` in which normalising would change some value (a cheap
    scan per column, no string built): none for a frame from ``read_activity``."""
    strings = string_columns(frame, raw)
    if not strings or not frame.height:
        return []
    normal = frame.select([_normal_already(c).alias(c) for c in strings]).row(0, named=True)
    return [c for c in strings if not normal[c]]


def canonical_frame(frame: pl.DataFrame, raw: Collection[str] = ()) -> pl.DataFrame:
    """:func:`canonicalise` for a frame in memory. A String column none of whose values
    normalisation would change (as from ``read_activity``) is kept as it is, not rewritten:
    the output shares its memory with the input. Columns in ``raw`` are not normalised (nor
    scanned)."""
    rewrite = strings_to_normalise(frame, raw)
    if ROW not in frame.columns:  # built as Int64 directly (a row index cast would hold both)
        frame = pl.DataFrame([pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True).alias(ROW),
                              *frame.get_columns()])
    return canonicalise(frame, raw=[*raw, *(c for c in string_columns(frame, raw) if c not in rewrite)]).collect()


# --------------------------------------------------------------------------------------
# validation: a declared list of checks, each (column, failing condition, reason)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A named validation: rows where ``fails`` is true are invalid for ``reason``.
    ``never_if``: a cheap test of the whole ``column`` (its statistics: null count, least
    value) which, when true, proves the check fails on no row of it."""

    column: str
    fails: pl.Expr
    reason: str
    never_if: Callable[[pl.Series], bool] | None = None


def _has_no_null(column: pl.Series) -> bool:
    """No value of ``column`` is missing (its null count: metadata, no scan)."""
    return not column.has_nulls()


def _after_dummy_dates(column: pl.Series) -> bool:
    """Every date of ``column`` later than every HES dummy date (or none at all)."""
    least = column.min()
    return least is None or (isinstance(least, dt.date) and least > max(HES_DUMMY_DAYS))


def days_between(start: str, end: str) -> pl.Expr:
    """Whole days from ``start`` to ``end`` (Date columns): the difference of their day
    numbers, integer arithmetic (a Duration would be built in milliseconds first)."""
    return pl.col(end).cast(pl.Int32) - pl.col(start).cast(pl.Int32)


def with_los() -> pl.Expr:
    """Length of stay in days: discharge - admission (same day = 0)."""
    return days_between("activity_date", "discharge_date")


def has_episode_dates() -> pl.Expr:
    """The episode's own start and end are known (EPISTART and EPIEND: a finished episode).
    In HES, DISDATE is filled only on the last episode of a spell, so an episode priced on
    its own (episode unit) needs these, not the discharge date."""
    return pl.col("episode_start").is_not_null() & pl.col("episode_end").is_not_null()


def apc_los(config: CostingConfig) -> pl.Expr:
    """The length of stay an admitted record is priced on: per episode (episode unit), the
    episode's own length when its dates are known, else discharge - admission; per spell,
    discharge - admission."""
    if config.resolved_apc_unit() != "episode":
        return with_los()
    episode_los = days_between("episode_start", "episode_end")
    return pl.coalesce(pl.when(episode_los >= 0).then(episode_los), with_los())


def apc_price_date(config: CostingConfig) -> pl.Expr:
    """The date that chooses an admitted record's edition: admission, or discharge (per
    episode, the episode's end when the spell's discharge date is not on it)."""
    if config.apc_date != "discharge":
        return pl.col("activity_date")
    if config.resolved_apc_unit() == "episode":
        return pl.coalesce(pl.col("discharge_date"), pl.col("episode_end"))
    return pl.col("discharge_date")


def checks(config: CostingConfig) -> list[Check]:
    """The validation rules, per setting, for required fields and allowed codes."""
    s = pl.col("setting")
    out: list[Check] = []
    # one check per required column, for every setting that requires it (in the order the
    # settings list them, so a record's reasons read in its setting's order)
    required_by: dict[str, list[str]] = {}
    for setting, required in ACTIVITY_REQUIRED.items():
        for col in required:
            required_by.setdefault(col, []).append(setting)
    for col, settings in required_by.items():
        missing = one_of(s, settings) & pl.col(col).is_null()
        if col == "discharge_date" and config.resolved_apc_unit() == "episode":
            missing = missing & ~has_episode_dates()
        out.append(Check(col, missing, f"missing {col}", never_if=_has_no_null))
    apc = s == "apc"
    los = with_los()
    dummy = list(HES_DUMMY_DAYS)
    if config.resolved_apc_unit() == "episode":  # priced on the episode's own dates
        episode_los = days_between("episode_start", "episode_end")
        out += [
            Check("episode_end", apc & (episode_los < 0), "episode ends before it starts"),
            Check("episode_end", apc & (episode_los > config.max_los_days),
                  f"episode length of stay over {config.max_los_days} days"),
        ]
    out += [
        Check("setting", ~one_of(s, SETTINGS).fill_null(False), "unknown or missing setting"),
        Check("activity_date", one_of(pl.col("activity_date"), dummy), "HES dummy date",
              never_if=_after_dummy_dates),
        Check("discharge_date", apc & one_of(pl.col("discharge_date"), dummy), "HES dummy date",
              never_if=_after_dummy_dates),
        Check("discharge_date", apc & (los < 0), "discharge before admission"),
        Check("discharge_date", apc & (los > config.max_los_days),
              f"length of stay over {config.max_los_days} days"),
        Check("admission_method", apc & pl.col("admission_method").is_not_null()
              & ~one_of(pl.col("admission_method"), ADMISSION_METHODS), "unknown admission method"),
        Check("patient_classification", apc & pl.col("patient_classification").is_not_null()
              & ~one_of(pl.col("patient_classification"), PATIENT_CLASSIFICATIONS),
              "unknown patient classification"),
        Check("attended", (s == "op") & pl.col("attended").is_not_null()
              & ~one_of(pl.col("attended"), OP_ATTENDED + OP_NOT_ATTENDED),
              "unknown attendance status (5/6 attended; 2/3/4/7 not attended)"),
        Check("first_attendance", (s == "op") & one_of(pl.col("attended"), OP_ATTENDED)
              & ~one_of(pl.col("first_attendance"), OP_FIRST + OP_FOLLOWUP).fill_null(False),
              "first/follow-up unknown (FIRSTATT 1/3 first, 2/4 follow-up)"),
        Check("treatment_function_code", (s == "op") & one_of(pl.col("attended"), OP_ATTENDED)
              & pl.col("treatment_function_code").is_null(), "missing treatment_function_code"),
        Check("treatment_function_code", (s == "op") & one_of(pl.col("attended"), OP_ATTENDED)
              & ~pl.col("treatment_function_code").str.contains(TFC_PATTERN).fill_null(True),
              "not a treatment function code (three digits, e.g. 100)"),
        Check("department_type", (s == "ae") & pl.col("department_type").is_not_null()
              & ~one_of(pl.col("department_type"), AE_TYPES), "unknown A&E department type"),
        Check("hrg_version", pl.col("hrg_version").is_not_null()
              & ~one_of(pl.col("hrg_version"), ["v3.5", "HRG4"]), "unknown HRG version"),
        # one regex pass: an HRG4 or v3.5 pattern, or a U-code (ungroupable, its own status)
        Check("hrg_code", pl.col("hrg_code").is_not_null()
              & ~pl.col("hrg_code").str.contains(f"(?:{HRG4_PATTERN})|(?:{HRG35_PATTERN})|^U"),
              "malformed HRG code"),
    ]
    return out


_REASON_CHUNK_BITS = 8  # failed checks are looked up as text 8 bits (256 texts) at a time


def _failed_checks_mask(found: list[Check], fails: Callable[[int, Check], pl.Expr]) -> pl.Expr:
    """One integer per row: bit i set when check i fails, ``fails(i, check)`` saying so
    (cheap boolean arithmetic; bit positions are the checks' positions in ``found``)."""
    bits = [fails(i, c).cast(pl.Int64) * (1 << i) for i, c in enumerate(found)]
    return pl.sum_horizontal(bits) if bits else pl.lit(0, dtype=pl.Int64)


def _mask_text(mask: pl.Expr, found: list[Check]) -> list[pl.Expr]:
    """The "column: reason" texts of a mask's set bits, one expression per chunk of bits.

    Each chunk of ``_REASON_CHUNK_BITS`` checks is a gather from a small precomputed list
    of every combination's "; "-joined text (null for no failure), so no per-check string
    column is ever built.
    """
    labels = [f"{c.column}: {c.reason}" for c in found]
    size = 1 << _REASON_CHUNK_BITS
    out = []
    for start in range(0, len(labels), _REASON_CHUNK_BITS):
        chunk = labels[start:start + _REASON_CHUNK_BITS]
        texts = ["; ".join(t for b, t in enumerate(chunk) if v >> b & 1) or None for v in range(size)]
        index = (mask // (1 << start)) % size
        out.append(pl.lit(pl.Series(texts, dtype=pl.String)).gather(index))
    return out


def _is_row_check(check: Check, key_columns: Collection[str]) -> bool:
    """A check that reads a column outside the pricing key (ids, dates): evaluated per row."""
    return not set(check.fails.meta.root_names()) <= set(key_columns)


def row_check_column(position: int) -> str:
    """The per-row Boolean column of the row check at ``position`` in :func:`checks`."""
    return f"_check_{position}"


def row_checks(config: CostingConfig, key_columns: Collection[str]) -> list[tuple[int, Check]]:
    """The checks that read columns outside ``key_columns`` (ids, dates), with their
    positions in :func:`checks`: evaluated per row, one Boolean each (named by
    :func:`row_check_column`). Such a check may read a key column only if it is normalised
    per row (``setting``)."""
    found = checks(config)
    out = []
    for i, c in enumerate(found):
        raw = (set(c.fails.meta.root_names()) & set(key_columns)) - {"setting"}
        if _is_row_check(c, key_columns) and raw:  # would see un-normalised codes: a bug
            raise AssertionError(f"check {c.reason!r} mixes row columns with key codes {sorted(raw)}")
        if _is_row_check(c, key_columns):
            out.append((i, c))
    return out


def with_invalid_reason(lf: pl.LazyFrame, config: CostingConfig,
                        key_columns: Collection[str]) -> pl.LazyFrame:
    """Append every failing check's "column: reason" to ``invalid_reason`` ("; "-joined),
    on a frame of one row per distinct pricing key.

    The checks reading only ``key_columns`` are evaluated here; the others' results are the
    per-record Booleans the key carries (:func:`row_checks`, :func:`row_check_column`). The
    failed checks are one integer per key; the text is only assembled where a check failed
    or the input already carried a reason.
    """
    found = checks(config)

    def fails(i: int, c: Check) -> pl.Expr:
        return pl.col(row_check_column(i)) if _is_row_check(c, key_columns) else c.fails.fill_null(False)

    mask = _failed_checks_mask(found, fails)
    lf = lf.with_columns(mask.alias("_failed"))
    failed = pl.col("_failed")
    joined = pl.concat_str([pl.col(REASON), *_mask_text(failed, found)], separator="; ",
                           ignore_nulls=True)
    reason = pl.when((failed != 0) | pl.col(REASON).is_not_null()).then(joined)
    return lf.with_columns(pl.when(reason != "").then(reason).alias(REASON)).drop("_failed")


def reason_fields(reason: pl.Expr) -> pl.Expr:
    """The fields a ``"field: problem; field: problem"`` reason names, as a list (null for
    a part not in that form)."""
    return reason.str.split("; ").list.eval(pl.element().str.extract(r"^([a-z_]+): ", 1))


def validation_failures(lf: pl.LazyFrame, config: CostingConfig) -> pl.DataFrame:
    """Every failing (row, column, value, reason), for strict mode's single report."""
    frames = [
        lf.filter(pl.col(REASON).is_not_null()).select(
            pl.col(ROW).alias("row"), pl.lit("(input)").alias("column"),
            pl.lit(None, dtype=pl.String).alias("value"), pl.col(REASON).alias("reason"),
        )
    ]
    for c in checks(config):
        frames.append(
            lf.filter(c.fails.fill_null(False)).select(
                pl.col(ROW).alias("row"), pl.lit(c.column).alias("column"),
                pl.col(c.column).cast(pl.String).alias("value"), pl.lit(c.reason).alias("reason"),
            )
        )
    return pl.concat(pl.collect_all(frames)).sort("row", "column")


# --------------------------------------------------------------------------------------
# spells from episodes
# --------------------------------------------------------------------------------------


def _spell_key() -> pl.Expr:
    """``S|spell_id``, else ``K|provider|patient|admission date``, else ``R|row`` (own spell)."""
    return (
        pl.when(pl.col("spell_id").is_not_null())
        .then(pl.lit("S|") + pl.col("spell_id"))
        .when(pl.all_horizontal(pl.col("provider_code", "patient_id", "activity_date").is_not_null()))
        .then(pl.concat_str([pl.lit("K"), pl.col("provider_code"), pl.col("patient_id"),
                             pl.col("activity_date").cast(pl.String)], separator="|"))
        .otherwise(pl.lit("R|") + pl.col(RID).cast(pl.String))
    )


# The columns a spell is found by and built from.
_EPISODE_COLUMNS = ("spell_id", "provider_code", "patient_id", "activity_date", "episode_order",
                    "discharge_date", "hrg_code", "spell_hrg_code", REASON)


def _spell_key_parts() -> tuple[list[pl.Expr], pl.Expr]:
    """The parts of an episode's spell key (spell id, else provider + patient + admission
    date) and whether it has one (an episode without is its own spell)."""
    sid = pl.col("spell_id")
    parts = [sid, *[pl.when(sid.is_null()).then(pl.col(c)) for c in ("provider_code", "patient_id", "activity_date")]]
    keyed = sid.is_not_null() | pl.all_horizontal(
        pl.col("provider_code", "patient_id", "activity_date").is_not_null())
    # a duplicate record stays apart (its own row, status duplicate_record), never merged
    duplicate = pl.col(REASON).str.contains(DUPLICATE_REASON, literal=True).fill_null(False)
    return parts, keyed & ~duplicate


def _spell_key_hash() -> pl.Expr:
    """A hash of the parts of an episode's spell key; null for an episode that is its own
    spell. Episodes of one spell share it; episodes sharing it are grouped by the key itself."""
    parts, keyed = _spell_key_parts()
    return pl.when(keyed).then(pl.struct(parts).hash())


def _apc_episodes(df: pl.DataFrame) -> pl.LazyFrame:
    """The admitted episodes of a frame in memory that :func:`_spell_roles` needs, with their
    row number (``RID``) and spell key hash (``_key_hash``): those whose hash is shared with
    another episode, and those with a declared spell HRG other than their own HRG. Every other
    episode is its own spell with its own values, so only these few are taken from the frame.

    The key parts of the admitted records are hashed row-wise and shared hashes found by a
    sort: a row index over every record, a struct hash and a group-by each cost several
    times as much, mostly in memory written once."""
    apc = df.get_column("setting") == "apc"
    parts, keyed = _spell_key_parts()
    if df.get_column("spell_id").null_count() == df.height:  # no spell ids: the parts as they are
        parts = [pl.col(c) for c in ("provider_code", "patient_id", "activity_date")]
    key = df.select(*parts, keyed.alias("_keyed")).filter(apc)
    hashed = key.drop("_keyed").hash_rows(0x5BD1E995, 0x1B873593, 0xCC9E2D51, 0xE6546B64)
    hashed = pl.select(pl.when(key.get_column("_keyed")).then(hashed)).to_series()
    ordered = hashed.drop_nulls().sort()
    shared = ordered.filter(ordered == ordered.shift(1)).unique()
    wanted = hashed.is_in(shared.implode())
    spell_hrg = df.get_column("spell_hrg_code")
    if spell_hrg.null_count() < df.height:  # a declared spell HRG other than the episode's own
        declared = df.select(pl.col("spell_hrg_code").is_not_null()
                             & ~pl.col("spell_hrg_code").eq_missing(pl.col("hrg_code"))).to_series()
        wanted = wanted | declared.filter(apc)
    rid = apc.arg_true().filter(wanted)
    return df.select(_EPISODE_COLUMNS)[rid].with_columns(
        rid.alias(RID), hashed.filter(wanted).alias("_key_hash")).lazy()


def _spell_hrg(rule: str) -> pl.Expr:
    """The spell HRG from the aggregated episode HRGs, by the configured rule."""
    if rule == "first_episode":
        return pl.col("_first_hrg")
    if rule == "last_episode":
        return pl.col("_last_hrg")
    # declared spell HRG column; a single-episode spell's own HRG is its spell HRG
    return pl.coalesce(pl.col("_spell_hrg"), pl.when(pl.col("n_episodes") == 1).then(pl.col("_first_hrg")))


def _spell_roles(episodes: pl.LazyFrame, config: CostingConfig) -> pl.LazyFrame:
    """The APC episodes whose spell is not simply the episode itself, from the admitted
    ``episodes`` with their row id ``RID`` and ``_key_hash`` (:func:`_apc_episodes`, or
    lazily as in :func:`build_spells`): spell_key, n_episodes, the spell's discharge date
    and HRG, the episode's own (``_own_discharge``, ``_own_hrg``), and whether it is the
    spell's first episode.

    An episode alone in its spell (most, in spell-level data) is its own head with its own
    values and has no row here, unless a declared spell HRG replaces its HRG. Episodes that
    may share a spell are found by a hash of their key's parts (:func:`_spell_key_hash`);
    only those are grouped, by the key text, so a hash shared by chance merges nothing.
    """
    repeated = (episodes.filter(pl.col("_key_hash").is_not_null()).group_by("_key_hash").len()
                .filter(pl.col("len") > 1).select("_key_hash"))
    # found first, in a pass of their own, and held (a few): the episodes are read twice
    # below, and in one streaming plan with the group-by they were held until it ended
    # (docs/performance.md#streaming-price_lazy)
    repeated = repeated.collect(engine="streaming").lazy()
    own = [pl.col("discharge_date").alias("_own_discharge"), pl.col("hrg_code").alias("_own_hrg")]
    out = [RID, "spell_key", "n_episodes", "_discharge", "_hrg", "_own_discharge", "_own_hrg", "_is_head"]
    shared = episodes.join(repeated, on="_key_hash", how="semi").with_columns(_spell_key().alias("spell_key"))
    # Episodes in spell order (episode_order, then input order) by a numeric sort; a group
    # keeps its rows' order, so first / last below follow it (no sort on the string key).
    spells = (
        shared.sort("episode_order", RID, nulls_last=True)
        .group_by("spell_key")
        .agg(
            pl.col(RID).first().alias("_head"),
            pl.col("discharge_date").last().alias("_discharge"),
            pl.col("hrg_code").first().alias("_first_hrg"),
            pl.col("hrg_code").last().alias("_last_hrg"),
            pl.col("spell_hrg_code").drop_nulls().first().alias("_spell_hrg"),
            pl.len().cast(pl.Int32).alias("n_episodes"),
        )
        .with_columns(_spell_hrg(config.spell_hrg).alias("_hrg"))
    )
    together = shared.select(RID, "spell_key", *own).join(
        spells.select("spell_key", "_head", "n_episodes", "_discharge", "_hrg"), on="spell_key",
        how="inner",
    ).with_columns((pl.col(RID) == pl.col("_head")).alias("_is_head"),
                   # the key names a spell of several episodes only
                   pl.when(pl.col("n_episodes") > 1).then(pl.col("spell_key")).alias("spell_key"))
    parts = [together.select(out)]
    if config.spell_hrg == "column":  # an episode alone in its spell with a declared spell HRG
        spell_hrg = pl.col("spell_hrg_code")
        parts.append(
            episodes.filter(spell_hrg.is_not_null() & ~spell_hrg.eq_missing(pl.col("hrg_code")))
            .join(repeated, on="_key_hash", how="anti")
            .select(RID, pl.lit(None, dtype=pl.String).alias("spell_key"),
                    pl.lit(1, dtype=pl.Int32).alias("n_episodes"), pl.col("discharge_date").alias("_discharge"),
                    spell_hrg.alias("_hrg"), *own, pl.lit(True).alias("_is_head")))
    return pl.concat(parts)


def build_spells(lf: pl.LazyFrame, config: CostingConfig) -> pl.LazyFrame:
    """Collapse APC episodes into provider spells; other settings pass through.

    Spell key: ``spell_id`` when present, else provider + patient + admission date; a
    record missing any of those is its own spell (never merged on nulls). Columns come
    from the first episode (by ``episode_order``, then input order), the discharge date
    from the last. Spell HRG by ``config.spell_hrg``. Adds ``n_episodes`` and ``spell_key``
    (the key the episodes of a spell of several share; null for a record that is its own
    spell, and outside admitted care).

    Each record learns its role (:func:`_spell_roles`) by one join on its row number, and
    every episode but the first of its spell is dropped, so the wide frame is never sorted
    or regrouped. The roles are collected when this is called (one streaming pass over the
    admitted records); the records are read when the result is. :func:`spells_appended` is
    the same for a frame in memory.
    """
    names = lf.collect_schema().names()
    lf = lf.with_row_index(RID)  # unique across files, unlike source_row
    episodes = (lf.filter(pl.col("setting") == "apc").select(RID, *_EPISODE_COLUMNS)
                .with_columns(_spell_key_hash().alias("_key_hash")))  # hashed after the filter
    # The roles are found now, in one streaming pass over the admitted records, and held:
    # they are few (only episodes whose spell is not themselves). Left in the plan, they were
    # found again each time it ran (pricing runs it twice) and their pass sat beside the
    # records' in one plan, so memory grew with the input
    # (docs/performance.md#streaming-price_lazy).
    roles = _spell_roles(episodes, config).collect(engine="streaming")
    head = pl.col("_is_head")
    # joined to the records, streamed past them (a frame set beside the records is not
    # streamed: the streaming engine holds the whole input)
    return (
        lf.join(roles.lazy(), on=RID, how="left", maintain_order="left")
        .filter(head.is_null() | head)
        .with_columns(
            pl.when(head).then(pl.col("_discharge")).otherwise(pl.col("discharge_date")).alias("discharge_date"),
            pl.when(head).then(pl.col("_hrg")).otherwise(pl.col("hrg_code")).alias("hrg_code"),
            pl.col("n_episodes").fill_null(1),
        )
        .select(names + ["n_episodes", "spell_key"])
    )
