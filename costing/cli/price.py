"""``costing price``: price one or more extracts and write the priced records."""

from __future__ import annotations

import time
from pathlib import Path

import click
import polars as pl

from costing.cli import main
from costing.cli._common import echo_err
from costing.config import CostingConfig

SETTINGS = ("apc", "op", "ae")
# Extracts larger than this get a progress line before pricing (it takes more than a moment).
_PROGRESS_BYTES = 50 * 1024 * 1024


def _settings_of(extracts: tuple[str, ...], setting: str | None, by_flag: dict[str, tuple[str, ...]],
                 cols: str | Path, sheet: str | int | None, encoding: str) -> dict[str, list[str]]:
    """Setting -> its files: from --apc/--op/--ae, --setting for the positional files, or
    each positional file's own columns (what was detected is reported on stderr)."""
    from costing.io import detect_setting

    files: dict[str, list[str]] = {s: list(by_flag.get(s, ())) for s in SETTINGS}
    for path in extracts:
        if setting:
            files[setting].append(path)
            continue
        found, told_by = detect_setting(path, columns=cols, sheet=sheet, encoding=encoding)
        echo_err(f"costing: {path}: setting {found}, told by its columns "
                 f"{', '.join(told_by.values())} (say otherwise with --apc/--op/--ae FILE or --setting)")
        files[found].append(path)
    return {s: f for s, f in files.items() if f}


def _read(files: dict[str, list[str]], cols: str | Path, sheet: str | int | None, encoding: str,
          strict: bool, hrg_version: str | None) -> pl.DataFrame:
    """Every file, read with its setting, as one canonical frame (files of one setting are
    read together, so a record id repeated across them is found)."""
    from costing.io import read_activity

    frames = [read_activity(paths, setting=s, columns=cols, sheet=sheet, encoding=encoding,
                            strict=strict, hrg_version=hrg_version) for s, paths in files.items()]
    return pl.concat(frames, how="diagonal_relaxed").collect()


def _warn_duplicates(activity: pl.DataFrame, files: dict[str, list[str]]) -> None:
    """A file-level warning for each file with repeated record ids, and for a file given twice."""
    from costing.io import duplicate_warnings

    given = [str(Path(f).resolve()) for paths in files.values() for f in paths]
    for path in sorted({g for g in given if given.count(g) > 1}):
        echo_err(f"costing: warning: {path} is given more than once: the second reading's records "
                 "have status duplicate_record")
    for line in duplicate_warnings(activity):
        echo_err(f"costing: warning: {line}")


@main.command("price")
@click.argument("extracts", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("--setting", type=click.Choice(SETTINGS),
              help="Setting of the positional extract(s); told from each file's columns if omitted.")
@click.option("--apc", "apc_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An admitted patient care extract (repeatable).")
@click.option("--op", "op_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An outpatient extract (repeatable).")
@click.option("--ae", "ae_files", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An A&E extract (repeatable).")
@click.option("--columns", default="hes", show_default=True,
              help="Column preset (hes = SUSHRG/HRG4, hes35 = HRGLATE35/v3.5, canonical) or a TOML mapping file.")
@click.option("--sheet", help="Excel sheet name or 0-based index.")
@click.option("--encoding", default="utf8", show_default=True, help="CSV encoding: utf8 (BOM ok) or latin1.")
@click.option("--hrg-version", type=click.Choice(["v3.5", "HRG4"]), help="Override the HRG version of the extract.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False),
              help="TOML with CostingConfig fields (command-line options override it).")
@click.option("--perspective", type=click.Choice(["purchaser", "provider"]))
@click.option("--tariff", "tariff_edition", help="Fixed tariff edition YYYY-YY (default: dated).")
@click.option("--reference-costs", "rc_edition", help="Fixed reference-cost edition YYYY-YY (default: dated).")
@click.option("--chain", help="Source order, comma separated: tariff,reference_cost,total_hrg_average.")
@click.option("--mff/--no-mff", default=None, help="Apply the Market Forces Factor to tariff prices.")
@click.option("--price-base", help="Express costs at this financial year's prices (needs --index).")
@click.option("--index", "index_name", help="Inflation index: gdp_deflator, nhscii_pay_prices, ...")
@click.option("--tables", "tables_paths", multiple=True, type=click.Path(file_okay=False),
              help="Tables folder(s); 'shipped' for the shipped ones (default: shipped).")
@click.option("--strict", is_flag=True, help="Fail on invalid rows, and exit 1 if any record is unpriced.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Output file: .csv, .parquet or .xlsx.")
def price_cmd(extracts: tuple[str, ...], setting: str | None, apc_files: tuple[str, ...],
              op_files: tuple[str, ...], ae_files: tuple[str, ...], columns: str, sheet: str | None,
              encoding: str, hrg_version: str | None, config_file: str | None,
              perspective: str | None, tariff_edition: str | None, rc_edition: str | None,
              chain: str | None, mff: bool | None, price_base: str | None,
              index_name: str | None, tables_paths: tuple[str, ...], strict: bool,
              output: str) -> None:
    """Price HES-style extracts: tariff first, reference cost as fallback (purchaser), or
    reference cost (provider). Every record comes out with a cost or a status saying why not.

    \b
    Examples:
      costing price apc.csv --setting apc -o priced.parquet
      costing price --apc apc.csv --op op.csv --ae ae.csv -o study.parquet
      costing price apc.csv op.csv ae.csv -o study.parquet   (settings told from the columns)
      costing price op.xlsx --sheet OP --perspective provider --reference-costs 2017-18 -o op.csv
      costing price apc.csv --tables shipped --tables my_tables --tariff 2008-09 \\
          --columns hes35 --reference-costs 2017-18 -o priced.xlsx
    """
    from costing.io import OUTPUT_FORMATS, refuse_overwriting_inputs, write_frame
    from costing.pricing import price
    from costing.report import summary_line
    from costing.tables import load_tables

    if Path(output).suffix.lower() not in OUTPUT_FORMATS:
        raise click.UsageError(f"-o must end in one of {', '.join(OUTPUT_FORMATS)}")
    if (price_base is None) != (index_name is None):
        raise click.UsageError("--price-base and --index go together")
    refuse_overwriting_inputs([output], [*extracts, *apc_files, *op_files, *ae_files,
                                         *([config_file] if config_file else []),
                                         *([columns] if Path(columns).is_file() else [])])
    t0 = time.perf_counter()
    base = CostingConfig.from_toml(config_file).model_dump() if config_file else {}
    overrides = {
        "perspective": perspective, "tariff_edition": tariff_edition,
        "reference_cost_edition": rc_edition, "mff": mff, "price_base": price_base,
        "index": index_name, "chain": tuple(c.strip() for c in chain.split(",")) if chain else None,
    }
    base.update({k: v for k, v in overrides.items() if v is not None})
    if strict:
        base["strict"] = True
    cfg = CostingConfig.from_mapping(base, source="command line")
    tables = load_tables(list(tables_paths) if tables_paths else None)
    # a mapping file (TOML, or any file there); anything else is a preset name (a typo is
    # answered with the closest preset, not "file not found")
    cols: str | Path = Path(columns) if columns.lower().endswith(".toml") or Path(columns).is_file() else columns
    sheet_arg: str | int | None = int(sheet) if sheet is not None and sheet.isdigit() else sheet
    if not (extracts or apc_files or op_files or ae_files):
        raise click.UsageError("give at least one extract (a file, or --apc/--op/--ae FILE)")
    files = _settings_of(extracts, setting, {"apc": apc_files, "op": op_files, "ae": ae_files},
                         cols, sheet_arg, encoding)
    activity = _read(files, cols, sheet_arg, encoding, cfg.strict, hrg_version)
    _warn_duplicates(activity, files)
    n_files = sum(len(f) for f in files.values())
    if sum(Path(e).stat().st_size for f in files.values() for e in f) > _PROGRESS_BYTES:
        echo_err(f"costing: pricing {activity.height:,} {'/'.join(files)} records from {n_files} file(s) ...")
    priced = price(activity, tables, cfg)
    write_frame(priced, output)
    from costing.pairing import run_warnings

    for warning in run_warnings(priced, tables, cfg):
        echo_err(f"costing: warning: {warning}")
    n_in = int(priced["n_episodes"].sum())  # records read: spells count their episodes
    from costing.coverage import trimpoint_coverage

    trim = trimpoint_coverage(priced, tables, cfg)
    echo_err("costing: " + summary_line(priced, time.perf_counter() - t0, records_in=n_in,
                                        trimpoints=trim))
    if strict and priced.filter(pl.col("status") >= 50).height:
        echo_err("costing: error: --strict and some records are unpriced (see status_name)")
        raise click.exceptions.Exit(1)
