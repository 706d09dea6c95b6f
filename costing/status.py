"""Stable per-record status codes and cost sources.

Codes are append-only: never renumber. A code >= 50 means the record was not priced
(its cost is null); codes below 50 carry a cost (0 for an excluded record).
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

import polars as pl

__all__ = ["Status", "CostSource", "NOT_PRICED_FROM", "status_table", "status_name_expr"]

NOT_PRICED_FROM = 50


class Status(IntEnum):
    """Why a record has the cost it has (or why it has none)."""

    PRICED_TARIFF = 1
    PRICED_REFERENCE_COST_FALLBACK = 2
    PRICED_REFERENCE_COST = 3
    PRICED_LAST_RESORT_AVERAGE = 4
    PRICED_TARIFF_AFTER_REFERENCE_COST = 5
    PRICED_REFERENCE_COST_DEPARTMENT_WIDE = 6
    PRICED_REFERENCE_COST_FALLBACK_DEPARTMENT_WIDE = 7
    EXCLUDED_NOT_ATTENDED = 20
    HRG_MISSING = 50
    HRG_UNGROUPABLE = 51
    HRG_NOT_FOUND = 52
    HRG_VERSION_MISMATCH = 53
    NO_EDITION_FOR_DATE = 54
    NO_PRICE_FOR_POD = 55
    INVALID_RECORD = 56
    NO_INDEX_FOR_YEAR = 57
    NO_MFF_FOR_PROVIDER = 58
    DUPLICATE_RECORD = 59
    NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION = 60
    NO_AE_COSTS_IN_EDITION = 61
    NO_REGULAR_ATTENDER_COSTS_IN_EDITION = 62

    @property
    def priced(self) -> bool:
        return self.value < NOT_PRICED_FROM

    @property
    def label(self) -> str:
        return self.name.lower()

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


class CostSource(StrEnum):
    """The level of the declared source chain that priced a record."""

    TARIFF = "tariff"
    REFERENCE_COST = "reference_cost"
    TOTAL_HRG_AVERAGE = "total_hrg_average"
    EXCLUDED = "excluded"


_DESCRIPTIONS: dict[Status, str] = {
    Status.PRICED_TARIFF: "Priced by the national tariff (purchaser perspective).",
    Status.PRICED_REFERENCE_COST_FALLBACK: "Tariff had no price; priced by reference cost (purchaser fallback).",
    Status.PRICED_REFERENCE_COST: "Priced by reference cost (provider perspective, reference cost first).",
    Status.PRICED_LAST_RESORT_AVERAGE: "Priced by the all-department HRG average (Total HRG's), a declared last resort.",
    Status.PRICED_TARIFF_AFTER_REFERENCE_COST: "Reference cost had no price; priced by tariff declared after it in the chain.",
    Status.PRICED_REFERENCE_COST_DEPARTMENT_WIDE: (
        "Priced by reference cost at the department-wide row: the edition has no treatment-function "
        "or A&E department-type breakdown (National Cost Collection; 2024/25 A&E: all types together)."),
    Status.PRICED_REFERENCE_COST_FALLBACK_DEPARTMENT_WIDE: (
        "Tariff had no price; priced by reference cost at the department-wide row (no "
        "treatment-function or A&E department-type breakdown in the edition)."),
    Status.EXCLUDED_NOT_ATTENDED: "Outpatient did not attend or was cancelled: excluded, cost 0.",
    Status.HRG_MISSING: "No HRG code on the record.",
    Status.HRG_UNGROUPABLE: "HRG is a U-code (e.g. UZ01Z, data invalid for grouping).",
    Status.HRG_NOT_FOUND: "HRG not in any table of the chain for this version.",
    Status.HRG_VERSION_MISMATCH: "The record's HRG version differs from the table edition's (v3.5 vs HRG4).",
    Status.NO_EDITION_FOR_DATE: "No table edition is in force on the record's date (dated mode).",
    Status.NO_PRICE_FOR_POD: "The HRG is known but no source has a price for this point of delivery.",
    Status.INVALID_RECORD: "A required field is missing or invalid (lenient mode).",
    Status.NO_INDEX_FOR_YEAR: "Inflation was requested but the index has no value for the record's price year.",
    Status.NO_MFF_FOR_PROVIDER: "MFF is on but the provider has no factor in the MFF table (tariff-priced record).",
    Status.DUPLICATE_RECORD: "The record id repeats an earlier record's (within a file, or a file given twice): not priced again.",
    Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION: (
        "The reference-cost edition has no outpatient attendance costs (2011/12: admitted care only; "
        "2024/25: no WF currencies) and no procedure price for the record."),
    Status.NO_AE_COSTS_IN_EDITION: "The reference-cost edition has no A&E costs (2011/12: admitted care only).",
    Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION: (
        "The reference-cost edition has no regular day or night admission (RP) costs (2011/12)."),
}


def status_table() -> pl.DataFrame:
    """All status codes with their names, descriptions and whether they carry a cost."""
    return pl.DataFrame(
        {
            "status": [s.value for s in Status],
            "status_name": [s.label for s in Status],
            "priced": [s.priced for s in Status],
            "description": [_DESCRIPTIONS[s] for s in Status],
        },
        schema={"status": pl.Int16, "status_name": pl.String, "priced": pl.Boolean, "description": pl.String},
    )


def status_name_expr(col: str = "status") -> pl.Expr:
    """Polars expression mapping an integer status column to its stable name."""
    return pl.col(col).replace_strict(
        [s.value for s in Status], [s.label for s in Status], return_dtype=pl.String
    )
