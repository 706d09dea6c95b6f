"""Importer for a tariff edition held as canonical CSV (any year, HRG v3.5 or HRG4).

For users who hold a tariff in some other form (the 2008/09 HRG v3.5 Payment by Results
tariff, a spreadsheet they retyped): either one CSV with the ``apc`` columns of
costing.schema.TABLE_SCHEMAS["tariff"], or a folder holding any of ``apc.csv``,
``op_attendance.csv`` and ``ae.csv``. A single CSV named ``op_attendance.csv`` or
``ae.csv`` is read as that table. Every cell is read as text, so codes keep their leading
zeros; numbers follow the workbook rules (``-`` or empty is null, ``"1,234.56"`` is
accepted, negative prices are refused). The code column is required; missing price
columns are null. A column whose name is close to a missing canonical name is refused as
a probable typo; other extra columns are ignored (and logged).
"""

from __future__ import annotations

import difflib
import logging
from pathlib import Path
from typing import Any, Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers.tariff_workbook import (
    _SPECS,
    KIND,
    _to_canonical,
    check_hrg_version,
)
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["RESOURCE_FILES", "import_edition", "read"]

log = logging.getLogger(__name__)

RESOURCE_FILES: Final[dict[str, str]] = {res: f"{res}.csv" for res in _SPECS}
_TYPO_CUTOFF: Final = 0.8


def _files(source: Path) -> dict[str, Path]:
    if source.is_dir():
        found = {res: source / name for res, name in RESOURCE_FILES.items()
                 if (source / name).is_file()}
        if not found:
            raise ImportFormatError(
                f"{source}: folder holds none of {', '.join(RESOURCE_FILES.values())}; "
                "put the tariff tables there under those names"
            )
        return found
    if not source.is_file():
        raise ImportFormatError(f"{source}: no such file or folder")
    stem = source.stem.lower()
    return {stem if stem in _SPECS else "apc": source}


def _read_csv(path: Path) -> pl.DataFrame:
    try:
        return pl.read_csv(path, infer_schema=False, encoding="utf8-lossy",
                           truncate_ragged_lines=False)
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, OSError) as exc:
        raise ImportFormatError(f"{path}: cannot read as CSV ({exc})") from None


def _read_one(path: Path, resource: str) -> pl.DataFrame:
    spec = _SPECS[resource]
    raw = _read_csv(path)
    raw = raw.rename({c: c.lstrip("\ufeff").strip() for c in raw.columns})
    canon = [c.name for c in spec]
    present = set(raw.columns)
    missing = [c for c in canon if c not in present]
    extra = [c for c in raw.columns if c not in canon]
    key = spec[0].name
    if key in missing:
        close = difflib.get_close_matches(key, raw.columns, n=3, cutoff=0.5)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ImportFormatError(
            f"{path}: required column {key!r} is missing{hint}. Columns present: "
            f"{raw.columns}. Rename the code column to {key!r}."
        )
    typos = {
        c: difflib.get_close_matches(c, missing, n=1, cutoff=_TYPO_CUTOFF) for c in extra
    }
    typos = {c: m for c, m in typos.items() if m}
    if typos:
        listed = "; ".join(f"{c!r} (did you mean {m[0]!r}?)" for c, m in typos.items())
        raise ImportFormatError(
            f"{path}: column(s) not in the canonical {resource} layout: {listed}. "
            "Rename them, or remove them if they are something else."
        )
    if extra:
        log.warning("%s: ignored column(s) not in the canonical %s layout: %s",
                    path, resource, extra)
    if missing:
        log.info("%s: column(s) %s absent; they are null in the edition", path, missing)
    body = raw.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.UInt32).alias("excel_row"),
        *[
            (pl.col(c) if c in present else pl.lit(None, dtype=pl.String)).alias(f"t_{c}")
            for c in canon
        ],
        *[pl.lit(None, dtype=pl.Float64).alias(f"n_{c}") for c in canon],
    )
    letters = {c: (repr(c) if c in present else f"{c!r} (absent)") for c in canon}
    return _to_canonical(body, spec, resource, path, None, letters=letters,
                         headers={c: c for c in canon})


def read(source: Path) -> dict[str, pl.DataFrame]:
    """Read a canonical tariff CSV (the ``apc`` table) or a folder of them.

    Args:
        source: a CSV file, or a folder with any of apc.csv, op_attendance.csv, ae.csv.

    Returns:
        Canonical frames by resource name.

    Raises:
        ImportFormatError: naming the file, line (``row``) and column of every bad cell, a
            missing code column (with close matches), a probable column typo or a
            duplicate code.
    """
    return {res: _read_one(path, res) for res, path in _files(Path(source)).items()}


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str | None = None,
    overwrite: bool = False,
    grouper: str | None = None,
    illustrative: bool = False,
    provenance: Provenance = Provenance(),
    **opts: Any,
) -> Path:
    """Import canonical tariff CSV(s) as ``<into>/tariff/<edition>/``.

    Args:
        source: a CSV file or a folder of them (see ``read``).
        edition: financial year ``YYYY-YY``.
        into: tables root folder.
        hrg_version: ``v3.5`` or ``HRG4`` (required; every HRG code must look like one).
        overwrite: replace an existing edition folder.
        grouper: grouper phase, e.g. ``"HRG v3.5"``.
        illustrative: mark the edition as not a published tariff.
        provenance: where the file came from, for the manifest.
        **opts: unknown options are refused.

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown tariff import option(s) {sorted(opts)}")
    source = Path(source)
    files = _files(source)
    frames = read(source)
    version = check_hrg_version(frames, hrg_version, str(source))
    sources = [
        provenance.source(path, title=f"Tariff {edition} ({res} table, canonical CSV)")
        for res, path in files.items()
    ]
    missing = [r for r in _SPECS if r not in frames]
    notes = [f"no {', '.join(missing)} table supplied"] if missing else []
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=sources,
        hrg_version=version,
        grouper=grouper,
        published=provenance.published,
        illustrative=illustrative,
        description=f"Tariff {edition} ({version}) imported from canonical CSV {source.name}",
        notes=notes,
        overwrite=overwrite,
    )

