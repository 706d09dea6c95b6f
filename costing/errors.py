"""Exceptions raised by costing when it cannot proceed.

Per-record problems are data (a status code on the row); an exception means the run
cannot go on. Every message says what is wrong, where (file, row, column) and what to do.

    CostingError
    ├── TableError                      a price/reference table cannot be trusted or used
    │   ├── TableIntegrityError         file bytes differ from the manifest sha256
    │   ├── TableMissingError           a file named in a manifest (or the manifest) is absent
    │   ├── TableSchemaError            wrong columns or dtypes in a table
    │   ├── TableKeyError               duplicate (or null) primary key in a table
    │   ├── ManifestError               a manifest that does not parse or validate
    │   └── EditionNotFoundError        no such kind/edition, or no edition in force on a date
    ├── ImportFormatError               an official workbook/CSV we cannot read (sheet, header, cell)
    ├── InputError                      a user extract or cohort we cannot use
    │   ├── MissingColumnsError         required columns absent (with close matches)
    │   ├── ValidationError             strict mode: every failing (row, column, value, reason)
    │   └── CohortError                 every problem of a cohort (row, column, value, reason)
    ├── ConfigError                     a run file or configuration that is invalid
    └── ConservationError               money or rows not conserved: a bug in costing, please report
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

__all__ = [
    "CostingError",
    "TableError",
    "TableIntegrityError",
    "TableMissingError",
    "TableSchemaError",
    "TableKeyError",
    "ManifestError",
    "EditionNotFoundError",
    "ImportFormatError",
    "InputError",
    "MissingColumnsError",
    "ValidationError",
    "CohortError",
    "ConfigError",
    "ConservationError",
    "unknown_column",
]


class CostingError(Exception):
    """Base class of every error costing raises on purpose."""


class TableError(CostingError):
    """A price or reference table cannot be trusted or used."""


class TableIntegrityError(TableError):
    """A table file's bytes do not match the sha256 recorded in its manifest."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{path}: sha256 mismatch (manifest says {expected}, file has {actual}). "
            "The file was changed after it was imported; restore it from the repository or "
            "re-import the edition with `costing tables import`."
        )


class TableMissingError(TableError):
    """A file named in a manifest, or the manifest itself, is missing."""


class TableSchemaError(TableError):
    """A table has missing columns or a column of the wrong dtype."""


class TableKeyError(TableError):
    """A table has duplicate or null primary-key values."""


class ManifestError(TableError):
    """A manifest does not parse or does not validate."""


class EditionNotFoundError(TableError):
    """No table of the requested kind and edition, or none in force on a date."""


class ImportFormatError(CostingError):
    """An official workbook or CSV cannot be read into canonical form."""


class InputError(CostingError):
    """A user's activity extract or cohort cannot be used."""


class MissingColumnsError(InputError):
    """Required columns are absent from an input file."""

    def __init__(
        self,
        source: str,
        missing: Sequence[str],
        suggestions: dict[str, list[str]] | None = None,
    ) -> None:
        self.source = source
        self.missing = list(missing)
        self.suggestions = suggestions or {}
        parts = []
        for col in self.missing:
            close = self.suggestions.get(col) or []
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            parts.append(f"{col!r}{hint}")
        super().__init__(
            f"{source}: missing required column(s): {'; '.join(parts)}. "
            "Rename the columns, or map them with a column file (TOML: canonical_name = \"your column\")."
        )


def _failure_report(source: str, failures: Any, what: str, advice: str, shown: int) -> str:
    """``source: N <what>:`` then one line per (row, column, value, reason), then advice."""
    n = failures.height
    lines = [
        f"  row {r['row']}, column {r['column']}: {r['reason']} (value {r['value']!r})"
        for r in failures.head(shown).iter_rows(named=True)
    ]
    more = f"\n  ... and {n - shown} more" if n > shown else ""
    return f"{source}: {n} {what}:\n" + "\n".join(lines) + more + "\n" + advice


class ValidationError(InputError):
    """Strict-mode validation failed; ``failures`` lists every (row, column, value, reason)."""

    def __init__(self, source: str, failures: Any, shown: int = 20) -> None:
        # failures: a polars DataFrame with columns row, column, value, reason
        self.source = source
        self.failures = failures
        super().__init__(_failure_report(
            source, failures, "invalid value(s) in strict mode",
            "Fix the input, or run without --strict to keep these rows with an "
            "invalid-record status.", shown))


class CohortError(InputError):
    """A cohort with problems; ``failures`` lists every (row, column, value, reason).

    ``row`` is the 1-based data row (row 1 is the first row after a CSV header).
    """

    def __init__(self, source: str, failures: Any, shown: int = 20) -> None:
        self.source = source
        self.failures = failures
        super().__init__(_failure_report(
            source, failures, "problem(s) in the cohort",
            "Fix the cohort file (one row per patient, an ISO date YYYY-MM-DD in index_date, "
            "no HES dummy dates such as 1800-01-01, weights >= 0) and run again.", shown))


class ConfigError(CostingError):
    """A configuration or run file is invalid."""


class ConservationError(CostingError):
    """Rows or money were not conserved between stages: a bug in costing, please report it."""


def unknown_column(source: str, what: str, name: str, columns: Sequence[str], advice: str = "") -> InputError:
    """An option names a column the data does not have: the error names the closest column
    and lists them all (an option that silently fell back would give a different number)."""
    close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.6)
    if not close:  # ignoring case
        folded = {c.casefold(): c for c in columns}
        close = [folded[m] for m in difflib.get_close_matches(name.casefold(), list(folded), n=1, cutoff=0.6)]
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return InputError(f"{source}: {what} column {name!r} not found{hint}; the columns are: "
                      f"{', '.join(columns)}{'. ' + advice if advice else ''}")
