"""Difference in differences on window costs: hand figures, OLS identity, bootstrap, errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from costing.did import arm_window_means, did, did_pretrend, poisson_replicate_sums
from costing.errors import ConfigError, InputError

Patient = tuple[str, Mapping[str, Sequence[float]]]  # (group, {category: cost per window})


def frame(
    patients: Mapping[str, Patient],
    windows: Sequence[int] = (-1, 0),
    matched_set: Mapping[str, str | None] | None = None,
    weight: Mapping[str, float] | None = None,
    days_observed: Mapping[str, Sequence[int]] | None = None,
    window_days: int = 182,
) -> pl.DataFrame:
    """A long zero-filled window-cost frame in the cost_by_window shape."""
    rows = []
    for pid, (grp, costs) in patients.items():
        for cat, per_window in costs.items():
            for i, (w, c) in enumerate(zip(windows, per_window, strict=True)):
                rows.append(
                    {
                        "patient_id": pid,
                        "window": w,
                        "window_days": window_days,
                        "category": cat,
                        "cost": float(c),
                        "n_records": int(c > 0),
                        "n_excluded": 0,
                        "days_observed": (days_observed or {}).get(pid, [window_days] * 9)[i],
                        "group": grp,
                        "matched_set": (matched_set or {}).get(pid),
                        "weight": (weight or {}).get(pid, 1.0),
                    }
                )
    return pl.DataFrame(
        rows,
        schema={
            "patient_id": pl.String, "window": pl.Int32, "window_days": pl.Int32,
            "category": pl.String, "cost": pl.Float64, "n_records": pl.UInt32,
            "n_excluded": pl.UInt32, "days_observed": pl.Int32,
            "group": pl.String, "matched_set": pl.String, "weight": pl.Float64,
        },
    )


T, C = "intervention", "control"
# Hand example: two treated (A, B), two controls (C, D); costs (window -1, window 0).
HAND = {
    "A": (T, {"elective": (100, 50), "ae": (0, 200)}),
    "B": (T, {"elective": (300, 150), "ae": (100, 100)}),
    "C": (C, {"elective": (200, 200), "ae": (0, 0)}),
    "D": (C, {"elective": (0, 100), "ae": (50, 150)}),
}


def row(out: pl.DataFrame, category: str, measure: str = "cost") -> dict[str, object]:
    return out.filter((pl.col("category") == category) & (pl.col("measure") == measure)).row(
        0, named=True
    )


def test_hand_computed_means_and_did() -> None:
    out = did(frame(HAND), n_boot=200)
    assert out["category"].to_list() == ["elective", "ae", "total"] * 2
    assert out["measure"].to_list() == ["activity"] * 3 + ["cost"] * 3
    # elective: treated pre (100+300)/2=200, post (50+150)/2=100, change -100;
    #           control pre (200+0)/2=100, post (200+100)/2=150, change +50; DiD -150 = -75% of 200
    e = row(out, "elective")
    assert (e["treated_pre"], e["treated_post"], e["treated_change"]) == (200, 100, -100)
    assert (e["control_pre"], e["control_post"], e["control_change"]) == (100, 150, 50)
    assert e["did"] == -150 and e["did_pct_of_treated_pre"] == -75
    # ae: treated (0+100)/2=50 -> (200+100)/2=150 (+100); control (0+50)/2=25 -> (0+150)/2=75 (+50)
    # DiD +50 = +100% of 50
    a = row(out, "ae")
    assert (a["treated_change"], a["control_change"], a["did"]) == (100, 50, 50)
    assert a["did_pct_of_treated_pre"] == 100
    # total per patient: A 100 -> 250, B 400 -> 250, C 200 -> 200, D 50 -> 250
    # treated 250 -> 250 (0); control 125 -> 225 (+100); DiD -100 = -40% of 250
    t = row(out, "total")
    assert (t["treated_pre"], t["treated_post"], t["control_pre"], t["control_post"]) == (
        250, 250, 125, 225,
    )
    assert t["did"] == -100 and t["did_pct_of_treated_pre"] == -40
    assert (t["n_treated"], t["n_control"], t["n_clusters"]) == (2, 2, 4)
    assert t["ci_low"] <= t["did"] <= t["ci_high"]
    assert 0 < t["p_value"] <= 1


def test_weights_give_weighted_means() -> None:
    # Control D weighted 3, C weighted 1: elective control pre (1*200+3*0)/4=50,
    # post (1*200+3*100)/4=125, change +75; treated unchanged (-100); DiD -175.
    out = did(frame(HAND, weight={"D": 3.0}), weight="weight", n_boot=50)
    e = row(out, "elective")
    assert (e["control_pre"], e["control_post"], e["did"]) == (50, 125, -175)


def _ols_interaction(y: np.ndarray, treated: np.ndarray, post: np.ndarray,
                     w: np.ndarray | None = None) -> float:
    """Coefficient of treated x post in cost ~ 1 + treated + post + treated:post (WLS if w)."""
    x = np.column_stack([np.ones_like(y), treated, post, treated * post])
    if w is not None:
        x, y = x * np.sqrt(w)[:, None], y * np.sqrt(w)
    beta, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(beta[3])


@pytest.mark.parametrize("weighted", [False, True])
def test_point_estimate_equals_ols_interaction(weighted: bool) -> None:
    rng = np.random.default_rng(7)
    n = 40
    cats = ("elective", "non_elective", "outpatient", "ae")
    costs = np.where(rng.random((n, 4, 2)) < 0.5, 0.0, rng.gamma(1.5, 400.0, (n, 4, 2)))
    arm = rng.random(n) < 0.4
    arm[:2] = [True, False]
    w = rng.uniform(0.2, 3.0, n) if weighted else np.ones(n)
    patients = {
        f"p{i}": (T if arm[i] else C, {c: tuple(costs[i, k]) for k, c in enumerate(cats)})
        for i in range(n)
    }
    out = did(
        frame(patients, weight={f"p{i}": w[i] for i in range(n)}),
        weight="weight" if weighted else None, n_boot=20,
    )
    # Stack patient-periods: y, treated, post (pre rows then post rows).
    treated = np.tile(arm.astype(float), 2)
    post = np.repeat([0.0, 1.0], n)
    ww = np.tile(w, 2)
    for k, c in enumerate(cats):
        y = np.concatenate([costs[:, k, 0], costs[:, k, 1]])
        assert row(out, c)["did"] == pytest.approx(
            _ols_interaction(y, treated, post, ww if weighted else None), rel=1e-9, abs=1e-7
        )
    y_total = np.concatenate([costs[:, :, 0].sum(1), costs[:, :, 1].sum(1)])
    assert row(out, "total")["did"] == pytest.approx(
        _ols_interaction(y_total, treated, post, ww if weighted else None), rel=1e-9, abs=1e-7
    )


def _matched(draws: Sequence[tuple[int, float, float, Sequence[float]]], delta: float
             ) -> pl.DataFrame:
    """Matched sets: case change = set change + delta; each of k controls changes by the set
    change; controls weighted 1/k."""
    patients, sets, weights = {}, {}, {}
    for s, (k, d, case_pre, ctrl_pre) in enumerate(draws):
        patients[f"s{s}c"] = (T, {"ae": (case_pre, case_pre + d + delta)})
        sets[f"s{s}c"] = f"set{s}"
        for j in range(k):
            pre = ctrl_pre[j % len(ctrl_pre)]
            patients[f"s{s}k{j}"] = (C, {"ae": (pre, pre + d)})
            sets[f"s{s}k{j}"], weights[f"s{s}k{j}"] = f"set{s}", 1.0 / k
    return frame(patients, matched_set=sets, weight=weights)


money = st.floats(0, 5000, allow_nan=False).map(lambda x: round(x, 2))


@given(
    draws=st.lists(
        st.tuples(st.integers(1, 3), st.floats(-2000, 2000).map(lambda x: round(x, 2)), money,
                  st.lists(money, min_size=1, max_size=3)),
        min_size=2, max_size=12,
    ),
    delta=st.floats(-500, 500).map(lambda x: round(x, 2)),
)
def test_cluster_bootstrap_keeps_matched_sets_intact(
    draws: list[tuple[int, float, float, list[float]]], delta: float
) -> None:
    # Within every matched set the case's change minus the (1/k weighted) controls' change is
    # exactly delta, so any replicate that resamples whole sets has DiD = delta: the interval
    # collapses to a point. Splitting a set across replicates would spread it.
    out = did(_matched(draws, delta), weight="weight", n_boot=64, seed=3)
    r = row(out, "ae")
    assert r["did"] == pytest.approx(delta, abs=1e-6)
    assert r["ci_low"] == pytest.approx(delta, abs=1e-6)
    assert r["ci_high"] == pytest.approx(delta, abs=1e-6)


def test_patient_resampling_does_not_collapse_the_interval() -> None:
    # The same matched data resampled by patient (cluster=None) has a real spread: the
    # property above depends on clustering, not on the data.
    draws = [(2, -300.0, 100.0, [50.0]), (1, 400.0, 0.0, [10.0]), (3, 0.0, 20.0, [5.0, 7.0]),
             (1, 900.0, 1.0, [2.0]), (2, -50.0, 3.0, [4.0])]
    out = did(_matched(draws, 25.0), weight="weight", cluster=None, n_boot=200)
    r = row(out, "ae")
    assert r["ci_high"] - r["ci_low"] > 10


def test_patient_without_matched_set_is_its_own_cluster() -> None:
    sets = {"A": "m1", "C": "m1", "B": None, "D": None}
    out = did(frame(HAND, matched_set=sets), n_boot=20)
    assert row(out, "total")["n_clusters"] == 3  # {A, C}, {B}, {D}


def test_same_seed_same_result_and_row_order_irrelevant() -> None:
    df = frame(HAND)
    a = did(df, seed=11, n_boot=300)
    b = did(df.sample(fraction=1.0, shuffle=True, seed=5), seed=11, n_boot=300)
    assert a.equals(b)
    c = did(df, seed=12, n_boot=300)
    assert not a.select("ci_low", "ci_high", "se").equals(c.select("ci_low", "ci_high", "se"))


def test_poisson_replicate_sums_moments_and_reproducibility() -> None:
    # With one column of ones the replicate sum is the total count: Poisson(n) with mean and
    # variance n = 1000 (standard error of the mean over 4000 replicates: sqrt(1000/4000)=0.5;
    # of the variance ratio about sqrt(2/4000) = 0.022).
    ones = np.ones((1000, 1))
    reps = poisson_replicate_sums(ones, 4000, seed=1)[:, 0]
    assert abs(reps.mean() - 1000) < 3
    assert abs(reps.var(ddof=1) / 1000 - 1) < 0.1
    assert np.array_equal(reps, poisson_replicate_sums(ones, 4000, seed=1)[:, 0])
    # The first replicates do not depend on how many are drawn.
    assert np.array_equal(reps[:40], poisson_replicate_sums(ones, 40, seed=1)[:, 0])
    # Replicates are integer combinations of the cluster sums.
    s = np.array([[1.0, 2.0], [3.0, 5.0]])
    r = poisson_replicate_sums(s, 50, seed=2)
    counts = np.linalg.solve(s.T, r.T).T
    assert np.allclose(counts, np.round(counts)) and (np.round(counts) >= 0).all()


def _simulated(seed: int, n_sets: int = 80, delta: float = -150.0) -> pl.DataFrame:
    """Matched sets (1 case, 2 controls) with a shared set-level shock to the change in cost."""
    rng = np.random.default_rng(seed)
    patients, sets, weights = {}, {}, {}
    for s in range(n_sets):
        shock = rng.normal(0, 300)
        for j, grp in enumerate((T, C, C)):
            pre = rng.gamma(0.8, 600.0)
            post = max(0.0, pre + 100 + shock + rng.normal(0, 400))
            # A constant delta on the case keeps the expected DiD exactly delta.
            post = post + delta if grp == T else post
            pid = f"s{s}p{j}"
            patients[pid] = (grp, {"non_elective": (pre, post)})
            sets[pid], weights[pid] = f"m{s}", 1.0 if grp == T else 0.5
    return frame(patients, matched_set=sets, weight=weights)


def _coverage(seeds: range, n_boot: int) -> float:
    hits = 0
    for s in seeds:
        r = row(did(_simulated(s), weight="weight", n_boot=n_boot, seed=s), "total")
        hits += r["ci_low"] <= -150.0 <= r["ci_high"]
    return hits / len(seeds)


def test_ci_coverage_small() -> None:
    # 40 simulated studies with a true effect of -150: a 95% interval should cover it in
    # roughly 38 of them; 0.8..1.0 allows for Monte Carlo error at this size.
    assert 0.8 <= _coverage(range(40), 300) <= 1.0


@pytest.mark.slow
def test_ci_coverage_full() -> None:
    # 400 studies: binomial SE of coverage sqrt(.95*.05/400) = 0.011; allow about 3 SE.
    assert 0.915 <= _coverage(range(400), 1000) <= 0.985


CENSORED = {
    "A": (T, {"ae": (100, 100)}),
    "E": (T, {"ae": (0, 100)}),  # observed 91 of 182 days in window 0
    "F": (T, {"ae": (50, 0)}),  # observed 0 days in window 0 (follow-up ended at index)
    "C": (C, {"ae": (100, 200)}),
}
DAYS = {"E": [182, 91], "F": [182, 0]}


def test_censoring_policies() -> None:
    df = frame(CENSORED, days_observed=DAYS)
    # observed: treated A, E, F pre (100+0+50)/3=50, post (100+100+0)/3=66.67; control +100
    obs = row(did(df, n_boot=20), "ae")
    assert obs["treated_pre"] == pytest.approx(50)
    assert obs["treated_post"] == pytest.approx(200 / 3)
    assert obs["did"] == pytest.approx(200 / 3 - 50 - 100)
    # complete: E and F are not observed for the whole of window 0 -> treated is A only:
    # change 0, control +100, DiD -100
    comp = row(did(df, n_boot=20, censoring="complete"), "ae")
    assert (comp["n_treated"], comp["n_excluded_censoring"], comp["did"]) == (1, 2, -100)
    # scale: E's 100 over 91 days -> 100 * 182 / 91 = 200; F (0 days observed) excluded;
    # treated pre (100+0)/2=50, post (100+200)/2=150, change +100; DiD 0
    sc = row(did(df, n_boot=20, censoring="scale"), "ae")
    assert (sc["n_treated"], sc["n_excluded_censoring"]) == (2, 1)
    assert sc["treated_post"] == pytest.approx(150) and sc["did"] == pytest.approx(0)


PRETREND = {
    "A": (T, {"ae": (400, 200, 100)}),
    "B": (T, {"ae": (200, 100, 100)}),
    "C": (C, {"ae": (100, 100, 150)}),
    "D": (C, {"ae": (100, 200, 150)}),
}


def test_pretrend_and_pooled_pre_windows() -> None:
    df = frame(PRETREND, windows=(-2, -1, 0))
    pt = did_pretrend(df, windows=(-2, -1), n_boot=20)
    r = row(pt, "ae")
    # -2 -> -1: treated 300 -> 150 (-150: regression to the mean), control 100 -> 150 (+50)
    assert (r["comparison"], r["pre_windows"], r["post_windows"]) == ("pretrend", "[-2]", "[-1]")
    assert r["did"] == pytest.approx(-200)
    # three windows give two consecutive comparisons
    assert did_pretrend(df, windows=(-2, -1, 0), n_boot=20)["post_windows"].unique(
        maintain_order=True).to_list() == ["[-1]", "[0]"]
    # pooled pre (-2, -1): treated pre mean per window (300+150)/2=225, post 100 (-125);
    # control (100+150)/2=125, post 150 (+25); DiD -150
    pooled = row(did(df, pre=(-2, -1), post=0, n_boot=20), "ae")
    assert pooled["pre_windows"] == "[-2,-1]"
    assert (pooled["treated_pre"], pooled["control_pre"], pooled["did"]) == (225, 125, -150)


def test_cohort_supplies_group_and_weights() -> None:
    df = frame(HAND).drop("group", "weight")
    cohort = pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "group": [T, T, C, C],
                           "weight": [1.0, 1.0, 1.0, 3.0]})
    out = did(df, cohort=cohort, weight="weight", n_boot=20)
    assert row(out, "elective")["did"] == -175  # as in test_weights_give_weighted_means


def test_arm_window_means() -> None:
    out = arm_window_means(frame(HAND), n_boot=50)
    tr = out.filter((pl.col("category") == "total") & (pl.col("arm") == "treated"))
    # total per treated patient: window -1 (100+400)/2 = 250, window 0 (250+250)/2 = 250
    assert tr["window"].to_list() == [-1, 0] and tr["mean"].to_list() == [250, 250]
    assert out.height == 3 * 2 * 2  # (2 categories + total) x 2 windows x 2 arms
    assert (out["ci_low"] <= out["mean"]).all() and (out["mean"] <= out["ci_high"]).all()


@pytest.mark.parametrize(
    ("mutate", "kwargs", "message"),
    [
        (lambda df: df.drop("group"), {}, "group column 'group' not found"),
        (lambda df: df.with_columns(pl.lit(C).alias("group")), {}, "no treated patients"),
        (lambda df: df.with_columns(pl.lit(T).alias("group")), {}, "no control patients"),
        (lambda df: df, {"pre": -2}, "window(s) -2 not present"),
        (lambda df: df.filter(~((pl.col("patient_id") == "C") & (pl.col("window") == 0)
                                & (pl.col("category") == "ae"))), {}, "zero-filled"),
        (lambda df: pl.concat([df, df.head(1)]), {}, "exactly one row per window"),
        (lambda df: df.with_columns(
            pl.when(pl.col("patient_id") == "D").then(pl.lit("other")).otherwise("group")
            .alias("group")), {}, "filter the rows to two groups"),
        (lambda df: df.with_columns(
            pl.when(pl.col("window") == 0).then(pl.lit(T)).otherwise("group").alias("group")),
         {}, "more than one 'group' value"),
        (lambda df: df.with_columns(pl.lit(None, pl.Float64).alias("cost")), {},
         "null values in 'cost' (16)"),
        (lambda df: df.with_columns(
            pl.when(pl.col("patient_id") == "A").then(None).otherwise("patient_id")
            .alias("patient_id")), {}, "null values in 'patient_id' (4)"),
        (lambda df: df.with_columns(pl.lit(None, pl.Int32).alias("days_observed")),
         {"censoring": "scale"}, "null values in 'days_observed'"),
        (lambda df: df.with_columns(pl.lit(-1.0).alias("weight")), {"weight": "weight"},
         "weights must be >= 0"),
        (lambda df: df.drop("days_observed"), {"censoring": "complete"}, "days_observed"),
    ],
)
def test_input_errors(mutate, kwargs, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        did(mutate(frame(HAND)), n_boot=10, **kwargs)


def test_cohort_errors() -> None:
    df = frame(HAND).drop("group")
    with pytest.raises(InputError, match="not in the cohort"):
        did(df, cohort=pl.DataFrame({"patient_id": ["A", "B", "C"], "group": [T, T, C]}))
    with pytest.raises(InputError, match="have no window rows"):
        did(df, cohort=pl.DataFrame({"patient_id": ["A", "B", "C", "D", "Z"],
                                     "group": [T, T, C, C, C]}))


@pytest.mark.parametrize(
    "kwargs", [{"censoring": "drop"}, {"ci": 1.5}, {"n_boot": 0}, {"pre": 0, "post": 0}]
)
def test_parameter_errors(kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError):
        did(frame(HAND), **kwargs)


def test_end_to_end_from_cost_by_window() -> None:
    import datetime as dt

    from costing.windows import cost_by_window

    d = dt.date
    schema = {"record_id": pl.String, "patient_id": pl.String, "setting": pl.String,
              "activity_date": pl.Date, "discharge_date": pl.Date, "pod": pl.String,
              "cost_category": pl.String, "cost": pl.Float64, "cost_source": pl.String,
              "status": pl.Int16, "status_name": pl.String, "los_days": pl.Int32,
              "n_episodes": pl.Int32}
    priced = pl.DataFrame(
        [
            ("r1", "A", "apc", d(2010, 3, 1), d(2010, 3, 4), "NEL", "non_elective", 1000.0, 3),
            ("r2", "A", "op", d(2010, 7, 1), None, "OP_FIRST", "outpatient", 100.0, None),
            ("r3", "C", "ae", d(2010, 8, 1), None, "AE_T12", "ae", 200.0, None),
        ],
        schema=["record_id", "patient_id", "setting", "activity_date", "discharge_date", "pod",
                "cost_category", "cost", "los_days"],
        orient="row",
    ).with_columns(pl.lit("tariff").alias("cost_source"), pl.lit(1, pl.Int16).alias("status"),
                   pl.lit("x").alias("status_name"), pl.lit(1, pl.Int32).alias("n_episodes"),
                   pl.col("los_days").cast(pl.Int32)).select(list(schema))
    cohort = pl.DataFrame({"patient_id": ["A", "B", "C", "D"],
                           "index_date": [d(2010, 6, 1)] * 4,
                           "group": [T, C, C, T], "matched_set": ["m1", "m1", "m2", "m2"]})
    wc = cost_by_window(priced, cohort)
    r = row(did(wc, n_boot=50), "total")
    # treated A, D: pre (1000 + 0)/2 = 500, post (100 + 0)/2 = 50, change -450
    # control B, C: pre 0, post (0 + 200)/2 = 100, change +100; DiD -550
    assert (r["treated_pre"], r["treated_post"], r["control_post"], r["did"]) == (
        500, 50, 100, -550)
    assert (r["n_treated"], r["n_control"], r["n_clusters"]) == (2, 2, 2)
