"""The rules, evaluated on a frame: one row per pricing key (the keyed engines) or one row per
record (the reference engine). Table lookups set the ``_t_*`` and ``_rc_*`` columns, the
declared rules (``costing.pricing.rules``) decide with them, and the chain picks the level.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from costing.activity import OP_FIRST, OP_FOLLOWUP, normalise_codes, one_of, with_invalid_reason
from costing.config import CostingConfig
from costing.pricing.engine.lookups import (
    TARIFF_AE_VALUES,
    TARIFF_APC_VALUES,
    TARIFF_OP_VALUES,
    Codes,
    Editions,
    absent_department,
    codes_of,
    gather,
    hrg_usable,
    ids_of,
    rc_key,
    rc_keyed,
    rc_table,
    row_of,
    tariff_lookup,
    tariff_row,
    trim_table,
    RC_DEPARTMENTS,
)
from costing.pricing.rules import adjustments, apc_tariff, chain, pod
from costing.pricing.rules import RULE_SETS, RuleSet, rules_of_edition
from costing.pricing.rules.base import Rule, first_applying
from costing.pricing.rules.pod import ae_pod, category_expr
from costing.schema import PRICED_COLUMNS
from costing.status import CostSource, Status
from costing.tables import TableSet, load_tables

# Columns the engine sets for the rules besides the rules' own outputs and the lookups.
ENGINE_COLUMNS = frozenset({
    "_input_reason", "_hrg_i", "_tf_i", "_tariff_edition", "_tariff_version", "_rc_edition",
    "_rc_version", "_chain_cost", "_level", "_price_edition", "_chain_status", "status",
    "_mff", "_inflation", "_rc_trim", "_rc_p1", "_rc_p2", "_rc_known",
    *(f"_t_{c}" for c in (*TARIFF_APC_VALUES, *TARIFF_OP_VALUES, *TARIFF_AE_VALUES)),
})
# The activity fields the engine itself reads: the codes it looks up in the tables.
ENGINE_READS = ("setting", "hrg_code", "treatment_function_code", "invalid_reason")


def edition_index(kind: str) -> str:
    """The per-row column holding a table kind's edition position (``_tariff_ed_i``...)."""
    return f"{chain.LEVEL_PREFIX[kind]}_ed_i"


def resolve_tables(tables: TableSet | None) -> TableSet:
    return load_tables() if tables is None else tables


def _set(rules: Sequence[Rule], cfg: CostingConfig, otherwise: pl.Expr | None = None) -> pl.Expr:
    """The column the (ordered) ``rules`` set, from the first that applies and is active."""
    return first_applying([r for r in rules if r.active(cfg)], cfg, otherwise).alias(rules[0].output)


def level_column(output: str, cfg: CostingConfig, kind: str, ed: Editions, otherwise: pl.Expr | None = None,
                 sets: dict[str, tuple[RuleSet, ...]] | None = None) -> pl.Expr:
    """The column ``output`` as each edition of level ``kind`` sets it: the rules of the
    edition's rule set (``costing.pricing.rules.RULE_SETS``) that set ``output``, in the set's
    order, the first that applies winning, each reading the edition's policy parameters
    (:meth:`Editions.config_of`). Editions that share their rules and parameters share one
    expression; where they differ, a record's edition chooses."""
    editions = [e.edition for e in ed.editions] or [RULE_SETS[kind][-1].first_edition if sets is None
                                                    else sets[kind][-1].first_edition]
    groups: dict[tuple[tuple[Rule, ...], CostingConfig], list[int]] = {}
    for i, edition in enumerate(editions):
        own = ed.config_of(i, cfg)
        rules = tuple(r for r in rules_of_edition(kind, edition, sets) if r.output == output and r.active(own))
        groups.setdefault((rules, own), []).append(i)
    if len(groups) == 1:
        (rules, own), = groups
        return first_applying(rules, own, otherwise).alias(output)
    out: pl.Expr = pl.lit(None) if otherwise is None else otherwise
    for (rules, own), at in reversed(groups.items()):
        out = pl.when(pl.col(edition_index(kind)).is_in(at)).then(first_applying(rules, own, otherwise)).otherwise(out)
    return out.alias(output)


def row_rule_columns(cfg: CostingConfig, eds: dict[str, Editions], outputs: Sequence[str]) -> list[pl.Expr]:
    """The per-record rules' columns (``outputs``, each Boolean), set by the rules of the
    level that declares them in each record's edition; null where no level in the chain
    does (it then splits no keys)."""
    out = []
    for output in outputs:
        kinds = [k for k in eds if any(r.output == output and r.row for s in RULE_SETS[k] for r in s.rules)]
        out.append(level_column(output, cfg, kinds[0], eds[kinds[0]]).cast(pl.Boolean) if kinds
                   else pl.lit(None, dtype=pl.Boolean).alias(output))
    return out


def tariff_level(lf: pl.LazyFrame, ed: Editions, cfg: CostingConfig, codes: Codes) -> pl.LazyFrame:
    """Adds _tariff_cost, _tariff_base, _tariff_xs_days, _tariff_xs_cost, _tariff_sse,
    _tariff_reason, _tariff_edition, _tariff_version, _tariff_proc."""
    s = pl.col("setting")
    lf = lf.with_columns(ed.name_expr(pl.col(edition_index("tariff"))).alias("_tariff_edition"),
                         ed.version_expr(pl.col(edition_index("tariff"))).alias("_tariff_version"))
    ok = hrg_usable(pl.col("_tariff_version"))
    edi = pl.col(edition_index("tariff"))
    lookups = [  # resource, key column, ids, the record's code id where it applies, known flag
        ("apc", "hrg_code", codes.code, pl.when(one_of(s, ["apc", "op"]) & ok).then(pl.col("_hrg_i")),
         "_t_apc_known", TARIFF_APC_VALUES),
        ("op_attendance", "treatment_function_code", codes.service,
         pl.when(s == "op").then(pl.col("_tf_i")), "_t_op_known", TARIFF_OP_VALUES),
        ("ae", "hrg_code", codes.code, pl.when((s == "ae") & ok).then(pl.col("_hrg_i")),
         "_t_ae_known", TARIFF_AE_VALUES),
    ]
    lf = lf.with_columns([tariff_row(ed, r, k, ids, rec, edi, known) for r, k, ids, rec, known, _ in lookups])
    lf = lf.with_columns([e for r, k, ids, _, known, vals in lookups
                          for e in tariff_lookup(ed, r, k, ids, known, vals)])

    def rules(output: str, otherwise: pl.Expr | None = None) -> pl.Expr:
        return level_column(output, cfg, "tariff", ed, otherwise)

    # each step sets columns the next reads (the rules in costing/pricing/rules/)
    lf = lf.with_columns(rules("_t_pod_price"), rules("_t_trim"), rules("_t_sse_needs_age"), rules("_tariff_proc"))
    lf = lf.with_columns(rules("_t_sse"))
    lf = lf.with_columns(rules("_tariff_base"), rules("_tariff_xs_days", pl.lit(0, dtype=pl.Int32))).with_columns(
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
    return lf.with_columns(chain.reason(pl.col("_tariff_edition"), version_ok, known).alias("_tariff_reason"))


def rc_level(lf: pl.LazyFrame, ed: Editions, tables: TableSet, cfg: CostingConfig,
             with_total: bool, codes: Codes) -> pl.LazyFrame:
    """Adds _rc_cost, _rc_base, _rc_xs_days, _rc_xs_cost, _rc_reason, _rc_edition,
    _rc_version, _rc_proc (and _total_cost, _total_reason if asked).

    Every lookup is an integer key (edition, department, service, currency ids) into the
    reference-cost table, so no string key is built or joined per record.
    """
    s = pl.col("setting")
    lf = lf.with_columns(ed.name_expr(pl.col(edition_index("reference_cost"))).alias("_rc_edition"),
                         ed.version_expr(pl.col(edition_index("reference_cost"))).alias("_rc_version"))
    ok = hrg_usable(pl.col("_rc_version"))
    edi = pl.col(edition_index("reference_cost"))
    hrg = pl.col("_hrg_i")
    no_service = pl.lit(codes.service[""], dtype=pl.Int64)
    def rules(output: str, otherwise: pl.Expr | None = None) -> pl.Expr:
        return level_column(output, cfg, "reference_cost", ed, otherwise)

    lf = lf.with_columns(
        rules("_rc_dept1"), rules("_rc_service1", pl.lit("")),
        rules("_rc_dept2"), rules("_rc_service2", pl.lit("")), rules("_rc_code2"),
    )

    def dept_id(col: str) -> pl.Expr:
        return ids_of(pl.col(col), RC_DEPARTMENTS)

    # First lookup: the department price of the HRG (APC by POD, OP procedure, A&E).
    dept1, service1 = dept_id("_rc_dept1"), ids_of(pl.col("_rc_service1"), codes.service)
    # Second lookup: excess bed days (APC) or the attendance currency (OP).
    dept2, service2 = dept_id("_rc_dept2"), ids_of(pl.col("_rc_service2"), codes.service)
    code2 = ids_of(pl.col("_rc_code2"), codes.code)
    gate2 = pl.when(s == "op").then(pl.lit(True)).otherwise(ok & pl.lit(cfg.long_stay))

    all_rc = rc_table(ed)
    rc = rc_keyed(all_rc, codes)
    known_keys = all_rc.filter(~pl.col("department_code").is_in(["CL", "NCL", "TOTAL"])).select(
        (pl.col("edition") * codes.n_code + ids_of(pl.col("currency_code"), codes.code)).alias("k")
    ).unique()["k"]
    trim = trim_table(tables, ed, cfg, codes)
    unit_cost = rc["unit_cost"]

    def exact(gate: pl.Expr, dept: pl.Expr, service: pl.Expr, code: pl.Expr) -> pl.Expr:
        key = pl.when(gate).then(rc_key(edi, dept, service, code, codes))
        return gather(unit_cost, pl.Float64, row_of(key, rc["key"]))

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
        row_of(hrg_key, known_keys).is_not_null().alias("_rc_known"),
        gather(trim["trim_days"], pl.Int32, row_of(pl.when(s == "apc").then(hrg_key), trim["key"]))
        .alias("_rc_trim"),
    )
    lf = lf.with_columns(rules("_rc_proc"))
    wide = (pl.when(s == "op").then(pl.when(pl.col("_rc_proc")).then(pl.col("_rc_p1_wide"))
                                    .otherwise(pl.col("_rc_p2_wide")))
            .when(s == "ae").then(pl.col("_rc_p1_wide")).otherwise(pl.lit(False)))
    lf = lf.with_columns(
        rules("_rc_base"), rules("_rc_xs_days", pl.lit(0, dtype=pl.Int32)),
        wide.fill_null(False).alias("_rc_wide"),
    ).with_columns(
        (pl.col("_rc_xs_days") * pl.col("_rc_p2").fill_null(0.0)).alias("_rc_xs_cost"),
    ).with_columns((pl.col("_rc_base") + pl.col("_rc_xs_cost")).alias("_rc_cost"))

    known = pl.when(s == "op").then(pl.lit(True)).otherwise(pl.col("_rc_known"))
    version_ok = pl.when(s == "op").then(pl.lit(True)).otherwise(
        pl.col("_rc_version") == pl.col("_hrg_version")).fill_null(False)
    lf = lf.with_columns(chain.reason(pl.col("_rc_edition"), version_ok, known,
                                      absent_department(all_rc, edi, cfg, len(ed.editions))).alias("_rc_reason"))

    if with_total:
        dep_total = pl.lit(RC_DEPARTMENTS["TOTAL"], dtype=pl.Int64)
        lf = lf.with_columns(lookup(ok, dep_total, no_service, hrg)[0].alias("_total_cost"))
        hrg_version_ok = (pl.col("_rc_version") == pl.col("_hrg_version")).fill_null(False)
        lf = lf.with_columns(
            chain.reason(pl.col("_rc_edition"), hrg_version_ok, pl.col("_rc_known")).alias("_total_reason"))
    return lf


def status_name(status: pl.Expr) -> pl.Expr:
    """The stable name of a status code (as ``status_name_expr``, by position, not hashing)."""
    names: list[str | None] = [None] * (max(Status) + 1)
    for st in Status:
        names[st.value] = st.label
    return gather(names, pl.String, status.cast(pl.Int64))


def price_keys(lf: pl.LazyFrame, ts: TableSet, cfg: CostingConfig, chain_: tuple[str, ...],
               eds: dict[str, Editions], key_cols: Sequence[str], keep: Sequence[str]) -> pl.LazyFrame:
    """Price one row per distinct pricing key (or per record): the normalised key codes,
    invalid_reason and every priced column but n_episodes (los_days is carried through),
    and the columns ``keep``."""
    lf = normalise_codes(lf, key_cols)
    lf = lf.with_columns(pl.col("invalid_reason").alias("_input_reason"))
    lf = with_invalid_reason(lf, cfg, key_columns=key_cols)
    s = pl.col("setting")
    lf = lf.with_columns(_set([pod.HRG_VERSION], cfg), _set([pod.APC_POD], cfg))
    codes = codes_of(ts, eds)
    lf = lf.with_columns(ids_of(pl.col("hrg_code"), codes.code).alias("_hrg_i"),
                         ids_of(pl.col("treatment_function_code"), codes.service).alias("_tf_i"))
    if "tariff" in eds:
        lf = tariff_level(lf, eds["tariff"], cfg, codes)
    else:
        lf = lf.with_columns(_set([apc_tariff.NO_SSE_TEST], cfg))
    if "reference_cost" in eds:
        lf = rc_level(lf, eds["reference_cost"], ts, cfg, with_total="total_hrg_average" in chain_,
                      codes=codes)
    lf = lf.with_columns(chain.chain_columns(chain_))

    # record-level status before the chain: invalid, excluded, HRG missing / ungroupable
    lf = lf.with_columns(_set(chain.STATUS_PRECEDENCE, cfg).cast(pl.Int16)).with_columns(
        pl.coalesce(pl.col("_pre_status"), pl.col("_chain_status")).alias("status")
    )

    # MFF (tariff-priced rows only) and inflation
    cost = pl.col("_chain_cost")
    use_mff = adjustments.MFF.active(cfg) and "tariff" in eds
    if use_mff:
        lf = lf.join(adjustments.mff_frame(ts, cfg, eds["tariff"].editions),
                     left_on=["provider_code", "_tariff_edition"],
                     right_on=["_mff_provider", "_tariff_edition"], how="left", maintain_order="left")
        mff: pl.Expr = adjustments.MFF.expr(cfg)
    else:
        mff = pl.lit(None, dtype=pl.Float64)
    lf = lf.with_columns(mff.cast(pl.Float64).alias("mff_factor"))
    if use_mff:
        no_factor = adjustments.PRICED_BY_CHAIN & (pl.col("_level") == "tariff") & pl.col("mff_factor").is_null()
        lf = lf.with_columns(
            pl.when(no_factor).then(pl.lit(int(Status.NO_MFF_FOR_PROVIDER), dtype=pl.Int16))
            .otherwise(pl.col("status")).alias("status"))
    cost = cost * pl.col("mff_factor").fill_null(1.0)
    if adjustments.INFLATION.active(cfg):
        lf = lf.join(adjustments.index_frame(ts, cfg), on="_price_edition", how="left", maintain_order="left")
        lf = lf.with_columns(adjustments.INFLATION.expr(cfg).alias("inflation_factor"))
        cost = cost * pl.col("inflation_factor")
        no_index = adjustments.PRICED_BY_CHAIN & pl.col("inflation_factor").is_null()
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
        .when(priced).then(pl.col("_level").replace_strict(chain.SOURCE_OF_LEVEL, default=None))
        .alias("cost_source"),
        status_name(pl.col("status")).alias("status_name"),
        (pl.col("_tariff_edition") if "tariff" in chain_ else pl.lit(None, dtype=pl.String)).alias("tariff_edition"),
        (pl.col("_rc_edition") if ("reference_cost" in chain_ or "total_hrg_average" in chain_)
         else pl.lit(None, dtype=pl.String)).alias("reference_cost_edition"),
    )
    # components are only meaningful on rows the chain priced
    comp = ["base_price", "excess_bed_days", "excess_bed_day_cost", "short_stay_applied", "hrg_version_used"]
    lf = lf.with_columns([pl.when(priced & ~is_excluded).then(pl.col(c)).alias(c) for c in comp])
    lf = lf.with_columns(
        [pl.when(s == "apc").then(pl.col(c)).alias(c)
         for c in ("excess_bed_days", "excess_bed_day_cost")]
    )
    out = [*keep, *key_cols, "los_days", *[c for c in PRICED_COLUMNS if c not in ("n_episodes", "los_days")]]
    return lf.select(
        [pl.col(c).cast(PRICED_COLUMNS[c]) if c in PRICED_COLUMNS else pl.col(c) for c in out])
