"""Real HES episodes: priced on their own dates, optional fields that block only the rule
reading them, and outpatient treatment functions that are not codes.

Prices here are invented (small fixture tables) and each expected cost is worked by hand in
the test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

import costing
from costing import CostingConfig, Status
from tests.fixtures.tables import apc, apc_rows, frame, write_reference_costs, write_tariff, write_trimpoints

D = dt.date
PROVIDER = CostingConfig(perspective="provider", reference_cost_edition="2017-18")
PURCHASER = CostingConfig(tariff_edition="2017-18", reference_cost_edition="2017-18")


@pytest.fixture
def tables(tmp_path: Path) -> costing.TableSet:
    # invented: tariff NEL 1000, trim 5, 200 a day beyond it, short stay 300 from age 19;
    # reference cost NEL 900 (NES 400 under two nights), 100 a day beyond an episode trim
    # point of 4; CL 150 for TF 100
    write_tariff(tmp_path, "2017-18", apc_rows(
        dict(hrg_code="DZ11V", nel_price=1000.0, nel_trim_days=5, excess_bed_day_price=200.0,
             sse_applicable=True, sse_percent=30.0, sse_price=300.0)))
    write_reference_costs(tmp_path, "2017-18", [("NEL", None, "DZ11V", 900.0), ("NES", None, "DZ11V", 400.0),
                                                ("NEL_XS", None, "DZ11V", 100.0),
                                                ("CL", "100", "WF01B", 150.0)])
    write_trimpoints(tmp_path, "2017-18", {"DZ11V": 4})
    return costing.load_tables(tmp_path)


HES_EPISODES = """EPIKEY,PSEUDO_HESID,PROCODE3,ADMIDATE,DISDATE,EPISTART,EPIEND,EPIORDER,ADMIMETH,CLASSPAT,SUSHRG,STARTAGE
e1,p1,RXX,2017-06-01,,2017-06-01,2017-06-09,1,21,1,DZ11V,40
e2,p1,RXX,2017-06-01,2017-06-20,2017-06-09,2017-06-20,2,21,1,DZ11V,40
e3,p2,RXX,2017-06-01,,,,1,21,1,DZ11V,40
"""


def test_an_episode_without_a_discharge_date_is_priced_on_its_own_dates(tmp_path: Path,
                                                                       tables: costing.TableSet) -> None:
    path = tmp_path / "apc.csv"
    path.write_text(HES_EPISODES)
    activity = costing.read_activity(path, setting="apc")
    read = activity.collect()
    # reading no longer calls e1's empty DISDATE a problem: it has EPISTART and EPIEND
    assert read["invalid_reason"].to_list()[:2] == [None, None]
    out = costing.price(activity, tables, PROVIDER)
    by_id = {r["record_id"]: r for r in out.iter_rows(named=True)}
    # e1: 8 nights (1 to 9 June), trim 4 -> 900 + 4 x 100 = 1300
    assert by_id["e1"]["los_days"] == 8 and by_id["e1"]["cost"] == 1300.0
    # e2: 11 nights (9 to 20 June) -> 900 + 7 x 100 = 1600
    assert by_id["e2"]["los_days"] == 11 and by_id["e2"]["cost"] == 1600.0
    # e3: neither a discharge date nor its own dates: unpriced, saying why
    assert by_id["e3"]["status"] == Status.INVALID_RECORD
    assert "discharge_date: missing" in by_id["e3"]["invalid_reason"]


def test_per_spell_the_discharge_date_is_still_required(tmp_path: Path, tables: costing.TableSet) -> None:
    # purchaser prices spells: e1 and e2 are one spell (same patient, provider, admission),
    # discharged 20 June (LOS 19), HRG of its first episode: tariff NEL 1000 + (19 - 5) x 200
    # = 3800; e3 has no discharge date
    path = tmp_path / "apc.csv"
    path.write_text(HES_EPISODES)
    cfg = PURCHASER.model_copy(update={"spell_hrg": "first_episode"})
    out = costing.price(costing.read_activity(path, setting="apc"), tables, cfg)
    assert out["record_id"].to_list() == ["e1", "e3"]
    assert out["n_episodes"].to_list() == [2, 1]
    assert out["cost"][0] == 3800.0
    assert out["status"][1] == Status.INVALID_RECORD
    assert "discharge_date: missing" in out["invalid_reason"][1]


def test_an_episode_that_ends_before_it_starts_is_invalid(tables: costing.TableSet) -> None:
    out = costing.price(frame(apc("back", discharge_date=None, episode_start=D(2017, 6, 9),
                                  episode_end=D(2017, 6, 2))), tables, PROVIDER)
    assert out["status"][0] == Status.INVALID_RECORD
    assert out["invalid_reason"][0] == "episode_end: episode ends before it starts"


def test_an_impossible_age_blocks_the_short_stay_test_not_a_provider_price(tmp_path: Path,
                                                                          tables: costing.TableSet) -> None:
    path = tmp_path / "apc.csv"
    path.write_text(
        "EPIKEY,PSEUDO_HESID,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,STARTAGE\n"
        "short,p1,2017-06-01,2017-06-02,21,1,DZ11V,999\n"   # LOS 1, emergency: short stay?
        "long,p2,2017-06-01,2017-06-04,21,1,DZ11V,999\n"    # LOS 3: short stay never applies
        "fine,p3,2017-06-01,2017-06-02,21,1,DZ11V,45\n")
    activity = costing.read_activity(path, setting="apc")
    assert activity.collect()["invalid_reason"][0].startswith("age: not an age")
    provider = costing.price(activity, tables, PROVIDER)
    # reference cost does not read the age: NES 400 (one night), NEL 900 (three nights, under
    # the trim point of 4), NES 400
    assert provider["cost"].to_list() == [400.0, 900.0, 400.0]
    assert provider["invalid_reason"][0].startswith("age: ")  # the problem is still shown
    purchaser = costing.price(activity, tables, PURCHASER)
    # the short-stay test needs the age: unpriced; a 3-night stay is priced whatever the
    # age (NEL 1000, under the trim point of 5); age 45, one night: short stay 300
    assert purchaser["status"].to_list() == [Status.INVALID_RECORD, Status.PRICED_TARIFF,
                                             Status.PRICED_TARIFF]
    assert purchaser["cost"].to_list() == [None, 1000.0, 300.0]


def test_the_lazy_path_agrees_on_optional_fields(tmp_path: Path, tables: costing.TableSet) -> None:
    path = tmp_path / "apc.csv"
    path.write_text("EPIKEY,PSEUDO_HESID,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,STARTAGE\n"
                    "short,p1,2017-06-01,2017-06-02,21,1,DZ11V,999\n"
                    "long,p2,2017-06-01,2017-06-04,21,1,DZ11V,999\n")
    activity = costing.read_activity(path, setting="apc")
    eager = costing.price(activity, tables, PURCHASER)
    lazy = costing.price_lazy(activity, tables, PURCHASER).collect()
    assert lazy["status"].to_list() == eager["status"].to_list() == [Status.INVALID_RECORD,
                                                                     Status.PRICED_TARIFF]


def test_a_treatment_function_that_is_not_a_code_is_an_invalid_record(tables: costing.TableSet) -> None:
    base = {"patient_id": "p", "setting": "op", "activity_date": D(2017, 6, 1), "first_attendance": "1"}
    out = costing.price(frame({**base, "record_id": "amp", "attended": "5", "treatment_function_code": "&"},
                              {**base, "record_id": "ok", "attended": "5", "treatment_function_code": "100"},
                              {**base, "record_id": "dna", "attended": "3", "treatment_function_code": "&"}),
                        tables, PROVIDER)
    assert out["status"].to_list() == [Status.INVALID_RECORD, Status.PRICED_REFERENCE_COST,
                                       Status.EXCLUDED_NOT_ATTENDED]
    assert out["invalid_reason"][0] == ("treatment_function_code: not a treatment function code "
                                        "(three digits, e.g. 100)")
    assert out["cost"].to_list() == [None, 150.0, 0.0]


def test_artificial_apc_episodes_without_discharge_date_are_no_longer_invalid(
        shared_data: Path, shipped_tables: costing.TableSet) -> None:
    path = shared_data / "artificial-hes" / "artificial_hes_apc_0102_sample.csv"
    raw = pl.read_csv(path, infer_schema=False, columns=["EPIKEY", "DISDATE", "EPISTART", "EPIEND"])
    episodes = raw.filter(pl.col("DISDATE").is_null() & pl.col("EPISTART").is_not_null()
                          & pl.col("EPIEND").is_not_null())["EPIKEY"]
    assert episodes.len() == 80  # counted in the file (the figure)
    out = costing.price(costing.read_activity(path, setting="apc"), shipped_tables,
                        CostingConfig(perspective="provider", reference_cost_edition="2017-18"))
    mine = out.filter(pl.col("record_id").is_in(episodes.implode()))
    assert mine.height == 80
    # SUSHRG is empty on every row of the sample, so they stop at "no HRG", not before
    assert mine["status_name"].unique().to_list() == ["hrg_missing"]
