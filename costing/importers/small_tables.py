"""The small shipped tables (trim points, MFF, inflation indices): shared CSV helpers and
``build_shipped``, which re-imports them from ../shared/data with their provenance.

Each shipped source is checked against the sha256 listed in the shared data README before
it is imported, so a shipped manifest always names the exact published file it came from.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers.provenance import Provenance
from costing.tables import sha256_file

__all__ = ["SHIPPED", "ShippedSource", "build_shipped", "checked_shared_file", "readme_sha256"]


# --------------------------------------------------------------------------------------
# helpers shared by trimpoints, mff and indices
# --------------------------------------------------------------------------------------


def read_text_csv(path: Path) -> pl.DataFrame:
    """A CSV with every cell as text, header names stripped of a BOM and spaces.

    Adds ``line`` (the 1-based line number of each record, header = line 1) for messages.
    """
    path = Path(path)
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    try:
        df = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise ImportFormatError(f"{path}: cannot read as CSV ({exc})") from None
    df = df.rename({c: c.lstrip("\ufeff").strip() for c in df.columns})
    return df.with_columns(
        pl.int_range(2, pl.len() + 2, dtype=pl.UInt32).alias("line"),
        *[pl.col(c).str.strip_chars() for c in df.columns],
    )


def pick_columns(
    df: pl.DataFrame, path: Path, wanted: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Canonical column -> the file's column, accepting any of the listed header names.

    Header names are compared case-insensitively. Raises ImportFormatError listing every
    missing column with the closest headers present.
    """
    lower = {c.lower(): c for c in df.columns if c != "line"}
    found: dict[str, str] = {}
    missing: list[str] = []
    for canon, names in wanted.items():
        hit = next((lower[n.lower()] for n in names if n.lower() in lower), None)
        if hit is None:
            close = difflib.get_close_matches(names[0].lower(), list(lower), n=2, cutoff=0.5)
            hint = f" (closest: {', '.join(repr(lower[c]) for c in close)})" if close else ""
            missing.append(f"{' or '.join(repr(n) for n in names)}{hint}")
        else:
            found[canon] = hit
    if missing:
        raise ImportFormatError(
            f"{path}: missing column(s) {'; '.join(missing)}. Columns present: "
            f"{[c for c in df.columns if c != 'line']}."
        )
    return found


def raise_problems(path: Path, problems: pl.DataFrame, what: str, fix: str) -> None:
    """Raise ImportFormatError listing (line, column, value, reason) rows, if any."""
    if problems.height == 0:
        return
    shown = 20
    lines = [
        f"  {path.name}, line {r['line']}, column {r['column']!r}: {r['reason']} "
        f"(value {r['value']!r})"
        for r in problems.sort("line", maintain_order=True).head(shown).iter_rows(named=True)
    ]
    more = f"\n  ... and {problems.height - shown} more" if problems.height > shown else ""
    raise ImportFormatError(
        f"{path}: {problems.height} value(s) of the {what} cannot be read:\n"
        + "\n".join(lines) + more + f"\n{fix}"
    )


def cell_problems(df: pl.DataFrame, checks: Mapping[str, pl.Expr]) -> pl.DataFrame:
    """Long frame (line, column, value, reason) of cells whose check expression is non-null.

    ``checks`` maps a column of ``df`` to an expression giving a reason string or null.
    """
    parts = [
        df.select(
            pl.col("line"),
            pl.lit(col).alias("column"),
            pl.col(col).cast(pl.String).alias("value"),
            expr.alias("reason"),
        ).filter(pl.col("reason").is_not_null())
        for col, expr in checks.items()
    ]
    if not parts:
        return pl.DataFrame(schema={"line": pl.UInt32, "column": pl.String,
                                    "value": pl.String, "reason": pl.String})
    return pl.concat(parts)


def duplicate_problems(df: pl.DataFrame, key: str) -> pl.DataFrame:
    """(line, column, value, reason) rows for every repeated value of a key column."""
    return df.filter(pl.col(key).is_duplicated()).select(
        pl.col("line"),
        pl.lit(key).alias("column"),
        pl.col(key).alias("value"),
        pl.lit("duplicate code (it appears more than once)").alias("reason"),
    )


NULL_WORDS: Final = ("", "na", "n/a", "-", "null", "none")


def is_blank(col: str) -> pl.Expr:
    """True where a text cell means "no value"."""
    return pl.col(col).is_null() | pl.col(col).str.to_lowercase().is_in(list(NULL_WORDS))


def as_number(col: str) -> pl.Expr:
    """A text cell as Float64 (``%`` and thousands separators removed); null if not a number."""
    return (
        pl.when(~is_blank(col))
        .then(pl.col(col).str.replace_all(r"[%,\s]", "").cast(pl.Float64, strict=False))
    )


# --------------------------------------------------------------------------------------
# shipped tables
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShippedSource:
    """A shared-data file that is shipped as a canonical edition, with its provenance."""

    module: str  # importer module under costing.importers
    file: str  # path relative to the shared data folder
    edition: str
    provenance: Provenance
    hrg_version: str | None = None
    grouper: str | None = None


# Provenance of the shipped small tables (see docs/tables.md).
SHIPPED: Final[tuple[ShippedSource, ...]] = (
    ShippedSource(
        module="trimpoints",
        file="trimpoints/rc-2017-18-episode-trimpoints.csv",
        edition="2017-18",
        provenance=Provenance(
            title="HRG4+ 2017/18 Reference Costs Grouper: episode trim points",
            publisher="NHS Digital (National Casemix Office)",
            url=("https://digital.nhs.uk/services/national-casemix-office/"
                 "downloads-groupers-and-tools"),
            obtained_from="STAPM/hesr : data/trimpoints.rda (commit 9ceb366), exported to CSV",
        ),
        hrg_version="HRG4",
        grouper="HRG4+ 2017/18 Reference Costs Grouper",
    ),
    ShippedSource(
        module="mff",
        file="mff/mff-2026-27.csv",
        edition="2026-27",
        provenance=Provenance(
            title="NHS Payment Scheme 2026/27: market forces factor values by provider",
            publisher="NHS England",
            url="https://www.england.nhs.uk/pay-syst/nhs-payment-scheme/",
            obtained_from="ncl-icb-analytics/dbt-ncl-analytics : seeds/nhse_provider_mff_2627.csv",
        ),
    ),
    ShippedSource(
        module="indices",
        file="indices/uk-cost-indices.csv",
        edition="2025-26",
        provenance=Provenance(
            title=("GDP deflators at market prices (fiscal years, 2024-25 = 100, OBR forecasts "
                   "from 2025-26), with CPI and CPIH fiscal-year means"),
            publisher=("HM Treasury / Office for National Statistics / "
                       "Office for Budget Responsibility"),
            url=("https://www.gov.uk/government/collections/"
                 "gdp-deflators-at-market-prices-and-money-gdp"),
            obtained_from="ncl-icb-analytics/dbt-ncl-analytics : seeds/uk_cost_indices.csv",
        ),
    ),
    ShippedSource(
        module="indices",
        file="indices/nhs-cost-inflation-index.csv",
        edition="2023-24",
        provenance=Provenance(
            title=("Unit Costs of Health and Social Care: NHS Cost Inflation Index "
                   "(annual % change)"),
            publisher="PSSRU (Personal Social Services Research Unit)",
            url="https://www.pssru.ac.uk/unitcostsreport/",
            obtained_from=("NICE-Data-and-Analytics/COSTmos : Data/PSSRU/NHS_inflation_index.csv "
                           "(commit af13cf3)"),
            licence=("PSSRU Unit Costs of Health and Social Care terms of use (not Crown "
                     "copyright; check the current report before redistributing)"),
        ),
    ),
)

_README_ROW: Final = re.compile(r"^\|\s*([^|]+?)\s*\|.*\|\s*([0-9a-f]{64})\s*\|\s*$")


def readme_sha256(shared_data: Path) -> dict[str, str]:
    """file (relative path) -> sha256, as listed in the shared data README table."""
    readme = Path(shared_data) / "README.md"
    if not readme.is_file():
        raise ImportFormatError(f"{readme}: missing; it lists the sha256 of every shared file")
    rows = (_README_ROW.match(line) for line in readme.read_text(encoding="utf-8").splitlines())
    return {m.group(1): m.group(2) for m in rows if m}


def checked_shared_file(shared_data: Path, file: str, listed: Mapping[str, str]) -> Path:
    """``shared_data / file``, once its sha256 is the one ``listed`` (from the README) gives.

    Raises:
        ImportFormatError: the file is missing or its sha256 differs.
    """
    path = Path(shared_data) / file
    expected = listed.get(file)
    actual = sha256_file(path) if path.is_file() else None
    if actual is None or expected != actual:
        raise ImportFormatError(
            f"{path}: sha256 {actual} differs from the README's {expected}; "
            "the shipped tables must come from the documented file"
        )
    return path


def build_shipped(shared_data: Path, into: Path) -> list[Path]:
    """Import the shipped trim points, MFF and index editions (overwriting them).

    Args:
        shared_data: the shared data folder (holding README.md and the source files).
        into: the tables root, normally the repository's ``tariffs/``.

    Returns:
        The edition folders written.

    Raises:
        ImportFormatError: a source file is missing or its sha256 differs from the README.
    """
    import importlib

    shared_data = Path(shared_data)
    listed = readme_sha256(shared_data)
    written: list[Path] = []
    for s in SHIPPED:
        path = checked_shared_file(shared_data, s.file, listed)
        module = importlib.import_module(f"costing.importers.{s.module}")
        written.append(
            module.import_edition(
                path,
                edition=s.edition,
                into=Path(into),
                hrg_version=s.hrg_version,
                overwrite=True,
                grouper=s.grouper,
                provenance=s.provenance,
            )
        )
    return written
