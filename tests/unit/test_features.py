"""The matching features (costing.features) against independent computations.

``prior_use`` sums the priced records as arrays (fast enough for a million candidates per
index month). Here it is held equal to the windows machinery itself, ``costing.windows``
with ``assign="apportion"`` (its per-record parts summed per patient, window and category),
on generated records that stress the rules: spells over window edges and over the index
date, spells without nights or without a discharge date or with the dates reversed, did-not-
attends, unpriced records, index spells and ends of follow-up. The greedy neighbour search
is held equal to a brute-force greedy on points with many ties.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.match_sim import simulate
from costing.errors import InputError
from costing.features import (
    any_record,
    feature_names,
    features,
    index_spells,
    prior_records,
    prior_use,
)
from costing.match import _greedy
from costing.schema import COST_CATEGORIES
from costing.status import Status
from costing.windows import BUCKETS, _collect, _spec, cost_by_window

D = dt.date
BASE = D(2009, 1, 1)
IN_WINDOW = BUCKETS.index("in_window")


def _oracle(priced: pl.DataFrame, cohort: pl.DataFrame, windows: tuple[int, ...],
            months: int, index_spell_days: int | None) -> pl.DataFrame:
    """The features from the windows machinery's own apportioned parts, one loop per sum."""
    src = priced.lazy()
    if index_spell_days is not None:
        src = src.filter(~index_spells(priced, cohort, index_spell_days))
    coh, _, assigned, _ = _collect(src, cohort, _spec(windows, months, "apportion", "category"))
    inw = assigned.filter(pl.col("_b") == IN_WINDOW)
    names = feature_names(windows)
    out = {name: np.zeros(coh.height) for name in names}
    for r in inw.iter_rows(named=True):
        w = names[r["_wi"] * (2 * len(COST_CATEGORIES) + 1)].rsplit("_", 1)[1]
        c = COST_CATEGORIES[r["_ci"]]
        out[f"cost_{c}_{w}"][r["_pidx"]] += r["_part_cost"] or 0.0
        out[f"bed_days_{w}"][r["_pidx"]] += r["_nights"] or 0
        if r["_first"] and r["status"] != int(Status.EXCLUDED_NOT_ATTENDED):
            out[f"n_{c}_{w}"][r["_pidx"]] += 1
    return pl.DataFrame({"patient_id": coh["patient_id"], **out})


def _assert_equal(got: pl.DataFrame, want: pl.DataFrame) -> None:
    assert got.columns == want.columns
    assert got["patient_id"].to_list() == want["patient_id"].to_list()
    for name in got.columns[1:]:
        g, w = got[name].to_numpy().astype(float), want[name].to_numpy()
        if name.startswith("cost_"):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-9, err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


@st.composite
def _records(draw: st.DrawFn) -> tuple[pl.DataFrame, pl.DataFrame, int | None]:
    n_pat = draw(st.integers(1, 4))
    rows = []
    for i in range(draw(st.integers(0, 30))):
        setting = draw(st.sampled_from(["apc", "apc", "op", "ae"]))
        start = BASE + dt.timedelta(days=draw(st.integers(0, 800)))
        stay = draw(st.sampled_from([None, -2, 0, 1, 3, 40, 200]))
        rows.append({
            "record_id": f"r{i}", "patient_id": f"p{draw(st.integers(0, n_pat))}",
            "setting": setting, "activity_date": start,
            "discharge_date": None if setting != "apc" or stay is None else start + dt.timedelta(days=stay),
            "cost_category": draw(st.sampled_from(COST_CATEGORIES)),
            "cost": draw(st.sampled_from([None, 0.0, 99.5, 1234.56, 1 / 3])),
            "status": draw(st.sampled_from([0, 0, int(Status.EXCLUDED_NOT_ATTENDED)])),
        })
    schema = {"record_id": pl.String, "patient_id": pl.String, "setting": pl.String,
              "activity_date": pl.Date, "discharge_date": pl.Date, "cost_category": pl.String,
              "cost": pl.Float64, "status": pl.Int64}
    priced = pl.DataFrame(rows, schema=schema)
    ids = [f"p{i}" for i in range(n_pat)]  # p<n_pat> has records but is not in the cohort
    index = [BASE + dt.timedelta(days=draw(st.integers(200, 900))) for _ in ids]
    # an end of follow-up (death) inside the windows, or none
    ends = [None if draw(st.booleans()) else d - dt.timedelta(days=draw(st.integers(0, 150)))
            for d in index]
    cohort = pl.DataFrame({"patient_id": ids, "index_date": index, "end_of_follow_up": ends},
                          schema={"patient_id": pl.String, "index_date": pl.Date,
                                  "end_of_follow_up": pl.Date})
    return priced, cohort, draw(st.sampled_from([None, 0, 30]))


@given(_records(), st.sampled_from([(-1,), (-4, -3, -2, -1), (-3, -1)]))
def test_prior_use_equals_the_windows_machinery(case, windows):
    priced, cohort, index_spell_days = case
    got = prior_use(priced, cohort, windows, months=3, index_spell_days=index_spell_days)
    _assert_equal(got, _oracle(priced, cohort, windows, 3, index_spell_days))


def test_many_patients_take_the_block_path_and_agree():
    """Past an eighth of the coded patients the records are summed block by block."""
    sim = simulate(400, 20, seed=5)
    coh = sim.cases.select("patient_id", "index_date").head(15)
    ids = pl.concat([coh["patient_id"], sim.pool["patient_id"]]).unique(maintain_order=True)
    rec = prior_records(sim.priced, ids)
    windows = (-2, -1)
    few = features(rec, np.arange(coh.height), coh["index_date"], windows, 6)  # 15 of ~400: by patient
    rows = np.arange(len(ids))
    date = coh["index_date"][0]
    every = features(rec, rows, date, windows, 6)  # all of them: block by block
    one = features(rec, rows[:10], date, windows, 6)
    np.testing.assert_allclose(every[:10], one, rtol=1e-12)
    want = _oracle(sim.priced, coh, windows, 6, None)
    np.testing.assert_allclose(few, want.drop("patient_id").to_numpy(), rtol=1e-9)


def test_record_order_does_not_change_a_sum():
    sim = simulate(300, 10, seed=2)
    coh = sim.cases.select("patient_id", "index_date")
    a = prior_use(sim.priced, coh)
    b = prior_use(sim.priced.sample(fraction=1.0, shuffle=True, seed=1), coh)
    assert a.equals(b)


def test_unknown_category_is_an_error():
    priced = pl.DataFrame({"patient_id": ["a"], "setting": ["op"], "activity_date": [D(2009, 3, 1)],
                           "discharge_date": pl.Series([None], dtype=pl.Date),
                           "cost_category": ["maternity"], "cost": [1.0], "status": [0]})
    coh = pl.DataFrame({"patient_id": ["a"], "index_date": [D(2009, 7, 1)]})
    with pytest.raises(InputError, match="maternity"):
        prior_use(priced, coh, windows=(-1,))


def test_any_record_equals_the_next_twelve_months_of_cost_by_window():
    sim = simulate(500, 10, seed=4)
    ref = sim.priced["activity_date"].sort()[sim.priced.height // 2]  # mid-way through the records
    ids = sim.pool["patient_id"]
    rec = prior_records(sim.priced, ids)
    got = any_record(rec, np.arange(len(ids)), ref, 12, "non_elective")
    coh = pl.DataFrame({"patient_id": ids, "index_date": [ref] * len(ids)})
    w = cost_by_window(sim.priced, coh, windows=(0,), months=12)
    want = w.filter(pl.col("category") == "non_elective")["n_records"].to_numpy() > 0
    np.testing.assert_array_equal(got, want)
    assert 0 < got.sum() < len(ids)  # some have an emergency admission, some not


def _brute_greedy(case_pts, cand_pts, case_lp, cand_lp, order, k, width):
    """Each round, each case in order takes the nearest unused candidate within the
    caliper, equal distances to the first in candidate order."""
    used = np.zeros(len(cand_pts), dtype=bool)
    got = [[] for _ in range(len(case_pts))]
    for r in range(k):
        for i in order:
            if len(got[i]) < r:
                continue
            ok = ~used & (np.abs(cand_lp - case_lp[i]) <= width)
            band = np.flatnonzero(ok)
            if band.size == 0:
                continue
            d = np.sqrt(((cand_pts[band] - case_pts[i]) ** 2).sum(axis=1))
            j = int(band[np.lexsort((band, d))[0]])
            used[j] = True
            got[i].append(j)
    return got


@pytest.mark.parametrize("dims", [1, 2])
def test_greedy_equals_a_brute_force_greedy_with_many_ties(dims):
    rng = np.random.default_rng(dims)
    # 3,000 candidates on 40 distinct points (many ties), cases near them
    points = np.round(rng.normal(size=(40, dims)), 3)
    cand_pts = points[rng.integers(0, 40, 3000)]
    case_pts = np.round(points[rng.integers(0, 40, 120)] + rng.normal(scale=0.05, size=(120, dims)), 3)
    cand_lp, case_lp = cand_pts[:, 0], case_pts[:, 0]
    order = rng.permutation(120)
    for k, width in ((1, 0.5), (3, 0.2)):
        got = _greedy(case_pts, cand_pts, case_lp, cand_lp, order, k, width)
        assert got == _brute_greedy(case_pts, cand_pts, case_lp, cand_lp, order, k, width)
