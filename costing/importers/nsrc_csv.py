"""Importer for an admitted-care National Schedule of Reference Costs table as a wide CSV.

The 2011/12 schedule survives publicly as an extract of its sheet NSRC01 (admitted
patient care): one row per HRG with columns ``Currency Code, Currency Description, Total,
EI, EI_XS, NEI_L, NEI_L_XS, NEI_S, DC`` holding national average unit costs (the extract
rounds them to whole pounds). EI is elective inpatients, NEI_L / NEI_S non-elective long
and short stay, _XS their excess bed days, Total the all-department HRG average. There is
no activity, and no regular-attender, outpatient or A&E department.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

import polars as pl

from costing.errors import ImportFormatError
from costing.importers._excel import check_numbers, code_text, money, read_csv_by_label
from costing.importers.reference_costs import absent_departments
from costing.schema import TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = ["RESOURCE", "DEPARTMENT_COLUMNS", "SHIPPED_SOURCES", "read", "import_edition"]

logger = logging.getLogger(__name__)

RESOURCE: Final = "reference_costs"
KIND: Final = "reference_cost"
_CANONICAL: Final = TABLE_SCHEMAS[KIND][RESOURCE]

# File column (normalised by normalise_label) -> canonical department code. Labels only.
DEPARTMENT_COLUMNS: Final[dict[str, str]] = {
    "total": "TOTAL",
    "ei": "EL",
    "ei_xs": "EL_XS",
    "nei_l": "NEL",
    "nei_l_xs": "NEL_XS",
    "nei_s": "NES",
    "dc": "DC",
}
_CODE: Final = "currency code"
_DESCRIPTION: Final = "currency description"

SHIPPED_SOURCES: Final = (
    ("reference-costs/nsrc01-2011-12-rounded.csv", "2011-12",
     "miqdadasaria/cost-of-inequality:data/NSRC01 2011-12.csv (commit ffde35558f9a)",
     "whole pounds"),
)

_PUBLICATION: Final = (
    "Reference costs 2011-12: National Schedule of Reference Costs, NSRC01 (admitted patient "
    "care)",
    "Department of Health",
    "https://www.gov.uk/government/publications/nhs-reference-costs-financial-year-2011-to-2012",
)

NOTES: Final = (
    "unit_cost is the national average cost in GBP of the year: per finished consultant "
    "episode (EL, NEL, NES, DC) or per excess bed day beyond the episode trim point "
    "(EL_XS, NEL_XS). TOTAL is the all-department HRG average (bed days inside it).",
    "Admitted patient care only (sheet NSRC01): no regular day or night admissions (RP), "
    "outpatient (CL, NCL, OPROC) or A&E (AE) costs. A record of those departments priced "
    "at this edition is unpriced, with a status naming what is missing.",
    "activity is null: the extract carries unit costs only.",
    "An empty cell (no activity in that department) is no row.",
)


def _read_csv(path: Path) -> pl.DataFrame:
    roles = {_CODE: "currency_code_raw", _DESCRIPTION: "currency_description_raw",
             **DEPARTMENT_COLUMNS}
    return read_csv_by_label(path, roles, "admitted-care layout: Currency Code, Currency "
                             "Description, Total, EI, EI_XS, NEI_L, NEI_L_XS, NEI_S, DC")


def read(source: Path) -> dict[str, pl.DataFrame]:
    """Read an admitted-care schedule CSV (2011/12 layout) into canonical frames.

    Args:
        source: The CSV (UTF-8, optionally with a byte-order mark).

    Returns:
        ``{"reference_costs": frame}`` in the canonical columns: departments TOTAL, EL,
        EL_XS, NEL, NEL_XS, NES, DC; service_code and activity null.

    Raises:
        ImportFormatError: Missing columns, a blank or repeated currency code, or a cost
            that is not a number or is negative; the message names the file, the line and
            the column.
    """
    path = Path(source)
    wide = _read_csv(path)
    no_code = wide.filter(code_text("currency_code_raw").is_null())
    if no_code.height:
        raise ImportFormatError(
            f"{path.name}, line {no_code['line'][0]}, column 'Currency Code': blank "
            f"({no_code.height} row(s)). Every row needs a currency code."
        )
    dup = wide.filter(code_text("currency_code_raw").is_duplicated())
    if dup.height:
        raise ImportFormatError(
            f"{path.name}: currency code {dup['currency_code_raw'][0]!r} appears on lines "
            f"{', '.join(str(x) for x in dup['line'].head(5))}. Each HRG has one row."
        )
    long = wide.unpivot(index=["line", "currency_code_raw", "currency_description_raw"],
                        on=list(DEPARTMENT_COLUMNS.values()), variable_name="department_code",
                        value_name="unit_cost_raw")
    parsed = long.with_columns(unit_cost=money("unit_cost_raw"))
    for label, dept in DEPARTMENT_COLUMNS.items():
        check_numbers(parsed.filter(pl.col("department_code") == dept), raw="unit_cost_raw",
                      parsed="unit_cost", where=path.name, label=f"column {label.upper()!r}",
                      row_col="line", row_word="line")
    data = parsed.filter(pl.col("unit_cost").is_not_null()).select(
        "department_code",
        pl.lit(None, dtype=pl.String).alias("service_code"),
        code_text("currency_code_raw").alias("currency_code"),
        pl.col("currency_description_raw").str.strip_chars().alias("currency_description"),
        pl.lit(None, dtype=pl.Float64).alias("activity"),
        "unit_cost",
    )
    logger.info("%s: %d HRGs, %d priced cells", path.name, wide.height, data.height)
    return {RESOURCE: data.cast(_CANONICAL)}  # type: ignore[arg-type]


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str = "HRG4",
    overwrite: bool = False,
    provenance: Provenance = Provenance(),
) -> Path:
    """Import an admitted-care schedule CSV as the ``reference_cost`` edition ``edition``.

    Args:
        source: The CSV.
        edition: Financial year ``YYYY-YY`` of the schedule.
        into: Tables folder; the edition is written to ``<into>/reference_cost/<edition>/``.
        hrg_version: HRG design of the currency codes.
        overwrite: Replace an existing edition deliberately.
        provenance: where the copy came from (``obtained_from``: ``repo:path``), whether it is
            an original or an extract and how it rounds the published costs (``rounding``,
            e.g. "whole pounds"), for the manifest; the schedule's title, publisher and page
            are the defaults.

    Returns:
        The edition folder.
    """
    path = Path(source)
    frames = read(path)
    title, publisher, url = _PUBLICATION
    src = provenance.source(path, title=title, publisher=publisher, url=url)
    rounding = provenance.rounding
    rounded = [f"unit_cost is rounded to {rounding} (by the extract, not the publisher)."] \
        if rounding else []
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[src],
        hrg_version=hrg_version,
        grouper=f"HRG4 {edition[:4]}/{edition[5:]} Reference Costs Grouper",
        description=(
            f"National Schedule of Reference Costs {edition}, admitted patient care (NSRC01): "
            "national average unit cost per department and HRG, plus the all-department "
            "Total HRG average."
        ),
        notes=[*NOTES, *rounded],
        published=provenance.published,
        absent_departments=absent_departments(frames[RESOURCE]),
        overwrite=overwrite,
    )
