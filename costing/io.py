"""Reading user extracts and writing outputs: the only library module that touches user files.

Outputs are written atomically (a temporary file in the same folder, then a rename) so an
interrupted write never leaves a half-written file; CSV and Excel outputs neutralise text
cells that a spreadsheet would run as a formula (leading ``= + - @``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import polars as pl

from costing.errors import InputError

__all__ = ["write_frame", "atomic_path", "neutralise_formulas", "OUTPUT_FORMATS"]

OUTPUT_FORMATS = (".csv", ".parquet", ".xlsx")


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def neutralise_formulas(df: pl.DataFrame) -> pl.DataFrame:
    """Prefix text cells starting with = + - @ (or tab/CR) with an apostrophe.

    Only String columns are touched; numbers (including negative ones) are left alone.
    """
    exprs = [
        pl.when(pl.col(c).str.contains(r"^[=+\-@\t\r]"))
        .then(pl.lit("'") + pl.col(c))
        .otherwise(pl.col(c))
        .alias(c)
        for c, t in df.schema.items()
        if t == pl.String
    ]
    return df.with_columns(exprs) if exprs else df


def _write_xlsx(df: pl.DataFrame, path: Path) -> None:
    df.write_excel(path, worksheet="data", autofit=False)


_WRITERS: dict[str, Callable[[pl.DataFrame, Path], None]] = {
    ".csv": lambda df, p: neutralise_formulas(df).write_csv(p),
    ".parquet": lambda df, p: df.write_parquet(p),
    ".xlsx": lambda df, p: _write_xlsx(neutralise_formulas(df), p),
}


def write_frame(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a frame to .csv, .parquet or .xlsx atomically; return the path.

    Raises InputError for an unsupported extension (say which ones are supported).
    """
    target = Path(path)
    ext = target.suffix.lower()
    writer = _WRITERS.get(ext)
    if writer is None:
        raise InputError(
            f"{target}: cannot write {ext or 'a file without extension'}; "
            f"use one of {', '.join(OUTPUT_FORMATS)}"
        )
    with atomic_path(target) as tmp:
        writer(df, tmp)
    return target
