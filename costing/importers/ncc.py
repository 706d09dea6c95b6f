"""Importer for the National Cost Collection national schedule in long form (2018/19 on).

Two carriers of the same long layout, one row per department x currency:

- a CSV with columns ``Service Code, Dept or Currency Code, Dept or Currency Desc,
  Activity, Unit cost, Cost`` ("Service Code" holds the department name), as COSTmos ships
  2023/24;
- an R data file (.rda) holding a data frame ``ncc`` with columns ``department_code,
  currency_code, currency_desc, activity, unit_cost, cost``, as COSTmos ships 2024/25
  (read with pyreadr, see :mod:`costing.importers.rdata`; suppressed values are NA).

Either becomes the canonical ``reference_costs`` table of a ``reference_cost`` edition.
There are no excess-bed-day departments from 2018/19.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers._excel import check_numbers, code_text, money, read_csv_by_label
from costing.importers.rdata import R_SUFFIXES, read_r_frame
from costing.importers.reference_costs import absent_departments, undefined_average
from costing.schema import TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["RESOURCE", "DEPARTMENT_NAMES", "SHIPPED_SOURCES", "read", "import_edition"]

logger = logging.getLogger(__name__)

RESOURCE: Final = "reference_costs"
KIND: Final = "reference_cost"
_CANONICAL: Final = TABLE_SCHEMAS[KIND][RESOURCE]

# NCC department name (normalised by normalise_label) -> canonical department code.
# Labels only. Every one of these must be present in a file; other departments
# (critical care, rehabilitation, community services, ...) are not imported.
DEPARTMENT_NAMES: Final[dict[str, str]] = {
    "elective inpatients": "EL",
    "non-elective inpatient - long stay": "NEL",
    "non-elective inpatient - short stay": "NES",
    "daycase": "DC",
    "regular day or night admissions": "RP",
    "consultant led": "CL",
    "non consultant led": "NCL",
    "outpatient procedures": "OPROC",
    "emergency care": "AE",
}

# File column (normalised) -> role.
_COLUMNS: Final[dict[str, str]] = {
    "service code": "department_raw",
    "dept or currency code": "currency_code_raw",
    "dept or currency desc": "currency_description_raw",
    "activity": "activity_raw",
    "unit cost": "unit_cost_raw",
}

# R data frame column -> role (the .rda carrier).
_R_COLUMNS: Final[dict[str, str]] = {
    "department_code": "department_raw",
    "currency_code": "currency_code_raw",
    "currency_desc": "currency_description_raw",
    "activity": "activity_raw",
    "unit_cost": "unit_cost_raw",
}
_R_OBJECT: Final = "ncc"

# The shared copies the shipped editions were imported from: (file, edition, obtained from).
# Both are COSTmos's extracts of the published schedules.
SHIPPED_SOURCES: Final = (
    ("reference-costs/ncc-2023-24.csv", "2023-24",
     "NICE-Data-and-Analytics/COSTmos:inst/extdata/ncc_2023_24.csv (commit 3b36636)"),
    ("reference-costs/ncc-2024-25.rda", "2024-25",
     "NICE-Data-and-Analytics/COSTmos:data/ncc.rda (commit 7d134e0003584, \"NCC 2024/25 "
     "update\", built by its download script from the \"Summary HRG\" and \"Summary Other "
     "Currencies\" files)"),
)

_PUBLICATION: Final = (
    "National Cost Collection: National Schedule of NHS Costs",
    "NHS England",
    "https://www.england.nhs.uk/costing-in-the-nhs/national-cost-collection/",
)

NOTES: Final = (
    "unit_cost is the national average cost in GBP of the year: per finished consultant "
    "episode (EL, NEL, NES, DC, RP), per attendance (CL, NCL, AE) or per procedure (OPROC).",
    "This long-format schedule is aggregated to department x currency: there is no "
    "treatment-function (CL, NCL, OPROC) or A&E department-type (AE) breakdown, so "
    "service_code is null on every row. A lookup by service code must fall back to the "
    "department-wide row (service_code null).",
    "No excess-bed-day departments (EL_XS, NEL_XS) and no Total HRG average exist from 2018/19.",
    "A row with zero activity and a zero unit cost has unit_cost null: no average exists.",
    "Only EL, NEL, NES, DC, RP, CL, NCL, OPROC and AE are imported; other departments of "
    "the file are not.",
)


def _department_code() -> pl.Expr:
    """Canonical department code from the NCC department name (null when not imported)."""
    name = (
        pl.col("department_raw").str.replace_all(r"\s+", " ").str.strip_chars().str.to_lowercase()
    )
    return name.replace_strict(DEPARTMENT_NAMES, default=None, return_dtype=pl.String)


def _read_csv(path: Path) -> pl.DataFrame:
    frame = read_csv_by_label(path, _COLUMNS, "long National Cost Collection layout: Service "
                              "Code, Dept or Currency Code, Dept or Currency Desc, Activity, "
                              "Unit cost, Cost")
    return frame.with_columns(pl.lit(None, dtype=pl.Float64).alias("activity_num"),
                              pl.lit(None, dtype=pl.Float64).alias("unit_cost_num"))


def _read_r(path: Path) -> pl.DataFrame:
    """The ``ncc`` data frame of an .rda file, in the roles of the CSV (numbers kept as read,
    "line" is the row of the data frame)."""
    frame = read_r_frame(path, _R_OBJECT)
    missing = [c for c in _R_COLUMNS if c not in frame.columns]
    if missing:
        raise ImportFormatError(
            f"{path.name}: data frame {_R_OBJECT!r} lacks column(s) {', '.join(missing)}; found "
            f"{', '.join(frame.columns)}. Expected COSTmos's ncc layout: department_code, "
            "currency_code, currency_desc, activity, unit_cost, cost."
        )
    numbers = ("activity", "unit_cost")
    wrong = [c for c in numbers if not frame.schema[c].is_numeric()]
    if wrong:
        raise ImportFormatError(f"{path.name}: column(s) {', '.join(wrong)} are not numbers")
    return frame.select(
        pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line"),
        *[pl.col(c).cast(pl.String).alias(role) for c, role in _R_COLUMNS.items()],
        *[pl.col(c).cast(pl.Float64).alias(f"{c}_num") for c in numbers],
    )


def read(source: Path) -> dict[str, pl.DataFrame]:
    """Read a National Cost Collection long schedule (CSV or .rda) into canonical frames.

    Args:
        source: The CSV (UTF-8, optionally with a byte-order mark) or the .rda file.

    Returns:
        ``{"reference_costs": frame}`` in the canonical columns; service_code is null.

    Raises:
        ImportFormatError: Missing columns, a required department absent, a unit cost or
            activity that is not a number or is negative, or a repeated key; the message
            names the file, the line and the column.
    """
    path = Path(source)
    raw = _read_r(path) if path.suffix.lower() in R_SUFFIXES else _read_csv(path)
    parsed = raw.with_columns(
        department_code=_department_code(),
        currency_code=code_text("currency_code_raw"),
        currency_description=pl.col("currency_description_raw").str.strip_chars(),
        activity=pl.coalesce("activity_num", money("activity_raw")),
        unit_cost=pl.coalesce("unit_cost_num", money("unit_cost_raw")),
        service_code=pl.lit(None, dtype=pl.String),
    )
    found = set(parsed["department_code"].drop_nulls().unique().to_list())
    absent = [name for name, code in DEPARTMENT_NAMES.items() if code not in found]
    if absent:
        names = sorted(parsed["department_raw"].drop_nulls().unique().to_list())
        raise ImportFormatError(
            f"{path.name}: department(s) {', '.join(repr(a) for a in absent)} not found in "
            f"the department column (it holds: {', '.join(repr(n) for n in names)}). "
            "Is this the National Cost Collection national schedule?"
        )
    skipped = parsed.filter(pl.col("department_code").is_null())
    if skipped.height:
        logger.info("%s: %d row(s) of %d other department(s) not imported", path.name,
                    skipped.height, skipped["department_raw"].n_unique())
    data = parsed.filter(pl.col("department_code").is_not_null())
    no_code = data.filter(pl.col("currency_code").is_null())
    if no_code.height:
        raise ImportFormatError(
            f"{path.name}, line {no_code['line'][0]}, column of the currency code: blank "
            f"({no_code.height} row(s)). Every row needs a currency code."
        )
    check_numbers(data, raw="activity_raw", parsed="activity", where=path.name,
                  label="column 'Activity'", row_col="line", row_word="line")
    check_numbers(data, raw="unit_cost_raw", parsed="unit_cost", where=path.name,
                  label="column 'Unit cost'", row_col="line", row_word="line")
    data = data.with_columns(undefined_average())
    key = ["department_code", "service_code", "currency_code"]
    dup = data.filter(pl.struct(key).is_duplicated())
    if dup.height:
        first = dup.group_by(key, maintain_order=True).agg(pl.col("line")).row(0, named=True)
        raise ImportFormatError(
            f"{path.name}: {first['department_code']} {first['currency_code']} appears on lines "
            f"{', '.join(str(x) for x in first['line'])} ({dup.height} rows with a repeated "
            "department and currency code). Remove the extra rows or report the file."
        )
    return {RESOURCE: data.select(*_CANONICAL).cast(_CANONICAL)}  # type: ignore[arg-type]


def _content_notes(frame: pl.DataFrame) -> list[str]:
    """Notes on what this edition's rows lack, read from the rows themselves."""
    notes = []
    attendance = frame.filter(pl.col("department_code").is_in(["CL", "NCL"])
                              & pl.col("currency_code").str.starts_with("WF"))
    if attendance.height == 0:
        notes.append("No outpatient attendance currencies (WF01A-WF02B): CL and NCL hold "
                     "other currencies only, so an outpatient attendance without a priced "
                     "procedure cannot be priced from this edition.")
    ae = frame.filter(pl.col("department_code") == "AE")
    if ae.height and ae["currency_code"].n_unique() == ae.height:
        notes.append("A&E (Emergency Care) is one row per HRG for all department types "
                     "together: every A&E record is priced at that all-types row.")
    return notes


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str = "HRG4",
    overwrite: bool = False,
    provenance: Provenance = Provenance(),
) -> Path:
    """Import a National Cost Collection schedule as the ``reference_cost`` edition ``edition``.

    Args:
        source: The long-format CSV or .rda file.
        edition: Financial year ``YYYY-YY`` of the collection.
        into: Tables folder; the edition is written to ``<into>/reference_cost/<edition>/``.
        hrg_version: HRG design of the currency codes.
        overwrite: Replace an existing edition deliberately.
        provenance: where the copy came from (``obtained_from``: ``repo:path``), and whether it
            is an original or an extract, for the manifest; the collection's title, publisher
            and page are the defaults.

    Returns:
        The edition folder.
    """
    path = Path(source)
    frames = read(path)
    title, publisher, url = _PUBLICATION
    src = provenance.source(path, title=f"{title} {edition[:4]}/{edition[5:]}",
                            publisher=publisher, url=url)
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[src],
        hrg_version=hrg_version,
        grouper=f"HRG4+ {edition[:4]}/{edition[5:]} National Costs Grouper",
        description=(
            f"National Cost Collection {edition}, national schedule (long format): national "
            "average unit cost and activity per department and currency."
        ),
        notes=[*NOTES, *_content_notes(frames[RESOURCE])],
        absent_departments=absent_departments(frames[RESOURCE]),
        published=provenance.published,
        overwrite=overwrite,
    )
