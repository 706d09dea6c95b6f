"""Matching (costing.match): features, risk sets, constraints, balance, models, recovery.

The simulation (benchmarks/match_sim.py) has persistent individual use (an AR(1) latent
level), selection into treatment on recent emergency admissions, and a known effect: each
case gets one extra emergency admission at £2,000 in the six months after its index date,
so the true difference in differences of emergency and total cost is £2,000 per patient.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

import costing
from benchmarks.match_sim import EMERGENCY_COST, simulate
from costing.balance import weighted_smd
from costing.errors import ConfigError, InputError
from costing.match import feature_names, index_spells, match, prior_use

D = dt.date
SIM_WINDOWS = (-2, -1)  # two feature windows: 300 cases support about 20 model columns
N_BOOT = 400


def _did(priced: pl.DataFrame, cohort: pl.DataFrame, **kw: object) -> pl.DataFrame:
    w = costing.cost_by_window(priced, cohort, windows=(-2, -1, 0))
    main = costing.did(w, pre=-1, post=0, weight="weight", n_boot=N_BOOT, measure="cost",
                       **kw)  # type: ignore[arg-type]
    pre = costing.did_pretrend(w, windows=(-2, -1), weight="weight", n_boot=N_BOOT,
                               measure="cost", **kw)
    return pl.concat([main, pre])


def _row(d: pl.DataFrame, comparison: str, category: str) -> dict[str, float]:
    return d.filter((pl.col("comparison") == comparison) & (pl.col("category") == category)).row(
        0, named=True
    )


@pytest.fixture(scope="module")
def sim():
    return simulate(6000, 300, effect=1.0, seed=1)


@pytest.fixture(scope="module")
def small():
    return simulate(1500, 60, effect=1.0, seed=3)


@pytest.fixture(scope="module")
def matched(sim):
    return match(sim.cases, sim.pool, sim.priced, k=2, windows=SIM_WINDOWS, seed=0)


# --------------------------------------------------------------------------------------
# recovery of a known effect; the unmatched comparison is biased
# --------------------------------------------------------------------------------------


def test_matched_did_recovers_the_known_effect_and_the_unmatched_comparison_is_biased(sim, matched):
    d = _did(sim.priced, matched.cohort)
    assert sim.true_effect == EMERGENCY_COST == 2000.0
    for cat in ("non_elective", "total"):
        r = _row(d, "did", cat)
        assert r["ci_low"] <= sim.true_effect <= r["ci_high"], r
    # unmatched: every non-case pool member alive and untreated at a case's index date
    rng = np.random.default_rng(5)
    controls = sim.pool.join(sim.cases, on="patient_id", how="anti")
    dates = sim.cases["index_date"].gather(rng.integers(0, sim.cases.height, controls.height))
    naive = pl.concat([
        sim.cases.with_columns(pl.lit("intervention").alias("group"), pl.lit(1.0).alias("weight")),
        controls.select("patient_id", dates.alias("index_date"), pl.lit("control").alias("group"),
                        pl.lit(1.0).alias("weight"), "death_date", "intervention_start"),
    ], how="diagonal").filter(
        (pl.col("death_date").is_null() | (pl.col("death_date") > pl.col("index_date")))
        & (pl.col("intervention_start").is_null() | (pl.col("intervention_start") > pl.col("index_date")))
    ).select("patient_id", "index_date", "group", "weight")
    r = _row(_did(sim.priced, naive, cluster=None), "did", "non_elective")
    # cases were picked at a peak of emergency use: without matching their fall afterwards
    # (regression to the mean) hides much of the effect
    assert r["ci_high"] < sim.true_effect, r


def test_no_effect_gives_did_and_pretrend_near_zero():
    s = simulate(6000, 300, effect=0.0, seed=2)
    m = match(s.cases, s.pool, s.priced, k=2, windows=SIM_WINDOWS, seed=0)
    d = _did(s.priced, m.cohort)
    for comparison in ("did", "pretrend"):
        r = _row(d, comparison, "total")
        assert r["ci_low"] <= 0.0 <= r["ci_high"], r
        assert abs(r["did"]) < 0.25 * EMERGENCY_COST, r


# --------------------------------------------------------------------------------------
# balance
# --------------------------------------------------------------------------------------


def test_balance_some_imbalance_before_none_after(matched):
    b = matched.balance
    assert set(b["variable"]) >= {"age", "sex=M", "deprivation_decile", *feature_names(SIM_WINDOWS)}
    assert b["imbalanced_before"].any() and (b["smd_before"].abs() > 0.1).any()
    assert (b["smd_after"].abs() < 0.1).all(), b.filter(pl.col("smd_after").abs() >= 0.1)
    assert not b["imbalanced_after"].any()


def test_weighted_smd_by_hand():
    # treated 2, 4 (mean 3, var 2); controls 1, 2, 6 with weights 0.5, 0.25, 0.25:
    # weighted mean 0.5 + 0.5 + 1.5 = 2.5; pooled sd given as 2 -> (3 - 2.5) / 2 = 0.25
    got = weighted_smd(np.array([2.0, 4.0]), np.array([1.0, 2.0, 6.0]),
                       control_weights=np.array([0.5, 0.25, 0.25]), denominator_sd=2.0)
    assert got == pytest.approx(0.25, abs=1e-12)
    # unweighted pooled sd: var(2,4) = 2, var(1,2,6) = 7 -> sqrt(4.5); (3 - 3) / sd = 0
    assert weighted_smd(np.array([2.0, 4.0]), np.array([1.0, 2.0, 6.0])) == 0.0


def test_balance_after_uses_the_pooled_pre_match_sd_and_control_weights(sim, matched):
    c = matched.cohort
    b = matched.balance.filter(pl.col("variable") == "n_non_elective_m1").row(0, named=True)
    feats = c.join(prior_use(sim.priced, c, SIM_WINDOWS), on="patient_id")
    t = feats.filter(pl.col("group") == "intervention")["n_non_elective_m1"].to_numpy()
    ctl = feats.filter(pl.col("group") == "control")
    by_hand = (t.mean() - np.average(ctl["n_non_elective_m1"].to_numpy(),
                                     weights=ctl["weight"].to_numpy())) / b["pooled_sd_before"]
    assert b["smd_after"] == pytest.approx(by_hand, rel=1e-9)
    assert b["treated_mean_after"] == pytest.approx(t.mean(), rel=1e-12)
    # the same denominator before: treated and control pre-match SDs pooled
    assert b["smd_before"] == pytest.approx(
        (b["treated_mean_before"] - b["control_mean_before"]) / b["pooled_sd_before"], rel=1e-9)


# --------------------------------------------------------------------------------------
# constraints
# --------------------------------------------------------------------------------------


def test_constraints_hold(sim, matched):
    c = matched.cohort
    cases = c.filter(pl.col("group") == "intervention")
    ctl = c.filter(pl.col("group") == "control").join(
        sim.pool.select("patient_id", "death_date", "intervention_start"), on="patient_id")
    sets = ctl.join(cases.select("matched_set", pl.col("index_date").alias("case_index"),
                                 pl.col("score_propensity").alias("case_lp")), on="matched_set")
    # exact stratum (index month) shared within a set; a control takes its case's index date
    assert (sets["index_date"] == sets["case_index"]).all()
    # caliper: 0.2 SD of the logit propensity score
    width = matched.diagnostics.caliper_width
    assert width is not None and width > 0
    assert ((sets["score_propensity"] - sets["case_lp"]).abs() <= width + 1e-12).all()
    # no control used twice, none a case
    assert c["patient_id"].is_unique().all()
    assert not ctl["patient_id"].is_in(sim.cases["patient_id"].implode()).any()
    # weights: 1 per case, the controls of a set sum to 1
    assert (cases["weight"] == 1.0).all()
    per_set = ctl.group_by("matched_set").agg(pl.col("weight").sum(), pl.len())
    assert np.allclose(per_set["weight"].to_numpy(), 1.0)
    assert set(per_set["len"]) <= {1, 2}
    # nobody dead or treated by their index date
    assert not (ctl["death_date"] <= ctl["index_date"]).any()
    assert not (ctl["intervention_start"] <= ctl["index_date"]).any()
    # controls treated later are censored the day before their intervention
    later = ctl.filter(pl.col("intervention_start").is_not_null())
    assert later.height > 0
    assert (later["end_of_follow_up"] <= later["intervention_start"] - dt.timedelta(days=1)).all()
    assert (later.filter(pl.col("death_date").is_null())["end_of_follow_up"]
            == later.filter(pl.col("death_date").is_null())["intervention_start"]
            - dt.timedelta(days=1)).all()
    # ready for the windows and the evaluation as it stands, with the attributes used
    costing.validate_cohort(c)
    attrs = c.select("patient_id", "age", "sex", "deprivation_decile").join(
        sim.pool.select("patient_id", "age", "sex", "deprivation_decile"), on="patient_id")
    assert attrs.height == c.height
    assert (attrs["age"] == attrs["age_right"]).all() and (attrs["sex"] == attrs["sex_right"]).all()


def test_exact_strata_are_shared_within_a_set(small):
    m = match(small.cases, small.pool, small.priced, k=1, exact=["sex"],
              windows=SIM_WINDOWS, score="propensity")
    sexes = m.cohort.join(small.pool.select("patient_id", "sex"), on="patient_id")
    assert (sexes.group_by("matched_set").agg(pl.col("sex").n_unique())["sex"] == 1).all()
    months = m.cohort.with_columns(pl.col("index_date").dt.truncate("1mo").alias("m"))
    assert (months.group_by("matched_set").agg(pl.col("m").n_unique())["m"] == 1).all()
    assert "sex" in m.diagnostics.strata.columns


def test_features_ignore_activity_on_or_after_the_index_date():
    idx = D(2009, 7, 1)
    priced = pl.DataFrame({
        "patient_id": ["a"] * 5,
        "setting": ["apc", "apc", "op", "op", "ae"],
        # a spell over the index date (June 28 -> July 3: 3 nights before it), a spell on
        # it, an attendance the day before, one on it, and A&E after it
        "activity_date": [D(2009, 6, 28), idx, D(2009, 6, 30), idx, D(2009, 8, 1)],
        "discharge_date": [D(2009, 7, 3), D(2009, 7, 5), None, None, None],
        "cost_category": ["non_elective", "elective", "outpatient", "outpatient", "ae"],
        "cost": [1000.0, 500.0, 100.0, 100.0, 150.0],
        "status": [0, 0, 0, 0, 0],
    })
    f = prior_use(priced, pl.DataFrame({"patient_id": ["a"], "index_date": [idx]}), windows=(-1,))
    row = f.row(0, named=True)
    # 3 of the 5 nights of the spell fall before the index date: 3/5 of its £1,000
    assert row["n_non_elective_m1"] == 1 and row["cost_non_elective_m1"] == pytest.approx(600.0)
    assert row["bed_days_m1"] == 3
    assert row["n_outpatient_m1"] == 1 and row["cost_outpatient_m1"] == 100.0
    assert row["n_elective_m1"] == 0 and row["cost_elective_m1"] == 0.0
    assert row["n_ae_m1"] == 0 and row["cost_ae_m1"] == 0.0
    # leaving out the index spell (in progress at the index date) removes it entirely
    f2 = prior_use(priced, pl.DataFrame({"patient_id": ["a"], "index_date": [idx]}),
                   windows=(-1,), index_spell_days=0)
    assert f2["cost_non_elective_m1"][0] == 0.0 and f2["bed_days_m1"][0] == 0
    assert index_spells(priced, pl.DataFrame({"patient_id": ["a"], "index_date": [idx]}),
                        days=0).to_list() == [True, True, False, False, False]


def test_candidates_features_equal_cost_by_window(small):
    coh = small.cases.head(50)
    f = prior_use(small.priced, coh, windows=(-2, -1))
    w = costing.cost_by_window(small.priced, coh, windows=(-2, -1), assign="apportion", wide=True)
    for k, lab in ((-2, "m2"), (-1, "m1")):
        ww = w.filter(pl.col("window") == k)
        for c in ("elective", "outpatient", "ae", "non_elective"):
            assert np.allclose(f[f"cost_{c}_{lab}"].to_numpy(), ww[f"cost_{c}"].to_numpy())


# --------------------------------------------------------------------------------------
# reproducibility
# --------------------------------------------------------------------------------------


def test_same_seed_same_output_and_row_order_does_not_matter(small):
    first = match(small.cases, small.pool, small.priced, k=2, windows=SIM_WINDOWS, seed=0)
    cases = small.cases.sample(fraction=1.0, shuffle=True, seed=3)
    pool = small.pool.sample(fraction=1.0, shuffle=True, seed=4)
    priced = small.priced.sample(fraction=1.0, shuffle=True, seed=5)
    again = match(cases, pool, priced, k=2, windows=SIM_WINDOWS, seed=0)
    assert again.cohort.equals(first.cohort)
    assert again.balance.equals(first.balance)
    assert again.diagnostics.strata.equals(first.diagnostics.strata)


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------


def test_propensity_model_agrees_with_statsmodels(small):
    sm = pytest.importorskip("statsmodels.api", reason="statsmodels is in the test extra")
    m = match(small.cases, small.pool, small.priced, k=1, windows=(-1,), score="propensity")
    prop = m.models["propensity"]
    fit = sm.Logit(prop.outcome, sm.add_constant(prop.design)).fit(disp=0, method="newton",
                                                                     tol=1e-12, maxiter=100)
    ours = np.r_[prop.intercept, prop.coef]
    assert np.allclose(ours, fit.params, rtol=0, atol=1e-6), np.abs(ours - fit.params).max()
    # fitted on every case (outcome 1) against eligible candidate rows (outcome 0)
    assert prop.outcome.sum() == small.cases.height
    assert prop.design.shape == (len(prop.outcome), len(prop.kept))


# --------------------------------------------------------------------------------------
# unmatched cases, options and bad input
# --------------------------------------------------------------------------------------


def test_unmatched_cases_are_reported_with_the_reason(small):
    m = match(small.cases, small.pool, small.priced, k=5, min_k=5, caliper=0.001,
              windows=SIM_WINDOWS, score="propensity")
    u = m.diagnostics.unmatched
    assert u.height > 0 and u.height + m.diagnostics.n_matched == small.cases.height
    assert u["reason"].str.contains("fewer than min_k=5").all()
    assert not m.cohort["patient_id"].is_in(u["patient_id"].implode()).any()


def test_contamination_column_excludes_the_cases_practices(small):
    practice = pl.col("patient_id").str.slice(1).cast(pl.Int64) % 20
    pool = small.pool.with_columns(practice.cast(pl.String).alias("practice"))
    cases = small.cases.join(pool.select("patient_id", "practice"), on="patient_id")
    m = match(cases, pool, small.priced, windows=SIM_WINDOWS, exclude_same="practice",
              score="propensity")
    used = m.cohort.join(pool.select("patient_id", "practice"), on="patient_id")
    ctl = used.filter(pl.col("group") == "control")
    assert ctl.height > 0
    assert not ctl["practice"].is_in(cases["practice"].implode()).any()


def test_columns_only_the_cases_have_go_to_the_whole_set(small):
    """A case column the pool lacks (e.g. site_type) is a property of the matched set: each
    control takes its case's value, as with site, so it can serve as a subgroup."""
    kind = pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("case management")).otherwise(pl.lit("other"))
    cases = small.cases.with_columns(kind.alias("site_type"))
    m = match(cases, small.pool, small.priced, k=2, windows=SIM_WINDOWS, score="propensity")
    of_case = dict(zip(cases["patient_id"], cases["site_type"], strict=True))
    assert m.cohort["site_type"].null_count() == 0
    assert m.cohort["site_type"].to_list() == [of_case[s] for s in m.cohort["matched_set"]]
    assert set(m.cohort.filter(pl.col("group") == "control")["site_type"]) == {"case management", "other"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"k": 6}, "1 to 5"),
    ({"k": 2, "min_k": 3}, "min_k"),
    ({"caliper": -1}, "caliper"),
    ({"score": "random"}, "score"),
    ({"windows": (-1, 0)}, "negative"),
    ({"covariates": "ltc"}, "list of column names"),
])
def test_bad_arguments_are_config_errors(small, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        match(small.cases, small.pool, small.priced, **kwargs)


def test_missing_attribute_is_a_clear_error(small):
    with pytest.raises(InputError, match="ltc_count"):
        match(small.cases, small.pool, small.priced, covariates=["ltc_count"])
    pool = small.pool.with_columns(
        pl.when(pl.col("patient_id") == "p7").then(None).otherwise(pl.col("age")).alias("age"))
    with pytest.raises(InputError, match="no value"):
        match(small.cases, pool, small.priced, windows=(-1,))


def test_love_plot_is_a_png(matched, tmp_path):
    p = tmp_path / "love.png"
    matched.love_plot(p)
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert math.isfinite(matched.diagnostics.effective_sample_size)


def test_prognostic_model_never_sees_follow_up(small):
    """Emergency admissions added for every pool member on or after the first index date
    (the follow-up of any control) leave the prognostic model exactly as it was."""
    base = match(small.cases, small.pool, small.priced, k=1, windows=SIM_WINDOWS, seed=0)
    first = small.cases["index_date"].min()
    extra = small.priced.filter(pl.col("cost_category") == "non_elective").head(1).select(
        pl.exclude("patient_id", "activity_date", "discharge_date", "record_id")
    ).join(small.pool.select("patient_id"), how="cross").with_columns(
        pl.lit(first).alias("activity_date"), (pl.lit(first) + dt.timedelta(days=2)).alias("discharge_date"),
        pl.format("x{}", pl.col("patient_id")).alias("record_id"),
    ).select(small.priced.columns)
    again = match(small.cases, small.pool, pl.concat([small.priced, extra]), k=1,
                  windows=SIM_WINDOWS, seed=0)
    p0, p1 = base.models["prognostic"], again.models["prognostic"]
    assert p0.intercept == p1.intercept and np.array_equal(p0.coef, p1.coef)
    assert np.array_equal(p0.outcome, p1.outcome) and p0.outcome.sum() > 0
