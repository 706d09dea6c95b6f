"""Golden regression for pricing: the synthetic extract's priced rows and status coverage.

A change in prices, rules or statuses shows as a diff against the committed CSVs in
``tests/golden/pricing/``. After a deliberate change, regenerate and review the diff:

    COSTING_REGENERATE_GOLDEN=1 pytest tests/golden/test_pricing_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import polars as pl
import pytest

import costing
from costing import Status
from tests.golden.build_golden_extract import (
    GOLDEN_DIR,
    SCENARIOS,
    build_extract,
    coverage,
    golden_tables,
    price_golden,
    to_csv_text,
)

REGENERATE = os.environ.get("COSTING_REGENERATE_GOLDEN") == "1"
_SHOWN_DIFF_LINES = 80


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    tables = golden_tables(tmp_path_factory.mktemp("golden_tables"))
    return price_golden(tables)


def _compare(name: str, actual: str) -> None:
    path = GOLDEN_DIR / name
    if REGENERATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual, encoding="utf-8", newline="\n")
        pytest.skip(f"COSTING_REGENERATE_GOLDEN=1: rewrote {path}; review it with git diff")
    if not path.is_file():
        pytest.fail(f"{path} is missing; create it with COSTING_REGENERATE_GOLDEN=1")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = list(difflib.unified_diff(
            expected.splitlines(), actual.splitlines(),
            fromfile=f"{name} (committed)", tofile=f"{name} (now)", lineterm="", n=0))
        shown = "\n".join(diff[:_SHOWN_DIFF_LINES])
        more = f"\n... {len(diff) - _SHOWN_DIFF_LINES} more diff lines" if len(diff) > _SHOWN_DIFF_LINES else ""
        pytest.fail(
            f"golden {name} changed ({len(diff)} diff lines). If the change is intended, "
            f"regenerate with COSTING_REGENERATE_GOLDEN=1 and commit the reviewed diff.\n"
            f"{shown}{more}", pytrace=False)


def test_priced_rows_match_the_golden_file(priced: pl.DataFrame) -> None:
    _compare("priced.csv", to_csv_text(priced))


def test_coverage_by_status_matches_the_golden_file(priced: pl.DataFrame) -> None:
    _compare("coverage.csv", to_csv_text(coverage(priced)))


def test_the_extract_reaches_every_status_code(priced: pl.DataFrame) -> None:
    # every code of costing.status.Status appears in at least one scenario
    assert set(priced["status"].to_list()) == {int(s) for s in Status}


def test_the_extract_covers_every_pod_and_setting(priced: pl.DataFrame) -> None:
    pods = set(priced["pod"].drop_nulls().to_list())
    assert pods >= {"DC", "EL", "NEL", "RP", "OP_FIRST", "OP_FOLLOWUP", "OP_PROC",
                    "AE_T12", "AE_T3", "AE_T4"}
    assert set(priced["setting"].to_list()) == {"apc", "op", "ae"}


def test_every_record_comes_out_in_every_scenario(priced: pl.DataFrame) -> None:
    extract = build_extract()
    n_apc_episodes_in_s1 = extract.filter(pl.col("spell_id") == "S1").height  # 2
    for name, cfg in SCENARIOS.items():
        rows = priced.filter(pl.col("scenario") == name)
        spells = cfg.resolved_apc_unit() == "spell"
        # spell-level scenarios merge the two episodes of S1 into one row
        expected = extract.height - (n_apc_episodes_in_s1 - 1 if spells else 0)
        assert rows.height == expected, name
        assert rows["n_episodes"].sum() == extract.height, name


def test_hand_checked_rows(priced: pl.DataFrame) -> None:
    def cost(scenario: str, case: str) -> float | None:
        row = priced.filter((pl.col("scenario") == scenario) & (pl.col("case") == case))
        assert row.height == 1, (scenario, case)
        return row["cost"][0]

    p = "purchaser_dated"
    # fixture DZ11V: NEL 1000, trim 5, 200/day: LOS 5 -> 1000; LOS 6 -> 1200; SSE 300
    assert cost(p, "nel_trim_boundary_los_eq_trim") == 1000.0
    assert cost(p, "nel_trim_boundary_los_trim_plus_1") == 1200.0
    assert cost(p, "short_stay_age_19_los_0") == 300.0
    assert cost(p, "short_stay_age_17_not_eligible") == 1000.0
    # spell S1: spell HRG DZ11V, LOS 6 -> 1000 + 1 x 200
    assert cost(p, "spell_episode_1_of_2") == 1200.0
    # real 2017/18: AA22C NEL 60 days = 11,346.30 (NEL + (60 - 46) x NEL_XS)
    assert cost(p, "hrg_not_in_tariff_rc_fallback_aa22c_60_days") == 11346.30
    # real 2017/18: A&E T01A VB02Z 411.57; CL 110 WF01B 146.16
    assert cost(p, "ae_hrg_not_in_tariff_admitted_rc") == 411.57
    assert cost(p, "op_tf_not_in_tariff_rc_cl") == 146.16
    # MFF 1.037386 for R0A on a tariff price, then NHSCII pay & prices 2017-18 -> 2022-23
    # (shipped index levels 103.769339664 and 121.50201110215582):
    # 1000 x 1.037386 x 121.50201110215582 / 103.769339664 = 1214.660... -> 1214.66
    assert cost("purchaser_mff_nhscii_2022_23", "nel_tariff_under_trim") == 1214.66
    # a tariff-priced record whose provider has no MFF factor is not priced (status 58)
    assert cost("purchaser_mff_nhscii_2022_23", "nel_no_mff_factor_provider") is None
    assert cost("purchaser_mff_nhscii_2022_23", "v35_code_2008_at_v35_tariff") is None


def test_golden_files_are_committed_text() -> None:
    for name in ("priced.csv", "coverage.csv"):
        path: Path = GOLDEN_DIR / name
        if REGENERATE:
            pytest.skip("regenerating")
        assert path.is_file(), path
        assert path.read_text(encoding="utf-8").splitlines()[0].startswith("scenario,")
    assert costing.__version__  # the package under test imports
