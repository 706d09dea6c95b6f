"""The public surface is small and deliberate: adding or removing a name is a reviewed change."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import costing
from costing.status import Status

PUBLIC = {
    "__version__",
    # tables
    "load_tables", "TableSet", "Edition",
    # reading and writing
    "read_activity", "read_cohort", "read_table", "write_frame",
    # pricing
    "price", "price_lazy", "EngineOptions", "CostingConfig", "Status", "CostSource",
    # windows, audit, coverage, manifest
    "validate_cohort", "cost_by_window", "audit", "audit_summary", "coverage",
    "run_manifest", "write_run_manifest", "assess_unpriced", "unpriced_by_window",
    # evaluation and charts
    "did", "did_pretrend", "arm_window_means", "event_study_chart", "window_means_chart",
    "balance", "cost_of_change",
    # matched controls
    "match", "MatchResult", "prior_use",
    # the whole pipeline
    "run", "RunConfig", "RunResult",
    # errors
    "CostingError", "TableError", "TableIntegrityError", "TableMissingError", "TableSchemaError",
    "TableKeyError", "ManifestError", "EditionNotFoundError", "ImportFormatError", "InputError",
    "MissingColumnsError", "ValidationError", "ConfigError", "ConservationError",
}


def test_public_names_are_pinned() -> None:
    assert set(costing.__all__) == PUBLIC
    assert len(costing.__all__) == len(set(costing.__all__))


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in PUBLIC - {"__version__"}:
        obj = getattr(costing, name)
        assert inspect.getdoc(obj), f"{name} has no docstring"


def test_errors_form_one_tree() -> None:
    for name in PUBLIC:
        obj = getattr(costing, name)
        if inspect.isclass(obj) and name.endswith("Error"):
            assert issubclass(obj, costing.CostingError)


def test_readme_lists_every_status_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| `(\w+)` \|", readme, flags=re.M))
    assert rows == {str(s.value): s.label for s in Status}


SPARK_PUBLIC = {
    "price", "cost_by_window", "price_and_window", "read_activity", "spark_schema", "session",
    "default_partitions", "ROWS_PER_PARTITION", "MIN_SPARK", "worker_errors",
}


def test_spark_names_are_pinned_and_pyspark_is_imported_lazily() -> None:
    import subprocess
    import sys

    import costing.spark

    assert set(costing.spark.__all__) == SPARK_PUBLIC
    for name in SPARK_PUBLIC - {"ROWS_PER_PARTITION", "MIN_SPARK"}:
        assert inspect.getdoc(getattr(costing.spark, name)), f"costing.spark.{name} has no docstring"
    # the core install does not need PySpark: importing costing (and costing.spark) loads none
    code = "import sys, costing, costing.spark, costing.spark_run; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
