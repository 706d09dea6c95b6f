"""Windows: finding each record's cohort patient (the hash index and its fallback).

Expected positions come from a plain Python dict built independently of the numpy table.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import polars as pl
import pytest

import costing.windows as windows_module
from costing.windows import _HashIndex, audit, cost_by_window
from tests.unit.test_windows import COHORT, INDEX, D, cohort, priced, rec


def test_hash_index_positions_match_a_dict() -> None:
    rng = random.Random(4)
    keys = [f"P{i:05d}" for i in range(5000)]
    rng.shuffle(keys)
    # 5000 keys in 2**15 slots: many share a home slot, so later probe steps run too
    strangers = [f"S{i}" for i in range(2000)] + ["", "P", "P000001"]
    values: list[str | None] = [rng.choice(keys + strangers) for _ in range(30000)]
    values += [None, keys[0], keys[-1]]
    where = {k: i for i, k in enumerate(keys)}
    index = _HashIndex.build(pl.Series(keys))
    assert index is not None
    got = index.positions(pl.Series(values, dtype=pl.String))
    assert got.dtype == pl.UInt32
    assert got.to_list() == [where.get(v) if v is not None else None for v in values]


def test_hash_index_refuses_keys_that_share_a_hash() -> None:
    # equal values have equal hashes: the table cannot tell them apart
    assert _HashIndex.build(pl.Series(["a", "b", "a"])) is None
    assert _HashIndex.build(pl.Series(["a", "b", "c"])) is not None


def _scenario() -> tuple[pl.DataFrame, pl.DataFrame]:
    p = priced(
        rec("a", "p1", "apc", D(2008, 8, 20), 90.0, discharge=D(2008, 9, 12), category="elective"),
        rec("b", "p2", "op", D(2008, 3, 10), 40.0),
        rec("c", "zz", "op", D(2008, 9, 10), 25.0),
        rec("d", None, "ae", D(2008, 9, 1), 10.0),  # type: ignore[arg-type]
        rec("e", "p2", "ae", D(2008, 12, 1), None),
    )
    coh = cohort(
        {"patient_id": "p2", "index_date": INDEX, "end_of_follow_up": D(2008, 10, 1)},
        {"patient_id": "p1", "index_date": INDEX, "end_of_follow_up": None},
    )
    return p, coh


@pytest.mark.parametrize("assign", ["admission", "discharge", "apportion"])
def test_join_fallback_gives_the_same_answer(
    assign: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """If cohort ids shared a hash, a join on the ids places every record the same way."""
    p, coh = _scenario()
    want = cost_by_window(p, coh, assign=assign), audit(p, coh, assign=assign)
    monkeypatch.setattr(windows_module._HashIndex, "build", classmethod(lambda cls, keys: None))
    caplog.set_level(logging.INFO, logger="costing.windows")
    got = cost_by_window(p, coh, assign=assign), audit(p, coh, assign=assign)
    assert "joining on the ids" in caplog.text
    assert got[0].equals(want[0]) and got[1].equals(want[1])
    # a: p1's spell 2008-08-20 .. 2008-09-12 spans the index date 2008-08-31: window -1
    # by admission, 0 by discharge, 11 + 12 nights in -1 and 0 when apportioned;
    # b: p2 on 2008-03-10, window -1; c, d: not in the cohort (zz, no id); e: p2 on
    # 2008-12-01, after p2's end of follow-up 2008-10-01 (the audit names the window
    # the date falls in, 0)
    parts = [-1, 0] if assign == "apportion" else [-1 if assign == "admission" else 0]
    assert got[1].select("record_id", "bucket", "window").rows() == [
        *(("a", "in_window", k) for k in parts),
        ("b", "in_window", -1),
        ("c", "not_in_cohort", None),
        ("d", "not_in_cohort", None),
        ("e", "after_end_of_follow_up", 0),
    ]
    assert got[0]["cost"].sum() == pytest.approx(130.0)  # a (90) + b (40)


def test_a_stranger_dated_inside_a_cohort_window_is_not_in_it() -> None:
    # zz is not in the cohort; its date lies inside patient a's window 0
    # (2008-08-31 .. 2009-02-28): it must count nowhere in the windows
    p = priced(rec("x", "zz", "op", D(2008, 9, 10), 25.0), rec("y", "a", "op", D(2008, 9, 11), 7.0))
    out = cost_by_window(p, COHORT)
    assert out["cost"].sum() == 7.0 and out["n_records"].sum() == 1
    a = audit(p, COHORT)
    assert a.select("record_id", "bucket", "window").rows() == [
        ("x", "not_in_cohort", None),
        ("y", "in_window", 0),
    ]


def test_empty_cohort_puts_every_record_outside() -> None:
    p, _ = _scenario()
    empty = pl.DataFrame(
        {"patient_id": pl.Series([], dtype=pl.String), "index_date": pl.Series([], dtype=pl.Date)}
    )
    assert cost_by_window(p, empty).height == 0
    assert set(audit(p, empty)["bucket"]) == {"not_in_cohort"}
