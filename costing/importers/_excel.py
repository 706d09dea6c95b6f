"""Shared helpers for official workbooks: sheet grids, header rows, labels and money cells.

A sheet is read whole as text (fastexcel/calamine, no header) into a ``SheetGrid`` that
remembers where it sits in the workbook, so every problem can be reported as
``file, sheet, cell`` with the Excel row number and column letter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import fastexcel
import polars as pl

from costing.errors import ImportFormatError

__all__ = [
    "NULL_TOKENS",
    "SheetGrid",
    "open_workbook",
    "read_grid",
    "read_numbers",
    "normalise_label",
    "normalise_sheet_name",
    "find_header_row",
    "column_letter",
    "column_index",
    "code_text",
    "money",
    "check_numbers",
    "read_csv_by_label",
]

# Cell texts that mean "no value" (suppressed, not applicable) once stripped.
NULL_TOKENS: tuple[str, ...] = ("", "-", "–", "—", "*", "n/a", "N/A", "..")

_WS = re.compile(r"\s+")


def normalise_label(text: object) -> str:
    """Header text compared case-blind with line breaks and runs of spaces collapsed."""
    if text is None:
        return ""
    return _WS.sub(" ", str(text)).strip().casefold()


def normalise_sheet_name(name: str) -> str:
    """A sheet name reduced to lower-case letters and digits ("Total HRG's" -> "totalhrgs")."""
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def column_letter(index: int) -> str:
    """Excel column letter of a 0-based absolute column index (0 -> A, 27 -> AB)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


@dataclass(frozen=True)
class SheetGrid:
    """A sheet read as text: column ``c{i}`` holds Excel column ``first_column + i``.

    Frame row ``i`` is Excel row ``i + 1`` (rows are read from the top of the sheet).
    """

    path: Path
    sheet: str
    frame: pl.DataFrame
    first_column: int

    def cell(self, row_index: int, col: int) -> str:
        """Excel reference (e.g. ``D12``) of frame row ``row_index`` and grid column ``col``."""
        return f"{column_letter(self.first_column + col)}{row_index + 1}"

    def where(self, excel_row: int | None = None, col: int | None = None, label: str = "") -> str:
        """``file, sheet 'X', row R, column C 'label'`` for messages."""
        parts = [f"{self.path.name}, sheet {self.sheet!r}"]
        if excel_row is not None:
            parts.append(f"row {excel_row}")
        if col is not None:
            parts.append(f"column {column_letter(self.first_column + col)}"
                         + (f" ({label!r})" if label else ""))
        return ", ".join(parts)

    def row_texts(self, row_index: int) -> list[str]:
        """Normalised labels of one frame row."""
        return [normalise_label(v) for v in self.frame.row(row_index)]


def open_workbook(path: Path) -> fastexcel.ExcelReader:
    """Open an .xlsx/.xls workbook, or raise ImportFormatError saying why not."""
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    try:
        return fastexcel.read_excel(path)
    except Exception as exc:  # calamine raises its own error types
        raise ImportFormatError(
            f"{path}: cannot be read as an Excel workbook ({exc}). "
            "Give the original .xlsx/.xls file as published."
        ) from None


def read_grid(reader: fastexcel.ExcelReader, path: Path, sheet: str) -> SheetGrid:
    """Read a whole sheet as text cells, keeping its position in the workbook."""
    try:
        loaded = reader.load_sheet(sheet, header_row=None, skip_rows=0, dtypes="string")
        frame = loaded.to_polars()
        cols = loaded.available_columns()
    except Exception as exc:
        raise ImportFormatError(f"{path.name}, sheet {sheet!r}: cannot be read ({exc})") from None
    first = cols[0].absolute_index if cols else 0
    frame = frame.rename({c: f"c{i}" for i, c in enumerate(frame.columns)})
    return SheetGrid(path=path, sheet=sheet, frame=frame, first_column=first)


def read_numbers(
    reader: fastexcel.ExcelReader, grid: SheetGrid, cols: Sequence[int]
) -> pl.DataFrame:
    """Grid columns ``cols`` read again as Float64 (``n{i}``), row-aligned with ``grid.frame``.

    Text read as text loses digits of stored numbers (calamine writes about 13 significant
    digits), so figures come from this read; a text cell is null here and is parsed from
    the grid's text instead (see :func:`money`).
    """
    names = [f"__UNNAMED__{i}" for i in cols]
    try:
        frame = reader.load_sheet(
            grid.sheet, header_row=None, skip_rows=0, use_columns=names,
            dtypes={n: "float" for n in names},
        ).to_polars()
    except Exception as exc:
        raise ImportFormatError(f"{grid.where()}: numbers cannot be read ({exc})") from None
    if frame.height != grid.frame.height:  # pragma: no cover - both reads start at row 1
        raise ImportFormatError(f"{grid.where()}: numeric and text reads disagree on row count")
    return frame.rename({n: f"n{i}" for n, i in zip(names, cols, strict=True)})


def find_header_row(
    grid: SheetGrid,
    required: Sequence[str | tuple[str, ...]],
    *,
    search_rows: int = 60,
) -> int:
    """Frame index of the first row holding every required label (normalised).

    Args:
        grid: The sheet.
        required: Labels that must all be present; a tuple means any one of them.
        search_rows: How many rows from the top to search.

    Raises:
        ImportFormatError: No such row, naming the file, the sheet and the labels.
    """
    wanted = [(r,) if isinstance(r, str) else r for r in required]
    for i in range(min(search_rows, grid.frame.height)):
        texts = set(grid.row_texts(i))
        if all(any(normalise_label(a) in texts for a in alts) for alts in wanted):
            return i
    shown = " | ".join("/".join(alts) for alts in wanted)
    raise ImportFormatError(
        f"{grid.where()}: no header row found in the first {search_rows} rows "
        f"(looked for a row with: {shown}). Is this the right sheet of the published workbook?"
    )


def column_index(
    labels: Sequence[str], names: Iterable[str], grid: SheetGrid, excel_row: int, what: str
) -> int:
    """Index of the first header label equal to one of ``names`` (normalised)."""
    wanted = [normalise_label(n) for n in names]
    for name in wanted:
        if name in labels:
            return labels.index(name)
    raise ImportFormatError(
        f"{grid.where(excel_row)}: header row has no {what} column "
        f"(looked for {', '.join(repr(n) for n in wanted)}; found "
        f"{', '.join(repr(x) for x in labels if x)})."
    )


def _stripped(col: str) -> pl.Expr:
    return pl.col(col).str.strip_chars()


def code_text(col: str) -> pl.Expr:
    """A code cell as clean text: stripped, a numeric ``100.0`` written ``100``, blank -> null."""
    s = _stripped(col).str.replace(r"^(\d+)\.0+$", "${1}")
    return pl.when(s == "").then(None).otherwise(s)


def money(col: str) -> pl.Expr:
    """A money or count cell as Float64: ``£``, spaces and thousands commas removed.

    Null tokens (blank, ``-``) give null.

    A cell that is neither a number nor a null token becomes null here; find those with
    :func:`check_numbers` before trusting the result.
    """
    s = _stripped(col).str.replace_all(r"[£,\s]", "")
    return (
        pl.when(_stripped(col).is_null() | _stripped(col).is_in(list(NULL_TOKENS)))
        .then(None)
        .otherwise(s.cast(pl.Float64, strict=False))
    )


def check_numbers(
    frame: pl.DataFrame,
    *,
    raw: str,
    parsed: str,
    where: str,
    label: str,
    row_col: str = "excel_row",
    row_word: str = "row",
    allow_negative: bool = False,
) -> None:
    """Raise ImportFormatError on the first non-numeric (or negative) cell of a column.

    Args:
        frame: Rows with the raw text column, its parsed Float64 column and a row-number column.
        raw: Raw text column name.
        parsed: Parsed column name (from :func:`money`).
        where: ``file, sheet`` prefix (the row is appended).
        label: Column description for the message, e.g. ``column D ('National Average Unit Cost')``.
        row_col: Column with the row number to report.
        row_word: How the message names that number ("row" in a sheet, "line" in a CSV).
        allow_negative: Accept negative numbers.
    """
    bad = frame.filter(
        pl.col(parsed).is_null()
        & pl.col(raw).is_not_null()
        & ~pl.col(raw).str.strip_chars().is_in(list(NULL_TOKENS))
    )
    if bad.height:
        first = bad.row(0, named=True)
        raise ImportFormatError(
            f"{where}, {row_word} {first[row_col]}, {label}: {first[raw]!r} is not a number "
            f"({bad.height} such cell(s) in this column). Fix the cell, or write '-' "
            "where there is no value."
        )
    if not allow_negative:
        neg = frame.filter(pl.col(parsed) < 0)
        if neg.height:
            first = neg.row(0, named=True)
            raise ImportFormatError(
                f"{where}, {row_word} {first[row_col]}, {label}: negative value {first[raw]!r} "
                f"({neg.height} such cell(s) in this column); costs and activity cannot be "
                "negative. Check the source file."
            )


def read_csv_by_label(path: Path, roles: dict[str, str], layout: str) -> pl.DataFrame:
    """A CSV read as text, its columns renamed by header label (normalised, byte-order mark
    stripped) to their roles, with the file's line number as ``line`` (header = line 1).

    Args:
        path: The CSV (UTF-8).
        roles: Normalised header label -> role (column name of the result).
        layout: The expected layout, named in the message when a column is missing.

    Raises:
        ImportFormatError: The file is missing or not UTF-8 CSV, or a label is absent.
    """
    if not path.is_file():
        raise ImportFormatError(f"{path}: no such file")
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except Exception as exc:
        raise ImportFormatError(
            f"{path.name}: cannot be read as a UTF-8 CSV ({exc}). Give the {layout} as a CSV file."
        ) from None
    by_label = {normalise_label(c.lstrip("\ufeff")): c for c in frame.columns}
    missing = [label for label in roles if label not in by_label]
    if missing:
        raise ImportFormatError(
            f"{path.name}: missing column(s) {', '.join(repr(m) for m in missing)}; found "
            f"{', '.join(repr(c) for c in frame.columns)}. Expected the {layout}."
        )
    return frame.select(
        pl.int_range(2, pl.len() + 2, dtype=pl.Int64).alias("line"),
        *[pl.col(by_label[label]).alias(role) for label, role in roles.items()],
    )
