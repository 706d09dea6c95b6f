"""Importer for the MFF payment index sheet of a national tariff workbook.

Each national tariff workbook carries the market forces factor of its own year: ``19 MFF
Payment values`` (2016/17), ``12 MFF values`` (2017/18 and 2018/19) and ``13 MFF values``
(2022/23, with a "2022/23 (Year 4)" and a projected "Year 5 2023/24" column). The sheet is
found by its header row (``Provider Code``, ``Provider name`` and one or more payment index
columns); the column is chosen by the edition:

* the one column whose header names the edition's year ("Payment index value for 2016-17",
  "2022/23 (Year 4)");
* else, when the sheet has exactly one payment index column and its title rows name the
  edition's year, that column. The 2017/19 consultation workbook titles the sheet "MFF
  values 2017/18 and 2018/19" but heads the column "Payment index value for 2016-17": the
  values carried over. The header is recorded in the manifest's notes.

Anything else is an error naming the sheet and the columns found.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers.tariff_workbook import (
    _HEADER_SCAN_ROWS,
    _load,
    _open,
    _to_canonical,
    _Col,
    _where,
    edition_hint,
    normalise_header,
)
from costing.importers.provenance import Provenance
from costing.schema import TABLE_SCHEMAS
from costing.tables import write_edition

__all__ = ["import_edition", "read"]

KIND: Final = "mff"
_CODE = _Col("provider_code", "Provider Code", r"^(provider|organisation|org) code$", "code")
_NAME = _Col("provider_name", "Provider Name", r"^(provider|organisation|org) name$", "text")
# A payment index column: "Payment index value for 2016-17", "2022/23 (Year 4)", "Year 5 2023/24".
_VALUE_RE: Final = r"payment index|\bmff\b|^(year \d+ )?\d{4} ?[/-] ?\d{2}\b"
_PROVIDER_CODE_RE: Final = r"^[A-Z0-9]{3,5}$"


def _year_text(edition: str) -> str:
    """A regex for an edition's year as a header writes it: 2016-17, 2016/17, 16/17."""
    return edition_hint(edition)


def _locate(source: Path, edition: str) -> tuple[str, int, int, int, int, tuple[str, ...],
                                                 tuple[str, ...], str]:
    """(sheet, header row index, code col, name col, value col, letters, headers, note)."""
    reader = _open(source)
    found = []
    named = [n for n in reader.sheet_names if re.search(r"\bmff\b|market forces", n.lower())]
    for sheet in named or reader.sheet_names:  # sheets named for the MFF, if any
        head, letters = _load(reader, sheet, "string", n_rows=_HEADER_SCAN_ROWS)
        for i, row in enumerate(head.rows()):
            norm = [normalise_header(c) for c in row]
            code = [j for j, h in enumerate(norm) if re.search(_CODE.pattern, h)]
            if not code:
                continue
            name = [j for j, h in enumerate(norm) if re.search(_NAME.pattern, h)]
            values = [j for j, h in enumerate(norm) if h and j not in code + name
                      and re.search(_VALUE_RE, h)]
            if values:
                titles = " ".join(str(c) for r in head.rows()[:i] for c in r if c)
                found.append((sheet, i, code[0], name[0] if name else -1, values, letters,
                              tuple("" if c is None else str(c) for c in row), titles))
                break
    if not found:
        raise ImportFormatError(
            f"{source.name}: no MFF sheet found: no sheet has a header row with 'Provider Code' "
            f"and a payment index column among its first {_HEADER_SCAN_ROWS} rows "
            f"(sheets: {list(reader.sheet_names)})"
        )
    if len(found) > 1:
        raise ImportFormatError(
            f"{source.name}: sheets {[f[0] for f in found]} all look like MFF tables; "
            "keep one in the workbook"
        )
    sheet, i, code, name, values, letters, headers, titles = found[0]
    year = _year_text(edition)
    named = [j for j in values if re.search(year, headers[j])]
    listed = [f"{letters[j]} {headers[j]!r}" for j in values]
    if len(named) == 1:
        return sheet, i, code, name, named[0], letters, headers, ""
    if len(values) == 1 and re.search(year, titles):
        note = (f"values from column {letters[values[0]]} headed {headers[values[0]]!r}; the "
                f"sheet's title ({titles.strip()!r}) names {edition}")
        return sheet, i, code, name, values[0], letters, headers, note
    raise ImportFormatError(
        f"{_where(source, sheet, i + 1)}: no payment index column for {edition}: the columns "
        f"are {listed} and {'none' if not named else 'more than one'} names that year. Import "
        "the workbook of that year, or bring the values in as a CSV (provider_code, "
        "provider_name, mff_factor)."
    )


def _read(source: Path, edition: str) -> tuple[pl.DataFrame, str, str]:
    sheet, i, code, name, value, letters, headers, note = _locate(source, edition)
    reader = _open(source)
    text, _ = _load(reader, sheet, "string")
    nums, _ = _load(reader, sheet, "float")
    factor = _Col("mff_factor", headers[value], "", "price")
    spec = (_CODE, *([_NAME] if name >= 0 else []), factor)
    cols = {"provider_code": code, "mff_factor": value} | ({"provider_name": name} if name >= 0 else {})
    body = (
        text.select([pl.col(f"c{j}").alias(f"t_{c}") for c, j in cols.items()])
        .hstack(nums.select([pl.col(f"c{j}").alias(f"n_{c}") for c, j in cols.items()]))
        .with_row_index("excel_row", offset=1)
        .slice(i + 1)
    )
    frame = _to_canonical(
        body, spec, KIND, source, sheet,
        letters={c: letters[j] for c, j in cols.items()},
        headers={c: headers[j] for c, j in cols.items()},
        code_pattern=_PROVIDER_CODE_RE, kind=KIND,
    )
    bad = frame.filter(pl.col("mff_factor").is_null() | (pl.col("mff_factor") <= 0))
    if bad.height:
        raise ImportFormatError(
            f"{_where(source, sheet)}: {bad.height} provider(s) without a positive MFF value, "
            f"e.g. {bad['provider_code'].head(5).to_list()}; fix the sheet and import again"
        )
    return frame, sheet, note


def read(source: Path, *, edition: str) -> dict[str, pl.DataFrame]:
    """Read the MFF sheet of a tariff workbook into ``{"mff": frame}`` for one edition.

    Raises:
        ImportFormatError: no MFF sheet, no column for the edition's year, a code or a
            value that cannot be read (naming sheet, row and column).
    """
    return {KIND: _read(Path(source), edition)[0]}


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str | None = None,
    overwrite: bool = False,
    grouper: str | None = None,
    provenance: Provenance = Provenance(),
    status: str | None = None,
    **opts: Any,
) -> Path:
    """Import a tariff workbook's MFF sheet as ``<into>/mff/<edition>/``.

    Args:
        source: the national tariff workbook.
        edition: the financial year whose payment index values to take.
        into: tables root.
        hrg_version, grouper: accepted for a uniform signature; must be None.
        overwrite: replace an existing edition.
        provenance: where the workbook came from, for the manifest.
        status: e.g. ``"consultation"`` (proposed prices).

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown MFF import option(s) {sorted(opts)}")
    if hrg_version is not None or grouper is not None:
        raise ImportFormatError(f"{source}: MFF values have no HRG version or grouper")
    path = Path(source)
    frame, sheet, note = _read(path, edition)
    canon = TABLE_SCHEMAS[KIND][KIND]
    notes = [f"From sheet {sheet!r} of the national tariff workbook.",
             "Multiply a national price by the provider's factor (pricing: mff on)."]
    if note:
        notes.insert(1, note[0].upper() + note[1:] + ".")
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames={KIND: frame.select([pl.col(c).cast(t) for c, t in canon.items()])},
        sources=[provenance.source(path, title=f"National tariff workbook {edition}")],
        published=provenance.published,
        status=status,
        description=f"Market forces factor (payment index) by provider, {edition}, from {path.name}",
        notes=notes,
        overwrite=overwrite,
    )
