"""Run manifest: content-derived, identical across runs except created_at."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import polars as pl
import pytest
from pydantic import BaseModel

import costing
from costing.errors import InputError
from costing.manifest import config_sha256, run_manifest, write_run_manifest
from costing.tables import Source, TableSet, load_tables, write_edition


@pytest.fixture()
def tables(tmp_path: Path) -> TableSet:
    mff = pl.DataFrame(
        {"provider_code": ["RXX"], "provider_name": ["Test trust"], "mff_factor": [1.05]}
    )
    write_edition(
        tmp_path / "tables",
        kind="mff",
        edition="2017-18",
        frames={"mff": mff},
        sources=[Source(title="test", file_name="mff.xlsx", sha256="0" * 64)],
        illustrative=True,
    )
    return load_tables(tmp_path / "tables")


@pytest.fixture()
def inputs(tmp_path: Path) -> list[Path]:
    a = tmp_path / "activity.csv"
    a.write_bytes(b"record_id,patient_id\n1,a\n")
    c = tmp_path / "cohort.csv"
    c.write_bytes(b"patient_id,index_date\na,2008-08-31\n")
    return [a, c]


PRICED = pl.DataFrame({"status": pl.Series([1, 1, 52], dtype=pl.Int16), "cost": [10.0, 2.5, None]})
CONFIG = {"perspective": "purchaser", "windows": [-1, 0], "price_year": "2017-18", "months": 6}


def make(tables: TableSet, inputs: list[Path]) -> dict:  # type: ignore[type-arg]
    return run_manifest(
        config=CONFIG,
        tables=tables,
        inputs=inputs,
        outputs={"windows": pl.DataFrame({"cost": [1.0, 2.0]}), "audit_rows": 3},
        counts_by_status=PRICED,
        rows_in=3,
    )


def test_two_runs_identical_but_for_created_at(tables: TableSet, inputs: list[Path]) -> None:
    first, second = make(tables, inputs), make(tables, inputs)
    assert first.pop("created_at") and second.pop("created_at")
    assert first == second


def test_contents(tables: TableSet, inputs: list[Path]) -> None:
    m = make(tables, inputs)
    assert m["engine"]["version"] == costing.__version__
    assert m["config"] == CONFIG
    canonical = json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert m["config_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    assert m["inputs"][0] == {
        "name": "activity.csv",
        "bytes": 25,
        "sha256": hashlib.sha256(b"record_id,patient_id\n1,a\n").hexdigest(),
    }
    assert [t["kind"] for t in m["tables"]] == ["mff"]
    assert m["tables"][0]["edition"] == "2017-18"
    mff_csv = next(iter(tables.get("mff", "2017-18").manifest.resources))
    assert m["tables"][0]["resources"] == {"mff.csv": mff_csv.sha256}
    assert m["outputs"] == {
        "audit_rows": {"rows": 3},
        "windows": {"rows": 2, "columns": ["cost"], "cost_total": 3.0},
    }
    # 2 records priced by tariff (£12.50), 1 not found (no cost)
    assert m["counts_by_status"] == [
        {"status": 1, "status_name": "priced_tariff", "n_records": 2, "cost": 12.5},
        {"status": 52, "status_name": "hrg_not_found", "n_records": 1, "cost": 0.0},
    ]
    assert m["rows_in"] == {"total": 3}
    assert dt.datetime.fromisoformat(m["created_at"]).tzinfo is not None


def test_config_change_changes_hash(tables: TableSet, inputs: list[Path]) -> None:
    other = {**CONFIG, "months": 3}
    assert config_sha256(other) != config_sha256(CONFIG)
    # key order does not matter
    assert config_sha256(dict(reversed(list(CONFIG.items())))) == config_sha256(CONFIG)


def test_pydantic_config_is_resolved() -> None:
    class Run(BaseModel):
        price_year: str = "2017-18"
        start: dt.date = dt.date(2008, 4, 1)

    m = run_manifest(config=Run(), tables=None)
    assert m["config"] == {"price_year": "2017-18", "start": "2008-04-01"}
    assert m["tables"] == []


def test_missing_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="nope.csv"):
        run_manifest(config={}, tables=None, inputs=[tmp_path / "nope.csv"])


def test_write_run_manifest(tables: TableSet, inputs: list[Path], tmp_path: Path) -> None:
    m = make(tables, inputs)
    path = write_run_manifest(m, tmp_path / "out" / "run.json")
    assert json.loads(path.read_text(encoding="utf-8")) == m
    assert [p.name for p in path.parent.iterdir()] == ["run.json"]  # no temporary left
