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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

import polars as pl

from costing.errors import ConfigError, InputError

__all__ = ["UNIT_COST_CATEGORIES", "cost_of_change", "unit_costs_from_reference"]


@dataclass(frozen=True)
class _Category:
    """Which schedule rows make one category: departments counted, excess bed days, filters."""

    name: str
    description: str
    departments: tuple[str, ...]  # activity and cost
    excess_bed_days: tuple[str, ...] = ()  # cost only
    currencies: tuple[str, ...] = ()  # empty: every currency of the departments
    service_prefix: str | None = None  # A&E department type: service codes T01A, T01NA, ...

    def rows(self, rc: pl.DataFrame, departments: tuple[str, ...]) -> pl.DataFrame:
        keep = pl.col("department_code").is_in(departments)
        if self.currencies:
            keep &= pl.col("currency_code").is_in(self.currencies)
        if self.service_prefix is not None:
            keep &= pl.col("service_code").str.starts_with(self.service_prefix)
        return rc.filter(keep)

    def basis(self) -> str:
        parts = [f"departments {'+'.join(self.departments)}"]
        if self.currencies:
            parts.append(f"currencies {', '.join(self.currencies)}")
        if self.service_prefix:
            parts.append(f"service codes {self.service_prefix}*")
        text = "; ".join(parts)
        if self.excess_bed_days:
            text += f"; plus the cost (not the days) of {'+'.join(self.excess_bed_days)}"
        return text


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
              ("CL", "NCL"), currencies=_FIRST),
    _Category("outpatient_follow_up", "Outpatient follow-up attendance, face to face",
              ("CL", "NCL"), currencies=_FOLLOW_UP),
    _Category("ae", "A&E attendance, any department type", ("AE",)),
    *(
        _Category(f"ae_type_{k}", f"A&E attendance, department type {k}", ("AE",),
                  service_prefix=f"T0{k}")
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
    rows = []
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
        unit_costs: the frame ``TableSet.unit_costs`` returns.

    Returns:
        The counts with unit_cost, cost (change x unit_cost, GBP), basis and
        reference_cost_edition, plus a last row ``total`` (category "total") summing cost.

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
    keep = [c for c in ("unit_cost", "basis", "reference_cost_edition") if c in unit_costs.columns]
    priced = frame.join(unit_costs.select("category", *keep), on="category", how="left",
                        maintain_order="left")
    unknown = priced.filter(pl.col("unit_cost").is_null())["category"].to_list()
    if unknown:
        raise InputError(
            f"counts: no unit cost for {', '.join(map(repr, unknown))}; use one of "
            f"{', '.join(unit_costs['category'].to_list())}"
        )
    priced = priced.with_columns((pl.col("change") * pl.col("unit_cost")).alias("cost"))
    total = pl.DataFrame({"category": ["total"], "cost": [float(priced["cost"].sum())]})
    return pl.concat([priced, total], how="diagonal_relaxed")
