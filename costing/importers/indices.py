"""Importer for inflation indices: the fiscal-year GDP deflator / CPI / CPIH file and the
PSSRU NHS Cost Inflation Index (NHSCII), into the canonical ``index`` table.

Three source forms are recognised by their header:

* **Deflator file** (``fiscal_year_start, fiscal_year, gdp_deflator, cpi_index,
  cpih_index, is_forecast``): index levels by financial year -> index names
  ``gdp_deflator``, ``cpi``, ``cpih``, with the file's ``is_forecast`` flag. Blank cells
  (CPI/CPIH have no forecasts) are not index values and give no row.
* **NHSCII** (first header cell empty, then ``prices, pay, pay&prices``; rows are year
  labels with yearly % changes like ``0.56%``): chained into index levels
  ``nhscii_prices``, ``nhscii_pay``, ``nhscii_pay_prices``. A label ``Y`` is the financial
  year ``Y``-``Y+1`` (2015 -> 2015-16, the change from 2014-15 to 2015-16), and the base
  is the year before the first change, set to 100 (2014-15 = 100):
  ``level(y) = 100 * prod_{k <= y} (1 + change_k / 100)``. Years must be consecutive.
* **Canonical** (``index_name, financial_year, value, is_forecast``), for users' own series.

Levels are positive; financial years are ``YYYY-YY``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers.small_tables import (
    as_number,
    cell_problems,
    is_blank,
    raise_problems,
    read_text_csv,
)
from costing.schema import TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = [
    "DEFLATOR_NAMES",
    "NHSCII_BASE_LEVEL",
    "NHSCII_NAMES",
    "detect_form",
    "import_edition",
    "read",
]

KIND: Final = "index"
# Source column -> canonical index name.
DEFLATOR_NAMES: Final = {"gdp_deflator": "gdp_deflator", "cpi_index": "cpi", "cpih_index": "cpih"}
NHSCII_NAMES: Final = {"prices": "nhscii_prices", "pay": "nhscii_pay",
                       "pay&prices": "nhscii_pay_prices"}
# Level given to the year before the first NHSCII change (the chain's base).
NHSCII_BASE_LEVEL: Final = 100.0
_FY_RE: Final = r"^\d{4}-\d{2}$"
_TRUE: Final = ("true", "t", "yes", "y", "1")
_FALSE: Final = ("false", "f", "no", "n", "0")
_CANONICAL: Final = ("index_name", "financial_year", "value", "is_forecast")


def detect_form(columns: list[str]) -> str:
    """``deflator``, ``nhscii`` or ``canonical`` from a file's header (else ImportFormatError)."""
    cols = [c.lower() for c in columns if c != "line"]
    if {"fiscal_year", *DEFLATOR_NAMES} <= set(cols):
        return "deflator"
    if set(NHSCII_NAMES) <= set(cols) and len(cols) == len(NHSCII_NAMES) + 1:
        return "nhscii"
    if set(_CANONICAL[:3]) <= set(cols):
        return "canonical"
    raise ImportFormatError(
        f"header {cols} is not a known index layout: expected the deflator file "
        "(fiscal_year, gdp_deflator, cpi_index, cpih_index, is_forecast), the NHS cost "
        "inflation index (year, prices, pay, pay&prices as % changes) or the canonical "
        "columns index_name, financial_year, value[, is_forecast]"
    )


def _fy_from_start(year: pl.Expr) -> pl.Expr:
    """Financial year ``YYYY-YY`` starting in April of ``year`` (Int)."""
    return pl.format("{}-{}", year, ((year + 1) % 100).cast(pl.String).str.zfill(2))


def _flag(col: str) -> pl.Expr:
    low = pl.col(col).str.to_lowercase()
    return (
        pl.when(low.is_in(list(_TRUE))).then(pl.lit(True))
        .when(low.is_in(list(_FALSE))).then(pl.lit(False))
    )


def _level_problem(col: str) -> pl.Expr:
    v = as_number(col)
    return (
        pl.when(~is_blank(col) & v.is_null()).then(pl.lit("not a number"))
        .when(v <= 0).then(pl.lit("index level must be positive"))
    )


def _fy_problem(col: str) -> pl.Expr:
    fy = pl.col(col)
    start = fy.str.slice(0, 4).cast(pl.Int32, strict=False)
    ok = fy.str.contains(_FY_RE) & (_fy_from_start(start) == fy)
    return pl.when(~ok.fill_null(False)).then(pl.lit("not a financial year written YYYY-YY"))


def _read_deflator(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    lower = {c.lower(): c for c in raw.columns}
    df = raw.rename({v: k for k, v in lower.items()})
    has_flag = "is_forecast" in df.columns
    if not has_flag:
        df = df.with_columns(pl.lit("false").alias("is_forecast"))
    checks: dict[str, pl.Expr] = {
        "fiscal_year": _fy_problem("fiscal_year"),
        "is_forecast": pl.when(_flag("is_forecast").is_null())
        .then(pl.lit("is_forecast is not true/false")),
        **{c: _level_problem(c) for c in DEFLATOR_NAMES},
    }
    if "fiscal_year_start" in df.columns:
        checks["fiscal_year_start"] = pl.when(
            pl.col("fiscal_year").str.slice(0, 4) != pl.col("fiscal_year_start")
        ).then(pl.lit("does not match fiscal_year"))
    problems = pl.concat([
        cell_problems(df, checks),
        df.filter(pl.col("fiscal_year").is_duplicated()).select(
            "line", pl.lit("fiscal_year").alias("column"), pl.col("fiscal_year").alias("value"),
            pl.lit("year appears more than once").alias("reason")),
    ])
    raise_problems(path, problems, "index file", "Fix the file and import again.")
    long = df.unpivot(
        index=["fiscal_year", "is_forecast"], on=list(DEFLATOR_NAMES),
        variable_name="source_column", value_name="text",
    )
    return long.filter(~is_blank("text")).select(
        pl.col("source_column").replace_strict(DEFLATOR_NAMES).alias("index_name"),
        pl.col("fiscal_year").alias("financial_year"),
        as_number("text").alias("value"),
        _flag("is_forecast").alias("is_forecast"),
    )


def _read_nhscii(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    year_col = next(c for c in raw.columns if c.lower() not in NHSCII_NAMES and c != "line")
    lower = {c.lower(): c for c in raw.columns if c != year_col}
    df = raw.rename({v: k for k, v in lower.items()} | {year_col: "year"})
    year = pl.col("year").cast(pl.Int32, strict=False)
    checks: dict[str, pl.Expr] = {
        "year": pl.when(year.is_null() | ~pl.col("year").str.contains(r"^\d{4}$"))
        .then(pl.lit("year label is not a year like 2015"))
        .when(year.diff().fill_null(1) != 1)
        .then(pl.lit("years must be consecutive and ascending (the chain needs every year)")),
        **{
            c: pl.when(as_number(c).is_null()).then(pl.lit("not a percentage like 0.56%"))
            .when(as_number(c) <= -100).then(pl.lit("a change of -100% or less"))
            for c in NHSCII_NAMES
        },
    }
    raise_problems(path, cell_problems(df, checks), "NHS cost inflation index",
                   "Each row must be a year and its % changes; fix the file and import again.")
    changes = df.select(year.alias("year"), *[as_number(c).alias(c) for c in NHSCII_NAMES])
    first = changes["year"].min()
    if not isinstance(first, int):
        raise ImportFormatError(f"{path}: no years in the NHS cost inflation index file; "
                                "each row must be a year and its % changes")
    base = pl.DataFrame({"year": [first - 1], **{c: [None] for c in NHSCII_NAMES}},
                        schema=changes.schema)
    levels = pl.concat([base, changes]).select(
        "year",
        *[
            (pl.lit(NHSCII_BASE_LEVEL) * (1.0 + pl.col(c).fill_null(0.0) / 100.0).cum_prod())
            .alias(c)
            for c in NHSCII_NAMES
        ],
    )
    return levels.unpivot(index="year", on=list(NHSCII_NAMES),
                          variable_name="source_column", value_name="value").select(
        pl.col("source_column").replace_strict(NHSCII_NAMES).alias("index_name"),
        _fy_from_start(pl.col("year")).alias("financial_year"),
        pl.col("value"),
        pl.lit(False).alias("is_forecast"),
    )


def _read_canonical(raw: pl.DataFrame, path: Path) -> pl.DataFrame:
    lower = {c.lower(): c for c in raw.columns}
    df = raw.rename({v: k for k, v in lower.items()})
    if "is_forecast" not in df.columns:
        df = df.with_columns(pl.lit("false").alias("is_forecast"))
    checks = {
        "index_name": pl.when(is_blank("index_name")).then(pl.lit("index name is empty")),
        "financial_year": _fy_problem("financial_year"),
        "value": pl.when(is_blank("value")).then(pl.lit("value is empty"))
        .otherwise(_level_problem("value")),
        "is_forecast": pl.when(_flag("is_forecast").is_null())
        .then(pl.lit("is_forecast is not true/false")),
    }
    raise_problems(path, cell_problems(df, checks), "index file", "Fix the file and import again.")
    return df.select(
        "index_name", "financial_year", as_number("value").alias("value"),
        _flag("is_forecast").alias("is_forecast"),
    )


_READERS: Final = {"deflator": _read_deflator, "nhscii": _read_nhscii, "canonical": _read_canonical}


def read(source: Path) -> dict[str, pl.DataFrame]:
    """Read an index CSV (deflator file, NHSCII or canonical) into ``{"index": frame}``.

    Raises:
        ImportFormatError: unknown layout, or (file, line, column) of bad years, levels,
            percentages or flags.
    """
    path = Path(source)
    raw = read_text_csv(path)
    try:
        form = detect_form(raw.columns)
    except ImportFormatError as exc:
        raise ImportFormatError(f"{path}: {exc}") from None
    out = _READERS[form](raw, path)
    canon = TABLE_SCHEMAS[KIND][KIND]
    return {KIND: out.select([pl.col(c).cast(t) for c, t in canon.items()])}


def _notes(form: str, frame: pl.DataFrame) -> list[str]:
    names = ", ".join(sorted(frame["index_name"].unique().to_list()))
    if form == "nhscii":
        first = str(frame["financial_year"].min())
        return [
            f"indices: {names}",
            ("Chained from PSSRU yearly % changes: the source label Y is financial year "
             "Y-(Y+1) and its change is from the previous financial year."),
            (f"Base: {first} = {NHSCII_BASE_LEVEL:g} (the year before the first change); "
             "level(y) = level(y-1) * (1 + change(y)/100)."),
        ]
    if form == "deflator":
        return [
            f"indices: {names}",
            ("GDP deflator at market prices, 2024-25 = 100 as published; CPI and CPIH are "
             "fiscal-year means of the ONS monthly indices (2015 = 100); rows with "
             "is_forecast true are OBR forecasts. Years with no published value have no row."),
        ]
    return [f"indices: {names}"]


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str | None = None,
    overwrite: bool = False,
    grouper: str | None = None,
    provenance: Provenance = Provenance(),
    **opts: Any,
) -> Path:
    """Import an index CSV as ``<into>/index/<edition>/``.

    The edition names the vintage of the series (see the docs): the shipped deflator file
    is ``2025-26`` (its first forecast year, the year it was released in) and the NHSCII
    is ``2023-24`` (its latest year of change). Pricing reads an index by name from the
    newest edition holding it, so editions with different index names do not clash.

    Args:
        source: the CSV.
        edition: the vintage as a financial year ``YYYY-YY``.
        into: tables root.
        hrg_version, grouper: accepted for a uniform signature; must be None.
        overwrite: replace an existing edition.
        provenance: where the file came from, for the manifest.

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown index import option(s) {sorted(opts)}")
    if hrg_version is not None or grouper is not None:
        raise ImportFormatError(f"{source}: an index has no HRG version or grouper")
    path = Path(source)
    frames = read(path)
    form = detect_form(read_text_csv(path).columns)
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[provenance.source(path, title=f"Inflation index {edition}")],
        published=provenance.published,
        description=f"Inflation index levels by financial year ({form} file {path.name})",
        notes=_notes(form, frames[KIND]),
        overwrite=overwrite,
    )
