"""Covariate balance between the arms of an evaluation: weighted standardised mean differences.

``weighted_smd`` is the building block: the (weighted) difference in means between a treated
and a control sample divided by a pooled standard deviation. A standardised difference above
0.1 in absolute value is the usual flag for imbalance (Austin 2009, "Balance diagnostics for
comparing the distribution of baseline covariates between treatment groups in
propensity-score matched samples", Statistics in Medicine 28:3083-3107).
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import polars as pl

from costing.errors import InputError

__all__ = ["SMD_FLAG", "weighted_smd"]

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
