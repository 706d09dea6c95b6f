"""A run manifest: what produced an output, written as JSON beside it.

Two runs on the same inputs, configuration and tables give the same manifest except for
``created_at``: everything else is derived from content (sha256 of files, of the canonical
JSON of the configuration, of the table editions) and from row counts.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel

from costing.errors import ConfigError, InputError
from costing.io import atomic_path
from costing.status import status_name_expr
from costing.tables import TableSet, sha256_file

__all__ = ["MANIFEST_FORMAT", "config_sha256", "run_manifest", "write_run_manifest"]

MANIFEST_FORMAT = "costing-run-manifest/1"
_COST_DECIMALS = 6


def _canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _resolve_config(config: Mapping[str, Any] | BaseModel) -> dict[str, Any]:
    if isinstance(config, BaseModel):
        data = config.model_dump(mode="json")
    elif isinstance(config, Mapping):
        data = dict(config)
    else:
        raise ConfigError(
            f"run manifest: configuration must be a mapping or a pydantic model, not {type(config).__name__}"
        )
    # round-trip through canonical JSON so dates, paths and tuples are stored as JSON sees them
    resolved: dict[str, Any] = json.loads(_canonical_json(data))
    return resolved


def config_sha256(config: Mapping[str, Any] | BaseModel) -> str:
    """sha256 of the configuration's canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical_json(_resolve_config(config)).encode("utf-8")).hexdigest()


def _input_entry(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"run manifest: input file {p} does not exist (or is not a file)")
    return {"name": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)}


def _output_entry(value: pl.DataFrame | pl.LazyFrame | int | Mapping[str, int]) -> dict[str, Any]:
    if isinstance(value, pl.LazyFrame):
        value = value.collect()
    if isinstance(value, pl.DataFrame):
        entry: dict[str, Any] = {"rows": value.height, "columns": value.columns}
        if "cost" in value.columns:
            total = value["cost"].cast(pl.Float64).sum()
            entry["cost_total"] = round(float(total or 0.0), _COST_DECIMALS)
        return entry
    if isinstance(value, bool):
        raise ConfigError("run manifest: an output count must be a whole number, not a boolean")
    if isinstance(value, int):
        return {"rows": value}
    if isinstance(value, Mapping):
        return {str(k): int(v) for k, v in value.items()}
    raise ConfigError(
        f"run manifest: outputs take frames, counts or mappings of counts, not {type(value).__name__}"
    )


def _status_counts(
    counts: pl.DataFrame | pl.LazyFrame | Mapping[int | str, int] | None,
) -> list[dict[str, Any]]:
    if counts is None:
        return []
    if isinstance(counts, (pl.DataFrame, pl.LazyFrame)):
        lf = counts.lazy()
        names = lf.collect_schema().names()
        if "status" not in names:
            raise InputError("run manifest: counts_by_status frame has no 'status' column")
        cost = pl.col("cost").cast(pl.Float64).sum() if "cost" in names else pl.lit(0.0)
        table = (
            lf.group_by("status")
            # a priced frame, or its counts (n_records by status, ...: the Spark run's)
            .agg((pl.col("n_records").sum() if "n_records" in names and "record_id" not in names
                  else pl.len()).alias("n_records"), cost.alias("cost"))
            .with_columns(status_name_expr("status").alias("status_name"))
            .sort("status")
            .collect()
        )
        return [
            {
                "status": int(r["status"]),
                "status_name": r["status_name"],
                "n_records": int(r["n_records"]),
                "cost": round(float(r["cost"] or 0.0), _COST_DECIMALS),
            }
            for r in table.iter_rows(named=True)
        ]
    return [
        {"status": str(k), "n_records": int(v)}
        for k, v in sorted(counts.items(), key=lambda kv: str(kv[0]))
    ]


def run_manifest(
    *,
    config: Mapping[str, Any] | BaseModel,
    tables: TableSet | None,
    inputs: Sequence[str | os.PathLike[str]] = (),
    outputs: Mapping[str, pl.DataFrame | pl.LazyFrame | int | Mapping[str, int]] | None = None,
    counts_by_status: pl.DataFrame | pl.LazyFrame | Mapping[int | str, int] | None = None,
    rows_in: Mapping[str, int] | int | None = None,
) -> dict[str, Any]:
    """Describe a run so it can be reproduced and checked.

    Args:
        config: the resolved configuration (a mapping or pydantic model); stored as JSON
            with its sha256 (of the canonical JSON: sorted keys, no spaces).
        tables: the TableSet used (its ``fingerprint()``: editions, versions, file
            sha256); None if the run used none.
        inputs: input files; each is recorded by file name, size and sha256 (not by full
            path, so the manifest does not depend on where the files sit).
        outputs: name -> output frame (rows, columns and cost total), a row count, or a
            mapping of counts.
        counts_by_status: the priced frame (counted by status here, with cost) or a
            mapping status -> count.
        rows_in: input row counts (total or per input name).

    Returns:
        A JSON-ready dict: format, engine (name, version, python, polars), config,
        config_sha256, tables, tables_sha256, inputs, rows_in, outputs,
        counts_by_status and created_at (UTC, ISO 8601: the only field that differs
        between two runs on the same inputs).
    """
    import costing

    resolved = _resolve_config(config)
    fingerprint = tables.fingerprint() if tables is not None else []
    rows = {"total": rows_in} if isinstance(rows_in, int) else dict(rows_in or {})
    return {
        "format": MANIFEST_FORMAT,
        "engine": {
            "name": "costing",
            "version": costing.__version__,
            "python": platform.python_version(),
            "polars": pl.__version__,
        },
        "config": resolved,
        "config_sha256": hashlib.sha256(_canonical_json(resolved).encode("utf-8")).hexdigest(),
        "tables": fingerprint,
        "tables_sha256": hashlib.sha256(_canonical_json(fingerprint).encode("utf-8")).hexdigest(),
        "inputs": [_input_entry(p) for p in inputs],
        "rows_in": rows,
        "outputs": {k: _output_entry(v) for k, v in sorted((outputs or {}).items())},
        "counts_by_status": _status_counts(counts_by_status),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def write_run_manifest(manifest: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a manifest as indented, key-sorted UTF-8 JSON, atomically; return the path."""
    target = Path(path)
    text = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return target
