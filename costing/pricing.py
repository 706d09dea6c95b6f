"""Pricing: the declared source chain, one small named rule per piece, all lazy polars.

A record is priced by each level of the chain (tariff, reference cost, Total HRG average)
as columns side by side; the first level with a price wins (left joins + coalesce). Each
level also says why it could not price (no edition, HRG version mismatch, HRG not found,
no price for the point of delivery), and the most specific reason becomes the status of a
record no level priced.

Settings, per level:
  APC    tariff: base by POD (combined DC/EL price else separate), short-stay emergency,
         long-stay excess bed days beyond the trim point; reference cost: department by POD
         (NES below the LOS threshold), excess bed days beyond the episode trim point at the
         EL_XS / NEL_XS rate (trim points by :func:`choose_trimpoints`; none from 2018/19, whose
         unit costs include bed days).
  OP     procedure HRG price replaces the attendance price; attendances by treatment function
         x first/follow-up x single/multi professional (tariff) or CL/NCL WF currency x
         service code (reference cost).
  A&E    HRG x department type (tariff: types 1-2, 3); reference cost service T0{type}{A|NA}.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

from costing.activity import (
    DUPLICATE_REASON,
    OP_FIRST,
    OP_FOLLOWUP,
    OP_NOT_ATTENDED,
    OPTIONAL_FIELD_RULES,
    RID,
    Check,
    SpellPlan,
    ae_pod,
    apc_los,
    apc_pod,
    apc_price_date,
    build_spells,
    canonical_frame,
    canonicalise,
    category_expr,
    chunked_like,
    normalise_codes,
    one_of,
    reason_fields,
    row_check_column,
    row_checks,
    spells_appended,
    string_columns,
    strings_to_normalise,
    validation_failures,
    with_invalid_reason,
)
from costing.config import DEFAULT_TRIMPOINTS_SUBSTITUTE, CostingConfig
from costing.errors import ConfigError, EditionNotFoundError, ValidationError
from costing.pairing import NO_PAIRED_EDITION, mff_edition_for, reference_cost_pairing
from costing.schema import DEPARTMENTS, PRICED_COLUMNS, SHORT_STAY_EMERGENCY_METHODS
from costing.status import CostSource, Status
from costing.tables import Edition, TableSet, load_tables

__all__ = ["price", "price_lazy", "TrimpointChoice", "choose_trimpoints"]

_TARIFF_PRIORITY = {  # rank of "why not priced" reasons: the most specific wins
    Status.NO_EDITION_FOR_DATE: 1,
    Status.HRG_VERSION_MISMATCH: 2,
    Status.HRG_NOT_FOUND: 3,
    Status.NO_PRICE_FOR_POD: 4,
    # a reference-cost edition without the record's department (e.g. 2011/12: admitted care only)
    Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION: 5,
    Status.NO_AE_COSTS_IN_EDITION: 6,
    Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION: 7,
}
_RANK_TO_STATUS = {v: k for k, v in _TARIFF_PRIORITY.items()}

_SOURCE_OF_LEVEL = {
    "tariff": CostSource.TARIFF.value,
    "reference_cost": CostSource.REFERENCE_COST.value,
    "total_hrg_average": CostSource.TOTAL_HRG_AVERAGE.value,
}


def _level_status(level: str, position: int) -> pl.Expr:
    """The status of a record priced by ``level`` at ``position`` in the chain."""
    if level == "tariff":
        st = Status.PRICED_TARIFF if position == 0 else Status.PRICED_TARIFF_AFTER_REFERENCE_COST
    elif level == "reference_cost":
        st, wide = ((Status.PRICED_REFERENCE_COST, Status.PRICED_REFERENCE_COST_DEPARTMENT_WIDE)
                    if position == 0 else (Status.PRICED_REFERENCE_COST_FALLBACK,
                                           Status.PRICED_REFERENCE_COST_FALLBACK_DEPARTMENT_WIDE))
        return pl.when(pl.col("_rc_wide")).then(pl.lit(int(wide))).otherwise(pl.lit(int(st)))
    else:
        st = Status.PRICED_LAST_RESORT_AVERAGE
    return pl.lit(int(st))


# --------------------------------------------------------------------------------------
# editions: fixed or dated, per table kind
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Editions:
    """The editions a kind contributes, and the per-record expression choosing one."""

    kind: str
    editions: tuple[Edition, ...]
    fixed: str | None
    required: bool = True  # False: no edition on purpose (see costing.pairing)

    def index_expr(self, date: pl.Expr) -> pl.Expr:
        """Position in ``editions`` of the record's edition (null: none in force)."""
        if self.fixed is not None:
            return pl.lit(0, dtype=pl.Int64)
        out: pl.Expr = pl.lit(None, dtype=pl.Int64)
        for i, e in reversed(list(enumerate(self.editions))):
            m = e.manifest
            out = pl.when(date.is_between(pl.lit(m.valid_from), pl.lit(m.valid_to))).then(
                pl.lit(i, dtype=pl.Int64)).otherwise(out)
        return out

    def name_expr(self, index: pl.Expr) -> pl.Expr:
        """The edition name at ``index``."""
        if self.fixed is not None:
            return pl.lit(self.fixed, dtype=pl.String)
        return _gather([e.edition for e in self.editions], pl.String, index)

    def version_expr(self, index: pl.Expr) -> pl.Expr:
        """The HRG version of the edition at ``index``."""
        return _gather([e.hrg_version for e in self.editions], pl.String, index)

    def concat(self, resource: str) -> pl.LazyFrame | None:
        frames = [
            e.table(resource).lazy().with_columns(pl.lit(e.edition).alias("edition"))
            for e in self.editions
            if resource in e.frames
        ]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _editions(tables: TableSet, kind: str, fixed: str | None) -> _Editions:
    if fixed == NO_PAIRED_EDITION:  # a fixed tariff year without reference costs of its own
        return _Editions(kind, (), None, required=False)
    if fixed is not None:
        return _Editions(kind, (tables.get(kind, fixed),), fixed)
    return _Editions(kind, tuple(tables.get(kind, e) for e in tables.editions(kind)), None)


# --------------------------------------------------------------------------------------
# lookups on integer keys: table strings become small ids once, at plan time
# --------------------------------------------------------------------------------------


def _gather(values: Sequence[object] | pl.Series, dtype: PolarsDataType, index: pl.Expr) -> pl.Expr:
    """``values[index]`` per row (null index -> null): a lookup in a small literal list."""
    series = pl.Series(values, dtype=dtype)
    if series.null_count() == series.len():  # also keeps all-null literals of different
        return pl.lit(None, dtype=dtype)     # dtypes apart (polars CSE would merge them)
    return pl.lit(series).gather(index)


def _ids(expr: pl.Expr, ids: dict[str, int]) -> pl.Expr:
    """The id of a string value (null when not one of ``ids``)."""
    if not ids:
        return pl.lit(None, dtype=pl.Int64)
    return expr.replace_strict(list(ids), list(ids.values()), default=None, return_dtype=pl.Int64)


def _row_of(key: pl.Expr, keys: pl.Series) -> pl.Expr:
    """Position of ``key`` in a table's unique integer ``keys`` (null when absent)."""
    if keys.len() == 0:
        return pl.lit(None, dtype=pl.Int64)
    return key.replace_strict(keys, pl.Series(range(keys.len()), dtype=pl.Int64), default=None,
                              return_dtype=pl.Int64)


def _when_then(pairs: list[tuple[pl.Expr, pl.Expr]], dtype: PolarsDataType) -> pl.Expr:
    """First matching condition's value, else null."""
    out: pl.Expr = pl.lit(None, dtype=dtype)
    for cond, value in reversed(pairs):
        out = pl.when(cond).then(value).otherwise(out)
    return out


@dataclass(frozen=True)
class _Codes:
    """Integer ids of the codes lookups compare: HRG/currency codes and service codes.

    Built from the tables of the run, so every table code has an id; a record code that no
    table holds gets a null id and therefore never matches (as a join would not).
    """

    code: dict[str, int]
    service: dict[str, int]

    @property
    def n_code(self) -> int:
        return len(self.code) + 1

    @property
    def n_service(self) -> int:
        return len(self.service) + 1

    def code_id(self, code: str) -> pl.Expr:
        return pl.lit(self.code.get(code), dtype=pl.Int64)


def _codes(tables: TableSet, kinds: dict[str, _Editions]) -> _Codes:
    codes: set[str] = set()
    services: set[str] = {""}
    for ed in kinds.values():
        for e in ed.editions:
            for frame in e.frames.values():
                for c in ("hrg_code", "currency_code"):
                    if c in frame.columns:
                        codes.update(frame[c].drop_nulls().to_list())
                for c in ("service_code", "treatment_function_code"):
                    if c in frame.columns:
                        services.update(frame[c].drop_nulls().to_list())
    for tp_ed in tables.editions("trimpoints"):
        codes.update(tables.table("trimpoints", tp_ed, "trimpoints")["hrg_code"].drop_nulls().to_list())
    return _Codes({c: i for i, c in enumerate(sorted(codes))},
                  {c: i for i, c in enumerate(sorted(services))})


# --------------------------------------------------------------------------------------
# shared record-level expressions
# --------------------------------------------------------------------------------------


def _hrg_usable(version_of_edition: pl.Expr) -> pl.Expr:
    """The record's HRG may be looked up in an edition of this HRG version."""
    return pl.col("hrg_code").is_not_null() & (pl.col("_hrg_version") == version_of_edition)


def _excess_days(los: pl.Expr, trim: pl.Expr) -> pl.Expr:
    return pl.max_horizontal(los - trim, pl.lit(0)).cast(pl.Int32)


def _reason(edition: pl.Expr, version_ok: pl.Expr, known: pl.Expr,
            absent: pl.Expr | None = None) -> pl.Expr:
    """Why a level did not price: no edition < version mismatch < not found < no POD price;
    ``absent`` (the rank of a department the edition lacks, else null) comes before not found."""
    out = (
        pl.when(edition.is_null()).then(pl.lit(_TARIFF_PRIORITY[Status.NO_EDITION_FOR_DATE]))
        .when(~version_ok).then(pl.lit(_TARIFF_PRIORITY[Status.HRG_VERSION_MISMATCH]))
    )
    if absent is not None:
        out = out.when(absent.is_not_null()).then(absent)
    return (
        out.when(~known).then(pl.lit(_TARIFF_PRIORITY[Status.HRG_NOT_FOUND]))
        .otherwise(pl.lit(_TARIFF_PRIORITY[Status.NO_PRICE_FOR_POD]))
        .cast(pl.Int8)
    )


# --------------------------------------------------------------------------------------
# tariff level
# --------------------------------------------------------------------------------------


_TARIFF_APC_VALUES: dict[str, pl.DataType] = {
    "op_procedure_price": pl.Float64(), "combined_dc_el_price": pl.Float64(),
    "dc_price": pl.Float64(), "el_price": pl.Float64(), "el_trim_days": pl.Int32(),
    "nel_price": pl.Float64(), "nel_trim_days": pl.Int32(), "excess_bed_day_price": pl.Float64(),
    "sse_applicable": pl.Boolean(), "sse_price": pl.Float64(),
}
_TARIFF_OP_VALUES: dict[str, pl.DataType] = {
    "first_single_price": pl.Float64(), "first_multi_price": pl.Float64(),
    "followup_single_price": pl.Float64(), "followup_multi_price": pl.Float64(),
}
_TARIFF_AE_VALUES: dict[str, pl.DataType] = {
    "type_1_2_price": pl.Float64(), "type_3_price": pl.Float64(),
}


def _tariff_table(ed: _Editions, resource: str, key_col: str, ids: dict[str, int]) -> pl.DataFrame | None:
    """A tariff resource over the chain's editions, keyed by (edition, code id)."""
    frames = [e.table(resource).with_columns(pl.lit(i, dtype=pl.Int64).alias("_edition"))
              for i, e in enumerate(ed.editions) if resource in e.frames]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed").with_columns(
        (pl.col("_edition") * (len(ids) + 1) + _ids(pl.col(key_col), ids)).alias("_key")
    ).unique("_key", keep="first", maintain_order=True)


def _tariff_row(ed: _Editions, resource: str, key_col: str, ids: dict[str, int],
                record_id: pl.Expr, edition: pl.Expr, known: str) -> pl.Expr:
    """Row of the record's (edition, code) in a tariff resource; ``record_id`` is the
    record's code id, null where the resource does not apply."""
    table = _tariff_table(ed, resource, key_col, ids)
    if table is None:
        return pl.lit(None, dtype=pl.Int64).alias(f"{known}_row")
    return _row_of(edition * (len(ids) + 1) + record_id, table["_key"]).alias(f"{known}_row")


def _tariff_lookup(ed: _Editions, resource: str, key_col: str, ids: dict[str, int],
                   known: str, values: dict[str, pl.DataType]) -> list[pl.Expr]:
    """A tariff resource's columns for each record, from its row (see :func:`_tariff_row`);
    ``known`` is true where the table has the code (null where not, as a join would)."""
    table = _tariff_table(ed, resource, key_col, ids)
    if table is None:
        return [pl.lit(None, dtype=pl.Boolean).alias(known),
                *[pl.lit(None, dtype=t).alias(f"_t_{c}") for c, t in values.items()]]
    row = pl.col(f"{known}_row")
    return [pl.when(row.is_not_null()).then(pl.lit(True)).alias(known),
            *[_gather(table[c].cast(t), t, row).alias(f"_t_{c}") for c, t in values.items()]]


def _tariff_level(lf: pl.LazyFrame, ed: _Editions, cfg: CostingConfig, codes: _Codes) -> pl.LazyFrame:
    """Adds _tariff_cost, _tariff_base, _tariff_xs_days, _tariff_xs_cost, _tariff_sse,
    _tariff_reason, _tariff_edition, _tariff_version, _tariff_proc."""
    s = pl.col("setting")
    lf = lf.with_columns(ed.name_expr(pl.col(_edition_index("tariff"))).alias("_tariff_edition"),
                         ed.version_expr(pl.col(_edition_index("tariff"))).alias("_tariff_version"))
    ok = _hrg_usable(pl.col("_tariff_version"))
    edi = pl.col(_edition_index("tariff"))
    lookups = [  # resource, key column, ids, the record's code id where it applies, known flag
        ("apc", "hrg_code", codes.code, pl.when(one_of(s, ["apc", "op"]) & ok).then(pl.col("_hrg_i")),
         "_t_apc_known", _TARIFF_APC_VALUES),
        ("op_attendance", "treatment_function_code", codes.service,
         pl.when(s == "op").then(pl.col("_tf_i")), "_t_op_known", _TARIFF_OP_VALUES),
        ("ae", "hrg_code", codes.code, pl.when((s == "ae") & ok).then(pl.col("_hrg_i")),
         "_t_ae_known", _TARIFF_AE_VALUES),
    ]
    lf = lf.with_columns([_tariff_row(ed, r, k, ids, rec, edi, known) for r, k, ids, rec, known, _ in lookups])
    lf = lf.with_columns([e for r, k, ids, _, known, vals in lookups
                          for e in _tariff_lookup(ed, r, k, ids, known, vals)])

    pod = pl.col("_apc_pod")
    combined = pl.col("_t_combined_dc_el_price")
    apc_base = (
        pl.when(pod == "DC").then(pl.coalesce(combined, pl.col("_t_dc_price")))
        .when(pod == "EL").then(pl.coalesce(combined, pl.col("_t_el_price")))
        .when(pod == "NEL").then(pl.col("_t_nel_price"))
    )
    if cfg.rp_source == "tariff_day_case":
        apc_base = apc_base.when(pod == "RP").then(pl.coalesce(combined, pl.col("_t_dc_price")))
    sse_but_age = (  # the short-stay emergency test on everything but the age
        pl.lit(cfg.short_stay_emergency)
        & (pod == "NEL") & one_of(pl.col("admission_method"), SHORT_STAY_EMERGENCY_METHODS)
        & pl.col("_t_sse_applicable").fill_null(False)
        & (pl.col("los_days") <= cfg.sse_max_los)
        & pl.col("_t_sse_price").is_not_null()
    ).fill_null(False)
    sse = (sse_but_age & pl.col(_SSE_AGE)).fill_null(False)
    trim = pl.when(pod == "EL").then(pl.col("_t_el_trim_days")).when(pod == "NEL").then(
        pl.col("_t_nel_trim_days"))
    xs_days = pl.when(
        pl.lit(cfg.long_stay) & ~pl.col("_t_sse") & apc_base.is_not_null()
        & trim.is_not_null() & pl.col("_t_excess_bed_day_price").is_not_null()
    ).then(_excess_days(pl.col("los_days"), trim)).otherwise(pl.lit(0, dtype=pl.Int32))

    multi = pl.col("multi_professional").fill_null(False)
    first = pl.col("first_attendance").is_in(OP_FIRST)
    op_att = (
        pl.when(first & ~multi).then(pl.col("_t_first_single_price"))
        .when(first & multi).then(pl.col("_t_first_multi_price"))
        .when(~first & ~multi).then(pl.col("_t_followup_single_price"))
        .otherwise(pl.col("_t_followup_multi_price"))
    )
    proc = (s == "op") & pl.col("_t_op_procedure_price").is_not_null()
    dt_ = pl.col("department_type")
    ae_price = pl.when(dt_.is_in(["01", "02"])).then(pl.col("_t_type_1_2_price")).when(
        dt_ == "03").then(pl.col("_t_type_3_price"))

    lf = lf.with_columns(sse.alias("_t_sse"), proc.alias("_tariff_proc"),
                         sse_but_age.alias(_NEEDS_AGE))
    base = (
        pl.when(s == "apc").then(pl.when(pl.col("_t_sse")).then(pl.col("_t_sse_price")).otherwise(apc_base))
        .when(s == "op").then(pl.when(pl.col("_tariff_proc")).then(pl.col("_t_op_procedure_price")).otherwise(op_att))
        .when(s == "ae").then(ae_price)
    )
    lf = lf.with_columns(
        base.alias("_tariff_base"),
        pl.when(s == "apc").then(xs_days).otherwise(pl.lit(0, dtype=pl.Int32)).alias("_tariff_xs_days"),
    ).with_columns(
        (pl.col("_tariff_xs_days") * pl.col("_t_excess_bed_day_price").fill_null(0.0)).alias("_tariff_xs_cost"),
        pl.col("_t_sse").alias("_tariff_sse"),
    ).with_columns(
        (pl.col("_tariff_base") + pl.col("_tariff_xs_cost")).alias("_tariff_cost"),
    )
    # OP attendance prices do not use the HRG, so the version does not gate them.
    known = (
        pl.when(s == "ae").then(pl.col("_t_ae_known").fill_null(False))
        .when(s == "op").then(pl.col("_t_op_known").fill_null(False) | pl.col("_t_apc_known").fill_null(False))
        .otherwise(pl.col("_t_apc_known").fill_null(False))
    )
    version_ok = pl.when(s == "op").then(pl.lit(True)).otherwise(
        pl.col("_tariff_version") == pl.col("_hrg_version")).fill_null(False)
    return lf.with_columns(_reason(pl.col("_tariff_edition"), version_ok, known).alias("_tariff_reason"))


# --------------------------------------------------------------------------------------
# reference-cost level (and the Total HRG average)
# --------------------------------------------------------------------------------------


_RC_DEPARTMENTS = {d: i for i, d in enumerate(DEPARTMENTS)}


def _rc_key(edition: pl.Expr, dept: pl.Expr, service: pl.Expr, code: pl.Expr,
            codes: _Codes) -> pl.Expr:
    """One Int64 per (edition, department, service, currency) id tuple."""
    return ((edition * len(_RC_DEPARTMENTS) + dept) * codes.n_service + service) * codes.n_code + code


def _rc_table(ed: _Editions) -> pl.DataFrame:
    """Reference costs of every edition in the chain, keyed like :func:`_rc_key`."""
    frames = [
        e.table("reference_costs").select(
            pl.lit(i, dtype=pl.Int64).alias("edition"), "department_code",
            pl.col("service_code").fill_null(""), "currency_code", "unit_cost")
        for i, e in enumerate(ed.editions) if "reference_costs" in e.frames
    ]
    if not frames and ed.required:
        raise EditionNotFoundError("no reference-cost edition in the tables")
    if not frames:
        return pl.DataFrame(schema={"edition": pl.Int64, "department_code": pl.String,
                                    "service_code": pl.String, "currency_code": pl.String,
                                    "unit_cost": pl.Float64})
    return pl.concat(frames)


def _rc_keyed(rc: pl.DataFrame, codes: _Codes) -> pl.DataFrame:
    """The reference costs of departments pricing asks for, with their :func:`_rc_key`."""
    rc = rc.filter(pl.col("department_code").is_in(list(_RC_DEPARTMENTS)))
    return rc.with_columns(
        _rc_key(pl.col("edition"), _ids(pl.col("department_code"), _RC_DEPARTMENTS),
                _ids(pl.col("service_code"), codes.service), _ids(pl.col("currency_code"), codes.code),
                codes).alias("key"),
    ).unique("key", keep="first", maintain_order=True)


@dataclass(frozen=True)
class TrimpointChoice:
    """Which episode trim points price a reference-cost edition's excess bed days, and why.

    ``basis`` is one of ``own year``, ``configured substitute`` (``trimpoints_edition``),
    ``default substitute`` (:data:`costing.config.DEFAULT_TRIMPOINTS_SUBSTITUTE`) or
    ``not used`` (``reason`` says why: the edition has no excess-bed-day costs, or long
    stay is off); ``trimpoints_edition`` is None when not used.
    """

    reference_cost_edition: str
    trimpoints_edition: str | None
    basis: str
    reason: str = ""


def choose_trimpoints(tables: TableSet, rc_edition: Edition, cfg: CostingConfig) -> TrimpointChoice:
    """The trim-point edition for a reference-cost edition: its own year's when held, else the
    configured ``trimpoints_edition``, else the declared default substitute; never silently
    the latest. An edition without excess-bed-day costs (2018/19 on) uses none.

    Raises:
        ConfigError: the edition needs trim points, none of its year is held and the
            substitute (configured or default) is not in the tables.
    """
    ed = rc_edition.edition
    if not cfg.long_stay:
        return TrimpointChoice(ed, None, "not used", "long_stay is off")
    depts = rc_edition.table("reference_costs")["department_code"]
    if not depts.is_in(["EL_XS", "NEL_XS"]).any():
        return TrimpointChoice(ed, None, "not used",
                               "no excess-bed-day costs: bed days are in the unit costs")
    held = tables.editions("trimpoints")
    if ed in held:
        return TrimpointChoice(ed, ed, "own year")
    substitute, basis = ((cfg.trimpoints_edition, "configured substitute") if cfg.trimpoints_edition
                         else (DEFAULT_TRIMPOINTS_SUBSTITUTE, "default substitute"))
    if substitute not in held:
        raise ConfigError(
            f"reference costs {ed} need episode trim points for excess bed days; none of {ed} "
            f"is held and the {basis} {substitute} is not in the tables (trim points held: "
            f"{', '.join(held) or 'none'}). Set trimpoints_edition to one of those, import "
            "trim points of that year, or set long_stay = false.")
    return TrimpointChoice(ed, substitute, basis)


def _trim_table(tables: TableSet, rc: _Editions, cfg: CostingConfig, codes: _Codes) -> pl.DataFrame:
    """(reference-cost edition, HRG) key -> episode trim point, by :func:`choose_trimpoints`."""
    frames = []
    for i, e in enumerate(rc.editions):
        tp_ed = choose_trimpoints(tables, e, cfg).trimpoints_edition
        if tp_ed is None:
            continue
        t = tables.table("trimpoints", tp_ed, "trimpoints")
        frames.append(t.select(
            (pl.lit(i, dtype=pl.Int64) * codes.n_code + _ids(pl.col("hrg_code"), codes.code)).alias("key"),
            pl.col("trim_days").cast(pl.Int32),
        ))
    if not frames:
        return pl.DataFrame(schema={"key": pl.Int64, "trim_days": pl.Int32})
    return pl.concat(frames).unique("key", keep="first", maintain_order=True)


def _ae_service(codes: _Codes) -> pl.Expr:
    """Service id of "T" + department type + "A" (admitted) / "NA" for A&E records."""
    admitted = pl.col("ae_admitted").fill_null(False)
    pairs = []
    for svc, i in codes.service.items():
        if svc.startswith("T") and svc.endswith("NA"):
            pairs.append(((pl.col("department_type") == svc[1:-2]) & ~admitted, pl.lit(i, dtype=pl.Int64)))
        if svc.startswith("T") and svc.endswith("A"):
            pairs.append(((pl.col("department_type") == svc[1:-1]) & admitted, pl.lit(i, dtype=pl.Int64)))
    return _when_then(pairs, pl.Int64)


def _op_currency(codes: _Codes) -> pl.Expr:
    """Code id of the outpatient attendance currency WF01A/WF01B/WF02A/WF02B."""
    multi = pl.col("multi_professional").fill_null(False)
    first = one_of(pl.col("first_attendance"), OP_FIRST).fill_null(False)
    return (
        pl.when(multi & first).then(codes.code_id("WF02B"))
        .when(multi).then(codes.code_id("WF02A"))
        .when(first).then(codes.code_id("WF01B"))
        .otherwise(codes.code_id("WF01A"))
    )


def _absent_department(all_rc: pl.DataFrame, edition: pl.Expr, cfg: CostingConfig,
                       n_editions: int) -> pl.Expr:
    """The reason rank of a department the record's reference-cost edition lacks altogether
    (outpatient attendances, A&E, regular attenders), else null."""
    dept = pl.col("department_code")
    held = all_rc.group_by("edition").agg(
        ((dept == cfg.op_reference_department) & pl.col("currency_code").str.starts_with("WF"))
        .any().alias("op"),
        (dept == "AE").any().alias("ae"),
        (dept == "RP").any().alias("rp"),
    )
    flags = {row["edition"]: row for row in held.iter_rows(named=True)}

    def has(what: str) -> pl.Expr:
        return _gather([bool(flags.get(i, {}).get(what)) for i in range(n_editions)], pl.Boolean, edition)

    s = pl.col("setting")
    rank = _TARIFF_PRIORITY
    return (
        pl.when((s == "op") & ~has("op")).then(pl.lit(rank[Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION]))
        .when((s == "ae") & ~has("ae")).then(pl.lit(rank[Status.NO_AE_COSTS_IN_EDITION]))
        .when((s == "apc") & (pl.col("_apc_pod") == "RP") & ~has("rp"))
        .then(pl.lit(rank[Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION]))
    )


def _rc_level(lf: pl.LazyFrame, ed: _Editions, tables: TableSet, cfg: CostingConfig,
              with_total: bool, codes: _Codes) -> pl.LazyFrame:
    """Adds _rc_cost, _rc_base, _rc_xs_days, _rc_xs_cost, _rc_reason, _rc_edition,
    _rc_version, _rc_proc (and _total_cost, _total_reason if asked).

    Every lookup is an integer key (edition, department, service, currency ids) into the
    reference-cost table, so no string key is built or joined per record.
    """
    s = pl.col("setting")
    lf = lf.with_columns(ed.name_expr(pl.col(_edition_index("reference_cost"))).alias("_rc_edition"),
                         ed.version_expr(pl.col(_edition_index("reference_cost"))).alias("_rc_version"))
    ok = _hrg_usable(pl.col("_rc_version"))
    pod = pl.col("_apc_pod")
    los = pl.col("los_days")
    edi = pl.col(_edition_index("reference_cost"))
    hrg = pl.col("_hrg_i")
    dep = {d: pl.lit(i, dtype=pl.Int64) for d, i in _RC_DEPARTMENTS.items()}
    no_service = pl.lit(codes.service[""], dtype=pl.Int64)

    # First lookup: the department price of the HRG (APC by POD, OP procedure, A&E).
    dept1 = (
        pl.when(s == "apc").then(
            pl.when(pod == "NEL").then(pl.when(los < cfg.nes_los_threshold).then(dep["NES"]).otherwise(dep["NEL"]))
            .when(pod == "EL").then(dep["EL"]).when(pod == "DC").then(dep["DC"]).when(pod == "RP").then(dep["RP"]))
        .when(s == "op").then(dep["OPROC"])
        .when(s == "ae").then(dep["AE"])
    )
    service1 = (
        pl.when(s == "op").then(pl.col("_tf_i"))
        .when(s == "ae").then(_ae_service(codes))
        .otherwise(no_service)
    )
    # Second lookup: excess bed days (APC) or the attendance currency (OP).
    dept2 = pl.when(s == "apc").then(
        pl.when(pod == "EL").then(dep["EL_XS"]).when((pod == "NEL") & (los >= cfg.nes_los_threshold)).then(dep["NEL_XS"])
    ).when(s == "op").then(dep[cfg.op_reference_department])
    service2 = pl.when(s == "op").then(pl.col("_tf_i")).otherwise(no_service)
    code2 = pl.when(s == "op").then(_op_currency(codes)).otherwise(hrg)
    gate2 = pl.when(s == "op").then(pl.lit(True)).otherwise(ok & pl.lit(cfg.long_stay))

    all_rc = _rc_table(ed)
    rc = _rc_keyed(all_rc, codes)
    known_keys = all_rc.filter(~pl.col("department_code").is_in(["CL", "NCL", "TOTAL"])).select(
        (pl.col("edition") * codes.n_code + _ids(pl.col("currency_code"), codes.code)).alias("k")
    ).unique()["k"]
    trim = _trim_table(tables, ed, cfg, codes)
    unit_cost = rc["unit_cost"]

    def exact(gate: pl.Expr, dept: pl.Expr, service: pl.Expr, code: pl.Expr) -> pl.Expr:
        key = pl.when(gate).then(_rc_key(edi, dept, service, code, codes))
        return _gather(unit_cost, pl.Float64, _row_of(key, rc["key"]))

    # The National Cost Collection (2018/19 on) has no treatment-function or A&E-type split:
    # where no service-specific row exists, the department-wide row applies. Only editions
    # with such rows need the second lookup, so the others do not pay for it.
    department_wide = all_rc.filter(
        pl.col("department_code").is_in(["CL", "NCL", "OPROC", "AE"]) & (pl.col("service_code") == "")
    ).height > 0

    def lookup(gate: pl.Expr, dept: pl.Expr, service: pl.Expr, code: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """The price, and whether it came from the department-wide row."""
        own = exact(gate, dept, service, code)
        if not department_wide:
            return own, pl.lit(False)
        wide = exact(gate & (service != no_service).fill_null(True), dept, no_service, code)
        return pl.coalesce(own, wide), own.is_null() & wide.is_not_null()

    p1, p1_wide = lookup(ok, dept1, service1, hrg)
    p2, p2_wide = lookup(gate2, dept2, service2, code2)
    hrg_key = edi * codes.n_code + hrg
    lf = lf.with_columns(
        p1.alias("_rc_p1"), p1_wide.alias("_rc_p1_wide"),
        p2.alias("_rc_p2"), p2_wide.alias("_rc_p2_wide"),
        _row_of(hrg_key, known_keys).is_not_null().alias("_rc_known"),
        _gather(trim["trim_days"], pl.Int32, _row_of(pl.when(s == "apc").then(hrg_key), trim["key"]))
        .alias("_rc_trim"),
    )

    proc = (s == "op") & pl.col("_rc_p1").is_not_null()
    xs_days = pl.when(
        (s == "apc") & pl.lit(cfg.long_stay) & pl.col("_rc_p1").is_not_null()
        & pl.col("_rc_p2").is_not_null() & pl.col("_rc_trim").is_not_null()
    ).then(_excess_days(los, pl.col("_rc_trim"))).otherwise(pl.lit(0, dtype=pl.Int32))
    base = (
        pl.when(s == "op").then(pl.when(proc).then(pl.col("_rc_p1")).otherwise(pl.col("_rc_p2")))
        .otherwise(pl.col("_rc_p1"))
    )
    wide = (pl.when(s == "op").then(pl.when(proc).then(pl.col("_rc_p1_wide")).otherwise(pl.col("_rc_p2_wide")))
            .when(s == "ae").then(pl.col("_rc_p1_wide")).otherwise(pl.lit(False)))
    lf = lf.with_columns(
        proc.alias("_rc_proc"), base.alias("_rc_base"), xs_days.alias("_rc_xs_days"),
        wide.fill_null(False).alias("_rc_wide"),
    ).with_columns(
        (pl.col("_rc_xs_days") * pl.col("_rc_p2").fill_null(0.0)).alias("_rc_xs_cost"),
    ).with_columns((pl.col("_rc_base") + pl.col("_rc_xs_cost")).alias("_rc_cost"))

    known = pl.when(s == "op").then(pl.lit(True)).otherwise(pl.col("_rc_known"))
    version_ok = pl.when(s == "op").then(pl.lit(True)).otherwise(
        pl.col("_rc_version") == pl.col("_hrg_version")).fill_null(False)
    lf = lf.with_columns(_reason(pl.col("_rc_edition"), version_ok, known,
                                 _absent_department(all_rc, edi, cfg, len(ed.editions))).alias("_rc_reason"))

    if with_total:
        lf = lf.with_columns(lookup(ok, dep["TOTAL"], no_service, hrg)[0].alias("_total_cost"))
        hrg_version_ok = (pl.col("_rc_version") == pl.col("_hrg_version")).fill_null(False)
        lf = lf.with_columns(
            _reason(pl.col("_rc_edition"), hrg_version_ok, pl.col("_rc_known")).alias("_total_reason"))
    return lf


# --------------------------------------------------------------------------------------
# putting it together
# --------------------------------------------------------------------------------------

_LEVEL_PREFIX = {"tariff": "_tariff", "reference_cost": "_rc", "total_hrg_average": "_total"}


def _components(level: str) -> dict[str, pl.Expr]:
    """The price components a level produced, by component name."""
    if level == "tariff":
        p = "_tariff"
        sse = pl.col("_tariff_sse")
    elif level == "reference_cost":
        p = "_rc"
        sse = pl.lit(False)
    else:  # total_hrg_average: one all-department price per HRG, bed days already inside
        return {
            "cost": pl.col("_total_cost"), "base": pl.col("_total_cost"),
            "xs_days": pl.lit(0, dtype=pl.Int32), "xs_cost": pl.lit(0.0), "sse": pl.lit(False),
            "proc": pl.lit(False), "edition": pl.col("_rc_edition"),
            "version": pl.col("_rc_version"),
        }
    return {
        "cost": pl.col(f"{p}_cost"), "base": pl.col(f"{p}_base"),
        "xs_days": pl.col(f"{p}_xs_days"), "xs_cost": pl.col(f"{p}_xs_cost"), "sse": sse,
        "proc": pl.col(f"{p}_proc"), "edition": pl.col(f"{p}_edition"),
        "version": pl.col(f"{p}_version"),
    }


def _unpriced_reason(chain: tuple[str, ...]) -> pl.Expr:
    """Why no level priced: the most specific reason of any level, except that a reference-
    cost fallback after the tariff with no edition (a tariff year without reference costs of
    its own, see costing.pairing) says so: the fix is to name a reference-cost edition."""
    reasons = [pl.col(f"{_LEVEL_PREFIX[lv]}_reason") for lv in chain]
    no_edition = pl.lit(_TARIFF_PRIORITY[Status.NO_EDITION_FOR_DATE], dtype=pl.Int8)
    fallbacks = [pl.col(f"{_LEVEL_PREFIX[lv]}_reason") == no_edition
                 for pos, lv in enumerate(chain) if pos > 0 and lv == "reference_cost"
                 and "tariff" in chain[:pos]]
    fallback_without_edition = pl.any_horizontal(fallbacks) if fallbacks else pl.lit(False)
    return pl.when(fallback_without_edition).then(no_edition).otherwise(pl.max_horizontal(reasons))


def _chain_columns(chain: tuple[str, ...]) -> list[pl.Expr]:
    """cost, status, level and components from the first level of the chain with a price."""
    comps = [_components(lv) for lv in chain]
    won = [c["cost"].is_not_null() for c in comps]

    def first_winning(values: list[pl.Expr], dtype: pl.DataType) -> pl.Expr:
        out: pl.Expr = pl.lit(None, dtype=dtype)
        for w, v in reversed(list(zip(won, values, strict=True))):
            out = pl.when(w).then(v).otherwise(out)
        return out.cast(dtype)

    def pick(name: str, dtype: pl.DataType) -> pl.Expr:
        return first_winning([c[name] for c in comps], dtype)

    status = first_winning([_level_status(lv, pos) for pos, lv in enumerate(chain)], pl.Int16())
    best = _unpriced_reason(chain)
    unpriced = best.replace_strict(
        list(_RANK_TO_STATUS), [int(v) for v in _RANK_TO_STATUS.values()], return_dtype=pl.Int16)
    return [
        pick("cost", pl.Float64()).alias("_chain_cost"),
        pick("base", pl.Float64()).alias("base_price"),
        pick("xs_days", pl.Int32()).alias("excess_bed_days"),
        pick("xs_cost", pl.Float64()).alias("excess_bed_day_cost"),
        pick("sse", pl.Boolean()).alias("short_stay_applied"),
        pick("proc", pl.Boolean()).alias("_proc"),
        pick("version", pl.String()).alias("hrg_version_used"),
        pick("edition", pl.String()).alias("_price_edition"),
        first_winning([pl.lit(lv) for lv in chain], pl.String()).alias("_level"),
        pl.coalesce(status, unpriced).alias("_chain_status"),
    ]


def _status_name(status: pl.Expr) -> pl.Expr:
    """The stable name of a status code (as ``status_name_expr``, by position, not hashing)."""
    names: list[str | None] = [None] * (max(Status) + 1)
    for st in Status:
        names[st.value] = st.label
    return _gather(names, pl.String, status.cast(pl.Int64))


def _resolve_tables(tables: TableSet | None) -> TableSet:
    return load_tables() if tables is None else tables


def _mff_frame(tables: TableSet, cfg: CostingConfig, tariff: _Editions) -> pl.LazyFrame:
    """Provider factors per tariff edition: the MFF of the tariff's year by default
    (:func:`costing.pairing.mff_edition_for`)."""
    if not tables.editions("mff"):
        raise ConfigError("mff is on but the tables hold no MFF edition; import one or turn mff off")
    return pl.concat([
        tables.table("mff", str(mff_edition_for(tables, cfg, e.edition)), "mff").lazy().select(
            pl.col("provider_code").alias("_mff_provider"), pl.lit(e.edition).alias("_tariff_edition"),
            pl.col("mff_factor").alias("_mff"))
        for e in tariff.editions
    ] or [pl.LazyFrame(schema={"_mff_provider": pl.String, "_tariff_edition": pl.String, "_mff": pl.Float64})])


def _index_frame(tables: TableSet, cfg: CostingConfig) -> pl.LazyFrame:
    if cfg.index is None or cfg.price_base is None:
        raise ConfigError("price_base and index go together: give both or neither")
    series = tables.index_series(cfg.index)
    base = series.filter(pl.col("financial_year") == cfg.price_base)
    if base.height == 0:
        raise ConfigError(
            f"price_base {cfg.price_base} is not in index {cfg.index!r} "
            f"(it covers {series['financial_year'].min()!s} to {series['financial_year'].max()!s})")
    base_value = base["value"][0]
    return series.lazy().select(
        pl.col("financial_year").alias("_price_edition"),
        (pl.lit(base_value) / pl.col("value")).alias("_inflation"),
    )


# Columns whose values pricing reads, besides the per-row quantities below: each distinct
# combination of them (a "pricing key") is priced once and the result joined back to its
# rows. Codes are few and repeat (docs/performance.md gives the key counts), so the
# lookups, rules and status texts run on the distinct keys, not on every record.
_KEY_CODES: tuple[str, ...] = (
    "setting", "hrg_code", "hrg_version", "admission_method", "patient_classification",
    "treatment_function_code", "first_attendance", "attended", "multi_professional",
    "department_type", "ae_admitted", "invalid_reason",
)
# Row-level quantities the key carries (cheap integer arithmetic on every row).
_SSE_AGE = "_sse_age_ok"
_NEEDS_AGE = "_t_sse_needs_age"  # the short-stay emergency test reads the record's age
_HASH = ("_k1", "_k2")
# Columns normalised per row although they are key codes: spells and row checks read them.
_ROW_NORMALISED = ("setting", "provider_code")


def _row_check_columns(cfg: CostingConfig, key_columns: Collection[str]) -> list[str]:
    """The per-row Booleans of the checks that read ids and dates (:func:`row_checks`)."""
    return [row_check_column(i) for i, _ in row_checks(cfg, key_columns)]


def _key_columns(cfg: CostingConfig) -> tuple[str, ...]:
    return _KEY_CODES + (("provider_code",) if cfg.mff else ())


def _per_key_codes(cfg: CostingConfig) -> list[str]:
    """The key codes normalised once per distinct key, not per row (see :func:`canonicalise`)."""
    return [c for c in _key_columns(cfg) if c not in _ROW_NORMALISED]


def prepare(activity: pl.DataFrame | pl.LazyFrame, cfg: CostingConfig,
            raw: Sequence[str] = ()) -> pl.LazyFrame:
    """Canonical activity with spells built when asked (validation reasons are added later).
    String columns in ``raw`` are left un-normalised (see :func:`canonicalise`)."""
    lf = canonicalise(activity, raw=raw)
    if cfg.resolved_apc_unit() == "spell":
        # spells read the canonical frame twice (APC keys, then every record); not cached:
        # a cache holds the whole input, and a streamed input must not be held
        lf = build_spells(lf, cfg)
    else:
        lf = lf.with_columns(pl.lit(1, dtype=pl.Int32).alias("n_episodes"),
                             pl.lit(None, dtype=pl.String).alias("spell_key"))
    return lf


# Start values and odd multipliers of the two folds of the key hash (mixing constants, not
# prices): each column is hashed once and folded twice into two 64-bit values.
_FOLD = ((0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F), (0x165667B19E3779F9, 0xD6E8FEB86659FD93))


def _key_hash(values: Sequence[pl.Expr]) -> list[pl.Expr]:
    """Two 64-bit hashes of a row's pricing key (its ``values``).

    Each value is hashed once (polars' 64-bit hash, a seed per column) and the column
    hashes are folded two ways. Two distinct keys share both folds only if some column
    holds two distinct values with the same 64-bit hash (about d^2 / 2^65 for a column of
    d distinct values: below 1e-9 even for 100,000) or both folds coincide by chance
    (about n^2 / 2^129 for n keys).
    """
    hashes = [v.hash(seed=i) for i, v in enumerate(values)]
    out = []
    for name, (mul, add) in zip(_HASH, _FOLD, strict=True):
        h: pl.Expr = pl.lit(add, dtype=pl.UInt64)
        for x in hashes:
            h = (h ^ x) * pl.lit(mul, dtype=pl.UInt64)
            mul = (mul * 0x2545F4914F6CDD1D) % (1 << 64) | 1  # a different odd multiplier per column
        out.append(h.alias(name))
    return out


def _pack(parts: Sequence[tuple[pl.Expr, int]]) -> list[pl.Expr]:
    """Small non-negative integers (each below its radix) packed exactly, mixed radix, into
    as few Int64 values as fit: one hash instead of one per quantity."""
    out: list[pl.Expr] = []
    acc: pl.Expr | None = None
    size = 1
    for expr, radix in parts:
        if acc is not None and size * radix >= 1 << 63:
            out.append(acc)
            acc, size = None, 1
        acc = expr.cast(pl.Int64) if acc is None else acc * radix + expr.cast(pl.Int64)
        size *= radix
    return out if acc is None else [*out, acc]


def _carried(cfg: CostingConfig, eds: dict[str, _Editions], key_cols: Sequence[str]) -> list[str]:
    """The per-row quantities a pricing key carries besides its codes (los_days last: it
    is also an output column, taken from the rows)."""
    return [*map(_edition_index, eds), _SSE_AGE, *_row_check_columns(cfg, key_cols), "los_days"]


def _edition_index(kind: str) -> str:
    """The per-row column holding a table kind's edition position (``_tariff_ed_i``...)."""
    return f"{_LEVEL_PREFIX[kind]}_ed_i"


def _row_key(cfg: CostingConfig, eds: dict[str, _Editions], present: Collection[str],
             key_cols: Sequence[str]) -> list[pl.Expr]:
    """What a row's pricing key is hashed from, lazily: its key codes (a column absent from
    the input is null on every row and adds nothing) and its per-row quantities, packed."""
    parts: list[tuple[pl.Expr, int]] = [
        ((pl.col("los_days").cast(pl.Int64) + (1 << 31)).fill_null(1 << 32), (1 << 32) + 1),
        (pl.col(_SSE_AGE).cast(pl.Int64).fill_null(2), 3),
        *[(pl.col(c).cast(pl.Int64), 2) for c in _row_check_columns(cfg, key_cols)],
    ]
    for kind, ed in eds.items():
        if ed.fixed is None:
            n = len(ed.editions)
            parts.append((pl.col(_edition_index(kind)).fill_null(n), n + 1))
    return [*[pl.col(c) for c in key_cols if c in present], *_pack(parts)]


def _row_stage(cfg: CostingConfig, eds: dict[str, _Editions], key_columns: Sequence[str],
               frame: pl.DataFrame | None = None) -> list[pl.Expr]:
    """Per-row quantities pricing needs besides the key codes: LOS, each kind's edition
    (by the record's date), short-stay age eligibility and the row-level checks. A check
    that its column's statistics in ``frame`` (the rows, in memory) prove never fails (no
    null where a value is required, no date as early as a dummy date) is false on every
    row: a constant, not evaluated per row."""
    s = pl.col("setting")
    los = apc_los(cfg)  # reference costs are per episode: an episode's own length
    price_date = pl.when(s == "apc").then(apc_price_date(cfg)).otherwise(pl.col("activity_date"))
    # age matters only to the short-stay emergency tariff (admitted patients, a stay short
    # enough): elsewhere the flag is null, so age does not split keys that price the same
    short = (s == "apc") & (los <= cfg.sse_max_los)
    sse_age = (pl.when(short).then(pl.col("age") >= cfg.sse_min_age)
               if "tariff" in eds and cfg.short_stay_emergency else pl.lit(None, dtype=pl.Boolean))
    out = [
        pl.when(s == "apc").then(los).alias("los_days"),
        sse_age.alias(_SSE_AGE),
        *[(pl.lit(False) if _never_fails(c, frame) else c.fails.fill_null(False)).alias(row_check_column(i))
          for i, c in row_checks(cfg, key_columns)],
    ]
    out += [ed.index_expr(price_date).alias(_edition_index(kind)) for kind, ed in eds.items()]
    return out


def _never_fails(check: Check, frame: pl.DataFrame | None) -> bool:
    """Whether ``check`` provably fails on no row of ``frame``, by its column's statistics."""
    return (frame is not None and check.never_if is not None and check.column in frame.columns
            and check.never_if(frame.get_column(check.column)))


def _constant_flag(flag: pl.Series) -> bool:
    """Whether a Boolean column holds one value (or null) on every row: by counts, several
    times faster than ``n_unique``."""
    nulls = flag.null_count()
    return nulls == flag.len() or (nulls == 0 and (not flag.any() or flag.all()))


def _constant_code(code: pl.Series) -> bool:
    """Whether a key code column holds one value on every row (e.g. one HRG version, or null
    throughout): by its null count, then a comparison with its first value, of a few spread
    values before all (several times cheaper than hashing it, twice, with the rest of the key)."""
    nulls = code.null_count()
    if nulls == code.len():
        return True
    # a varying code almost always differs already among a few values spread over the column
    return (nulls == 0 and bool((code.gather_every(max(code.len() // 64, 1)) == code[0]).all())
            and bool((code == code[0]).all()))


@dataclass(frozen=True)
class _Keyed:
    """Activity with its per-row pricing quantities and key hash, ready to price by key."""

    rows: pl.LazyFrame
    input_cols: list[str]
    key_cols: tuple[str, ...]
    carried: list[str]
    ts: TableSet
    cfg: CostingConfig
    chain: tuple[str, ...]
    eds: dict[str, _Editions]
    present: frozenset[str]  # the input's columns: an absent key column is null throughout
    spells: SpellPlan | None = None  # in memory: how the priced rows become one row per spell

    def fixed_indices(self) -> dict[str, pl.Expr]:
        """The edition index columns of fixed editions, each the same literal on every row."""
        return {_edition_index(kind): ed.index_expr(pl.lit(None, dtype=pl.Date)).alias(_edition_index(kind))
                for kind, ed in self.eds.items() if ed.fixed is not None}

    def hashed_columns(self, rows: pl.DataFrame) -> list[str]:
        """What each row's key is hashed from, in memory: its key codes and the per-row
        quantities that vary. A fixed edition's index, and a code or flag (age, row check)
        that is the same on every row, are the same for every key and are left out."""
        fixed = self.fixed_indices()
        flags = {_SSE_AGE, *_row_check_columns(self.cfg, self.key_cols)}
        return [*(c for c in self.key_cols if c in self.present and not _constant_code(rows[c])),
                *(c for c in self.carried if c not in fixed and not (c in flags and _constant_flag(rows[c])))]

    def key_columns(self) -> pl.LazyFrame:
        """Each row's key hash, key codes and per-row quantities."""
        return self.rows.select(*_HASH, *self.key_cols, *self.carried)

    def price_keys(self, keys: pl.DataFrame) -> pl.LazyFrame:
        """The priced keys (see :func:`_price_keys`)."""
        return _price_keys(keys.lazy(), self.ts, self.cfg, self.chain, self.eds, self.key_cols)

    def priced_keys(self, keys: pl.DataFrame) -> pl.DataFrame:
        """:meth:`price_keys`, collected."""
        return self.price_keys(keys).collect()

    def join(self, rows: pl.LazyFrame, keys: pl.DataFrame) -> pl.LazyFrame:
        """Price ``keys`` (from :func:`_streamed_keys`) and join the prices back to ``rows``."""
        priced = self.price_keys(keys)
        # The first 64 bits alone identify a key whenever they are unique among this run's
        # keys (all but certainly: a single join column is several times faster); else
        # the join uses all 128.
        on = [_HASH[0]] if keys[_HASH[0]].n_unique() == keys.height else list(_HASH)
        out = rows.drop([*self.key_cols, *self.carried[:-1], *_HASH[len(on):]]).join(
            priced.drop("los_days", *_HASH[len(on):]), on=on, how="left", maintain_order="left")
        out_cols = self.input_cols + ["spell_key"] + list(PRICED_COLUMNS)
        # Output order is input order (a spell at its first episode's place): spells are
        # built by a left join that keeps the left order, and so is the join back of keys.
        return out.select(
            [pl.col(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else pl.col(c) for c in out_cols])


def _keep_originals(activity: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame | pl.LazyFrame:
    """Input columns named like an output column (cost, status, pod, ...) kept as
    ``<name>_original``, never silently replaced by the priced value."""
    names = activity.collect_schema().names()
    clash = {c: f"{c}_original" for c in names if c in PRICED_COLUMNS and c != "n_episodes"}
    return activity.rename(clash) if clash else activity


def _keyed(activity: pl.DataFrame | pl.LazyFrame, tables: TableSet | None,
           config: CostingConfig | None, eager: bool = False,
           normalise: Collection[str] | None = None) -> _Keyed:
    """The per-row stage. With ``eager``, the canonical frame and its spells are built in
    memory (:func:`canonical_frame`, :func:`spells_appended`) and the key hash is left
    to :func:`_row_hash`; lazily, the key hash is an expression (:func:`_key_hash`).
    ``normalise`` names the String columns normalised per row in memory, when a scan has
    already found them (:func:`strings_to_normalise`); None: :func:`canonical_frame` scans."""
    cfg = config or CostingConfig()
    activity = _keep_originals(activity)
    ts = _resolve_tables(tables)
    chain = cfg.resolved_chain()
    if cfg.strict:
        failures = validation_failures(prepare(activity, cfg), cfg)
        if failures.height:
            raise ValidationError("activity", failures)
    eds: dict[str, _Editions] = {}
    if "tariff" in chain:
        eds["tariff"] = _editions(ts, "tariff", cfg.tariff_edition)
    if "reference_cost" in chain or "total_hrg_average" in chain:
        eds["reference_cost"] = _editions(ts, "reference_cost", reference_cost_pairing(ts, cfg))
    key_cols = _key_columns(cfg)
    present = frozenset(activity.collect_schema().names())
    raw = _per_key_codes(cfg)
    spells: SpellPlan | None = None
    if eager:
        frame = activity.collect() if isinstance(activity, pl.LazyFrame) else activity
        if normalise is not None:  # every other String column is kept as read
            raw = [*raw, *(c for c in string_columns(frame, raw) if c not in normalise)]
        df = canonical_frame(frame, raw=raw)
        if cfg.resolved_apc_unit() == "spell":
            df, spells = spells_appended(df, cfg)
        else:
            df = df.with_columns(pl.lit(1, dtype=pl.Int32).alias("n_episodes"),
                                 pl.lit(None, dtype=pl.String).alias("spell_key"))
        rows = df.lazy()
    else:
        rows = prepare(activity, cfg, raw=raw)
    input_cols = [c for c in rows.collect_schema().names() if c not in ("n_episodes", "spell_key", RID)]
    rows = rows.with_columns(_row_stage(cfg, eds, key_cols, df if eager else None))
    carried = _carried(cfg, eds, key_cols)
    if not eager:
        rows = rows.with_columns(_key_hash(_row_key(cfg, eds, present, key_cols)))
    return _Keyed(rows, input_cols, key_cols, carried, ts, cfg, chain, eds, present, spells)


def price_lazy(
    activity: pl.DataFrame | pl.LazyFrame,
    tables: TableSet | None = None,
    config: CostingConfig | None = None,
) -> pl.LazyFrame:
    """Price activity lazily; see :func:`price`. Strict mode validates eagerly first.

    Each record's pricing key (its codes, LOS, editions, age eligibility and row checks)
    is hashed; the distinct keys are priced by the rules and joined back, so the work per
    record is a few integer operations and one join. The distinct keys are collected when
    this is called (one streaming pass over ``activity``, batch by batch: memory bounded by
    the batch and the number of keys); the records themselves are read again, lazily, when
    the result is collected or sunk.
    """
    k = _keyed(activity, tables, config)
    return k.join(k.rows, _streamed_keys(k))


# Rows per batch of the key pass over a streamed input: memory is about this many rows of
# the key columns, plus the distinct keys.
_KEY_BATCH_ROWS = 2_000_000


def _streamed_keys(k: _Keyed) -> pl.DataFrame:
    """The distinct pricing keys of a (possibly larger than memory) input, in batches.

    Each batch of the streaming engine is reduced to its distinct keys and the reductions
    are merged, so memory follows the batch size and the number of keys, not the input (a
    streaming ``unique`` or ``group_by`` grows with the input: docs/performance.md).
    Key strings are held as categoricals meanwhile: a kept string would otherwise be a view
    into its batch and keep the whole batch in memory.
    """
    lf = k.key_columns().with_columns(pl.col(pl.String).cast(pl.Categorical))
    merged: list[pl.DataFrame] = []
    for batch in lf.collect_batches(chunk_size=_KEY_BATCH_ROWS, maintain_order=False):
        merged.append(batch.unique(subset=list(_HASH), keep="any"))
        if len(merged) >= 8:
            merged = [pl.concat(merged).unique(subset=list(_HASH), keep="any")]
    keys = (pl.concat(merged).unique(subset=list(_HASH), keep="any") if merged
            else pl.DataFrame(schema=lf.collect_schema()))
    return keys.with_columns(pl.col(pl.Categorical).cast(pl.String))


def _price_keys(lf: pl.LazyFrame, ts: TableSet, cfg: CostingConfig, chain: tuple[str, ...],
                eds: dict[str, _Editions], key_cols: Sequence[str]) -> pl.LazyFrame:
    """Price one row per distinct pricing key: the normalised key codes, invalid_reason
    and every priced column but n_episodes (los_days is carried through)."""
    lf = normalise_codes(lf, key_cols)
    lf = lf.with_columns(pl.col("invalid_reason").alias("_input_reason"))
    lf = with_invalid_reason(lf, cfg, key_columns=key_cols)
    s = pl.col("setting")
    lf = lf.with_columns(
        pl.coalesce(pl.col("hrg_version"), pl.lit(cfg.default_hrg_version)).alias("_hrg_version"),
        pl.when(s == "apc").then(apc_pod()).alias("_apc_pod"),
    )
    codes = _codes(ts, eds)
    lf = lf.with_columns(_ids(pl.col("hrg_code"), codes.code).alias("_hrg_i"),
                         _ids(pl.col("treatment_function_code"), codes.service).alias("_tf_i"))
    if "tariff" in eds:
        lf = _tariff_level(lf, eds["tariff"], cfg, codes)
    if "reference_cost" in eds:
        lf = _rc_level(lf, eds["reference_cost"], ts, cfg, with_total="total_hrg_average" in chain,
                       codes=codes)
    lf = lf.with_columns(_chain_columns(chain))

    # record-level status before the chain: invalid, excluded, HRG missing / ungroupable
    hrg = pl.col("hrg_code")
    needs_hrg = s.is_in(["apc", "ae"])
    excluded = (s == "op") & pl.col("attended").is_in(OP_NOT_ATTENDED)
    pre_status = (
        pl.when(pl.col("_input_reason").str.contains(DUPLICATE_REASON, literal=True).fill_null(False))
        .then(pl.lit(int(Status.DUPLICATE_RECORD)))
        .when(_invalid(cfg, chain)).then(pl.lit(int(Status.INVALID_RECORD)))
        .when(excluded).then(pl.lit(int(Status.EXCLUDED_NOT_ATTENDED)))
        .when(needs_hrg & hrg.is_null()).then(pl.lit(int(Status.HRG_MISSING)))
        .when(hrg.str.starts_with("U").fill_null(False)).then(pl.lit(int(Status.HRG_UNGROUPABLE)))
        .cast(pl.Int16)
    )
    lf = lf.with_columns(pre_status.alias("_pre_status")).with_columns(
        pl.coalesce(pl.col("_pre_status"), pl.col("_chain_status")).alias("status")
    )
    priced_by_chain = pl.col("_pre_status").is_null() & pl.col("_chain_cost").is_not_null()

    # MFF (tariff-priced rows only) and inflation
    cost = pl.col("_chain_cost")
    use_mff = cfg.mff and "tariff" in eds
    if use_mff:
        lf = lf.join(_mff_frame(ts, cfg, eds["tariff"]), left_on=["provider_code", "_tariff_edition"],
                     right_on=["_mff_provider", "_tariff_edition"], how="left", maintain_order="left")
        mff: pl.Expr = pl.when(priced_by_chain & (pl.col("_level") == "tariff")).then(pl.col("_mff"))
    else:
        mff = pl.lit(None, dtype=pl.Float64)
    lf = lf.with_columns(mff.cast(pl.Float64).alias("mff_factor"))
    if use_mff:
        no_factor = priced_by_chain & (pl.col("_level") == "tariff") & pl.col("mff_factor").is_null()
        lf = lf.with_columns(
            pl.when(no_factor).then(pl.lit(int(Status.NO_MFF_FOR_PROVIDER), dtype=pl.Int16))
            .otherwise(pl.col("status")).alias("status"))
    cost = cost * pl.col("mff_factor").fill_null(1.0)
    if cfg.index is not None:
        lf = lf.join(_index_frame(ts, cfg), on="_price_edition", how="left", maintain_order="left")
        infl = pl.when(priced_by_chain).then(pl.col("_inflation"))
        lf = lf.with_columns(infl.alias("inflation_factor"))
        cost = cost * pl.col("inflation_factor")
        no_index = priced_by_chain & pl.col("inflation_factor").is_null()
        lf = lf.with_columns(
            pl.when(no_index).then(pl.lit(int(Status.NO_INDEX_FOR_YEAR), dtype=pl.Int16))
            .otherwise(pl.col("status")).alias("status"))
    else:
        lf = lf.with_columns(pl.lit(None, dtype=pl.Float64).alias("inflation_factor"))

    st = pl.col("status")
    priced = st < 50
    is_excluded = st == int(Status.EXCLUDED_NOT_ATTENDED)
    op_pod = (
        pl.when(pl.col("_proc") & priced & ~is_excluded).then(pl.lit("OP_PROC"))
        .when(pl.col("first_attendance").is_in(OP_FIRST)).then(pl.lit("OP_FIRST"))
        .when(pl.col("first_attendance").is_in(OP_FOLLOWUP)).then(pl.lit("OP_FOLLOWUP"))
    )
    lf = lf.with_columns(
        pl.when(s == "apc").then(pl.col("_apc_pod")).when(s == "op").then(op_pod)
        .when(s == "ae").then(ae_pod()).alias("pod"),
    ).with_columns(
        category_expr().alias("cost_category"),
        pl.when(is_excluded).then(pl.lit(0.0)).when(priced).then(cost).alias("cost"),
        pl.when(is_excluded).then(pl.lit(CostSource.EXCLUDED.value))
        .when(priced).then(pl.col("_level").replace_strict(_SOURCE_OF_LEVEL, default=None))
        .alias("cost_source"),
        _status_name(pl.col("status")).alias("status_name"),
        (pl.col("_tariff_edition") if "tariff" in chain else pl.lit(None, dtype=pl.String)).alias("tariff_edition"),
        (pl.col("_rc_edition") if ("reference_cost" in chain or "total_hrg_average" in chain)
         else pl.lit(None, dtype=pl.String)).alias("reference_cost_edition"),
    )
    # components are only meaningful on rows the chain priced
    comp = ["base_price", "excess_bed_days", "excess_bed_day_cost", "short_stay_applied", "hrg_version_used"]
    lf = lf.with_columns([pl.when(priced & ~is_excluded).then(pl.col(c)).alias(c) for c in comp])
    lf = lf.with_columns(
        [pl.when(s == "apc").then(pl.col(c)).alias(c)
         for c in ("excess_bed_days", "excess_bed_day_cost")]
    )
    keep = [*_HASH, *key_cols, "los_days", *[c for c in PRICED_COLUMNS if c not in ("n_episodes", "los_days")]]
    return lf.select(
        [pl.col(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else pl.col(c) for c in keep])


def _tariff_prices(chain: tuple[str, ...]) -> pl.Expr:
    """The tariff is the level that prices the record: in the chain, and no level before it
    priced the record."""
    if "tariff" not in chain:
        return pl.lit(False)
    earlier = [_components(lv)["cost"].is_null() for lv in chain[:chain.index("tariff")]]
    return pl.all_horizontal(earlier) if earlier else pl.lit(True)


def _invalid(cfg: CostingConfig, chain: tuple[str, ...]) -> pl.Expr:
    """Whether a (key's) record is invalid: a check failed, or a problem the input noted
    (``_input_reason``) is in a field a rule that prices this record reads. A problem in
    an optional field (:data:`OPTIONAL_FIELD_RULES`) blocks only the rule that reads it: an
    impossible age blocks the short-stay emergency test, not a provider price."""
    s = pl.col("setting")
    checks_failed = ~pl.col("invalid_reason").eq_missing(pl.col("_input_reason"))
    fields = reason_fields(pl.col("_input_reason"))
    other = fields.list.eval(pl.element().is_null() | ~pl.element().is_in(list(OPTIONAL_FIELD_RULES)))
    episode = cfg.resolved_apc_unit() == "episode"
    read_by = {  # per optional field: the record is priced by a rule that reads it
        "age": pl.col(_NEEDS_AGE) & _tariff_prices(chain) if "tariff" in chain else pl.lit(False),
        "episode_start": (s == "apc") & pl.lit(episode),
        "episode_end": (s == "apc") & pl.lit(episode),
        "episode_order": (s == "apc") & pl.lit(not episode),
    }
    assert set(read_by) == set(OPTIONAL_FIELD_RULES)
    blocks = pl.any_horizontal(other.list.any(),
                               *(fields.list.contains(f) & used for f, used in read_by.items()))
    return checks_failed | (pl.col("_input_reason").is_not_null() & blocks.fill_null(True))


def price(
    activity: pl.DataFrame | pl.LazyFrame,
    tables: TableSet | None = None,
    config: CostingConfig | None = None,
) -> pl.DataFrame:
    """Price every record: one output row per input record (per spell when spells are built).

    Args:
        activity: canonical activity (see costing.schema.ACTIVITY_SCHEMA), e.g. from
            ``costing.read_activity``; a DataFrame or LazyFrame with a ``setting`` column.
        tables: a TableSet; default the shipped tables.
        config: a CostingConfig; default purchaser perspective, dated editions.

    Returns:
        Every input column plus pod, cost_category, cost (null when not priced), cost_source,
        status, status_name, table editions and the price components.

    Example:
        >>> import datetime as dt, polars as pl, costing
        >>> episode = pl.DataFrame({
        ...     "record_id": ["e1"], "patient_id": ["p1"], "setting": ["apc"],
        ...     "activity_date": [dt.date(2017, 6, 1)], "discharge_date": [dt.date(2017, 6, 13)],
        ...     "admission_method": ["21"], "patient_classification": ["1"],
        ...     "hrg_code": ["DZ11V"], "hrg_version": ["HRG4"]})
        >>> cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")
        >>> round(costing.price(episode, config=cfg)["cost"][0], 2)  # NEL + 4 excess days
        2747.06
    """
    cfg = config or CostingConfig()
    frame = activity.collect() if isinstance(activity, pl.LazyFrame) else activity
    # Ids and codes read per row are normalised (trimmed, cased) only where a scan finds a
    # value that would change, which it seldom does. The scan runs in a worker thread while
    # the records are priced as they are; should it find one, they are priced again,
    # normalised. The output is the same either way. (The first pricing stops at its next
    # step once the scan has found one, so input needing it costs little more.)
    with ThreadPoolExecutor(max_workers=1) as pool:
        rewrite = pool.submit(strings_to_normalise, frame, _per_key_codes(cfg))
        try:
            out = _price_frame(frame, tables, cfg, as_read=True,
                               abandon=lambda: rewrite.done() and bool(rewrite.result()))
        except Exception:
            if not rewrite.result():
                raise
            out = None
        if rewrite.result():
            out = _price_frame(frame, tables, cfg, as_read=False, normalise=rewrite.result())
    assert out is not None
    return out


def _price_frame(frame: pl.DataFrame, tables: TableSet | None, cfg: CostingConfig, as_read: bool,
                 abandon: Callable[[], bool] = lambda: False,
                 normalise: Collection[str] | None = None) -> pl.DataFrame | None:
    """:func:`price` of a frame in memory; with ``as_read``, no String column is normalised,
    else those in ``normalise`` (found by :func:`price`'s scan; None: scanned here). None if
    ``abandon()`` says to stop (asked between steps)."""
    k = _keyed(frame, tables, cfg, eager=True, normalise=() if as_read else normalise)
    if abandon():
        return None
    rows = k.rows.collect()  # the per-row stage once, shared by the keys and the output
    if abandon():
        return None
    out = _price_rows(k, rows, exact=False)
    if out is None:  # two keys share their first 64 bits: find keys by all 128
        out = _price_rows(k, rows, exact=True)
    assert out is not None
    return out


# Seeds of the two row hashes of the in-memory path (mixing constants, not prices).
_SEEDS = ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0, 0x082EFA98, 0xEC4E6C89))


def _row_hash(key: pl.DataFrame, which: int) -> pl.Series:
    """Hash ``which`` (0 or 1: independent seeds) of each row of ``key``, its pricing key.

    ``hash_rows`` hashes every column and combines the hashes row by row in one pass (several
    times faster than hashing column by column and folding with expressions); a row's hash
    depends on its values only, so a slice of the rows hashes as it does in the whole. Two
    distinct keys share both hashes only if a column holds two distinct values with the
    same hash under both seeds, or by chance (about n^2 / 2^128 for n keys).
    """
    if key.width == 0:  # no key column at all: every row has the same key
        return pl.zeros(key.height, dtype=pl.UInt64, eager=True).alias(_HASH[which])
    return key.hash_rows(*_SEEDS[which]).alias(_HASH[which])


# Rows per slice when every row is checked on its second hash: the hash is computed and
# compared a slice at a time, so it is never held for all rows.
_CHECK_ROWS = 1 << 21


def _second_hash_agrees(hashed: pl.DataFrame, key_k2: pl.Series, row_of: pl.Series) -> bool:
    """Whether every row's second hash equals its key's (``key_k2`` at ``row_of``), computed
    a slice of rows at a time so it is never held for all rows."""
    for start in range(0, hashed.height, _CHECK_ROWS):
        own = _row_hash(hashed.slice(start, _CHECK_ROWS), 1)
        if not (key_k2.gather(row_of.slice(start, _CHECK_ROWS)) == own).all():
            return False
    return True


def _price_rows(k: _Keyed, rows: pl.DataFrame, exact: bool) -> pl.DataFrame | None:
    """Price collected rows by key, in memory. Each key's first row is found by the first
    row hash, and every row is checked on the second (None if two keys share the first);
    with ``exact``, keys are found and joined by both.

    Output columns that are the same for every key are written as constants, and a key
    code is taken from the rows themselves when no key's value changed in normalisation,
    so only what really varies is gathered per row.
    """
    hashed = rows.select(k.hashed_columns(rows))
    hashes = pl.DataFrame([_row_hash(hashed, 0), *([_row_hash(hashed, 1)] if exact else [])])
    if exact:
        first = hashes.with_row_index("_i").unique(list(_HASH), keep="first").get_column("_i")
    else:
        first = hashes.get_column(_HASH[0]).arg_unique()
    # each key's first row, by a mask (a filter of chunked columns is several times faster
    # than a gather from them); keys are in the order of their first rows, and in one piece:
    # the rules run many steps over them, each paying per chunk (docs/performance.md, point 2)
    is_first = pl.repeat(False, rows.height, eager=True).scatter(first, True)
    # a fixed edition's index is a literal in the rows: set on the keys, not filtered (a
    # filter writes a literal out for every row first)
    fixed = k.fixed_indices()
    keys = rows.select(*k.key_cols, *(c for c in k.carried if c not in fixed)).filter(is_first).rechunk()
    keys = keys.with_columns(fixed.values()).select(*k.key_cols, *k.carried)
    key_hashes = hashes.filter(is_first)
    if not exact:  # the keys' second hash from their own columns
        key_hashes = key_hashes.with_columns(_row_hash(keys.select(hashed.columns), 1))
    on = list(_HASH) if exact else [_HASH[0]]
    keys = keys.hstack(key_hashes)
    # The keys are priced in a worker thread while each row finds its key (a join of the
    # row hashes) and, but with ``exact``, is checked on its second hash: the rules run
    # many small steps over a few hundred thousand keys and keep neither core busy alone,
    # the row steps keep both (polars releases the GIL). Both come before the gather.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pricing = pool.submit(k.priced_keys, keys)
        row_of = hashes.join(key_hashes.select(on).with_row_index("_i"), on=on, how="left",
                             maintain_order="left").get_column("_i")
        del hashes  # 8 or 16 bytes a row
        agrees = exact or _second_hash_agrees(hashed, key_hashes.get_column(_HASH[1]), row_of)
        priced = pricing.result()
    if not agrees:
        return None
    del hashed
    if not priced.select(on).equals(key_hashes.select(on)):  # row_of points into the keys' order
        priced = priced[key_hashes.select(on).join(priced.select(on).with_row_index("_p"), on=on,
                                                   how="left", maintain_order="left").get_column("_p")]
    priced = priced.hstack(keys.select([pl.col(c).alias(f"_raw_{c}") for c in k.key_cols]).get_columns())
    order = [*k.input_cols, "spell_key", *PRICED_COLUMNS]
    constants: dict[str, pl.Expr] = {}
    gathered: list[pl.Series] = []
    from_rows: list[str] = []
    for c in order:
        if c in PRICED_COLUMNS and c not in ("n_episodes", "los_days"):
            values = priced[c].cast(PRICED_COLUMNS[c])
        elif c in k.key_cols and not priced[c].eq_missing(priced[f"_raw_{c}"]).all():
            values = priced[c]  # normalisation changed some key's code: the normalised one
        else:
            from_rows.append(c)
            continue
        if values.n_unique() == 1 and rows.height:  # the same on every row: a constant
            constants[c] = pl.lit(values[0], dtype=values.dtype).alias(c)
        else:
            gathered.append(values)
    del priced, keys  # the keys' frames (tens of MB) are not held through the gather
    # one gather of every varying column (a frame's row gather: polars spreads the columns
    # over its threads; about twice as fast as a select of per-column gathers)
    by_row = chunked_like(rows, pl.DataFrame(gathered)[row_of].get_columns()) if gathered else []
    # The output is assembled Series by Series, in order (a select over forty columns in
    # many chunks is slow); a constant is set in its place over a stand-in.
    series = {s.name: s for s in by_row}
    series.update((c, rows.get_column(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else rows.get_column(c))
                  for c in from_rows)
    stand_in = rows.get_column(rows.columns[0])
    out = pl.DataFrame([series[c] if c in series else stand_in.alias(c) for c in order])
    if k.spells is not None:  # one row per spell: merged episodes go, first ones take the spell's row
        return k.spells.apply(out, list(constants.values()))
    return out.with_columns(constants.values()) if constants else out
