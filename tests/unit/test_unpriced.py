"""Unpriced activity: shares, levels, reasons naming the value, did statuses, arm-window counts."""

from __future__ import annotations

import polars as pl
import pytest

from costing.did import did
from costing.errors import ConfigError
from costing.status import Status
from costing.unpriced import assess_unpriced, unpriced_by_window

T, C = "intervention", "control"


def windows_frame(cells: list[tuple[str, str, int, str, float, int, int]]) -> pl.DataFrame:
    """(patient, group, window, category, cost, n_records, n_unpriced) rows, zero-filled."""
    return pl.DataFrame(
        cells,
        schema={"patient_id": pl.String, "group": pl.String, "window": pl.Int32,
                "category": pl.String, "cost": pl.Float64, "n_records": pl.UInt32,
                "n_unpriced": pl.UInt32},
        orient="row",
    )


# Four patients, two windows, two categories. Elective is priced except one record of A in
# window 0; A&E is unpriced in 3 of the 4 patient-windows that have A&E activity.
CELLS = [
    ("A", T, -1, "elective", 100.0, 1, 0), ("A", T, 0, "elective", 50.0, 2, 1),
    ("A", T, -1, "ae", 0.0, 1, 1), ("A", T, 0, "ae", 0.0, 0, 0),
    ("B", T, -1, "elective", 300.0, 1, 0), ("B", T, 0, "elective", 150.0, 1, 0),
    ("B", T, -1, "ae", 0.0, 0, 0), ("B", T, 0, "ae", 0.0, 2, 2),
    ("C", C, -1, "elective", 200.0, 1, 0), ("C", C, 0, "elective", 200.0, 1, 0),
    ("C", C, -1, "ae", 120.0, 1, 0), ("C", C, 0, "ae", 0.0, 0, 0),
    ("D", C, -1, "elective", 0.0, 0, 0), ("D", C, 0, "elective", 100.0, 1, 0),
    ("D", C, -1, "ae", 0.0, 0, 0), ("D", C, 0, "ae", 0.0, 1, 1),
]


def test_did_withholds_a_mostly_unpriced_category_and_the_total() -> None:
    out = did(windows_frame(CELLS), cluster=None, n_boot=50, measure="cost").sort("category")
    rows = {r["category"]: r for r in out.iter_rows(named=True)}
    ae, el, tot = rows["ae"], rows["elective"], rows["total"]
    # A&E: 4 patient-windows with activity (A -1, B 0, C -1, D 0), 3 with unpriced records
    assert ae["unpriced_patient_windows_share"] == pytest.approx(3 / 4)
    assert ae["estimate_status"] == "withheld_unpriced"
    for col in ("did", "ci_low", "ci_high", "p_value", "treated_pre", "control_change"):
        assert ae[col] is None, col
    assert "75.0%" in ae["estimate_note"]
    # its per arm and period counts: treated pre = A(-1): 1 record, 1 unpriced
    assert (ae["n_records_treated_pre"], ae["n_unpriced_treated_pre"]) == (1, 1)
    assert (ae["n_records_treated_post"], ae["n_unpriced_treated_post"]) == (2, 2)
    assert (ae["n_records_control_pre"], ae["n_unpriced_control_pre"]) == (1, 0)
    assert ae["unpriced_share_control_pre"] == 0.0
    # elective: 7 patient-windows with activity, 1 with an unpriced record: estimate given
    assert el["estimate_status"] == "partly_unpriced"
    assert el["unpriced_patient_windows_share"] == pytest.approx(1 / 7)
    # treated means: pre (100 + 300) / 2 = 200, post (50 + 150) / 2 = 100; control pre
    # (200 + 0) / 2 = 100, post (200 + 100) / 2 = 150: DiD = -100 - 50 = -150
    assert el["did"] == pytest.approx(-150.0)
    assert el["n_unpriced_treated_post"] == 1 and el["n_records_treated_post"] == 3
    assert el["unpriced_share_treated_post"] == pytest.approx(1 / 3)
    # the total includes A&E, which is withheld
    assert tot["estimate_status"] == "withheld_unpriced" and tot["did"] is None
    assert tot["estimate_note"].startswith("includes ae, whose estimate is withheld")
    # 7 patient-windows with activity; unpriced: A -1, A 0, B 0, D 0
    assert tot["unpriced_patient_windows_share"] == pytest.approx(4 / 7)


def test_did_fully_priced_is_ok() -> None:
    priced = [(p, g, w, c, cost, n, 0) for p, g, w, c, cost, n, _ in CELLS]
    out = did(windows_frame(priced), cluster=None, n_boot=50, measure="cost")
    assert out["estimate_status"].to_list() == ["ok"] * 3
    assert out["did"].null_count() == 0


def test_did_without_unpriced_counts_says_unknown() -> None:
    out = did(windows_frame(CELLS).drop("n_unpriced"), cluster=None, n_boot=50,
              measure="cost")
    assert set(out["estimate_status"]) == {"unpriced_unknown"}
    assert out["did"].null_count() == 0


def test_unpriced_by_window_counts_per_arm_window_category() -> None:
    out = unpriced_by_window(windows_frame(CELLS))
    row = out.filter((pl.col("category") == "ae") & (pl.col("window") == 0)
                     & (pl.col("arm") == "treated")).row(0, named=True)
    # window 0, treated: A has no A&E, B has 2 records, both unpriced
    assert row["n_patient_windows"] == 1 and row["n_patient_windows_unpriced"] == 1
    assert (row["n_records"], row["n_unpriced"], row["unpriced_share"]) == (2, 2, 1.0)
    tot = out.filter((pl.col("category") == "total") & (pl.col("window") == 0)
                     & (pl.col("arm") == "treated")).row(0, named=True)
    # A: 2 elective (1 unpriced); B: 1 elective + 2 A&E (2 unpriced)
    assert (tot["n_records"], tot["n_unpriced"]) == (5, 3)
    assert tot["n_patient_windows"] == 2 and tot["n_patient_windows_unpriced"] == 2
    assert out["n_records"].sum() == 2 * windows_frame(CELLS)["n_records"].sum()  # + total


def priced_frame(statuses: list[int], costs: list[float | None], pods: list[str],
                 **extra: list[object]) -> pl.DataFrame:
    cat = {"EL": "elective", "NEL": "non_elective", "OPFA": "outpatient", "AE": "ae"}
    return pl.DataFrame({
        "status": pl.Series(statuses, dtype=pl.Int16), "cost": costs, "pod": pods,
        "cost_category": [cat[p] for p in pods], **extra,
    })


def test_shares_of_records_and_of_pounds() -> None:
    # 10 records: elective 4 priced at 100, 1 unpriced; A&E 4 priced at 50, 1 unpriced.
    # Records: 2/10 = 20%. Pounds: the unpriced elective valued at 100, the A&E at 50:
    # 150 / (150 + 600) = 20% too; make the A&E one 2 unpriced to separate them.
    st = [1] * 4 + [52] + [1] * 4 + [52, 52]
    costs: list[float | None] = [100.0] * 4 + [None] + [50.0] * 4 + [None, None]
    pods = ["EL"] * 5 + ["AE"] * 6
    a = assess_unpriced(priced_frame(st, costs, pods))
    assert a.n_records == 11 and a.n_unpriced == 3
    assert a.share_records == pytest.approx(3 / 11)
    # imputed 100 + 2 x 50 = 200 over 200 + 600 priced
    assert a.share_gbp == pytest.approx(200 / 800)
    assert a.level == "fail"  # 27% of records > 25%
    assert a.whole_categories == []
    assert assess_unpriced(priced_frame(st, costs, pods), fail=0.3).level == "warn"
    assert assess_unpriced(priced_frame(st, costs, pods), warn=0.3, fail=0.5).level == "ok"


def test_a_whole_category_unpriced_fails_whatever_the_share() -> None:
    st = [1] * 99 + [56]
    costs: list[float | None] = [100.0] * 99 + [None]
    a = assess_unpriced(priced_frame(st, costs, ["EL"] * 99 + ["AE"]))
    assert a.share_records == pytest.approx(0.01)
    assert a.whole_categories == ["ae"] and a.level == "fail"
    assert "whole categories unpriced: ae" in a.messages[0]


def test_excluded_records_are_not_unpriced() -> None:
    a = assess_unpriced(priced_frame([20, 1], [0.0, 100.0], ["OPFA", "OPFA"]))
    assert a.n_unpriced == 0 and a.level == "ok" and a.messages == []


def test_reasons_name_the_offending_value_and_what_to_do() -> None:
    n = 20
    frame = priced_frame(
        [int(Status.INVALID_RECORD)] * n, [None] * n, ["AE"] * n,
        department_type=["99"] * n,
        invalid_reason=["department_type: unknown A&E department type"] * n,
        source_file=["ae.csv"] * n,
    )
    a = assess_unpriced(frame)
    assert a.level == "fail"
    text = "\n".join(a.messages)
    assert "department_type '99'" in text
    assert "correct the named field" in text
    assert a.file_lines == [
        "ae.csv: all 20 records unpriced for one reason: department_type '99': unknown A&E "
        "department type (20) [invalid_record]"
    ]


def test_no_edition_names_the_years_and_the_fix() -> None:
    import datetime as dt

    dates = [dt.date(2008, 5, 1), dt.date(2009, 3, 31), dt.date(2010, 4, 1)]
    frame = priced_frame([int(Status.NO_EDITION_FOR_DATE)] * 3, [None] * 3, ["EL"] * 3,
                         activity_date=dates, source_file=["a.csv", "a.csv", "b.csv"])
    a = assess_unpriced(frame)
    line = a.messages[1]
    # 2008-05-01 and 2009-03-31 are in 2008-09; 2010-04-01 in 2010-11
    assert line.startswith("  no table edition for 2008-09 to 2010-11 dates: 3 records")
    assert "set tariff_edition/reference_cost_edition (fixed mode)" in line
    assert len(a.file_lines) == 2


def test_window_costs_are_assessed_without_reasons() -> None:
    a = assess_unpriced(windows_frame(CELLS).with_columns(pl.lit(0).alias("n_excluded")))
    # records: A 1+2+1, B 1+1+2, C 1+1+1, D 1+1 = 13; unpriced: A 1+1, B 2, D 1 = 5
    assert (a.n_records, a.n_unpriced) == (13, 5)
    assert a.level == "fail"  # 36% of records


@pytest.mark.parametrize(("warn", "fail"), [(-0.1, 0.2), (0.3, 0.2), (0.05, 1.5)])
def test_thresholds_are_checked(warn: float, fail: float) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        assess_unpriced(priced_frame([1], [1.0], ["EL"]), warn=warn, fail=fail)
