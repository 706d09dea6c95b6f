"""The ``costing`` command: a thin click adapter over the Python API.

Each command group lives in its own module of this package and registers itself on
``main``. The CLI owns output, logging and exit codes: 0 ok, 1 error, 2 usage.
"""

from __future__ import annotations

import importlib

import click

from costing import __version__
from costing.cli._common import CostingGroup

__all__ = ["main"]


@click.group(cls=CostingGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="costing")
def main() -> None:
    """Notional costs for hospital activity: price HES extracts at tariff and reference cost,
    then sum per patient per six-month window.

    \b
    Examples:
      costing tables list
      costing price apc.csv --setting apc --columns hes -o priced.parquet
      costing run examples/icp/run.toml
    """


# Command modules register themselves on import; a module not yet written is skipped.
for _name in ("tables", "price", "windows", "evaluate", "run", "match"):
    try:
        importlib.import_module(f"costing.cli.{_name}")
    except ModuleNotFoundError as _exc:  # pragma: no cover - only while a module is absent
        if _exc.name != f"costing.cli.{_name}":
            raise
