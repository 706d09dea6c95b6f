"""Report charts of window costs: the event-study chart and the window-means chart.

Both return a matplotlib Figure drawn by the Agg canvas (no display needed, no pyplot state,
the user's backend untouched) and write a PNG atomically when given a path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from costing.did import TOTAL, arm_window_means
from costing.errors import InputError
from costing.io import atomic_path
from costing.schema import COST_CATEGORIES

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["balance_chart", "did_chart", "event_study_chart", "window_means_chart"]

_LABELS = {
    "elective": "Elective admissions",
    "non_elective": "Emergency (non-elective) admissions",
    "outpatient": "Outpatient attendances",
    "ae": "A&E attendances",
    TOTAL: "Total secondary care",
}
_TREATED_COLOUR = "#c0392b"
_CONTROL_COLOUR = "#2c6fbb"
_PRETREND_COLOUR = "#7f8c8d"
_PALETTE = ("#2c6fbb", "#c0392b", "#27ae60", "#8e44ad", "#e67e22", "#16a085", "#7f8c8d")


def _figure(**kwargs: Any) -> Figure:
    """A Figure drawn by the Agg canvas: no pyplot state, no change to the user's backend."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(layout="constrained", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _gbp(value: float, _pos: object = None) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}£{abs(value):,.0f}"


def _label(category: str) -> str:
    return _LABELS.get(category, category)


def _window_label(window: int) -> str:
    return f"{window:+d}" if window else "0"


def _save(fig: Figure, path: str | os.PathLike[str] | None) -> None:
    if path is None:
        return
    target = Path(path)
    if target.suffix.lower() != ".png":
        raise InputError(f"{target}: charts are written as PNG; give a path ending in .png")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight")


def _unpriced_shares(window_costs: pl.DataFrame | pl.LazyFrame, cohort: Any, group: str,
                     treated: str, by: str, windows: Sequence[int] | None) -> dict[str, str]:
    """Per category, a title suffix giving its unpriced share of records, where it has any
    (unpriced records count as £0 in the means, so the reader must see how many there are)."""
    from costing.unpriced import WITHHOLD_SHARE, unpriced_by_window

    counts = unpriced_by_window(window_costs, cohort=cohort, group=group, treated=treated, by=by,
                                windows=windows)
    out: dict[str, str] = {}
    for r in counts.group_by("category").agg(
        pl.col("n_records", "n_unpriced", "n_patient_windows", "n_patient_windows_unpriced").sum()
    ).iter_rows(named=True):
        if not r["n_unpriced"]:
            continue
        share = r["n_unpriced"] / r["n_records"]
        mostly = (r["n_patient_windows_unpriced"] > WITHHOLD_SHARE * r["n_patient_windows"])
        out[r["category"]] = f"\n{share:.1%} of records unpriced" + (": no estimate" if mostly else "")
    return out


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return math.ceil(n / cols), cols


def _subgroup_blocks(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None,
    subgroups: str | Sequence[str] | None,
) -> list[tuple[str, pl.DataFrame | pl.LazyFrame, pl.DataFrame | pl.LazyFrame | None]]:
    """("All patients", everything), then ("column = value", that value's patients) for each
    value of each subgroup column, as ``did(subgroups=...)`` splits them (a patient with no
    value is in "all" only). The column comes from the cohort, else the window costs."""
    out: list[tuple[str, pl.DataFrame | pl.LazyFrame, pl.DataFrame | pl.LazyFrame | None]] = [
        ("All patients", window_costs, cohort)]
    columns = () if subgroups is None else (subgroups,) if isinstance(subgroups, str) else tuple(
        subgroups)
    for col in columns:
        source = next((f.lazy() for f in (cohort, window_costs)
                       if f is not None and col in f.lazy().collect_schema().names()), None)
        if source is None:
            raise InputError(f"subgroup column {col!r} is in neither the cohort nor the window "
                             "costs; add it to the cohort file or drop it from subgroups")
        values = (source.select("patient_id", pl.col(col).cast(pl.String).alias("_v"))
                  .drop_nulls("_v").unique().collect())
        for v in sorted(values["_v"].unique().to_list()):
            ids = values.filter(pl.col("_v") == v)["patient_id"].cast(pl.String).implode()
            keep = pl.col("patient_id").cast(pl.String).is_in(ids)
            out.append((f"{col} = {v}", window_costs.lazy().filter(keep),
                        None if cohort is None else cohort.lazy().filter(keep)))
    return out


def _event_panel(ax: Any, part: pl.DataFrame, title: str, bold: bool, measure: str,
                 fontsize: float) -> None:
    """One panel: both arms' means per window with their bands, the index date dashed."""
    for arm, colour, marker in (("control", _CONTROL_COLOUR, "s"),
                                ("treated", _TREATED_COLOUR, "o")):
        d = part.filter(pl.col("arm") == arm).sort("window")
        x = d["window"].to_list()
        label = f"{d['group'][0]} (n={d['n_patients'][0]:,})"
        ax.fill_between(x, d["ci_low"].to_list(), d["ci_high"].to_list(), color=colour,
                        alpha=0.15, linewidth=0)
        ax.plot(x, d["mean"].to_list(), color=colour, marker=marker, linewidth=2,
                markersize=5, label=label)
    ax.axvline(-0.5, color="#555555", linestyle="--", linewidth=1)
    ax.set_title(title, fontsize=fontsize, fontweight="bold" if bold else "normal")
    ws = sorted(part["window"].unique().to_list())
    ax.set_xticks(ws, [_window_label(w) for w in ws])
    if measure == "cost":
        ax.yaxis.set_major_formatter(_gbp)
    low = part["ci_low"].min()
    ax.set_ylim(bottom=min(0.0, float(low) if isinstance(low, (int, float)) else 0.0))
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)


def event_study_chart(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    windows: Sequence[int] | None = None,
    group: str = "group",
    treated: str = "intervention",
    by: str = "category",
    weight: str | None = None,
    cluster: str | None = "matched_set",
    censoring: str = "observed",
    ci: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
    title: str | None = None,
    path: str | os.PathLike[str] | None = None,
    measure: str = "cost",
    subgroups: str | Sequence[str] | None = None,
) -> Figure:
    """Mean cost (or activity) per patient per window by arm with bands, one panel per category.

    The means and bands come from ``costing.did.arm_window_means`` (clustered Poisson
    bootstrap, percentile bands), so the chart agrees with the ``did`` table. The last panel
    is the total over categories. A dashed line marks the index date.

    With ``subgroups`` the chart has one row of panels (one per category and the total) for
    all patients and one for each value of each subgroup column, as ``did(subgroups=...)``
    splits them; each panel's title names its subgroup ("site_type = case management: ...")
    and each row has its own bootstrap and its own legend (the arms' patient counts).

    Args:
        window_costs: long window output of ``costing.cost_by_window``.
        cohort, windows, group, treated, by, weight, cluster, censoring, ci, n_boot, seed:
            as for ``arm_window_means``.
        title: figure title (a default names the arms and the interval).
        path: optional .png path, written atomically.
        measure: "cost" (GBP) or "activity" (records: admissions, attendances).
        subgroups: a cohort (or window-cost) column, or several: a row of panels per value.

    Returns:
        The matplotlib Figure.
    """
    blocks: list[tuple[str, pl.DataFrame, dict[str, str]]] = []
    for label, wc, co in _subgroup_blocks(window_costs, cohort, subgroups):
        try:
            means = arm_window_means(
                wc, cohort=co, windows=windows, group=group, treated=treated, by=by,
                weight=weight, cluster=cluster, n_boot=n_boot, seed=seed, ci=ci,
                censoring=censoring, measure=measure,
            )
        except InputError as exc:
            if not blocks:
                raise
            raise InputError(f"subgroup {label}: {exc}") from None
        blocks.append((label, means, _unpriced_shares(wc, co, group, treated, by, windows)))
    what = "cost" if measure == "cost" else "activity (records)"
    categories = blocks[0][1]["category"].unique(maintain_order=True).to_list()
    split = len(blocks) > 1
    rows, cols = (len(blocks), len(categories)) if split else _grid(len(categories))
    fig = _figure(figsize=(4.6 * cols, (3.9 if split else 3.6) * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    control_label = blocks[0][1].filter(pl.col("arm") == "control")["group"][0]
    for b, (label, means, unpriced) in enumerate(blocks):
        panels = list(axes[b]) if split else list(axes.flat)
        for ax, cat in zip(panels, categories, strict=False):
            name = _label(cat) + unpriced.get(cat, "")
            _event_panel(ax, means.filter(pl.col("category") == cat),
                         f"{label}: {name}" if split else name, cat == TOTAL, measure,
                         10 if split else 11)
        if split:  # each row's arms have their own patient counts
            panels[0].legend(loc="best", frameon=False, fontsize=7.5, title=label,
                             title_fontsize=8)
    fig.supxlabel("Six-month window relative to the index date (0 = the six months from it)",
                  fontsize=10)
    fig.supylabel("Mean cost per patient per window (£)" if measure == "cost"
                  else "Mean records per patient per window", fontsize=10)
    if not split:
        handles, labels = axes.flat[0].get_legend_handles_labels()
        spare = list(axes.flat)[len(categories):]
        for ax in spare:
            ax.axis("off")
        if spare:
            spare[0].legend(handles, labels, loc="center", frameon=False, fontsize=10,
                            title="Arm (patients)")
        else:
            fig.legend(handles, labels, loc="outside right upper", frameon=False, fontsize=9.5,
                       title="Arm (patients)")
    fig.suptitle(
        title or f"Mean {what} per patient per six-month window: {treated} vs {control_label}"
        + (", all patients and by "
           + ", ".join(dict.fromkeys(b[0].split(" = ")[0] for b in blocks[1:])) if split else "")
        + f"\n(shaded: {ci:.0%} bootstrap interval; dashed line: index date)",
        fontsize=12,
    )
    _save(fig, path)
    return fig


def _unpriced_footnote(lf: pl.LazyFrame, names: Sequence[str], by: str) -> str:
    """"Unpriced records ...: window -1 3.2%, ..." (all categories), or "" if none."""
    if "n_unpriced" not in names or "n_records" not in names:
        return ""
    per = (lf.group_by("window").agg(pl.col("n_unpriced").sum(), pl.col("n_records").sum())
           .sort("window").collect())
    if not per["n_unpriced"].sum():
        return ""
    bits = [f"window {_window_label(r['window'])} {r['n_unpriced'] / max(r['n_records'], 1):.1%}"
            for r in per.iter_rows(named=True)]
    return ("Unpriced records, counted as £0 in these means (share of records): "
            + ", ".join(bits) + "; see unpriced.csv per arm and category")


#: The y-axis of :func:`window_means_chart`: plain means over patients (matching weights are
#: not applied there; the DiD table and the event-study chart apply them).
UNWEIGHTED_LABEL = "Mean cost per patient (£), unweighted"


def window_means_chart(
    window_costs: pl.DataFrame | pl.LazyFrame,
    path: str | os.PathLike[str] | None = None,
    group: str = "group",
    by: str = "category",
    title: str | None = None,
) -> Figure:
    """Mean cost per patient per window by group and category, as stacked bars: plain
    (unweighted) means, as the axis and title say; weights apply in the DiD table.

    One bar per group in each window, stacked by category and labelled with its total. With
    no ``group`` column (or all groups null) every patient is in one bar, "all patients".

    Args:
        window_costs: long window output of ``costing.cost_by_window``.
        path: optional .png path, written atomically.
        group: group column.
        by: category column.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    lf = window_costs.lazy()
    names = lf.collect_schema().names()
    missing = [c for c in ("patient_id", "window", by, "cost") if c not in names]
    if missing:
        raise InputError(
            f"window costs: missing column(s) {', '.join(map(repr, missing))}; pass the output "
            "of costing.cost_by_window"
        )
    grp = pl.col(group).cast(pl.String).fill_null("all patients") if group in names else pl.lit(
        "all patients"
    )
    means = (
        lf.with_columns(grp.alias("_group"), pl.col(by).cast(pl.String).alias("_cat"))
        .group_by("_group", "window", "_cat")
        .agg(pl.col("cost").sum().alias("cost"), pl.col("patient_id").n_unique().alias("n"))
        .with_columns((pl.col("cost") / pl.col("n")).alias("mean"))
        .collect()
    )
    if means.height == 0:
        raise InputError("window costs: no rows to chart")
    found = means["_cat"].unique().to_list()
    cats = [c for c in COST_CATEGORIES if c in found] + sorted(
        c for c in found if c not in COST_CATEGORIES
    )
    groups = sorted(means["_group"].unique().to_list())
    windows = sorted(means["window"].unique().to_list())
    fig = _figure(figsize=(max(6.0, 1.6 * len(windows) * len(groups) + 2), 4.8))
    ax = fig.subplots()
    width = 0.8 / len(groups)
    hatches = ("", "//", "..", "xx", "\\\\", "oo")
    for gi, g in enumerate(groups):
        bottoms = [0.0] * len(windows)
        xs = [wi + (gi - (len(groups) - 1) / 2) * width for wi in range(len(windows))]
        for ci_, cat in enumerate(cats):
            d = means.filter((pl.col("_group") == g) & (pl.col("_cat") == cat))
            lookup = dict(zip(d["window"].to_list(), d["mean"].to_list(), strict=True))
            heights = [float(lookup.get(w, 0.0)) for w in windows]
            ax.bar(xs, heights, width * 0.92, bottom=bottoms, color=_PALETTE[ci_ % len(_PALETTE)],
                   hatch=hatches[gi % len(hatches)], edgecolor="white", linewidth=0.6,
                   label=_label(cat) if gi == 0 else None)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
        for x, top in zip(xs, bottoms, strict=True):
            ax.annotate(f"{_gbp(top)}\n{g}", (x, top), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(windows)), [f"window {_window_label(w)}" for w in windows])
    ax.yaxis.set_major_formatter(_gbp)
    ax.set_ylabel(UNWEIGHTED_LABEL)
    ax.set_ylim(top=ax.get_ylim()[1] * 1.15)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=9,
              title="Category")
    ax.set_title(title or "Mean cost per patient per six-month window, by group and category "
                 "(unweighted)", fontsize=12)
    note = _unpriced_footnote(lf, names, by)
    if note:
        fig.supxlabel(note, fontsize=8.5, color="#a04000")
    _save(fig, path)
    return fig


def balance_chart(
    balance_table: pl.DataFrame,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Standardised mean differences of the balance table, one dot per row (a Love plot).

    Dashed lines mark the +/-0.1 threshold above which a covariate or pre-period measure is
    flagged as imbalanced; flagged rows are drawn in the treated colour.

    Args:
        balance_table: the frame ``costing.balance`` returns.
        path: optional .png path, written atomically.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    from costing.balance import SMD_FLAG

    missing = [c for c in ("variable", "smd", "imbalanced") if c not in balance_table.columns]
    if missing:
        raise InputError(f"balance table: missing column(s) {missing}; pass costing.balance output")
    rows = balance_table.select("variable", "smd", "imbalanced").reverse()
    fig = _figure(figsize=(7.0, 0.32 * rows.height + 1.6))
    ax = fig.subplots()
    y = list(range(rows.height))
    colours = [_TREATED_COLOUR if f else _CONTROL_COLOUR for f in rows["imbalanced"]]
    smd = [0.0 if v is None or not math.isfinite(v) else v for v in rows["smd"]]
    ax.scatter(smd, y, c=colours, s=28, zorder=3)
    for x in (-SMD_FLAG, SMD_FLAG):
        ax.axvline(x, color="#555555", linestyle="--", linewidth=1)
    ax.axvline(0.0, color="#999999", linewidth=0.8)
    ax.set_yticks(y, rows["variable"].to_list(), fontsize=9)
    ax.set_xlabel("Standardised mean difference (treated - control)", fontsize=10)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title or f"Balance before the index date (flagged beyond ±{SMD_FLAG})",
                 fontsize=11)
    _save(fig, path)
    return fig


def _did_row_label(r: dict[str, Any]) -> str:
    who = "all" if r["subgroup"] == "all" else r["subgroup_value"]
    text = f"{who}: {_label(r['category'])}"
    if r["_kind"] == "pretrend":
        pre, post = (str(r[c]).strip("[]") for c in ("pre_windows", "post_windows"))
        text = f"pre-trend {pre}→{post}, {text}"
    return text


def did_chart(
    did_table: pl.DataFrame,
    path: str | os.PathLike[str] | None = None,
    title: str | None = None,
) -> Figure:
    """The DiD table as a forest plot: estimates with intervals, by subgroup and category.

    One panel per measure (activity in records, cost in £, per patient per window). Each
    category (and the total) of each subgroup block is a row: the DiD with its bootstrap
    interval (filled marker) and, where the table has it, the risk-adjusted DiD with its
    regression interval (open marker, just below). Pre-trend rows (comparison "pretrend",
    the placebo DiD between pre-index windows of ``did_pretrend``), where the table has them,
    follow below a line, labelled "pre-trend -2→-1, ...", as grey diamonds with their
    bootstrap interval: an estimate away from 0 there warns that the arms were already
    diverging before the index date.

    Args:
        did_table: the frame ``costing.did`` returns, with ``did_pretrend`` rows appended
            or not (rows of other comparisons are not drawn).
        path: optional .png path, written atomically.
        title: figure title.

    Returns:
        The matplotlib Figure.
    """
    need = ("measure", "subgroup", "subgroup_value", "category", "did", "ci_low", "ci_high")
    missing = [c for c in need if c not in did_table.columns]
    if missing:
        raise InputError(f"DiD table: missing column(s) {missing}; pass costing.did output")
    kind = pl.col("comparison") if "comparison" in did_table.columns else pl.lit("did")
    rows = did_table.with_columns(kind.alias("_kind")).filter(
        pl.col("_kind").is_in(["did", "pretrend"]))
    for c in ("pre_windows", "post_windows"):
        if c not in rows.columns:
            rows = rows.with_columns(pl.lit(None, dtype=pl.String).alias(c))
    # the DiD rows first (drawn at the top), then the pre-trend rows
    rows = rows.sort(pl.col("_kind") == "pretrend", maintain_order=True)
    measures = rows["measure"].unique(maintain_order=True).to_list()
    n_rows = rows.filter(pl.col("measure") == measures[0]).height
    fig = _figure(figsize=(5.2 * len(measures) + 2.0, 0.32 * n_rows + 1.8))
    axes = fig.subplots(1, len(measures), squeeze=False, sharey=True)[0]
    # estimate, interval, colour, marker, fill, offset, legend label, the rows it is drawn for
    series = [("did", "ci_low", "ci_high", _TREATED_COLOUR, "o", "full", 0.0,
               "DiD (bootstrap interval)", "did")]
    if "adjusted_did" in rows.columns:
        series.append(("adjusted_did", "adjusted_ci_low", "adjusted_ci_high", _CONTROL_COLOUR,
                       "o", "none", -0.3, "risk-adjusted (regression interval)", "did"))
    n_trend = rows.filter((pl.col("measure") == measures[0]) & (pl.col("_kind") == "pretrend")
                          ).height
    if n_trend:
        series.append(("did", "ci_low", "ci_high", _PRETREND_COLOUR, "D", "full", 0.0,
                       "pre-trend: placebo DiD before the index date (bootstrap interval)",
                       "pretrend"))
    for ax, m in zip(axes, measures, strict=True):
        part = rows.filter(pl.col("measure") == m).reverse()
        for est, lo, hi, colour, marker, fill, dy, label, only in series:
            first = True
            for i, (k, e, a, b) in enumerate(part.select("_kind", est, lo, hi).iter_rows()):
                if e is None or k != only:
                    continue
                if a is not None and b is not None:
                    ax.plot([a, b], [i + dy, i + dy], color=colour, linewidth=1.4)
                ax.plot([e], [i + dy], marker, color=colour, mfc=colour if fill == "full"
                        else "white", markersize=5, label=label if first else None)
                first = False
        ax.axvline(0.0, color="#555555", linewidth=1)
        if n_trend:  # the pre-trend rows are at the bottom, below this line
            ax.axhline(n_trend - 0.5, color="#999999", linewidth=0.8, linestyle=":")
        labels = [_did_row_label(r) for r in part.iter_rows(named=True)]
        ax.set_yticks(list(range(part.height)), labels, fontsize=8)
        if m == "cost":
            ax.xaxis.set_major_formatter(_gbp)
        ax.set_title("cost (£)" if m == "cost" else "activity (records)", fontsize=11)
        ax.grid(axis="x", color="#dddddd", linewidth=0.8)
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", frameon=False, fontsize=8,
               ncols=len(series))
    fig.suptitle(title or "Difference in differences per patient per window", fontsize=12)
    _save(fig, path)
    return fig
