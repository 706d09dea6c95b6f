"""Table lookups on integer keys: the editions a record may be priced at, and the prices,
trim points and unit costs of its codes in them.

Table strings become small integer ids once, when the lookups are planned; a record's codes
are looked up as ids (a join of strings per record would be several times slower).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl
from polars._typing import PolarsDataType

from costing.config import CostingConfig
from costing.errors import EditionNotFoundError
from costing.pairing import NO_PAIRED_EDITION
from costing.pricing.parameters import ResolvedParameter, overrides, resolve
from costing.pricing.rules.chain import REASON_RANK
from costing.pricing.rules.reference_costs import choose_trimpoints
from costing.schema import DEPARTMENTS
from costing.status import Status
from costing.tables import Edition, TableSet

@dataclass(frozen=True)
class Editions:
    """The editions a kind contributes, and the per-record expression choosing one."""

    kind: str
    editions: tuple[Edition, ...]
    fixed: str | None
    required: bool = True  # False: no edition on purpose (see costing.pairing)
    # per edition (same order), the policy parameters its rules read (costing.pricing.parameters)
    parameters: tuple[tuple[ResolvedParameter, ...], ...] = ()

    def config_of(self, i: int, cfg: CostingConfig) -> CostingConfig:
        """The configuration the rules of edition ``i`` read: ``cfg`` with that edition's
        parameters (``cfg`` itself when the kind has no editions: no record reaches them)."""
        return cfg.model_copy(update=dict(overrides(self.parameters[i]))) if self.parameters else cfg

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
        return gather([e.edition for e in self.editions], pl.String, index)

    def version_expr(self, index: pl.Expr) -> pl.Expr:
        """The HRG version of the edition at ``index``."""
        return gather([e.hrg_version for e in self.editions], pl.String, index)

    def concat(self, resource: str) -> pl.LazyFrame | None:
        frames = [
            e.table(resource).lazy().with_columns(pl.lit(e.edition).alias("edition"))
            for e in self.editions
            if resource in e.frames
        ]
        return pl.concat(frames, how="diagonal_relaxed") if frames else None


def editions_of(tables: TableSet, kind: str, fixed: str | None, cfg: CostingConfig) -> Editions:
    """The editions of ``kind`` a run prices at (``fixed``, or every edition held), each with
    its policy parameters resolved (``costing.pricing.parameters.resolve``)."""
    if fixed == NO_PAIRED_EDITION:  # a fixed tariff year without reference costs of its own
        return Editions(kind, (), None, required=False)
    eds = (tables.get(kind, fixed),) if fixed is not None else tuple(tables.get(kind, e) for e in tables.editions(kind))
    return Editions(kind, eds, fixed, parameters=tuple(resolve(tables, cfg, e) for e in eds))


def gather(values: Sequence[object] | pl.Series, dtype: PolarsDataType, index: pl.Expr) -> pl.Expr:
    """``values[index]`` per row (null index -> null): a lookup in a small literal list."""
    series = pl.Series(values, dtype=dtype)
    if series.null_count() == series.len():  # also keeps all-null literals of different
        return pl.lit(None, dtype=dtype)     # dtypes apart (polars CSE would merge them)
    return pl.lit(series).gather(index)


def ids_of(expr: pl.Expr, ids: dict[str, int]) -> pl.Expr:
    """The id of a string value (null when not one of ``ids``)."""
    if not ids:
        return pl.lit(None, dtype=pl.Int64)
    return expr.replace_strict(list(ids), list(ids.values()), default=None, return_dtype=pl.Int64)


def row_of(key: pl.Expr, keys: pl.Series) -> pl.Expr:
    """Position of ``key`` in a table's unique integer ``keys`` (null when absent)."""
    if keys.len() == 0:
        return pl.lit(None, dtype=pl.Int64)
    return key.replace_strict(keys, pl.Series(range(keys.len()), dtype=pl.Int64), default=None,
                              return_dtype=pl.Int64)


@dataclass(frozen=True)
class Codes:
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


def codes_of(tables: TableSet, kinds: dict[str, Editions]) -> Codes:
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
    return Codes({c: i for i, c in enumerate(sorted(codes))},
                  {c: i for i, c in enumerate(sorted(services))})


def hrg_usable(version_of_edition: pl.Expr) -> pl.Expr:
    """The record's HRG may be looked up in an edition of this HRG version."""
    return pl.col("hrg_code").is_not_null() & (pl.col("_hrg_version") == version_of_edition)


TARIFF_APC_VALUES: dict[str, pl.DataType] = {
    "op_procedure_price": pl.Float64(), "combined_dc_el_price": pl.Float64(),
    "dc_price": pl.Float64(), "el_price": pl.Float64(), "el_trim_days": pl.Int32(),
    "nel_price": pl.Float64(), "nel_trim_days": pl.Int32(), "excess_bed_day_price": pl.Float64(),
    "sse_applicable": pl.Boolean(), "sse_price": pl.Float64(),
}
TARIFF_OP_VALUES: dict[str, pl.DataType] = {
    "first_single_price": pl.Float64(), "first_multi_price": pl.Float64(),
    "followup_single_price": pl.Float64(), "followup_multi_price": pl.Float64(),
}
TARIFF_AE_VALUES: dict[str, pl.DataType] = {
    "type_1_2_price": pl.Float64(), "type_3_price": pl.Float64(),
}


def tariff_table(ed: Editions, resource: str, key_col: str, ids: dict[str, int]) -> pl.DataFrame | None:
    """A tariff resource over the chain's editions, keyed by (edition, code id)."""
    frames = [e.table(resource).with_columns(pl.lit(i, dtype=pl.Int64).alias("_edition"))
              for i, e in enumerate(ed.editions) if resource in e.frames]
    if not frames:
        return None
    return pl.concat(frames, how="diagonal_relaxed").with_columns(
        (pl.col("_edition") * (len(ids) + 1) + ids_of(pl.col(key_col), ids)).alias("_key")
    ).unique("_key", keep="first", maintain_order=True)


def tariff_row(ed: Editions, resource: str, key_col: str, ids: dict[str, int],
                record_id: pl.Expr, edition: pl.Expr, known: str) -> pl.Expr:
    """Row of the record's (edition, code) in a tariff resource; ``record_id`` is the
    record's code id, null where the resource does not apply."""
    table = tariff_table(ed, resource, key_col, ids)
    if table is None:
        return pl.lit(None, dtype=pl.Int64).alias(f"{known}_row")
    return row_of(edition * (len(ids) + 1) + record_id, table["_key"]).alias(f"{known}_row")


def tariff_lookup(ed: Editions, resource: str, key_col: str, ids: dict[str, int],
                   known: str, values: dict[str, pl.DataType]) -> list[pl.Expr]:
    """A tariff resource's columns for each record, from its row (see :func:`tariff_row`);
    ``known`` is true where the table has the code (null where not, as a join would)."""
    table = tariff_table(ed, resource, key_col, ids)
    if table is None:
        return [pl.lit(None, dtype=pl.Boolean).alias(known),
                *[pl.lit(None, dtype=t).alias(f"_t_{c}") for c, t in values.items()]]
    row = pl.col(f"{known}_row")
    return [pl.when(row.is_not_null()).then(pl.lit(True)).alias(known),
            *[gather(table[c].cast(t), t, row).alias(f"_t_{c}") for c, t in values.items()]]


RC_DEPARTMENTS = {d: i for i, d in enumerate(DEPARTMENTS)}


def rc_key(edition: pl.Expr, dept: pl.Expr, service: pl.Expr, code: pl.Expr,
            codes: Codes) -> pl.Expr:
    """One Int64 per (edition, department, service, currency) id tuple."""
    return ((edition * len(RC_DEPARTMENTS) + dept) * codes.n_service + service) * codes.n_code + code


def rc_table(ed: Editions) -> pl.DataFrame:
    """Reference costs of every edition in the chain, keyed like :func:`rc_key`."""
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


def rc_keyed(rc: pl.DataFrame, codes: Codes) -> pl.DataFrame:
    """The reference costs of departments pricing asks for, with their :func:`rc_key`."""
    rc = rc.filter(pl.col("department_code").is_in(list(RC_DEPARTMENTS)))
    return rc.with_columns(
        rc_key(pl.col("edition"), ids_of(pl.col("department_code"), RC_DEPARTMENTS),
                ids_of(pl.col("service_code"), codes.service), ids_of(pl.col("currency_code"), codes.code),
                codes).alias("key"),
    ).unique("key", keep="first", maintain_order=True)


def trim_table(tables: TableSet, rc: Editions, cfg: CostingConfig, codes: Codes) -> pl.DataFrame:
    """(reference-cost edition, HRG) key -> episode trim point, by :func:`choose_trimpoints`."""
    frames = []
    for i, e in enumerate(rc.editions):
        tp_ed = choose_trimpoints(tables, e, cfg).trimpoints_edition
        if tp_ed is None:
            continue
        t = tables.table("trimpoints", tp_ed, "trimpoints")
        frames.append(t.select(
            (pl.lit(i, dtype=pl.Int64) * codes.n_code + ids_of(pl.col("hrg_code"), codes.code)).alias("key"),
            pl.col("trim_days").cast(pl.Int32),
        ))
    if not frames:
        return pl.DataFrame(schema={"key": pl.Int64, "trim_days": pl.Int32})
    return pl.concat(frames).unique("key", keep="first", maintain_order=True)


def absent_department(all_rc: pl.DataFrame, edition: pl.Expr, cfg: CostingConfig,
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
        return gather([bool(flags.get(i, {}).get(what)) for i in range(n_editions)], pl.Boolean, edition)

    s = pl.col("setting")
    rank = REASON_RANK
    return (
        pl.when((s == "op") & ~has("op")).then(pl.lit(rank[Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION]))
        .when((s == "ae") & ~has("ae")).then(pl.lit(rank[Status.NO_AE_COSTS_IN_EDITION]))
        .when((s == "apc") & (pl.col("_apc_pod") == "RP") & ~has("rp"))
        .then(pl.lit(rank[Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION]))
    )
