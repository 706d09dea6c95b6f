"""costing: notional costs for English hospital activity, per patient per six-month window.

Public API (pinned by tests/unit/test_public_api.py)::

    import costing
    tables = costing.load_tables()            # shipped, verified, immutable
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from costing.balance import balance
from costing.charts import event_study_chart, window_means_chart
from costing.cohort import validate_cohort
from costing.config import CostingConfig
from costing.coverage import coverage
from costing.did import arm_window_means, did, did_pretrend
from costing.errors import (
    ConfigError,
    ConservationError,
    CostingError,
    EditionNotFoundError,
    ImportFormatError,
    InputError,
    ManifestError,
    MissingColumnsError,
    TableError,
    TableIntegrityError,
    TableKeyError,
    TableMissingError,
    TableSchemaError,
    ValidationError,
)
from costing.io import read_activity, read_cohort, read_table, write_frame
from costing.manifest import run_manifest, write_run_manifest
from costing.match import MatchResult, match, prior_use
from costing.pricing import EngineOptions, price, price_lazy
from costing.run import RunConfig, RunResult

# ``costing.run`` is the module costing/run.py, callable as its run(): costing.run(path) and
# costing.run.run(path) both run the pipeline (a function bound here would hide the module)
from costing import run  # noqa: E402  isort: skip
from costing.status import CostSource, Status
from costing.tables import Edition, TableSet, load_tables
from costing.unpriced import assess_unpriced, unpriced_by_window
from costing.unit_costs import cost_of_change
from costing.windows import audit, audit_summary, cost_by_window

try:
    __version__ = version("costing")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = [
    "__version__",
    "load_tables",
    "price",
    "price_lazy",
    "EngineOptions",
    "CostingConfig",
    "read_activity",
    "read_cohort",
    "read_table",
    "write_frame",
    "cost_by_window",
    "audit",
    "audit_summary",
    "validate_cohort",
    "coverage",
    "assess_unpriced",
    "unpriced_by_window",
    "run_manifest",
    "write_run_manifest",
    "did",
    "did_pretrend",
    "arm_window_means",
    "balance",
    "cost_of_change",
    "event_study_chart",
    "window_means_chart",
    "match",
    "MatchResult",
    "prior_use",
    "run",
    "RunConfig",
    "RunResult",
    "TableSet",
    "Edition",
    "Status",
    "CostSource",
    "CostingError",
    "TableError",
    "TableIntegrityError",
    "TableMissingError",
    "TableSchemaError",
    "TableKeyError",
    "ManifestError",
    "EditionNotFoundError",
    "ImportFormatError",
    "InputError",
    "MissingColumnsError",
    "ValidationError",
    "ConfigError",
    "ConservationError",
]
