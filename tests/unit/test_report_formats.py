"""report.xlsx number formats fit each figure; window_means.png says it is unweighted;
``costing.run`` and ``costing.run.run`` are the same documented call."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import polars as pl
import pytest

import costing
from costing.errors import ConfigError
from costing.report import coverage_table, number_formats, write_report
from tests.fixtures.tables import apc, frame, write_reference_costs
from tests.unit.test_did import HAND
from tests.unit.test_did import frame as window_frame


def test_number_formats_by_what_a_column_holds() -> None:
    df = pl.DataFrame({"p_value": [0.0004], "share_records": [0.25], "cost": [1.5], "n": [3]})
    assert number_formats(df) == {"p_value": "0.000", "share_records": "0.0%"}


def test_report_p_values_and_shares_are_readable(tmp_path: Path) -> None:
    write_reference_costs(tmp_path / "t", "2017-18", [("NEL", None, "DZ11V", 1000.0)])
    priced = costing.price(frame(apc("a", los=3), apc("b", los=3, hrg="ZZ99Z")),
                           costing.load_tables(tmp_path / "t"),
                           costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18"))
    did_table = pl.DataFrame({"category": ["total"], "did": [-123.456], "p_value": [0.0004]})
    write_report(tmp_path, priced=priced, coverage=coverage_table(priced, None, None, 6, "admission"),
                 window_costs=None, did_table=did_table, manifest={"created": dt.date(2026, 1, 1)})
    wb = openpyxl.load_workbook(tmp_path / "report.xlsx")

    def cell_format(sheet: str, column: str) -> str:
        ws = wb[sheet]
        header = [c.value for c in ws[1]]
        return str(ws.cell(row=2, column=header.index(column) + 1).number_format)

    assert cell_format("difference_in_differences", "p_value") == "0.000"  # 0.0004 shows as 0.000
    assert cell_format("difference_in_differences", "did").startswith("#,##0.00")  # money
    assert cell_format("coverage", "share_records") == "0.0%"


def test_window_means_chart_says_it_is_unweighted() -> None:
    fig = costing.window_means_chart(window_frame(HAND))
    ax = fig.axes[0]
    assert "unweighted" in ax.get_ylabel() and "(unweighted)" in ax.get_title()


def test_costing_run_and_costing_run_run_are_the_same_call() -> None:
    empty = costing.RunConfig.from_mapping({"inputs": {}})
    for call in (costing.run, costing.run.run):
        with pytest.raises(ConfigError, match="names no inputs"):
            call(empty)
