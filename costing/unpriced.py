"""Unpriced activity: how much there is, where, why, and whether a cost can be trusted.

An unpriced record (status >= 50) has a null cost and adds nothing to a window's cost, so a
window, an arm mean or a difference in differences built over unpriced activity is an
underestimate. This module measures it, so that it is never read as a confident zero:

* ``assess_unpriced`` turns a priced frame (or window costs) into an ``UnpricedAssessment``:
  the unpriced share of records and of £-weighted activity, the categories left wholly
  unpriced, the top reasons with the offending values and what to do, one line per file whose
  every record is unpriced, and a level ("ok", "warn", "fail") against two thresholds.
* ``unpriced_by_window`` counts unpriced records and patient-windows per arm, window and
  category (the report's ``unpriced`` sheet and ``unpriced.csv``).
* ``with_unpriced_status`` adds those counts to a ``did`` table and withholds the estimate of
  a category whose patient-windows are mostly unpriced, with a status saying why.

See docs/unpriced-and-warnings.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import polars as pl

from costing.errors import ConfigError
from costing.schema import COST_CATEGORIES
from costing.status import NOT_PRICED_FROM, Status, status_name_expr

__all__ = [
    "FAIL_SHARE",
    "WARN_SHARE",
    "WITHHOLD_SHARE",
    "UnpricedAssessment",
    "assess_unpriced",
    "assess_unpriced_counts",
    "check_thresholds",
    "unpriced_by_window",
    "unpriced_counts",
    "with_unpriced_status",
]

WARN_SHARE: Final = 0.05  # real HES studies report 3-7% of activity uncosted
FAIL_SHARE: Final = 0.25
WITHHOLD_SHARE: Final = 0.5  # a category's estimate is withheld past this share of patient-windows
_TOTAL: Final = "total"  # as costing.did.TOTAL (not imported: did imports this module)
_TOP: Final = 5

Level = Literal["ok", "warn", "fail"]

# What to do about each reason a record is unpriced.
_ADVICE: Final[dict[Status, str]] = {
    Status.HRG_MISSING: "group the records (HRG4 grouper or the HES SUSHRG/HRGLATE35 field) or "
    "map the column holding the HRG",
    Status.HRG_UNGROUPABLE: "the grouper could not group these records (U-codes); correct the "
    "source data and regroup, or accept them as unpriced",
    Status.HRG_NOT_FOUND: "check the HRG version (--hrg-version / hrg_version) and the edition; "
    "import an edition that holds these HRGs",
    Status.HRG_VERSION_MISMATCH: "price v3.5 HRGs with a v3.5 edition and HRG4 with an HRG4 "
    "edition (set hrg_version or the edition)",
    Status.NO_EDITION_FOR_DATE: "set tariff_edition/reference_cost_edition (fixed mode) or "
    "import an edition for those years",
    Status.NO_PRICE_FOR_POD: "add a reference-cost fallback to the chain, or import a table "
    "that prices this point of delivery",
    Status.INVALID_RECORD: "correct the named field in the extract (or its column mapping)",
    Status.NO_INDEX_FOR_YEAR: "import an inflation index covering those years, or drop "
    "price_base/index",
    Status.NO_MFF_FOR_PROVIDER: "add the providers to the MFF table, or switch mff off",
    Status.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION: "price outpatients at a reference-cost "
    "edition with attendance costs (fixed reference_cost_edition), or accept them as unpriced",
    Status.NO_AE_COSTS_IN_EDITION: "price A&E at a reference-cost edition with A&E costs "
    "(fixed reference_cost_edition), or accept them as unpriced",
    Status.NO_REGULAR_ATTENDER_COSTS_IN_EDITION: "price regular attenders at a reference-cost "
    "edition with RP costs (fixed reference_cost_edition), or accept them as unpriced",
    Status.DUPLICATE_RECORD: "remove the repeated records (a record id given twice, or a file "
    "given twice); the first of each is priced",
}


def check_thresholds(warn: float, fail: float) -> None:
    """Refuse thresholds outside 0-1 or a warning threshold above the failure one."""
    for name, v in (("warn", warn), ("fail", fail)):
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"unpriced {name} threshold {v!r}: give a share between 0 and 1, "
                              "e.g. 0.05 for 5%")
    if warn > fail:
        raise ConfigError(f"unpriced warn threshold {warn} is above the fail threshold {fail}; "
                          "the warning comes first")


@dataclass(frozen=True)
class UnpricedAssessment:
    """How much activity is unpriced, where and why, against the warn and fail thresholds.

    Attributes:
        level: "ok", "warn" (a share passed ``warn``) or "fail" (a share passed ``fail``, or
            a whole category is unpriced).
        n_records, n_unpriced: records (priced units) and those without a price.
        share_records: n_unpriced / n_records.
        share_gbp: the £-weighted unpriced share: each unpriced record valued at the mean
            cost of priced records of its point of delivery (else category, else setting),
            over that plus the priced cost; 1.0 when nothing is priced to value them by.
        warn, fail: the thresholds used.
        categories: per category: n_records, n_priced, n_excluded, n_unpriced,
            share_records, share_gbp.
        whole_categories: categories with unpriced records and none priced.
        reasons: per status and reason: status_name, reason, values (the offending values
            with counts), n_records, share_records, advice.
        file_lines: one line per input file whose every record is unpriced.
        messages: the lines to show a person (headline, top reasons and what to do, files).
    """

    level: Level
    n_records: int
    n_unpriced: int
    share_records: float
    share_gbp: float
    warn: float
    fail: float
    categories: pl.DataFrame
    whole_categories: list[str]
    reasons: pl.DataFrame
    file_lines: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the run manifest's ``unpriced`` entry)."""
        return {
            "level": self.level,
            "n_records": self.n_records,
            "n_unpriced": self.n_unpriced,
            "share_records": round(self.share_records, 6),
            "share_gbp": round(self.share_gbp, 6),
            "thresholds": {"warn": self.warn, "fail": self.fail},
            "whole_categories": self.whole_categories,
            "categories": [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                for r in self.categories.iter_rows(named=True)
            ],
            "reasons": [
                {k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()}
                for r in self.reasons.iter_rows(named=True)
            ],
            "files": self.file_lines,
            "messages": self.messages,
        }


def _fy(date: pl.Expr) -> pl.Expr:
    """Financial year of a date as "YYYY-YY" (April to March)."""
    y = date.dt.year() - (date.dt.month() < 4).cast(pl.Int32)
    return pl.format("{}-{}", y, ((y + 1) % 100).cast(pl.String).str.zfill(2))


def _reason_and_value(names: Sequence[str], columns: Sequence[str]) -> tuple[pl.Expr, pl.Expr]:
    """Per unpriced record: a reason (without the value) and the offending value, as text."""
    status = pl.col("status")

    def col(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String) if c in names else pl.lit(None, pl.String)

    date = _fy(pl.col("activity_date")) if "activity_date" in names else pl.lit(None, pl.String)
    # the first "column: problem" of invalid_reason names the field; its value is read back
    first = (col("invalid_reason").str.split("; ").list.first()
             if "invalid_reason" in names else pl.lit(None, pl.String))
    field_ = first.str.extract(r"^([A-Za-z_]+):", 1)
    invalid_value = pl.lit(None, pl.String)
    for c in columns:
        invalid_value = pl.when(field_ == c).then(col(c)).otherwise(invalid_value)
    invalid_text = pl.concat_str([
        field_, pl.when(invalid_value.is_not_null())
        .then(pl.lit(" '") + invalid_value + pl.lit("'")).otherwise(pl.lit("")),
        pl.lit(": "), first.str.replace(r"^[A-Za-z_]+:\s*", ""),
    ])
    s = Status
    reason = (
        pl.when(status == s.HRG_MISSING).then(pl.lit("no HRG code (hrg_code empty)"))
        .when(status == s.HRG_UNGROUPABLE).then(pl.lit("hrg_code ungroupable (U-code)"))
        .when(status == s.HRG_NOT_FOUND).then(pl.lit("hrg_code not in any table of the chain"))
        .when(status == s.HRG_VERSION_MISMATCH).then(pl.lit("HRG version differs from the edition's"))
        .when(status == s.NO_EDITION_FOR_DATE).then(pl.lit("no table edition in force for the dates"))
        .when(status == s.NO_PRICE_FOR_POD).then(pl.lit("no price for the point of delivery"))
        .when(status == s.INVALID_RECORD).then(
            pl.when(first.is_not_null()).then(invalid_text).otherwise(pl.lit("invalid record")))
        .when(status == s.NO_INDEX_FOR_YEAR).then(pl.lit("no inflation index for the price year"))
        .when(status == s.NO_MFF_FOR_PROVIDER).then(pl.lit("no MFF for the provider"))
        .when(status == s.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION)
        .then(pl.lit("no outpatient attendance costs in the reference-cost edition"))
        .when(status == s.NO_AE_COSTS_IN_EDITION).then(pl.lit("no A&E costs in the reference-cost edition"))
        .when(status == s.NO_REGULAR_ATTENDER_COSTS_IN_EDITION)
        .then(pl.lit("no regular-attender costs in the reference-cost edition"))
        .otherwise(status_name_expr("status"))
    )
    value = (
        pl.when(status.is_in([s.HRG_UNGROUPABLE, s.HRG_NOT_FOUND, s.HRG_VERSION_MISMATCH]))
        .then(col("hrg_code"))
        .when(status.is_in([s.NO_EDITION_FOR_DATE, s.NO_INDEX_FOR_YEAR])).then(date)
        .when(status == s.NO_PRICE_FOR_POD).then(col("pod"))
        .when(status == s.NO_MFF_FOR_PROVIDER).then(col("provider_code"))
        .when(status.is_in([s.NO_OUTPATIENT_ATTENDANCE_COSTS_IN_EDITION, s.NO_AE_COSTS_IN_EDITION,
                            s.NO_REGULAR_ATTENDER_COSTS_IN_EDITION]))
        .then(col("reference_cost_edition"))
        .when(status == s.INVALID_RECORD).then(invalid_value)
    )
    return reason, value


def _values_text(values: Sequence[Any], counts: Sequence[int], status: int) -> str:
    pairs = [(v, n) for v, n in zip(values, counts, strict=True) if v is not None]
    if not pairs:
        return ""
    if status == Status.INVALID_RECORD:
        return ""  # the reason names the field and its value already
    if status in (Status.NO_EDITION_FOR_DATE, Status.NO_INDEX_FOR_YEAR):
        years = sorted(v for v, _ in pairs)
        return years[0] if len(years) == 1 else f"{years[0]} to {years[-1]}"
    pairs.sort(key=lambda p: (-p[1], str(p[0])))
    shown = ", ".join(f"'{v}' ({n:,})" for v, n in pairs[:3])
    return shown + (f" and {len(pairs) - 3} more" if len(pairs) > 3 else "")


def _reasons(unpriced: pl.DataFrame, n_records: int) -> pl.DataFrame:
    """Per status and reason: the offending values, the count, the share and the advice
    (from ``unpriced_counts``'s ``reasons``: unpriced records per status, reason, value, file)."""
    schema = {"status": pl.Int64, "status_name": pl.String, "reason": pl.String,
              "values": pl.String, "n_records": pl.Int64, "share_records": pl.Float64,
              "advice": pl.String}
    if unpriced.height == 0:
        return pl.DataFrame(schema=schema)
    by_value = unpriced.group_by("status", "reason", "value").agg(pl.col("n_records").sum())
    rows = []
    for (status, reason), part in by_value.group_by("status", "reason"):
        n = int(part["n_records"].sum())
        rows.append({
            "status": int(status), "status_name": Status(status).label, "reason": reason,
            "values": _values_text(part["value"].to_list(), part["n_records"].to_list(), int(status)),
            "n_records": n, "share_records": n / n_records if n_records else 0.0,
            "advice": _ADVICE.get(Status(status), ""),
        })
    return pl.DataFrame(rows, schema=schema).sort(["n_records", "status", "reason"],
                                                  descending=[True, False, False])


def _reason_line(r: dict[str, Any]) -> str:
    values = f" ({r['values']})" if r["values"] else ""
    if r["status"] == Status.NO_EDITION_FOR_DATE and r["values"]:
        head = f"no table edition for {r['values']} dates"
    else:
        head = f"{r['reason']}{values}"
    return f"{head}: {r['n_records']:,} records [{r['status_name']}]; {r['advice']}"


def _category_shares(counts: pl.DataFrame) -> pl.DataFrame:
    """Per category, from counts per (category, pod): records, priced, unpriced, £ shares."""
    priced_n = pl.col("n_records") - pl.col("n_unpriced") - pl.col("n_excluded")
    c = counts.with_columns(priced_n.alias("n_priced"))
    # mean priced cost per record, by pod, else category, else overall
    mean_pod = (pl.col("cost").sum().over("category", "pod")
                / pl.col("n_priced").sum().over("category", "pod"))
    mean_cat = pl.col("cost").sum().over("category") / pl.col("n_priced").sum().over("category")
    overall = c["cost"].sum() / c["n_priced"].sum() if c["n_priced"].sum() else None
    mean = pl.coalesce(
        pl.when(pl.col("n_priced").sum().over("category", "pod") > 0).then(mean_pod),
        pl.when(pl.col("n_priced").sum().over("category") > 0).then(mean_cat),
        pl.lit(overall, pl.Float64),
    )
    c = c.with_columns((pl.col("n_unpriced") * mean).alias("_imputed"))
    per = c.group_by("category").agg(
        pl.col("n_records", "n_priced", "n_excluded", "n_unpriced").sum().cast(pl.Int64),
        pl.col("cost").sum(), pl.when(pl.col("_imputed").is_not_null().any()).then(pl.col("_imputed").sum())
        .alias("_imputed"),
    )
    return per.with_columns(
        (pl.col("n_unpriced") / pl.col("n_records")).alias("share_records"),
        pl.when(pl.col("n_unpriced") == 0).then(0.0)
        .when(pl.col("_imputed").is_null()).then(1.0)
        .otherwise(pl.col("_imputed") / (pl.col("_imputed") + pl.col("cost"))).alias("share_gbp"),
    ).with_columns(
        pl.col("category").replace_strict({c: i for i, c in enumerate(COST_CATEGORIES)},
                                          default=len(COST_CATEGORIES)).alias("_o")
    ).sort("_o", "category").drop("_o")


def _counts_from_priced(priced: pl.LazyFrame, names: Sequence[str]) -> pl.LazyFrame:
    cat = pl.col("cost_category").cast(pl.String) if "cost_category" in names else pl.lit(None, pl.String)
    setting = pl.col("setting").cast(pl.String) if "setting" in names else pl.lit("unknown")
    unpriced = pl.col("status") >= NOT_PRICED_FROM
    return priced.group_by(
        pl.coalesce(cat, setting).alias("category"),
        (pl.col("pod").cast(pl.String) if "pod" in names else pl.lit(None, pl.String)).alias("pod"),
    ).agg(
        pl.len().cast(pl.Int64).alias("n_records"),
        unpriced.sum().cast(pl.Int64).alias("n_unpriced"),
        (pl.col("status") == Status.EXCLUDED_NOT_ATTENDED).sum().cast(pl.Int64).alias("n_excluded"),
        pl.col("cost").cast(pl.Float64).sum().alias("cost"),
    )


def _file_lines(unpriced_rows: pl.DataFrame, totals: pl.DataFrame) -> list[str]:
    """One line per file whose every record is unpriced, naming its reasons (from
    ``unpriced_counts``'s ``reasons`` and ``files``)."""
    lines = []
    for r in totals.filter(pl.col("n_records") == pl.col("n_unpriced")).sort("source_file").iter_rows(named=True):
        part = unpriced_rows.filter(pl.col("source_file") == r["source_file"])
        by = part.group_by("status", "reason").agg(pl.col("n_records").sum().alias("len"),
                                                   pl.col("value").unique().sort())
        by = by.sort("len", "reason", descending=[True, False])
        bits = []
        for s in by.iter_rows(named=True):
            vals = [v for v in s["value"] if v is not None]
            one_value = len(vals) == 1 and s["len"] == r["n_records"] and f"'{vals[0]}'" not in s["reason"]
            value = f", value '{vals[0]}' on every one" if one_value else ""
            bits.append(f"{s['reason']}{value} ({s['len']:,}) [{Status(s['status']).label}]")
        one = " for one reason" if by.height == 1 else ""
        empty = "; hrg_code is empty on every record" if r.get("n_no_hrg") == r["n_records"] else ""
        lines.append(f"{r['source_file']}: all {r['n_records']:,} records unpriced{one}{empty}: "
                     + "; ".join(bits))
    return lines


def assess_unpriced(
    frame: pl.DataFrame | pl.LazyFrame,
    warn: float = WARN_SHARE,
    fail: float = FAIL_SHARE,
    windows: Sequence[int] | None = None,
) -> UnpricedAssessment:
    """Measure unpriced activity and set a level against the warn and fail thresholds.

    Args:
        frame: priced records (the output of ``costing.price``: status, cost, cost_category,
            pod, source_file, ...) or window costs (``costing.cost_by_window``: category,
            n_records, n_unpriced, n_excluded, cost), whose reasons are unknown.
        warn: the level is "warn" when the unpriced share of records or of £-weighted
            activity is above this.
        fail: the level is "fail" above this, and whenever a whole category is unpriced.
        windows: with window costs, count only these windows (default: every window).

    Returns:
        An UnpricedAssessment.

    Example:
        >>> import polars as pl
        >>> priced = pl.DataFrame({"status": [1, 1, 1, 54], "cost": [100.0, 100.0, 100.0, None],
        ...                        "cost_category": ["elective"] * 4, "pod": ["EL"] * 4})
        >>> a = assess_unpriced(priced)
        >>> a.level, a.share_records, a.share_gbp
        ('warn', 0.25, 0.25)
    """
    check_thresholds(warn, fail)
    lf = frame.lazy()
    names = lf.collect_schema().names()
    if "status" in names:
        return assess_unpriced_counts(unpriced_counts(lf), warn=warn, fail=fail)
    if "n_unpriced" not in names:
        raise ConfigError("assess_unpriced: pass priced records (with status) or window costs "
                          "(with n_unpriced)")
    if windows is not None:
        lf = lf.filter(pl.col("window").is_in(list(windows)))
    counts = lf.group_by(pl.col("category").cast(pl.String)).agg(
        pl.lit(None, pl.String).alias("pod"),
        *(pl.col(c).cast(pl.Int64).sum() for c in ("n_records", "n_unpriced", "n_excluded")
          if c in names),
        pl.col("cost").cast(pl.Float64).sum(),
    ).collect()
    if "n_excluded" not in counts.columns:
        counts = counts.with_columns(pl.lit(0, pl.Int64).alias("n_excluded"))
    return _assessment(counts, _reasons(pl.DataFrame(), 0), [], warn, fail, has_reasons=False)


def unpriced_counts(priced: pl.DataFrame | pl.LazyFrame) -> dict[str, pl.DataFrame]:
    """The small aggregates of priced records that ``assess_unpriced`` reads.

    Returns:
        ``categories``: category, pod, n_records, n_unpriced, n_excluded, cost;
        ``reasons``: status, reason, value (the offending value), source_file, n_records
        (unpriced records only); ``files``: source_file, n_records, n_unpriced (and
        n_no_hrg with an hrg_code column); empty without a source_file column.

    The counts of disjoint sets of records (the Spark engine's patient buckets) stack:
    ``pl.concat`` each frame over the sets and ``assess_unpriced_counts`` sums them, giving
    the assessment of all the records together.

    Example:
        >>> import polars as pl
        >>> priced = pl.DataFrame({"status": [1, 52], "cost": [100.0, None],
        ...     "cost_category": ["elective"] * 2, "pod": ["EL"] * 2, "hrg_code": ["FZ91A", "XX99Z"]})
        >>> unpriced_counts(priced)["reasons"].select("reason", "value", "n_records").rows()
        [('hrg_code not in any table of the chain', 'XX99Z', 1)]
    """
    lf = priced.lazy()
    names = lf.collect_schema().names()
    cols = [c for c in names if c not in ("invalid_reason", "source_file", "status")]
    reason, value = _reason_and_value(names, cols)
    has_file = "source_file" in names
    file = pl.col("source_file").cast(pl.String) if has_file else pl.lit(None, pl.String)
    unpriced = pl.col("status") >= NOT_PRICED_FROM
    reasons = lf.filter(unpriced).group_by(
        "status", reason.alias("reason"), value.alias("value"), file.alias("source_file"),
    ).agg(pl.len().cast(pl.Int64).alias("n_records"))
    files = lf.filter(file.is_not_null()).group_by(file.alias("source_file")).agg(
        pl.len().cast(pl.Int64).alias("n_records"), unpriced.sum().cast(pl.Int64).alias("n_unpriced"),
        *([pl.col("hrg_code").is_null().sum().cast(pl.Int64).alias("n_no_hrg")]
          if "hrg_code" in names else []),
    )
    if not has_file:
        files = files.limit(0)
    categories, reasons_df, files_df = pl.collect_all([_counts_from_priced(lf, names), reasons, files])
    return {"categories": categories, "reasons": reasons_df, "files": files_df}


def assess_unpriced_counts(counts: Mapping[str, pl.DataFrame], warn: float = WARN_SHARE,
                           fail: float = FAIL_SHARE) -> UnpricedAssessment:
    """``assess_unpriced`` of priced records from their ``unpriced_counts`` (or those of
    disjoint sets of records, each frame stacked): the same assessment, read from the
    aggregates alone (the Spark engine collects them from its buckets)."""
    check_thresholds(warn, fail)
    keys = ["status", "reason", "value", "source_file"]
    rows = counts["reasons"].group_by(keys).agg(pl.col("n_records").sum())
    files = counts["files"]
    files = files.group_by("source_file").agg(pl.exclude("source_file").sum())
    n = int(counts["categories"]["n_records"].sum())
    return _assessment(counts["categories"], _reasons(rows, n), _file_lines(rows, files), warn,
                       fail, has_reasons=True)


def _assessment(counts: pl.DataFrame, reasons: pl.DataFrame, file_lines: list[str], warn: float,
                fail: float, has_reasons: bool) -> UnpricedAssessment:
    """The assessment from counts per category and pod, the reasons and the file lines."""
    cats = _category_shares(counts.select("category", "pod", "n_records", "n_unpriced",
                                          "n_excluded", "cost"))
    n_records = int(cats["n_records"].sum())
    n_unpriced = int(cats["n_unpriced"].sum())
    imputed = float(cats["_imputed"].fill_null(0.0).sum())
    cost = float(cats["cost"].sum())
    if n_unpriced == 0:
        share_gbp = 0.0
    elif cats["_imputed"].null_count() == cats.filter(pl.col("n_unpriced") > 0).height:
        share_gbp = 1.0  # nothing priced anywhere to value the unpriced records by
    else:
        share_gbp = imputed / (imputed + cost) if imputed + cost > 0 else 1.0
    share_records = n_unpriced / n_records if n_records else 0.0
    whole = cats.filter((pl.col("n_unpriced") > 0) & (pl.col("n_priced") == 0))["category"].to_list()
    worst = max(share_records, share_gbp)
    level: Level = "fail" if worst > fail or whole else "warn" if worst > warn else "ok"
    messages = _messages(level, n_records, n_unpriced, share_records, share_gbp, warn, fail,
                         whole, reasons, file_lines, has_reasons=has_reasons)
    return UnpricedAssessment(
        level=level, n_records=n_records, n_unpriced=n_unpriced, share_records=share_records,
        share_gbp=share_gbp, warn=warn, fail=fail, categories=cats.drop("_imputed"),
        whole_categories=whole, reasons=reasons, file_lines=file_lines, messages=messages,
    )


def _messages(level: str, n: int, n_unpriced: int, share_records: float, share_gbp: float,
              warn: float, fail: float, whole: list[str], reasons: pl.DataFrame,
              file_lines: list[str], has_reasons: bool) -> list[str]:
    if n_unpriced == 0:
        return []
    head = (f"{n_unpriced:,} of {n:,} records unpriced ({share_records:.1%} of records, "
            f"{share_gbp:.1%} of £-weighted activity)")
    if level == "fail":
        why = (f"whole categories unpriced: {', '.join(whole)}" if whole
               else f"above the failure threshold of {fail:.0%}")
        head += f": {why}; costs and estimates built on them are not to be trusted"
    elif level == "warn":
        head += f": above the warning threshold of {warn:.0%}; costs are underestimates"
    out = [head]
    for r in reasons.head(_TOP).iter_rows(named=True):
        out.append("  " + _reason_line(r))
    if reasons.height > _TOP:
        out.append(f"  ... and {reasons.height - _TOP} more reasons (see coverage.csv)")
    if not has_reasons:
        out.append("  the reasons are in the priced records (status_name, invalid_reason) and "
                   "the run's coverage.csv")
    out += ["  " + f for f in file_lines]
    return out


# --------------------------------------------------------------------------------------
# Per arm, window and category
# --------------------------------------------------------------------------------------


def _arm_rows(window_costs: pl.DataFrame | pl.LazyFrame, cohort: pl.DataFrame | pl.LazyFrame | None,
              group: str, treated: str, by: str) -> pl.LazyFrame | None:
    """patient_id, window, category, arm, n_records, n_unpriced: None without unpriced counts."""
    lf = window_costs.lazy()
    names = lf.collect_schema().names()
    if not {"n_records", "n_unpriced", "patient_id", "window"} <= set(names):
        return None
    col = by if by in names else "category"
    if cohort is not None:
        coh = cohort.lazy()
        if group in coh.collect_schema().names():
            lf = lf.drop([group], strict=False).join(
                coh.select(pl.col("patient_id").cast(pl.String), pl.col(group)),
                on="patient_id", how="left")
            names = [*names, group]
    arm = (pl.when(pl.col(group).cast(pl.String) == treated).then(pl.lit("treated"))
           .otherwise(pl.lit("control")) if group in names else pl.lit("all"))
    return lf.select(
        pl.col("patient_id").cast(pl.String), pl.col("window").cast(pl.Int64),
        pl.col(col).cast(pl.String).alias("category"), arm.alias("arm"),
        pl.col("n_records").cast(pl.Int64), pl.col("n_unpriced").cast(pl.Int64),
    )


def _with_total(rows: pl.LazyFrame) -> pl.LazyFrame:
    total = rows.group_by("patient_id", "window", "arm").agg(
        pl.col("n_records", "n_unpriced").sum()
    ).with_columns(pl.lit(_TOTAL).alias("category"))
    return pl.concat([rows, total.select(rows.collect_schema().names())])


def _counts(keys: Sequence[str]) -> list[pl.Expr]:
    return [
        (pl.col("n_records") > 0).sum().cast(pl.Int64).alias("n_patient_windows"),
        (pl.col("n_unpriced") > 0).sum().cast(pl.Int64).alias("n_patient_windows_unpriced"),
        pl.col("n_records").sum().alias("n_records"),
        pl.col("n_unpriced").sum().alias("n_unpriced"),
    ]


def _order(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    known = [*COST_CATEGORIES, _TOTAL]
    return frame.with_columns(
        pl.col("category").replace_strict({c: i for i, c in enumerate(known)},
                                          default=len(known)).alias("_o")
    ).sort("_o", *keys).drop("_o")


def unpriced_by_window(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    group: str = "group",
    treated: str = "intervention",
    by: str = "category",
    windows: Sequence[int] | None = None,
) -> pl.DataFrame:
    """Unpriced records and patient-windows per arm, window and category (and in total).

    Args:
        window_costs: long window output of ``costing.cost_by_window`` (n_records,
            n_unpriced per patient x window x category).
        cohort: optional cohort whose ``group`` column replaces that of ``window_costs``.
        group: arm column; treated: its treated value (every other value is "control");
            without the column every patient is in arm "all".
        by: category column ("pod" reads ``category`` when there is no ``pod`` column).
        windows: windows to count (default: all).

    Returns:
        category, window, arm, n_patient_windows (with any record), n_patient_windows_unpriced
        (with an unpriced record), n_records, n_unpriced, unpriced_share (of records; null
        with no records). Empty when the window costs carry no n_unpriced column.

    Example:
        >>> import polars as pl
        >>> wc = pl.DataFrame({"patient_id": ["a", "b"], "window": [0, 0],
        ...     "category": ["ae", "ae"], "cost": [0.0, 120.0], "n_records": [2, 1],
        ...     "n_unpriced": [2, 0], "group": ["intervention", "control"]})
        >>> unpriced_by_window(wc).filter(pl.col("category") == "ae")["unpriced_share"].to_list()
        [0.0, 1.0]
    """
    rows = _arm_rows(window_costs, cohort, group, treated, by)
    keys = ["window", "arm"]
    schema = {"category": pl.String, "window": pl.Int64, "arm": pl.String,
              "n_patient_windows": pl.Int64, "n_patient_windows_unpriced": pl.Int64,
              "n_records": pl.Int64, "n_unpriced": pl.Int64, "unpriced_share": pl.Float64}
    if rows is None:
        return pl.DataFrame(schema=schema)
    if windows is not None:
        rows = rows.filter(pl.col("window").is_in(list(windows)))
    out = _with_total(rows).group_by("category", *keys).agg(_counts(keys)).with_columns(
        pl.when(pl.col("n_records") > 0).then(pl.col("n_unpriced") / pl.col("n_records"))
        .alias("unpriced_share")
    ).collect()
    return _order(out.select(list(schema)), keys)


def with_unpriced_status(
    table: pl.DataFrame,
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None,
    pre: Sequence[int],
    post: Sequence[int],
    group: str = "group",
    treated: str = "intervention",
    by: str = "category",
    withhold: float = WITHHOLD_SHARE,
) -> pl.DataFrame:
    """A ``did`` table with unpriced counts per arm and period, and a status per category.

    Adds, for arm in (treated, control) and period in (pre, post): ``n_records_<arm>_<period>``,
    ``n_unpriced_<arm>_<period>``, ``unpriced_share_<arm>_<period>``; then
    ``unpriced_patient_windows_share`` (of the category's patient-windows with activity in
    the pre and post windows, the share holding an unpriced record), ``estimate_status`` and
    ``estimate_note``. Status: "ok"; "partly_unpriced" (some unpriced activity: the arm
    means are underestimates, the estimate is given); "withheld_unpriced" (more than
    ``withhold`` of the patient-windows hold unpriced records, or, for the total, a category
    was withheld: every £ figure of the row is null); "unpriced_unknown" (the window costs
    carry no n_unpriced column); "no_activity" (no record in these windows: the estimate
    is a true 0).
    """
    rows = _arm_rows(window_costs, cohort, group, treated, by)
    if rows is None:
        return table.with_columns(
            pl.lit("unpriced_unknown").alias("estimate_status"),
            pl.lit("the window costs have no n_unpriced column, so unpriced activity is not "
                   "known; pass costing.cost_by_window output").alias("estimate_note"))
    period = {**{w: "pre" for w in pre}, **{w: "post" for w in post}}
    rows = rows.filter(pl.col("window").is_in(list(period))).with_columns(
        pl.col("window").replace_strict(period, return_dtype=pl.String).alias("period"))
    counts = _with_total(rows.drop("period")).join(
        rows.select("window", "period").unique(), on="window", how="left"
    ).group_by("category", "arm", "period").agg(_counts(["arm", "period"])).collect()
    cols: list[pl.Expr] = []
    for arm in ("treated", "control"):
        for p in ("pre", "post"):
            this = (pl.col("arm") == arm) & (pl.col("period") == p)
            n_r, n_u = f"n_records_{arm}_{p}", f"n_unpriced_{arm}_{p}"
            cols += [pl.col("n_records").filter(this).sum().alias(n_r),
                     pl.col("n_unpriced").filter(this).sum().alias(n_u)]
    shares = [
        pl.when(pl.col(f"n_records_{arm}_{p}") > 0)
        .then(pl.col(f"n_unpriced_{arm}_{p}") / pl.col(f"n_records_{arm}_{p}"))
        .alias(f"unpriced_share_{arm}_{p}")
        for arm in ("treated", "control") for p in ("pre", "post")
    ]
    order = [c for arm in ("treated", "control") for p in ("pre", "post")
             for c in (f"n_records_{arm}_{p}", f"n_unpriced_{arm}_{p}", f"unpriced_share_{arm}_{p}")]
    wide = _order(counts.group_by("category").agg(*cols).with_columns(shares)
                  .select("category", *order), [])
    pw = counts.group_by("category").agg(pl.col("n_patient_windows", "n_patient_windows_unpriced").sum())
    wide = wide.join(pw, on="category", how="left").with_columns(
        pl.when(pl.col("n_patient_windows") > 0)
        .then(pl.col("n_patient_windows_unpriced") / pl.col("n_patient_windows"))
        .otherwise(0.0).alias("unpriced_patient_windows_share"),
        pl.sum_horizontal(pl.col("^n_unpriced_.*$")).alias("_n_unpriced"),
    )
    over = pl.col("unpriced_patient_windows_share") > withhold
    withheld = wide.filter(over & (pl.col("category") != _TOTAL))["category"].to_list()
    share = pl.format("{}%", (pl.col("unpriced_patient_windows_share") * 100).round(1))
    total_out = (pl.col("category") == _TOTAL) & pl.lit(bool(withheld))
    status = (
        pl.when(over | total_out).then(pl.lit("withheld_unpriced"))
        .when(pl.col("_n_unpriced") > 0).then(pl.lit("partly_unpriced"))
        .when(pl.col("n_patient_windows") == 0).then(pl.lit("no_activity"))
        .otherwise(pl.lit("ok"))
    )
    note = (
        pl.when(total_out).then(pl.lit(
            f"includes {', '.join(withheld)}, whose estimate is withheld (mostly unpriced): no "
            "estimate for the total"))
        .when(over).then(pl.concat_str([
            share, pl.lit(f" of the patient-windows with activity hold unpriced records (more "
                          f"than {withhold:.0%}): no estimate; see unpriced.csv and the run's "
                          "unpriced summary for the reasons")]))
        .when(pl.col("_n_unpriced") > 0).then(pl.concat_str([
            pl.col("_n_unpriced").cast(pl.String),
            pl.lit(" unpriced records ("), share,
            pl.lit(" of patient-windows hold one): arm means are underestimates")]))
    )
    wide = wide.with_columns(status.alias("estimate_status"), note.alias("estimate_note")).drop(
        "_n_unpriced", "n_patient_windows", "n_patient_windows_unpriced")
    out = table.join(wide, on="category", how="left").with_columns(
        pl.col("estimate_status").fill_null("ok"))
    money = [c for c, t in table.schema.items() if t.is_float() and c not in ("ci_level",)]
    gone = pl.col("estimate_status") == "withheld_unpriced"
    return out.with_columns(pl.when(~gone).then(pl.col(c)).alias(c) for c in money)
