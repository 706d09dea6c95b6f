"""Evaluation as the studies report it: activity, relative effect, subgroups, adjustment."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costing.did import did
from costing.errors import InputError
from tests.unit.test_did import HAND, C, T, frame, row

# Outpatient records per window (pre, post) as (records, of which excluded: DNA/cancelled).
VISITS = {
    "A": (T, ((3, 1), (1, 0))),  # attendances 2 -> 1
    "B": (T, ((1, 0), (1, 0))),  # 1 -> 1
    "C": (C, ((2, 0), (4, 1))),  # 2 -> 3
    "D": (C, ((0, 0), (1, 0))),  # 0 -> 1
}


def visits_frame() -> pl.DataFrame:
    base = frame({p: (g, {"outpatient": (10.0, 20.0)}) for p, (g, _) in VISITS.items()})
    n = {(p, w): v[i] for p, (_, v) in VISITS.items() for i, w in enumerate((-1, 0))}
    return base.with_columns(
        pl.Series("n_records", [n[(p, w)][0] for p, w in base.select("patient_id", "window")
                                .iter_rows()], dtype=pl.UInt32),
        pl.Series("n_excluded", [n[(p, w)][1] for p, w in base.select("patient_id", "window")
                                 .iter_rows()], dtype=pl.UInt32),
    )


def test_activity_did_counts_attendances_not_exclusions() -> None:
    out = did(visits_frame(), measure="activity", n_boot=100)
    assert out["measure"].unique().to_list() == ["activity"]
    r = row(out, "outpatient", "activity")
    # treated (2 + 1)/2 = 1.5 -> (1 + 1)/2 = 1 (-0.5); control (2 + 0)/2 = 1 -> (3 + 1)/2 = 2
    # (+1); DiD -1.5 attendances per patient
    assert (r["treated_pre"], r["treated_post"], r["control_pre"], r["control_post"]) == (
        1.5, 1.0, 1.0, 2.0)
    assert r["did"] == -1.5
    # relative effect: (1 / 1.5) / (2 / 1) - 1 = -2/3; % of treated pre: -1.5 / 1.5 = -100%
    assert r["relative_effect_pct"] == pytest.approx(-200 / 3)
    assert r["did_pct_of_treated_pre"] == pytest.approx(-100)
    assert r["relative_ci_low_pct"] <= r["relative_effect_pct"] <= r["relative_ci_high_pct"]


def test_relative_effect_of_cost_by_hand() -> None:
    r = row(did(frame(HAND), n_boot=100), "total")
    # treated 250 -> 250, control 125 -> 225: (250/250) / (225/125) - 1 = 125/225 - 1
    assert r["relative_effect_pct"] == pytest.approx(100 * (125 / 225 - 1))
    # elective: treated 200 -> 100, control 100 -> 150: 0.5 / 1.5 - 1 = -2/3
    assert row(did(frame(HAND), n_boot=20), "elective")["relative_effect_pct"] == (
        pytest.approx(-200 / 3))


def test_subgroups_are_stacked_with_their_own_estimates() -> None:
    cohort = pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "site": ["x", "y", "x", "y"]})
    out = did(frame(HAND), cohort=cohort, subgroups="site", measure="cost", n_boot=50)
    assert out.select("subgroup", "subgroup_value").unique(maintain_order=True).rows() == [
        ("all", None), ("site", "x"), ("site", "y")]

    def el(value: str | None) -> dict[str, object]:
        f = out.filter(pl.col("subgroup_value").eq_missing(value) & (pl.col("category")
                                                                      == "elective"))
        return f.row(0, named=True)

    # all: -150 (test_did); site x: A 100 -> 50 (-50), C 200 -> 200 (0): DiD -50;
    # site y: B 300 -> 150 (-150), D 0 -> 100 (+100): DiD -250
    assert (el(None)["did"], el("x")["did"], el("y")["did"]) == (-150, -50, -250)
    assert (el("x")["n_treated"], el("x")["n_control"], el("x")["n_clusters"]) == (1, 1, 2)


def test_subgroup_without_an_arm_is_a_clear_error() -> None:
    cohort = pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "site": ["x", "x", "y", "y"]})
    with pytest.raises(InputError, match="subgroup site='x'.*no control"):
        did(frame(HAND), cohort=cohort, subgroups=["site"], n_boot=10)


def _panel_data(seed: int, n: int = 60) -> tuple[pl.DataFrame, pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    arm = np.arange(n) % 3 == 0
    age = rng.integers(40, 90, n).astype(float) + 8 * arm  # treated older: imbalance
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    pre = rng.gamma(1.0, 500.0, n)
    post = np.maximum(0, pre + 10 * (age - 60) - 100 * arm + rng.normal(0, 200, n))
    patients = {f"p{i:02d}": (T if arm[i] else C, {"ae": (pre[i], post[i])}) for i in range(n)}
    sets = {f"p{i:02d}": f"m{i // 3}" for i in range(n)}
    cohort = pl.DataFrame({"patient_id": list(patients), "age": age, "sex": sex})
    y = np.stack([pre, post], axis=1)
    return frame(patients, matched_set=sets), cohort, y


def test_adjusted_without_covariates_equals_the_unadjusted_did() -> None:
    wc, cohort, _ = _panel_data(1)
    out = did(wc, cohort=cohort, adjust=[], n_boot=20)
    assert out["adjusted_did"].to_numpy() == pytest.approx(out["did"].to_numpy(), abs=1e-8)
    assert set(out["adjusted_for"]) == {"(nothing)"}
    wt = did(frame(HAND, weight={"D": 3.0}), weight="weight", adjust=[], n_boot=20)
    assert wt["adjusted_did"].to_numpy() == pytest.approx(wt["did"].to_numpy(), abs=1e-8)


def test_adjusted_estimate_and_clustered_se_against_numpy() -> None:
    wc, cohort, y = _panel_data(2)
    r = row(did(wc, cohort=cohort, adjust=["age", "sex"], n_boot=20), "ae")
    assert r["adjusted_for"] == "age, sex=M"
    n = y.shape[0]
    arm = (np.arange(n) % 3 == 0).astype(float)
    x = np.column_stack([cohort["age"].to_numpy(), (cohort["sex"] == "M").cast(float)])
    p = np.r_[np.zeros(n), np.ones(n)]
    tt, xx = np.r_[arm, arm], np.vstack([x, x])
    design = np.column_stack([np.ones(2 * n), tt, p, tt * p, xx, xx * p[:, None]])
    yy = np.r_[y[:, 0], y[:, 1]]
    beta, *_ = np.linalg.lstsq(design, yy, rcond=None)
    assert r["adjusted_did"] == pytest.approx(beta[3], rel=1e-9)
    assert r["adjusted_did"] != pytest.approx(r["did"], rel=1e-3)  # the imbalance matters
    # cluster-robust (CR1) sandwich by hand: G/(G-1) * (N-1)/(N-K) small-sample factor
    resid = yy - design @ beta
    groups = np.r_[np.arange(n) // 3, np.arange(n) // 3]
    bread = np.linalg.inv(design.T @ design)
    meat = sum(np.outer(design[groups == g].T @ resid[groups == g],
                        design[groups == g].T @ resid[groups == g]) for g in range(n // 3))
    big_g, big_n, k = n // 3, 2 * n, design.shape[1]
    v = bread @ meat @ bread * big_g / (big_g - 1) * (big_n - 1) / (big_n - k)
    assert r["adjusted_se"] == pytest.approx(np.sqrt(v[3, 3]), rel=1e-6)
    assert r["adjusted_ci_low"] < r["adjusted_did"] < r["adjusted_ci_high"]


def test_missing_covariate_names_the_patients() -> None:
    wc, cohort, _ = _panel_data(3)
    cohort = cohort.with_columns(
        pl.when(pl.col("patient_id").is_in(["p04", "p07"])).then(None).otherwise("age")
        .alias("age"))
    with pytest.raises(InputError, match=r"'age' is missing for 2 patient\(s\).*'p04', 'p07'"):
        did(wc, cohort=cohort, adjust=["age"], n_boot=10)
    with pytest.raises(InputError, match="'bmi'"):
        did(wc, cohort=cohort, adjust=["bmi"], n_boot=10)


costs = st.lists(st.tuples(st.floats(0, 1e4), st.floats(0, 1e4)), min_size=4, max_size=10)


@settings(max_examples=25)
@given(costs=costs, shift=st.floats(-1e3, 1e3))
def test_did_is_shift_invariant_and_antisymmetric(costs: list[tuple[float, float]],
                                                   shift: float) -> None:
    patients = {f"p{i}": (T if i % 2 else C, {"ae": c}) for i, c in enumerate(costs)}
    base = did(frame(patients), measure="cost", n_boot=10)
    shifted = did(frame(patients).with_columns(pl.col("cost") + shift), measure="cost",
                  n_boot=10)
    assert shifted["did"].to_numpy() == pytest.approx(base["did"].to_numpy(), abs=1e-6)
    swapped = did(frame(patients), measure="cost", treated=C, n_boot=10)
    assert swapped["did"].to_numpy() == pytest.approx(-base["did"].to_numpy(), abs=1e-6)


def test_covariates_read_as_text_are_numbers() -> None:
    # a cohort CSV read by read_cohort keeps extra columns as text: "83" is still a number
    wc, cohort, _ = _panel_data(4)
    as_text = cohort.with_columns(pl.col("age").cast(pl.Int64).cast(pl.String))
    a = row(did(wc, cohort=cohort, adjust=["age"], n_boot=10), "ae")
    b = row(did(wc, cohort=as_text, adjust=["age"], n_boot=10), "ae")
    assert b["adjusted_for"] == "age"
    assert b["adjusted_did"] == pytest.approx(a["adjusted_did"], rel=1e-12)


def test_did_and_balance_charts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from costing.balance import balance
    from costing.charts import balance_chart, did_chart

    wc, cohort, _ = _panel_data(5)
    table = did(wc, cohort=cohort, adjust=["age"], n_boot=20)
    fig = did_chart(table, path=tmp_path / "did.png")
    assert (tmp_path / "did.png").read_bytes().startswith(b"\x89PNG")
    assert [ax.get_title() for ax in fig.axes] == ["activity (records)", "cost (£)"]
    bal = balance(wc, cohort=cohort, covariates=["age", "sex"])
    fig = balance_chart(bal, path=tmp_path / "balance.png")
    assert len(fig.axes[0].get_yticklabels()) == bal.height
    with pytest.raises(InputError, match="missing column"):
        did_chart(bal)
