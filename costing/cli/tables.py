"""``costing tables``: list, show, verify and import versioned table editions."""

from __future__ import annotations

from pathlib import Path

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err
from costing.errors import CostingError
from costing.tables import load_tables, shipped_tables_path, verify_tables


def _tables_paths(paths: tuple[str, ...]) -> list[str] | None:
    return list(paths) if paths else None


@main.group("tables")
def tables() -> None:
    """List, inspect, verify and import price and reference-cost table editions."""


@tables.command("list")
@click.option("--path", "paths", multiple=True, type=click.Path(file_okay=False),
              help="Tables folder(s) instead of the shipped ones; 'shipped' adds the shipped ones.")
def list_cmd(paths: tuple[str, ...]) -> None:
    """List editions: kind, edition, HRG version, validity, rows and source.

    \b
    Example:
      costing tables list
      costing tables list --path shipped --path my_tables/
    """
    ts = load_tables(_tables_paths(paths))
    df = ts.summary().drop("path")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        click.echo(str(df))
    echo_err(f"costing: {len(ts)} editions verified")


@tables.command("show")
@click.argument("kind")
@click.argument("edition")
@click.option("--path", "paths", multiple=True, type=click.Path(file_okay=False),
              help="Tables folder(s) instead of the shipped ones.")
@click.option("--rows", default=10, show_default=True, help="Rows of each resource to preview.")
def show_cmd(kind: str, edition: str, paths: tuple[str, ...], rows: int) -> None:
    """Show an edition's manifest and a preview of each resource.

    \b
    Example:
      costing tables show reference_cost 2017-18
    """
    from costing.importers import KIND_ALIASES

    ts = load_tables(_tables_paths(paths))
    ed = ts.get(KIND_ALIASES.get(kind, kind), edition)
    click.echo(ed.manifest.model_dump_json(indent=2))
    for name, frame in ed.frames.items():
        click.echo(f"\n{name}: {frame.height} rows")
        with pl.Config(tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=40):
            click.echo(str(frame.head(rows)))


@tables.command("verify")
@click.option("--path", "paths", multiple=True, type=click.Path(),
              help="Tables folder(s) to verify (default: the shipped tables).")
def verify_cmd(paths: tuple[str, ...]) -> None:
    """Verify every edition's sha256, schema and primary key; exit 1 on any failure.

    \b
    Example:
      costing tables verify
      costing tables verify --path my_tables/
    """
    results = verify_tables(_tables_paths(paths))
    bad = [(f, e) for f, e in results if e]
    for folder, err in results:
        click.echo(f"{'FAIL' if err else 'ok  '} {folder}")
    if bad:
        for folder, err in bad:
            echo_err(f"costing: error: {err}")
        raise click.exceptions.Exit(1)
    if not results:
        echo_err("costing: error: no editions found")
        raise click.exceptions.Exit(1)
    echo_err(f"costing: {len(results)} editions verified")


@tables.command("compare")
@click.option("--tariff", "tariff", required=True, help="Tariff edition, YYYY-YY.")
@click.option("--reference-costs", "reference_costs", required=True,
              help="Reference-cost edition the tariff falls back to, YYYY-YY.")
@click.option("--path", "paths", multiple=True, type=click.Path(file_okay=False),
              help="Tables folder(s) instead of the shipped ones.")
@click.option("--detail", type=click.Path(dir_okay=False),
              help="Also write one row per code to this file (.csv, .parquet or .xlsx).")
def compare_cmd(tariff: str, reference_costs: str, paths: tuple[str, ...], detail: str | None) -> None:
    """What will fall back: per point of delivery, how many HRGs (treatment functions for
    outpatient attendances) the tariff prices, how many only the reference costs price, and
    how many neither prices.

    \b
    Example:
      costing tables compare --tariff 2016-17 --reference-costs 2016-17
    """
    ts = load_tables(_tables_paths(paths))
    counts = ts.compare(tariff, reference_costs)
    wide = counts.pivot(on="group", index=["pod", "code_type"], values="n_codes").fill_null(0)
    for group in ("tariff", "reference_cost_only", "neither"):
        if group not in wide.columns:
            wide = wide.with_columns(pl.lit(0, dtype=pl.UInt32).alias(group))
    click.echo(f"tariff {tariff} against reference costs {reference_costs}: codes per point of delivery")
    with pl.Config(tbl_rows=-1, tbl_cols=-1, tbl_width_chars=200,
                   tbl_hide_dataframe_shape=True, tbl_hide_column_data_types=True):
        click.echo(str(wide.select("pod", "code_type", "tariff", "reference_cost_only", "neither")))
    if detail:
        from costing.io import write_frame

        click.echo(str(write_frame(ts.compare(tariff, reference_costs, detail=True), detail)))


@tables.command("import")
@click.argument("kind")
@click.argument("source", type=click.Path(exists=True))
@click.option("--edition", required=True, help="Financial year of the edition, YYYY-YY.")
@click.option("--hrg-version", type=click.Choice(["v3.5", "HRG4"]),
              help="HRG design the codes belong to (tariff and reference costs).")
@click.option("--into", type=click.Path(file_okay=False), default=None,
              help="Tables folder to write into (default: ./tables).")
@click.option("--overwrite", is_flag=True, help="Replace an existing edition deliberately.")
def import_cmd(kind: str, source: str, edition: str, hrg_version: str | None,
               into: str | None, overwrite: bool) -> None:
    """Import an official workbook or CSV as a canonical edition with a manifest.

    KIND is one of: tariff, reference_cost, trimpoints, mff, index, parameters (the rules'
    policy thresholds: docs/tables.md#parameters).

    \b
    Examples:
      costing tables import reference_cost national-schedule-2017-18.xlsx --edition 2017-18
      costing tables import tariff 2017-18-tariff.xlsx --edition 2017-18 --hrg-version HRG4 --into my_tables
      costing tables import tariff pbr-0809.csv --edition 2008-09 --hrg-version v3.5 --into my_tables
    Then use it with: costing tables list --path shipped --path my_tables
    """
    from costing.importers import import_edition

    target = Path(into) if into else Path("tables")
    if target.resolve() == shipped_tables_path().resolve() and not overwrite:
        raise CostingError("refusing to write into the shipped tables folder; use --into")
    folder = import_edition(kind, source, edition=edition, into=target,
                            hrg_version=hrg_version, overwrite=overwrite)
    ts = load_tables(folder)  # verify what we wrote
    ed = next(iter(ts))
    rows = sum(r.rows for r in ed.manifest.resources)
    click.echo(str(folder))
    echo_err(f"costing: imported {ed.kind} {ed.edition} ({rows} rows) into {folder}")
