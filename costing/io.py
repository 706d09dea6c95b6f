"""Reading user extracts and writing outputs: the only library module that touches user files.

Inputs (CSV, Excel, Parquet) are read with every source column as a string, so codes keep
their leading zeros; canonical columns are then typed and each row's reading problems are
recorded in ``invalid_reason`` (never a dropped row). Outputs are written atomically (a
temporary file in the same folder, then a rename) so an interrupted write never leaves a
half-written file; CSV and Excel outputs neutralise text cells that a spreadsheet would run as
a formula (leading ``= + - @``).
"""

from __future__ import annotations

import atexit
import codecs
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import polars as pl

from costing.activity import DUPLICATE_REASON
from costing.errors import ConfigError, InputError, MissingColumnsError, ValidationError
from costing.presets import (
    EXPECTED_COLUMNS,
    GENERIC_FALSE,
    GENERIC_TRUE,
    HES_INFANT_AGE_CODES,
    ColumnPreset,
    match_columns,
    missing_columns_error,
    resolve_columns,
    resolve_preset,
)
from costing.schema import (
    ACTIVITY_REQUIRED,
    ACTIVITY_SCHEMA,
    COHORT_SCHEMA,
    HES_DUMMY_DAYS,
    HRG_VERSIONS,
    PRICED_COLUMNS,
    SETTINGS,
    WINDOW_COLUMNS,
)

__all__ = [
    "write_frame",
    "atomic_path",
    "neutralise_formulas",
    "read_activity",
    "detect_setting",
    "duplicate_lines",
    "duplicate_records",
    "duplicate_warnings",
    "DUPLICATE_REASON",
    "read_cohort",
    "read_table",
    "OUTPUT_FORMATS",
    "INPUT_FORMATS",
    "SOURCE_COLUMNS",
]

logger = logging.getLogger(__name__)

PathArg = str | os.PathLike[str]
ColumnsArg = str | Mapping[str, str | Sequence[str]] | os.PathLike[str]
SheetArg = str | int | None

OUTPUT_FORMATS = (".csv", ".parquet", ".xlsx")
_EXCEL: Final = (".xlsx", ".xlsm", ".xlsb", ".xls")
INPUT_FORMATS: Final = (".csv", ".tsv", *_EXCEL, ".parquet")

#: Columns read_activity appends after the canonical and the unmapped source columns.
SOURCE_COLUMNS: Final[dict[str, pl.DataType]] = {
    "source_file": pl.String(),
    "source_row": pl.Int64(),  # 1-based data row: a CSV line number is source_row + 1
    "invalid_reason": pl.String(),  # "; "-joined reading problems, null when fine
}

_ROW: Final = "__costing_source_row__"
_RAW: Final = "__costing_raw__"
_EXTRA_FIELDS: Final = "__costing_extra_fields__"  # a CSV row's fields beyond the header's
_UTF8_CHECK_BYTES: Final = 64 * 1024 * 1024
_CHUNK: Final = 1024 * 1024
# Ages above this many years are read as invalid (a plausibility bound, not a price).
_MAX_AGE_YEARS: Final = 130
# Built-in date formats, tried in order after the user's own: ISO, the HES/UK day-first
# slash form, compact ISO, SAS DATE9 and the Oracle style. US month-first is never guessed.
_DATE_FORMATS: Final = ("%Y-%m-%d", "%d/%m/%Y", "%Y%m%d", "%d%b%Y", "%d-%b-%Y")
# Code columns upper-cased on reading (identifiers are case-sensitive and left alone).
_UPPER_CODES: Final = frozenset({"provider_code", "admission_method", "hrg_code", "spell_hrg_code"})
# A required column whose absence on a row is not a reading problem when these columns are
# all filled: in HES, DISDATE is only on a spell's last episode, and an episode with its own
# EPISTART and EPIEND is priced on them per episode (pricing checks it for the unit used).
_UNLESS_PRESENT: Final = {("apc", "discharge_date"): ("episode_start", "episode_end")}
# Two-digit codes whose leading zero a spreadsheet may have dropped ("1" -> "01").
_PAD2_CODES: Final = frozenset({"department_type"})


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp makes the file private (0600); give the output the usual umask-based mode
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


RUN_MANIFEST_NAME: Final = "run_manifest.json"


@contextmanager
def atomic_folder(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a sibling temporary folder; on success it replaces ``path`` whole.

    Everything is written into ``.<name>.costing-tmp-*`` beside ``path``; only when the
    block ends without an exception is the previous folder renamed aside, the new one
    renamed into place and the previous one deleted. A failed or interrupted run removes
    the temporary folder and leaves the previous folder as it was, complete: never a mix
    of new and old files. A folder that exists, holds files and has no run manifest is not
    ours to replace, so it is refused.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise InputError(f"{target}: the output folder is a file; name a folder")
    if target.is_dir() and any(target.iterdir()) and not (target / RUN_MANIFEST_NAME).is_file():
        raise InputError(
            f"{target}: refusing to replace this folder: it holds files and is not a costing "
            f"output folder (no {RUN_MANIFEST_NAME}); name a new or empty folder in [output] dir"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.costing-tmp-"))
    os.chmod(work, 0o777 & ~_umask())
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.costing-old-"))
        os.rmdir(old)
        os.rename(target, old)
    try:
        os.rename(work, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        shutil.rmtree(work, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def refuse_overwriting_inputs(outputs: Iterable[str | os.PathLike[str]],
                              inputs: Iterable[str | os.PathLike[str]]) -> None:
    """Raise InputError when an output path is, or is a folder holding, an input file.

    An output file that resolves to an extract, cohort, run file or table would destroy the
    user's data; an output folder that holds one would be replaced with it.
    """
    ins = [(Path(i), Path(i).resolve()) for i in inputs]
    for out in outputs:
        o = Path(out).resolve()
        for given, i in ins:
            if o == i or o in i.parents:
                what = "is" if o == i else "holds"
                raise InputError(
                    f"{out}: refusing to write here: the output {what} the input {given}; "
                    "choose another output path"
                )


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


# --------------------------------------------------------------------------------------
# Reading any supported file as strings
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Strings:
    """A file read with every column as String, plus the 1-based data row in ``_ROW``."""

    frame: pl.LazyFrame
    headers: list[str]
    source: str  # for messages: the path, plus the sheet for Excel


_TRANSCODE_DIR: list[Path] = []


def _transcode_dir() -> Path:
    if not _TRANSCODE_DIR:
        d = Path(tempfile.mkdtemp(prefix="costing-utf8-"))
        atexit.register(shutil.rmtree, d, True)
        _TRANSCODE_DIR.append(d)
    return _TRANSCODE_DIR[0]


def _codec(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise InputError(
            f"unknown encoding {encoding!r}; use 'utf8' (default) or 'latin1' "
            "(also any Python codec name, e.g. 'cp1252')"
        ) from None


def _check_utf8(path: Path) -> None:
    """Refuse a file that is not UTF-8 (checks the first 64 MiB), pointing at the byte."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    done = 0
    lines = 1
    with path.open("rb") as fh:
        while done < _UTF8_CHECK_BYTES:
            chunk = fh.read(_CHUNK)
            final = not chunk
            try:
                decoder.decode(chunk, final)
            except UnicodeDecodeError as exc:
                bad_at = max(exc.start, 0)
                line = lines + chunk[:bad_at].count(b"\n")
                byte = chunk[bad_at] if bad_at < len(chunk) else 0
                raise InputError(
                    f"{path}: not valid UTF-8 (line {line}, byte 0x{byte:02x}). The file is "
                    "probably latin-1 / Windows-1252 (for example saved by Excel): read it with "
                    "encoding='latin1', or re-save it as CSV UTF-8."
                ) from None
            if final:
                return
            lines += chunk.count(b"\n")
            done += len(chunk)


def _to_utf8(path: Path, codec: str) -> Path:
    """Stream a file in another encoding into a temporary UTF-8 copy (removed at exit)."""
    fd, tmp = tempfile.mkstemp(dir=_transcode_dir(), suffix=".csv")
    os.close(fd)
    try:
        with (
            path.open("r", encoding=codec, newline="") as src,
            open(tmp, "w", encoding="utf-8", newline="") as dst,
        ):
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: cannot be decoded as {codec} ({exc.reason} at byte {exc.start} of a "
            "chunk); check the encoding option"
        ) from None
    return Path(tmp)


def _check_delimiter(headers: list[str], source: str) -> None:
    if len(headers) != 1:
        return
    for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
        if sep in headers[0]:
            raise InputError(
                f"{source}: the header has one column {headers[0][:60]!r} that contains "
                f"'{sep}': the file looks {name}-separated. Save it as comma-separated CSV"
                + (" (or name it .tsv)" if sep == "\t" else "")
                + " and read it again."
            )


def _scan_csv(path: Path, encoding: str, separator: str) -> _Strings:
    codec = _codec(encoding)
    if codec in ("utf-8", "utf-8-sig"):
        _check_utf8(path)
        scan_path = path
    else:
        scan_path = _to_utf8(path, codec)
    lf = pl.scan_csv(
        scan_path,
        infer_schema=False,
        separator=separator,
        row_index_name=_ROW,
        row_index_offset=1,
    )
    try:
        schema = lf.collect_schema()
    except pl.exceptions.NoDataError:
        raise InputError(
            f"{path}: the file is empty (no header row). A file with a header row and no data "
            "rows is accepted; an empty file is not: check the export."
        ) from None
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: cannot read as CSV ({exc})") from None
    headers = [c for c in schema.names() if c != _ROW]
    _check_delimiter(headers, str(path))
    # Read again with one more column than the header: a row with more fields than the header
    # fills it (a value with an unquoted comma shifts the fields after it), and gets a reason
    # (see _plan) rather than failing the whole read when the frame is collected.
    lf = pl.scan_csv(
        scan_path,
        has_header=True,
        schema={**{h: pl.String for h in headers}, _EXTRA_FIELDS: pl.String},
        separator=separator,
        truncate_ragged_lines=True,
        row_index_name=_ROW,
        row_index_offset=1,
    )
    return _Strings(lf, headers, str(path))


def _read_excel(path: Path, sheet: SheetArg, drop_blank: bool = True) -> _Strings:
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as exc:  # fastexcel raises its own (non-CostingError) types
        raise InputError(f"{path}: cannot open as an Excel workbook ({exc})") from None
    names = list(reader.sheet_names)
    listing = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names))
    if sheet is None:
        chosen: str | int = 0
    elif isinstance(sheet, int) and not isinstance(sheet, bool):
        if not 0 <= sheet < len(names):
            raise InputError(
                f"{path}: no sheet number {sheet} (sheets are numbered from 0): {listing}"
            )
        chosen = sheet
    elif isinstance(sheet, str) and sheet in names:
        chosen = sheet
    else:
        raise InputError(f"{path}: no sheet named {sheet!r}; the workbook has: {listing}")
    name = names[chosen] if isinstance(chosen, int) else chosen
    source = f"{path} [sheet {name!r}]"
    if not names:
        raise InputError(f"{path}: the workbook has no sheets")
    try:
        df = reader.load_sheet(chosen, header_row=0, dtypes="string").to_polars()
    except Exception as exc:
        raise InputError(f"{source}: cannot read the sheet ({exc})") from None
    if df.width == 0:
        raise InputError(
            f"{source}: the sheet is empty (no header row); choose the sheet with the data"
        )
    df = df.with_row_index(_ROW, offset=1)
    blank = pl.all_horizontal(pl.exclude(_ROW).is_null())
    n_blank = df.select(blank.sum()).item() if drop_blank else 0
    if n_blank:
        logger.info("%s: %d completely blank rows skipped", source, n_blank)
        df = df.filter(~blank)
    headers = [c for c in df.columns if c != _ROW]
    _check_delimiter(headers, source)
    return _Strings(df.lazy(), headers, source)


def _scan_parquet(path: Path) -> _Strings:
    lf = pl.scan_parquet(path, row_index_name=_ROW, row_index_offset=1)
    try:
        schema = lf.collect_schema()
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"{path}: cannot read as Parquet ({exc})") from None
    nested = [n for n, t in schema.items() if t.is_nested()]
    if nested:
        raise InputError(
            f"{path}: nested (list/struct) column(s) {', '.join(nested)} cannot be read as "
            "activity columns; flatten them first"
        )
    headers = [c for c in schema.names() if c != _ROW]
    return _Strings(lf.with_columns(pl.col(headers).cast(pl.String)), headers, str(path))


def _extra_fields(strings: _Strings) -> list[str]:
    """The column holding a CSV row's fields beyond the header's, when the input has one."""
    return [_EXTRA_FIELDS] if _EXTRA_FIELDS in strings.frame.collect_schema().names() else []


def _without_extra_fields(frame: pl.DataFrame, source: str) -> pl.DataFrame:
    """``frame`` without the extra-fields column; a row that has some is an error (a table
    or cohort has no row-level status to put it in)."""
    if _EXTRA_FIELDS not in frame.columns:
        return frame
    rows = frame.with_row_index("_r", offset=1).filter(pl.col(_EXTRA_FIELDS).is_not_null())["_r"]
    if rows.len():
        raise InputError(
            f"{source}: row(s) {', '.join(map(str, rows.head(5).to_list()))} have more fields than the "
            f"header ({frame.width - 1} columns); quote values that contain a comma, or fix the export")
    return frame.drop(_EXTRA_FIELDS)


def _read_strings(
    path: PathArg, sheet: SheetArg = None, encoding: str = "utf8", drop_blank: bool = True
) -> _Strings:
    """Read any supported input with every column as String (Excel blank rows dropped)."""
    p = Path(path)
    ext = p.suffix.lower()
    if ext not in INPUT_FORMATS:
        raise InputError(
            f"{p}: cannot read {ext or 'a file without extension'} files; "
            f"use one of {', '.join(INPUT_FORMATS)}"
        )
    if not p.is_file():
        raise InputError(f"{p}: file not found")
    if ext in _EXCEL:
        return _read_excel(p, sheet, drop_blank)
    if ext == ".parquet":
        return _scan_parquet(p)
    return _scan_csv(p, encoding, "\t" if ext == ".tsv" else ",")


# --------------------------------------------------------------------------------------
# Typing canonical columns: small named expressions over a cleaned string
# --------------------------------------------------------------------------------------


def _clean(col: str) -> pl.Expr:
    """Strip a string column; empty (or blank) becomes null."""
    s = pl.col(col).str.strip_chars()
    return pl.when(s != "").then(s)


def parse_date_expr(raw: pl.Expr, date_format: str | None = None) -> pl.Expr:
    """Date from a string in the user's format, ISO, dd/mm/yyyy, yyyymmdd, DATE9; else null.

    An ISO date with a time part (``2001-09-27 00:00:00``, as Excel cells read) keeps its date.
    """
    formats = ((date_format,) if date_format else ()) + _DATE_FORMATS
    tries = [raw.str.strptime(pl.Date, f, strict=False) for f in formats]
    iso_prefix = (
        pl.when(raw.str.contains(r"^\d{4}-\d{2}-\d{2}[ T]"))
        .then(raw.str.slice(0, 10))
        .str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    )
    return pl.coalesce(*tries, iso_prefix)


def _date(c: str, raw: pl.Expr, preset: ColumnPreset) -> tuple[pl.Expr, pl.Expr]:
    parsed = parse_date_expr(raw, preset.date_format)
    dummy = parsed.is_in(HES_DUMMY_DAYS)
    typed = pl.when(~dummy).then(parsed)
    reason = (
        pl.when(raw.is_not_null() & parsed.is_null())
        .then(pl.format(f"{c}: unparseable '{{}}'", raw))
        .when(dummy)
        .then(pl.format(f"{c}: HES dummy date {{}}", parsed.dt.to_string("%Y-%m-%d")))
    )
    return typed, reason


def _integer(c: str, raw: pl.Expr, preset: ColumnPreset) -> tuple[pl.Expr, pl.Expr]:
    num = raw.cast(pl.Float64, strict=False)
    ok = num.is_finite() & (num >= 0) & (num < 2**31)
    what = "a whole number >= 0"
    if c == "age":
        ok = ok & (num <= _MAX_AGE_YEARS)
        what = f"an age in years (0-{_MAX_AGE_YEARS}, or HES 7001-7007 for under one)"
        infant = num.is_in([float(code) for code in HES_INFANT_AGE_CODES])  # "7003" or "7003.0"
        typed: pl.Expr = (
            pl.when(infant).then(pl.lit(0, pl.Int32)).when(ok).then(num.floor().cast(pl.Int32))
        )
    else:
        typed = pl.when(ok).then(num.floor().cast(pl.Int32))
    reason = pl.when(raw.is_not_null() & typed.is_null()).then(
        pl.format(f"{c}: not {what} '{{}}'", raw)
    )
    return typed, reason


def _boolean(c: str, raw: pl.Expr, preset: ColumnPreset) -> tuple[pl.Expr, pl.Expr]:
    nulls = list(preset.null_values.get(c, ()))
    trues = preset.true_values.get(c)
    if trues:
        typed = (
            pl.when(raw.is_null() | raw.is_in(nulls)).then(None).otherwise(raw.is_in(list(trues)))
        )
        return typed, pl.lit(None, pl.String)
    low = raw.str.to_lowercase()
    typed = (
        pl.when(low.is_in(list(GENERIC_TRUE)))
        .then(True)
        .when(low.is_in(list(GENERIC_FALSE)))
        .then(False)
        .otherwise(pl.lit(None, pl.Boolean))
    )
    reason = pl.when(raw.is_not_null() & typed.is_null() & ~raw.is_in(nulls)).then(
        pl.format(f"{c}: not a yes/no value '{{}}'", raw)
    )
    return typed, reason


def _code(c: str, raw: pl.Expr, preset: ColumnPreset) -> tuple[pl.Expr, pl.Expr]:
    typed = raw
    if c in _UPPER_CODES:
        typed = typed.str.to_uppercase()
    if c in _PAD2_CODES:
        typed = pl.when(typed.str.contains(r"^\d$")).then(pl.lit("0") + typed).otherwise(typed)
    return typed, pl.lit(None, pl.String)


def _hrg_version_column(c: str, raw: pl.Expr, preset: ColumnPreset) -> tuple[pl.Expr, pl.Expr]:
    ok = raw.is_in(list(HRG_VERSIONS))
    typed = pl.when(ok).then(raw)
    reason = pl.when(raw.is_not_null() & ~ok).then(
        pl.format(f"hrg_version: unknown '{{}}' (expected {' or '.join(HRG_VERSIONS)})", raw)
    )
    return typed, reason


_Parser = Callable[[str, pl.Expr, ColumnPreset], tuple[pl.Expr, pl.Expr]]


def _parser_for(c: str) -> _Parser:
    if c == "hrg_version":
        return _hrg_version_column
    dtype = ACTIVITY_SCHEMA[c]
    if dtype == pl.Date:
        return _date
    if dtype == pl.Int32:
        return _integer
    if dtype == pl.Boolean:
        return _boolean
    return _code


@dataclass(frozen=True)
class _Plan:
    """What to select from one file: typed canonical columns, reasons, extras."""

    staged: pl.LazyFrame  # source strings + _RAW<c> cleaned columns
    typed: dict[str, pl.Expr]  # canonical column -> expression over staged
    reasons: list[tuple[str, str, pl.Expr]]  # (canonical, source column, reason expr)
    extras: dict[str, str]  # source header -> output name
    source_file: str


def _plan(strings: _Strings, preset: ColumnPreset, source_file: str) -> _Plan:
    setting = preset.setting
    found = resolve_columns(preset, strings.headers, strings.source)
    if preset.hrg_version is not None:
        found.pop("hrg_version", None)
    elif "hrg_code" in found and "hrg_version" not in found:
        raise ConfigError(
            f"{strings.source}: say which HRG version the {found['hrg_code']!r} column holds: "
            f"hrg_version='HRG4' or 'v3.5' (TOML: [options] hrg_version = \"HRG4\"), "
            "or add an hrg_version column"
        )
    staged = strings.frame.with_columns(_clean(src).alias(_RAW + c) for c, src in found.items())
    typed: dict[str, pl.Expr] = {}
    reasons: list[tuple[str, str, pl.Expr]] = []
    if _EXTRA_FIELDS in strings.frame.collect_schema().names():
        staged = staged.with_columns(pl.col(_EXTRA_FIELDS).alias(_RAW + "row"))
        reasons.append(("row", "(row)", pl.when(pl.col(_EXTRA_FIELDS).is_not_null()).then(pl.lit(
            f"row: more fields than the header's {len(strings.headers)} (a value with an unquoted "
            "comma? its fields may be shifted)"))))
    required = ACTIVITY_REQUIRED[setting]
    for c, dtype in ACTIVITY_SCHEMA.items():
        if c == "setting":
            typed[c] = pl.lit(setting, pl.String)
            continue
        if c == "hrg_version" and preset.hrg_version is not None:
            typed[c] = pl.lit(preset.hrg_version, pl.String)
            continue
        if c not in found:
            typed[c] = pl.lit(None, dtype)
            continue
        raw = pl.col(_RAW + c)
        value, reason = _parser_for(c)(c, raw, preset)
        typed[c] = value.cast(dtype)
        if c in required:
            missing = raw.is_null()
            instead = _UNLESS_PRESENT.get((setting, c), ())
            if instead and all(a in found for a in instead):
                missing = missing & ~pl.all_horizontal(pl.col(_RAW + a).is_not_null() for a in instead)
            reason = pl.coalesce(
                reason,
                pl.when(missing).then(pl.lit(f"{c}: missing (required for {setting})")),
            )
        reasons.append((c, found[c], reason))
    used = set(found.values())
    # a name pricing or windows write (cost, status, pod, ...) would be silently replaced
    taken = set(ACTIVITY_SCHEMA) | set(SOURCE_COLUMNS) | set(PRICED_COLUMNS) | {"spell_key"}
    extras: dict[str, str] = {}
    for h in strings.headers:
        if h in used:
            continue
        out = h
        if h in taken:
            out = f"{h}_original"
            logger.warning(
                "%s: column %r kept as %r (the name is reserved)", strings.source, h, out
            )
        extras[h] = out
    return _Plan(staged, typed, reasons, extras, source_file)


def _invalid_reason(plan: _Plan) -> pl.Expr:
    if not plan.reasons:
        return pl.lit(None, pl.String)
    joined = pl.concat_str([r for _, _, r in plan.reasons], separator="; ", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def _canonical_frame(plan: _Plan) -> pl.LazyFrame:
    return plan.staged.select(
        *(e.alias(c) for c, e in plan.typed.items()),
        *(pl.col(h).alias(out) for h, out in plan.extras.items()),
        pl.lit(plan.source_file, pl.String).alias("source_file"),
        pl.col(_ROW).cast(pl.Int64).alias("source_row"),
        _invalid_reason(plan).alias("invalid_reason"),
    )


def _failures(plan: _Plan) -> pl.LazyFrame:
    schema = {"row": pl.Int64(), "column": pl.String(), "value": pl.String(), "reason": pl.String()}
    parts = [
        plan.staged.select(
            pl.col(_ROW).cast(pl.Int64).alias("row"),
            pl.lit(src, pl.String).alias("column"),
            pl.col(_RAW + c).alias("value"),
            reason.cast(pl.String).alias("reason"),
        ).filter(pl.col("reason").is_not_null())
        for c, src, reason in plan.reasons
    ]
    if not parts:
        return pl.LazyFrame(schema=schema)
    return (
        pl.concat(parts)
        .with_columns(pl.lit(plan.source_file).alias("file"))
        .sort("row", maintain_order=True)
    )


def _is_duplicate() -> pl.Expr:
    """A record whose id an earlier record (of this read: every file, in order) already has."""
    rid = pl.col("record_id")
    return rid.is_not_null() & ~rid.is_first_distinct()


def _with_duplicate_reason() -> pl.Expr:
    """``invalid_reason`` with :data:`DUPLICATE_REASON` appended on a repeated record id
    (pricing gives such a record the duplicate_record status: it is never priced twice)."""
    reason = pl.col("invalid_reason")
    joined = pl.concat_str([reason, pl.lit(DUPLICATE_REASON)], separator="; ", ignore_nulls=True)
    return pl.when(_is_duplicate()).then(joined).otherwise(reason).alias("invalid_reason")


def _raise_on_duplicates(frame: pl.LazyFrame, sources: list[str]) -> None:
    """Strict mode: a repeated record id (within a file, or a file given twice) is an error."""
    dups = frame.select("record_id", "source_file", "source_row").with_columns(
        _is_duplicate().alias("_dup")).filter(pl.col("_dup")).collect()
    if not dups.height:
        return
    same = sorted({s for s in sources if sources.count(s) > 1})
    failures = dups.select(
        pl.col("source_row").alias("row"), pl.lit("record_id").alias("column"),
        pl.col("record_id").alias("value"), pl.lit(DUPLICATE_REASON.split(": ", 1)[1]).alias("reason"),
        pl.col("source_file").alias("file"))
    source = sources[0] if len(sources) == 1 else f"{len(sources)} files ({', '.join(sources)})"
    if same:
        source += f"; the same file given twice: {', '.join(same)}"
    raise ValidationError(source, failures)


def duplicate_records(activity: pl.DataFrame | pl.LazyFrame) -> pl.DataFrame:
    """Per input file, the records whose id repeats an earlier record's (as
    :func:`read_activity` marks them): ``source_file``, ``n_duplicates`` and the first
    such row (``first_row``). Empty when there are none."""
    return (activity.lazy().filter(pl.col("invalid_reason").str.contains(DUPLICATE_REASON, literal=True))
            .group_by("source_file", maintain_order=True)
            .agg(pl.len().alias("n_duplicates"), pl.col("source_row").min().alias("first_row"))
            .collect())


def duplicate_warnings(activity: pl.DataFrame | pl.LazyFrame) -> list[str]:
    """One file-level line per input file with repeated record ids (see
    :func:`duplicate_records`), for ``costing price`` and ``costing run`` alike."""
    if "invalid_reason" not in activity.lazy().collect_schema().names():
        return []
    return duplicate_lines(duplicate_records(activity))


def duplicate_lines(records: pl.DataFrame) -> list[str]:
    """The warning of each row of a :func:`duplicate_records` table (the Spark run's sums
    over its patient buckets too)."""
    return [f"{row['source_file']}: {row['n_duplicates']:,} record(s) repeat an earlier record's id "
            f"(first at row {row['first_row']}); they have status duplicate_record and are not "
            "priced (--strict makes this an error)"
            for row in records.iter_rows(named=True)]


def detect_setting(path: PathArg, columns: ColumnsArg = "hes", sheet: SheetArg = None,
                   encoding: str = "utf8") -> tuple[str, dict[str, str]]:
    """The setting of an extract, told from its columns: the one setting whose required
    columns (through ``columns``) the file has. Returns it and the columns that told it
    (canonical name -> the file's header).

    Raises:
        InputError: no setting's required columns are all there (with what each lacks), or
            more than one setting's are (say which with ``setting=``/``--apc``...).
    """
    headers = _read_strings(path, sheet, encoding).headers
    fits: dict[str, dict[str, str]] = {}
    lacks: dict[str, MissingColumnsError] = {}
    for setting in SETTINGS:
        preset = resolve_preset(columns, setting)
        try:
            found = resolve_columns(preset, headers, str(path))
        except MissingColumnsError as exc:
            lacks[setting] = exc
            continue
        fits[setting] = {c: found[c] for c in EXPECTED_COLUMNS[setting] if c in found}
    if len(fits) == 1:
        return next(iter(fits.items()))
    if fits:
        raise InputError(
            f"{path}: its columns fit more than one setting ({', '.join(fits)}); say which, "
            f"e.g. --{next(iter(fits))} {Path(path).name} (or setting=... in Python)")
    why = "; ".join(f"{s}: {', '.join(e.missing)}" for s, e in lacks.items())
    raise InputError(
        f"{path}: cannot tell its setting from its columns (no setting's required columns are "
        f"all there; missing per setting: {why}); say which with --apc/--op/--ae or --setting, "
        "or map the columns with --columns")


def read_activity(
    path: PathArg | Sequence[PathArg],
    setting: str,
    columns: ColumnsArg = "hes",
    sheet: SheetArg = None,
    encoding: str = "utf8",
    strict: bool = False,
    hrg_version: str | None = None,
    date_format: str | None = None,
) -> pl.LazyFrame:
    """Read an activity extract into the canonical activity frame (lazily where possible).

    Every source column is read as a string (codes keep leading zeros), the canonical columns
    are found through a column preset or mapping and typed, and every row comes out: a value
    that cannot be read becomes null and its problem is written to ``invalid_reason``.

    Args:
        path: a .csv/.tsv, .xlsx/.xlsm/.xlsb/.xls or .parquet file, or a list of them (read
            with the same settings and concatenated; columns missing from some files are null).
        setting: ``apc``, ``op`` or ``ae``.
        columns: a preset name (``hes``, ``hes35``, ``canonical``), a mapping
            ``{canonical: "their column" | [alternatives]}``, or a TOML mapping file path.
        sheet: Excel sheet name or 0-based index (default: the first sheet).
        encoding: CSV encoding, ``utf8`` (a byte-order mark is fine) or ``latin1`` (any Python
            codec name works; non-UTF-8 files are transcoded to a temporary UTF-8 copy).
        strict: raise ValidationError listing every problem instead of returning rows with
            ``invalid_reason`` (this reads the whole input once).
        hrg_version: the version of the HRG codes (``HRG4`` / ``v3.5``); overrides the preset's.
        date_format: a strptime format (e.g. ``%d/%m/%Y``) tried before the built-in ones.

    Returns:
        A LazyFrame with every ``ACTIVITY_SCHEMA`` column (absent optional ones as typed
        nulls), then every unmapped source column (original name, string values), then
        ``source_file``, ``source_row`` (1-based data row) and ``invalid_reason``. CSV and
        Parquet inputs are scanned lazily, so large files stream.

    Raises:
        InputError: unreadable file: unknown extension, empty file, wrong delimiter, unknown
            sheet, not UTF-8 without ``encoding='latin1'``.
        MissingColumnsError: a required canonical column is not found (with close matches).
        ConfigError: unknown preset, setting or HRG version, or a bad mapping.
        ValidationError: ``strict=True`` and some value cannot be read or a required value is
            missing; ``failures`` has columns row, column, value, reason (and file).

    Example:
        >>> lf = read_activity("apc.csv", setting="apc", columns="hes")  # doctest: +SKIP
        >>> lf.filter(pl.col("invalid_reason").is_not_null()).collect()  # doctest: +SKIP
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths:
        raise InputError("read_activity: no input file given")
    preset = resolve_preset(columns, setting, hrg_version=hrg_version, date_format=date_format)
    plans = [_plan(_read_strings(p, sheet, encoding), preset, str(p)) for p in paths]
    if strict:
        failures = pl.concat([_failures(pl_) for pl_ in plans], how="diagonal").collect()
        if failures.height:
            source = (
                plans[0].source_file
                if len(plans) == 1
                else (f"{len(plans)} files ({', '.join(p.source_file for p in plans)})")
            )
            raise ValidationError(source, failures)
    frames = [_canonical_frame(p) for p in plans]
    out = frames[0] if len(frames) == 1 else pl.concat(frames, how="diagonal_relaxed")
    if strict:
        _raise_on_duplicates(out, [p.source_file for p in plans])
    out = out.with_columns(_with_duplicate_reason())
    logger.debug(
        "read_activity: %d file(s), setting %s, preset %s", len(paths), setting, preset.name
    )
    return out


# --------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------


def read_cohort(
    path: PathArg,
    columns: Mapping[str, str | Sequence[str]] | None = None,
    sheet: SheetArg = None,
    encoding: str = "utf8",
    date_format: str | None = None,
) -> pl.DataFrame:
    """Read a cohort file (one row per patient) and validate it.

    Columns are read as strings, matched to the canonical cohort names (``patient_id``,
    ``index_date``, ``group``, ``site``, ``matched_set``, ``weight``, ``end_of_follow_up``;
    case-insensitive) or to ``columns`` (``{canonical: "their column"}``), dates are parsed
    (ISO, dd/mm/yyyy, yyyymmdd, DATE9, or ``date_format``), then the frame goes through
    ``costing.cohort.validate_cohort``.

    Raises:
        InputError: unreadable file (see ``read_activity``).
        MissingColumnsError: ``patient_id`` or ``index_date`` not found (with close matches).
        ConfigError: a mapping key that is not a cohort column.
        CohortError: (an InputError from ``costing.cohort``) every problem at once, with the
            1-based data row: unparseable or dummy dates, duplicate patients, bad weights.
    """
    from costing.cohort import COHORT_REQUIRED, validate_cohort

    wanted: dict[str, tuple[str, ...]] = {c: (c,) for c in COHORT_SCHEMA}
    for key, value in (columns or {}).items():
        if key not in COHORT_SCHEMA:
            raise ConfigError(
                f"{key!r} is not a cohort column; use one of {', '.join(COHORT_SCHEMA)}"
            )
        wanted[key] = (value,) if isinstance(value, str) else tuple(value)
    strings = _read_strings(path, sheet, encoding)
    found = match_columns(wanted, strings.headers)
    # a column the caller maps must be there (a typo would silently drop e.g. the matched sets)
    missing = [c for c in (*COHORT_REQUIRED, *(columns or {})) if c not in found]
    if missing:
        raise missing_columns_error(
            strings.source, wanted, missing, strings.headers, list(found.values())
        )
    exprs: list[pl.Expr] = []
    for c, src in found.items():
        raw = _clean(src)
        if COHORT_SCHEMA[c] == pl.Date:
            iso = parse_date_expr(raw, date_format).dt.to_string("%Y-%m-%d")
            exprs.append(pl.coalesce(iso, raw).alias(c))
        else:
            exprs.append(raw.alias(c))
    used = set(found.values())
    extras = [pl.col(h) for h in strings.headers if h not in used and h not in found]
    frame = strings.frame.select(*exprs, *extras, *_extra_fields(strings)).collect()
    frame = _without_extra_fields(frame, strings.source)
    return validate_cohort(frame, source=strings.source)


# --------------------------------------------------------------------------------------
# Reading back our own outputs
# --------------------------------------------------------------------------------------

_KNOWN_DTYPES: Final[dict[str, pl.DataType]] = {
    **ACTIVITY_SCHEMA,
    **PRICED_COLUMNS,
    **COHORT_SCHEMA,
    **WINDOW_COLUMNS,
    **SOURCE_COLUMNS,
}


def _from_text(c: str, dtype: pl.DataType) -> pl.Expr:
    s = pl.col(c)
    if dtype == pl.String:
        return pl.when(s.str.contains(r"^'[=+\-@\t\r]")).then(s.str.slice(1)).otherwise(s)
    if dtype == pl.Date:
        return s.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    if dtype == pl.Boolean:
        low = s.str.to_lowercase()
        return pl.when(low == "true").then(True).when(low == "false").then(False)
    if dtype.is_integer():
        return s.cast(pl.Float64, strict=False).cast(dtype, strict=False)
    return s.cast(dtype, strict=False)


def _excel_dtype(dtype: pl.DataType) -> str:
    if dtype == pl.Float64:
        return "float"
    if dtype.is_integer():
        return "int"
    if dtype == pl.Date:
        return "date"
    if dtype == pl.Boolean:
        return "boolean"
    return "string"


def _read_excel_typed(
    path: Path, sheet: SheetArg, known: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """Read one of our own sheets with native cell types (Excel keeps 15 significant digits)."""
    import fastexcel

    strings = _read_excel(path, sheet, drop_blank=False)  # sheet checks and messages
    dtypes = {h: _excel_dtype(known.get(h, pl.String())) for h in strings.headers}
    reader = fastexcel.read_excel(str(path))
    chosen: str | int = 0 if sheet is None else sheet
    try:
        df = reader.load_sheet(chosen, header_row=0, dtypes=dtypes).to_polars()  # type: ignore[arg-type]
    except Exception as exc:
        raise InputError(
            f"{strings.source}: a cell does not fit its column's type ({exc}); "
            "was the file edited by hand?"
        ) from None
    exprs = []
    for c in df.columns:
        dtype = known.get(c, pl.String())
        exprs.append(
            (_from_text(c, dtype) if dtype == pl.String else pl.col(c).cast(dtype)).alias(c)
        )
    return df.with_columns(exprs)


def read_table(
    path: PathArg, sheet: SheetArg = None, schema: Mapping[str, pl.DataType] | None = None
) -> pl.DataFrame:
    """Read back one of our own outputs (priced records, window costs, cohort) with its dtypes.

    Columns with a known name (activity, priced, window, cohort and source columns) get
    their schema dtype; any other column stays a string (codes keep their leading zeros). Text
    that ``write_frame`` neutralised (``'=...``) is restored. Parquet keeps its own dtypes;
    Excel numbers keep Excel's 15 significant digits. ``schema`` types further columns (e.g.
    those of a coverage table); other unknown columns stay text, since guessing would turn
    codes such as ``110`` into numbers.

    Raises:
        InputError: unreadable file, or a known column whose values do not fit its dtype.
    """
    p = Path(path)
    ext = p.suffix.lower()
    if ext in _EXCEL:
        if not p.is_file():
            raise InputError(f"{p}: file not found")
        return _read_excel_typed(p, sheet, {**_KNOWN_DTYPES, **(schema or {})})
    strings = _read_strings(p, sheet, drop_blank=False)
    if ext == ".parquet":
        return pl.read_parquet(p)
    df = _without_extra_fields(strings.frame.drop(_ROW).collect(), strings.source)
    known = {c: t for c, t in {**_KNOWN_DTYPES, **(schema or {})}.items() if c in df.columns}
    typed = df.with_columns(_from_text(c, known.get(c, pl.String())).alias(c) for c in df.columns)
    for c in known:
        bad = typed[c].is_null() & df[c].is_not_null() & (df[c].str.strip_chars() != "")
        if bad.any():
            row = int(bad.arg_max() or 0) + 1
            raise InputError(
                f"{strings.source}: column {c!r} should hold {known[c]} values, but row {row} "
                f"has {df[c][row - 1]!r}; was the file edited by hand?"
            )
    return typed
