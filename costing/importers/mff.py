"""Importer for Market Forces Factor values (``provider_code, provider_name, mff_factor``).

Reads the NHS Payment Scheme MFF list (as a CSV) into the canonical ``mff`` table. Codes
are text (stripped, upper case); the factor must be a positive number; a provider may
appear once.
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
from costing.schema import TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["import_edition", "read"]

KIND: Final = "mff"
_COLUMNS: Final = {
    "provider_code": ("provider_code", "org_code", "provider code", "organisation code"),
    "provider_name": ("provider_name", "org_name", "provider name", "organisation name"),
    "mff_factor": ("mff_factor", "mff", "payment index", "mff value"),
}


def read(source: Path) -> dict[str, pl.DataFrame]:
    """Read an MFF CSV into ``{"mff": frame}`` (canonical schema).

    Raises:
        ImportFormatError: naming file, line and column of an empty code, a factor that is
            not a positive number, or a duplicate provider.
    """
    path = Path(source)
    raw = read_text_csv(path)
    cols = pick_columns(raw, path, _COLUMNS)
    df = raw.select(
        "line",
        pl.col(cols["provider_code"]).str.to_uppercase().alias("provider_code"),
        pl.col(cols["provider_name"]).alias("provider_name"),
        pl.col(cols["mff_factor"]).alias("mff_text"),
    )
    factor = as_number("mff_text")
    checks = {
        "provider_code": pl.when(is_blank("provider_code")).then(pl.lit("provider code is empty")),
        "mff_text": pl.when(factor.is_null()).then(pl.lit("MFF factor is not a number"))
        .when(factor <= 0).then(pl.lit("MFF factor must be positive")),
    }
    problems = pl.concat([cell_problems(df, checks), duplicate_problems(df, "provider_code")])
    raise_problems(path, problems.with_columns(
        pl.col("column").replace(
            {"provider_code": cols["provider_code"], "mff_text": cols["mff_factor"]})
    ), "MFF values", "Fix the file (one row per provider, factor like 1.0234) and import again.")
    out = df.select("provider_code", "provider_name", factor.alias("mff_factor"))
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
    """Import an MFF CSV as ``<into>/mff/<edition>/`` (MFF values carry no HRG version).

    Args:
        source: the CSV.
        edition: financial year the factors apply to (e.g. ``2026-27``).
        into: tables root.
        hrg_version, grouper: accepted for a uniform signature; must be None.
        overwrite: replace an existing edition.
        provenance: where the file came from, for the manifest.

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown MFF import option(s) {sorted(opts)}")
    if hrg_version is not None or grouper is not None:
        raise ImportFormatError(f"{source}: MFF values have no HRG version or grouper")
    path = Path(source)
    frames = read(path)
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[provenance.source(path, title=f"Market forces factor {edition}")],
        published=provenance.published,
        description=f"Market forces factor by provider, {edition}, from {path.name}",
        notes=["Multiply a national price by the provider's factor (pricing: mff on)."],
        overwrite=overwrite,
    )
