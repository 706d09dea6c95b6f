"""Importer for national schedules stacked in one R data frame (the ICCONIC extract).

The Health Foundation's ICCONIC project stacked the 2013/14-2017/18 National Schedules of
Reference Costs into one data frame (``HRGcosts.rds``): one row per sheet x service x
currency with columns ``HRG, currencydescription, unitcost, servicecode, type`` (the sheet
name: EL, EL_XS, ..., EM for A&E, TotalHRGs) and ``HRGyear`` ("2013" = 2013/14). It has no
activity column. One year's rows become the canonical ``reference_costs`` table; the
years that have their own workbook are shipped from the workbook.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers._excel import code_text
from costing.importers.rdata import read_r_frame
from costing.importers.reference_costs import absent_departments
from costing.schema import TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["RESOURCE", "SHEET_DEPARTMENTS", "SHIPPED_SOURCES", "read", "import_edition"]

logger = logging.getLogger(__name__)

RESOURCE: Final = "reference_costs"
KIND: Final = "reference_cost"
_CANONICAL: Final = TABLE_SCHEMAS[KIND][RESOURCE]

# Sheet name in column ``type`` -> (canonical department, the service code is part of the key).
SHEET_DEPARTMENTS: Final[dict[str, tuple[str, bool]]] = {
    "EL": ("EL", False), "EL_XS": ("EL_XS", False), "NEL": ("NEL", False),
    "NEL_XS": ("NEL_XS", False), "NES": ("NES", False), "DC": ("DC", False),
    "RP": ("RP", False), "CL": ("CL", True), "NCL": ("NCL", True), "OPROC": ("OPROC", True),
    "EM": ("AE", True), "AE": ("AE", True), "TotalHRGs": ("TOTAL", False),
}
_COLUMNS: Final = ("HRG", "currencydescription", "unitcost", "servicecode", "type", "HRGyear")

SHIPPED_SOURCES: Final = (
    ("reference-costs/icconic-hrgcosts-2013-14-to-2017-18.rds", "2013-14",
     "HFAnalyticsLab/ICCONIC-English-results:Reference_data/HRG_reference_costs/HRGcosts.rds "
     "(commit 112d2d9764777, stacked by the project's download script)"),
)

_PUBLICATION: Final = (
    "Reference costs 2013 to 2014: National Schedule of Reference Costs",
    "Department of Health",
    "https://www.gov.uk/government/publications/nhs-reference-costs-2013-to-2014",
)

NOTES: Final = (
    "unit_cost is the national average cost in GBP of the year, unrounded: per finished "
    "consultant episode (EL, NEL, NES, DC, RP), per excess bed day beyond the episode trim "
    "point (EL_XS, NEL_XS), per attendance (CL, NCL, AE) or per procedure (OPROC).",
    "TOTAL is the 'Total HRG's' all-department average per HRG: its cost includes excess "
    "bed days. Never add bed days to it.",
    "service_code is null for admitted departments and TOTAL; the treatment function code "
    "for CL, NCL and OPROC; the A&E department type and admitted flag (T01A, T01NA, ...) for AE.",
    "activity is null: the extract has no activity column. A published 0 cannot be told "
    "from an undefined 0/0 average without it, so a unit cost of 0 is stored as null (no "
    "price); the workbooks of 2014/15-2017/18 publish such rows as 0/0.",
    "Only the departments listed here are imported; other sheets (CHEM, RAD, ...) are not.",
)


def read(source: Path, *, year: str) -> dict[str, pl.DataFrame]:
    """Read one year of a stacked-schedules .rds file into canonical frames.

    Args:
        source: The .rds file.
        year: The edition ``YYYY-YY``; its rows are those with ``HRGyear`` = ``YYYY``.

    Returns:
        ``{"reference_costs": frame}`` in the canonical columns; activity null.

    Raises:
        ImportFormatError: Missing columns, no rows of that year, a department absent, a
            blank or negative cost, or a repeated key; the message names the file and the
            data-frame row.
    """
    path = Path(source)
    frame = read_r_frame(path)
    missing = [c for c in _COLUMNS if c not in frame.columns]
    if missing:
        raise ImportFormatError(
            f"{path.name}: lacks column(s) {', '.join(missing)}; found {', '.join(frame.columns)}. "
            "Expected the ICCONIC stacked layout (HRG, currencydescription, unitcost, "
            "servicecode, type, HRGyear)."
        )
    rows = frame.with_row_index("row", offset=1).filter(pl.col("HRGyear") == year[:4])
    if rows.height == 0:
        years = sorted(frame["HRGyear"].drop_nulls().unique().to_list())
        raise ImportFormatError(
            f"{path.name}: no rows with HRGyear {year[:4]!r} (it holds {', '.join(years)})")
    sheets = list(SHEET_DEPARTMENTS)
    held = {SHEET_DEPARTMENTS[s][0] for s in rows["type"].unique().to_list() if s in sheets}
    absent = sorted({d for d, _ in SHEET_DEPARTMENTS.values()} - held)
    if absent:
        raise ImportFormatError(
            f"{path.name}: year {year} has no rows of department(s) {', '.join(absent)} "
            f"(column 'type' holds {', '.join(sorted(rows['type'].unique().to_list()))})")
    keyed = {s for s, (_, service) in SHEET_DEPARTMENTS.items() if service}
    data = rows.filter(pl.col("type").is_in(sheets)).select(
        "row",
        pl.col("type").replace_strict({s: d for s, (d, _) in SHEET_DEPARTMENTS.items()},
                                      return_dtype=pl.String).alias("department_code"),
        pl.when(pl.col("type").is_in(list(keyed))).then(code_text("servicecode"))
        .alias("service_code"),
        code_text("HRG").alias("currency_code"),
        pl.col("currencydescription").str.strip_chars().alias("currency_description"),
        pl.lit(None, dtype=pl.Float64).alias("activity"),
        pl.col("unitcost").cast(pl.Float64).alias("unit_cost"),
    )
    bad = data.filter(pl.col("currency_code").is_null() | pl.col("unit_cost").is_null()
                      | (pl.col("unit_cost") < 0))
    no_service = data.filter(pl.col("department_code").is_in(["CL", "NCL", "OPROC", "AE"])
                             & pl.col("service_code").is_null())
    for problem, what in ((bad, "a blank currency code or a blank or negative unit cost"),
                          (no_service, "a blank service code (part of the key in this sheet)")):
        if problem.height:
            raise ImportFormatError(
                f"{path.name}, data-frame row {problem['row'][0]}: {what} ({problem.height} such "
                "row(s)). Check the source file."
            )
    key = ["department_code", "service_code", "currency_code"]
    dup = data.filter(pl.struct(key).is_duplicated())
    if dup.height:
        first = dup.row(0, named=True)
        raise ImportFormatError(
            f"{path.name}: {first['department_code']} {first['currency_code']} "
            f"(service {first['service_code']}) repeats, e.g. data-frame row {first['row']}; "
            "each key appears once in a schedule."
        )
    zero = pl.col("unit_cost") == 0
    logger.info("%s: %s, %d rows (%d zero unit costs stored as null)", path.name, year,
                data.height, data.filter(zero).height)
    out = data.with_columns(pl.when(zero).then(None).otherwise(pl.col("unit_cost")).alias("unit_cost"))
    return {RESOURCE: out.select(*_CANONICAL).cast(_CANONICAL)}  # type: ignore[arg-type]


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str = "HRG4",
    overwrite: bool = False,
    provenance: Provenance = Provenance(form="extract"),
) -> Path:
    """Import one year of a stacked-schedules .rds file as the ``reference_cost`` edition.

    Args:
        source: The .rds file.
        edition: Financial year ``YYYY-YY``: the year taken from the file.
        into: Tables folder; the edition is written to ``<into>/reference_cost/<edition>/``.
        hrg_version: HRG design of the currency codes.
        overwrite: Replace an existing edition deliberately.
        provenance: where the copy came from (``obtained_from``: ``repo:path``), for the
            manifest (an R data frame stacked by another project is an extract); the
            schedule's title, publisher and page are the defaults.

    Returns:
        The edition folder.
    """
    path = Path(source)
    frames = read(path, year=edition)
    title, publisher, url = _PUBLICATION if edition == "2013-14" else (
        f"National Schedule of Reference Costs {edition}", "Department of Health / NHS Improvement",
        "https://www.gov.uk/government/collections/nhs-reference-costs")
    src = provenance.source(path, title=title, publisher=publisher, url=url)
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[src],
        hrg_version=hrg_version,
        grouper=f"HRG4 {edition[:4]}/{edition[5:]} Reference Costs Grouper",
        description=(
            f"National Schedule of Reference Costs {edition}, NHS trusts and NHS foundation "
            "trusts, from a stacked extract: national average unit cost per department, "
            "service and currency (HRG), plus the all-department Total HRG average."
        ),
        notes=NOTES,
        published=provenance.published,
        absent_departments=absent_departments(frames[RESOURCE]),
        overwrite=overwrite,
    )
