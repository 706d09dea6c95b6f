"""The cost of an activity change: national average unit costs per activity category.

``unit_costs`` turns a reference-cost edition (the National Schedule of Reference Costs, as
shipped in ``tariffs/reference_cost/<edition>``) into the activity-weighted national average
cost of an emergency admission, an elective admission, a day case, an outpatient first and
follow-up attendance and an A&E attendance per department type. ``cost_of_change`` prices a
table of activity changes with them: the planned-versus-actual arithmetic of a programme
review ("emergency admissions rose by 87,000 against a planned fall of 106,000, costing
£311 million more than planned").

Each unit cost is ``sum(activity x unit cost) / sum(activity)`` over the schedule rows the
category takes (its departments and currencies); excess bed days add their cost to the
numerator and nothing to the denominator, as the schedule's own "Total HRGs" sheet counts
them (its activity excludes excess bed days, its cost includes them). Admitted activity is
counted per finished consultant episode, as the schedule counts it.

``unit_costs_from_tariff`` gives the same categories at national tariff prices: each
schedule row's tariff price (by HRG, treatment function or A&E department type, the rules of
``_DEPARTMENT_PRICE``) weighted by that row's activity in the schedule, because the tariff
has no activity counts of its own. Rows the tariff has no price for are left out of the
average and reported: ``tariff_coverage`` (the share of the schedule's activity that had a
price), ``left_out`` (the codes, largest first) and ``notes``. The 2016-17 tariff is keyed on
HRG4 codes and the schedules on HRG4+, so its coverage of admitted care is low.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from costing.errors import ConfigError, InputError

__all__ = [
    "UNIT_COST_CATEGORIES", "cost_of_change", "unit_costs_from_reference", "unit_costs_from_tariff",
]


@dataclass(frozen=True)
class _Category:
    """Which schedule rows make one category: departments counted, excess bed days, filters."""

    name: str
    description: str
    departments: tuple[str, ...]  # activity and cost
    excess_bed_days: tuple[str, ...] = ()  # cost only
    currencies: tuple[str, ...] = ()  # empty: every currency of the departments
    service_prefix: str | None = None  # A&E department type: service codes T01A, T01NA, ...
    unit: str = "FCEs"  # what the schedule counts
    unpriced: str = (  # why a tariff may have no price for a row of this category
        "HRG codes the tariff has no price for: an HRG of another design (an HRG4 tariff "
        "against an HRG4+ schedule) or one with no national price")

    def rows(self, rc: pl.DataFrame, departments: tuple[str, ...]) -> pl.DataFrame:
        keep = pl.col("department_code").is_in(departments)
        if self.currencies:
            keep &= pl.col("currency_code").is_in(self.currencies)
        if self.service_prefix is not None:
            keep &= pl.col("service_code").str.starts_with(self.service_prefix)
        return rc.filter(keep)

    def basis(self, excess_bed_days: bool = True) -> str:
        parts = [f"departments {'+'.join(self.departments)}"]
        if self.currencies:
            parts.append(f"currencies {', '.join(self.currencies)}")
        if self.service_prefix:
            parts.append(f"service codes {self.service_prefix}*")
        text = "; ".join(parts)
        if self.excess_bed_days and excess_bed_days:
            text += f"; plus the cost (not the days) of {'+'.join(self.excess_bed_days)}"
        return text


_OP_UNPRICED: Final = ("non-consultant-led (NCL) attendances, treatment functions with no "
                       "national price, and rows without a treatment function (a schedule "
                       "not split by it)")
_AE_UNPRICED: Final = ("type 4 departments (no national price), HRGs the tariff has no price "
                       "for, and rows without a department type (a schedule not split by it)")
_FIRST: Final = ("WF01B", "WF02B")  # face-to-face first attendances, single and multi-professional
_FOLLOW_UP: Final = ("WF01A", "WF02A")  # face-to-face follow-ups

_CATEGORIES: Final = (
    _Category("emergency_admission", "Emergency (non-elective) admission, long and short stay",
              ("NEL", "NES"), ("NEL_XS",)),
    _Category("elective_admission", "Elective admission: ordinary elective or day case",
              ("EL", "DC"), ("EL_XS",)),
    _Category("elective_inpatient", "Ordinary elective admission (not a day case)",
              ("EL",), ("EL_XS",)),
    _Category("day_case", "Day case", ("DC",)),
    _Category("outpatient_first", "Outpatient first attendance, face to face",
              ("CL", "NCL"), currencies=_FIRST, unit="attendances", unpriced=_OP_UNPRICED),
    _Category("outpatient_follow_up", "Outpatient follow-up attendance, face to face",
              ("CL", "NCL"), currencies=_FOLLOW_UP, unit="attendances", unpriced=_OP_UNPRICED),
    _Category("ae", "A&E attendance, any department type", ("AE",), unit="attendances",
              unpriced=_AE_UNPRICED),
    *(
        _Category(f"ae_type_{k}", f"A&E attendance, department type {k}", ("AE",),
                  service_prefix=f"T0{k}", unit="attendances", unpriced=_AE_UNPRICED)
        for k in (1, 2, 3, 4)
    ),
)

UNIT_COST_CATEGORIES: Final = tuple(c.name for c in _CATEGORIES)
"""The categories ``unit_costs`` returns, in order."""

_SCHEMA: Final = {
    "category": pl.String, "description": pl.String, "activity": pl.Float64,
    "cost": pl.Float64, "unit_cost": pl.Float64, "basis": pl.String,
    "reference_cost_edition": pl.String,
}


def _total(rows: pl.DataFrame) -> tuple[float, float]:
    priced = rows.filter(pl.col("unit_cost").is_not_null())
    activity = float(priced["activity"].fill_null(0).sum())
    cost = float((priced["activity"].fill_null(0) * priced["unit_cost"]).sum())
    return activity, cost


def unit_costs_from_reference(reference_costs: pl.DataFrame, edition: str) -> pl.DataFrame:
    """Activity-weighted national average unit costs from one reference-cost table.

    Args:
        reference_costs: the ``reference_costs`` resource of a reference-cost edition
            (department_code, service_code, currency_code, activity, unit_cost).
        edition: the edition's name, recorded on every row.

    Returns:
        One row per category of ``UNIT_COST_CATEGORIES``: category, description, activity
        (units counted), cost (GBP, excess bed days included where the category has them),
        unit_cost (cost / activity), basis (the departments and currencies used, in words)
        and reference_cost_edition. A category the edition has no activity for (an extract
        of admitted care only, say) has null figures and a basis saying so.
    """
    rows: list[tuple[object, ...]] = []
    for cat in _CATEGORIES:
        activity, cost = _total(cat.rows(reference_costs, cat.departments))
        if cat.excess_bed_days:
            cost += _total(cat.rows(reference_costs, cat.excess_bed_days))[1]
        if activity <= 0:
            # an edition without these departments (e.g. admitted care only): no unit cost
            rows.append((cat.name, cat.description, None, None, None,
                         f"not in this edition: no activity in {cat.basis()}", edition))
            continue
        rows.append((cat.name, cat.description, activity, cost, cost / activity,
                     "activity-weighted national average: " + cat.basis(), edition))
    return pl.DataFrame(rows, schema=_SCHEMA, orient="row")


# ---------------------------------------------------------------------------------------
# tariff prices weighted by the schedule's activity

_TARIFF_SCHEMA: Final = {
    **_SCHEMA, "tariff_edition": pl.String, "schedule_activity": pl.Float64,
    "tariff_coverage": pl.Float64, "excess_bed_days": pl.Float64,
    "excess_bed_days_priced": pl.Float64, "n_left_out": pl.Int64, "notes": pl.String,
    "left_out": pl.String,
}

# The tariff columns each schedule row needs, by resource (prefixed "t_" once joined).
_TARIFF_COLUMNS: Final = {
    "apc": ("hrg_code", ("combined_dc_el_price", "dc_price", "el_price", "nel_price",
                         "excess_bed_day_price", "sse_applicable", "sse_price")),
    "op_attendance": ("treatment_function_code", ("first_single_price", "first_multi_price",
                                                  "followup_single_price",
                                                  "followup_multi_price")),
    "ae": ("hrg_code", ("type_1_2_price", "type_3_price")),
}
_TARIFF_DTYPES: Final = {"sse_applicable": pl.Boolean}
_LOW_COVERAGE: Final = 0.5  # below this share of activity priced, the notes warn

# The tariff's price rules at the level of a schedule row (a department x HRG, treatment
# function or A&E department type), as costing.pricing applies them to a record:
# combined day case / elective price first; the reduced short-stay emergency price where the
# HRG has one; outpatient attendance prices by first / follow-up x single / multi-professional
# (consultant-led only); A&E types 1 and 2 share a price, type 3 has its own, type 4 none.


def _elective_price() -> pl.Expr:
    return pl.coalesce("t_combined_dc_el_price", "t_el_price")


def _day_case_price() -> pl.Expr:
    return pl.coalesce("t_combined_dc_el_price", "t_dc_price")


def _short_stay_emergency_price() -> pl.Expr:
    sse = pl.col("t_sse_applicable").fill_null(False) & pl.col("t_sse_price").is_not_null()
    return pl.when(sse).then(pl.col("t_sse_price")).otherwise(pl.col("t_nel_price"))


def _excess_bed_day_price(spell_price: pl.Expr) -> pl.Expr:
    """The per-day long-stay payment, for an HRG whose spells the tariff prices."""
    return pl.when(spell_price.is_not_null()).then(pl.col("t_excess_bed_day_price"))


_OP_PRICE: Final = {"WF01B": "t_first_single_price", "WF02B": "t_first_multi_price",
                    "WF01A": "t_followup_single_price", "WF02A": "t_followup_multi_price"}


def _op_attendance_price() -> pl.Expr:
    cur = pl.col("currency_code")  # the currencies are exclusive: at most one is not null
    return pl.coalesce([pl.when(cur == code).then(pl.col(column))
                        for code, column in _OP_PRICE.items()])


def _ae_price() -> pl.Expr:
    dept_type = pl.col("service_code").str.slice(1, 2)  # T01A -> 01
    return (pl.when(dept_type.is_in(["01", "02"])).then(pl.col("t_type_1_2_price"))
            .when(dept_type == "03").then(pl.col("t_type_3_price")))


# department -> (the tariff resource it looks up, its price rule, the rule in words)
_DEPARTMENT_PRICE: Final = {
    "EL": ("apc", _elective_price(),
           ("EL at the ordinary elective spell price (the combined day case / elective price "
            "where the tariff gives one)")),
    "DC": ("apc", _day_case_price(),
           "DC at the day-case spell price (or the combined day case / elective price)"),
    "NEL": ("apc", pl.col("t_nel_price"), "NEL at the non-elective spell price"),
    "NES": ("apc", _short_stay_emergency_price(),
            ("NES at the reduced short-stay emergency price where the tariff applies one, else "
             "the non-elective price (the schedule has no age split: the tariff's 19-and-over "
             "condition is not applied)")),
    "EL_XS": ("apc", _excess_bed_day_price(_elective_price()),
              "EL_XS days at the tariff's per-day long-stay payment"),
    "NEL_XS": ("apc", _excess_bed_day_price(pl.col("t_nel_price")),
               "NEL_XS days at the tariff's per-day long-stay payment"),
    "CL": ("op_attendance", _op_attendance_price(),
           ("CL (consultant-led) at the treatment function's attendance price (WF01B first "
            "single, WF02B first multi-professional, WF01A / WF02A follow-up)")),
    "NCL": ("op_attendance", pl.lit(None, dtype=pl.Float64),
            ("NCL (non-consultant-led): no national price (the tariff prices consultant-led "
             "attendances only)")),
    "AE": ("ae", _ae_price(),
           ("AE at the type 1 and 2 price (T01*, T02*) or the type 3 price (T03*); type 4 "
            "(T04*) has no national price")),
}


def _tariff_key() -> pl.Expr:
    """What a left-out row is listed as: the HRG, 'CL 100' (department and treatment
    function) or 'T01A VB01Z' (A&E service and HRG); a schedule without service codes
    (National Cost Collection 2023-24 on): 'CL WF01B', 'AE VB01Z'."""
    d, service, currency = pl.col("department_code"), pl.col("service_code"), pl.col("currency_code")
    return (pl.when(d.is_in(["CL", "NCL"])).then(
                pl.concat_str(d, pl.lit(" "), pl.coalesce(service, currency)))
            .when(d == "AE").then(pl.concat_str(pl.coalesce(service, d), pl.lit(" "), currency))
            .otherwise(currency).fill_null("(no code)"))


def _tariff_frame(tariff: Mapping[str, pl.DataFrame], resource: str) -> pl.DataFrame:
    key, columns = _TARIFF_COLUMNS[resource]
    schema = {key: pl.String, **{c: _TARIFF_DTYPES.get(c, pl.Float64) for c in columns}}
    frame = tariff.get(resource)
    if frame is None:  # an edition without this sheet prices none of its rows
        return pl.DataFrame(schema={f"t_{resource}_key": pl.String,
                                    **{f"t_{c}": t for c, t in schema.items() if c != key}})
    if key not in frame.columns:
        raise ConfigError(f"tariff {resource}: no {key} column; pass the resources of a tariff "
                          "edition (TableSet.get('tariff', edition).frames)")
    return frame.select(  # a price column the edition lacks: no price of that kind
        pl.col(key).cast(pl.String).alias(f"t_{resource}_key"),
        *((pl.col(c) if c in frame.columns else pl.lit(None)).cast(schema[c]).alias(f"t_{c}")
          for c in columns))


def _with_tariff_prices(reference_costs: pl.DataFrame,
                        tariff: Mapping[str, pl.DataFrame]) -> pl.DataFrame:
    """The schedule's rows with ``tariff_price`` (null: the tariff has none) and ``tariff_key``."""
    rc = reference_costs.with_columns(
        pl.col("activity").cast(pl.Float64),
        *(pl.when(pl.col("department_code").is_in(
            [d for d, (r, _, _) in _DEPARTMENT_PRICE.items() if r == resource]))
          .then(pl.col("service_code" if resource == "op_attendance" else "currency_code"))
          .alias(f"t_{resource}_key")
          for resource in _TARIFF_COLUMNS),
    )
    for resource in _TARIFF_COLUMNS:
        rc = rc.join(_tariff_frame(tariff, resource), on=f"t_{resource}_key", how="left",
                     maintain_order="left")
    price = pl.coalesce([  # one rule per department: at most one is not null
        pl.when(pl.col("department_code") == dept).then(rule)
        for dept, (_, rule, _) in _DEPARTMENT_PRICE.items()])
    return rc.select(*reference_costs.columns, price.alias("tariff_price"),
                     _tariff_key().alias("tariff_key"))


def _share(x: float) -> str:
    """A share as a percentage that never rounds a part to none or to all."""
    text = f"{x:.1%}"
    if 0 < x < 0.001:
        return "<0.1%"
    if 0.999 < x < 1:
        return ">99.9%"
    return text


def _rule_words(departments: tuple[str, ...]) -> str:
    return "; ".join(_DEPARTMENT_PRICE[d][2] for d in departments)


def _left_out(rows: pl.DataFrame) -> pl.DataFrame:
    """The codes without a tariff price, with their activity, largest first."""
    return (rows.filter(pl.col("tariff_price").is_null())
            .group_by("tariff_key").agg(pl.col("activity").sum())
            .sort(["activity", "tariff_key"], descending=[True, False]))


def _tariff_category(cat: _Category, priced: pl.DataFrame, edition: str,
                     tariff_edition: str) -> dict[str, object]:
    rows = cat.rows(priced, cat.departments).filter(pl.col("activity").is_not_null())
    schedule = float(rows["activity"].sum())
    hit = rows.filter(pl.col("tariff_price").is_not_null())
    activity = float(hit["activity"].sum())
    cost = float((hit["activity"] * hit["tariff_price"]).sum())
    xs = cat.rows(priced, cat.excess_bed_days).filter(pl.col("activity").is_not_null())
    xs_hit = xs.filter(pl.col("tariff_price").is_not_null())
    xs_days, xs_priced = float(xs["activity"].sum()), float(xs_hit["activity"].sum())
    cost += float((xs_hit["activity"] * xs_hit["tariff_price"]).sum())
    missed = _left_out(rows)
    base = {"category": cat.name, "description": cat.description,
            "reference_cost_edition": edition, "tariff_edition": tariff_edition,
            "schedule_activity": schedule, "excess_bed_days": xs_days if cat.excess_bed_days
            else None, "excess_bed_days_priced": xs_priced if cat.excess_bed_days else None,
            "n_left_out": missed.height,
            "left_out": " ".join(missed["tariff_key"].to_list())}
    if schedule <= 0:
        return base | {"activity": None, "cost": None, "unit_cost": None, "n_left_out": 0,
                       "left_out": "", "basis": f"not in this edition: no activity in {cat.basis()}",
                       "notes": "no activity in the schedule to weight the tariff's prices by"}
    coverage = activity / schedule
    basis = (f"tariff {tariff_edition} prices weighted by reference costs {edition} activity "
             f"({cat.unit}): {_rule_words(cat.departments)}")
    if cat.excess_bed_days:
        basis += (f"; plus the schedule's {'+'.join(cat.excess_bed_days)} excess bed days of the "
                  "priced HRGs (days beyond the schedule's own trim point: the schedule does not "
                  "count days beyond the tariff's) at the tariff's per-day long-stay payment, in "
                  "the cost and not in the activity")
    basis += ("; unit cost = (sum(activity x tariff price)"
              + (" + excess bed day cost" if cat.excess_bed_days else "")
              + f") / sum(activity) over the rows of {cat.basis(excess_bed_days=False)} with a "
              "tariff price")
    notes = f"{_share(coverage)} of the schedule's {schedule:,.0f} {cat.unit} had a tariff price"
    if missed.height:
        top = ", ".join(f"{k} {a:,.0f}" for k, a in missed.head(5).iter_rows())
        notes += (f"; left out: {missed.height:,} code{'s' if missed.height > 1 else ''} with "
                  f"{_share(1 - coverage)} of the activity (largest: {top}; all in left_out): "
                  f"{cat.unpriced}")
    if 0 < coverage < _LOW_COVERAGE:
        notes += ("; with so little of the activity priced the average is that of the priced "
                  "codes only and need not stand for the category: compare it with the "
                  "reference-cost unit cost, or use a tariff of the schedule's HRG design")
    if cat.excess_bed_days:
        notes += (f"; excess bed days: {xs_priced:,.0f} of the schedule's {xs_days:,.0f} priced"
                  if xs_days else "; the schedule counts no excess bed days (none priced)")
    if activity <= 0:
        return base | {"activity": 0.0, "cost": None, "unit_cost": None,
                       "tariff_coverage": 0.0, "basis": basis,
                       "notes": "no unit cost: none " + notes.removeprefix(_share(0.0) + " ")}
    return base | {"activity": activity, "cost": cost, "unit_cost": cost / activity,
                   "tariff_coverage": coverage, "basis": basis, "notes": notes}


def unit_costs_from_tariff(reference_costs: pl.DataFrame, tariff: Mapping[str, pl.DataFrame],
                           edition: str, tariff_edition: str) -> pl.DataFrame:
    """Activity-weighted national average tariff prices per category (the tariff has no
    activity counts, so a reference-cost schedule's counts weight its prices).

    Each schedule row of a category (department x HRG; outpatients department x treatment
    function x currency; A&E department type x HRG) gets the tariff's price for it: EL the
    ordinary elective price (or the combined day case / elective price), DC the day-case
    price (or combined), NEL the non-elective price, NES the reduced short-stay emergency
    price where the tariff applies one (else the non-elective price), CL the consultant-led
    attendance price of its treatment function (WF01B, WF02B, WF01A, WF02A), NCL none (no
    national price), AE the type 1 and 2 or the type 3 price (type 4: none). The unit cost
    is ``sum(activity x price) / sum(activity)`` over the rows with a price: the weights are
    the schedule's activity (FCEs for admitted care, attendances). The schedule's excess bed
    days (EL_XS, NEL_XS: days beyond its own episode trim point; the schedule has no
    length-of-stay distribution to count days beyond the tariff's trim point) of the priced
    HRGs add their days x the tariff's per-day long-stay payment to the cost and nothing to
    the activity, as in ``unit_costs_from_reference``. Schedules without excess-bed-day
    departments (2018-19 on) add none.

    Rows without a tariff price are left out of the average, never priced at zero:
    ``tariff_coverage`` is the share of the schedule's activity that had a price and
    ``left_out`` lists the codes (HRG; "CL 100" department and treatment function; "T04A
    VB01Z" A&E service and HRG), largest activity first. HRG codes are matched as written:
    the 2016-17 tariff is keyed on HRG4 codes and the schedules on HRG4+, so few of its
    admitted care codes are in a schedule and its coverage there is low.

    Args:
        reference_costs: the ``reference_costs`` resource of a reference-cost edition.
        tariff: the tariff edition's resources by name: ``apc``, ``op_attendance``, ``ae``
            (a missing one prices none of its rows).
        edition: the reference-cost edition's name. tariff_edition: the tariff's.

    Returns:
        The columns of ``unit_costs_from_reference`` (``activity``: the priced activity, the
        weights; ``cost``: at tariff prices, excess bed days included; ``basis``: the method
        in words), then tariff_edition, schedule_activity (all the category's activity),
        tariff_coverage (activity / schedule_activity), excess_bed_days and
        excess_bed_days_priced (the schedule's days, and those priced; null where the category
        has none), n_left_out, notes (coverage, the largest codes left out, excess bed days)
        and left_out (every code left out, space-separated). A category with no priced
        activity has a null unit cost and a note saying so.

    Example:
        >>> import polars as pl
        >>> rc = pl.DataFrame({"department_code": ["DC", "DC"], "service_code": [None, None],
        ...     "currency_code": ["AA01A", "ZZ99Z"], "activity": [30.0, 10.0],
        ...     "unit_cost": [800.0, 900.0]}, schema_overrides={"service_code": pl.String})
        >>> apc = pl.DataFrame({"hrg_code": ["AA01A"], "dc_price": [700.0]})
        >>> uc = unit_costs_from_tariff(rc, {"apc": apc}, "x", "y")
        >>> uc.filter(pl.col("category") == "day_case").select(
        ...     "unit_cost", "tariff_coverage", "left_out").row(0)
        (700.0, 0.75, 'ZZ99Z')
    """
    priced = _with_tariff_prices(reference_costs, tariff)
    rows = [_tariff_category(cat, priced, edition, tariff_edition) for cat in _CATEGORIES]
    return pl.DataFrame(rows, schema=_TARIFF_SCHEMA)


def _counts_frame(counts: Mapping[str, float] | pl.DataFrame) -> pl.DataFrame:
    if isinstance(counts, pl.DataFrame):
        missing = [c for c in ("category", "change") if c not in counts.columns]
        if missing:
            raise InputError(
                f"counts: missing column(s) {', '.join(map(repr, missing))}; give a frame with "
                "category and change (activity change, e.g. actual minus planned admissions)"
            )
        return counts.with_columns(pl.col("change").cast(pl.Float64))
    return pl.DataFrame(
        {"category": list(counts), "change": [float(v) for v in counts.values()]},
        schema={"category": pl.String, "change": pl.Float64},
    )


def cost_of_change(
    counts: Mapping[str, float] | pl.DataFrame, unit_costs: pl.DataFrame
) -> pl.DataFrame:
    """Price a table of activity changes with national average unit costs.

    Args:
        counts: ``{category: change}`` or a frame with ``category`` and ``change`` columns
            (other columns are kept), e.g. ``{"emergency_admission": 193_000}`` for 87,000
            more admissions against a planned fall of 106,000. Categories are those of
            ``TableSet.unit_costs`` (``UNIT_COST_CATEGORIES``).
        unit_costs: the frame ``TableSet.unit_costs`` returns, from reference costs or from
            a tariff (``TableSet.unit_costs(edition, tariff=...)``).

    Returns:
        The counts with unit_cost, cost (change x unit_cost, GBP), basis and
        reference_cost_edition (and tariff_edition and tariff_coverage for tariff-based unit
        costs), plus a last row ``total`` (category "total") summing cost.

    Raises:
        InputError: a category with no unit cost, or a null change.

    Example:
        >>> import polars as pl
        >>> uc = pl.DataFrame({"category": ["day_case"], "unit_cost": [700.0],
        ...                    "basis": ["example"], "reference_cost_edition": ["x"]})
        >>> cost_of_change({"day_case": -10}, uc)["cost"].to_list()
        [-7000.0, -7000.0]
    """
    frame = _counts_frame(counts)
    if frame["change"].null_count():
        raise InputError("counts: a null change; give a number for every category")
    if "unit_cost" not in unit_costs.columns or "category" not in unit_costs.columns:
        raise ConfigError("unit_costs: pass the frame TableSet.unit_costs returns")
    keep = [c for c in ("unit_cost", "basis", "reference_cost_edition", "tariff_edition",
                        "tariff_coverage") if c in unit_costs.columns]
    priced = frame.join(unit_costs.select("category", *keep), on="category", how="left",
                        maintain_order="left")
    unknown = priced.filter(pl.col("unit_cost").is_null())["category"].to_list()
    if unknown:
        usable = unit_costs.filter(pl.col("unit_cost").is_not_null())["category"].to_list()
        why = [f"{c}: {n}" for c, n in unit_costs.filter(
            pl.col("category").is_in(unknown) & pl.col("unit_cost").is_null()
        ).select("category", "notes" if "notes" in unit_costs.columns else "basis").iter_rows()]
        raise InputError(
            f"counts: no unit cost for {', '.join(map(repr, unknown))}"
            + (f" ({'; '.join(why)})" if why else "")
            + f"; use one of {', '.join(usable)}"
        )
    priced = priced.with_columns((pl.col("change") * pl.col("unit_cost")).alias("cost"))
    total = pl.DataFrame({"category": ["total"], "cost": [float(priced["cost"].sum())]})
    return pl.concat([priced, total], how="diagonal_relaxed")
