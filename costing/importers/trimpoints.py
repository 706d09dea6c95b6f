"""Importer for episode trim points (the reference-costs grouper's ``sushrg, Episode.Trimpoint``).

Reads a CSV of HRG codes and episode trim points in days into the canonical
``trimpoints`` table (``hrg_code``, ``trim_days`` Int32). Headers ``sushrg`` /
``Episode.Trimpoint`` (the 2017/18 export) and ``hrg_code`` / ``trim_days`` are accepted.
Trim points written as floats (``46.0``) must be whole numbers; a blank or ``NA`` trim
point is kept as null (the HRG has no trim point). Codes must look like codes of the
edition's HRG version.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers.small_tables import (
    as_number,
    cell_problems,
    duplicate_problems,
    is_blank,
    pick_columns,
    raise_problems,
    read_text_csv,
)
from costing.importers.tariff_workbook import HRG_CODE_PATTERNS
from costing.schema import HRG_VERSIONS, TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["import_edition", "read"]

KIND: Final = "trimpoints"
DEFAULT_HRG_VERSION: Final = "HRG4"
_COLUMNS: Final = {
    "hrg_code": ("sushrg", "hrg_code", "hrg", "HRG code"),
    "trim_days": ("Episode.Trimpoint", "trim_days", "trimpoint", "episode_trimpoint",
                  "Episode trim point", "trim point"),
}


def read(source: Path, *, hrg_version: str = DEFAULT_HRG_VERSION) -> dict[str, pl.DataFrame]:
    """Read a trim-point CSV into ``{"trimpoints": frame}`` (canonical schema).

    Raises:
        ImportFormatError: naming file, line and column of a missing/invalid code, a trim
            point that is not a whole non-negative number, or a duplicate code.
    """
    if hrg_version not in HRG_VERSIONS:
        raise ImportFormatError(
            f"{source}: hrg_version {hrg_version!r} is not one of {', '.join(HRG_VERSIONS)}"
        )
    path = Path(source)
    raw = read_text_csv(path)
    cols = pick_columns(raw, path, _COLUMNS)
    df = raw.select(
        "line",
        pl.col(cols["hrg_code"]).str.to_uppercase().alias("hrg_code"),
        pl.col(cols["trim_days"]).alias("trim_text"),
    )
    days = as_number("trim_text")
    checks = {
        "hrg_code": pl.when(is_blank("hrg_code")).then(pl.lit("HRG code is empty"))
        .when(~pl.col("hrg_code").str.contains(HRG_CODE_PATTERNS[hrg_version]))
        .then(pl.lit(f"not an {hrg_version} HRG code")),
        "trim_text": pl.when(~is_blank("trim_text") & days.is_null())
        .then(pl.lit("trim point is not a number"))
        .when(days < 0).then(pl.lit("negative trim point"))
        .when(days != days.round(0)).then(pl.lit("trim point is not a whole number of days")),
    }
    problems = pl.concat([cell_problems(df, checks), duplicate_problems(df, "hrg_code")])
    raise_problems(path, problems.with_columns(
        pl.col("column").replace({"hrg_code": cols["hrg_code"], "trim_text": cols["trim_days"]})
    ), "trim points", "Fix the file (one row per HRG, whole days) and import again.")
    out = df.select("hrg_code", days.round(0).cast(pl.Int32).alias("trim_days"))
    canon = TABLE_SCHEMAS[KIND][KIND]
    return {KIND: out.select([pl.col(c).cast(t) for c, t in canon.items()])}


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
    """Import a trim-point CSV as ``<into>/trimpoints/<edition>/``.

    Args:
        source: the CSV.
        edition: financial year of the grouper (e.g. ``2017-18``).
        into: tables root.
        hrg_version: HRG version of the codes (default ``HRG4``).
        overwrite: replace an existing edition.
        grouper: e.g. ``"HRG4+ 2017/18 Reference Costs Grouper"``.
        provenance: where the file came from, for the manifest.

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown trim-point import option(s) {sorted(opts)}")
    path = Path(source)
    version = hrg_version or DEFAULT_HRG_VERSION
    frames = read(path, hrg_version=version)
    n_null = frames[KIND]["trim_days"].null_count()
    notes = [
        ("Episode trim points (days) of the reference-costs grouper: reference costs are "
         "per finished consultant episode; days beyond the trim point are excess bed days.")
    ]
    if n_null:
        notes.append(f"{n_null} HRG(s) have no trim point (blank in the source)")
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[provenance.source(path, title=f"Episode trim points {edition}")],
        hrg_version=version,
        grouper=grouper,
        published=provenance.published,
        description=f"Episode trim points {edition} ({version}) from {path.name}",
        notes=notes,
        overwrite=overwrite,
    )
