"""Importer for the national tariff workbook (PbR / NTPS / NHS Payment Scheme layout).

Reads the admitted patient care and outpatient procedures sheet ("1 APC & OPROC"), the
outpatient attendances by treatment function sheet and the A&E by department type sheet
of a tariff workbook as published from 2016/17, into the canonical ``tariff`` resources
``apc``, ``op_attendance`` and ``ae`` (costing.schema.TABLE_SCHEMAS["tariff"]).
``write_tariff_workbook`` writes a workbook in that same layout (fixtures and examples).

Sheets are found by their header row (names vary between years): the first 40 rows of
every sheet are scanned for a row holding the expected headers, matched after folding
line breaks, non-breaking and repeated spaces and case. Cell rules:

* ``-`` (or a dash, ``n/a`` or an empty cell) is "no price" -> null.
* Numbers may be numeric cells or text with thousands separators (``"1,234.56"``) and a
  ``£`` sign; anything else is an error naming the file, sheet, Excel row and column.
* Prices must not be negative; trim points must be whole numbers of days.
* ``Yes``/``No`` (also ``Y``/``N``, ``TRUE``/``FALSE``) for the short-stay flag.
* The short-stay percentage is stored in percentage points (35.0 = 35%): text ``"35%"``
  is 35; a number of at most 1 is a fraction formatted as a percentage in Excel
  (0.35 -> 35); a number above 1 is already in points.
* Treatment function codes are strings; a numeric cell is written back with its leading
  zeros (3 digits).

The combined day case / ordinary elective price and the separate day-case and elective
prices are kept exactly as published; pricing decides which applies.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import fastexcel
import polars as pl
from openpyxl import Workbook
from openpyxl.utils import get_column_letter

from costing.errors import ImportFormatError
from costing.schema import HRG_VERSIONS, TABLE_SCHEMAS
from costing.importers.provenance import Provenance
from costing.tables import write_edition

__all__ = [
    "HEADERS",
    "ILLUSTRATIVE_NOTE",
    "SHEET_NAMES",
    "import_edition",
    "read",
    "write_tariff_workbook",
]

log = logging.getLogger(__name__)

KIND: Final = "tariff"
ILLUSTRATIVE_NOTE: Final = "ILLUSTRATIVE - not a published tariff"

# Sheet names written by write_tariff_workbook (the reader finds sheets by header instead).
SHEET_NAMES: Final[dict[str, str]] = {
    "apc": "1 APC & OPROC",
    "op_attendance": "2 OP attendances",
    "ae": "3 A&E",
}

# Rows scanned for the header row of each sheet.
_HEADER_SCAN_ROWS: Final = 40

# Text that means "no value" in a price or number cell (compared after strip + lower case).
NULL_TOKENS: Final = ("", "-", "\u2013", "\u2014", "n/a", "na", "null", "none")
_NUMBER_RE: Final = r"^-?(\d{1,3}(,\d{3})+|\d+)?(\.\d+)?$"
_TRUE_TOKENS: Final = ("yes", "y", "true")
_FALSE_TOKENS: Final = ("no", "n", "false")

# Code patterns: any HRG (v3.5 "H02", HRG4 "HN12F"); and per version for import_edition.
_ANY_HRG_RE: Final = r"^[A-Z]{1,2}\d{2}[A-Z0-9]?$"
HRG_CODE_PATTERNS: Final[dict[str, str]] = {
    "v3.5": r"^[A-Z]\d{2}[A-Z0-9]?$",
    "HRG4": r"^[A-Z]{2}\d{2}[A-Z]$",
}
_TF_CODE_RE: Final = r"^[0-9A-Z]{3}$"


@dataclass(frozen=True)
class _Col:
    """One canonical column of a sheet: how its header is recognised and its cells read."""

    name: str
    header: str  # verbatim published header (written by the writer; shown in messages)
    pattern: str  # Python regex matched against the normalised header text
    parse: str  # code | tf_code | text | price | days | flag | percent
    optional: bool = False  # a workbook may lack it (null throughout); others are required


# Headers are matched by meaning, after normalise_header (case, line breaks, double spaces
# and footnote marks folded). The verbatim headers are those of the 2016/17-2018/19
# workbooks (docs/domain.md#tariff-workbook); the patterns also read the published variants:
# "trimpoint" (2016/17) and "trim point", "tariff" (to 2018/19), "price" or "adjustment"
# (2022/23) or no such word ("Non-elective spell (£)"), "Treatment function" with or without
# "code". 2022/23 publishes only the combined day case / elective price, so the separate
# day-case and elective columns are optional.
_PRICE_WORD: Final = r"( (tariff|price|adjustment))?"
_APC: Final = (
    _Col("hrg_code", "HRG code", r"^hrg code$|^hrg$", "code"),
    _Col("hrg_name", "HRG name", r"^hrg (name|description)$", "text"),
    _Col("op_procedure_price", "Outpatient procedure tariff (£)",
         rf"^outpatient procedures?{_PRICE_WORD} \(£\)$", "price"),
    _Col("combined_dc_el_price",
         "Combined day case / ordinary elective spell tariff (£)",
         rf"^combined day ?case ?/ ?ordinary elective spell{_PRICE_WORD} \(£\)$", "price"),
    _Col("dc_price", "Day case spell tariff (£)",
         rf"^day ?case spell{_PRICE_WORD} \(£\)$", "price", optional=True),
    _Col("el_price", "Ordinary elective spell tariff (£)",
         rf"^ordinary elective spell{_PRICE_WORD} \(£\)$", "price", optional=True),
    _Col("el_trim_days", "Ordinary elective long stay trim point (days)",
         r"^ordinary elective long stay trim ?point", "days"),
    _Col("nel_price", "Non-elective spell tariff (£)",
         rf"^non[- ]?elective spell{_PRICE_WORD} \(£\)$", "price"),
    _Col("nel_trim_days", "Non-elective long stay trim point (days)",
         r"^non[- ]?elective long stay trim ?point", "days"),
    _Col("excess_bed_day_price",
         "Per day long stay payment (for days exceeding trim point) (£)",
         r"^per day long ?stay payment", "price"),
    _Col("sse_applicable", "Reduced short stay emergency tariff applicable?",
         rf"^reduced short stay emergency{_PRICE_WORD} applicable", "flag"),
    _Col("sse_percent",
         "% applied in calculation of reduced short stay emergency tariff",
         r"^% applied in (the )?calculation of (the )?reduced short stay emergency", "percent"),
    _Col("sse_price", "Reduced short stay emergency tariff (£)",
         rf"^reduced short stay emergency{_PRICE_WORD}( \(£\))?$", "price"),
)

# Outpatient prices: by the WF currency code where the header names it (2016/17 on, in
# either column order), else by words; never the "% uplift to first attendance" column.
_NOT_A_PRICE: Final = r"uplift|%|non[- ]?face"
_OP: Final = (
    _Col("treatment_function_code", "Treatment function code",
         r"^treatment function( code)?$", "tf_code"),
    _Col("treatment_function_description", "Treatment function description",
         r"^treatment function (description|name|title)$", "text"),
    _Col("first_single_price", "First attendance - single professional (WF01B) (£)",
         rf"wf01b|^(?!.*(wf0|multi|follow|{_NOT_A_PRICE})).*\bfirst\b", "price"),
    _Col("first_multi_price", "First attendance - multi-professional (WF02B) (£)",
         rf"wf02b|^(?!.*(wf0|follow|{_NOT_A_PRICE})).*\bfirst\b.*\bmulti", "price"),
    _Col("followup_single_price", "Follow-up attendance - single professional (WF01A) (£)",
         rf"wf01a|^(?!.*(wf0|multi|first|{_NOT_A_PRICE})).*\bfollow[- ]?up", "price"),
    _Col("followup_multi_price", "Follow-up attendance - multi-professional (WF02A) (£)",
         rf"wf02a|^(?!.*(wf0|first|{_NOT_A_PRICE})).*\bfollow[- ]?up.*\bmulti", "price"),
)

_AE: Final = (
    _Col("hrg_code", "HRG code", r"^hrg code$|^hrg$", "code"),
    _Col("hrg_name", "HRG name", r"^hrg (name|description)$", "text"),
    _Col("type_1_2_price", "Type 1 and 2 Departments", r"^type 1 (and|&) 2\b", "price"),
    _Col("type_3_price", "Type 3 Departments", r"^type 3\b", "price"),
)

_SPECS: Final[dict[str, tuple[_Col, ...]]] = {"apc": _APC, "op_attendance": _OP, "ae": _AE}
# Headers that identify a sheet as holding a resource (all must be in one row).
_SIGNATURE: Final[dict[str, tuple[str, ...]]] = {
    "apc": ("hrg_code", "nel_price"),
    "op_attendance": ("treatment_function_code", "first_single_price"),
    "ae": ("hrg_code", "type_1_2_price"),
}
# Sheet-name hints, used to break ties and to tell a broken sheet from an absent one.
_NAME_HINTS: Final[dict[str, str]] = {
    "apc": r"\bapc\b|oproc|admitted",
    "op_attendance": r"outpatient att|\bop ?att|opatt|outpatient",
    "ae": r"a ?& ?e\b|\bae\b|emergency (medicine|dep)|accident",
}
REQUIRED_RESOURCES: Final = ("apc",)

# Verbatim headers per resource, for callers that want them (tests, docs).
HEADERS: Final[dict[str, dict[str, str]]] = {
    res: {c.name: c.header for c in cols} for res, cols in _SPECS.items()
}

# Writer layout: which headers carry a line break / double space, and where the table starts.
_WRITER_HEADER_ROW: Final = 5
_WRITER_LINE_BREAK: Final = {"combined_dc_el_price": ("/ ", "/\n")}
_WRITER_DOUBLE_SPACE: Final = {"excess_bed_day_price": ("payment (", "payment  (")}
_WRITER_TEXT_FROM: Final = 10_000.0  # prices at or above this are written as "12,345.67" text
_WRITER_EXTRA_HEADER: Final = "Best practice tariff (BPT) name"


# --------------------------------------------------------------------------------------
# small named expressions (shared with tariff_csv)
# --------------------------------------------------------------------------------------


def normalise_header(text: object) -> str:
    """Header text folded for matching: line breaks, NBSP and runs of spaces -> one space,
    footnote marks at the end ("(£) *") dropped, spaces around "/" taken out."""
    if text is None:
        return ""
    folded = re.sub(r"\s+", " ", str(text).replace("\u00a0", " ")).strip().lower()
    folded = re.sub(r"\s*\*+$", "", folded)
    return re.sub(r" ?/ ?", " / ", folded)


def clean_text(text: pl.Expr) -> pl.Expr:
    """Cell text with whitespace runs folded and ends stripped."""
    return text.str.replace_all(r"[\s\u00a0]+", " ").str.strip_chars()


def is_blank(text: pl.Expr) -> pl.Expr:
    """True where a cleaned cell means "no value" (empty, ``-``, ``n/a`` ...)."""
    return text.is_null() | text.str.to_lowercase().is_in(list(NULL_TOKENS))


def _number_text(text: pl.Expr) -> pl.Expr:
    """Text with £, % and spaces removed, still with thousands separators."""
    return text.str.replace_all(r"[£%\s]", "")


def parse_number(num: pl.Expr, text: pl.Expr) -> pl.Expr:
    """A numeric cell's value, else the number written as text (``"1,234.56"``), else null."""
    t = _number_text(text)
    from_text = (
        pl.when(~is_blank(text) & t.str.contains(_NUMBER_RE) & (t != "") & (t != "-"))
        .then(t.str.replace_all(",", "").cast(pl.Float64, strict=False))
    )
    return pl.coalesce(num, from_text)


def bad_number(num: pl.Expr, text: pl.Expr) -> pl.Expr:
    """True where a cell holds something that is neither blank nor a number."""
    return num.is_null() & ~is_blank(text) & parse_number(num, text).is_null()


def parse_percent_points(num: pl.Expr, text: pl.Expr) -> pl.Expr:
    """Percentage in points: "35%" -> 35; a number <= 1 is a fraction (0.35 -> 35)."""
    value = parse_number(num, text)
    explicit = num.is_null() & text.str.strip_chars().str.ends_with("%")
    return (
        pl.when(explicit).then(value)
        .when(value <= 1.0).then((value * 100.0).round(9))  # 0.3 * 100 is 30.000000000000004
        .otherwise(value)
    )


def parse_flag(text: pl.Expr) -> pl.Expr:
    """Yes/No (Y/N, TRUE/FALSE) -> boolean; blank -> null."""
    low = text.str.to_lowercase()
    return (
        pl.when(low.is_in(list(_TRUE_TOKENS))).then(pl.lit(True))
        .when(low.is_in(list(_FALSE_TOKENS))).then(pl.lit(False))
        .otherwise(pl.lit(None, dtype=pl.Boolean))
    )


def bad_flag(text: pl.Expr) -> pl.Expr:
    """True where a flag cell is neither blank nor a recognised yes/no word."""
    return ~is_blank(text) & parse_flag(text).is_null()


def value_expr(parse: str, num: pl.Expr, text: pl.Expr) -> pl.Expr:
    """The canonical value of a cell for a column's parse kind."""
    if parse == "code":
        t = clean_text(text)
        return pl.when(~is_blank(t)).then(t.str.to_uppercase())
    if parse == "text":
        t = clean_text(text)
        return pl.when(t != "").then(t)
    if parse == "tf_code":
        from_num = (
            pl.when(num.is_not_null() & (num == num.round(0)))
            .then(num.cast(pl.Int64, strict=False).cast(pl.String).str.zfill(3))
        )
        t = clean_text(text)
        return pl.coalesce(from_num, pl.when(~is_blank(t)).then(t.str.to_uppercase()))
    if parse == "price":
        return parse_number(num, clean_text(text))
    if parse == "days":
        return parse_number(num, clean_text(text)).round(0).cast(pl.Int32, strict=False)
    if parse == "flag":
        return parse_flag(clean_text(text))
    if parse == "percent":
        return parse_percent_points(num, clean_text(text))
    raise ValueError(f"unknown parse kind {parse!r}")


def problem_expr(parse: str, num: pl.Expr, text: pl.Expr) -> pl.Expr:
    """A reason string where a cell cannot be used for a column's parse kind, else null."""
    t = clean_text(text)
    value = parse_number(num, t)
    none = pl.lit(None, dtype=pl.String)
    if parse == "price":
        return (
            pl.when(bad_number(num, t)).then(pl.lit("not a number"))
            .when(value < 0).then(pl.lit("negative price"))
            .otherwise(none)
        )
    if parse == "days":
        return (
            pl.when(bad_number(num, t)).then(pl.lit("not a number of days"))
            .when(value < 0).then(pl.lit("negative number of days"))
            .when(value != value.round(0)).then(pl.lit("not a whole number of days"))
            .when(value > 2**31 - 1).then(pl.lit("number of days too large"))
            .otherwise(none)
        )
    if parse == "percent":
        pct = parse_percent_points(num, t)
        return (
            pl.when(bad_number(num, t)).then(pl.lit("not a percentage"))
            .when((pct < 0) | (pct > 100)).then(pl.lit("percentage outside 0-100%"))
            .otherwise(none)
        )
    if parse == "flag":
        return pl.when(bad_flag(t)).then(pl.lit("not Yes or No")).otherwise(none)
    return none


# --------------------------------------------------------------------------------------
# locating sheets and headers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Located:
    """Where a resource's table sits in the workbook."""

    resource: str
    sheet: str
    header_index: int  # 0-based row index in the sheet (Excel row = index + 1)
    columns: Mapping[str, int]  # canonical column -> 0-based index in the loaded frame
    letters: tuple[str, ...]  # Excel column letter of each loaded frame column
    headers: tuple[str, ...]  # raw header text of each loaded frame column


def _open(source: Path) -> fastexcel.ExcelReader:
    if not source.is_file():
        raise ImportFormatError(f"{source}: no such file")
    try:
        return fastexcel.read_excel(source)
    except (fastexcel.FastExcelError, OSError) as exc:
        raise ImportFormatError(
            f"{source}: not a readable Excel workbook ({str(exc).splitlines()[0]}). "
            "Export the tariff as .xlsx, or bring it in as a canonical CSV (tariff_csv)."
        ) from None


def _load(reader: fastexcel.ExcelReader, sheet: str, dtype: Literal["string", "float"],
          n_rows: int | None = None) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """A sheet as a frame of one dtype, rows from Excel row 1, with Excel column letters."""
    loaded = reader.load_sheet(sheet, header_row=None, skip_rows=0, n_rows=n_rows, dtypes=dtype)
    letters = tuple(get_column_letter(c.absolute_index + 1) for c in loaded.available_columns())
    df = loaded.to_polars()
    return df.rename({c: f"c{j}" for j, c in enumerate(df.columns)}), letters


def _match_header_row(cells: Sequence[object], spec: tuple[_Col, ...]) -> dict[str, list[int]]:
    """Canonical column -> indices of the cells in one row whose header matches it."""
    norm = [normalise_header(c) for c in cells]
    return {
        col.name: [j for j, h in enumerate(norm) if h and re.search(col.pattern, h)]
        for col in spec
    }


def _find_header(head: pl.DataFrame, resource: str) -> tuple[int, dict[str, list[int]]] | None:
    spec = _SPECS[resource]
    for i, row in enumerate(head.rows()):
        hits = _match_header_row(row, spec)
        if all(hits[name] for name in _SIGNATURE[resource]):
            return i, hits
    return None


def _where(source: Path, sheet: str | None, row: int | None = None,
           letter: str | None = None) -> str:
    """"file, sheet 'S', row R, column C" (a CSV, with sheet None: "file, line R, column C")."""
    place = source.name if sheet is None else f"{source.name}, sheet {sheet!r}"
    if row is not None:
        place += f", {'line' if sheet is None else 'row'} {row}"
    if letter is not None:
        place += f", column {letter}"
    return place


def _check_columns(source: Path, sheet: str, resource: str, header_index: int,
                   hits: Mapping[str, list[int]], head_row: Sequence[object],
                   letters: Sequence[str]) -> dict[str, int]:
    spec = _SPECS[resource]
    found: dict[str, int] = {}
    problems: list[str] = []
    present = [str(h).replace("\n", "\\n") for h in head_row if h is not None]
    for col in spec:
        idx = hits[col.name]
        if not idx and col.optional:
            continue
        if not idx:
            close = difflib.get_close_matches(
                normalise_header(col.header), [normalise_header(h) for h in present],
                n=2, cutoff=0.6,
            )
            hint = f" (closest: {', '.join(repr(c) for c in close)})" if close else ""
            problems.append(f"no column headed {col.header!r}{hint}")
        elif len(idx) > 1:
            cols = ", ".join(f"{letters[j]} {str(head_row[j])!r}" for j in idx)
            problems.append(f"{col.header!r} matches more than one column: {cols}")
        else:
            found[col.name] = idx[0]
    if problems:
        raise ImportFormatError(
            f"{_where(source, sheet, header_index + 1)}: header row of the {resource} table: "
            + "; ".join(problems)
            + f". Headers present: {present}. Rename the header to the published wording "
            "or bring the edition in as a canonical CSV."
        )
    return found


def edition_hint(edition: str) -> str:
    """A regex finding an edition's year in a sheet name: ``2017-18`` -> 17.18, 17/18,
    2017-18, 2017/18 or 2017/2018 (the two-year 2017/19 workbook has "1a ... 17.18" and
    "1b ... 18.19")."""
    y = int(edition[:4])
    a, b = f"{y % 100:02d}", f"{(y + 1) % 100:02d}"
    return rf"(?<!\d)(20)?{a}\s?[./\-_ ]\s?(20)?{b}(?!\d)"


def _locate(reader: fastexcel.ExcelReader, source: Path,
            sheets: Mapping[str, str] | None, edition: str | None = None) -> dict[str, _Located]:
    names = list(reader.sheet_names)
    heads: dict[str, tuple[pl.DataFrame, tuple[str, ...]]] = {}

    def head_of(name: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
        # each sheet is parsed once, when first needed (a workbook has 30 sheets or more)
        if name not in heads:
            heads[name] = _load(reader, name, "string", n_rows=_HEADER_SCAN_ROWS)
        return heads[name]
    chosen: dict[str, _Located] = {}
    used: set[str] = set()
    wanted = dict(sheets or {})
    unknown = sorted(set(wanted) - set(_SPECS))
    if unknown:
        raise ImportFormatError(
            f"{source.name}: unknown tariff resource(s) {unknown}; expected {sorted(_SPECS)}"
        )
    for resource in _SPECS:
        if resource in wanted:
            sheet = wanted[resource]
            if sheet not in names:
                raise ImportFormatError(
                    f"{source.name}: no sheet named {sheet!r} (sheets: {names})"
                )
            candidates = [sheet]
        else:
            candidates = [n for n in names if n not in used]
        # sheets named like the resource first; the others only when none of those holds it
        hinted_first = [n for n in candidates if re.search(_NAME_HINTS[resource], n.lower())]
        matches = []
        for group in (hinted_first, [n for n in candidates if n not in hinted_first]):
            for sheet in group:
                hit = _find_header(head_of(sheet)[0], resource)
                if hit is not None:
                    matches.append((sheet, hit))
            if matches:
                break
        if len(matches) > 1 and edition is not None:  # a workbook of several years
            of_year = [m for m in matches if re.search(edition_hint(edition), m[0])]
            if of_year:
                matches = of_year
        if len(matches) > 1:
            hinted = [m for m in matches if re.search(_NAME_HINTS[resource], m[0].lower())]
            if len(hinted) == 1:
                matches = hinted
            else:
                raise ImportFormatError(
                    f"{source.name}: sheets {[m[0] for m in matches]} all look like the "
                    f"{resource} table; give the edition (a sheet name holding its year, "
                    f"e.g. '17.18', is then chosen) or name the sheet to use "
                    f"(sheets={{'{resource}': ...}})"
                )
        if not matches:
            spec = _SPECS[resource]
            expected = [c.header for c in spec if c.name in _SIGNATURE[resource]]
            named = [n for n in candidates if re.search(_NAME_HINTS[resource], n.lower())]
            if resource in wanted or resource in REQUIRED_RESOURCES or named:
                where = f"sheet {named[0]!r}" if named and resource not in wanted else (
                    f"sheet {wanted[resource]!r}" if resource in wanted else "any sheet"
                )
                raise ImportFormatError(
                    f"{source.name}: no {resource} table found in {where}: no row among the "
                    f"first {_HEADER_SCAN_ROWS} holds the headers {expected} (sheets: {names}). "
                    f"Check the file is a national tariff workbook (sheet like "
                    f"{SHEET_NAMES[resource]!r})."
                )
            log.warning("%s: no %s sheet found; the edition will not have that table",
                        source.name, resource)
            continue
        sheet, (header_index, hits) = matches[0]
        head, letters = head_of(sheet)
        head_row = head.row(header_index)
        columns = _check_columns(source, sheet, resource, header_index, hits, head_row, letters)
        used.add(sheet)
        chosen[resource] = _Located(
            resource=resource, sheet=sheet, header_index=header_index, columns=columns,
            letters=letters, headers=tuple("" if h is None else str(h) for h in head_row),
        )
    return chosen


# --------------------------------------------------------------------------------------
# reading one table
# --------------------------------------------------------------------------------------


def _format_problems(source: Path, sheet: str | None, problems: pl.DataFrame, what: str) -> str:
    shown = 20
    lines = [
        f"  {_where(source, sheet, r['excel_row'], r['column'])} ({r['header']!r}): "
        f"{r['reason']} (value {r['value']!r})"
        for r in problems.head(shown).iter_rows(named=True)
    ]
    more = f"\n  ... and {problems.height - shown} more" if problems.height > shown else ""
    return (
        f"{source.name}: {problems.height} cell(s) of the {what} table cannot be read:\n"
        + "\n".join(lines) + more
        + "\nPrices must be numbers (\"1,234.56\" is fine), '-' or empty for no price; "
        "fix the cells and import again."
    )


def _read_table(reader: fastexcel.ExcelReader, source: Path, loc: _Located) -> pl.DataFrame:
    spec = tuple(c for c in _SPECS[loc.resource] if c.name in loc.columns)  # optional ones may lack
    text, _ = _load(reader, loc.sheet, "string")
    nums, _ = _load(reader, loc.sheet, "float")
    body = (
        text.select([pl.col(f"c{j}").alias(f"t_{c}") for c, j in loc.columns.items()])
        .hstack(nums.select([pl.col(f"c{j}").alias(f"n_{c}") for c, j in loc.columns.items()]))
        .with_row_index("excel_row", offset=1)
        .slice(loc.header_index + 1)
    )
    return _to_canonical(
        body, spec, loc.resource, source, loc.sheet,
        letters={c.name: loc.letters[loc.columns[c.name]] for c in spec},
        headers={c.name: loc.headers[loc.columns[c.name]] for c in spec},
    )


def _to_canonical(body: pl.DataFrame, spec: tuple[_Col, ...], resource: str, source: Path,
                  sheet: str | None, *, letters: Mapping[str, str],
                  headers: Mapping[str, str], code_pattern: str | None = None,
                  kind: str = KIND) -> pl.DataFrame:
    """Turn ``t_<col>`` (text) / ``n_<col>`` (numeric) cell columns into canonical rows.

    ``body`` carries ``excel_row`` (the row number shown in messages). Shared with the
    canonical-CSV importer, which passes null numeric columns, and the MFF sheet importer
    (``kind`` "mff", its own ``code_pattern`` for provider codes).
    """
    def t(name: str) -> pl.Expr:
        return pl.col(f"t_{name}")

    def n(name: str) -> pl.Expr:
        return pl.col(f"n_{name}")

    key = spec[0]
    value_cols = [c for c in spec[1:] if c.parse not in ("text",)]
    code_text = clean_text(t(key.name))
    code_blank = is_blank(code_text) & n(key.name).is_null()
    has_values = pl.any_horizontal(
        [~(is_blank(clean_text(t(c.name))) & n(c.name).is_null()) for c in value_cols]
    )
    all_empty = pl.all_horizontal(
        [is_blank(clean_text(t(c.name))) & n(c.name).is_null() for c in spec]
    )
    if code_pattern is None:
        code_pattern = _ANY_HRG_RE if key.parse == "code" else _TF_CODE_RE
    code_value = value_expr(key.parse, n(key.name), t(key.name))
    # A row with prose in the code column and no numbers is a note or a sub-heading.
    prose = code_text.str.contains(r"\s") | (code_text.str.len_chars() > 10)
    is_note = ~has_values & (code_blank | prose)

    frame = body.with_columns(
        _empty=all_empty, _note=is_note & ~all_empty, _code=code_value,
    )
    notes = frame.filter(pl.col("_note"))
    if notes.height:
        log.info("%s: ignored %d note/sub-heading row(s) without prices (rows %s)",
                 _where(source, sheet), notes.height, notes["excel_row"].head(10).to_list())
    rows = frame.filter(~pl.col("_empty") & ~pl.col("_note"))

    none = pl.lit(None, dtype=pl.String)
    code_problem = (
        pl.when(code_blank).then(pl.lit(f"row has values but no {key.header}"))
        .when(~pl.col("_code").str.contains(code_pattern))
        .then(pl.lit(f"not a valid {key.header}"))
        .otherwise(none)
    )
    checks = [(key, code_problem)] + [
        (c, problem_expr(c.parse, n(c.name), t(c.name))) for c in spec[1:]
    ]
    problems = pl.concat(
        [
            rows.select(
                pl.col("excel_row"),
                pl.lit(letters[c.name]).alias("column"),
                pl.lit(headers[c.name]).alias("header"),
                t(c.name).alias("value"),
                expr.alias("reason"),
            ).filter(pl.col("reason").is_not_null())
            for c, expr in checks
        ]
    ).sort("excel_row", maintain_order=True)
    if problems.height:
        raise ImportFormatError(_format_problems(source, sheet, problems, resource))

    dup = rows.filter(pl.col("_code").is_duplicated())
    if dup.height:
        sample = (
            dup.group_by("_code", maintain_order=True)
            .agg(pl.col("excel_row"))
            .head(10)
            .iter_rows()
        )
        unit = "lines" if sheet is None else "rows"
        listed = "; ".join(f"{code} in {unit} {r}" for code, r in sample)
        raise ImportFormatError(
            f"{_where(source, sheet)}, column {letters[key.name]} ({headers[key.name]!r}): "
            f"duplicate {key.header}: {listed}. Each code must appear once; remove the "
            "repeated rows and import again."
        )

    canon = TABLE_SCHEMAS[kind][resource]
    out = rows.select(
        pl.col("_code").alias(key.name),
        *[value_expr(c.parse, n(c.name), t(c.name)).alias(c.name) for c in spec[1:]],
    )
    # an optional column the workbook does not have is null throughout
    return out.select([(pl.col(c) if c in out.columns else pl.lit(None)).cast(dtype).alias(c)
                       for c, dtype in canon.items()])


def read(source: Path, *, sheets: Mapping[str, str] | None = None,
         edition: str | None = None) -> dict[str, pl.DataFrame]:
    """Read a national tariff workbook into canonical tariff frames.

    Args:
        source: the .xlsx (or .xls/.xlsm) workbook.
        sheets: optional resource -> sheet name, to pick sheets by name when the header
            search finds more than one candidate (e.g. ``{"ae": "3 Emergency Medicine"}``).
        edition: the financial year wanted (``2017-18``); in a workbook of several years
            (sheets "1a APC & OPROC 17.18", "1b APC & OPROC 18.19") it picks the sheets
            whose name holds that year.

    Returns:
        ``{"apc": ..., "op_attendance": ..., "ae": ...}`` in the canonical schema; the APC
        table is required, the other two are included when their sheet is present.

    Raises:
        ImportFormatError: naming file, sheet, Excel row and column, for a missing sheet or
            header, a non-numeric or negative price, a bad flag or a duplicate code.
    """
    return _read_all(Path(source), sheets, edition)[0]


def _read_all(source: Path, sheets: Mapping[str, str] | None, edition: str | None = None
              ) -> tuple[dict[str, pl.DataFrame], list[str]]:
    """Canonical frames and the text of the title rows above the APC header."""
    reader = _open(source)
    located = _locate(reader, source, sheets, edition)
    frames = {res: _read_table(reader, source, loc) for res, loc in located.items()}
    loc = located["apc"]
    titles: list[str] = []
    if loc.header_index:
        head, _ = _load(reader, loc.sheet, "string", n_rows=loc.header_index)
        titles = [" ".join(str(v) for v in row if v is not None) for row in head.rows() if any(row)]
    return frames, titles


def check_hrg_version(frames: Mapping[str, pl.DataFrame], hrg_version: str | None,
                      where: str) -> str:
    """Validate ``hrg_version`` and that every HRG code looks like a code of that version."""
    if hrg_version is None:
        raise ImportFormatError(
            f"{where}: a tariff edition needs its HRG version: pass hrg_version='HRG4' or "
            "'v3.5' (CLI: --hrg-version HRG4). 2008/09 and earlier tariffs are on v3.5."
        )
    if hrg_version not in HRG_VERSIONS:
        raise ImportFormatError(
            f"{where}: hrg_version {hrg_version!r} is not one of {', '.join(HRG_VERSIONS)}"
        )
    pattern = HRG_CODE_PATTERNS[hrg_version]
    for resource in ("apc", "ae"):
        df = frames.get(resource)
        if df is None:
            continue
        bad = df.filter(~pl.col("hrg_code").str.contains(pattern))["hrg_code"]
        if bad.len():
            other = [v for v in HRG_VERSIONS if v != hrg_version]
            raise ImportFormatError(
                f"{where}: {bad.len()} {resource} HRG code(s) do not look like {hrg_version} "
                f"codes, e.g. {bad.head(5).to_list()}. Is the HRG version right "
                f"(the other is {', '.join(other)})?"
            )
    return hrg_version


def import_edition(
    source: Path,
    *,
    edition: str,
    into: Path,
    hrg_version: str | None = None,
    overwrite: bool = False,
    grouper: str | None = None,
    illustrative: bool | None = None,
    provenance: Provenance = Provenance(),
    sheets: Mapping[str, str] | None = None,
    status: str | None = None,
    notes: Sequence[str] = (),
    **opts: Any,
) -> Path:
    """Import a tariff workbook as ``<into>/tariff/<edition>/``.

    Args:
        source: the workbook.
        edition: financial year ``YYYY-YY`` of the tariff.
        into: tables root folder.
        hrg_version: ``HRG4`` or ``v3.5`` (required); the grouper phase goes in ``grouper``.
        overwrite: replace an existing edition folder.
        grouper: e.g. ``"HRG4+ 2016/17 Local Payment Grouper"``.
        illustrative: mark the edition illustrative; None detects the
            ``ILLUSTRATIVE_NOTE`` in the title rows.
        provenance: where the file came from, for the manifest.
        sheets: resource -> sheet name overrides (see ``read``).
        status: e.g. ``"consultation"`` for proposed prices (shown by ``costing tables
            list``; a run using such an edition warns).
        notes: further notes for the manifest.
        **opts: unknown options are refused.

    Returns:
        The edition folder.
    """
    if opts:
        raise ImportFormatError(f"{source}: unknown tariff import option(s) {sorted(opts)}")
    source = Path(source)
    frames, titles = _read_all(source, sheets, edition)
    version = check_hrg_version(frames, hrg_version, str(source))
    flagged = any("illustrative" in t.lower() for t in titles)
    if illustrative is None:
        illustrative = flagged
    all_notes = [f"title rows: {' | '.join(titles)}"] if titles else []
    missing = [r for r in _SPECS if r not in frames]
    if missing:
        all_notes.append(f"no sheet found for {', '.join(missing)}")
    apc = frames["apc"]
    if apc["dc_price"].null_count() == apc["el_price"].null_count() == apc.height:
        all_notes.append("no separate day-case or ordinary elective prices: the combined day case "
                         "/ ordinary elective price applies to both")
    all_notes.extend(notes)
    src = provenance.source(source, title=titles[0] if titles else source.stem)
    return write_edition(
        into,
        kind=KIND,
        edition=edition,
        frames=frames,
        sources=[src],
        hrg_version=version,
        grouper=grouper,
        published=provenance.published,
        illustrative=illustrative,
        description=f"National tariff {edition} ({version}) imported from workbook {source.name}",
        notes=all_notes,
        overwrite=overwrite,
        status=status,
    )


# --------------------------------------------------------------------------------------
# writer (fixtures and worked examples)
# --------------------------------------------------------------------------------------


def _writer_header(resource: str, col: _Col) -> str:
    text = col.header
    for fold in (_WRITER_LINE_BREAK, _WRITER_DOUBLE_SPACE):
        if resource == "apc" and col.name in fold:
            old, new = fold[col.name]
            text = text.replace(old, new, 1)
    return text


def _cell(parse: str, value: Any) -> Any:
    """A canonical value as the published workbook shows it."""
    if parse == "price":
        if value is None:
            return "-"
        return f"{value:,}" if value >= _WRITER_TEXT_FROM else value
    if parse == "flag":
        return None if value is None else ("Yes" if value else "No")
    if parse == "percent":
        return "-" if value is None else value / 100.0
    return value


def _write_sheet(wb: Workbook, resource: str, df: pl.DataFrame, title: str,
                 illustrative: bool) -> None:
    spec = _SPECS[resource]
    missing = [c.name for c in spec if c.name not in df.columns]
    if missing:
        raise ImportFormatError(f"write_tariff_workbook: {resource} frame lacks {missing}")
    ws = wb.create_sheet(SHEET_NAMES[resource])
    ws.cell(row=1, column=1, value=title)
    if illustrative:
        ws.cell(row=2, column=1, value=ILLUSTRATIVE_NOTE)
    note = f"Sheet {SHEET_NAMES[resource]}: prices in £; '-' = no national price"
    ws.cell(row=3, column=1, value=note)
    headers = [_writer_header(resource, c) for c in spec]
    if resource == "apc":
        headers.append(_WRITER_EXTRA_HEADER)
    for j, h in enumerate(headers, start=1):
        ws.cell(row=_WRITER_HEADER_ROW, column=j, value=h)
    parses = [c.parse for c in spec]
    for i, row in enumerate(df.select([c.name for c in spec]).iter_rows(),
                            start=_WRITER_HEADER_ROW + 1):
        for j, (parse, value) in enumerate(zip(parses, row, strict=True), start=1):
            cell = ws.cell(row=i, column=j, value=_cell(parse, value))
            if parse == "percent" and value is not None:
                cell.number_format = "0%"


def write_tariff_workbook(
    path: Path,
    apc: pl.DataFrame,
    op_attendance: pl.DataFrame | None,
    ae: pl.DataFrame | None,
    *,
    title: str,
    illustrative: bool = True,
) -> Path:
    """Write canonical tariff frames as a workbook in the official published layout.

    Title rows on top (row 2 says ``ILLUSTRATIVE - not a published tariff`` when
    ``illustrative``), the header row on row 5 with the verbatim headers (one with a line
    break, one with a double space), ``-`` for no price, prices of £10,000 and more as text
    with thousands separators, ``Yes``/``No`` for the short-stay flag and the short-stay
    percentage as a fraction formatted ``0%``. Used to build fixtures and worked examples.

    Returns:
        ``path``.
    """
    wb = Workbook()
    default = wb.active
    if default is not None:
        wb.remove(default)
    _write_sheet(wb, "apc", apc, title, illustrative)
    if op_attendance is not None:
        _write_sheet(wb, "op_attendance", op_attendance, title, illustrative)
    if ae is not None:
        _write_sheet(wb, "ae", ae, title, illustrative)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path

