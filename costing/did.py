"""Difference in differences on window costs, with a clustered Poisson bootstrap.

``did`` compares the change in mean cost per patient between a pre and a post window in the
treated arm with the same change in the control arm, per cost category and in total, and
attaches a bootstrap confidence interval and p-value in which whole clusters (matched sets)
are resampled together.
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from costing.errors import ConfigError, InputError, unknown_column
from costing.schema import COST_CATEGORIES
from costing.unpriced import with_unpriced_status

__all__ = ["CENSORING_POLICIES", "MEASURES", "TOTAL", "arm_window_means", "did", "did_pretrend"]

log = logging.getLogger(__name__)

CENSORING_POLICIES: Final = ("observed", "complete", "scale")
TOTAL: Final = "total"
_SOURCE: Final = "window costs"
#: The cluster column by default: when absent, patients are resampled (any other named
#: cluster column must exist).
DEFAULT_CLUSTER: Final = "matched_set"

# Bootstrap layout: replicates are drawn 32 at a time, clusters in blocks of 32768 so the
# random draws of one block stay in cache while they are turned into counts, and the counts of
# 262144 clusters go through one matrix product (fewer, larger BLAS calls).
_ROWS: Final = 32
_BLOCK: Final = 32768
_GEMM_BLOCK: Final = 262144
_BITS: Final = 16


def _poisson1_thresholds() -> np.ndarray:
    """Inverse-CDF thresholds of Poisson(1) on a 16-bit uniform: count = #(u >= t_k)."""
    scale = 1 << _BITS
    cdf, k, out = 0.0, 0, []
    while True:
        cdf += math.exp(-1.0) / math.factorial(k)
        t = round(cdf * scale)
        if t >= scale:
            break
        out.append(t)
        k += 1
    return np.asarray(out, dtype=np.uint16)


_THRESHOLDS: Final = _poisson1_thresholds()


def poisson_replicate_sums(sums: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap replicates of column totals, each cluster reweighted by a Poisson(1) count.

    Replicate ``b`` is ``sum_c m[b, c] * sums[c, :]`` with independent ``m[b, c] ~ Poisson(1)``
    (the Poisson bootstrap, which approximates the multinomial one and needs no per-replicate
    Python loop). Counts come from 16-bit uniforms (the raw PCG64 output split four ways)
    through the Poisson(1) inverse CDF, so each probability is exact to 2**-16. Replicates are generated in chunks of 32 from
    ``SeedSequence(seed).spawn``: the same seed gives the same replicates, and the first
    replicates do not depend on ``n_boot``.

    Args:
        sums: per-cluster sums, shape (n_clusters, m), float64.
        n_boot: number of replicates.
        seed: random seed.

    Returns:
        Array of shape (n_boot, m).
    """
    s = np.ascontiguousarray(sums, dtype=np.float64)
    n, m = s.shape
    out = np.empty((n_boot, m), dtype=np.float64)
    n_chunks = -(-n_boot // _ROWS)
    children = np.random.SeedSequence(seed).spawn(n_chunks)
    width = min(_BLOCK, max(n, 1))
    counts = np.empty((_ROWS, width), dtype=np.uint8)
    step = np.empty((_ROWS, width), dtype=np.bool_)
    weights = np.empty((_ROWS, min(_GEMM_BLOCK, max(n, 1))), dtype=np.float64)
    for i, child in enumerate(children):
        rows = min(_ROWS, n_boot - i * _ROWS)
        bitgen = np.random.PCG64(child)
        acc = np.zeros((rows, m), dtype=np.float64)
        for g0 in range(0, n, _GEMM_BLOCK):
            g1 = min(n, g0 + _GEMM_BLOCK)
            for start in range(g0, g1, _BLOCK):
                stop = min(g1, start + _BLOCK)
                # 64 raw random bits give four independent 16-bit uniforms.
                size = rows * (stop - start)
                u = bitgen.random_raw(-(-size // 4)).view(np.uint16)[:size].reshape(rows, -1)
                c = counts[:rows, : stop - start]
                t = step[:rows, : stop - start]
                np.greater_equal(u, _THRESHOLDS[0], out=c.view(np.bool_))
                for threshold in _THRESHOLDS[1:]:
                    np.greater_equal(u, threshold, out=t)
                    np.add(c, t.view(np.uint8), out=c)
                weights[:rows, start - g0 : stop - g0] = c
            # One large product per block: few BLAS calls, each worth threading.
            acc += weights[:rows, : g1 - g0] @ s[g0:g1]
        out[i * _ROWS : i * _ROWS + rows] = acc
    return out


# --------------------------------------------------------------------------------------
# Input preparation
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    """Per-patient arrays for a set of windows: values[i, k, j] for category k, period j."""

    patient_id: np.ndarray  # object array of str
    treated: np.ndarray  # bool (n,)
    weight: np.ndarray  # float64 (n,)
    cluster: np.ndarray  # int64 (n,) codes 0..n_clusters-1
    n_clusters: int
    categories: tuple[str, ...]
    values: Mapping[str, np.ndarray]  # measure -> float64 (n, K, P)
    n_excluded: int
    control_label: str
    extra: pl.DataFrame  # per patient: subgroup and covariate columns

    def subset(self, mask: np.ndarray) -> _Panel:
        """The patients where ``mask`` is true, their clusters renumbered 0..m-1."""
        _, codes = np.unique(self.cluster[mask], return_inverse=True)
        codes = codes.astype(np.int64)
        return _Panel(
            patient_id=self.patient_id[mask], treated=self.treated[mask],
            weight=self.weight[mask], cluster=codes,
            n_clusters=int(codes.max()) + 1 if codes.size else 0,
            categories=self.categories,
            values={m: v[mask] for m, v in self.values.items()},
            n_excluded=self.n_excluded, control_label=self.control_label,
            extra=self.extra.filter(pl.Series(mask)),
        )


def _as_windows(spec: int | Sequence[int], name: str) -> tuple[int, ...]:
    ws = (spec,) if isinstance(spec, (int, np.integer)) else tuple(spec)
    if not ws or not all(isinstance(w, (int, np.integer)) for w in ws):
        raise ConfigError(f"{name}={spec!r}: give a window number or a sequence of them, e.g. -1")
    if len(set(ws)) != len(ws):
        raise ConfigError(f"{name}={spec!r}: a window is listed twice")
    return tuple(int(w) for w in ws)


def _order_categories(found: Sequence[str]) -> tuple[str, ...]:
    known = [c for c in COST_CATEGORIES if c in found]
    return tuple(known + sorted(c for c in found if c not in COST_CATEGORIES))


def _examples(values: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:n])
    return shown + (", ..." if len(values) > n else "")


def _attach_cohort(
    lf: pl.LazyFrame, cohort: pl.DataFrame | pl.LazyFrame, columns: Sequence[str]
) -> pl.LazyFrame:
    coh = cohort.lazy()
    names = coh.collect_schema().names()
    if "patient_id" not in names:
        raise InputError("cohort: no 'patient_id' column; the cohort must have one row per patient")
    keep = [c for c in dict.fromkeys(columns) if c in names and c != "patient_id"]
    coh = coh.select(pl.col("patient_id").cast(pl.String), *keep)
    dup = coh.group_by("patient_id").len().filter(pl.col("len") > 1).collect()
    if dup.height:
        raise InputError(
            f"cohort: {dup.height} patient_id value(s) appear more than once "
            f"(e.g. {_examples(dup['patient_id'].sort().to_list())}); keep one row per patient"
        )
    base = lf.with_columns(pl.col("patient_id").cast(pl.String))
    have = base.collect_schema().names()
    base = base.drop([c for c in keep if c in have])
    missing = base.select("patient_id").unique().join(coh, on="patient_id", how="anti").collect()
    if missing.height:
        raise InputError(
            f"{_SOURCE}: {missing.height} patient(s) are not in the cohort "
            f"(e.g. {_examples(missing['patient_id'].sort().to_list())}); "
            "pass the cohort the windows were built from"
        )
    absent = coh.join(base.select("patient_id").unique(), on="patient_id", how="anti").collect()
    if absent.height:
        raise InputError(
            f"{_SOURCE}: {absent.height} cohort patient(s) have no window rows "
            f"(e.g. {_examples(absent['patient_id'].sort().to_list())}); the window output is "
            "zero-filled (every cohort patient has every window and category), so rebuild the "
            "windows with this cohort"
        )
    return base.join(coh, on="patient_id", how="left")


MEASURES: Final = ("activity", "cost")
_ACTIVITY_COLUMNS: Final = ("n_records", "n_excluded")


@dataclass(frozen=True)
class _Spec:
    """What ``_panel`` reads: columns, windows, measures and the per-patient attributes."""

    periods: tuple[tuple[int, ...], ...]
    group: str
    treated: str
    by: str
    weight: str | None
    cluster: str | None
    censoring: str
    measures: tuple[str, ...] = ("cost",)
    extra: tuple[str, ...] = ()  # subgroup and covariate columns kept per patient

    @property
    def windows(self) -> tuple[int, ...]:
        return tuple(w for p in self.periods for w in p)


def _as_measures(measure: str | Sequence[str] | None) -> tuple[str, ...]:
    ms = MEASURES if measure is None else (measure,) if isinstance(measure, str) else tuple(measure)
    bad = [m for m in ms if m not in MEASURES]
    if bad or not ms or len(set(ms)) != len(ms):
        raise ConfigError(
            f"measure={measure!r}: choose 'activity', 'cost' or both (the default)"
        )
    return tuple(m for m in MEASURES if m in ms)


def _measure_expr(measure: str, censoring: str) -> pl.Expr:
    """A patient-window's value: its cost, or its activity count (records not excluded).

    Activity counts every record placed in the window (priced or not: an unpriced spell
    still happened) less the excluded ones (did-not-attend, cancelled). A spell is one APC
    record, so it counts once. Under censoring="scale" both are scaled to the whole window.
    """
    if measure == "activity":
        base = (pl.col("n_records").cast(pl.Float64) - pl.col("n_excluded").cast(pl.Float64))
    else:
        base = pl.col("cost").cast(pl.Float64)
    if censoring == "scale":
        return (
            pl.when(pl.col("days_observed") > 0)
            .then(base * pl.col("window_days") / pl.col("days_observed"))
            .otherwise(0.0)
        )
    return base


def _censored_expr(censoring: str) -> pl.Expr:
    """True for a patient-window that excludes the patient under the censoring policy."""
    if censoring == "complete":
        return pl.col("days_observed") < pl.col("window_days")
    if censoring == "scale":
        return pl.col("days_observed") <= 0
    return pl.lit(False)


def _required_columns(spec: _Spec, by: str) -> list[str]:
    required = ["patient_id", "window", by]
    if "cost" in spec.measures:
        required.append("cost")
    if "activity" in spec.measures:
        required += _ACTIVITY_COLUMNS
    if spec.censoring != "observed":
        required += ["days_observed", "window_days"]
    return required


def _check_columns(lf: pl.LazyFrame, spec: _Spec) -> tuple[str, list[str], bool]:
    """The category column, the required columns and whether clusters are used; or an error."""
    names = lf.collect_schema().names()
    by = spec.by
    if by not in names and by == "pod" and "category" in names:
        by = "category"  # the window output keeps POD codes in `category` when built by POD
    required = _required_columns(spec, by)
    missing = [c for c in required if c not in names]
    if missing:
        hint = (
            " (censoring='complete'/'scale' needs days_observed and window_days)"
            if {"days_observed", "window_days"} & set(missing)
            else " (measure='activity' needs n_records and n_excluded; pass measure='cost' "
            "for a frame without them)"
            if set(_ACTIVITY_COLUMNS) & set(missing)
            else ""
        )
        raise InputError(
            f"{_SOURCE}: missing column(s) {', '.join(repr(c) for c in missing)}{hint}; "
            "pass the output of costing.cost_by_window"
        )
    if spec.group not in names:
        raise unknown_column(
            _SOURCE, "group", spec.group, names,
            f"The arms are unknown: build the windows from a cohort with a {spec.group!r} column, "
            f"pass cohort= with patient_id and {spec.group!r}, or name the arm column (--group)")
    if spec.weight is not None and spec.weight not in names:
        raise unknown_column(_SOURCE, "weight", spec.weight, names,
                             "Add it to the cohort, or name the weight column (--weight)")
    absent_extra = [c for c in spec.extra if c not in names]
    if absent_extra:
        raise InputError(
            f"{_SOURCE}: column(s) {', '.join(map(repr, absent_extra))} not found (subgroups and "
            "covariates come from the cohort); add them to the cohort file or pass cohort="
        )
    use_cluster = spec.cluster is not None and spec.cluster in names
    if spec.cluster is not None and not use_cluster:
        if spec.cluster != DEFAULT_CLUSTER:  # a named cluster column must exist: no silent fallback
            raise unknown_column(_SOURCE, "cluster", spec.cluster, names,
                                 "Name the cluster column, or cluster=None (--cluster none) to "
                                 "resample patients")
        log.info("no %r column: resampling patients, not clusters", spec.cluster)
    nulls = lf.select(pl.col(c).is_null().sum() for c in required).collect().row(0)
    bad_nulls = [f"{c!r} ({n})" for c, n in zip(required, nulls, strict=True) if n]
    if bad_nulls:
        raise InputError(
            f"{_SOURCE}: null values in {', '.join(bad_nulls)}; the window output is zero-filled "
            "(cost 0 where nothing was priced, every row with its patient, window, category and "
            "days), so pass costing.cost_by_window output unchanged"
        )
    return by, required, use_cluster


def _windowed(lf: pl.LazyFrame, spec: _Spec, by: str) -> tuple[pl.LazyFrame, tuple[str, ...]]:
    """The rows of the windows used, and their categories in report order."""
    present = set(lf.select(pl.col("window").unique()).collect().to_series().to_list())
    absent = [w for w in spec.windows if w not in present]
    if absent:
        raise InputError(
            f"{_SOURCE}: window(s) {', '.join(map(str, absent))} not present "
            f"(windows present: {', '.join(map(str, sorted(present))) or 'none'}); "
            "rebuild the windows with a range that includes them, e.g. windows=(-2, -1, 0)"
        )
    lf = lf.filter(pl.col("window").is_in(spec.windows))
    cats_found = (
        lf.select(pl.col(by).cast(pl.String).unique()).collect().to_series().to_list()
    )
    categories = _order_categories(cats_found)
    if TOTAL in categories:
        raise InputError(f"{_SOURCE}: {by!r} has a category named {TOTAL!r}, which did() reserves")
    return lf, categories


def _attribute_exprs(spec: _Spec, use_cluster: bool) -> dict[str, pl.Expr]:
    """Per-patient attributes, renamed: arm, cluster, weight and the extra columns."""
    attrs: dict[str, pl.Expr] = {"_group": pl.col(spec.group).cast(pl.String)}
    if use_cluster:
        attrs["_cluster"] = pl.col(spec.cluster).cast(pl.String)  # type: ignore[arg-type]
    if spec.weight is not None:
        attrs["_weight"] = pl.col(spec.weight).cast(pl.Float64, strict=False)
    for c in spec.extra:
        attrs[f"_x_{c}"] = pl.col(c)
    return attrs


def _collect_rows(
    lf: pl.LazyFrame, spec: _Spec, by: str, categories: tuple[str, ...],
    attrs: dict[str, pl.Expr],
) -> pl.DataFrame:
    """One row per patient-window-category, sorted by patient, with the values to average."""
    rows = lf.select(
        pl.col("patient_id").cast(pl.String),
        pl.col("window").cast(pl.Int64).alias("_window"),
        pl.col(by).cast(pl.String).cast(pl.Enum(categories)).to_physical().cast(pl.Int64)
        .alias("_cat"),
        *(_measure_expr(m, spec.censoring).alias(f"_v_{m}") for m in spec.measures),
        _censored_expr(spec.censoring).fill_null(False).alias("_censored"),
        **attrs,
    ).collect()
    if not rows["patient_id"].is_sorted():
        rows = rows.sort("patient_id", maintain_order=True)
    return rows


@dataclass(frozen=True)
class _Cells:
    """Where each row goes: patient starts, and a patient x window x category cell key."""

    new_patient: np.ndarray  # bool per row
    starts: np.ndarray  # first row of each patient
    key: np.ndarray  # pid * n_cells + cell per row


def _cells(rows: pl.DataFrame, spec: _Spec, n_cat: int) -> _Cells:
    """Cell keys of the rows; an error unless each patient has each window x category once."""
    all_windows = spec.windows
    n_cells = len(all_windows) * n_cat
    # Rows are grouped by patient: a run of equal patient_id values is one patient.
    new_patient = rows.select(
        pl.col("patient_id").ne_missing(pl.col("patient_id").shift()).fill_null(True)
    ).to_series().to_numpy()
    starts = np.flatnonzero(new_patient)
    pid = np.cumsum(new_patient) - 1
    n_pat = starts.size
    sizes = np.diff(np.append(starts, rows.height))
    w_lut = np.full(max(all_windows) - min(all_windows) + 1, -1, dtype=np.int64)
    for pos, win in enumerate(all_windows):
        w_lut[win - min(all_windows)] = pos
    cell = w_lut[rows["_window"].to_numpy() - min(all_windows)] * n_cat + rows["_cat"].to_numpy()
    key = pid * n_cells + cell
    per_cell = np.bincount(key, minlength=n_pat * n_cells).reshape(n_pat, n_cells)
    bad = np.flatnonzero((sizes != n_cells) | (per_cell != 1).any(axis=1))
    if bad.size:
        examples = rows["patient_id"].gather(starts[bad[:6]]).to_list()
        raise InputError(
            f"{_SOURCE}: {bad.size} patient(s) do not have exactly one row per window x "
            f"category ({len(all_windows)} windows x {n_cat} categories = {n_cells}); "
            f"e.g. {_examples(examples)}. "
            "The window output is expected to be zero-filled (a row with cost 0 where nothing "
            "happened): pass costing.cost_by_window output, not a filtered or aggregated copy"
        )
    return _Cells(new_patient=new_patient, starts=starts, key=key)


def _check_constant_attributes(rows: pl.DataFrame, spec: _Spec, attrs: Sequence[str],
                               cells: _Cells) -> None:
    labels = {"_group": spec.group, "_cluster": spec.cluster, "_weight": spec.weight}
    for a in attrs:
        changed = rows.select(
            (pl.col(a).ne_missing(pl.col(a).shift()) & ~pl.Series(cells.new_patient))
            .fill_null(False)
        ).to_series()
        if changed.any():
            who = rows["patient_id"].filter(changed).unique().sort()
            name = labels.get(a) or a.removeprefix("_x_")
            raise InputError(
                f"{_SOURCE}: {who.len()} patient(s) have more than one {name!r} value "
                f"(e.g. {_examples(who.to_list())}); a patient belongs to one arm, one matched "
                "set, has one weight and one value of each cohort column"
            )


def _period_values(rows: pl.DataFrame, spec: _Spec, cells: _Cells, n_cat: int,
                   measure: str) -> np.ndarray:
    """values[i, k, j]: patient i's mean per window over period j's windows, category k."""
    n_pat = cells.starts.size
    n_win = len(spec.windows)
    flat = np.zeros(n_pat * n_win * n_cat, dtype=np.float64)
    flat[cells.key] = rows[f"_v_{measure}"].to_numpy()
    by_window = flat.reshape(n_pat, n_win, n_cat)  # window-major cells
    pos = {w: i for i, w in enumerate(spec.windows)}
    return np.stack(
        [by_window[:, [pos[k] for k in p], :].mean(axis=1) for p in spec.periods], axis=2
    )  # (n, K, P)


def _check_arms_present(per_patient: pl.DataFrame, spec: _Spec) -> str:
    """The control arm's label; an error unless there are exactly two arms, with weights ok."""
    no_group = per_patient.filter(pl.col("_group").is_null())
    if no_group.height:
        raise InputError(
            f"{_SOURCE}: {no_group.height} patient(s) have no {spec.group!r} value "
            f"(e.g. {_examples(no_group['patient_id'].to_list())}); give every patient an arm"
        )
    if spec.weight is not None:
        bad_w = per_patient.filter(
            pl.col("_weight").is_null() | ~pl.col("_weight").is_finite() | (pl.col("_weight") < 0)
        )
        if bad_w.height:
            raise InputError(
                f"{_SOURCE}: {bad_w.height} patient(s) have a missing, negative or non-finite "
                f"{spec.weight!r} (e.g. {_examples(bad_w['patient_id'].to_list())}); weights "
                "must be >= 0, e.g. 1/k for k controls per case"
            )
    groups = sorted(per_patient["_group"].unique().to_list())
    if spec.treated not in groups:
        raise InputError(
            f"{_SOURCE}: no treated patients: no {spec.group!r} equal to {spec.treated!r} "
            f"(values found: {_examples(groups)}); set treated= to the intervention arm's label"
        )
    others = [g for g in groups if g != spec.treated]
    if not others:
        raise InputError(
            f"{_SOURCE}: no control patients: every patient has {spec.group!r} = {spec.treated!r}"
        )
    if len(others) > 1:
        raise InputError(
            f"{_SOURCE}: {spec.group!r} has {len(groups)} values ({_examples(groups)}); did() "
            f"compares the treated arm {spec.treated!r} with one control arm: filter the rows to "
            "two groups"
        )
    return str(others[0])


def _cluster_codes(per_patient: pl.DataFrame, use_cluster: bool) -> np.ndarray:
    """Resampling cluster of each patient as 0..n-1; a patient with no matched set is its own."""
    if use_cluster:
        key_s = per_patient.select(
            pl.coalesce(pl.lit("s:") + pl.col("_cluster"), pl.lit("p:") + pl.col("patient_id"))
        ).to_series()
    else:
        key_s = per_patient["patient_id"]
    if not key_s.len():
        return np.zeros(0, np.int64)
    return np.asarray(key_s.rank("dense").cast(pl.Int64).to_numpy() - 1, dtype=np.int64)


def _panel(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None,
    spec: _Spec,
) -> _Panel:
    """Validate window costs and reduce them to one row of arrays per patient."""
    if spec.censoring not in CENSORING_POLICIES:
        raise ConfigError(
            f"censoring={spec.censoring!r}: choose one of {', '.join(CENSORING_POLICIES)}"
        )
    lf = window_costs.lazy()
    if cohort is not None:
        lf = _attach_cohort(
            lf, cohort,
            [spec.group, *(c for c in (spec.cluster, spec.weight, "site") if c), *spec.extra],
        )
    by, _, use_cluster = _check_columns(lf, spec)
    lf, categories = _windowed(lf, spec, by)
    attrs = _attribute_exprs(spec, use_cluster)
    rows = _collect_rows(lf, spec, by, categories, attrs)
    cells = _cells(rows, spec, len(categories))
    _check_constant_attributes(rows, spec, list(attrs), cells)
    n_pat = cells.starts.size
    per_patient = rows.gather(cells.starts).select("patient_id", *attrs).with_columns(
        pl.Series("_censored", np.logical_or.reduceat(rows["_censored"].to_numpy(), cells.starts)
                  if n_pat else np.zeros(0, dtype=bool))
    )
    values = {m: _period_values(rows, spec, cells, len(categories), m) for m in spec.measures}
    control_label = _check_arms_present(per_patient, spec)

    censored = per_patient["_censored"].to_numpy()
    n_excluded = int(censored.sum())
    if n_excluded:
        log.info("censoring=%s excludes %d patient(s)", spec.censoring, n_excluded)
        per_patient = per_patient.filter(~pl.Series(censored))
        values = {m: v[~censored] for m, v in values.items()}

    codes = _cluster_codes(per_patient, use_cluster)
    w = (
        per_patient["_weight"].to_numpy().astype(np.float64)
        if spec.weight is not None
        else np.ones(per_patient.height)
    )
    return _Panel(
        patient_id=per_patient["patient_id"].to_numpy(),
        treated=(per_patient["_group"] == spec.treated).to_numpy(),
        weight=w,
        cluster=codes,
        n_clusters=int(codes.max()) + 1 if codes.size else 0,
        categories=categories,
        values=values,
        n_excluded=n_excluded,
        control_label=control_label,
        extra=per_patient.select(
            pl.col(f"_x_{c}").alias(c) for c in spec.extra
        ),
    )


# --------------------------------------------------------------------------------------
# Estimation
# --------------------------------------------------------------------------------------


def _check_arms(panel: _Panel, censoring: str) -> None:
    for arm, mask in (("treated", panel.treated), ("control", ~panel.treated)):
        if not mask.any() or panel.weight[mask].sum() <= 0:
            why = (
                f" after censoring={censoring!r} excluded {panel.n_excluded} patient(s)"
                if panel.n_excluded
                else " with positive weight"
            )
            raise InputError(f"{_SOURCE}: no {arm} patients{why}; no estimate is possible")


def _quantiles(reps: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - ci
    lo = np.nanquantile(reps, alpha / 2, axis=0)
    hi = np.nanquantile(reps, 1 - alpha / 2, axis=0)
    return lo, hi


def _p_values(reps: np.ndarray) -> np.ndarray:
    """Two-sided bootstrap p-value: twice the smaller tail share at zero, capped at 1."""
    valid = ~np.isnan(reps)
    b = valid.sum(axis=0)
    below = ((reps <= 0) & valid).sum(axis=0)
    above = ((reps >= 0) & valid).sum(axis=0)
    return np.asarray(np.minimum(1.0, 2.0 * (np.minimum(below, above) + 1) / (b + 1)),
                      dtype=np.float64)


def _cluster_sums(panel: _Panel, cols: np.ndarray) -> np.ndarray:
    """Per-cluster column sums, shape (n_clusters, m)."""
    return np.column_stack(
        [np.bincount(panel.cluster, weights=cols[:, j], minlength=panel.n_clusters)
         for j in range(cols.shape[1])]
    )


def _with_total(values: np.ndarray) -> np.ndarray:
    """(n, K, P) values with the total over categories appended: (n, K+1, P)."""
    return np.concatenate([values, values.sum(axis=1, keepdims=True)], axis=1)


def _relative(t_pre: np.ndarray, t_post: np.ndarray, c_pre: np.ndarray,
              c_post: np.ndarray) -> np.ndarray:
    """Ratio of the arms' post/pre ratios minus 1, in percent; NaN where undefined."""
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = 100.0 * ((t_post * c_pre) / (t_pre * c_post) - 1.0)
    return np.where(np.isfinite(out), out, np.nan)


def _bootstrap(panel: _Panel, vals: np.ndarray, n_boot: int, seed: int
               ) -> tuple[np.ndarray, np.ndarray, int]:
    """Replicates of the DiD and of the relative effect (n_boot, K+1), and how many are valid."""
    t, w = panel.treated, panel.weight
    wt, wc = w * t, w * ~t
    pre_v, post_v = vals[:, :, 0], vals[:, :, 1]
    k1 = vals.shape[1]
    # Per-cluster sums: [w_T, w_C, w_T*pre_k, w_T*post_k, w_C*pre_k, w_C*post_k]
    cols = np.column_stack([wt, wc, wt[:, None] * pre_v, wt[:, None] * post_v,
                            wc[:, None] * pre_v, wc[:, None] * post_v])
    reps = poisson_replicate_sums(_cluster_sums(panel, cols), n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        tp, tq = reps[:, 2 : 2 + k1] / reps[:, [0]], reps[:, 2 + k1 : 2 + 2 * k1] / reps[:, [0]]
        cp = reps[:, 2 + 2 * k1 : 2 + 3 * k1] / reps[:, [1]]
        cq = reps[:, 2 + 3 * k1 :] / reps[:, [1]]
    boot = (tq - tp) - (cq - cp)
    boot[~np.isfinite(boot)] = np.nan
    rel = _relative(tp, tq, cp, cq)
    rel[np.isnan(boot)] = np.nan
    n_valid = int((~np.isnan(boot[:, 0])).sum())
    if n_valid < n_boot:
        log.warning(
            "%d of %d bootstrap replicates drew no patient of one arm and were dropped",
            n_boot - n_valid, n_boot,
        )
    if n_valid == 0:
        raise InputError(f"{_SOURCE}: every bootstrap replicate lacked an arm; too few patients")
    return boot, rel, n_valid


def _estimate(
    panel: _Panel, measure: str, pre: tuple[int, ...], post: tuple[int, ...], n_boot: int,
    seed: int, ci: float, censoring: str, comparison: str,
) -> pl.DataFrame:
    _check_arms(panel, censoring)
    t, w = panel.treated, panel.weight
    vals = _with_total(panel.values[measure])
    pre_v, post_v = vals[:, :, 0], vals[:, :, 1]  # (n, K+1)
    wt, wc = w * t, w * ~t

    def mean(x: np.ndarray, wa: np.ndarray) -> np.ndarray:
        return np.asarray((wa @ x) / wa.sum(), dtype=np.float64)

    t_pre, t_post, c_pre, c_post = mean(pre_v, wt), mean(post_v, wt), mean(pre_v, wc), mean(
        post_v, wc
    )
    estimate = (t_post - t_pre) - (c_post - c_pre)
    k1 = vals.shape[1]
    boot, rel_boot, n_valid = _bootstrap(panel, vals, n_boot, seed)
    lo, hi = _quantiles(boot, ci)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.nanstd(boot, axis=0, ddof=1) if n_valid > 1 else np.full(k1, np.nan)
        pct = np.where(t_pre != 0, 100.0 * estimate / np.where(t_pre != 0, t_pre, 1.0), np.nan)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no interval
        rel_lo, rel_hi = _quantiles(rel_boot, ci)
    n_t, n_c = int(t.sum()), int((~t).sum())
    cats = [*panel.categories, TOTAL]
    frame = pl.DataFrame(
        {
            "comparison": [comparison] * k1,
            "measure": [measure] * k1,
            "category": cats,
            "pre_windows": [_window_list(pre)] * k1,
            "post_windows": [_window_list(post)] * k1,
            "n_treated": [n_t] * k1,
            "n_control": [n_c] * k1,
            "n_clusters": [panel.n_clusters] * k1,
            "treated_pre": t_pre,
            "treated_post": t_post,
            "treated_change": t_post - t_pre,
            "control_pre": c_pre,
            "control_post": c_post,
            "control_change": c_post - c_pre,
            "did": estimate,
            "se": se,
            "ci_low": lo,
            "ci_high": hi,
            "p_value": _p_values(boot),
            "relative_effect_pct": _relative(t_pre, t_post, c_pre, c_post),
            "relative_ci_low_pct": rel_lo,
            "relative_ci_high_pct": rel_hi,
            "did_pct_of_treated_pre": pct,
            "ci_level": [ci] * k1,
            "n_boot": [n_valid] * k1,
            "censoring": [censoring] * k1,
            "n_excluded_censoring": [panel.n_excluded] * k1,
        },
        schema_overrides={
            "n_treated": pl.Int64, "n_control": pl.Int64, "n_clusters": pl.Int64,
            "n_boot": pl.Int64, "n_excluded_censoring": pl.Int64,
        },
    )
    return frame.with_columns(pl.col(pl.Float64).fill_nan(None))


def _window_list(ws: Sequence[int]) -> str:
    """Windows as text, e.g. "[-2,-1]" (a leading bracket, so spreadsheets keep it as text)."""
    return "[" + ",".join(map(str, ws)) + "]"


def _check_params(n_boot: int, ci: float) -> None:
    if not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ConfigError(f"n_boot={n_boot!r}: give a positive number of bootstrap replicates")
    if not 0.0 < ci < 1.0:
        raise ConfigError(f"ci={ci!r}: give a confidence level between 0 and 1, e.g. 0.95")


def _as_columns(spec: str | Sequence[str] | None, name: str) -> tuple[str, ...]:
    cols = () if spec is None else (spec,) if isinstance(spec, str) else tuple(spec)
    if not all(isinstance(c, str) and c for c in cols) or len(set(cols)) != len(cols):
        raise ConfigError(f"{name}={spec!r}: give a column name or a list of distinct names")
    return cols


def _subgroups(panel: _Panel, columns: Sequence[str]) -> list[tuple[str, str | None, _Panel]]:
    """("all", None, panel), then (column, value, that value's patients) for each column."""
    out: list[tuple[str, str | None, _Panel]] = [("all", None, panel)]
    for col in columns:
        values = panel.extra[col].cast(pl.String)
        for v in sorted(values.drop_nulls().unique().to_list()):
            out.append((col, v, panel.subset((values == v).fill_null(False).to_numpy())))
    return out


def _adjusted_columns(panel: _Panel, measure: str, adjust: Sequence[str], ci: float
                      ) -> list[pl.Series]:
    """The adjusted estimate's columns for one measure (``costing.adjust``)."""
    from costing.adjust import adjusted_did, covariate_matrix

    x, names = covariate_matrix(panel.extra.select(adjust), panel.patient_id)
    vals = _with_total(panel.values[measure])
    fit = adjusted_did(vals[:, :, 0], vals[:, :, 1], panel.treated, panel.weight,
                       panel.cluster, x, ci)
    k1 = vals.shape[1]
    return [
        *(pl.Series(f"adjusted_{k}", v, dtype=pl.Float64) for k, v in fit.items()),
        pl.Series("adjusted_for", [", ".join(names) or "(nothing)"] * k1, dtype=pl.String),
    ]


def _one_block(
    panel: _Panel, measure: str, subgroup: str, value: str | None, args: _EstimateArgs,
) -> pl.DataFrame:
    try:
        frame = _estimate(panel, measure, args.pre, args.post, args.n_boot, args.seed, args.ci,
                          args.censoring, args.comparison)
        if args.adjust is not None:
            frame = frame.with_columns(
                _adjusted_columns(panel, measure, args.adjust, args.ci)
            ).with_columns(pl.col(pl.Float64).fill_nan(None))
    except InputError as exc:
        if value is None:
            raise
        raise InputError(f"subgroup {subgroup}={value!r}: {exc}") from None
    return frame.with_columns(
        pl.lit(subgroup).alias("subgroup"), pl.lit(value, dtype=pl.String).alias("subgroup_value")
    )


@dataclass(frozen=True)
class _EstimateArgs:
    pre: tuple[int, ...]
    post: tuple[int, ...]
    n_boot: int
    seed: int
    ci: float
    censoring: str
    comparison: str
    adjust: tuple[str, ...] | None


def did(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    pre: int | Sequence[int] = -1,
    post: int | Sequence[int] = 0,
    group: str = "group",
    treated: str = "intervention",
    by: str = "category",
    weight: str | None = None,
    cluster: str | None = DEFAULT_CLUSTER,
    n_boot: int = 2000,
    seed: int = 0,
    ci: float = 0.95,
    censoring: str = "observed",
    measure: str | Sequence[str] | None = None,
    subgroups: str | Sequence[str] | None = None,
    adjust: Sequence[str] | None = None,
) -> pl.DataFrame:
    """Difference in differences of activity and cost per patient, per category and in total.

    For each measure (``activity``: records counted, i.e. admissions, attendances; ``cost``:
    GBP), each category and ``total`` (the sum over categories per patient-window) the
    estimate is ``(treated_post - treated_pre) - (control_post - control_pre)``, where each
    term is a (weighted) mean per patient over the patients of that arm. Zero patient-windows
    count as zeros. Activity counts every record in the window, priced or not, except the
    excluded ones (did-not-attend, cancelled); an admitted spell is one record, so it counts
    once. Categories: ``non_elective`` = emergency admissions, ``elective`` = elective
    admissions (ordinary and day case), ``outpatient`` and ``ae`` attendances.

    Two percentage forms are given. ``relative_effect_pct`` is the form the evaluations
    quote ("+9% emergency admissions"): the treated arm's post/pre ratio over the control
    arm's post/pre ratio, minus 1, ``100 * ((T_post/T_pre) / (C_post/C_pre) - 1)``, with a
    percentile interval from the same bootstrap replicates. ``did_pct_of_treated_pre`` is
    the DiD as a percentage of the treated arm's pre-period mean.

    The confidence interval is the percentile interval of a Poisson bootstrap in which
    clusters (``cluster`` column, e.g. the matched set; a patient with no cluster is its own)
    are reweighted as a whole, so matched controls move with their case. The p-value is
    two-sided: twice the smaller share of replicates on either side of 0.

    Args:
        window_costs: long window output of ``costing.cost_by_window`` (one row per patient x
            window x category, zero-filled).
        cohort: optional cohort (patient_id plus ``group``, ``cluster``, ``weight``, subgroup
            and covariate columns) joined on patient_id; its columns replace those of
            ``window_costs``.
        pre: pre window, or several whose per-window mean forms the pre period.
        post: post window, or several (per-window mean, as for ``pre``).
        group: column naming each patient's arm.
        treated: value of ``group`` for the treated arm; the one other value is the control.
        by: column of categories ("pod" reads ``category`` when there is no ``pod`` column).
        weight: optional column of patient weights (e.g. 1/k for k controls per case);
            means become weighted means.
        cluster: column of resampling clusters; None, or a column not present, resamples
            patients.
        n_boot: bootstrap replicates.
        seed: random seed; the same seed gives identical results.
        ci: confidence level of the interval.
        censoring: "observed" (count windows as observed), "complete" (exclude patients not
            observed for the whole of every window used) or "scale" (value per observed day x
            window days; patients with a window of 0 observed days excluded).
        measure: "activity", "cost", or None (default) for both, activity first. Activity
            needs the ``n_records`` and ``n_excluded`` columns of the window output.
        subgroups: a cohort column, or several: the table is given for all patients
            (``subgroup`` "all") and again for each value of each column (``subgroup`` the
            column, ``subgroup_value`` the value), each with its own bootstrap, clustered
            within the subgroup. Patients with no value are in "all" only.
        adjust: cohort columns to risk-adjust for (e.g. ``["age", "sex", "prior_cost"]``):
            adds ``adjusted_did``, ``adjusted_se``, ``adjusted_ci_low``, ``adjusted_ci_high``,
            ``adjusted_p_value`` and ``adjusted_for`` from a weighted regression on
            patient-period rows with standard errors clustered by ``cluster`` (see
            ``costing.adjust``). ``[]`` fits the unadjusted regression, which equals ``did``.

    Returns:
        One row per measure x subgroup x category (plus ``total``): comparison, measure,
        subgroup, subgroup_value, category, pre_windows, post_windows, n_treated, n_control,
        n_clusters, treated_pre, treated_post, treated_change, control_pre, control_post,
        control_change, did, se, ci_low, ci_high, p_value, relative_effect_pct,
        relative_ci_low_pct, relative_ci_high_pct, did_pct_of_treated_pre, ci_level, n_boot
        (replicates used), censoring, n_excluded_censoring, the adjusted columns when
        ``adjust`` is given, then for the cost rows the unpriced activity per arm and period
        and the ``estimate_status`` / ``estimate_note`` of
        ``costing.unpriced.with_unpriced_status`` (a category whose patient-windows mostly
        hold unpriced records gets no cost estimate: its £ figures are null, status
        "withheld_unpriced"). Activity rows count unpriced records like any other, so their
        status is "ok". Cost in GBP, activity in records, per patient per window.

    Raises:
        InputError: missing columns or windows, no treated or control patients (overall or
            in a subgroup), rows not zero-filled, inconsistent patient attributes, bad
            weights, a missing covariate (naming the patients).
        ConfigError: invalid parameters (censoring, ci, n_boot, overlapping windows, measure).

    Example:
        >>> import polars as pl
        >>> wc = pl.DataFrame({
        ...     "patient_id": ["a", "a", "b", "b"], "window": [-1, 0, -1, 0],
        ...     "category": ["ae"] * 4, "cost": [100.0, 150.0, 100.0, 110.0],
        ...     "n_records": [1, 2, 1, 1], "n_excluded": [0, 0, 0, 0],
        ...     "group": ["intervention", "intervention", "control", "control"]})
        >>> out = did(wc, n_boot=50).filter(pl.col("category") == "total")
        >>> out.select("measure", "did", "relative_effect_pct").rows()
        [('activity', 1.0, 100.0), ('cost', 40.0, 36.36363636363635)]
    """
    _check_params(n_boot, ci)
    pre_w, post_w = _as_windows(pre, "pre"), _as_windows(post, "post")
    if set(pre_w) & set(post_w):
        raise ConfigError(f"pre={pre!r} and post={post!r} share a window; they must be disjoint")
    sub_cols = _as_columns(subgroups, "subgroups")
    adj_cols = None if adjust is None else _as_columns(adjust, "adjust")
    spec = _Spec(
        periods=(pre_w, post_w), group=group, treated=treated, by=by, weight=weight,
        cluster=cluster, censoring=censoring, measures=_as_measures(measure),
        extra=tuple(dict.fromkeys([*sub_cols, *(adj_cols or ())])),
    )
    panel = _panel(window_costs, cohort, spec)
    args = _EstimateArgs(pre_w, post_w, n_boot, seed, ci, censoring, "did", adj_cols)
    parts = []
    for label, value, sub in _subgroups(panel, sub_cols):
        for m in spec.measures:
            block = _one_block(sub, m, label, value, args)
            if m == "cost":
                # unpriced activity per arm and period; a mostly unpriced category's cost
                # estimate withheld (within the subgroup's own patients)
                wc = window_costs if value is None else window_costs.lazy().filter(
                    pl.col("patient_id").cast(pl.String).is_in(sub.patient_id.tolist()))
                block = with_unpriced_status(block, wc, cohort, pre_w, post_w, group,
                                             treated, by)
            else:
                block = block.with_columns(pl.lit("ok").alias("estimate_status"))
            parts.append(block)
    out = pl.concat(parts, how="diagonal_relaxed")
    first = ["comparison", "measure", "subgroup", "subgroup_value"]
    return out.select(*first, pl.exclude(first))


def did_pretrend(
    window_costs: pl.DataFrame | pl.LazyFrame,
    windows: Sequence[int] = (-2, -1),
    **kwargs: object,
) -> pl.DataFrame:
    """The ``did`` table for consecutive pre-index windows: a pre-trend check.

    With ``windows=(-2, -1)`` this is ``did(pre=-2, post=-1)``: a non-zero "effect" before
    the index date (e.g. treated costs falling back after a peak: regression to the mean)
    warns that the main estimate is not to be trusted. Longer sequences give one block per
    consecutive pair. ``comparison`` is ``"pretrend"``.

    Args:
        window_costs: as for ``did``.
        windows: at least two window numbers, in time order.
        **kwargs: any other ``did`` argument except ``pre`` and ``post``.

    Returns:
        The ``did`` table, stacked for each consecutive pair.
    """
    ws = _as_windows(tuple(windows), "windows")
    if len(ws) < 2 or list(ws) != sorted(ws):
        raise ConfigError(f"windows={windows!r}: give two or more windows in order, e.g. (-2, -1)")
    if "pre" in kwargs or "post" in kwargs:
        raise ConfigError("did_pretrend takes windows=, not pre= or post=")
    parts = [
        did(window_costs, pre=a, post=b, **kwargs).with_columns(  # type: ignore[arg-type]
            pl.lit("pretrend").alias("comparison")
        )
        for a, b in itertools.pairwise(ws)
    ]
    return pl.concat(parts)


def arm_window_means(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    windows: Sequence[int] | None = None,
    group: str = "group",
    treated: str = "intervention",
    by: str = "category",
    weight: str | None = None,
    cluster: str | None = DEFAULT_CLUSTER,
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    censoring: str = "observed",
    measure: str = "cost",
) -> pl.DataFrame:
    """Mean cost per patient per window for each arm, with clustered bootstrap intervals.

    The data behind the event-study chart. Same validation, weights, clusters and
    censoring as ``did``; the interval is the percentile interval of the same Poisson
    cluster bootstrap.

    Args:
        window_costs: long window output of ``costing.cost_by_window``.
        cohort: optional cohort joined on patient_id (as for ``did``).
        windows: windows to show (default: every window present).
        group: arm column. treated: treated arm label (the other value is the control).
        by: category column. weight: optional weight column. cluster: cluster column.
        n_boot: bootstrap replicates. seed: random seed. ci: confidence level.
        censoring: as for ``did``.
        measure: "cost" (default) or "activity", as for ``did``.

    Returns:
        Columns category, window, arm ("treated"/"control"), group (the label), n_patients,
        mean, ci_low, ci_high; one row per category (and total) x window x arm.
    """
    _check_params(n_boot, ci)
    if windows is None:
        present = window_costs.lazy().select(pl.col("window").unique().sort()).collect()
        windows = present.to_series().to_list()
    ws = _as_windows(tuple(windows), "windows")
    periods = tuple((w,) for w in sorted(ws))
    if measure not in MEASURES:
        raise ConfigError(f"measure={measure!r}: choose 'activity' or 'cost'")
    spec = _Spec(periods=periods, group=group, treated=treated, by=by, weight=weight,
                 cluster=cluster, censoring=censoring, measures=(measure,))
    panel = _panel(window_costs, cohort, spec)
    _check_arms(panel, censoring)
    t, w = panel.treated, panel.weight
    vals = _with_total(panel.values[measure])
    n, k1, n_w = vals.shape
    flat = vals.reshape(n, k1 * n_w)
    wt, wc = w * t, w * ~t
    cols = np.column_stack([wt, wc, wt[:, None] * flat, wc[:, None] * flat])
    sums = _cluster_sums(panel, cols)
    reps = poisson_replicate_sums(sums, n_boot, seed)
    point = sums.sum(axis=0)
    m = k1 * n_w
    with np.errstate(invalid="ignore", divide="ignore"):
        boot_t = reps[:, 2 : 2 + m] / reps[:, [0]]
        boot_c = reps[:, 2 + m :] / reps[:, [1]]
    boot_t[~np.isfinite(boot_t)] = np.nan
    boot_c[~np.isfinite(boot_c)] = np.nan
    lo_t, hi_t = _quantiles(boot_t, ci)
    lo_c, hi_c = _quantiles(boot_c, ci)
    cats = [*panel.categories, TOTAL]
    cat_col = np.repeat(np.asarray(cats, dtype=object), n_w)
    win_col = np.tile(np.asarray([p[0] for p in periods]), k1)
    frames = [
        pl.DataFrame(
            {
                "category": cat_col.tolist(),
                "window": win_col.astype(np.int32),
                "arm": [arm] * m,
                "group": [label] * m,
                "n_patients": [int(mask.sum())] * m,
                "mean": point[2 + off : 2 + off + m] / point[idx],
                "ci_low": lo,
                "ci_high": hi,
            },
            schema_overrides={"n_patients": pl.Int64, "window": pl.Int32},
        )
        for arm, label, mask, off, idx, lo, hi in (
            ("treated", treated, t, 0, 0, lo_t, hi_t),
            ("control", panel.control_label, ~t, m, 1, lo_c, hi_c),
        )
    ]
    order = {c: i for i, c in enumerate(cats)}
    return (
        pl.concat(frames)
        .with_columns(pl.col("category").replace_strict(order, return_dtype=pl.Int32).alias("_o"))
        .sort("_o", "window", "arm", descending=[False, False, True])
        .drop("_o")
    )
