"""Risk-adjusted difference in differences: a weighted regression with clustered errors.

The regression is fitted with statsmodels (weighted least squares, cluster-robust
covariance by matched set; docs/decisions/0020-statsmodels-for-risk-adjustment.md says why)
on patient-period rows, two per patient (the pre and the post period means)::

    y = a + b*treated + c*post + d*treated*post + g'x + h'(x*post) + e

``d`` is the adjusted effect. Patient covariates ``x`` (age, sex, prior cost, ...) are fixed
over time, so on their own they cannot move a two-period DiD (they cancel in each patient's
change); they enter also through ``x*post``, which lets the pre-to-post change differ with
them, and ``d`` is then the treated-control difference in change at equal covariates. With no
covariates the model is saturated in arm x period and ``d`` equals the unadjusted DiD.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from costing.errors import InputError

__all__ = ["adjusted_did", "as_number", "covariate_matrix"]


def _examples(values: Sequence[object], n: int = 5) -> str:
    shown = ", ".join(repr(v) for v in list(values)[:n])
    return shown + (", ..." if len(values) > n else "")


def as_number(s: pl.Series) -> pl.Series | None:
    """The column as Float64 if it is numeric, or text whose every value reads as a number.

    Cohort files read from CSV or Excel keep extra columns as text ("83", "1250.5"); such a
    column is a number, not a category with one level per value. None for a real text column.
    """
    if s.dtype.is_numeric():
        return s.cast(pl.Float64)
    if s.dtype != pl.String:
        return None
    parsed = s.str.strip_chars().cast(pl.Float64, strict=False)
    return parsed if parsed.null_count() == s.null_count() else None


def covariate_matrix(
    covariates: pl.DataFrame, patient_id: np.ndarray, source: str = "cohort"
) -> tuple[np.ndarray, list[str]]:
    """Numeric design columns of the covariates: numbers as they are, text as 0/1 dummies.

    A text column whose every value reads as a number (as a cohort CSV gives) is a number.
    A text (or boolean) column becomes one indicator per value except the first in sorted
    order (the reference). Columns constant over the patients are dropped (they cannot be
    estimated, e.g. a site dummy within one site's subgroup).

    Raises:
        InputError: a covariate with a missing or non-finite value (naming the patients).
    """
    parts: list[np.ndarray] = []
    names: list[str] = []
    for col in covariates.columns:
        s = covariates[col]
        number = as_number(s)
        bad = s.is_null()
        if number is not None:
            bad = bad | ~number.is_finite().fill_null(False)
        if bad.any():
            who = pl.Series(patient_id).filter(bad).sort().to_list()
            raise InputError(
                f"{source}: covariate {col!r} is missing for {len(who)} patient(s) "
                f"(e.g. {_examples(who)}); fill it in the cohort file or drop it from adjust="
            )
        if number is not None:
            parts.append(number.to_numpy()[:, None])
            names.append(col)
            continue
        text = s.cast(pl.String)
        levels = sorted(text.unique().to_list())
        for level in levels[1:]:
            parts.append((text == level).cast(pl.Float64).to_numpy()[:, None])
            names.append(f"{col}={level}")
    if not parts:
        return np.zeros((len(patient_id), 0)), []
    x = np.hstack(parts)
    varies = np.ptp(x, axis=0) > 0
    return x[:, varies], [n for n, v in zip(names, varies, strict=True) if v]


def adjusted_did(
    pre: np.ndarray,
    post: np.ndarray,
    treated: np.ndarray,
    weight: np.ndarray,
    cluster: np.ndarray,
    x: np.ndarray,
    ci: float,
) -> dict[str, np.ndarray]:
    """The adjusted DiD of each outcome column, with cluster-robust standard errors.

    Args:
        pre, post: per-patient period means, shape (n, m): one regression per column.
        treated: bool (n,). weight: patient weights (n,). cluster: cluster codes (n,).
        x: covariate design columns (n, q) from ``covariate_matrix`` (q may be 0).
        ci: confidence level of the interval.

    Returns:
        Arrays of length m: ``did``, ``se``, ``ci_low``, ``ci_high``, ``p_value``.
    """
    import statsmodels.api as sm

    n = treated.size
    t = treated.astype(np.float64)
    p = np.r_[np.zeros(n), np.ones(n)]
    tt = np.r_[t, t]
    xx = np.vstack([x, x])
    design = np.column_stack([np.ones(2 * n), tt, p, tt * p, xx, xx * p[:, None]])
    w2 = np.r_[weight, weight]
    groups = np.r_[cluster, cluster]
    out: dict[str, list[float]] = {k: [] for k in ("did", "se", "ci_low", "ci_high", "p_value")}
    # With no residual degrees of freedom or a single cluster there is no standard error:
    # the estimate is given, its interval is null.
    inference = (2 * n > np.linalg.matrix_rank(design)) and np.unique(cluster).size > 1
    for j in range(pre.shape[1]):
        y = np.r_[pre[:, j], post[:, j]]
        with np.errstate(invalid="ignore", divide="ignore"):
            if not inference:
                beta = sm.WLS(y, design, weights=w2).fit().params[3]
                for k, v in zip(out, (beta, np.nan, np.nan, np.nan, np.nan), strict=True):
                    out[k].append(float(v))
                continue
            fit = sm.WLS(y, design, weights=w2).fit(
                cov_type="cluster", cov_kwds={"groups": groups}
            )
            lo, hi = fit.conf_int(alpha=1.0 - ci)[3]
        out["did"].append(float(fit.params[3]))
        out["se"].append(float(fit.bse[3]))
        out["ci_low"].append(float(lo))
        out["ci_high"].append(float(hi))
        out["p_value"].append(float(fit.pvalues[3]))
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}
