"""Importer for the National Schedule of Reference Costs workbooks (2014/15 to 2018/19).

Reads the department sheets (EL, EL_XS, NEL, NEL_XS, NES, DC, RP, CL, NCL, OPROC, AE/EM)
and the "Total HRG's" sheet of a published schedule into the canonical long table
``reference_costs``: one row per department x service code x currency code. The National
Schedule of NHS Costs 2018/19 (the first National Cost Collection) has the same layout
without the EL_XS / NEL_XS sheets: from 2018/19 excess bed days are folded into the unit
costs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import fastexcel
import polars as pl

from costing.errors import ImportFormatError
from costing.importers._excel import (
    SheetGrid,
    check_numbers,
    code_text,
    column_index,
    column_letter,
    find_header_row,
    money,
    normalise_sheet_name,
    open_workbook,
    read_grid,
    read_numbers,
)
from costing.importers.provenance import Provenance
from costing.schema import DEPARTMENTS, TABLE_SCHEMAS
from costing.tables import write_edition

__all__ = ["RESOURCE", "DEPARTMENT_SHEETS", "read", "import_edition", "build_shipped",
           "absent_departments", "negative_costs_as_null"]

logger = logging.getLogger(__name__)

RESOURCE: Final = "reference_costs"
KIND: Final = "reference_cost"
_CANONICAL: Final = TABLE_SCHEMAS[KIND][RESOURCE]


@dataclass(frozen=True)
class _Sheet:
    """How to find one department's sheet: its names over the years and its title."""

    names: tuple[str, ...]  # sheet names, compared after normalise_sheet_name
    titles: tuple[str, ...]  # title phrases, compared after _title_key
    service: bool  # the sheet has a Service Code column (part of the key)


# Department code -> sheet. Labels only; 2014/15-2016/17 name the A&E sheet "EM".
DEPARTMENT_SHEETS: Final[dict[str, _Sheet]] = {
    "EL": _Sheet(("EL",), ("elective inpatient", "elective inpatients"), False),
    "EL_XS": _Sheet(("EL_XS",), ("elective inpatient excess bed days",), False),
    "NEL": _Sheet(("NEL",), ("non elective long stay",), False),
    "NEL_XS": _Sheet(("NEL_XS",), ("non elective excess bed days",), False),
    "NES": _Sheet(("NES",), ("non elective short stay",), False),
    "DC": _Sheet(("DC",), ("day case",), False),
    "RP": _Sheet(("RP",), ("regular day night admissions", "regular day or night admissions"),
                 False),
    "CL": _Sheet(("CL",), ("consultant led",), True),
    "NCL": _Sheet(("NCL",), ("non consultant led",), True),
    "OPROC": _Sheet(("OPROC",), ("outpatient procedures",), True),
    "AE": _Sheet(("AE", "EM", "A&E"), ("emergency medicine", "accident emergency"), True),
}
_TOTAL_SHEET: Final = _Sheet(("Total HRG's", "Total HRGs"), ("hrg data",), False)

# Excess-bed-day departments, absent from the National Schedule of NHS Costs (2018/19 on),
# whose title names it (normalised by _title_key's rules): bed days are in the unit costs.
EXCESS_BED_DAY_DEPARTMENTS: Final = ("EL_XS", "NEL_XS")
_NHS_COSTS_TITLE: Final = "national schedule of nhs costs"
_FOLDED_NOTE: Final = (
    "No EL_XS / NEL_XS sheets: this National Schedule of NHS Costs folds excess bed days "
    "into the unit costs, so no excess-bed-day cost is ever added to its prices."
)

# Header labels (normalised by normalise_label) of the columns we read.
_CURRENCY_CODE: Final = ("currency code",)
_CURRENCY_DESC: Final = ("currency description",)
_SERVICE_CODE: Final = ("service code",)
_UNIT_COST: Final = ("national average unit cost",)
_ACTIVITY: Final = (
    "number of fces", "number of fce's", "excess bed days", "no. of attendances",
    "number of attendances", "attendances", "procedures", "activity",
)
# "Total HRG's": a row of block names above a header row of Activity | Unit Cost | Total Cost.
_TOTAL_CURRENCY: Final = ("currency", "currency code")
_TOTAL_BLOCK: Final = "total"

# A currency code is one token of letters and digits with at least one digit (HRG codes,
# WF01A, VB01Z); anything else in that column (a footnote, a "Total" line) is not a data row,
# and is refused if it carries figures.
_CODE_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,11}$"

# Publication pages (labels, not numbers) for the editions we know.
_PUBLICATIONS: Final[dict[str, tuple[str, str, str]]] = {
    "2014-15": ("Reference costs 2014 to 2015: National Schedule of Reference Costs",
                "Department of Health",
                "https://www.gov.uk/government/publications/nhs-reference-costs-2014-to-2015"),
    "2015-16": ("Reference costs 2015 to 2016: National Schedule of Reference Costs",
                "Department of Health",
                "https://www.gov.uk/government/publications/nhs-reference-costs-2015-to-2016"),
    "2016-17": ("Reference costs 2016/17: National Schedule of Reference Costs",
                "NHS Improvement", "https://improvement.nhs.uk/resources/reference-costs/"),
    "2017-18": ("Reference costs 2017/18: National Schedule of Reference Costs",
                "NHS Improvement", "https://improvement.nhs.uk/resources/reference-costs/"),
    "2018-19": ("National Cost Collection 2018/19: National Schedule of NHS Costs",
                "NHS Improvement",
                "https://www.england.nhs.uk/national-cost-collection/#ncc1819"),
}
_GENERIC_PUBLICATION: Final = (
    "National Schedule of Reference Costs", "NHS Improvement / Department of Health",
    "https://www.gov.uk/government/collections/nhs-reference-costs",
)

# The shared copies the shipped editions were imported from: (file, edition, obtained from).
_ICCONIC: Final = "HFAnalyticsLab/ICCONIC-English-results:Reference_data/HRG_reference_costs"
SHIPPED_SOURCES: Final = (
    ("reference-costs/national-schedule-2014-15.xlsx", "2014-15",
     f"{_ICCONIC}/HRG_ref_costs_2014.xlsx"),
    ("reference-costs/national-schedule-2015-16.xlsx", "2015-16",
     f"{_ICCONIC}/HRG_ref_costs_2015.xlsx"),
    ("reference-costs/national-schedule-2016-17.xlsx", "2016-17",
     f"{_ICCONIC}/HRG_ref_costs_2016.xlsx"),
    ("reference-costs/national-schedule-2017-18.xlsx", "2017-18",
     f"{_ICCONIC}/HRG_ref_costs_2017.xlsx"),
    ("reference-costs/national-schedule-2018-19.xlsx", "2018-19",
     "ehr-lshtm/acute_kidney_injury_norovirus_transmission_model:docs/HRGs/"
     "2018-19_national_schedule_of_reference_costs.xlsx (commit 7fda8b9b2500)"),
)

NOTES: Final = (
    "unit_cost is the national average cost in GBP of the year: per finished consultant "
    "episode (EL, NEL, NES, DC, RP), per excess bed day beyond the episode trim point "
    "(EL_XS, NEL_XS), per attendance (CL, NCL, AE) or per procedure (OPROC).",
    "activity is as published: FCEs, excess bed days, attendances or procedures.",
    "TOTAL is the 'Total HRG's' all-department average per HRG: its cost includes excess "
    "bed days and its activity excludes them. Never add bed days to it.",
    "service_code is null for admitted departments and TOTAL; the treatment function code "
    "for CL, NCL and OPROC; the A&E department type and admitted flag (T01A, T01NA, ...) for AE.",
    "A row with zero activity and a zero unit cost has unit_cost null: no average exists.",
    "Suppressed or '-' cells are null. Only the departments listed here are imported; "
    "other sheets (CC, CHEM, RAD, ...) are not.",
)


# --------------------------------------------------------------------------------------
# rules as expressions
# --------------------------------------------------------------------------------------


def _is_code(col: str) -> pl.Expr:
    """A cell that looks like a code (one token), not a note."""
    return (pl.col(col).str.contains(_CODE_PATTERN) & pl.col(col).str.contains(r"\d")).fill_null(
        False
    )


def absent_departments(frame: pl.DataFrame) -> list[str]:
    """The canonical departments (schema.DEPARTMENTS) with no row in ``frame``."""
    held = set(frame["department_code"].unique().to_list())
    return [d for d in DEPARTMENTS if d not in held]


def undefined_average() -> pl.Expr:
    """Unit cost with 0/0 averages (no activity, published as 0) made null."""
    return (
        pl.when((pl.col("activity") == 0) & (pl.col("unit_cost") == 0))
        .then(None)
        .otherwise(pl.col("unit_cost"))
        .alias("unit_cost")
    )


# --------------------------------------------------------------------------------------
# finding sheets
# --------------------------------------------------------------------------------------


def _title_key(text: str) -> str:
    """A title cell's last ``" - "`` part as lower-case words ("Non-Elective" -> "non elective")."""
    tail = text.rsplit(" - ", 1)[-1]
    return " ".join(re.sub(r"[^0-9a-z]+", " ", tail.casefold()).split())


def _sheet_titles(reader: fastexcel.ExcelReader, sheet: str) -> set[str]:
    try:
        top = reader.load_sheet(sheet, header_row=None, skip_rows=0, n_rows=8, dtypes="string")
        frame = top.to_polars()
    except Exception:  # an unreadable extra sheet is not ours to judge
        return set()
    return {_title_key(v) for row in frame.iter_rows() for v in row if isinstance(v, str)}


def _is_nhs_costs(reader: fastexcel.ExcelReader, sheet: str) -> bool:
    """Whether a department sheet's title names the National Schedule of NHS Costs."""
    top = reader.load_sheet(sheet, header_row=None, skip_rows=0, n_rows=3, dtypes="string")
    texts = [v for row in top.to_polars().iter_rows() for v in row if isinstance(v, str)]
    return any(_NHS_COSTS_TITLE in " ".join(re.sub(r"[^0-9a-z]+", " ", t.casefold()).split())
               for t in texts)


def _resolve_sheets(reader: fastexcel.ExcelReader, path: Path) -> dict[str, str]:
    """Department code (and TOTAL) -> sheet name, by name first, then by title."""
    wanted = {**DEPARTMENT_SHEETS, "TOTAL": _TOTAL_SHEET}
    by_name = {normalise_sheet_name(s): s for s in reader.sheet_names}
    found: dict[str, str] = {}
    for dept, spec in wanted.items():
        for name in spec.names:
            if normalise_sheet_name(name) in by_name:
                found[dept] = by_name[normalise_sheet_name(name)]
                break
    missing = [d for d in wanted if d not in found]
    if missing:
        taken = set(found.values())
        titles = {s: _sheet_titles(reader, s) for s in reader.sheet_names if s not in taken}
        for dept in missing:
            hits = [s for s, t in titles.items() if t & set(wanted[dept].titles)]
            if len(hits) == 1:
                logger.warning("%s: sheet %r taken as department %s by its title",
                               path.name, hits[0], dept)
                found[dept] = hits[0]
            elif len(hits) > 1:
                raise ImportFormatError(
                    f"{path.name}: department {dept} could be any of sheets "
                    f"{', '.join(repr(h) for h in hits)} (no sheet named "
                    f"{' or '.join(wanted[dept].names)}). Rename the right sheet to {dept}."
                )
    still = [d for d in wanted if d not in found]
    if set(still) == set(EXCESS_BED_DAY_DEPARTMENTS) and "EL" in found and _is_nhs_costs(
            reader, found["EL"]):
        logger.info("%s: a National Schedule of NHS Costs: no EL_XS / NEL_XS sheets (excess bed "
                    "days are in the unit costs)", path.name)
        still = []
    if still:
        raise ImportFormatError(
            f"{path.name}: required sheet(s) missing: "
            + ", ".join(
                f"{d} (named {' or '.join(repr(n) for n in wanted[d].names)})" for d in still
            )
            + f". Sheets present: {', '.join(repr(s) for s in reader.sheet_names)}. "
            "Give the complete published National Schedule of Reference Costs workbook."
        )
    return found


# --------------------------------------------------------------------------------------
# reading a sheet
# --------------------------------------------------------------------------------------


def _canonical_rows(
    grid: SheetGrid,
    numbers: pl.DataFrame,
    *,
    header: int,
    department: str,
    cols: dict[str, int | None],
    labels: Sequence[str],
    negative_costs: bool = False,
) -> pl.DataFrame:
    """Canonical rows from the body below ``header`` given the grid column of each field
    (a negative unit cost is refused unless ``negative_costs``)."""
    raw = {name: (f"c{i}" if i is not None else None) for name, i in cols.items()}
    body = (
        grid.frame.hstack(numbers)
        .slice(header + 1)
        .with_row_index("excel_row", offset=header + 2)
    )
    body = body.select(
        pl.col("excel_row").cast(pl.Int64),
        *[
            (pl.col(c) if c is not None else pl.lit(None, dtype=pl.String)).alias(f"{n}_raw")
            for n, c in raw.items()
        ],
        pl.col(f"n{cols['activity']}").alias("activity_num"),
        pl.col(f"n{cols['unit_cost']}").alias("unit_cost_num"),
    )
    parsed = body.with_columns(
        currency_code=code_text("currency_code_raw"),
        service_code=code_text("service_code_raw"),
        currency_description=pl.col("currency_description_raw").str.strip_chars(),
        activity=pl.coalesce("activity_num", money("activity_raw")),
        unit_cost=pl.coalesce("unit_cost_num", money("unit_cost_raw")),
    )
    has_numbers = pl.col("activity").is_not_null() | pl.col("unit_cost").is_not_null()
    orphans = parsed.filter(~_is_code("currency_code") & has_numbers)
    if orphans.height:
        first = orphans.row(0, named=True)
        ci = cols["currency_code"]
        raise ImportFormatError(
            f"{grid.where(first['excel_row'], ci, labels[ci] if ci is not None else '')}: "
            f"row has figures but no valid currency code ({first['currency_code_raw']!r}); "
            f"{orphans.height} such row(s). Every priced row needs a currency code."
        )
    data = parsed.filter(_is_code("currency_code"))
    skipped = parsed.height - data.height
    if skipped:
        logger.debug("%s: %d blank or note row(s) below the header skipped", grid.where(), skipped)
    where = grid.where()
    for field in ("activity", "unit_cost"):
        i = cols[field]
        if i is None:  # the header search requires both columns
            raise ImportFormatError(f"{grid.where()}: no {field} column")
        label = f"column {column_letter(grid.first_column + i)} ({labels[i]!r})"
        check_numbers(data, raw=f"{field}_raw", parsed=field, where=where, label=label,
                      allow_negative=negative_costs and field == "unit_cost")
    if cols["service_code"] is not None:
        blank = data.filter(pl.col("service_code").is_null())
        if blank.height:
            si = cols["service_code"]
            raise ImportFormatError(
                f"{grid.where(blank['excel_row'][0], si, labels[si])}: service code blank "
                f"({blank.height} row(s)); in this sheet it is part of the key."
            )
    out = data.with_columns(pl.lit(department).alias("department_code")).with_columns(
        undefined_average()
    )
    _check_duplicates(out, grid)
    return out.select("excel_row", *_CANONICAL)


def _check_duplicates(frame: pl.DataFrame, grid: SheetGrid) -> None:
    """Refuse a sheet in which a (service, currency) key appears twice, naming the rows."""
    key = ["department_code", "service_code", "currency_code"]
    dup = frame.filter(pl.struct(key).is_duplicated())
    if dup.height:
        groups = (
            dup.group_by(key, maintain_order=True)
            .agg(pl.col("excel_row"))
            .head(5)
            .iter_rows(named=True)
        )
        shown = "; ".join(
            f"{g['currency_code']}"
            + (f" / service {g['service_code']}" if g["service_code"] else "")
            + f" at rows {', '.join(str(r) for r in g['excel_row'])}"
            for g in groups
        )
        raise ImportFormatError(
            f"{grid.where()}: duplicate key(s) (service code, currency code): {shown}. "
            "The published schedules have one row per key; remove the extra row(s) or "
            "report the file."
        )


def _read_department(
    reader: fastexcel.ExcelReader, grid: SheetGrid, department: str, spec: _Sheet,
    negative_costs: bool = False,
) -> pl.DataFrame:
    required: list[tuple[str, ...]] = [_CURRENCY_CODE, _CURRENCY_DESC, _UNIT_COST]
    if spec.service:
        required.append(_SERVICE_CODE)
    header = find_header_row(grid, required)
    labels = grid.row_texts(header)
    row = header + 1
    activity = column_index(labels, _ACTIVITY, grid, row, "activity")
    unit_cost = column_index(labels, _UNIT_COST, grid, row, "national average unit cost")
    cols: dict[str, int | None] = {
        "currency_code": column_index(labels, _CURRENCY_CODE, grid, row, "currency code"),
        "currency_description": column_index(labels, _CURRENCY_DESC, grid, row,
                                             "currency description"),
        "service_code": (column_index(labels, _SERVICE_CODE, grid, row, "service code")
                         if spec.service else None),
        "activity": activity,
        "unit_cost": unit_cost,
    }
    numbers = read_numbers(reader, grid, [activity, unit_cost])
    return _canonical_rows(grid, numbers, header=header, department=department, cols=cols,
                           labels=labels, negative_costs=negative_costs)


def _read_total(reader: fastexcel.ExcelReader, grid: SheetGrid,
                negative_costs: bool = False) -> pl.DataFrame:
    """The first "Total" block (Activity, Unit Cost) of the "Total HRG's" sheet."""
    header = find_header_row(grid, [_TOTAL_CURRENCY, _CURRENCY_DESC, ("unit cost",)])
    labels = grid.row_texts(header)
    blocks = grid.row_texts(header - 1) if header > 0 else []
    j = blocks.index(_TOTAL_BLOCK) if _TOTAL_BLOCK in blocks else -1
    if j < 0 or labels[j : j + 2] != ["activity", "unit cost"]:
        raise ImportFormatError(
            f"{grid.where(header)}: no 'Total' block with 'Activity' and 'Unit Cost' columns "
            f"above/at the header row {header + 1}. Is this the published 'Total HRG's' sheet?"
        )
    row = header + 1
    cols: dict[str, int | None] = {
        "currency_code": column_index(labels, _TOTAL_CURRENCY, grid, row, "currency"),
        "currency_description": column_index(labels, _CURRENCY_DESC, grid, row,
                                             "currency description"),
        "service_code": None,
        "activity": j,
        "unit_cost": j + 1,
    }
    numbers = read_numbers(reader, grid, [j, j + 1])
    return _canonical_rows(grid, numbers, header=header, department="TOTAL", cols=cols,
                           labels=labels, negative_costs=negative_costs)


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------


def read(source: Path, *, negative_unit_costs: bool = False) -> dict[str, pl.DataFrame]:
    """Read a National Schedule of Reference Costs workbook into canonical frames.

    Args:
        source: The published .xlsx workbook (2014/15 to 2018/19 layouts).
        negative_unit_costs: Keep a negative unit cost as published (see
            :func:`negative_costs_as_null`) instead of refusing the file.

    Returns:
        ``{"reference_costs": frame}`` with the canonical columns of
        ``TABLE_SCHEMAS["reference_cost"]["reference_costs"]``, departments EL, EL_XS, NEL,
        NEL_XS, NES, DC, RP, CL, NCL, OPROC, AE and TOTAL, in sheet order (no EL_XS /
        NEL_XS from a National Schedule of NHS Costs, 2018/19 on).

    Raises:
        ImportFormatError: A required sheet or header is missing, a cost cell is not a
            number or is negative, or a key repeats; the message names file, sheet, row
            and column.

    Example:
        >>> frames = read(Path("national-schedule-2017-18.xlsx"))  # doctest: +SKIP
        >>> frames["reference_costs"].filter(pl.col("currency_code") == "DZ11V")  # doctest: +SKIP
    """
    path = Path(source)
    reader = open_workbook(path)
    sheets = _resolve_sheets(reader, path)
    parts = []
    for dept, sheet in sheets.items():
        grid = read_grid(reader, path, sheet)
        if dept == "TOTAL":
            part = _read_total(reader, grid, negative_unit_costs)
        else:
            part = _read_department(reader, grid, dept, DEPARTMENT_SHEETS[dept],
                                    negative_unit_costs)
        logger.info("%s: sheet %r -> %s, %d rows", path.name, sheet, dept, part.height)
        parts.append(part.drop("excel_row"))
    frame = pl.concat(parts, how="vertical").cast(_CANONICAL)  # type: ignore[arg-type]
    return {RESOURCE: frame}


def negative_costs_as_null(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """A published negative unit cost (no average cost can be negative: a data error in the
    publication) made null, and a manifest note naming each one."""
    neg = frame.filter(pl.col("unit_cost") < 0)
    notes = [
        f"Published negative unit cost stored as null (no price): {r['department_code']} "
        + (f"service {r['service_code']} " if r["service_code"] else "")
        + f"{r['currency_code']}, {r['unit_cost']!r} over activity {r['activity']!r}."
        for r in neg.iter_rows(named=True)
    ]
    for note in notes:
        logger.warning("%s", note)
    out = frame.with_columns(
        pl.when(pl.col("unit_cost") < 0).then(None).otherwise(pl.col("unit_cost")).alias("unit_cost"))
    return out, notes


def _grouper(edition: str) -> str:
    year = int(edition[:4])
    design = "HRG4+" if year >= 2015 else "HRG4"
    return f"{design} {edition[:4]}/{edition[5:]} Reference Costs Grouper"


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str = "HRG4",
    overwrite: bool = False,
    provenance: Provenance = Provenance(),
    negative_unit_costs_as_null: bool = False,
) -> Path:
    """Import a reference-costs workbook as the ``reference_cost`` edition ``edition``.

    Args:
        source: The published workbook.
        edition: Financial year ``YYYY-YY`` of the schedule.
        into: Tables folder; the edition is written to ``<into>/reference_cost/<edition>/``.
        hrg_version: HRG design of the currency codes (HRG4 for every schedule since 2009/10).
        overwrite: Replace an existing edition deliberately.
        provenance: where the copy came from (``obtained_from``: ``repo:path``), and whether it
            is an original or an extract, for the manifest; the schedule's title, publisher
            and page are the defaults.
        negative_unit_costs_as_null: Store a published negative unit cost as null (no
            price), named in the manifest's notes, instead of refusing the workbook.

    Returns:
        The edition folder.
    """
    path = Path(source)
    frame = read(path, negative_unit_costs=negative_unit_costs_as_null)[RESOURCE]
    frame, negative_notes = negative_costs_as_null(frame)
    title, publisher, url = _PUBLICATIONS.get(edition, _GENERIC_PUBLICATION)
    src = provenance.source(path, title=title if edition in _PUBLICATIONS else f"{title} {edition}",
                            publisher=publisher, url=url)
    absent = absent_departments(frame)
    folded = [d for d in EXCESS_BED_DAY_DEPARTMENTS if d in absent]
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames={RESOURCE: frame},
        sources=[src],
        hrg_version=hrg_version,
        grouper=_grouper(edition),
        description=(
            f"National Schedule of Reference Costs {edition}, NHS trusts and NHS foundation "
            "trusts: national average unit cost and activity per department, service and "
            "currency (HRG), plus the all-department Total HRG average."
        ),
        notes=[*NOTES, *([_FOLDED_NOTE] if folded else []), *negative_notes],
        absent_departments=absent,
        published=provenance.published,
        overwrite=overwrite,
    )


def build_shipped(shared_data: Path, into: Path) -> list[Path]:
    """Import the shipped reference-cost editions from the shared data folder.

    Writes, under ``<into>/reference_cost/`` and replacing them: 2014-15 to 2018-19 from the
    published workbooks (originals); 2011-12 (admitted care, whole pounds), 2013-14 (the
    ICCONIC stacked extract) and 2023-24, 2024-25 (COSTmos's National Cost Collection
    extracts), each marked as an extract with who made it. Reading the R data files needs
    pyreadr (the ``maintainers`` extra).

    Args:
        shared_data: The folder holding ``reference-costs/`` (``../shared/data``).
        into: The tables folder (``tariffs/`` of the repository).

    Returns:
        The edition folders written, oldest first.
    """
    from costing.importers import ncc, nsrc_csv, stacked_schedules

    shared, out_dir = Path(shared_data), Path(into)
    out = [
        import_edition(shared / rel, edition=ed, into=out_dir, overwrite=True,
                       provenance=Provenance(obtained_from=origin, form="original"),
                       negative_unit_costs_as_null=ed >= "2018-19")
        for rel, ed, origin in SHIPPED_SOURCES
    ]
    out += [nsrc_csv.import_edition(shared / rel, edition=ed, into=out_dir, overwrite=True,
                                    provenance=Provenance(obtained_from=origin, form="extract",
                                                          rounding=rounding))
            for rel, ed, origin, rounding in nsrc_csv.SHIPPED_SOURCES]
    out += [stacked_schedules.import_edition(
                shared / rel, edition=ed, into=out_dir, overwrite=True,
                provenance=Provenance(obtained_from=origin, form="extract"))
            for rel, ed, origin in stacked_schedules.SHIPPED_SOURCES]
    out += [ncc.import_edition(shared / rel, edition=ed, into=out_dir, overwrite=True,
                               provenance=Provenance(obtained_from=origin, form="extract"))
            for rel, ed, origin in ncc.SHIPPED_SOURCES]
    return sorted(out, key=lambda p: p.name)
