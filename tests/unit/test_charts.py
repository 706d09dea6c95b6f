"""Charts: a PNG is written, non-empty, one panel per category (plus total)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from costing.charts import event_study_chart, window_means_chart
from costing.errors import InputError

T, C = "intervention", "control"
CATS = ("elective", "non_elective", "outpatient", "ae")


def _windows(n: int = 12) -> pl.DataFrame:
    rows = [
        {"patient_id": f"p{i}", "window": w, "category": c,
         "cost": float((i * 37 + w * 11 + k * 5) % 90) * 10, "group": T if i % 3 == 0 else C,
         "matched_set": f"m{i // 3}"}
        for i in range(n) for w in (-2, -1, 0) for k, c in enumerate(CATS)
    ]
    return pl.DataFrame(rows).with_columns(pl.col("window").cast(pl.Int32))


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_event_study_chart_panels_and_file(tmp_path: Path) -> None:
    out = tmp_path / "charts" / "event.png"
    fig = event_study_chart(_windows(), n_boot=50, path=out)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # one panel per category, then the total
    assert titles == ["Elective admissions", "Emergency (non-elective) admissions",
                      "Outpatient attendances", "A&E attendances", "Total secondary care"]
    data = out.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    assert list(out.parent.iterdir()) == [out]  # no temporary file left behind
    # two arms drawn in each panel, one point per window
    first = fig.axes[0]
    assert [len(line.get_xdata()) for line in first.get_lines() if line.get_marker() != "None"
            ] == [3, 3]


def test_event_study_chart_pod_panels() -> None:
    df = _windows().with_columns(
        pl.col("category").replace({"elective": "EL", "non_elective": "NEL",
                                    "outpatient": "OP_FIRST", "ae": "AE_T12"})
    )
    fig = event_study_chart(df, by="pod", n_boot=20)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["AE_T12", "EL", "NEL", "OP_FIRST", "Total secondary care"]


def test_window_means_chart(tmp_path: Path) -> None:
    out = tmp_path / "means.png"
    fig = window_means_chart(_windows(), path=out)
    assert out.read_bytes().startswith(PNG_MAGIC)
    ax = fig.axes[0]
    # 3 windows x 2 groups x 4 categories stacked bars
    assert len(ax.patches) == 3 * 2 * 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "Elective admissions", "Emergency (non-elective) admissions", "Outpatient attendances",
        "A&E attendances"]
    # without a group column every patient is in one bar per window
    fig2 = window_means_chart(_windows().drop("group"))
    assert len(fig2.axes[0].patches) == 3 * 4


def test_chart_path_must_be_png(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="PNG"):
        window_means_chart(_windows(), path=tmp_path / "means.pdf")
