"""Balance diagnostics: standardised mean differences against hand calculations."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from costing.balance import weighted_smd
from costing.errors import InputError


def test_weighted_smd_by_hand() -> None:
    # treated 2, 4, 6: mean 4, sample variance (4 + 0 + 4) / 2 = 4.
    # control 1, 3 with weights 3, 1: weighted mean (3 + 3) / 4 = 1.5;
    # unweighted sample variance ((1 - 2)^2 + (3 - 2)^2) / 1 = 2.
    # sd = sqrt((4 + 2) / 2) = sqrt(3); smd = (4 - 1.5) / sqrt(3).
    smd = weighted_smd(
        pl.Series([2, 4, 6]), pl.Series([1.0, 3.0]), control_weights=pl.Series([3.0, 1.0])
    )
    assert smd == pytest.approx(2.5 / math.sqrt(3))
    same = weighted_smd(np.array([2.0, 4, 6]), np.array([1.0, 3]),
                        control_weights=np.array([3.0, 1]))
    assert same == pytest.approx(smd)


def test_weights_move_the_means_not_the_denominator() -> None:
    # Unweighted: means 4 and 2, sd sqrt(3) -> 2 / sqrt(3); weights change only the numerator.
    assert weighted_smd(np.array([2.0, 4, 6]), np.array([1.0, 3])) == pytest.approx(
        2 / math.sqrt(3)
    )
    # treated weights 0, 0, 1 -> treated mean 6; given denominator 2 -> (6 - 2) / 2.
    assert weighted_smd(
        np.array([2.0, 4, 6]), np.array([1.0, 3]),
        treated_weights=np.array([0.0, 0, 1]), denominator_sd=2.0,
    ) == pytest.approx(2.0)


def test_swapping_arms_negates_and_degenerate_cases() -> None:
    t, c = np.array([5.0, 7.0, 9.0]), np.array([1.0, 2.0])
    assert weighted_smd(c, t) == pytest.approx(-weighted_smd(t, c))
    assert weighted_smd(np.array([1.0, 1.0]), np.array([1.0])) == 0.0
    assert weighted_smd(np.array([2.0, 2.0]), np.array([1.0])) == math.inf


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(InputError, match="null"):
        weighted_smd(pl.Series([1.0, None]), pl.Series([1.0]))
    with pytest.raises(InputError, match="no values"):
        weighted_smd(np.array([]), np.array([1.0]))
    with pytest.raises(InputError, match="one per value"):
        weighted_smd(np.array([1.0, 2.0]), np.array([1.0]), treated_weights=np.array([1.0]))
    with pytest.raises(InputError, match=">= 0"):
        weighted_smd(np.array([1.0]), np.array([1.0]), control_weights=np.array([-1.0]))
    with pytest.raises(InputError, match="denominator_sd"):
        weighted_smd(np.array([1.0]), np.array([1.0]), denominator_sd=-1.0)


def test_balance_table_by_hand() -> None:
    from costing.balance import balance
    from tests.unit.test_did import HAND, frame

    cohort = pl.DataFrame({"patient_id": ["A", "B", "C", "D"], "age": [70, 90, 60, 80],
                           "sex": ["F", "M", "F", "F"], "weight": [1.0, 1.0, 1.0, 3.0]})
    out = balance(frame(HAND).drop("weight"), cohort=cohort, covariates=["age", "sex"],
                  weight="weight")
    got = {r["variable"]: r for r in out.iter_rows(named=True)}
    # age: treated A, B (70, 90) mean 80, var 200; control C, D (60, 80) weights 1, 3:
    # weighted mean (60 + 240) / 4 = 75, unweighted var 200; smd (80 - 75) / sqrt(200)
    assert (got["age"]["treated_mean"], got["age"]["control_mean"]) == (80, 75)
    assert got["age"]["smd"] == pytest.approx(5 / math.sqrt(200))
    assert got["age"]["imbalanced"]  # 0.354 > 0.1
    # sex=M share: treated 1/2, control 0; var 0.5 and 0: smd 0.5 / sqrt(0.25) = 1
    assert got["sex=M"]["smd"] == pytest.approx(1.0)
    assert got["sex=F"]["smd"] == pytest.approx(-1.0)
    # pre-period cost, elective: treated (100, 300) mean 200, var 20000; control (200, 0)
    # weighted (200 + 0) / 4 = 50, var 20000: smd 150 / sqrt(20000)
    assert got["cost elective"]["smd"] == pytest.approx(150 / math.sqrt(20000))
    assert got["cost elective"]["category"] == "elective"
    # pre-period activity (one record per non-zero cost), ae: treated (0, 1) mean 0.5, var 0.5;
    # control (0, 1) weighted 0.75, var 0.5: smd -0.25 / sqrt(0.5)
    assert got["activity ae"]["smd"] == pytest.approx(-0.25 / math.sqrt(0.5))
    assert set(out["kind"]) == {"covariate", "activity", "cost"}
