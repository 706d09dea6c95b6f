"""Bad inputs not covered elsewhere: what the user gets, through the API and the CLI.

The full catalogue (with the tests in other files) is docs/bad-inputs.md. Each CLI
case asserts the exit code (1 error, 2 usage), a message naming the file/row/column, and
that no traceback reaches the user.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner, Result

import costing
from costing import Status
from costing.cli import main
from costing.errors import TableKeyError
from costing.importers.tariff_workbook import write_tariff_workbook
from costing.io import read_activity, read_table
from costing.schema import TABLE_SCHEMAS
from costing.tables import sha256_file, shipped_tables_path
from tests.fixtures.tables import apc, apc_rows, frame, write_reference_costs

HES_APC = """PSEUDO_HESID,EPIKEY,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,PROCODE3,STARTAGE
p1,e1,2017-06-01,2017-06-13,21,1,DZ11V,RXX,50
p2,e2,2017-06-05,2017-06-05,11,2,HN12F,RXX,70
"""
PROVIDER = ["--perspective", "provider", "--reference-costs", "2017-18"]


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _clean_failure(res: Result, code: int = 1) -> None:
    """Exit code as expected, a 'costing: error' style message, no traceback."""
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)


@pytest.fixture
def apc_csv(tmp_path: Path) -> Path:
    path = tmp_path / "apc.csv"
    path.write_text(HES_APC)
    return path


# --------------------------------------------------------------------------------------
# unreadable extracts through the CLI (the API side is in test_io.py)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("empty.csv", b"", "empty"),
        ("semicolons.csv", HES_APC.replace(",", ";").encode(), "semicolon-separated"),
        ("latin1.csv", HES_APC.replace("RXX", "R\xc9X").encode("latin-1"), "latin"),
        ("nomethod.csv", HES_APC.replace("ADMIMETH", "ADMI_METH").encode(), "ADMIMETH"),
    ],
    ids=["empty", "semicolons", "latin1", "missing-column"],
)
def test_cli_price_refuses_an_unreadable_extract_naming_it(
        tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "priced.csv"
    res = _run("price", str(path), "--setting", "apc", *PROVIDER, "-o", str(out))
    _clean_failure(res)
    assert name in res.output and needle.lower() in res.output.lower()
    assert not out.exists()


def test_cli_price_unknown_extension_is_a_usage_or_input_error(tmp_path: Path) -> None:
    path = tmp_path / "apc.json"
    path.write_text("{}")
    res = _run("price", str(path), "--setting", "apc", *PROVIDER, "-o", str(tmp_path / "p.csv"))
    assert res.exit_code in (1, 2) and "Traceback" not in res.output
    assert "apc.json" in res.output


# --------------------------------------------------------------------------------------
# editions and tables
# --------------------------------------------------------------------------------------


def test_cli_unknown_tariff_edition_lists_what_exists(apc_csv: Path, tmp_path: Path) -> None:
    res = _run("price", str(apc_csv), "--setting", "apc", "--tariff", "2099-00",
               "-o", str(tmp_path / "p.csv"))
    _clean_failure(res)
    assert "2099-00" in res.output


def test_cli_malformed_edition_is_a_config_error(apc_csv: Path, tmp_path: Path) -> None:
    res = _run("price", str(apc_csv), "--setting", "apc", "--reference-costs", "2017",
               "-o", str(tmp_path / "p.csv"))
    _clean_failure(res)
    assert "2017" in res.output and "YYYY-YY" in res.output


def _copy_edition(tmp_path: Path, kind: str, edition: str) -> Path:
    dest = tmp_path / "tables" / kind / edition
    shutil.copytree(shipped_tables_path() / kind / edition, dest)
    return dest


def test_cli_price_with_a_tampered_table_is_refused(apc_csv: Path, tmp_path: Path) -> None:
    folder = _copy_edition(tmp_path, "reference_cost", "2017-18")
    data = folder / "reference_costs.csv"
    text = data.read_text()
    data.write_text(text.replace("399.45814239656085", "499.45814239656085", 1))  # VB01Z T01A
    out = tmp_path / "p.csv"
    res = _run("price", str(apc_csv), "--setting", "apc", "--tables", str(tmp_path / "tables"),
               *PROVIDER, "-o", str(out))
    _clean_failure(res)
    assert str(data) in res.output and "sha256 mismatch" in res.output
    assert not out.exists()


def _rewrite_with_manifest(folder: Path, resource: str, text: str, rows: int) -> Path:
    """Write a resource and update its manifest hash and row count (a consistent edit)."""
    data = folder / f"{resource}.csv"
    data.write_text(text)
    manifest = folder / "manifest.json"
    m = json.loads(manifest.read_text())
    for r in m["resources"]:
        if r["name"] == resource:
            r["sha256"] = sha256_file(data)
            r["rows"] = rows
    manifest.write_text(json.dumps(m, indent=2))
    return data


def test_table_with_duplicate_keys_is_refused_by_load_and_verify(tmp_path: Path) -> None:
    folder = _copy_edition(tmp_path, "mff", "2026-27")
    lines = (folder / "mff.csv").read_text().splitlines()
    # line 2 (first data row) repeated as the last line: same provider_code twice
    data = _rewrite_with_manifest(folder, "mff", "\n".join([*lines, lines[1]]) + "\n",
                                  rows=len(lines))
    with pytest.raises(TableKeyError) as exc:
        costing.load_tables(tmp_path / "tables")
    msg = str(exc.value)
    assert str(data) in msg and "duplicate primary key" in msg
    assert "'line': 2" in msg and f"'line': {len(lines) + 1}" in msg
    res = _run("tables", "verify", "--path", str(tmp_path / "tables"))
    _clean_failure(res)
    assert "FAIL" in res.output and "duplicate primary key" in res.output


# --------------------------------------------------------------------------------------
# importing an official tariff workbook through the CLI
# --------------------------------------------------------------------------------------


def _workbook(tmp_path: Path) -> Path:
    schema = TABLE_SCHEMAS["tariff"]
    apc_df = apc_rows({"hrg_code": "DZ11V", "hrg_name": "Pneumonia", "nel_price": 1000.0,
                           "nel_trim_days": 5, "excess_bed_day_price": 200.0, "sse_applicable": False})
    op = pl.DataFrame({"treatment_function_code": ["100"],
                       "treatment_function_description": ["General Surgery"],
                       "first_single_price": [160.0], "first_multi_price": [200.0],
                       "followup_single_price": [80.0], "followup_multi_price": [110.0]},
                      schema=schema["op_attendance"])
    ae = pl.DataFrame({"hrg_code": ["VB01Z"], "hrg_name": ["x"], "type_1_2_price": [250.0],
                       "type_3_price": [70.0]}, schema=schema["ae"])
    return write_tariff_workbook(tmp_path / "tariff.xlsx", apc_df, op, ae, title="fixture")


def _set_cell(path: Path, sheet: str, column: str, value: object) -> int:
    """Set ``column`` of the row whose first cell is DZ11V / 100 / VB01Z; return the row."""
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    for row in ws.iter_rows():
        if row[0].value in ("DZ11V", "100", "VB01Z"):
            ws[f"{column}{row[0].row}"] = value
            wb.save(path)
            return row[0].row
    raise AssertionError("fixture row not found")


@pytest.mark.parametrize(
    ("value", "reason"),
    [(-5, "negative price"), ("12x", "not a number"), ("twelve", "not a number")],
    ids=["negative", "12x", "twelve"],
)
def test_cli_tariff_import_refuses_bad_price_cells(tmp_path: Path, value: object, reason: str) -> None:
    wb = _workbook(tmp_path)
    row = _set_cell(wb, "2 OP attendances", "C", value)
    into = tmp_path / "tables"
    res = _run("tables", "import", "tariff", str(wb), "--edition", "2017-18",
               "--hrg-version", "HRG4", "--into", str(into))
    _clean_failure(res)
    assert "tariff.xlsx" in res.output and f"row {row}, column C" in res.output
    assert reason in res.output
    assert not (into / "tariff" / "2017-18" / "manifest.json").exists()


def test_cli_tariff_import_of_the_fixture_workbook_works(tmp_path: Path) -> None:
    # the control for the test above: the unedited workbook imports
    wb = _workbook(tmp_path)
    res = _run("tables", "import", "tariff", str(wb), "--edition", "2017-18",
               "--hrg-version", "HRG4", "--into", str(tmp_path / "tables"))
    assert res.exit_code == 0, res.output
    assert costing.load_tables(tmp_path / "tables").table("tariff", "2017-18", "apc")["nel_price"][0] == 1000.0


# --------------------------------------------------------------------------------------
# records: duplicates, unknown codes, formula-like text
# --------------------------------------------------------------------------------------


@pytest.fixture
def small_tables(tmp_path: Path) -> costing.TableSet:
    write_reference_costs(tmp_path, "2017-18", [("NEL", None, "DZ11V", 1000.0),
                                                ("AE", "T01NA", "VB01Z", 100.0)])
    return costing.load_tables(tmp_path)


RC = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18")


def test_duplicate_record_ids_are_both_kept_and_priced(small_tables: costing.TableSet) -> None:
    out = costing.price(frame(apc("same", los=3, patient="p1"), apc("same", los=3, patient="p2")),
                        small_tables, RC)
    assert out["record_id"].to_list() == ["same", "same"]
    assert out["source_row"].to_list() == [1, 2]  # the rows stay distinguishable
    assert out["cost"].to_list() == [1000.0, 1000.0]


def test_unknown_codes_are_invalid_records_naming_the_column(small_tables: costing.TableSet) -> None:
    base = {"patient_id": "p", "activity_date": dt.date(2017, 6, 1), "hrg_code": "VB01Z",
            "hrg_version": "HRG4"}
    out = costing.price(frame(
        {**base, "record_id": "ae05", "setting": "ae", "department_type": "05"},
        {**base, "record_id": "op8", "setting": "op", "attended": "8", "first_attendance": "1",
         "treatment_function_code": "100"},
        {**base, "record_id": "cls7", "setting": "apc", "discharge_date": dt.date(2017, 6, 2),
         "admission_method": "21", "patient_classification": "7"},
        {**base, "record_id": "what", "setting": "community"},
    ), small_tables, RC)
    assert out["status"].to_list() == [Status.INVALID_RECORD] * 4
    assert out["cost"].null_count() == 4
    reasons = out["invalid_reason"].to_list()
    assert "department_type: unknown A&E department type" in reasons[0]
    assert out["pod"][0] is None  # no point of delivery for an unknown department type
    assert "attended: unknown attendance status" in reasons[1]
    assert "patient_classification: unknown patient classification" in reasons[2]
    assert "setting: unknown or missing setting" in reasons[3]


def test_cli_formula_like_codes_are_kept_and_neutralised(tmp_path: Path) -> None:
    path = tmp_path / "apc.csv"
    path.write_text(HES_APC.replace("p1,e1", '"=HYPERLINK(""http://x"")",@e1').replace(
        ",RXX,70", ",+RXX,70"))
    out = tmp_path / "priced.csv"
    res = _run("price", str(path), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert res.exit_code == 0, res.output
    raw = out.read_text()
    assert "'=HYPERLINK" in raw and "'@e1" in raw and "'+RXX" in raw
    assert "\n=" not in raw and ",=" not in raw and ",@" not in raw  # nothing a sheet would run
    back = read_table(out)  # our reader restores the original text
    assert back["patient_id"][0] == '=HYPERLINK("http://x")'
    assert back["record_id"].to_list() == ["@e1", "e2"]


# --------------------------------------------------------------------------------------
# a very large file, streamed
# --------------------------------------------------------------------------------------

N_LARGE = 1_200_000


def test_very_large_csv_is_streamed_priced_lazily_and_sunk(tmp_path: Path) -> None:
    # 1.2M canonical records (three kinds repeated), written by polars, read lazily,
    # priced with price_lazy and sunk to Parquet without collecting the input
    path = tmp_path / "large.csv"
    n = N_LARGE
    idx = pl.int_range(0, n, eager=True)
    pl.DataFrame({
        "record_id": idx.cast(pl.String),
        "patient_id": (idx % 50_000).cast(pl.String),
        "setting": pl.Series(["apc"] * n),
        "activity_date": pl.Series(["2017-06-01"] * n),
        "discharge_date": pl.Series(["2017-06-04"] * n),
        "admission_method": pl.Series(["21"] * n),
        "patient_classification": pl.Series(["1"] * n),
        "hrg_code": pl.Series(["DZ11V", "ZZ99Z", "UZ01Z"] * (n // 3)),
        "hrg_version": pl.Series(["HRG4"] * n),
    }).write_csv(path)
    t0 = time.perf_counter()
    lf = read_activity(path, "apc", columns="canonical")
    assert isinstance(lf, pl.LazyFrame)
    write_reference_costs(tmp_path / "t", "2017-18", [("NEL", None, "DZ11V", 1000.0)])
    priced = costing.price_lazy(lf, costing.load_tables(tmp_path / "t"), RC)
    out = tmp_path / "priced.parquet"
    priced.sink_parquet(out)
    elapsed = time.perf_counter() - t0
    counts = pl.scan_parquet(out).group_by("status").agg(
        pl.len(), pl.col("cost").sum()).sort("status").collect()
    # a third each: priced 1000 (LOS 3), not found, ungroupable; no row lost
    assert counts.rows() == [
        (Status.PRICED_REFERENCE_COST, n // 3, 1000.0 * (n // 3)),
        (Status.HRG_UNGROUPABLE, n // 3, 0.0),
        (Status.HRG_NOT_FOUND, n // 3, 0.0),
    ]
    assert pl.scan_parquet(out).select(pl.len()).collect().item() == n
    assert elapsed < 120  # generous on a shared machine; typically a few seconds


# --------------------------------------------------------------------------------------
# interrupted write
# --------------------------------------------------------------------------------------


def test_cli_interrupted_write_keeps_the_previous_output(
        apc_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from costing import io

    out = tmp_path / "priced.csv"
    out.write_text("previous run\n")

    def half_then_fail(df: pl.DataFrame, p: Path) -> None:
        p.write_text(df.head(1).write_csv())  # half written ...
        raise KeyboardInterrupt  # ... then the user presses Ctrl-C

    monkeypatch.setitem(io._WRITERS, ".csv", half_then_fail)
    res = _run("price", str(apc_csv), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert res.exit_code != 0
    assert out.read_text() == "previous run\n"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["apc.csv", "priced.csv"]  # no temp file
    monkeypatch.undo()
    res = _run("price", str(apc_csv), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert res.exit_code == 0, res.output
    assert pl.read_csv(out)["record_id"].to_list() == ["e1", "e2"]  # the control: a whole write


def test_cli_disk_full_while_writing_is_a_clean_error(
        apc_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from costing import io

    out = tmp_path / "priced.csv"

    def disk_full(df: pl.DataFrame, p: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(p))

    monkeypatch.setitem(io._WRITERS, ".csv", disk_full)
    res = _run("price", str(apc_csv), "--setting", "apc", *PROVIDER, "-o", str(out))
    assert not out.exists()  # nothing half-written either way
    _clean_failure(res)
    assert "No space left on device" in res.output
