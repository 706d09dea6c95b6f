"""The policy parameter table (``tariffs/parameters/``): the shipped editions, read from the
tariff workbooks where they state the rules, else from the hand-kept table of recalled rules;
and ``import_edition`` for a user's own rows (``costing tables import parameters my.csv``).

=========  ===========================================================================
2022-23    Annex A, sheet "8 SSEM": length of stay, age and admission methods (read)
2016-19    each workbook's glossary (sheet "Contents"): "lengths of stay shorter than two
           days" (read); age and admission methods are in no sheet (recalled)
2011-12    the NES threshold: the reference-cost schedules name the department but state no
           threshold (recalled)
=========  ===========================================================================

Recalled rows come from ``tariffs/recalled-parameters.csv``, which names the guidance
document each recalls (none is in the shared data); they are written ``verified = false``.
The importer reads the workbooks' wording and refuses wording it does not recognise
(ImportFormatError), so a changed rule is never carried over silently.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers._excel import SheetGrid, open_workbook, read_grid
from costing.importers.provenance import Provenance
from costing.importers.shipped_tariffs import SHIPPED_TARIFFS
from costing.importers.small_tables import (
    checked_shared_file,
    pick_columns,
    read_text_csv,
    readme_sha256,
)
from costing.pricing.parameters import PARAMETERS, parse_methods
from costing.schema import TABLE_SCHEMAS
from costing.tables import Source, edition_dates, financial_year_of, shipped_tables_path, write_edition

__all__ = ["SSEM_SHEET", "RECALLED", "read_ssem", "read_glossary", "read_recalled", "build_shipped",
           "import_edition"]

SSEM_SHEET: Final = "8 SSEM"
GLOSSARY_SHEET: Final = "Contents"
RECALLED: Final = "recalled-parameters.csv"
_NUMBERS: Final = {w: i for i, w in enumerate(("zero", "one", "two", "three", "four", "five", "six"))}
_SCHEMA: Final = TABLE_SCHEMAS["parameters"]["parameters"]

# The wording each statement is read from (2022/23 Annex A, sheet "8 SSEM", criteria a-c).
_SSEM_LOS: Final = re.compile(r"adjusted LoS is either (\w+) or (\w+) days?\b", re.I)
_SSEM_AGE: Final = re.compile(r"not a child, defined as aged under (\d+) years", re.I)
_SSEM_METHODS: Final = re.compile(
    r"admission method code is ([0-9A-Z ,\-]+?)(?: \(or (\d\w) if the provider has not implemented "
    r"Commissioning Data Set CDS version 6\.2\))?$", re.I)
# The glossary's definition (2016/17 Annex A, 2017/19 Annex B1, sheet "Contents").
_GLOSSARY: Final = re.compile(
    r"short stay emergency.*lengths of stay (?:shorter than|of less than) (\w+) days", re.I)


def _text(value: object) -> str:
    return re.sub(r"\s+", " ", str(value).replace("\xa0", " ")).strip()


def _number(word: str, where: str) -> int:
    n = _NUMBERS.get(word.lower(), int(word) if word.isdigit() else None)
    if n is None:
        raise ImportFormatError(f"{where}: {word!r} is not a number of days the importer reads")
    return n


def _cells(grid: SheetGrid) -> list[tuple[str, str]]:
    """(cell reference, normalised text) of every non-empty cell of a sheet."""
    return [(grid.cell(i, j), _text(v)) for i, row in enumerate(grid.frame.iter_rows())
            for j, v in enumerate(row) if v is not None and _text(v)]


def _one(cells: list[tuple[str, str]], pattern: re.Pattern[str], where: str,
         what: str) -> tuple[str, str, re.Match[str]]:
    hits = [(ref, text, m) for ref, text in cells if (m := pattern.search(text))]
    if len(hits) != 1:
        raise ImportFormatError(
            f"{where}: {'no' if not hits else len(hits)} cell(s) state {what} in the wording the "
            f"importer reads ({pattern.pattern!r}); the sheet's wording has changed: read the "
            "sheet and update costing/importers/parameters.py")
    return hits[0]


def _methods(listed: str, where: str) -> str:
    """"21-25, 2A, 2B, 2C or 2D" -> "21 22 23 24 25 2A 2B 2C 2D"."""
    codes: list[str] = []
    for token in re.split(r",\s*|\s+or\s+", listed.strip()):
        if m := re.fullmatch(r"(\d\d)-(\d\d)", token):
            codes += [str(c) for c in range(int(m.group(1)), int(m.group(2)) + 1)]
        else:
            codes.append(token.upper())
    try:
        return " ".join(parse_methods(" ".join(codes)))
    except ValueError as exc:
        raise ImportFormatError(f"{where}: admission methods {listed!r}: {exc}") from None


def _frame(rows: list[dict[str, object]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=_SCHEMA)


def _row(parameter: str, edition: str, value: object, source: str, location: str, statement: str,
         verified: bool = True) -> dict[str, object]:
    return {"parameter": parameter, "valid_from": edition_dates(edition)[0], "value": str(value),
            "verified": verified, "source": source, "location": location, "statement": statement}


def read_ssem(path: Path, edition: str, source: str) -> pl.DataFrame:
    """The short-stay emergency criteria of a workbook's "8 SSEM" sheet (length of stay,
    age, admission methods), in force from ``edition``; ``source`` names the workbook.

    Raises:
        ImportFormatError: the sheet is missing, or a criterion is not worded as expected.
    """
    path = Path(path)
    grid = read_grid(open_workbook(path), path, SSEM_SHEET)
    cells, where = _cells(grid), f"{path.name}, sheet {SSEM_SHEET!r}"

    def at(ref: str) -> str:
        return f"sheet {SSEM_SHEET!r}, cell {ref}"

    ref, text, m = _one(cells, _SSEM_LOS, where, "the length of stay (criterion a)")
    if _number(m.group(1), where) != 0:
        raise ImportFormatError(f"{where}, cell {ref}: the stay no longer starts at zero days: {text!r}")
    rows = [_row("sse_max_los", edition, _number(m.group(2), where), source, at(ref), text)]
    ref, text, m = _one(cells, _SSEM_AGE, where, "the age (criterion b)")
    rows.append(_row("sse_min_age", edition, int(m.group(1)), source, at(ref), text))
    ref, text, m = _one(cells, _SSEM_METHODS, where, "the admission methods (criterion c)")
    rows.append(_row("sse_admission_methods", edition, _methods(m.group(1), f"{where}, cell {ref}"),
                     source, at(ref), text))
    return _frame(rows)


def read_glossary(path: Path, edition: str, source: str) -> pl.DataFrame:
    """The short-stay emergency length of stay from a workbook's glossary (sheet
    "Contents": "... lengths of stay shorter than two days ..."), in force from ``edition``.

    Raises:
        ImportFormatError: the sheet is missing or no glossary row is worded as expected.
    """
    path = Path(path)
    grid = read_grid(open_workbook(path), path, GLOSSARY_SHEET)
    where = f"{path.name}, sheet {GLOSSARY_SHEET!r}"
    lines = [(f"row {i + 1}", " | ".join(_text(v) for v in row if v is not None and _text(v)))
             for i, row in enumerate(grid.frame.iter_rows())]
    ref, text, m = _one(lines, _GLOSSARY, where, "the short stay emergency definition")
    below = _number(m.group(1), where)
    return _frame([_row("sse_max_los", edition, below - 1, source, f"sheet {GLOSSARY_SHEET!r}, {ref}", text)])


def read_recalled(path: Path) -> pl.DataFrame:
    """The hand-kept recalled rows (parameter, edition, value, document, statement), as
    parameter rows marked ``verified = false``.

    Raises:
        ImportFormatError: a column is missing or a row is incomplete.
    """
    df = read_text_csv(Path(path))
    wanted = ["parameter", "edition", "value", "document", "statement"]
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ImportFormatError(f"{path}: missing column(s) {missing}")
    empty = df.filter(pl.any_horizontal(pl.col(wanted).is_null() | (pl.col(wanted) == "")))
    if empty.height:
        raise ImportFormatError(f"{path}, line {empty['line'][0]}: every column needs a value")
    return _frame([_row(r["parameter"], r["edition"], r["value"], r["document"],
                        "recalled: not in the shared data", r["statement"], verified=False)
                   for r in df.iter_rows(named=True)])


# The workbook each edition's rows are read from, and how.
_READERS: Final = {"2016-17": read_glossary, "2017-18": read_glossary, "2018-19": read_glossary,
                   "2022-23": read_ssem}


def build_shipped(shared_data: Path, into: Path) -> list[Path]:
    """Write every shipped ``parameters`` edition (overwriting them): the rows read from the
    tariff workbooks and the recalled rows of the same year.

    Raises:
        ImportFormatError: a workbook is missing, differs from the README's sha256, or no
            longer states a rule in the wording the importer reads.
    """
    listed = readme_sha256(Path(shared_data))
    tariffs = {t.edition: t for t in SHIPPED_TARIFFS}
    recalled_file = shipped_tables_path() / RECALLED
    recalled = read_recalled(recalled_file)
    recalled_source = Source.of_file(
        recalled_file, title="Policy parameters recalled from national guidance documents that "
        "are not in the shared data (each row names its document)",
        obtained_from=f"hand-kept in the costing repository: tariffs/{RECALLED}",
        licence="MIT (the costing project)")
    years = sorted({*_READERS, *map(financial_year_of, recalled["valid_from"])})
    written = []
    for edition in years:
        frames, sources = [], []
        if edition in _READERS:
            t = tariffs[edition]
            path = checked_shared_file(Path(shared_data), t.file, listed)
            frames.append(_READERS[edition](path, edition, t.title))
            sources.append(Provenance(publisher=t.publisher, url=t.url, obtained_from=t.obtained_from,
                                      published=t.published).source(path, title=t.title))
        own = recalled.filter(pl.col("valid_from") == edition_dates(edition)[0])
        if own.height:
            frames.append(own)
            sources.append(recalled_source)
        table = pl.concat(frames)
        written.append(write_edition(
            into, kind="parameters", edition=edition, frames={"parameters": table}, sources=sources,
            overwrite=True, published=_published(edition), status=_status(table),
            description="Policy thresholds of the pricing rules in force from this year: "
                        + ", ".join(sorted(table["parameter"])),
            notes=_notes(table)))
    return written


def _published(edition: str) -> dt.date | None:
    return next((t.published for t in SHIPPED_TARIFFS if t.edition == edition), None)


def _status(table: pl.DataFrame) -> str | None:
    """"recalled" or "partly recalled" (shown by ``costing tables list``), None when all read."""
    if table["verified"].all():
        return None
    return "recalled" if not table["verified"].any() else "partly recalled"


def _notes(table: pl.DataFrame) -> list[str]:
    out = []
    if table["verified"].all():
        out.append("Every row read from the workbook named in its source.")
    else:
        recalled = sorted(table.filter(~pl.col("verified"))["parameter"])
        out.append(f"Recalled, not read from a published file (verified false): {', '.join(recalled)}. "
                   "Set them in the configuration to price with other values.")
    return out


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
    """Import your own policy parameter rows (a CSV with ``parameter, value, source,
    statement`` and optionally ``valid_from`` (default: the first day of ``edition``),
    ``location`` and ``verified`` (default false)) as ``<into>/parameters/<edition>/``.

    Raises:
        ImportFormatError: a column is missing, a parameter is unknown or a value does not
            read as that parameter (line named).
    """
    if opts or hrg_version is not None or grouper is not None:
        raise ImportFormatError(f"{source}: policy parameters take no HRG version, grouper or options")
    path = Path(source)
    df = read_text_csv(path)
    cols = pick_columns(df, path, {c: [c] for c in ("parameter", "value", "source", "statement")})
    known = {p.name: p for p in PARAMETERS}
    first = edition_dates(edition)[0]
    rows = []
    for r in df.iter_rows(named=True):
        where = f"{path}, line {r['line']}"
        name, value = r[cols["parameter"]], r[cols["value"]]
        if name not in known:
            raise ImportFormatError(f"{where}: unknown parameter {name!r}; expected one of {', '.join(known)}")
        try:
            known[name].parse(value or "")
            valid_from = dt.date.fromisoformat(r["valid_from"]) if r.get("valid_from") else first
        except ValueError as exc:
            raise ImportFormatError(f"{where}: {name} = {value!r}, valid_from {r.get('valid_from')!r}: {exc}") from None
        rows.append({"parameter": name, "valid_from": valid_from, "value": value,
                     "verified": (r.get("verified") or "false").casefold() == "true",
                     "source": r[cols["source"]], "location": r.get("location") or "supplied by the user",
                     "statement": r[cols["statement"]]})
    return write_edition(
        into, kind="parameters", edition=edition, frames={"parameters": _frame(rows)},
        sources=[provenance.source(path, title=f"Policy parameters {edition}")],
        description=f"Policy thresholds of the pricing rules from {path.name}", overwrite=overwrite)
