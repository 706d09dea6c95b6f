"""Importers: official publication formats -> canonical table editions.

One module per publication format; each exposes ``read(source)`` (canonical frames) and
``import_edition(source, *, edition, into, hrg_version=None, overwrite=False)``. This
package picks the module from the table kind and the source's form.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from costing.errors import ImportFormatError

__all__ = ["KIND_ALIASES", "importer_for", "import_edition"]

KIND_ALIASES = {
    "tariff": "tariff",
    "reference_cost": "reference_cost",
    "reference-cost": "reference_cost",
    "reference-costs": "reference_cost",
    "reference_costs": "reference_cost",
    "trimpoints": "trimpoints",
    "mff": "mff",
    "index": "index",
    "indices": "index",
    "parameters": "parameters",
}

# (kind, source form) -> importer module; form is the file extension or "dir".
_MODULES = {
    ("tariff", ".xlsx"): "tariff_workbook",
    ("tariff", ".xls"): "tariff_workbook",
    ("tariff", ".xlsm"): "tariff_workbook",
    ("tariff", ".csv"): "tariff_csv",
    ("tariff", "dir"): "tariff_csv",
    ("reference_cost", ".xlsx"): "reference_costs",
    ("reference_cost", ".xls"): "reference_costs",
    ("reference_cost", ".csv"): "ncc",  # or nsrc_csv: see _csv_layout
    ("reference_cost", ".rda"): "ncc",
    ("reference_cost", ".rds"): "stacked_schedules",
    ("trimpoints", ".csv"): "trimpoints",
    ("mff", ".csv"): "mff",
    ("mff", ".xlsx"): "mff_workbook",
    ("index", ".csv"): "indices",
    ("parameters", ".csv"): "parameters",
}


def _is_admitted_care_csv(source: Path) -> bool:
    """Whether a reference-cost CSV has the wide admitted-care header (EI, NEI_L, ...)."""
    with open(source, encoding="utf-8-sig", errors="replace") as fh:
        header = [c.strip().casefold() for c in fh.readline().split(",")]
    return "ei" in header and "nei_l" in header


def importer_for(kind: str, source: Path) -> Any:
    """The importer module for a kind and a source file or folder."""
    canonical = KIND_ALIASES.get(kind)
    if canonical is None:
        raise ImportFormatError(
            f"unknown table kind {kind!r}; expected one of {', '.join(sorted(set(KIND_ALIASES.values())))}"
        )
    form = "dir" if source.is_dir() else source.suffix.lower()
    name = _MODULES.get((canonical, form))
    if name == "ncc" and form == ".csv" and _is_admitted_care_csv(source):
        name = "nsrc_csv"
    if name is None:
        forms = sorted(f for k, f in _MODULES if k == canonical)
        raise ImportFormatError(
            f"{source}: cannot import a {canonical} table from {form or 'a file without extension'}; "
            f"supported: {', '.join(forms)}"
        )
    return importlib.import_module(f"costing.importers.{name}")


def import_edition(
    kind: str,
    source: str | Path,
    *,
    edition: str,
    into: str | Path,
    hrg_version: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Import an official file (or canonical CSV) as a new edition under ``into``."""
    src = Path(source)
    if not src.exists():
        raise ImportFormatError(f"{src}: no such file or folder")
    module = importer_for(kind, src)
    kwargs: dict[str, Any] = {"edition": edition, "into": Path(into), "overwrite": overwrite}
    if hrg_version is not None:
        kwargs["hrg_version"] = hrg_version
    return Path(module.import_edition(src, **kwargs))
