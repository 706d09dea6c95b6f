"""Behaviour kept (or fixed) by the fast pricing engine: spells, record conservation, order.

The engine prices by integer lookups and builds spells by grouping only the APC key columns;
these tests pin the behaviours those shortcuts could break.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

import costing
from costing import CostingConfig, Status

D = dt.date
PURCHASER = CostingConfig(reference_cost_edition="2017-18", tariff_edition=None,
                          chain=("reference_cost",), apc_unit="spell")


def _apc(rid: str, patient: str, adm: dt.date, dis: dt.date, hrg: str | None, order: int | None = None,
         spell_hrg: str | None = None) -> dict:
    return {"record_id": rid, "patient_id": patient, "setting": "apc", "provider_code": "RAE",
            "activity_date": adm, "discharge_date": dis, "admission_method": "21",
            "patient_classification": "1", "hrg_code": hrg, "hrg_version": "HRG4",
            "episode_order": order, "spell_hrg_code": spell_hrg}


def _frame(*recs: dict) -> pl.DataFrame:
    cols = sorted({k for r in recs for k in r})
    return pl.DataFrame({c: [r.get(c) for r in recs] for c in cols},
                        schema_overrides={"episode_order": pl.Int32})


def test_spells_keep_input_order_and_every_non_apc_record(shipped_tables: costing.TableSet) -> None:
    # rows 1 and 3 are one spell (same provider, patient, admission date): 5 rows in -> 4 out,
    # the spell in the position of its first episode, everything else in input order
    op = {"record_id": "o1", "patient_id": "p9", "setting": "op", "activity_date": D(2017, 6, 2),
          "attended": "5", "first_attendance": "1", "treatment_function_code": "100"}
    ae = {"record_id": "a1", "patient_id": "p9", "setting": "ae", "activity_date": D(2017, 6, 3),
          "department_type": "01", "hrg_code": "VB01Z", "hrg_version": "HRG4"}
    recs = [_apc("e1", "p1", D(2017, 6, 1), D(2017, 6, 4), "DZ11V", 1, "DZ11V"), op,
            _apc("e2", "p1", D(2017, 6, 1), D(2017, 6, 13), "DZ11V", 2), ae,
            _apc("e3", "p2", D(2017, 6, 1), D(2017, 6, 2), "DZ11V")]
    out = costing.price(_frame(*recs), shipped_tables, PURCHASER)
    assert out["record_id"].to_list() == ["e1", "o1", "a1", "e3"]
    assert out["n_episodes"].to_list() == [2, 1, 1, 1]
    # the spell's discharge date is the last episode's: 12 days
    assert out["los_days"][0] == 12
    assert out["source_row"].to_list() == [1, 2, 4, 5]


def test_spell_building_never_drops_a_record_without_a_setting(shipped_tables: costing.TableSet) -> None:
    # a record whose setting is null must come out (one row per input record); the old
    # split into apc / non-apc rows lost it
    recs = [_apc("e1", "p1", D(2017, 6, 1), D(2017, 6, 2), "DZ11V"),
            {**_apc("x1", "p2", D(2017, 6, 1), D(2017, 6, 2), "DZ11V"), "setting": None}]
    out = costing.price(_frame(*recs), shipped_tables, PURCHASER)
    assert out["record_id"].to_list() == ["e1", "x1"]
    assert out["status"][0] == Status.PRICED_REFERENCE_COST


def test_episode_order_picks_the_first_episode(shipped_tables: costing.TableSet) -> None:
    # the second input row is episode 1: the spell takes its columns (record_id) and sits at
    # its row, and the discharge date comes from the row with episode_order 2
    recs = [_apc("e2", "p1", D(2017, 6, 1), D(2017, 6, 9), "DZ11V", 2),
            _apc("e1", "p1", D(2017, 6, 1), D(2017, 6, 3), "DZ11V", 1, "DZ11V")]
    out = costing.price(_frame(*recs), shipped_tables, PURCHASER)
    assert out["record_id"].to_list() == ["e1"]
    assert out["source_row"].to_list() == [2]
    assert out["discharge_date"][0] == D(2017, 6, 9)
    assert out["hrg_code"][0] == "DZ11V"
