"""Risk-matched controls from the engine's own priced activity.

``match`` builds the control arm of an evaluation from a pool of candidates, using what the
engine already knows about every patient: their priced hospital use before the index date.

1. **Features** (``prior_use``): per patient, strictly before the index date, in several
   windows (default four six-month windows, k = -4..-1): records and cost per category
   (elective and emergency admissions, outpatient and A&E attendances) and bed days. They
   follow the windows' rules with spells apportioned by night, so nothing on or after the
   index date enters a feature; ``costing.features`` computes them from the priced records
   read once into arrays, for every index month.
2. **Risk sets** (pseudo index dates): the case's index month is an exact stratum (with any
   ``exact`` columns); a candidate is eligible in a month when it is alive and not yet
   treated at the month's latest case index date, is not a case and (optionally) is not from
   a case's own practice or site. Its features are taken at the month's earliest case index
   date, so they never hold activity on or after the index date it is finally given (its
   case's). A control treated later is kept and censored the day before its own intervention
   starts. Nothing requires a control to survive or stay untreated beyond its index date.
3. **Scores**: a logistic propensity model of being a case and a prognostic model of an
   emergency admission in the next 12 months, fitted on pool members at a date 12 months
   before the first index date (so never on the follow-up of the controls being matched).
   Both are unpenalised logistic regressions fitted by scikit-learn.
4. **Matching**: greedy nearest neighbours within each stratum, without replacement, in
   rounds (every case takes its first control before any takes a second), in a seeded
   random case order, within a caliper on the logit propensity score (in its standard
   deviations); of equally near candidates, the first in candidate order. The neighbour
   search is SciPy's ``cKDTree`` (a k-d tree) over the distinct points.
5. **Outputs** (``MatchResult``): a cohort ready for ``cost_by_window`` and ``did``, the
   balance table (standardised mean differences before and after, same denominator), a
   love plot, and diagnostics.

See ``docs/matching.md`` for the method, its pitfalls and the options.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import polars as pl

from costing.balance import SMD_FLAG, weighted_smd
from costing.cohort import _to_date as _date_expr
from costing.cohort import validate_cohort
from costing.errors import ConfigError, InputError, MissingColumnsError
from costing.features import (
    DEFAULT_FEATURE_WINDOWS,
    PriorRecords,
    any_record,
    check_windows,
    feature_names,
    features,
    index_spells,
    iter_features,
    prior_records,
    prior_use,
)

__all__ = [
    "DEFAULT_FEATURE_WINDOWS",
    "MATCH_SCORES",
    "MatchDiagnostics",
    "MatchResult",
    "ScoreModel",
    "feature_names",
    "index_spells",
    "match",
    "prior_use",
]

logger = logging.getLogger(__name__)

Score = Literal["both", "propensity", "prognostic"]
MATCH_SCORES: Final = ("both", "propensity", "prognostic")
#: Attributes used when present in the cases or pool (as well as any user covariates).
DEMOGRAPHICS: Final = ("age", "sex", "deprivation_decile")
TREATED: Final = "intervention"
CONTROL: Final = "control"
_PROGNOSTIC_MONTHS: Final = 12
_MAX_K: Final = 5
_NEIGHBOURS: Final = 16  # neighbours fetched per case and round before an exact search


# --------------------------------------------------------------------------------------
# covariates
# --------------------------------------------------------------------------------------


def _to_date(frame: pl.DataFrame, col: str) -> pl.Expr:
    """A date column from Date, Datetime or ISO text (as the cohort's dates are read)."""
    return _date_expr(col, frame.schema[col])


def _numeric(s: pl.Series) -> pl.Series | None:
    """A numeric version of a column (text of numbers is read as numbers), else None."""
    if s.dtype.is_numeric() or s.dtype == pl.Boolean:
        return s.cast(pl.Float64)
    if s.dtype == pl.String:
        num = s.str.strip_chars().cast(pl.Float64, strict=False)
        if num.null_count() == s.null_count():
            return num
    return None


@dataclass(frozen=True)
class _Attributes:
    """Per-patient attributes (cases and candidates) and how they become model columns."""

    frame: pl.DataFrame  # patient_id, attribute columns (age as age at a date is derived later)
    numeric: tuple[str, ...]
    categorical: dict[str, tuple[str, ...]]  # column -> levels (first level dropped in the design)
    birth_date: bool


def _attributes(
    cases: pl.DataFrame, pool: pl.DataFrame, wanted: Sequence[str], source: tuple[str, str]
) -> _Attributes:
    """Attribute values for every case and candidate: a case's from the cases frame when it
    has the column, else from its pool row."""
    birth = "age" not in wanted and ("birth_date" in pool.columns or "birth_date" in cases.columns)
    cols = [c for c in wanted if c != "age"] + (["birth_date"] if birth else [])
    if "age" in wanted:
        cols.append("age")
    missing = [c for c in cols if c not in pool.columns and c not in cases.columns]
    if missing:
        raise MissingColumnsError(f"{source[1]} (or {source[0]})", missing)
    pool_part = pool.select("patient_id", *[pl.col(c) if c in pool.columns else pl.lit(None).alias(c)
                                            for c in cols])
    case_ids = cases.select("patient_id")
    from_cases = [c for c in cols if c in cases.columns]
    case_part = case_ids.join(
        pool_part.drop(from_cases), on="patient_id", how="left", maintain_order="left"
    ).hstack(cases.select(from_cases).get_columns()).select(pool_part.columns)
    frame = pl.concat(
        [case_part, pool_part.join(case_ids, on="patient_id", how="anti")],
        how="vertical_relaxed",
    )
    if birth:
        frame = frame.with_columns(_to_date(frame, "birth_date").alias("birth_date"))
    numeric, categorical = [], {}
    converted = []
    for c in cols:
        if c == "birth_date":
            continue
        num = _numeric(frame[c])
        if num is not None:
            numeric.append(c)
            converted.append(num.alias(c))
        else:
            s = frame[c].cast(pl.String)
            levels = tuple(sorted(v for v in s.unique().to_list() if v is not None))
            categorical[c] = levels
            converted.append(s.alias(c))
    frame = frame.with_columns(converted)
    nulls = [c for c in cols if frame[c].null_count()]
    if nulls:
        bad = frame.filter(pl.any_horizontal(pl.col(c).is_null() for c in nulls))
        raise InputError(
            f"{source[1]}: {bad.height} patient(s) have no value (or an unreadable one) for "
            f"{nulls} (e.g. patient_id {bad['patient_id'][0]!r}); matching needs every "
            "attribute it uses for every case and candidate"
        )
    if birth:
        numeric.insert(0, "age")
    return _Attributes(frame, tuple(numeric), categorical, birth)


def _design_columns(attrs: _Attributes, feats: Sequence[str]) -> list[str]:
    names = list(attrs.numeric)
    for c, levels in attrs.categorical.items():
        names += [f"{c}={v}" for v in levels[1:]]
    return names + list(feats)


class _AttributeRows:
    """The attribute columns of the model for a fixed list of patients (``ids``), built
    once; ``at`` gives them for some of those patients at dates (age moves with the date)."""

    def __init__(self, attrs: _Attributes, ids: pl.Series) -> None:
        rows = pl.DataFrame({"patient_id": ids}).join(
            attrs.frame, on="patient_id", how="left", maintain_order="left"
        )
        self.birth = (rows["birth_date"].to_physical().to_numpy().astype(np.int64)
                      if attrs.birth_date else None)
        cols: list[np.ndarray | None] = []  # None: age from birth date
        for c in attrs.numeric:
            cols.append(None if c == "age" and attrs.birth_date else rows[c].to_numpy())
        for c, levels in attrs.categorical.items():
            s = rows[c]
            cols += [(s == v).to_numpy() for v in levels[1:]]
        self.columns = cols
        self.n = rows.height

    def at(self, pos: np.ndarray | None, days: np.ndarray | int) -> np.ndarray:
        """Rows ``pos`` (None: all) at day numbers ``days`` (per row, or one for all)."""
        def take(a: np.ndarray) -> np.ndarray:
            return a if pos is None else a[pos]

        n = self.n if pos is None else len(pos)
        out = np.empty((n, len(self.columns)), dtype=np.float64, order="F")
        for j, col in enumerate(self.columns):
            if col is None:
                assert self.birth is not None
                out[:, j] = (days - take(self.birth)) / 365.25
            else:
                out[:, j] = take(col)
        return out


def _day_numbers(dates: pl.Series) -> np.ndarray:
    return dates.cast(pl.Date).to_physical().to_numpy().astype(np.int64)


def _design(
    attrs: _Attributes, ids: pl.Series, dates: pl.Series, feats: np.ndarray
) -> np.ndarray:
    """Model matrix rows for patients ``ids`` at ``dates``: attributes then features."""
    a = _AttributeRows(attrs, ids).at(None, _day_numbers(dates))
    # one allocation (a pool of a million rows makes every copy of the whole matrix count)
    x = np.empty((len(ids), a.shape[1] + feats.shape[1]), dtype=np.float64, order="F")
    x[:, : a.shape[1]] = a
    x[:, a.shape[1]:] = feats
    return x


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreModel:
    """A fitted logistic score: ``logit = intercept + ((x - mean) / scale)[:, kept] @ coef``.

    ``design`` and ``outcome`` are the standardised rows it was fitted on, kept so that the
    fit can be checked (tests compare it with an independent statsmodels fit).
    """

    name: str
    columns: tuple[str, ...]  # every design column
    kept: np.ndarray  # indices of the columns in the model (non-constant, not collinear)
    mean: np.ndarray
    scale: np.ndarray
    intercept: float
    coef: np.ndarray
    design: np.ndarray = field(repr=False)
    outcome: np.ndarray = field(repr=False)

    def _weights(self) -> tuple[np.ndarray, float]:
        # ((x - mean) / scale) @ coef as products with x: no standardised copy of x
        w = np.zeros(len(self.columns))
        w[self.kept] = self.coef / self.scale[self.kept]
        return w, self.intercept - float(self.mean @ w)

    def logit(self, x: np.ndarray) -> np.ndarray:
        w, b = self._weights()
        return np.asarray(b + x @ w, dtype=np.float64)

    def logit_parts(self, attributes: np.ndarray, feats: np.ndarray) -> np.ndarray:
        """``logit`` of the design ``[attributes | feats]`` without building it."""
        w, b = self._weights()
        na = attributes.shape[1]
        return np.asarray(b + attributes @ w[:na] + feats @ w[na:], dtype=np.float64)

    def terms(self) -> pl.DataFrame:
        """The coefficients per standardised design column (intercept first)."""
        return pl.DataFrame({
            "model": [self.name] * (len(self.kept) + 1),
            "term": ["(intercept)", *(self.columns[i] for i in self.kept)],
            "coefficient": [self.intercept, *self.coef.tolist()],
        })


def _fit(name: str, x: np.ndarray, y: np.ndarray, columns: Sequence[str]) -> ScoreModel:
    """Unpenalised logistic regression of ``y`` on the standardised non-constant,
    linearly independent columns of ``x`` (scikit-learn, Newton-Cholesky)."""
    from scipy.linalg import qr
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    if y.min() == y.max():
        raise InputError(
            f"{name} score: every row used to fit it has the same outcome ({int(y[0])}); "
            + ("no pool member had an emergency admission in the 12 months it looks at: use "
               "score='propensity'" if name == "prognostic" else "there are no cases or no candidates")
        )
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    varying = np.flatnonzero(scale > 1e-12 * np.maximum(1.0, np.abs(mean)))
    scale = np.where(scale > 0, scale, 1.0)
    z = (x[:, varying] - mean[varying]) / scale[varying]
    kept = varying
    if z.shape[1]:
        # drop columns that are linear combinations of others (e.g. a cost that is always
        # the same multiple of a count): a pivoted QR of the Gram matrix of the centred
        # columns, one small matrix whatever the number of rows
        gram = z.T @ z / len(z)
        _, r, piv = qr(gram, pivoting=True)
        d = np.abs(np.diag(r))
        rank = int((d > d[0] * 1e-10).sum())
        indep = np.sort(piv[:rank])
        kept, z = varying[indep], z[:, indep]
    model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=200)
    # one BLAS thread: the Hessians are small products, and a second thread costs far more
    # in hand-offs than it saves (docs/performance.md#matching)
    with threadpool_limits(limits=1, user_api="blas"):
        model.fit(z, y)
    return ScoreModel(
        name=name, columns=tuple(columns), kept=kept, mean=mean, scale=scale,
        intercept=float(model.intercept_[0]), coef=model.coef_[0].astype(np.float64),
        design=z, outcome=y.astype(np.float64),
    )


# --------------------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchDiagnostics:
    """How the matching went.

    ``strata``: per exact stratum (index month and ``exact`` values) the cases, eligible
    candidates, cases matched and controls used. ``unmatched``: every case left out, with
    the controls it got and why. ``effective_sample_size``: of the weighted controls,
    ``(sum w)^2 / sum w^2``.
    """

    strata: pl.DataFrame
    unmatched: pl.DataFrame
    n_cases: int
    n_matched: int
    n_controls: int
    effective_sample_size: float
    caliper_width: float | None
    models: pl.DataFrame

    def summary(self) -> pl.DataFrame:
        """The headline numbers as a two-column table (measure, value)."""
        rows = {
            "cases": self.n_cases,
            "cases matched": self.n_matched,
            "cases unmatched": self.n_cases - self.n_matched,
            "controls": self.n_controls,
            "effective sample size of controls": round(self.effective_sample_size, 3),
            "caliper (logit score units)": (
                None if self.caliper_width is None else round(self.caliper_width, 6)
            ),
            "strata": self.strata.height,
        }
        return pl.DataFrame(
            {"measure": list(rows), "value": [None if v is None else float(v) for v in rows.values()]}
        )


@dataclass(frozen=True)
class MatchResult:
    """What ``match`` built: the cohort, its balance and the diagnostics."""

    cohort: pl.DataFrame
    balance: pl.DataFrame
    diagnostics: MatchDiagnostics
    config: dict[str, Any]
    models: dict[str, ScoreModel] = field(default_factory=dict, repr=False)

    def love_plot(self, path: str | os.PathLike[str] | None = None) -> Any:
        """A love plot: |standardised mean difference| per variable before and after
        matching, with the 0.1 line. Written as a PNG when ``path`` is given; returns the
        matplotlib Figure."""
        from costing.charts import _figure, _save

        b = self.balance.with_columns(
            pl.col("smd_before").abs().alias("_b"), pl.col("smd_after").abs().alias("_a")
        ).sort("_b", nulls_last=False)
        n = b.height
        fig = _figure(figsize=(7.0, max(3.0, 0.22 * n + 1.2)))
        ax = fig.add_subplot()
        y = np.arange(n)
        clip = 1.0 + max(1.0, float(np.nanmax(np.r_[b["_a"].fill_null(0).to_numpy(), 0.0])))
        before = np.minimum(b["_b"].fill_null(np.nan).to_numpy(), clip)
        after = np.minimum(b["_a"].fill_null(np.nan).to_numpy(), clip)
        ax.scatter(before, y, marker="o", facecolors="none", edgecolors="#c0392b",
                   label="before matching")
        ax.scatter(after, y, marker="o", color="#2c6fbb", label="after matching")
        ax.axvline(SMD_FLAG, color="#7f8c8d", linestyle="--", linewidth=1)
        ax.set_yticks(y, b["variable"].to_list(), fontsize=7)
        ax.set_xlabel("|standardised mean difference| (pooled pre-match SD)")
        ax.set_title("Covariate balance")
        ax.legend(loc="lower right", fontsize=8)
        _save(fig, path)
        return fig


# --------------------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------------------


def _check_args(k: int, min_k: int, caliper: float | None, score: str, covariates: Sequence[str],
                exact: Sequence[str]) -> None:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= _MAX_K:
        raise ConfigError(f"k={k!r}: give the number of controls per case, 1 to {_MAX_K}")
    if not isinstance(min_k, int) or isinstance(min_k, bool) or not 1 <= min_k <= k:
        raise ConfigError(f"min_k={min_k!r}: give a whole number from 1 to k ({k})")
    if caliper is not None and not (isinstance(caliper, (int, float)) and caliper > 0):
        raise ConfigError(f"caliper={caliper!r}: give a positive number of standard deviations "
                          "of the logit score (e.g. 0.2), or None for no caliper")
    if score not in MATCH_SCORES:
        raise ConfigError(f"score={score!r}: give one of {', '.join(MATCH_SCORES)}")
    for name, cols in (("covariates", covariates), ("exact", exact)):
        if isinstance(cols, str):
            raise ConfigError(f"{name}={cols!r}: give a list of column names, e.g. [{cols!r}]")


def _pool_frame(pool: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    df = pool.collect() if isinstance(pool, pl.LazyFrame) else pool
    if "patient_id" not in df.columns:
        raise MissingColumnsError("pool", ["patient_id"])
    df = df.with_columns(pl.col("patient_id").cast(pl.String))
    dup = df.filter(pl.col("patient_id").is_duplicated() | pl.col("patient_id").is_null())
    if dup.height:
        raise InputError(
            f"pool: {dup.height} row(s) with a missing or repeated patient_id "
            f"(e.g. {dup['patient_id'][0]!r}); give each candidate once"
        )
    dates = [c for c in ("death_date", "intervention_start") if c in df.columns]
    out = df.with_columns(_to_date(df, c).alias(c) for c in dates)
    for c in dates:
        bad = out[c].is_null() & df[c].is_not_null() & (df[c].cast(pl.String).str.strip_chars() != "")
        if bad.any():
            row = int(bad.arg_max() or 0)
            raise InputError(f"pool: column {c!r} row {row + 1} has {df[c][row]!r}, not a date "
                             "(expected YYYY-MM-DD)")
    for c in ("death_date", "intervention_start"):
        if c not in out.columns:
            out = out.with_columns(pl.lit(None, pl.Date).alias(c))
    return out


def _greedy(
    case_pts: np.ndarray, cand_pts: np.ndarray, case_lp: np.ndarray, cand_lp: np.ndarray,
    order: np.ndarray, k: int, width: float | None,
) -> list[list[int]]:
    """Greedy nearest-neighbour matching without replacement, in rounds.

    In round r every case still in play (in ``order``) takes its nearest unused candidate
    whose logit score is within ``width`` of its own; of equally near candidates, the first
    in candidate order. Nearest neighbours come from a k-d tree (SciPy's ``cKDTree``)
    over the distinct points; a case whose fetched points nearer than the farthest fetched
    have no unused candidate within the caliper is searched exactly over the candidates
    within the caliper. So the choice never depends on how the tree orders equal distances.
    A case that finds none stops.
    """
    from scipy.spatial import cKDTree

    n_c = len(cand_pts)
    got: list[list[int]] = [[] for _ in range(len(case_pts))]
    if n_c == 0:
        return got
    # the distinct points (many candidates can share one: the same attributes and no prior
    # use), in the order of their first candidate, each with its candidates in order
    cols = [f"x{j}" for j in range(cand_pts.shape[1])]
    groups = (
        pl.DataFrame(cand_pts, schema=cols).with_row_index("_i")
        .group_by(cols, maintain_order=True).agg(pl.col("_i"))
    )
    points = groups.select(cols).to_numpy()
    members = groups["_i"].explode(empty_as_null=False).to_numpy().astype(np.int64)
    first_of = np.r_[0, np.cumsum(groups["_i"].list.len().to_numpy())]  # point u: members[first_of[u]:first_of[u+1]]
    point_lp = cand_lp[members[first_of[:-1]]]
    n_p = len(points)
    q = min(n_p, _NEIGHBOURS * k)
    # an unbalanced tree without compacted nodes builds several times faster, and its
    # queries are exact all the same (docs/decisions/0022-matching-with-scikit-learn.md)
    tree = cKDTree(points, balanced_tree=False, compact_nodes=False)
    dist, idx = tree.query(case_pts, k=q)
    dist, idx = dist.reshape(len(case_pts), q), idx.reshape(len(case_pts), q)
    by = np.lexsort((idx, dist), axis=-1)  # nearest first, equal distances in point order
    dist, idx = np.take_along_axis(dist, by, -1), np.take_along_axis(idx, by, -1)
    # every point nearer than the farthest fetched one is fetched; at that distance some
    # may not be (unless all points were)
    sure = dist < dist[:, -1:] if q < n_p else np.ones_like(dist, dtype=bool)
    used = np.zeros(n_c, dtype=bool)
    next_member = first_of[:-1].copy()  # per point, its first candidate perhaps unused
    ptr = np.zeros(len(case_pts), dtype=np.int64)
    lp_order: np.ndarray | None = None  # candidates by score, for the exact searches

    def unused_at(u: int) -> int:
        """The point's first unused candidate, or -1."""
        m, end = next_member[u], first_of[u + 1]
        while m < end and used[members[m]]:
            m += 1
        next_member[u] = m
        return int(members[m]) if m < end else -1

    def within(i: int, u: int) -> int:
        """Point u's first unused candidate if within case i's caliper, else -1."""
        return unused_at(u) if width is None or abs(point_lp[u] - case_lp[i]) <= width else -1

    for r in range(k):
        for i in order:
            if len(got[i]) < r:
                continue
            j = -1
            while ptr[i] < q and sure[i, ptr[i]]:
                p = int(ptr[i])
                j = within(i, int(idx[i, p]))
                if j >= 0:  # of equally near points, the first unused candidate of them all
                    p2 = p + 1
                    while p2 < q and sure[i, p2] and dist[i, p2] == dist[i, p]:
                        j2 = within(i, int(idx[i, p2]))
                        j = j2 if 0 <= j2 < j else j
                        p2 += 1
                    break  # the point may hold more: look at it again next round
                ptr[i] += 1
            if j < 0 and q < n_p:  # exact search among unused candidates within the caliper
                if width is None:
                    band = np.arange(n_c)
                else:
                    if lp_order is None:
                        lp_order = np.argsort(cand_lp, kind="stable")
                        lp_sorted = cand_lp[lp_order]
                    lo = np.searchsorted(lp_sorted, case_lp[i] - width, side="left")
                    hi = np.searchsorted(lp_sorted, case_lp[i] + width, side="right")
                    band = lp_order[lo:hi]
                band = band[~used[band]]
                if band.size:
                    d = np.sqrt(((cand_pts[band] - case_pts[i]) ** 2).sum(axis=1))
                    j = int(band[np.lexsort((band, d))[0]])
            if j >= 0:
                used[j] = True
                got[i].append(j)
    return got


def match(
    cases: pl.DataFrame | pl.LazyFrame,
    pool: pl.DataFrame | pl.LazyFrame,
    priced: pl.DataFrame | pl.LazyFrame,
    *,
    covariates: Sequence[str] = (),
    k: int = 1,
    exact: Sequence[str] = (),
    caliper: float | None = 0.2,
    score: Score = "both",
    seed: int = 0,
    min_k: int = 1,
    windows: Sequence[int] = DEFAULT_FEATURE_WINDOWS,
    months: int = 6,
    exclude_same: str | None = None,
    index_spell_days: int | None = None,
    max_fit_rows: int = 20_000,
) -> MatchResult:
    """Risk-matched controls for ``cases`` from ``pool``, using their priced prior use.

    Args:
        cases: patient_id and index_date, optional site and any attributes (a case's
            attribute is read here first, then from its pool row).
        pool: candidate controls: patient_id and attributes (sex, age or birth_date,
            deprivation_decile, user covariates), optional death_date and
            intervention_start. It may include the cases (they are never controls).
        priced: ``costing.price`` output for cases and pool alike.
        covariates: further attribute columns for the models (numbers, or text as
            categories). age (or birth_date), sex and deprivation_decile are used when present.
        k: controls per case (1 to 5).
        exact: attribute columns to match exactly, as well as the index month.
        caliper: in standard deviations of the logit propensity score (of the logit
            prognostic score when ``score="prognostic"``); None for none.
        score: "propensity", "prognostic" or "both" (nearest on both, standardised; the
            caliper on the propensity score).
        seed: the seed of the case order and of any sampling; the same seed gives the same
            output, whatever the order of the input rows.
        min_k: a case with fewer controls than this is reported unmatched and left out.
        windows: the pre-index feature windows (negative), of ``months`` months.
        exclude_same: a column (e.g. practice) in cases and pool: candidates sharing a
            case's value are left out (contamination).
        index_spell_days: leave out each patient's index spell from the features
            (``index_spells``); None keeps it.
        max_fit_rows: at most this many candidate rows (a seeded random sample) fit each
            model and serve as the pre-match control group of the balance table.

    Returns:
        A ``MatchResult``: ``cohort`` (patient_id, index_date, group "intervention" or
        "control", site, matched_set = the case's id, weight = 1 for a case and 1/k' for
        each of its k' controls, end_of_follow_up, the logit scores it was matched on and the
        attributes used), ``balance``, ``diagnostics``, ``config``, ``models`` and
        ``love_plot(path)``.

    Raises:
        ConfigError: bad arguments. MissingColumnsError, CohortError, InputError: unusable
        cases, pool or priced records.

    Example:
        >>> result = match(cases, pool, priced, k=2, exact=["sex"])  # doctest: +SKIP
        >>> windows = cost_by_window(priced, result.cohort, windows=(-2, -1, 0))  # doctest: +SKIP
    """
    _check_args(k, min_k, caliper, score, covariates, exact)
    ws = check_windows(windows, months)
    config = {
        "covariates": list(covariates), "k": k, "exact": list(exact), "caliper": caliper,
        "score": score, "seed": seed, "min_k": min_k, "windows": list(ws), "months": months,
        "exclude_same": exclude_same, "index_spell_days": index_spell_days,
        "max_fit_rows": max_fit_rows,
    }
    case_df = validate_cohort(cases, "cases").sort("patient_id")
    pool_df = _pool_frame(pool).sort("patient_id")
    feats = feature_names(ws)
    wanted = list(dict.fromkeys(
        [c for c in DEMOGRAPHICS if c in pool_df.columns or c in case_df.columns]
        + list(covariates) + list(exact)
    ))
    attrs = _attributes(case_df, pool_df, wanted, ("cases", "pool"))
    case_death = case_df.select("patient_id").join(
        pool_df.select("patient_id", "death_date"), on="patient_id", how="left",
        maintain_order="left")["death_date"]
    if "end_of_follow_up" in case_df.columns and case_df["end_of_follow_up"].null_count() < case_df.height:
        case_death = case_df["end_of_follow_up"].fill_null(case_death)

    # candidates: not a case, not from a case's practice or site
    cand = pool_df.join(case_df.select("patient_id"), on="patient_id", how="anti")
    if exclude_same is not None:
        for frame, name in ((case_df, "cases"), (pool_df, "pool")):
            if exclude_same not in frame.columns:
                raise MissingColumnsError(name, [exclude_same])
        shared = case_df[exclude_same].cast(pl.String).drop_nulls().unique()
        cand = cand.filter(~pl.col(exclude_same).cast(pl.String).is_in(shared.implode()).fill_null(False))

    cand = cand.with_row_index("_cand")
    taken = np.zeros(cand.height, dtype=bool)  # a control is used once, across strata

    # restrict the priced records once to cases and candidates, and to the dates features use
    months_span = months * (-ws[0])
    first_index = case_df["index_date"].min()
    last_index = case_df["index_date"].max()
    if first_index is None or last_index is None:
        raise InputError("cases: no cases to match")
    assert isinstance(first_index, dt.date) and isinstance(last_index, dt.date)
    ref_date = pl.select(pl.lit(first_index).dt.offset_by(f"-{_PROGNOSTIC_MONTHS}mo")).item()
    earliest = pl.select(pl.lit(ref_date).dt.offset_by(f"-{months_span + months}mo")).item()
    ids = pl.concat([case_df["patient_id"], cand["patient_id"]])
    # the records of cases and candidates on the dates the features and the prognostic
    # outcome read, as arrays (an absent column is named by prior_records)
    rec = prior_records(
        priced.lazy().filter((pl.col("activity_date") >= earliest) & (pl.col("activity_date") < last_index)),
        ids,
    )
  # case i is code i; candidate j is code n_case + j
    n_case = case_df.height
    rng = np.random.default_rng(seed)
    case_feats = features(rec, np.arange(n_case), case_df["index_date"], ws, months, index_spell_days)
    x_case = _design(attrs, case_df["patient_id"], case_df["index_date"], case_feats)
    columns = _design_columns(attrs, feats)
    cand_attrs = _AttributeRows(attrs, cand["patient_id"])

    # strata: index month (and exact values); candidates per month, eligible at its last case
    month = case_df["index_date"].dt.truncate("1mo")
    case_df = case_df.with_columns(month.alias("_month"))
    months_list = month.unique().sort().to_list()
    per_month: dict[dt.date, dict[str, Any]] = {}
    for m in months_list:
        in_m = case_df.filter(pl.col("_month") == m)
        s_date, t_date = in_m["index_date"].min(), in_m["index_date"].max()
        elig = cand.filter(
            (pl.col("death_date").is_null() | (pl.col("death_date") > t_date))
            & (pl.col("intervention_start").is_null() | (pl.col("intervention_start") > t_date))
        )
        per_month[m] = {"pids": elig["patient_id"], "elig": elig, "date": s_date,
                        "pos": elig["_cand"].to_numpy()}

    def candidate_blocks(
        m: dt.date, rows: np.ndarray | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Month ``m``'s eligible candidates (or its ``rows`` among them) at the month's
        feature date, a block at a time: positions, attribute columns, feature columns."""
        info = per_month[m]
        pos = info["pos"] if rows is None else info["pos"][rows]
        day = (info["date"] - dt.date(1970, 1, 1)).days
        for at, f in iter_features(rec, n_case + pos, info["date"], ws, months, index_spell_days):
            yield at, cand_attrs.at(pos[at], day), f

    def candidate_design(m: dt.date, rows: np.ndarray) -> np.ndarray:
        """The design rows of month ``m``'s eligible candidates ``rows``."""
        x = np.empty((len(rows), len(columns)))
        for at, a, f in candidate_blocks(m, rows):
            x[at] = np.hstack([a, f])
        return x

    def candidate_scores(m: dt.date, models: Sequence[ScoreModel]) -> list[np.ndarray]:
        """Each model's logit score of every eligible candidate of month ``m``, a block at a
        time (the million-row design matrix is never built)."""
        out = [np.empty(len(per_month[m]["pos"])) for _ in models]
        for at, a, f in candidate_blocks(m):
            for o, model in zip(out, models, strict=True):
                o[at] = model.logit_parts(a, f)
        return out

    # propensity model: cases against a sample of eligible candidate-month rows
    n_cand_rows = sum(len(v["pids"]) for v in per_month.values())
    if n_cand_rows == 0:
        raise InputError("pool: no candidate is eligible (alive, untreated and not a case) at "
                         "any case's index date")
    take = (np.sort(rng.choice(n_cand_rows, size=max_fit_rows, replace=False))
            if n_cand_rows > max_fit_rows else np.arange(n_cand_rows))
    # the sampled rows, month by month (rows numbered across the months in order): only
    # their features are computed now, every candidate's after the fits
    ends = np.cumsum([len(v["pids"]) for v in per_month.values()])
    x_cand_fit = np.vstack([
        candidate_design(m, take[(take >= end - len(v["pids"])) & (take < end)] - (end - len(v["pids"])))
        for (m, v), end in zip(per_month.items(), ends, strict=True)
    ])
    x_fit = np.vstack([x_case, x_cand_fit])
    y_fit = np.r_[np.ones(len(x_case)), np.zeros(len(x_cand_fit))]
    models = []
    prop = _fit("propensity", x_fit, y_fit, columns)
    models.append(prop)
    prog: ScoreModel | None = None
    if score in ("both", "prognostic"):
        prog = _prognostic(rec, n_case, cand, attrs, ref_date, ws, months, index_spell_days,
                           max_fit_rows, rng, columns)
        models.append(prog)

    lp_fit = prop.logit(x_fit)
    sd_lp = float(lp_fit.std()) or 1.0
    sd_prog = float(prog.logit(x_fit).std()) or 1.0 if prog is not None else 1.0
    lp_case = prop.logit(x_case)
    pg_case = prog.logit(x_case) if prog is not None else None
    if score == "prognostic":
        assert pg_case is not None
        cal_case, cal_sd = pg_case, sd_prog
    else:
        cal_case, cal_sd = lp_case, sd_lp
    width = None if caliper is None else float(caliper) * cal_sd

    def points(lp: np.ndarray, pg: np.ndarray | None) -> np.ndarray:
        if score == "propensity":
            return (lp / sd_lp)[:, None]
        assert pg is not None
        if score == "prognostic":
            return (pg / sd_prog)[:, None]
        return np.column_stack([lp / sd_lp, pg / sd_prog])

    case_pts = points(lp_case, pg_case)
    order_rank = np.empty(case_df.height, dtype=np.int64)
    order_rank[rng.permutation(case_df.height)] = np.arange(case_df.height)

    exact_case = [_attr_values(attrs, case_df["patient_id"], c) for c in exact]
    strata_rows, matches = [], {}
    for m in months_list:
        info = per_month[m]
        case_pos = np.flatnonzero((case_df["_month"] == m).to_numpy())
        scores = candidate_scores(m, models)
        lp_c, pg_c = scores[0], (scores[1] if prog is not None else None)
        info["scores"] = (lp_c, pg_c)
        cal_c = pg_c if score == "prognostic" else lp_c
        assert cal_c is not None
        pts_c = points(lp_c, pg_c)
        exact_cand = [_attr_values(attrs, info["pids"], c) for c in exact]
        keys = sorted({tuple(v[i] for v in exact_case) for i in case_pos})
        for key in keys:
            cp = case_pos[[all(exact_case[j][i] == key[j] for j in range(len(exact))) for i in case_pos]]
            cmask = np.ones(len(info["pids"]), dtype=bool)
            for j, v in enumerate(exact_cand):
                cmask &= v == key[j]
            cmask &= ~taken[info["pos"]]
            cc = np.flatnonzero(cmask)
            order = np.argsort(order_rank[cp], kind="stable")
            got = _greedy(case_pts[cp], pts_c[cc], cal_case[cp], cal_c[cc], order, k, width)
            for i, g in zip(cp, got, strict=True):
                chosen = cc[np.asarray(g, dtype=np.int64)]
                matches[int(i)] = (m, chosen, len(cc))
                if len(g) >= min_k:
                    taken[info["pos"][chosen]] = True
            strata_rows.append({
                "index_month": m, **{c: str(key[j]) for j, c in enumerate(exact)},
                "n_cases": len(cp), "n_candidates": len(cc),
                "n_matched": sum(len(g) >= min_k for g in got),
                "n_controls": sum(len(g) for g in got if len(g) >= min_k),
            })

    case_scores = (lp_case, pg_case)
    cohort, unmatched = _cohort(case_df, case_death, case_scores, per_month, matches, min_k)
    cohort = _with_attributes(cohort, attrs)
    cohort = _with_set_columns(cohort, case_df, pool_df)
    diag_models = pl.concat([m.terms() for m in models])
    balance = _balance(
        cohort, x_case, x_cand_fit, attrs, columns, rec, ws, months, index_spell_days,
    )
    wc = cohort.filter(pl.col("group") == CONTROL)["weight"].to_numpy()
    ess = float(wc.sum() ** 2 / (wc**2).sum()) if wc.size else 0.0
    strata = pl.DataFrame(strata_rows).with_columns(pl.col("index_month").cast(pl.Date))
    diagnostics = MatchDiagnostics(
        strata=strata, unmatched=unmatched, n_cases=case_df.height,
        n_matched=case_df.height - unmatched.height, n_controls=int(wc.size),
        effective_sample_size=ess, caliper_width=width, models=diag_models,
    )
    logger.info("match: %d of %d cases matched with %d controls", diagnostics.n_matched,
                diagnostics.n_cases, diagnostics.n_controls)
    return MatchResult(cohort=cohort, balance=balance, diagnostics=diagnostics, config=config,
                       models={m.name: m for m in models})


def _attr_values(attrs: _Attributes, ids: pl.Series, col: str) -> np.ndarray:
    """An attribute's values for patients ``ids`` (as text: exact strata compare equal text)."""
    rows = pl.DataFrame({"patient_id": ids}).join(
        attrs.frame.select("patient_id", col), on="patient_id", how="left", maintain_order="left"
    )
    return rows[col].cast(pl.String).to_numpy()


def _prognostic(
    rec: PriorRecords, n_case: int, cand: pl.DataFrame, attrs: _Attributes,
    ref_date: dt.date, ws: tuple[int, ...], months: int, index_spell_days: int | None,
    max_fit_rows: int, rng: np.random.Generator, columns: Sequence[str],
) -> ScoreModel:
    """Logistic model of an emergency admission in the 12 months from ``ref_date``, fitted on
    candidates alive and untreated then (so on none of the follow-up of matched controls)."""
    at = cand.filter(
        (pl.col("death_date").is_null() | (pl.col("death_date") > ref_date))
        & (pl.col("intervention_start").is_null() | (pl.col("intervention_start") > ref_date))
    )
    if at.height > max_fit_rows:
        at = at[np.sort(rng.choice(at.height, size=max_fit_rows, replace=False))]
    dates = pl.repeat(ref_date, at.height, dtype=pl.Date, eager=True)
    codes = n_case + at["_cand"].to_numpy()
    f = features(rec, codes, ref_date, ws, months, index_spell_days)
    x = _design(attrs, at["patient_id"], dates, f)
    y = any_record(rec, codes, ref_date, _PROGNOSTIC_MONTHS, "non_elective").astype(np.float64)
    return _fit("prognostic", x, y, columns)


def _scores(lp: np.ndarray, pg: np.ndarray | None) -> list[pl.Series]:
    """The logit scores a patient was matched on (null prognostic when not fitted)."""
    return [pl.Series("score_propensity", lp, dtype=pl.Float64),
            pl.Series("score_prognostic", pg if pg is not None else [None] * len(lp),
                      dtype=pl.Float64)]


def _cohort(
    case_df: pl.DataFrame, case_death: pl.Series,
    case_scores: tuple[np.ndarray, np.ndarray | None], per_month: dict[dt.date, dict[str, Any]],
    matches: dict[int, tuple[dt.date, np.ndarray, int]], min_k: int,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The matched cohort (with the logit scores each patient was matched on) and the
    unmatched cases (with the reason)."""
    case_rows, unmatched = [], []
    # per month: the chosen candidates' positions and, for each, its case's row
    chosen: dict[dt.date, tuple[list[np.ndarray], list[np.ndarray]]] = {m: ([], []) for m in per_month}
    for i in range(case_df.height):
        m, got, n_candidates = matches[i]
        if len(got) < min_k:
            reason = (
                "no eligible candidate left in its stratum (index month and exact values)"
                if n_candidates == 0 else
                f"{len(got)} control(s) within the caliper among the {n_candidates} candidates "
                f"left in its stratum, fewer than min_k={min_k}"
            )
            unmatched.append({"patient_id": case_df["patient_id"][i],
                              "index_date": case_df["index_date"][i],
                              "n_controls": len(got), "reason": reason})
            continue
        case_rows.append(i)
        chosen[m][0].append(got)
        chosen[m][1].append(np.full(len(got), i))
    ctrl_parts = []
    for m, (gots, cases) in chosen.items():
        if not gots:
            continue
        got, case = np.concatenate(gots), np.concatenate(cases)
        n_set = np.bincount(case, minlength=case_df.height)[case]
        ctrl_parts.append(per_month[m]["elig"][got].select(
            "patient_id", "death_date", "intervention_start",
        ).hstack([
            case_df["patient_id"].gather(case).alias("matched_set"),
            case_df["index_date"].gather(case).alias("index_date"),
            case_df["site"].cast(pl.String).gather(case).alias("site"),
            pl.Series("weight", 1.0 / n_set, dtype=pl.Float64),
            *_scores(*(None if a is None else a[got] for a in per_month[m]["scores"])),
        ]))
    cases_out = case_df[case_rows].select(
        "patient_id", "index_date", pl.lit(TREATED).alias("group"), "site",
        pl.col("patient_id").alias("matched_set"), pl.lit(1.0).alias("weight"),
        case_death.gather(case_rows).alias("end_of_follow_up") if case_rows else
        pl.lit(None, pl.Date).alias("end_of_follow_up"),
    ).hstack(_scores(*(None if a is None else a[case_rows] for a in case_scores)))
    schema = {"patient_id": pl.String, "death_date": pl.Date, "intervention_start": pl.Date,
              "matched_set": pl.String, "index_date": pl.Date, "site": pl.String, "weight": pl.Float64,
              "score_propensity": pl.Float64, "score_prognostic": pl.Float64}
    ctrl = pl.concat(ctrl_parts) if ctrl_parts else pl.DataFrame(schema=schema)
    ctrl_out = ctrl.select(
        "patient_id", "index_date", pl.lit(CONTROL).alias("group"), "site", "matched_set", "weight",
        # a control treated later is followed to the day before its own intervention starts
        pl.min_horizontal("death_date", pl.col("intervention_start") - pl.duration(days=1))
        .alias("end_of_follow_up"), "score_propensity", "score_prognostic",
    )
    cohort = pl.concat([cases_out, ctrl_out], how="vertical_relaxed")
    # each set together: its case first, then its controls
    cohort = cohort.with_columns((pl.col("group") == CONTROL).alias("_c")).sort(
        "matched_set", "_c", "patient_id").drop("_c")
    unmatched_df = pl.DataFrame(
        unmatched, schema={"patient_id": pl.String, "index_date": pl.Date, "n_controls": pl.Int64,
                           "reason": pl.String})
    return validate_cohort(cohort, "matched cohort"), unmatched_df


def _with_attributes(cohort: pl.DataFrame, attrs: _Attributes) -> pl.DataFrame:
    """The cohort with each patient's attributes used in matching (age at the index date when
    it comes from birth_date), for risk adjustment and subgroups downstream."""
    cols = [c for c in (*attrs.numeric, *attrs.categorical) if c not in cohort.columns]
    from_frame = [c for c in cols if not (c == "age" and attrs.birth_date)]
    out = cohort.join(attrs.frame.select("patient_id", *from_frame, *(
        ["birth_date"] if attrs.birth_date else [])), on="patient_id", how="left",
        maintain_order="left")
    if attrs.birth_date:
        age = (pl.col("index_date") - pl.col("birth_date")).dt.total_days() / 365.25
        out = out.with_columns(age.alias("age")).drop("birth_date")
    return out.select(*cohort.columns, *cols)


def _with_set_columns(cohort: pl.DataFrame, case_df: pl.DataFrame, pool_df: pl.DataFrame) -> pl.DataFrame:
    """The cohort with the columns only the cases have (e.g. site_type): each control takes
    its case's value, as with site, so they serve as subgroups downstream."""
    cols = [c for c in case_df.columns
            if c not in cohort.columns and c not in pool_df.columns and not c.startswith("_")]
    if not cols:
        return cohort
    sets = case_df.select(pl.col("patient_id").alias("matched_set"), *cols)
    return cohort.join(sets, on="matched_set", how="left", maintain_order="left")


def _balance(
    cohort: pl.DataFrame, x_case: np.ndarray, x_cand: np.ndarray, attrs: _Attributes,
    columns: Sequence[str], rec: PriorRecords, ws: tuple[int, ...], months: int,
    index_spell_days: int | None,
) -> pl.DataFrame:
    """Means, SMD (pooled pre-match SD, the same before and after), variance ratio, flag."""
    codes = cohort.select("patient_id").join(
        pl.DataFrame({"patient_id": rec.ids, "_code": np.arange(len(rec.ids))}),
        on="patient_id", how="left", maintain_order="left")["_code"].to_numpy()
    f = features(rec, codes, cohort["index_date"], ws, months, index_spell_days,
                 cohort["end_of_follow_up"])
    x_after = _design(attrs, cohort["patient_id"], cohort["index_date"], f)
    treated = (cohort["group"] == TREATED).to_numpy()
    w = cohort["weight"].to_numpy()
    rows = []

    def wvar(x: np.ndarray, wt: np.ndarray) -> float:
        if x.size < 2:
            return 0.0
        m = np.average(x, weights=wt)
        return float(np.average((x - m) ** 2, weights=wt) * x.size / (x.size - 1))

    for j, name in enumerate(columns):
        t0, c0 = x_case[:, j], x_cand[:, j]
        t1, c1 = x_after[treated, j], x_after[~treated, j]
        var_t0 = float(np.var(t0, ddof=1)) if t0.size > 1 else 0.0
        var_c0 = float(np.var(c0, ddof=1)) if c0.size > 1 else 0.0
        sd = float(np.sqrt((var_t0 + var_c0) / 2.0))
        smd0 = weighted_smd(t0, c0, denominator_sd=sd)
        have_after = t1.size > 0 and c1.size > 0
        smd1 = weighted_smd(t1, c1, control_weights=w[~treated], denominator_sd=sd) if have_after else None
        vr0 = var_t0 / var_c0 if var_c0 > 0 else None
        var_c1 = wvar(c1, w[~treated]) if have_after else 0.0
        vr1 = (float(np.var(t1, ddof=1)) / var_c1 if have_after and var_c1 > 0 and t1.size > 1
               else None)
        rows.append({
            "variable": name,
            "treated_mean_before": float(t0.mean()), "control_mean_before": float(c0.mean()),
            "smd_before": smd0, "variance_ratio_before": vr0,
            "treated_mean_after": float(t1.mean()) if t1.size else None,
            "control_mean_after": float(np.average(c1, weights=w[~treated])) if c1.size else None,
            "smd_after": smd1, "variance_ratio_after": vr1, "pooled_sd_before": sd,
        })
    out = pl.DataFrame(rows, schema_overrides={c: pl.Float64 for c in (
        "treated_mean_after", "control_mean_after", "smd_after", "variance_ratio_before",
        "variance_ratio_after")})
    return out.with_columns(
        (pl.col("smd_before").abs() > SMD_FLAG).alias("imbalanced_before"),
        (pl.col("smd_after").abs() > SMD_FLAG).fill_null(False).alias("imbalanced_after"),
    )
