"""Covariate balance between the arms of an evaluation: weighted standardised mean differences.

``weighted_smd`` is the building block: the (weighted) difference in means between a treated
and a control sample divided by a pooled standard deviation. A standardised difference above
0.1 in absolute value is the usual flag for imbalance (Austin 2009, "Balance diagnostics for
comparing the distribution of baseline covariates between treatment groups in
propensity-score matched samples", Statistics in Medicine 28:3083-3107).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl

from costing.errors import InputError

__all__ = ["SMD_FLAG", "balance", "weighted_smd"]

SMD_FLAG: Final = 0.1
"""Absolute standardised mean difference above which a covariate is flagged as imbalanced."""

ArrayLike = pl.Series | np.ndarray


def _as_array(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, pl.Series):
        if x.null_count():
            raise InputError(f"{name}: {x.null_count()} null value(s); drop or fill them first")
        x = x.cast(pl.Float64).to_numpy()
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise InputError(f"{name}: give a one-dimensional series or array, not shape {a.shape}")
    if not np.isfinite(a).all():
        raise InputError(f"{name}: {(~np.isfinite(a)).sum()} missing or non-finite value(s)")
    return a


def _weights(w: ArrayLike | None, n: int, name: str) -> np.ndarray:
    if w is None:
        return np.ones(n)
    a = _as_array(w, name)
    if a.size != n:
        raise InputError(f"{name}: {a.size} weight(s) for {n} value(s); give one per value")
    if (a < 0).any() or a.sum() <= 0:
        raise InputError(f"{name}: weights must be >= 0 with a positive sum")
    return a


def weighted_smd(
    treated: ArrayLike,
    control: ArrayLike,
    *,
    treated_weights: ArrayLike | None = None,
    control_weights: ArrayLike | None = None,
    denominator_sd: float | None = None,
) -> float:
    """Standardised mean difference: (weighted mean treated - weighted mean control) / sd.

    The numerator uses the weights (e.g. 1/k for k matched controls per case); the default
    denominator is ``sqrt((var_t + var_c) / 2)`` of the *unweighted* samples (sample
    variances, ``ddof=1``), so that weighting or matching, which changes the means, is judged
    against the same yardstick before and after. Give ``denominator_sd`` to use another one
    (e.g. the pooled sd of the unmatched population). A zero denominator gives 0.0 when the
    means are equal and a signed infinity otherwise (always flagged).

    Args:
        treated: values of the treated arm (polars Series or numpy array).
        control: values of the control arm.
        treated_weights: optional non-negative weights of the treated values.
        control_weights: optional non-negative weights of the control values.
        denominator_sd: optional standard deviation to divide by instead of the default.

    Returns:
        The standardised mean difference (a float; positive when treated is higher).

    Raises:
        InputError: an empty arm, nulls or non-finite values, weights of the wrong length or
            negative, or a negative ``denominator_sd``.

    Example:
        >>> import numpy as np
        >>> round(weighted_smd(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 2.0])), 6)
        1.0
        >>> weighted_smd(np.array([1.0, 3.0]), np.array([1.0, 3.0]),
        ...              control_weights=np.array([1.0, 0.0]), denominator_sd=2.0)
        0.5
    """
    t = _as_array(treated, "treated")
    c = _as_array(control, "control")
    for name, a in (("treated", t), ("control", c)):
        if a.size == 0:
            raise InputError(f"{name}: no values; each arm needs at least one")
    wt = _weights(treated_weights, t.size, "treated_weights")
    wc = _weights(control_weights, c.size, "control_weights")
    diff = float(np.average(t, weights=wt) - np.average(c, weights=wc))
    if denominator_sd is None:
        var_t = float(np.var(t, ddof=1)) if t.size > 1 else 0.0
        var_c = float(np.var(c, ddof=1)) if c.size > 1 else 0.0
        sd = math.sqrt((var_t + var_c) / 2.0)
    else:
        sd = float(denominator_sd)
        if not math.isfinite(sd) or sd < 0:
            raise InputError(f"denominator_sd={denominator_sd!r}: give a finite sd >= 0")
    if sd == 0.0:
        return 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    return diff / sd


def _covariate_columns(extra: pl.DataFrame, patient_id: np.ndarray
                       ) -> list[tuple[str, np.ndarray]]:
    """(name, values) per covariate: numbers (or text that reads as numbers) as they are,
    other text as a 0/1 column per value."""
    from costing.adjust import as_number

    out: list[tuple[str, np.ndarray]] = []
    for col in extra.columns:
        s = extra[col]
        if s.null_count():
            who = pl.Series(patient_id).filter(s.is_null()).sort().to_list()
            raise InputError(
                f"cohort: covariate {col!r} is missing for {len(who)} patient(s) "
                f"(e.g. {', '.join(map(repr, who[:5]))}); fill it in the cohort file"
            )
        number = as_number(s)
        if number is not None:
            out.append((col, number.to_numpy()))
        else:
            text = s.cast(pl.String)
            for level in sorted(text.unique().to_list()):
                out.append((f"{col}={level}", (text == level).cast(pl.Float64).to_numpy()))
    return out


def balance(
    window_costs: pl.DataFrame | pl.LazyFrame,
    cohort: pl.DataFrame | pl.LazyFrame | None = None,
    covariates: Sequence[str] = (),
    pre: int | Sequence[int] = -1,
    group: str = "group",
    treated: str = "intervention",
    weight: str | None = None,
    by: str = "category",
    measure: str | Sequence[str] | None = None,
) -> pl.DataFrame:
    """Balance table: treated and control means and standardised differences before the index.

    For each covariate (a text covariate gives one row per value: the share with it) and each
    pre-period activity and cost measure (per category and in total, as ``did`` computes
    them), the treated mean, the control mean (both weighted by ``weight`` when given) and
    the standardised mean difference (``weighted_smd``: weighted difference over the pooled
    sd of the unweighted arms), flagged when its absolute value is above ``SMD_FLAG`` (0.1).

    Args:
        window_costs: long window output of ``costing.cost_by_window``.
        cohort: optional cohort joined on patient_id (arm, weight and covariate columns).
        covariates: cohort columns to compare (e.g. ``["age", "sex", "prior_cost"]``).
        pre: the pre window, or several (per-window mean).
        group, treated, weight, by: as for ``did``.
        measure: "activity", "cost" or None (default) for both.

    Returns:
        Columns variable, kind ("covariate", "activity" or "cost"), category (null for a
        covariate), treated_mean, control_mean, smd, imbalanced, n_treated, n_control.

    Raises:
        InputError: as ``did``; a missing covariate value names the patients.

    Example:
        >>> wc = pl.DataFrame({
        ...     "patient_id": ["a", "b", "c"], "window": [-1] * 3, "category": ["ae"] * 3,
        ...     "cost": [300.0, 100.0, 200.0], "n_records": [3, 1, 2], "n_excluded": [0] * 3,
        ...     "group": ["intervention", "control", "control"], "age": [80, 60, 70]})
        >>> # age: (80 - 65) / sqrt((0 + 50) / 2) = 3 (a one-patient arm has variance 0)
        >>> balance(wc, covariates=["age"], measure="cost").select("variable", "smd").rows()
        [('age', 3.0), ('cost ae', 3.0), ('cost total', 3.0)]
    """
    from costing.did import TOTAL, _as_columns, _as_measures, _as_windows, _panel, _Spec

    pre_w = _as_windows(pre, "pre")
    cols = _as_columns(tuple(covariates), "covariates")
    spec = _Spec(periods=(pre_w,), group=group, treated=treated, by=by, weight=weight,
                 cluster=None, censoring="observed", measures=_as_measures(measure),
                 extra=cols)
    panel = _panel(window_costs, cohort, spec)
    t = panel.treated
    rows: list[tuple[str, str, str | None, np.ndarray]] = [
        (name, "covariate", None, v) for name, v in _covariate_columns(panel.extra,
                                                                       panel.patient_id)
    ]
    for m in spec.measures:
        v = panel.values[m][:, :, 0]
        for k, cat in enumerate([*panel.categories, TOTAL]):
            col = v.sum(axis=1) if cat == TOTAL else v[:, k]
            rows.append((f"{m} {cat}", m, cat, col))
    wt, wc = panel.weight[t], panel.weight[~t]
    out = []
    for name, kind, cat, v in rows:
        smd = weighted_smd(v[t], v[~t], treated_weights=wt, control_weights=wc)
        out.append((name, kind, cat, float(np.average(v[t], weights=wt)),
                    float(np.average(v[~t], weights=wc)), smd, abs(smd) > SMD_FLAG,
                    int(t.sum()), int((~t).sum())))
    schema = {"variable": pl.String, "kind": pl.String, "category": pl.String,
              "treated_mean": pl.Float64, "control_mean": pl.Float64, "smd": pl.Float64,
              "imbalanced": pl.Boolean, "n_treated": pl.Int64, "n_control": pl.Int64}
    return pl.DataFrame(out, schema=schema, orient="row")
