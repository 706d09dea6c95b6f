"""Shared CLI plumbing: error-to-exit-code mapping and the stderr summary line."""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from costing.errors import CostingError


class CostingGroup(click.Group):
    """A click group that turns CostingError into a clean message and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CostingError as exc:
            click.echo(f"costing: error: {exc}", err=True)
            ctx.exit(1)
        except OSError as exc:  # not found, permission, disk full, ...: never a traceback
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"costing: error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(1)


def setup_logging(verbose: int) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, stream=sys.stderr, format="costing: %(message)s")


def echo_err(msg: str) -> None:
    """Write one line to stderr (summaries, progress)."""
    click.echo(msg, err=True)
