"""Table registry: versioned editions on disk, verified on load, immutable in memory.

Layout: ``<root>/<kind>/<edition>/manifest.json`` plus one canonical CSV (or Parquet) per
resource. ``load_tables`` reads every edition under one or more roots, checks each file's
sha256, schema and primary key against its manifest and the canonical schema, and returns
a frozen ``TableSet``. ``write_edition`` is what importers call to create an edition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from costing.errors import (
    EditionNotFoundError,
    ManifestError,
    TableError,
    TableIntegrityError,
    TableKeyError,
    TableMissingError,
    TableSchemaError,
)
from costing.schema import (
    HRG_VERSIONS,
    NULLABLE_KEY_COLUMNS,
    TABLE_KINDS,
    TABLE_PRIMARY_KEYS,
    TABLE_SCHEMAS,
    dtype_from_name,
    dtype_name,
)

__all__ = [
    "Source",
    "Change",
    "FieldSpec",
    "Resource",
    "Manifest",
    "Edition",
    "TableSet",
    "load_tables",
    "write_edition",
    "shipped_tables_path",
    "sha256_file",
    "edition_dates",
    "financial_year_of",
]

MANIFEST_NAME = "manifest.json"
# One per tables folder: the sha256 of every manifest, in `sha256sum -c` format, so that a
# changed byte anywhere (a manifest's free text included) is refused.
CHECKSUMS_NAME = "SHA256SUMS"
_CHECKSUM_LINE = re.compile(r"([0-9a-f]{64})  ([^/\s]+/[^/\s]+/manifest\.json)")
OGL = "Open Government Licence v3.0"
_EDITION_RE = re.compile(r"^(\d{4})-(\d{2})$")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_edition(edition: str) -> str:
    """Validate a ``YYYY-YY`` financial-year edition string and return it."""
    m = _EDITION_RE.match(edition)
    if not m or (int(m.group(1)) + 1) % 100 != int(m.group(2)):
        raise ValueError(
            f"edition {edition!r} is not a financial year written YYYY-YY (e.g. 2017-18)"
        )
    return edition


def edition_dates(edition: str) -> tuple[dt.date, dt.date]:
    """First and last day of the financial year named by an edition (1 April - 31 March)."""
    y = int(check_edition(edition)[:4])
    return dt.date(y, 4, 1), dt.date(y + 1, 3, 31)


def financial_year_of(d: dt.date) -> str:
    """The ``YYYY-YY`` financial year containing a date."""
    y = d.year if d.month >= 4 else d.year - 1
    return f"{y}-{(y + 1) % 100:02d}"


def shipped_tables_path() -> Path:
    """Folder of the tables shipped with costing (repository checkout or installed wheel)."""
    repo = Path(__file__).resolve().parent.parent / "tariffs"
    if repo.is_dir() and any(repo.iterdir()):
        return repo
    try:
        pkg = importlib_resources.files("costing.tariffs")
        return Path(str(pkg))
    except ModuleNotFoundError:  # pragma: no cover - broken install
        return repo


# --------------------------------------------------------------------------------------
# manifest models
# --------------------------------------------------------------------------------------


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Frozen):
    """An original publication a table was derived from."""

    title: str
    url: str | None = None
    publisher: str | None = None
    file_name: str
    sha256: str
    retrieved: dt.date | None = None
    licence: str = OGL
    obtained_from: str | None = None
    # "original": the publisher's own file; "extract": another project's faithful copy of
    # the published table, made by the repository named in obtained_from. Written to the
    # manifest only when stated (as is rounding), so older manifests read unchanged.
    form: Literal["original", "extract"] | None = Field(None, exclude_if=lambda v: v is None)
    rounding: str | None = Field(None, exclude_if=lambda v: v is None)

    @classmethod
    def of_file(
        cls,
        path: str | os.PathLike[str],
        *,
        title: str,
        url: str | None = None,
        publisher: str | None = None,
        obtained_from: str | None = "supplied by the user",
        licence: str | None = None,
        form: Literal["original", "extract"] | None = None,
        rounding: str | None = None,
    ) -> Source:
        """The source record of a file: its name and sha256, with the given provenance."""
        p = Path(path)
        return cls(title=title, url=url, publisher=publisher, file_name=p.name,
                   sha256=sha256_file(p), obtained_from=obtained_from, licence=licence or OGL,
                   form=form, rounding=rounding)

    @property
    def status(self) -> str:
        """"original", "extract" (with its rounding, if any), or "" when not stated."""
        if self.form is None:
            return ""
        return self.form + (f", rounded to {self.rounding}" if self.rounding else "")


class Change(_Frozen):
    """One entry of an edition's change log."""

    version: int
    date: dt.date
    note: str


class FieldSpec(_Frozen):
    """A column of a resource and its manifest type name."""

    name: str
    type: str

    @field_validator("type")
    @classmethod
    def _known_type(cls, v: str) -> str:
        dtype_from_name(v)
        return v


class Resource(_Frozen):
    """A file of an edition with its checksum, schema and primary key."""

    name: str
    path: str
    format: Literal["csv", "parquet"] = "csv"
    sha256: str
    rows: int
    fields: tuple[FieldSpec, ...]
    primary_key: tuple[str, ...]

    @property
    def column_types(self) -> dict[str, pl.DataType]:
        """Column name -> polars dtype, as declared in the manifest."""
        return {f.name: dtype_from_name(f.type) for f in self.fields}


class Manifest(_Frozen):
    """Everything known about one edition of one kind of table."""

    name: str
    kind: str
    edition: str
    hrg_version: str | None = None
    grouper: str | None = None
    valid_from: dt.date
    valid_to: dt.date
    published: dt.date | None = None
    version: int = 1
    changes: tuple[Change, ...] = ()
    illustrative: bool = False
    status: str | None = None  # e.g. "consultation": proposed prices, not the final ones
    description: str = ""
    notes: tuple[str, ...] = ()
    # departments (reference costs) the publication lacks, e.g. 2011/12: admitted care only
    absent_departments: tuple[str, ...] = Field((), exclude_if=lambda v: not v)
    sources: tuple[Source, ...] = ()
    resources: tuple[Resource, ...]

    @field_validator("kind")
    @classmethod
    def _kind(cls, v: str) -> str:
        if v not in TABLE_KINDS:
            raise ValueError(f"kind {v!r} is not one of {', '.join(TABLE_KINDS)}")
        return v

    @field_validator("edition")
    @classmethod
    def _edition(cls, v: str) -> str:
        return check_edition(v)

    @field_validator("hrg_version")
    @classmethod
    def _hrg_version(cls, v: str | None) -> str | None:
        if v is not None and v not in HRG_VERSIONS:
            raise ValueError(f"hrg_version {v!r} is not one of {', '.join(HRG_VERSIONS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        if self.valid_to < self.valid_from:
            raise ValueError("valid_to is before valid_from")
        if self.kind in ("tariff", "reference_cost") and self.hrg_version is None:
            raise ValueError(f"a {self.kind} edition needs an hrg_version (v3.5 or HRG4)")
        return self

    def resource(self, name: str) -> Resource:
        for r in self.resources:
            if r.name == name:
                return r
        raise KeyError(name)


# --------------------------------------------------------------------------------------
# editions and table sets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edition:
    """One verified edition: its manifest, folder and loaded (read-only) frames."""

    manifest: Manifest
    path: Path
    frames: Mapping[str, pl.DataFrame] = field(repr=False)

    @property
    def kind(self) -> str:
        return self.manifest.kind

    @property
    def edition(self) -> str:
        return self.manifest.edition

    @property
    def hrg_version(self) -> str | None:
        return self.manifest.hrg_version

    def table(self, resource: str | None = None) -> pl.DataFrame:
        """A resource's frame (the only one when ``resource`` is None)."""
        if resource is None:
            if len(self.frames) != 1:
                raise KeyError(
                    f"{self.kind} {self.edition} has resources {sorted(self.frames)}; name one"
                )
            return next(iter(self.frames.values()))
        try:
            return self.frames[resource]
        except KeyError:
            raise KeyError(
                f"{self.kind} {self.edition} has no resource {resource!r} "
                f"(it has {sorted(self.frames)})"
            ) from None

    def in_force(self, d: dt.date) -> bool:
        return self.manifest.valid_from <= d <= self.manifest.valid_to

    def __reduce__(self) -> tuple[Any, ...]:
        # A MappingProxyType does not pickle: rebuilt from a plain dict (Spark broadcasts tables).
        return (_edition, (self.manifest, self.path, dict(self.frames)))


def _edition(manifest: Manifest, path: Path, frames: dict[str, pl.DataFrame]) -> Edition:
    """An Edition unpickled (see ``Edition.__reduce__``)."""
    return Edition(manifest=manifest, path=path, frames=MappingProxyType(frames))


class TableSet:
    """An immutable collection of verified editions, looked up by kind and edition or date."""

    __slots__ = ("_editions",)
    _editions: Mapping[tuple[str, str], Edition]

    def __init__(self, editions: Iterable[Edition]) -> None:
        by_key: dict[tuple[str, str], Edition] = {}
        for e in editions:
            key = (e.kind, e.edition)
            if key in by_key:
                raise TableError(
                    f"{e.kind} edition {e.edition} is defined twice: {by_key[key].path} and "
                    f"{e.path}. Remove one, or give the correction a new version in place."
                )
            by_key[key] = e
        object.__setattr__(self, "_editions", MappingProxyType(dict(sorted(by_key.items()))))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TableSet is immutable; build a new one with .with_editions()")

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled as its editions (a MappingProxyType does not pickle; Spark broadcasts tables)
        return (TableSet, (list(self._editions.values()),))

    def __iter__(self) -> Iterator[Edition]:
        return iter(self._editions.values())

    def __len__(self) -> int:
        return len(self._editions)

    def __repr__(self) -> str:
        names = ", ".join(f"{k}/{e}" for k, e in self._editions)
        return f"TableSet({names})"

    def kinds(self) -> list[str]:
        return sorted({k for k, _ in self._editions})

    def editions(self, kind: str) -> list[str]:
        """Editions held for a kind, oldest first."""
        return [e for k, e in self._editions if k == kind]

    def has(self, kind: str, edition: str) -> bool:
        return (kind, edition) in self._editions

    def get(self, kind: str, edition: str) -> Edition:
        """The edition of a kind; EditionNotFoundError listing what exists otherwise."""
        try:
            return self._editions[(kind, edition)]
        except KeyError:
            have = ", ".join(self.editions(kind)) or "none"
            raise EditionNotFoundError(
                f"no {kind} edition {edition!r} in the tables (have: {have}). "
                "Import it with `costing tables import` or choose one of those."
            ) from None

    def in_force(self, kind: str, on: dt.date) -> Edition | None:
        """The edition of a kind in force on a date, or None (never the nearest year)."""
        hits = [e for (k, _), e in self._editions.items() if k == kind and e.in_force(on)]
        if len(hits) > 1:
            raise TableError(
                f"{kind} editions {', '.join(e.edition for e in hits)} overlap on {on}"
            )
        return hits[0] if hits else None

    def table(self, kind: str, edition: str, resource: str | None = None) -> pl.DataFrame:
        return self.get(kind, edition).table(resource)

    def unit_costs(self, reference_costs: str, tariff: str | None = None) -> pl.DataFrame:
        """Activity-weighted national average unit costs of one reference-cost edition, or
        of a tariff edition weighted by that edition's activity.

        The cost of an emergency admission, an elective admission (ordinary or day case), a
        day case, an outpatient first and follow-up attendance and an A&E attendance (all
        types and per department type): ``sum(activity x unit cost) / sum(activity)`` over
        the schedule rows of each category, excess bed days' cost included as the schedule
        counts it. The ``basis`` column says which rows were used (``costing.unit_costs``).

        With ``tariff``, each schedule row is priced at that tariff edition instead and the
        schedule's activity weights the prices (the tariff has no activity counts); rows
        the tariff has no price for are left out and reported (``tariff_coverage``,
        ``left_out``, ``notes``): see ``costing.unit_costs.unit_costs_from_tariff``.

        Example:
            >>> uc = load_tables().unit_costs("2016-17")
            >>> uc.filter(pl.col("category") == "day_case")["unit_cost"].round(2).item()
            735.62
            >>> t = load_tables().unit_costs("2016-17", tariff="2016-17")
            >>> t.filter(pl.col("category") == "ae_type_3").select(
            ...     pl.col("unit_cost", "tariff_coverage").round(4)).row(0)
            (57.0, 1.0)
        """
        from costing.unit_costs import unit_costs_from_reference, unit_costs_from_tariff

        table = self.table("reference_cost", reference_costs, "reference_costs")
        if tariff is None:
            return unit_costs_from_reference(table, reference_costs)
        return unit_costs_from_tariff(table, self.get("tariff", tariff).frames, reference_costs,
                                      tariff)

    def index_series(self, name: str) -> pl.DataFrame:
        """financial_year, value for a named inflation index, from the newest edition holding it."""
        for (k, _), e in sorted(self._editions.items(), reverse=True):
            if k != "index":
                continue
            t = e.table("index").filter(pl.col("index_name") == name)
            if t.height:
                return t.select("financial_year", "value", "is_forecast")
        names = sorted(
            {
                n
                for (k, _), e in self._editions.items()
                if k == "index"
                for n in e.table("index")["index_name"].unique().to_list()
            }
        )
        raise EditionNotFoundError(
            f"no inflation index named {name!r} (have: {', '.join(names) or 'none'})"
        )

    def with_editions(self, *editions: Edition, replace: bool = False) -> TableSet:
        """A new TableSet with editions added (or replacing same kind+edition if ``replace``)."""
        keep = [
            e
            for e in self
            if not (replace and any((e.kind, e.edition) == (n.kind, n.edition) for n in editions))
        ]
        return TableSet([*keep, *editions])

    def without(self, kind: str, edition: str | None = None) -> TableSet:
        """A new TableSet without one edition (or every edition of a kind)."""
        return TableSet(
            e for e in self if not (e.kind == kind and (edition is None or e.edition == edition))
        )

    def summary(self) -> pl.DataFrame:
        """One row per edition: kind, edition, HRG version, validity, rows, version, status
        (original or extract, and any rounding), absent departments and source files."""
        rows = []
        for e in self:
            m = e.manifest
            rows.append(
                {
                    "kind": m.kind,
                    "edition": m.edition,
                    "hrg_version": m.hrg_version,
                    "valid_from": m.valid_from,
                    "valid_to": m.valid_to,
                    "rows": sum(r.rows for r in m.resources),
                    "version": m.version,
                    "illustrative": m.illustrative,
                    # the edition's own status (consultation), else its sources' (extract)
                    "status": m.status or "; ".join(s.status for s in m.sources if s.status)
                    or ("illustrative" if m.illustrative else "final"),
                    "absent": " ".join(m.absent_departments),
                    "source": "; ".join(s.file_name for s in m.sources),
                    "path": str(e.path),
                }
            )
        schema = {
            "kind": pl.String, "edition": pl.String, "hrg_version": pl.String,
            "valid_from": pl.Date, "valid_to": pl.Date, "rows": pl.Int64, "version": pl.Int64,
            "illustrative": pl.Boolean, "status": pl.String, "absent": pl.String,
            "source": pl.String, "path": pl.String,
        }
        return pl.DataFrame(rows, schema=schema)

    def compare(self, tariff: str, reference_costs: str, detail: bool = False) -> pl.DataFrame:
        """What a tariff edition prices and what falls back to a reference-cost edition, per
        point of delivery: counts of codes priced by the tariff, by the reference costs only,
        or by neither (``costing tables compare``; see ``costing.pairing.compare_editions``).

        Example:
            >>> c = load_tables().compare("2016-17", "2016-17")
            >>> c.filter(pl.col("pod") == "NEL").select("group", "n_codes").rows()
            [('tariff', 1283), ('reference_cost_only', 2347)]
        """
        from costing.pairing import compare_editions

        return compare_editions(self, tariff, reference_costs, detail=detail)

    def fingerprint(self) -> list[dict[str, Any]]:
        """What a run manifest records of the tables: kind, edition, version and hashes."""
        return [
            {
                "kind": e.kind,
                "edition": e.edition,
                "version": e.manifest.version,
                "hrg_version": e.hrg_version,
                "illustrative": e.manifest.illustrative,
                "resources": {r.path: r.sha256 for r in e.manifest.resources},
            }
            for e in self
        ]


# --------------------------------------------------------------------------------------
# loading and verifying
# --------------------------------------------------------------------------------------


def _read_manifest(path: Path) -> Manifest:
    if not path.is_file():
        raise TableMissingError(f"{path}: manifest missing; every edition folder needs one")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None
    try:
        return Manifest.model_validate(data)
    except Exception as exc:  # pydantic ValidationError
        raise ManifestError(f"{path}: invalid manifest: {exc}") from None


def _check_canonical(manifest: Manifest, res: Resource, where: Path) -> None:
    canon = TABLE_SCHEMAS[manifest.kind].get(res.name)
    if canon is None:
        return  # extra resources are allowed; they are verified but not used by pricing
    declared = res.column_types
    missing = [c for c in canon if c not in declared]
    if missing:
        raise TableSchemaError(
            f"{where}: resource {res.name!r} lacks canonical column(s) {missing}; "
            "re-import the edition with the current importer."
        )
    for col, dtype in canon.items():
        if declared[col] != dtype:
            raise TableSchemaError(
                f"{where}: column {col!r} declared {dtype_name(declared[col])}, "
                f"canonical type is {dtype_name(dtype)}"
            )
    pk = TABLE_PRIMARY_KEYS[manifest.kind][res.name]
    if tuple(res.primary_key) != pk:
        raise TableSchemaError(
            f"{where}: resource {res.name!r} primary key {list(res.primary_key)} "
            f"differs from canonical {list(pk)}"
        )


def _read_resource(file: Path, res: Resource) -> pl.DataFrame:
    schema = res.column_types
    try:
        if res.format == "parquet":
            df = pl.read_parquet(file)
        else:
            with open(file, "rb") as fh:
                header = fh.readline().decode("utf-8").rstrip("\r\n").split(",")
            if header != [f.name for f in res.fields]:
                raise TableSchemaError(
                    f"{file}: header {header} differs from the manifest's columns "
                    f"{[f.name for f in res.fields]}"
                )
            df = pl.read_csv(file, schema=schema, infer_schema=False)
    except TableSchemaError:
        raise
    except (pl.exceptions.ComputeError, pl.exceptions.InvalidOperationError,
            pl.exceptions.SchemaError, UnicodeDecodeError, ValueError) as exc:
        raise TableSchemaError(
            f"{file}: values do not match the declared column types "
            f"({', '.join(f'{f.name}: {f.type}' for f in res.fields)}): {exc}"
        ) from None
    for col, dtype in schema.items():
        if col not in df.columns:
            raise TableSchemaError(f"{file}: column {col!r} missing")
        if df.schema[col] != dtype:
            raise TableSchemaError(
                f"{file}: column {col!r} has dtype {df.schema[col]}, manifest says {dtype}"
            )
    if df.height != res.rows:
        raise TableSchemaError(f"{file}: {df.height} rows, manifest says {res.rows}")
    return df


def check_primary_key(df: pl.DataFrame, key: Sequence[str], where: str) -> None:
    """Raise TableKeyError on null (outside nullable key columns) or duplicate keys."""
    key = list(key)
    for col in key:
        if col in NULLABLE_KEY_COLUMNS:
            continue
        n_null = df[col].null_count()
        if n_null:
            rows = (df.with_row_index("_row").filter(pl.col(col).is_null())["_row"] + 2).to_list()
            raise TableKeyError(
                f"{where}: primary-key column {col!r} is empty in {n_null} row(s) "
                f"(file lines {rows[:10]})"
            )
    dup = df.with_row_index("_row").filter(pl.struct(key).is_duplicated())
    if dup.height:
        sample = dup.head(6).select(*key, (pl.col("_row") + 2).alias("line")).to_dicts()
        raise TableKeyError(
            f"{where}: duplicate primary key {key} in {dup.height} rows, e.g. {sample}. "
            "Each key must appear once; fix the source or the importer."
        )


def _load_edition(folder: Path) -> Edition:
    manifest_path = folder / MANIFEST_NAME
    m = _read_manifest(manifest_path)
    if folder.name != m.edition or folder.parent.name != m.kind:
        raise ManifestError(
            f"{manifest_path}: says {m.kind}/{m.edition} but lives in "
            f"{folder.parent.name}/{folder.name}; folders are <kind>/<edition>/"
        )
    frames: dict[str, pl.DataFrame] = {}
    for res in m.resources:
        file = folder / res.path
        if not file.is_file():
            raise TableMissingError(
                f"{file}: file named in {manifest_path} is missing (expected sha256 {res.sha256})"
            )
        actual = sha256_file(file)
        if actual != res.sha256:
            raise TableIntegrityError(str(file), res.sha256, actual)
        _check_canonical(m, res, file)
        df = _read_resource(file, res)
        check_primary_key(df, res.primary_key, str(file))
        frames[res.name] = df
    return Edition(manifest=m, path=folder, frames=MappingProxyType(frames))


def _read_checksums(root: Path) -> dict[str, str] | None:
    """manifest path (kind/edition/manifest.json) -> sha256, or None if the folder has none."""
    file = root / CHECKSUMS_NAME
    if not file.is_file():
        return None
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{file}: not UTF-8 text; restore it from the repository") from None
    lines = text.split("\n")
    if lines[-1] != "":
        raise ManifestError(f"{file}: does not end with a newline; restore it from the repository")
    sums: dict[str, str] = {}
    for n, line in enumerate(lines[:-1], start=1):
        m = _CHECKSUM_LINE.fullmatch(line)
        if not m:
            raise ManifestError(
                f"{file}, line {n}: expected '<sha256>  <kind>/<edition>/manifest.json', "
                f"got {line!r}; restore it from the repository or re-import the edition"
            )
        sums[m.group(2)] = m.group(1)
    return sums


def _checksum_problems(root: Path, folders: list[Path], required: bool) -> list[tuple[Path, TableError]]:
    """(path, error) for every manifest that is unlisted, changed or missing under a root."""
    try:
        sums = _read_checksums(root)
    except TableError as exc:
        return [(root, exc)]
    if sums is None:
        if required:
            return [(root, TableMissingError(
                f"{root / CHECKSUMS_NAME}: missing; a released tables folder (the shipped one, "
                "or one holding an edition not marked illustrative) must list the sha256 of "
                "every manifest. Restore the file, reinstall costing (shipped tables) or "
                "re-import the editions with `costing tables import`, which writes it."))]
        return []
    problems: list[tuple[Path, TableError]] = []
    found = {f"{f.parent.name}/{f.name}/{MANIFEST_NAME}": f for f in folders}
    for rel in sorted(set(sums) - set(found)):
        problems.append((root / rel, TableMissingError(
            f"{root / rel}: listed in {root / CHECKSUMS_NAME} but missing")))
    for rel, folder in found.items():
        if rel not in sums:
            problems.append((folder, ManifestError(
                f"{folder / MANIFEST_NAME}: not listed in {root / CHECKSUMS_NAME}; an edition "
                "must be written by `costing tables import` (or costing.tables.write_edition)")))
            continue
        actual = sha256_file(folder / MANIFEST_NAME) if (folder / MANIFEST_NAME).is_file() else ""
        if actual and actual != sums[rel]:
            problems.append((folder, TableIntegrityError(str(folder / MANIFEST_NAME), sums[rel], actual)))
    return problems


def _claims_release(folders: Sequence[Path]) -> bool:
    """True when an edition is not marked illustrative: it presents itself as derived from
    a publication, so its folder is a released set and its SHA256SUMS is required. An
    unreadable manifest counts as a claim (it fails on its own when loaded)."""
    for f in folders:
        try:
            data = json.loads((f / MANIFEST_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True
        if not (isinstance(data, dict) and data.get("illustrative") is True):
            return True
    return False


def _integrity_problems(root: Path, folders: list[Path], shipped: bool) -> list[tuple[Path, TableError]]:
    """(path, error) for every break in the hash chain SHA256SUMS -> manifest -> files.

    A folder laid out ``<kind>/<edition>/`` must have a SHA256SUMS listing every manifest
    when it is the shipped set or claims to be a released one (an edition not marked
    illustrative). A single edition folder is checked against the SHA256SUMS of the set it
    sits in; a released edition outside any set is refused (its manifest would be covered
    by nothing).
    """
    if folders != [root]:
        return _checksum_problems(root, folders, required=shipped or _claims_release(folders))
    set_root = root.parent.parent
    if (set_root / CHECKSUMS_NAME).is_file():
        return [(p, e) for p, e in _checksum_problems(set_root, [root], required=True)
                if p in (root, set_root)]
    if _claims_release([root]):
        return [(root, TableMissingError(
            f"{root}: an edition not marked illustrative must sit in its tables folder "
            f"(<folder>/{root.parent.name}/{root.name}/), whose {CHECKSUMS_NAME} covers its "
            "manifest; load that folder, or re-import the edition with `costing tables import`"))]
    return []


def _update_checksums(root: Path, folder: Path) -> None:
    """Record (or replace) an edition's manifest sha256 in the root's SHA256SUMS."""
    try:
        sums = _read_checksums(root) or {}
    except TableError:
        sums = {}
    sums[f"{folder.parent.name}/{folder.name}/{MANIFEST_NAME}"] = sha256_file(folder / MANIFEST_NAME)
    text = "".join(f"{h}  {rel}\n" for rel, h in sorted(sums.items()))
    _atomic_write_bytes(root / CHECKSUMS_NAME, text.encode("utf-8"))


def _roots(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
) -> list[tuple[Path, bool]]:
    """(folder, is_shipped) for a load/verify path argument."""
    def one(p: str | os.PathLike[str]) -> tuple[Path, bool]:
        if str(p) == "shipped":
            return shipped_tables_path(), True
        return Path(p), Path(p).resolve() == shipped_tables_path().resolve()

    if path is None:
        return [(shipped_tables_path(), True)]
    if isinstance(path, (str, os.PathLike)):
        return [one(path)]
    return [one(p) for p in path]


def _edition_folders(root: Path) -> list[Path]:
    if (root / MANIFEST_NAME).is_file():  # a single edition folder
        return [root]
    found = []
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for ed_dir in sorted(p for p in kind_dir.iterdir() if p.is_dir()):
            if not ed_dir.name.startswith((".", "_")):
                found.append(ed_dir)
    return found


def load_tables(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> TableSet:
    """Load and verify table editions.

    Args:
        path: None for the shipped tables; a folder laid out ``<kind>/<edition>/``, a
            single edition folder, or a list of these. The string ``"shipped"`` in a
            list stands for the shipped tables, so users can add their editions to ours.

    Returns:
        An immutable TableSet. Raises a TableError subclass naming the file on any
        sha256, schema, primary-key or manifest problem.

    Example:
        >>> import costing
        >>> tables = costing.load_tables()
        >>> tables.get("reference_cost", "2017-18").hrg_version
        'HRG4'
    """
    editions: list[Edition] = []
    for root, shipped in _roots(path):
        if not root.is_dir():
            raise TableMissingError(f"{root}: no such tables folder")
        folders = _edition_folders(root)
        problems = _integrity_problems(root, folders, shipped)
        if problems:
            raise problems[0][1]
        editions.extend(_load_edition(f) for f in folders)
    return TableSet(editions)


def verify_tables(
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
) -> list[tuple[str, str | None]]:
    """Check every edition folder; return (folder, error message or None) for each.

    Unlike ``load_tables`` this does not stop at the first failure.
    """
    results: list[tuple[str, str | None]] = []
    for root, shipped in _roots(path):
        if not root.is_dir():
            results.append((str(root), "no such tables folder"))
            continue
        folders = _edition_folders(root)
        problems = {p: str(e) for p, e in _integrity_problems(root, folders, shipped)}
        for p, err in problems.items():
            if p not in folders:
                results.append((str(p), err))
        for folder in folders:
            if folder in problems:
                results.append((str(folder), problems[folder]))
                continue
            try:
                _load_edition(folder)
                results.append((str(folder), None))
            except TableError as exc:
                results.append((str(folder), str(exc)))
    return results


# --------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from costing.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _canonical_frame(kind: str, name: str, df: pl.DataFrame, where: str) -> pl.DataFrame:
    canon = TABLE_SCHEMAS[kind].get(name)
    if canon is None:
        raise TableSchemaError(
            f"{where}: {kind} has no resource {name!r} (canonical: {sorted(TABLE_SCHEMAS[kind])})"
        )
    missing = [c for c in canon if c not in df.columns]
    if missing:
        raise TableSchemaError(f"{where}: frame lacks canonical column(s) {missing}")
    extra = [c for c in df.columns if c not in canon]
    out = df.select(
        *[pl.col(c).cast(t, strict=True) for c, t in canon.items()],
        *[pl.col(c) for c in extra],
    )
    key = list(TABLE_PRIMARY_KEYS[kind][name])
    return out.sort(key, nulls_last=False, maintain_order=True)


def write_edition(
    into: str | os.PathLike[str],
    *,
    kind: str,
    edition: str,
    frames: Mapping[str, pl.DataFrame],
    sources: Sequence[Source],
    hrg_version: str | None = None,
    grouper: str | None = None,
    valid_from: dt.date | None = None,
    valid_to: dt.date | None = None,
    published: dt.date | None = None,
    version: int = 1,
    changes: Sequence[Change] = (),
    illustrative: bool = False,
    description: str = "",
    notes: Sequence[str] = (),
    absent_departments: Sequence[str] = (),
    overwrite: bool = False,
    status: str | None = None,
) -> Path:
    """Write canonical frames and a manifest as ``<into>/<kind>/<edition>/``.

    Frames are cast to the canonical schema of their kind (TableSchemaError if they cannot
    be), sorted by primary key and checked for duplicate keys before anything is written.
    An existing edition is never edited in place unless ``overwrite`` is set (a correction
    should bump ``version`` and add a ``changes`` entry). Returns the edition folder.
    """
    if kind not in TABLE_KINDS:
        raise TableError(f"unknown table kind {kind!r}; expected one of {', '.join(TABLE_KINDS)}")
    check_edition(edition)
    folder = Path(into) / kind / edition
    if (folder / MANIFEST_NAME).exists() and not overwrite:
        raise TableError(
            f"{folder}: edition already exists. Released editions are not edited in place; "
            "pass overwrite (CLI: --overwrite) to replace it deliberately."
        )
    vf, vt = edition_dates(edition)
    prepared: dict[str, pl.DataFrame] = {}
    for name, df in frames.items():
        where = f"{kind}/{edition}/{name}"
        out = _canonical_frame(kind, name, df, where)
        check_primary_key(out, TABLE_PRIMARY_KEYS[kind][name], where)
        prepared[name] = out
    resources = []
    folder.mkdir(parents=True, exist_ok=True)
    for name, df in prepared.items():
        file = folder / f"{name}.csv"
        data = df.write_csv(line_terminator="\n", float_precision=None).encode("utf-8")
        _atomic_write_bytes(file, data)
        resources.append(
            Resource(
                name=name,
                path=file.name,
                sha256=hashlib.sha256(data).hexdigest(),
                rows=df.height,
                fields=tuple(FieldSpec(name=c, type=dtype_name(t)) for c, t in df.schema.items()),
                primary_key=TABLE_PRIMARY_KEYS[kind][name],
            )
        )
    if not changes:
        changes = (Change(version=version, date=published or vf, note="first import"),)
    manifest = Manifest(
        name=f"{kind}-{edition}",
        kind=kind,
        edition=edition,
        hrg_version=hrg_version,
        grouper=grouper,
        valid_from=valid_from or vf,
        valid_to=valid_to or vt,
        published=published,
        version=version,
        changes=tuple(changes),
        illustrative=illustrative,
        status=status,
        description=description,
        notes=tuple(notes),
        absent_departments=tuple(absent_departments),
        sources=tuple(sources),
        resources=tuple(resources),
    )
    data = manifest.model_dump(mode="json")
    if status is None:  # editions without a status are written as before it existed
        del data["status"]
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    _atomic_write_bytes(folder / MANIFEST_NAME, text.encode("utf-8"))
    _update_checksums(Path(into), folder)
    return folder
