"""The chain (docs/domain.md#fallback, #provider): the first level with a price wins, and a
record no level priced takes the most specific reason any level gave; before the chain, the
record-level statuses in their order of precedence (duplicate, invalid, excluded, HRG missing,
ungroupable)."""

from __future__ import annotations

import polars as pl

from costing.activity import DUPLICATE_REASON, OP_NOT_ATTENDED, OPTIONAL_FIELD_RULES, reason_fields
from costing.config import CostingConfig
from costing.pricing.rules.apc_tariff import SSE_ELIGIBLE
from costing.pricing.rules.base import Rule
from costing.status import CostSource, Status

REASON_RANK = {  # rank of "why not priced" reasons: the most specific wins
    Status.NO_EDITION_FOR_DATE: 1,
    Status.HRG_VERSION_MISMATCH: 2,
    Status.HRG_NOT_FOUND: 3,
    Status.NO_PRICE_FOR_POD: 4,
    # a reference-cost edition without the record's department (e.g. 2011/12: admitted care only)
    Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION: 5,
    Status.NO_AE_COSTS_IN_EDITION: 6,
    Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION: 7,
}
_RANK_TO_STATUS = {v: k for k, v in REASON_RANK.items()}

SOURCE_OF_LEVEL = {
    "tariff": CostSource.TARIFF.value,
    "reference_cost": CostSource.REFERENCE_COST.value,
    "total_hrg_average": CostSource.TOTAL_HRG_AVERAGE.value,
}


def level_status(level: str, position: int) -> pl.Expr:
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


def reason(edition: pl.Expr, version_ok: pl.Expr, known: pl.Expr,
            absent: pl.Expr | None = None) -> pl.Expr:
    """Why a level did not price: no edition < version mismatch < not found < no POD price;
    ``absent`` (the rank of a department the edition lacks, else null) comes before not found."""
    out = (
        pl.when(edition.is_null()).then(pl.lit(REASON_RANK[Status.NO_EDITION_FOR_DATE]))
        .when(~version_ok).then(pl.lit(REASON_RANK[Status.HRG_VERSION_MISMATCH]))
    )
    if absent is not None:
        out = out.when(absent.is_not_null()).then(absent)
    return (
        out.when(~known).then(pl.lit(REASON_RANK[Status.HRG_NOT_FOUND]))
        .otherwise(pl.lit(REASON_RANK[Status.NO_PRICE_FOR_POD]))
        .cast(pl.Int8)
    )


LEVEL_PREFIX = {"tariff": "_tariff", "reference_cost": "_rc", "total_hrg_average": "_total"}


def components(level: str) -> dict[str, pl.Expr]:
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


def unpriced_reason(chain: tuple[str, ...]) -> pl.Expr:
    """Why no level priced: the most specific reason of any level, except that a reference-
    cost fallback after the tariff with no edition (a tariff year without reference costs of
    its own, see costing.pairing) says so: the fix is to name a reference-cost edition."""
    reasons = [pl.col(f"{LEVEL_PREFIX[lv]}_reason") for lv in chain]
    no_edition = pl.lit(REASON_RANK[Status.NO_EDITION_FOR_DATE], dtype=pl.Int8)
    fallbacks = [pl.col(f"{LEVEL_PREFIX[lv]}_reason") == no_edition
                 for pos, lv in enumerate(chain) if pos > 0 and lv == "reference_cost"
                 and "tariff" in chain[:pos]]
    fallback_without_edition = pl.any_horizontal(fallbacks) if fallbacks else pl.lit(False)
    return pl.when(fallback_without_edition).then(no_edition).otherwise(pl.max_horizontal(reasons))


def chain_columns(chain: tuple[str, ...]) -> list[pl.Expr]:
    """cost, status, level and components from the first level of the chain with a price."""
    comps = [components(lv) for lv in chain]
    won = [c["cost"].is_not_null() for c in comps]

    def first_winning(values: list[pl.Expr], dtype: pl.DataType) -> pl.Expr:
        out: pl.Expr = pl.lit(None, dtype=dtype)
        for w, v in reversed(list(zip(won, values, strict=True))):
            out = pl.when(w).then(v).otherwise(out)
        return out.cast(dtype)

    def pick(name: str, dtype: pl.DataType) -> pl.Expr:
        return first_winning([c[name] for c in comps], dtype)

    status = first_winning([level_status(lv, pos) for pos, lv in enumerate(chain)], pl.Int16())
    best = unpriced_reason(chain)
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


def tariff_prices(chain: tuple[str, ...]) -> pl.Expr:
    """The tariff is the level that prices the record: in the chain, and no level before it
    priced the record."""
    if "tariff" not in chain:
        return pl.lit(False)
    earlier = [components(lv)["cost"].is_null() for lv in chain[:chain.index("tariff")]]
    return pl.all_horizontal(earlier) if earlier else pl.lit(True)


def invalid(cfg: CostingConfig, chain: tuple[str, ...]) -> pl.Expr:
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
        "age": pl.col(SSE_ELIGIBLE.output) & tariff_prices(chain) if "tariff" in chain else pl.lit(False),
        "episode_start": (s == "apc") & pl.lit(episode),
        "episode_end": (s == "apc") & pl.lit(episode),
        "episode_order": (s == "apc") & pl.lit(not episode),
    }
    assert set(read_by) == set(OPTIONAL_FIELD_RULES)
    blocks = pl.any_horizontal(other.list.any(),
                               *(fields.list.contains(f) & used for f, used in read_by.items()))
    return checks_failed | (pl.col("_input_reason").is_not_null() & blocks.fill_null(True))




def _excluded(cfg: CostingConfig) -> pl.Expr:
    return (pl.col("setting") == "op") & pl.col("attended").is_in(OP_NOT_ATTENDED)


# Record-level statuses, in their order of precedence: the first that applies is the status,
# whatever the chain found (rules setting _pre_status, in order).
STATUS_PRECEDENCE = (
    Rule(name="duplicate_record", output="_pre_status", reads=("_input_reason",),
         when=lambda cfg: pl.col("_input_reason").str.contains(DUPLICATE_REASON, literal=True).fill_null(False),
         value=lambda cfg: pl.lit(int(Status.DUPLICATE_RECORD)), section="fallback"),
    Rule(name="invalid_record", output="_pre_status",
         reads=("setting", "invalid_reason", "_input_reason", SSE_ELIGIBLE.output),
         when=lambda cfg: invalid(cfg, cfg.resolved_chain()),
         value=lambda cfg: pl.lit(int(Status.INVALID_RECORD)), section="fallback"),
    Rule(name="excluded_not_attended", output="_pre_status", reads=("setting", "attended"),
         when=_excluded, value=lambda cfg: pl.lit(int(Status.EXCLUDED_NOT_ATTENDED)), section="outpatients"),
    Rule(name="hrg_missing", output="_pre_status", reads=("setting", "hrg_code"),
         when=lambda cfg: pl.col("setting").is_in(["apc", "ae"]) & pl.col("hrg_code").is_null(),
         value=lambda cfg: pl.lit(int(Status.HRG_MISSING)), section="hrg-version"),
    Rule(name="hrg_ungroupable", output="_pre_status", reads=("hrg_code",),
         when=lambda cfg: pl.col("hrg_code").str.starts_with("U").fill_null(False),
         value=lambda cfg: pl.lit(int(Status.HRG_UNGROUPABLE)), section="hrg-version"),
)
