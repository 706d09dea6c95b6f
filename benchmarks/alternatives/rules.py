"""Inputs shared by every implementation: code sets, configuration values and table files.

The code sets and configuration values are read from the engine (``costing.schema``,
``costing.activity``, ``CostingConfig``, the policy parameters it resolves) once, by the
parent process, and written as JSON so the DuckDB and pandas children never import the engine
(which would add its import cost to their peak memory) and never restate a code in a second
place.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: Output category order of ``costing.cost_by_window(by="category")``.
FILES = {
    "activity": "activity.parquet",
    "cohort": "cohort.parquet",
    "reference_costs": "reference_costs.parquet",
    "trimpoints": "trimpoints.parquet",
    "rules": "rules.json",
}


@dataclass(frozen=True)
class Rules:
    """Everything an alternative needs to mirror the engine's provider pipeline."""

    edition: str
    edition_hrg_version: str
    default_hrg_version: str
    nes_los_threshold: int
    long_stay: bool
    op_reference_department: str
    elective_methods: tuple[str, ...]
    admission_methods: tuple[str, ...]
    op_not_attended: tuple[str, ...]
    op_first: tuple[str, ...]
    ae_types: tuple[str, ...]
    not_priced_from: int
    status: dict[str, int]
    status_names: dict[int, str]
    categories: tuple[str, ...]
    windows: tuple[int, ...]
    months: int

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1))

    @classmethod
    def load(cls, path: Path) -> Rules:
        d = json.loads(path.read_text())
        d["status_names"] = {int(k): v for k, v in d["status_names"].items()}
        for k in ("elective_methods", "admission_methods", "op_not_attended", "op_first",
                  "ae_types", "categories", "windows"):
            d[k] = tuple(d[k])
        return cls(**d)


def engine_rules(edition: str = "2017-18", windows: tuple[int, ...] = (-1, 0), months: int = 6) -> Rules:
    """The engine's own code sets and provider defaults (imports the engine)."""
    import costing
    from costing.activity import AE_TYPES, OP_FIRST, OP_NOT_ATTENDED
    from costing.pricing.parameters import resolve
    from costing.schema import ADMISSION_METHODS, COST_CATEGORIES, ELECTIVE_METHODS
    from costing.status import NOT_PRICED_FROM, Status

    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition=edition)
    tables = costing.load_tables()
    # the policy thresholds of the edition, as the engine resolves them (parameter table)
    params = {p.name: p.value for p in resolve(tables, cfg, tables.get("reference_cost", edition))}
    return Rules(
        edition=edition,
        edition_hrg_version=tables.get("reference_cost", edition).hrg_version,
        default_hrg_version=cfg.default_hrg_version,
        nes_los_threshold=params["nes_los_threshold"],
        long_stay=cfg.long_stay,
        op_reference_department=cfg.op_reference_department,
        elective_methods=tuple(ELECTIVE_METHODS),
        admission_methods=tuple(ADMISSION_METHODS),
        op_not_attended=tuple(OP_NOT_ATTENDED),
        op_first=tuple(OP_FIRST),
        ae_types=tuple(AE_TYPES),
        not_priced_from=NOT_PRICED_FROM,
        status={s.name: int(s) for s in Status},
        status_names={int(s): s.label for s in Status},
        categories=tuple(COST_CATEGORIES),
        windows=windows,
        months=months,
    )


def write_tables(directory: Path, edition: str = "2017-18") -> None:
    """The shipped reference costs and trim points of ``edition`` as plain Parquet files."""
    import costing

    tables = costing.load_tables()
    rc = tables.table("reference_cost", edition, "reference_costs")
    held = tables.editions("trimpoints")
    tp_edition = edition if edition in held else held[-1]  # the engine's default rule
    tp = tables.table("trimpoints", tp_edition, "trimpoints")
    rc.write_parquet(directory / FILES["reference_costs"])
    tp.write_parquet(directory / FILES["trimpoints"])


def sql_list(values: tuple[str, ...]) -> str:
    """A SQL IN-list of string literals (codes only: digits and letters)."""
    if not all(v.isalnum() for v in values):
        raise ValueError(f"unexpected characters in codes {values}")
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


# --------------------------------------------------------------------------------------
# totals: what every implementation reports, and how two reports are compared
# --------------------------------------------------------------------------------------

Totals = dict[str, Any]


def compare(reference: Totals, other: Totals, rel: float = 1e-9) -> list[str]:
    """Differences between two totals reports (empty when they agree)."""
    diffs: list[str] = []

    def walk(a: Any, b: Any, path: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b), key=str):
                if k not in a or k not in b:
                    diffs.append(f"{path}.{k}: {a.get(k)!r} vs {b.get(k)!r}")
                else:
                    walk(a[k], b[k], f"{path}.{k}")
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{path}[{i}]")
        elif isinstance(a, float) or isinstance(b, float):
            if not math.isclose(float(a), float(b), rel_tol=rel, abs_tol=1e-6):
                diffs.append(f"{path}: {a!r} vs {b!r}")
        elif a != b:
            diffs.append(f"{path}: {a!r} vs {b!r}")

    walk(reference, other, "totals")
    return diffs
