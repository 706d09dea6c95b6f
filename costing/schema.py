"""Canonical column names, dtypes and allowed codes, declared once.

Three families of schema live here: the canonical price/reference tables (one per table
kind and resource), the canonical activity frame that pricing consumes, and the columns
that pricing and windowing append. Every other module refers to these names.
"""

from __future__ import annotations

import datetime
from typing import Final

import polars as pl

from costing.status import CostSource, Status

__all__ = [
    "TABLE_KINDS",
    "TABLE_SCHEMAS",
    "TABLE_PRIMARY_KEYS",
    "HRG_VERSIONS",
    "DEPARTMENTS",
    "SETTINGS",
    "ACTIVITY_SCHEMA",
    "ACTIVITY_REQUIRED",
    "PRICED_COLUMNS",
    "COST_CATEGORIES",
    "POD_CODES",
    "WINDOW_COLUMNS",
    "COHORT_SCHEMA",
    "ELECTIVE_METHODS",
    "EMERGENCY_METHODS",
    "MATERNITY_METHODS",
    "OTHER_METHODS",
    "UNKNOWN_METHODS",
    "ADMISSION_METHODS",
    "PATIENT_CLASSIFICATIONS",
    "HES_DUMMY_DATES",
    "HES_DUMMY_DAYS",
    "dtype_name",
    "dtype_from_name",
]

# --------------------------------------------------------------------------------------
# Canonical tables: kind -> resource name -> {column: dtype}
# --------------------------------------------------------------------------------------

TABLE_KINDS: Final = ("tariff", "reference_cost", "trimpoints", "mff", "index", "parameters")

HRG_VERSIONS: Final = ("v3.5", "HRG4")

# Reference-cost departments in canonical form. 2014/15's "EM" sheet is stored as "AE";
# "TOTAL" is the all-department average per HRG from the "Total HRG's" sheet (it already
# includes excess-bed-day cost: never add bed days to it).
DEPARTMENTS: Final = (
    "EL", "EL_XS", "NEL", "NEL_XS", "NES", "DC", "RP", "CL", "NCL", "OPROC", "AE", "TOTAL",
)

TABLE_SCHEMAS: Final[dict[str, dict[str, dict[str, pl.DataType]]]] = {
    "tariff": {
        # One row per HRG: the "1 APC & OPROC" sheet. Prices in GBP, null where the
        # workbook has "-" or blank (no national price).
        "apc": {
            "hrg_code": pl.String(),
            "hrg_name": pl.String(),
            "op_procedure_price": pl.Float64(),
            "combined_dc_el_price": pl.Float64(),
            "dc_price": pl.Float64(),
            "el_price": pl.Float64(),
            "el_trim_days": pl.Int32(),
            "nel_price": pl.Float64(),
            "nel_trim_days": pl.Int32(),
            "excess_bed_day_price": pl.Float64(),
            "sse_applicable": pl.Boolean(),
            "sse_percent": pl.Float64(),
            "sse_price": pl.Float64(),
        },
        # Outpatient attendances by treatment function (WF01B, WF02B, WF01A, WF02A).
        "op_attendance": {
            "treatment_function_code": pl.String(),
            "treatment_function_description": pl.String(),
            "first_single_price": pl.Float64(),
            "first_multi_price": pl.Float64(),
            "followup_single_price": pl.Float64(),
            "followup_multi_price": pl.Float64(),
        },
        # A&E by HRG x department type (types 1 and 2 share a price; type 3 its own).
        "ae": {
            "hrg_code": pl.String(),
            "hrg_name": pl.String(),
            "type_1_2_price": pl.Float64(),
            "type_3_price": pl.Float64(),
        },
    },
    "reference_cost": {
        # Long form: one row per department x service x currency.
        "reference_costs": {
            "department_code": pl.String(),
            "service_code": pl.String(),  # nullable: treatment function (CL/NCL/OPROC?) or AE T01A..
            "currency_code": pl.String(),
            "currency_description": pl.String(),
            "activity": pl.Float64(),
            "unit_cost": pl.Float64(),
        },
    },
    "trimpoints": {
        "trimpoints": {
            "hrg_code": pl.String(),
            "trim_days": pl.Int32(),
        },
    },
    "mff": {
        "mff": {
            "provider_code": pl.String(),
            "provider_name": pl.String(),
            "mff_factor": pl.Float64(),
        },
    },
    "index": {
        # One row per index x financial year ("2017-18"); value is an index level.
        "index": {
            "index_name": pl.String(),
            "financial_year": pl.String(),
            "value": pl.Float64(),
            "is_forecast": pl.Boolean(),
        },
    },
    "parameters": {
        # Policy thresholds of the pricing rules (costing.pricing.parameters), one row per
        # parameter x the date from which it is in force (until the next row of that parameter).
        # value is text (a number, or admission method codes separated by spaces); source,
        # location and statement say where it was read (or, verified false, recalled from).
        "parameters": {
            "parameter": pl.String(),
            "valid_from": pl.Date(),
            "value": pl.String(),
            "verified": pl.Boolean(),
            "source": pl.String(),
            "location": pl.String(),
            "statement": pl.String(),
        },
    },
}

TABLE_PRIMARY_KEYS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "tariff": {
        "apc": ("hrg_code",),
        "op_attendance": ("treatment_function_code",),
        "ae": ("hrg_code",),
    },
    "reference_cost": {"reference_costs": ("department_code", "service_code", "currency_code")},
    "trimpoints": {"trimpoints": ("hrg_code",)},
    "mff": {"mff": ("provider_code",)},
    "index": {"index": ("index_name", "financial_year")},
    "parameters": {"parameters": ("parameter", "valid_from")},
}

# Columns allowed to be null inside a primary key (null is a value, compared as equal).
NULLABLE_KEY_COLUMNS: Final = frozenset({"service_code"})

# --------------------------------------------------------------------------------------
# Activity
# --------------------------------------------------------------------------------------

SETTINGS: Final = ("apc", "op", "ae")

ELECTIVE_METHODS: Final = ("11", "12", "13")
EMERGENCY_METHODS: Final = ("21", "22", "23", "24", "25", "28", "2A", "2B", "2C", "2D")
MATERNITY_METHODS: Final = ("31", "32")
OTHER_METHODS: Final = ("81", "82", "83", "84", "89")
UNKNOWN_METHODS: Final = ("98", "99")
ADMISSION_METHODS: Final = (
    ELECTIVE_METHODS + EMERGENCY_METHODS + MATERNITY_METHODS + OTHER_METHODS + UNKNOWN_METHODS
)
PATIENT_CLASSIFICATIONS: Final = ("1", "2", "3", "4", "5", "8", "9")

# HES dummy dates meaning "null or invalid".
HES_DUMMY_DATES: Final = ("1800-01-01", "1801-01-01", "1600-01-01", "1582-10-15")
HES_DUMMY_DAYS: Final = tuple(datetime.date.fromisoformat(d) for d in HES_DUMMY_DATES)  # as dates

# The canonical activity frame (one frame, all settings). Codes are strings, always.
ACTIVITY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "record_id": pl.String(),
    "patient_id": pl.String(),
    "setting": pl.String(),  # apc / op / ae
    "provider_code": pl.String(),
    "activity_date": pl.Date(),  # admission / appointment / arrival
    "discharge_date": pl.Date(),  # apc only
    "admission_method": pl.String(),  # apc only
    "patient_classification": pl.String(),  # apc only
    "hrg_code": pl.String(),
    "hrg_version": pl.String(),  # v3.5 / HRG4
    "age": pl.Int32(),
    "treatment_function_code": pl.String(),  # op (and apc, informational)
    "first_attendance": pl.String(),  # op: FIRSTATT 1/2/3/4
    "attended": pl.String(),  # op: ATTENDED 5/6 attended, else DNA/cancelled
    "multi_professional": pl.Boolean(),  # op: multi-professional attendance
    "department_type": pl.String(),  # ae: 01/02/03/04
    "spell_id": pl.String(),  # apc, optional: groups episodes into spells
    "spell_hrg_code": pl.String(),  # apc, optional: the spell HRG when input is episodic
    "ae_admitted": pl.Boolean(),  # ae, optional: AEATTENDDISP == 01
    "episode_order": pl.Int32(),  # apc, optional: EPIORDER, orders episodes within a spell
    "episode_start": pl.Date(),  # apc, optional: EPISTART, for episode-level length of stay
    "episode_end": pl.Date(),  # apc, optional: EPIEND, for episode-level length of stay
}

# Required per setting (a null here makes the record invalid).
ACTIVITY_REQUIRED: Final[dict[str, tuple[str, ...]]] = {
    "apc": ("record_id", "patient_id", "activity_date", "discharge_date", "admission_method",
            "patient_classification"),
    "op": ("record_id", "patient_id", "activity_date", "attended"),
    "ae": ("record_id", "patient_id", "activity_date", "department_type"),
}

# --------------------------------------------------------------------------------------
# Priced output: every input column kept, plus these.
# --------------------------------------------------------------------------------------

COST_CATEGORIES: Final = ("elective", "non_elective", "outpatient", "ae")

# Points of delivery pricing emits, in report order (A&E types 1 and 2 share a tariff
# price, so they share a POD; department_type keeps the detail).
POD_CODES: Final = (
    "DC", "EL", "NEL", "RP", "OP_FIRST", "OP_FOLLOWUP", "OP_PROC", "AE_T12", "AE_T3", "AE_T4",
)

# The text columns pricing adds hold a few values each, so they are not String (16 bytes a
# row): those with a declared vocabulary are Enums over it (1 byte a row), the table
# editions Categorical (4 bytes): docs/decisions/0009-enum-output-columns.md. They compare
# and filter like strings and are written to CSV and Excel as text;
# an Enum sorts in its declared order and rejects a value outside it in ``is_in``.
PRICED_COLUMNS: Final[dict[str, pl.DataType]] = {
    "n_episodes": pl.Int32(),
    "pod": pl.Enum(POD_CODES),
    "cost_category": pl.Enum(COST_CATEGORIES),
    "cost": pl.Float64(),  # null when not priced; 0.0 when excluded
    "cost_source": pl.Enum([s.value for s in CostSource]),  # null when not priced
    "status": pl.Int16(),
    "status_name": pl.Enum([s.label for s in Status]),
    "tariff_edition": pl.Categorical(),
    "reference_cost_edition": pl.Categorical(),
    "hrg_version_used": pl.Enum(HRG_VERSIONS),
    "base_price": pl.Float64(),
    "los_days": pl.Int32(),
    "excess_bed_days": pl.Int32(),
    "excess_bed_day_cost": pl.Float64(),
    "short_stay_applied": pl.Boolean(),
    "mff_factor": pl.Float64(),
    "inflation_factor": pl.Float64(),
}

# --------------------------------------------------------------------------------------
# Cohort and window output
# --------------------------------------------------------------------------------------

COHORT_SCHEMA: Final[dict[str, pl.DataType]] = {
    "patient_id": pl.String(),
    "index_date": pl.Date(),
    "group": pl.String(),
    "site": pl.String(),
    "matched_set": pl.String(),
    "weight": pl.Float64(),
    "end_of_follow_up": pl.Date(),
}

WINDOW_COLUMNS: Final[dict[str, pl.DataType]] = {
    "patient_id": pl.String(),
    "window": pl.Int32(),
    "window_start": pl.Date(),
    "window_end": pl.Date(),  # exclusive
    "window_days": pl.Int32(),
    "category": pl.String(),
    "cost": pl.Float64(),
    "n_records": pl.UInt32(),
    "n_unpriced": pl.UInt32(),
    "n_excluded": pl.UInt32(),
    "days_observed": pl.Int32(),
}

# --------------------------------------------------------------------------------------
# dtype names used in manifests
# --------------------------------------------------------------------------------------

_DTYPE_NAMES: Final[dict[str, pl.DataType]] = {
    "string": pl.String(),
    "float": pl.Float64(),
    "integer": pl.Int32(),
    "integer64": pl.Int64(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
}


def dtype_name(dtype: pl.DataType) -> str:
    """Name of a polars dtype as written in a manifest schema."""
    for name, dt in _DTYPE_NAMES.items():
        if dt == dtype:
            return name
    raise ValueError(f"dtype {dtype} has no manifest name")


def dtype_from_name(name: str) -> pl.DataType:
    """Polars dtype for a manifest schema type name."""
    try:
        return _DTYPE_NAMES[name]
    except KeyError:
        raise ValueError(f"unknown type {name!r}; expected one of {sorted(_DTYPE_NAMES)}") from None
