"""Re-derive every shipped table in tariffs/ from the original files in ../shared/data.

Maintainers only (``make tables``). Each importer checks the source file's sha256 against
its recorded provenance and writes canonical CSVs plus a manifest; the derived tables are
committed, the originals are not. Usage::

    python -m costing.importers.build_shipped [--shared-data ../shared/data] [--into tariffs]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from costing.importers import parameters, reference_costs, shipped_tariffs, small_tables

REPO = Path(__file__).resolve().parents[2]


def build_all(shared_data: Path, into: Path) -> list[Path]:
    """Import every shipped edition; returns the edition folders written."""
    return [
        *reference_costs.build_shipped(shared_data, into),
        *small_tables.build_shipped(shared_data, into),
        *shipped_tariffs.build_shipped(shared_data, into),
        *parameters.build_shipped(shared_data, into),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--into", type=Path, default=REPO / "tariffs")
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for folder in build_all(a.shared_data, a.into):
        logging.getLogger("costing").info("wrote %s", folder)


if __name__ == "__main__":
    main()
