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


def _markers(ax, marker: str) -> list:  # type: ignore[no-untyped-def]
    return [line for line in ax.get_lines() if line.get_marker() == marker]


def test_event_study_chart_subgroup_panels() -> None:
    # p0..p5 at site A, p6..p11 at site B; the treated are p0, p3, p6, p9
    cohort = pl.DataFrame({"patient_id": [f"p{i}" for i in range(12)],
                           "site": ["A"] * 6 + ["B"] * 6})
    fig = event_study_chart(_windows(), cohort=cohort, subgroups="site", n_boot=20)
    # a row of panels (4 categories and the total) for all patients, then per site
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3 * 5
    assert titles[0] == "All patients: Elective admissions"
    assert titles[5:10] == [f"site = A: {t}" for t in (
        "Elective admissions", "Emergency (non-elective) admissions", "Outpatient attendances",
        "A&E attendances", "Total secondary care")]
    assert titles[14] == "site = B: Total secondary care"
    # each row's legend counts its own patients: site A has 2 treated and 4 controls
    assert [t.get_text() for t in fig.axes[5].get_legend().get_texts()] == [
        "control (n=4)", "intervention (n=2)"]
    # site A's treated elective mean in window -2 is its own: cost = ((37i - 22) mod 90) x 10,
    # p0 -> 680, p3 -> 890: mean 785 (all patients: p0, p3, p6, p9 -> 680, 890, 200, 410)
    assert _markers(fig.axes[5], "o")[0].get_ydata()[0] == pytest.approx(785.0)
    assert _markers(fig.axes[0], "o")[0].get_ydata()[0] == pytest.approx(545.0)
    with pytest.raises(InputError, match="subgroup column 'region'"):
        event_study_chart(_windows(), cohort=cohort, subgroups="region", n_boot=20)


def test_did_chart_draws_the_pretrend_rows() -> None:
    from costing.charts import did_chart
    from costing.did import did, did_pretrend

    wc = _windows()
    main = did(wc, measure="cost", n_boot=20)
    trend = did_pretrend(wc, windows=(-2, -1), measure="cost", n_boot=20)
    fig = did_chart(pl.concat([main, trend], how="diagonal_relaxed"))
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    # the five DiD rows at the top, the five pre-trend rows below them (y counts upwards)
    assert labels[:5] == [f"pre-trend -2→-1, all: {c}" for c in (
        "Total secondary care", "A&E attendances", "Outpatient attendances",
        "Emergency (non-elective) admissions", "Elective admissions")]
    assert not any("pre-trend" in t for t in labels[5:]) and len(labels) == 10
    diamonds = _markers(ax, "D")
    assert [d.get_xdata()[0] for d in diamonds] == pytest.approx(trend["did"].reverse().to_list())
    assert [d.get_ydata()[0] for d in diamonds] == [0, 1, 2, 3, 4]
    assert any("pre-trend" in t.get_text() for t in fig.legends[0].get_texts())
    # without pre-trend rows: no diamonds, no pre-trend labels
    plain = did_chart(main).axes[0]
    assert not _markers(plain, "D") and len(plain.get_yticklabels()) == 5
