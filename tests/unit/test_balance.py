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
