"""The study cohort: one row per patient with an index date, validated once.

``validate_cohort`` turns a user's cohort frame into canonical form (``COHORT_SCHEMA``
columns first, in order, with typed nulls for absent optional columns; extra columns kept
after them) and collects every problem before raising a single ``CohortError``.
"""

from __future__ import annotations

import logging

import polars as pl

from costing.errors import CohortError, MissingColumnsError
from costing.schema import COHORT_SCHEMA, HES_DUMMY_DAYS

__all__ = ["COHORT_REQUIRED", "CohortError", "validate_cohort"]

logger = logging.getLogger(__name__)

COHORT_REQUIRED: tuple[str, ...] = ("patient_id", "index_date")
_DATE_COLUMNS: tuple[str, ...] = ("index_date", "end_of_follow_up")
_SHOWN = 20

_FAILURE_SCHEMA: dict[str, pl.DataType] = {
    "row": pl.Int64(),
    "column": pl.String(),
    "value": pl.String(),
    "reason": pl.String(),
}


def _to_date(col: str, dtype: pl.DataType) -> pl.Expr:
    """Cast a column to Date; strings must be ISO YYYY-MM-DD (unparseable -> null)."""
    c = pl.col(col)
    if dtype == pl.Date:
        return c
    if dtype == pl.String:
        return c.str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    if isinstance(dtype, pl.Datetime):
        return c.dt.date()
    return c.cast(pl.Date, strict=False)


def _checks() -> list[tuple[str, pl.Expr, str]]:
    """(column, condition, reason) for every cohort rule; ``_given_<col>`` marks input values."""
    return [
        ("patient_id", pl.col("patient_id").is_null(), "patient_id is missing"),
        (
            "patient_id",
            pl.col("patient_id").is_not_null() & pl.col("patient_id").is_duplicated(),
            "duplicate patient_id: each patient must appear once",
        ),
        (
            "index_date",
            pl.col("index_date").is_null() & ~pl.col("_given_index_date"),
            "index_date is missing",
        ),
        (
            "index_date",
            pl.col("index_date").is_null() & pl.col("_given_index_date"),
            "index_date is not a date (expected YYYY-MM-DD)",
        ),
        (
            "index_date",
            pl.col("index_date").is_in(HES_DUMMY_DAYS),
            "index_date is a HES dummy date meaning null/invalid",
        ),
        (
            "end_of_follow_up",
            pl.col("end_of_follow_up").is_null() & pl.col("_given_end_of_follow_up"),
            "end_of_follow_up is not a date (expected YYYY-MM-DD)",
        ),
        (
            "end_of_follow_up",
            pl.col("end_of_follow_up").is_in(HES_DUMMY_DAYS),
            "end_of_follow_up is a HES dummy date meaning null/invalid",
        ),
        (
            "weight",
            pl.col("weight").is_null() & pl.col("_given_weight"),
            "weight is not a number",
        ),
        ("weight", pl.col("weight") < 0, "weight is negative"),
        ("weight", pl.col("weight").is_nan(), "weight is NaN"),
    ]


def _problems(work: pl.DataFrame, original: pl.DataFrame) -> pl.DataFrame:
    """Every (row, column, value, reason) problem; ``value`` is the user's value as text."""
    work = work.with_row_index("_row")
    parts = []
    for column, cond, reason in _checks():
        hit = work.filter(cond.fill_null(False))
        if not hit.height:
            continue
        value = original[column].cast(pl.String).gather(hit["_row"])
        parts.append(
            pl.DataFrame(
                {
                    "row": (hit["_row"] + 1).cast(pl.Int64),
                    "column": [column] * hit.height,
                    "value": value,
                    "reason": [reason] * hit.height,
                },
                schema=_FAILURE_SCHEMA,
            )
        )
    return pl.concat(parts).sort("row", "column", maintain_order=True)


def validate_cohort(cohort: pl.DataFrame | pl.LazyFrame, source: str = "cohort") -> pl.DataFrame:
    """Check a cohort and return it in canonical form.

    Args:
        cohort: one row per patient with ``patient_id`` and ``index_date`` (Date, or an ISO
            ``YYYY-MM-DD`` string) and optionally ``group``, ``site``, ``matched_set``,
            ``weight`` and ``end_of_follow_up`` (death or censoring date). Extra columns are
            kept, after the canonical ones.
        source: name used in error messages (a file name when read from disk).

    Returns:
        An eager frame with the ``COHORT_SCHEMA`` columns first (absent optional columns
        as typed nulls), then any extra columns, in the input's row order.

    Raises:
        MissingColumnsError: ``patient_id`` or ``index_date`` is absent.
        CohortError: (an InputError) listing every problem at once: missing or duplicate
            patient_id, missing or unparseable index_date, HES dummy dates in index_date or
            end_of_follow_up, unparseable or negative weight. An end of follow-up before
            the first window is allowed (the patient is observed for 0 days).

    Example:
        >>> import datetime as dt, polars as pl
        >>> validate_cohort(pl.DataFrame({"patient_id": ["a"], "index_date": [dt.date(2008, 8, 31)]})).columns[:3]
        ['patient_id', 'index_date', 'group']
    """
    df = cohort.collect() if isinstance(cohort, pl.LazyFrame) else cohort
    missing = [c for c in COHORT_REQUIRED if c not in df.columns]
    if missing:
        raise MissingColumnsError(source, missing)
    schema = df.schema
    exprs: list[pl.Expr] = []
    for col, dtype in COHORT_SCHEMA.items():
        if col not in schema:
            exprs.append(pl.lit(None, dtype).alias(col))
        elif col in _DATE_COLUMNS:
            exprs.append(_to_date(col, schema[col]).alias(col))
        elif dtype == pl.String:
            expr = pl.col(col).cast(pl.String)
            if col == "patient_id":
                expr = pl.when(expr.str.strip_chars() != "").then(expr)
            exprs.append(expr.alias(col))
        else:
            exprs.append(pl.col(col).cast(dtype, strict=False).alias(col))
    extras = [c for c in df.columns if c not in COHORT_SCHEMA]
    given = [
        (pl.col(c).is_not_null() if c in schema else pl.lit(False)).alias(f"_given_{c}")
        for c in ("index_date", "end_of_follow_up", "weight")
    ]
    work = df.select(*exprs, *extras, *given)
    bad = work.select(pl.any_horizontal(c.fill_null(False) for _, c, _ in _checks()).any()).item()
    if bad:
        original = df.select(
            pl.col(c) if c in schema else pl.lit(None, pl.String).alias(c)
            for c in ("patient_id", "index_date", "end_of_follow_up", "weight")
        )
        raise CohortError(source, _problems(work, original))
    out = work.drop(g.meta.output_name() for g in given)
    logger.debug("%s: %d cohort patients validated", source, out.height)
    return out
