"""Hypothesis strategies for pricing properties: canonical activity and fixture tables.

Everything the pricing properties draw lives here (window strategies stay in
``strategies_windows.py``, I/O ones in ``strategies_io.py``).

Activity: canonical records of all three settings with valid and invalid values mixed:
admission methods and classifications from ``costing.schema`` plus unknown codes; HRGs from
a small fixture tariff / reference-cost universe plus unknown codes, U-codes, a v3.5 code and
malformed ones; lengths of stay around the trim points; ages around 19; dates around
31 March (the financial-year boundary) plus HES dummy dates.

Tables: a ``TableSpec`` (tariff with/without combined prices, SSE flags, trims, OP and A&E
sheets; reference costs by department; episode trim points; MFF), written to a folder with
the real ``write_edition`` through ``tests/fixtures/tables.py``. Every price is invented.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import strategies as st

from costing.schema import (
    ACTIVITY_SCHEMA,
    ADMISSION_METHODS,
    PATIENT_CLASSIFICATIONS,
)
from costing.tables import TableSet, load_tables
from tests.fixtures.tables import (
    apc_rows,
    write_index,
    write_mff,
    write_parameters,
    write_reference_costs,
    write_tariff,
    write_trimpoints,
)

__all__ = [
    "AE_HRGS",
    "EDITION",
    "MFF_PROVIDERS",
    "PROVIDERS",
    "RC_ONLY_HRGS",
    "TARIFF_HRGS",
    "TREATMENT_FUNCTIONS",
    "TableSpec",
    "activity_frames",
    "activity_records",
    "ae_records",
    "apc_records",
    "op_records",
    "prices",
    "table_specs",
    "to_frame",
    "write_tables",
]

#: The one edition the fixture tables carry (tariff, reference cost, trim points).
EDITION = "2017-18"
MFF_EDITION = "2026-27"
INDEX_NAME = "fixture_index"

TARIFF_HRGS = ("DZ11V", "HN12F", "FZ22Z", "WA14Z", "BZ23Z")
AE_HRGS = ("VB01Z", "VB02Z")
RC_ONLY_HRGS = ("XX01A",)
UNKNOWN_HRGS = ("ZZ99Z",)
U_CODES = ("UZ01Z", "UZ02Z")
V35_HRGS = ("H02",)
MALFORMED_HRGS = ("12345", "DZ1")
PROVIDERS = ("RAA", "RBB", "RCC")
MFF_PROVIDERS = ("RAA", "RBB")  # RCC has no MFF factor
TREATMENT_FUNCTIONS = ("100", "110")
UNKNOWN_TREATMENT_FUNCTIONS = ("999",)
DUMMY_DATES = (dt.date(1800, 1, 1), dt.date(1801, 1, 1))

_APC_HRGS = TARIFF_HRGS + RC_ONLY_HRGS
_RC_APC_DEPTS = ("EL", "EL_XS", "NEL", "NEL_XS", "NES", "DC", "RP", "TOTAL")
_RC_KEYS: tuple[tuple[str, str | None, str], ...] = (
    tuple((d, None, h) for d in _RC_APC_DEPTS for h in _APC_HRGS)
    + tuple(("CL", tf, wf) for tf in TREATMENT_FUNCTIONS
            for wf in ("WF01A", "WF01B", "WF02A", "WF02B"))
    + tuple(("OPROC", tf, h) for tf in TREATMENT_FUNCTIONS for h in ("BZ23Z", "HN12F"))
    + tuple(("AE", f"T0{t}{a}", h) for t in "1234" for a in ("A", "NA") for h in AE_HRGS)
)


# --------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------


def prices(min_pence: int = 100, max_pence: int = 900_000) -> st.SearchStrategy[float]:
    """A positive price in GBP with whole pence."""
    return st.integers(min_pence, max_pence).map(lambda p: p / 100)


def _maybe(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``s`` three times in four, else None (the simplest example has a value)."""
    return st.tuples(st.integers(0, 3), s).map(lambda t: None if t[0] == 3 else t[1])


def _often() -> st.SearchStrategy[bool]:
    """True three times in four (the simplest example is True)."""
    return st.integers(0, 3).map(lambda k: k < 3)


@dataclass(frozen=True)
class TableSpec:
    """Fixture tables as plain data; ``write_tables`` turns them into editions on disk."""

    tariff_apc: tuple[dict[str, Any], ...]
    op_attendance: tuple[dict[str, Any], ...]
    ae: tuple[dict[str, Any], ...]
    reference_costs: tuple[tuple[str, str | None, str, float], ...]
    trimpoints: dict[str, int] = field(default_factory=dict)
    mff: dict[str, float] = field(default_factory=dict)

    def tariff_hrgs(self) -> set[str]:
        """HRGs present in the APC or A&E tariff."""
        return {r["hrg_code"] for r in self.tariff_apc} | {r["hrg_code"] for r in self.ae}


@st.composite
def _tariff_apc_row(draw: st.DrawFn, hrg: str) -> dict[str, Any]:
    nel = draw(_maybe(prices()))
    combined = draw(st.one_of(st.none(), st.none(), prices()))  # mostly without
    sse_flag = draw(st.sampled_from((True, False, None)))
    pct = draw(st.integers(5, 95))
    # the published reduced price is pct% of the NEL price (below it); occasionally a
    # price is given without the flag, which must not be used
    sse_price = round(nel * pct / 100, 2) if nel is not None and draw(_often()) else None
    return {
        "hrg_code": hrg,
        "op_procedure_price": draw(_maybe(prices(1000, 50_000))),
        "combined_dc_el_price": combined,
        "dc_price": draw(_maybe(prices())),
        "el_price": draw(_maybe(prices())),
        "el_trim_days": draw(_maybe(st.integers(0, 10))),
        "nel_price": nel,
        "nel_trim_days": draw(_maybe(st.integers(0, 10))),
        "excess_bed_day_price": draw(_maybe(prices(1000, 80_000))),
        "sse_applicable": sse_flag,
        "sse_percent": float(pct) if sse_price is not None else None,
        "sse_price": sse_price,
    }


@st.composite
def table_specs(draw: st.DrawFn) -> TableSpec:
    """Fixture tables: a random subset of HRGs in the tariff, prices that may be missing
    ('-' in a workbook), combined or separate DC/EL prices, SSE flags, trims; reference
    costs for a random subset of (department, service, currency) keys."""
    apc = tuple(draw(_tariff_apc_row(h)) for h in TARIFF_HRGS if draw(_often()))
    op = tuple(
        {"treatment_function_code": tf, "treatment_function_description": f"tf {tf}",
         "first_single_price": draw(_maybe(prices())), "first_multi_price": draw(_maybe(prices())),
         "followup_single_price": draw(_maybe(prices())),
         "followup_multi_price": draw(_maybe(prices()))}
        for tf in TREATMENT_FUNCTIONS if draw(_often())
    )
    ae = tuple(
        {"hrg_code": h, "hrg_name": h, "type_1_2_price": draw(_maybe(prices())),
         "type_3_price": draw(_maybe(prices()))}
        for h in AE_HRGS if draw(_often())
    )
    keys = [k for k in _RC_KEYS if draw(st.booleans().map(lambda b: not b))] or [_RC_KEYS[0]]
    costs = draw(st.lists(prices(), min_size=len(keys), max_size=len(keys)))
    rc = tuple((d, s, c, p) for (d, s, c), p in zip(keys, costs, strict=True))
    trims = {h: draw(st.integers(0, 10)) for h in _APC_HRGS if draw(_often())}
    mff = {p: draw(st.integers(80, 125)) / 100 for p in MFF_PROVIDERS}
    return TableSpec(apc, op, ae, rc, trims, mff)


def _scaled(value: float | None, k: float) -> float | None:
    return None if value is None else value * k


_TARIFF_PRICE_COLUMNS = (
    "op_procedure_price", "combined_dc_el_price", "dc_price", "el_price", "nel_price",
    "excess_bed_day_price", "sse_price", "first_single_price", "first_multi_price",
    "followup_single_price", "followup_multi_price", "type_1_2_price", "type_3_price",
)


def write_tables(
    root: Path,
    spec: TableSpec,
    *,
    tariff_scale: float = 1.0,
    rc_scale: float = 1.0,
    drop_tariff_hrg: str | None = None,
    with_tariff: bool = True,
    earlier: str | None = None,
    index: dict[str, float] | None = None,
    parameters: dict[str, dict[str, str]] | None = None,
) -> TableSet:
    """Write ``spec`` as editions under ``root`` and load them (verified) as a TableSet.

    Args:
        root: an empty folder.
        spec: the fixture tables.
        tariff_scale: multiply every tariff price (not trims or percentages) by this.
        rc_scale: multiply every reference cost by this.
        drop_tariff_hrg: leave this HRG out of the APC and A&E tariff.
        with_tariff: write no tariff edition at all when False.
        earlier: also write the tariff and reference costs as this (earlier) edition, every
            price 90% of the spec's (so the edition a record is priced at shows).
        index: an inflation index ``INDEX_NAME`` with these values by financial year.
        parameters: policy parameter editions (edition -> parameter -> value as text); None:
            the shipped ones.
    """
    for edition, values in (parameters or {}).items():
        write_parameters(root, edition, values)
    if earlier is not None:
        _write_edition(root, spec, tariff_scale * 0.9, rc_scale * 0.9, drop_tariff_hrg, with_tariff, earlier)
    if index is not None:
        write_index(root, "2025-26", INDEX_NAME, index)
    _write_edition(root, spec, tariff_scale, rc_scale, drop_tariff_hrg, with_tariff, EDITION)
    return load_tables(root)


def _write_edition(root: Path, spec: TableSpec, tariff_scale: float, rc_scale: float,
                   drop_tariff_hrg: str | None, with_tariff: bool, edition: str) -> None:
    """:func:`write_tables` of one edition (trim points and MFF with ``EDITION`` only)."""

    def scale(row: dict[str, Any]) -> dict[str, Any]:
        return {k: (_scaled(v, tariff_scale) if k in _TARIFF_PRICE_COLUMNS else v)
                for k, v in row.items()}

    if with_tariff:
        apc = [scale(r) for r in spec.tariff_apc if r["hrg_code"] != drop_tariff_hrg]
        # an empty APC sheet still needs its columns: apc_rows() of nothing has them
        op = pl.DataFrame([scale(r) for r in spec.op_attendance], schema={
            "treatment_function_code": pl.String, "treatment_function_description": pl.String,
            "first_single_price": pl.Float64, "first_multi_price": pl.Float64,
            "followup_single_price": pl.Float64, "followup_multi_price": pl.Float64})
        ae = pl.DataFrame([scale(r) for r in spec.ae if r["hrg_code"] != drop_tariff_hrg], schema={
            "hrg_code": pl.String, "hrg_name": pl.String, "type_1_2_price": pl.Float64,
            "type_3_price": pl.Float64})
        write_tariff(root, edition, apc_rows(*apc), op_attendance=op, ae=ae)
    write_reference_costs(root, edition, [(d, s, c, p * rc_scale) for d, s, c, p in spec.reference_costs])
    if edition == EDITION:
        if spec.trimpoints:
            write_trimpoints(root, EDITION, spec.trimpoints)
        write_mff(root, MFF_EDITION, spec.mff)


# --------------------------------------------------------------------------------------
# activity
# --------------------------------------------------------------------------------------


@st.composite
def _dates(draw: st.DrawFn, dummy: bool) -> dt.date:
    """A date within three days of 31 March 2017 or 2018 (dummy dates come from _spoil)."""
    base = draw(st.sampled_from((dt.date(2017, 3, 31), dt.date(2018, 3, 31))))
    return base + dt.timedelta(days=draw(st.integers(-3, 3)))


@st.composite
def _hrgs(draw: st.DrawFn, pool: tuple[str, ...]) -> str | None:
    """Mostly an HRG of the fixture universe; one in four unknown, U-code, v3.5, malformed
    or missing."""
    if draw(st.integers(0, 3)) == 3:
        return draw(st.sampled_from(UNKNOWN_HRGS + U_CODES + V35_HRGS + MALFORMED_HRGS + (None,)))
    return draw(st.sampled_from(pool))


@st.composite
def _versions(draw: st.DrawFn, hrg: str | None) -> str | None:
    """The HRG's own version (or null, read as HRG4); one in eight the other version."""
    own = "v3.5" if hrg in V35_HRGS else "HRG4"
    other = "HRG4" if own == "v3.5" else "v3.5"
    k = draw(st.integers(0, 7))
    return other if k == 7 else (None if k == 6 else own)


def _ages() -> st.SearchStrategy[int | None]:
    return st.one_of(st.integers(17, 21), st.integers(0, 100), st.none())


# One invalid value per spoiled record: (column, strategy of the bad value).
_APC_SPOILERS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("admission_method", st.sampled_from(("77", None))),
    ("patient_classification", st.sampled_from(("7", None))),
    ("activity_date", st.sampled_from(DUMMY_DATES)),
    ("discharge_date", st.sampled_from(DUMMY_DATES)),
    ("los", st.sampled_from((-1, 4000))),
    ("hrg_code", st.sampled_from(MALFORMED_HRGS)),
    ("patient_id", st.none()),
)
_OP_SPOILERS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("attended", st.sampled_from(("8", None))),
    ("first_attendance", st.sampled_from(("9", None))),
    ("treatment_function_code", st.none()),
    ("activity_date", st.sampled_from(DUMMY_DATES)),
)
_AE_SPOILERS: tuple[tuple[str, st.SearchStrategy[Any]], ...] = (
    ("department_type", st.sampled_from(("05", None))),
    ("activity_date", st.sampled_from(DUMMY_DATES)),
    ("hrg_code", st.sampled_from(MALFORMED_HRGS)),
)


def _spoil(draw: st.DrawFn, record: dict[str, Any],
           spoilers: tuple[tuple[str, st.SearchStrategy[Any]], ...], dummy_dates: bool) -> None:
    """With probability 1/5, replace one field by an invalid value (in place)."""
    if draw(st.integers(0, 4)) != 4:
        return
    usable = [s for s in spoilers if dummy_dates or s[0] not in ("activity_date", "discharge_date")]
    column, bad = draw(st.sampled_from(usable))
    value = draw(bad)
    if column == "los":
        record["discharge_date"] = record["activity_date"] + dt.timedelta(days=value)
    else:
        record[column] = value


@st.composite
def apc_records(draw: st.DrawFn, *, dummy_dates: bool = True, valid: bool = False) -> dict[str, Any]:
    """An admitted-care episode. ``valid``: no spoiled field and an HRG of the universe."""
    admit = draw(_dates(False))
    los = draw(st.one_of(st.integers(0, 3), st.integers(0, 15)))
    hrg = draw(st.sampled_from(_APC_HRGS) if valid else _hrgs(_APC_HRGS))
    rec = {
        "setting": "apc",
        "patient_id": draw(st.sampled_from(("p1", "p2", "p3"))),
        "provider_code": draw(st.sampled_from(PROVIDERS)),
        "activity_date": admit,
        "discharge_date": admit + dt.timedelta(days=los),
        "admission_method": draw(st.sampled_from(ADMISSION_METHODS)),
        "patient_classification": draw(st.sampled_from(PATIENT_CLASSIFICATIONS)),
        "hrg_code": hrg,
        "hrg_version": "HRG4" if valid else draw(_versions(hrg)),
        "age": draw(st.integers(17, 21) | st.integers(0, 100)) if valid else draw(_ages()),
        "spell_id": draw(_maybe(st.sampled_from(("S1", "S2")))),
        "spell_hrg_code": draw(_maybe(st.sampled_from(_APC_HRGS))),
        "episode_order": draw(_maybe(st.integers(1, 3))),
    }
    if not valid:
        _spoil(draw, rec, _APC_SPOILERS, dummy_dates)
    return rec


@st.composite
def op_records(draw: st.DrawFn, *, dummy_dates: bool = True) -> dict[str, Any]:
    """An outpatient appointment: attended or not, first or follow-up, maybe a procedure."""
    hrg = draw(st.one_of(st.none(), _hrgs(("BZ23Z", "HN12F"))))
    rec = {
        "setting": "op",
        "patient_id": draw(st.sampled_from(("p1", "p2", "p3"))),
        "provider_code": draw(st.sampled_from(PROVIDERS)),
        "activity_date": draw(_dates(False)),
        "hrg_code": hrg,
        "hrg_version": draw(_versions(hrg)),
        "age": draw(_ages()),
        "treatment_function_code": draw(
            st.sampled_from(TREATMENT_FUNCTIONS + UNKNOWN_TREATMENT_FUNCTIONS)),
        "first_attendance": draw(st.sampled_from(("1", "2", "3", "4"))),
        "attended": draw(st.sampled_from(("5", "6", "5", "6", "2", "3", "4", "7"))),
        "multi_professional": draw(st.one_of(st.booleans(), st.none())),
    }
    _spoil(draw, rec, _OP_SPOILERS, dummy_dates)
    return rec


@st.composite
def ae_records(draw: st.DrawFn, *, dummy_dates: bool = True) -> dict[str, Any]:
    """An A&E attendance by department type (01-04; '1' is read as '01')."""
    hrg = draw(_hrgs(AE_HRGS))
    rec = {
        "setting": "ae",
        "patient_id": draw(st.sampled_from(("p1", "p2", "p3"))),
        "provider_code": draw(st.sampled_from(PROVIDERS)),
        "activity_date": draw(_dates(False)),
        "hrg_code": hrg,
        "hrg_version": draw(_versions(hrg)),
        "age": draw(_ages()),
        "department_type": draw(st.sampled_from(("01", "02", "03", "04", "1"))),
        "ae_admitted": draw(st.one_of(st.booleans(), st.none())),
    }
    _spoil(draw, rec, _AE_SPOILERS, dummy_dates)
    return rec


def activity_records(*, dummy_dates: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    """One canonical record of any setting (APC drawn twice as often)."""
    return st.one_of(apc_records(dummy_dates=dummy_dates), apc_records(dummy_dates=dummy_dates),
                     op_records(dummy_dates=dummy_dates), ae_records(dummy_dates=dummy_dates))


def to_frame(records: list[dict[str, Any]], prefix: str = "r") -> pl.DataFrame:
    """Canonical activity frame (full ACTIVITY_SCHEMA) with unique record ids."""
    data = {c: [r.get(c) for r in records] for c in ACTIVITY_SCHEMA}
    data["record_id"] = [f"{prefix}{i}" for i in range(len(records))]
    return pl.DataFrame(data, schema=ACTIVITY_SCHEMA)


def activity_frames(
    *, min_size: int = 0, max_size: int = 30, dummy_dates: bool = True,
    records: st.SearchStrategy[dict[str, Any]] | None = None, prefix: str = "r",
) -> st.SearchStrategy[pl.DataFrame]:
    """A canonical activity frame of mixed settings, valid and invalid records."""
    rec = records if records is not None else activity_records(dummy_dates=dummy_dates)
    return st.lists(rec, min_size=min_size, max_size=max_size).map(lambda r: to_frame(r, prefix))


def messy(df: pl.DataFrame) -> pl.DataFrame:
    """The same records with codes as an extract might hold them: padded with blanks,
    HRG and admission method in lower case, setting in upper case, A&E type unpadded."""
    lower = ("hrg_code", "admission_method")
    pad = [c for c, t in df.schema.items()
           if t == pl.String and c not in ("setting", "department_type", *lower)]
    return df.with_columns(
        *[(pl.lit(" ") + pl.col(c) + pl.lit("  ")).alias(c) for c in pad],
        *[(pl.lit(" ") + pl.col(c).str.to_lowercase() + pl.lit("\t")).alias(c)
          for c in lower],
        pl.col("setting").str.to_uppercase(),
        pl.col("department_type").str.strip_chars_start("0"),
    )


class ScratchFolders:
    """Folders for a test module's fixture editions (one fresh subfolder per write), in
    shared memory where there is some. Loaded frames are held in memory, so the folders are
    removed at the end of the module (removing thousands of small files one example at a
    time doubled the run time)."""

    def __init__(self) -> None:
        shm = Path("/dev/shm")
        self.dir = tempfile.TemporaryDirectory(
            prefix="costing-props-", dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None)
        self.n = 0

    def folder(self) -> Path:
        self.n += 1
        return Path(self.dir.name) / str(self.n)

