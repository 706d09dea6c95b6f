"""The policy thresholds of the pricing rules, resolved per edition from a dated table.

The short-stay emergency rule's age, length of stay and admission methods, and the length of
stay below which a non-elective stay is costed as a short stay (NES), are national policy:
they live in the ``parameters`` table (``tariffs/parameters/<edition>/parameters.csv``), one
row per parameter and date from which it is in force, each with its source and whether it
was read from a published file (``verified``) or recalled. A row is in force from its
``valid_from`` until the next row of the same parameter.

Each edition the rules price at gets the rows in force on its first day: a tariff edition
the short-stay emergency parameters, a reference-cost edition the NES threshold. A value set
in :class:`~costing.config.CostingConfig` overrides the table for every edition. An edition
dated before every row of a parameter it needs is refused with a clear error; a tariff
edition that publishes no short-stay emergency price needs none (the rule cannot apply).
Tables without any ``parameters`` edition (a user's own folder) use the shipped rows.

Example (the 2022/23 Annex A, sheet "8 SSEM": LoS zero or one day, aged 19 and over):
    >>> import costing
    >>> from costing.pricing.parameters import resolve
    >>> tables = costing.load_tables()
    >>> got = resolve(tables, costing.CostingConfig(), tables.get("tariff", "2022-23"))
    >>> {p.name: p.value for p in got}["sse_min_age"]
    19
    >>> got = resolve(tables, costing.CostingConfig(sse_min_age=65), tables.get("tariff", "2022-23"))
    >>> [(p.value, p.basis) for p in got if p.name == "sse_min_age"]
    [(65, 'configuration')]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import polars as pl

from costing.config import CostingConfig, emergency_methods
from costing.errors import ConfigError, TableError
from costing.tables import Edition, TableSet, load_tables, shipped_tables_path

__all__ = ["Parameter", "PARAMETERS", "ResolvedParameter", "parse_methods", "parameter_rows", "resolve",
           "overrides", "parameters_used"]

KIND = "parameters"


def parse_methods(text: str) -> tuple[str, ...]:
    """Emergency admission method codes written separated by spaces ("21 22 2A").

    Raises:
        ValueError: none given, or a code that is not an emergency admission method.
    """
    return emergency_methods(text.split())


def _whole(text: str) -> int:
    """A whole number of days or years, not negative."""
    n = int(text)
    if n < 0:
        raise ValueError("negative")
    return n


@dataclass(frozen=True)
class Parameter:
    """A policy threshold: its name (also its :class:`CostingConfig` field), the level whose
    editions resolve it, how its text value is read, and what it means."""

    name: str
    level: str
    parse: Callable[[str], Any]
    meaning: str


PARAMETERS: tuple[Parameter, ...] = (
    Parameter("sse_max_los", "tariff", _whole,
              "short-stay emergency applies when the adjusted length of stay is at most this (days)"),
    Parameter("sse_min_age", "tariff", _whole,
              "short-stay emergency applies from this age (years, on the date of admission)"),
    Parameter("sse_admission_methods", "tariff", parse_methods,
              "the emergency admission methods short-stay emergency applies to"),
    Parameter("nes_los_threshold", "reference_cost", _whole,
              "a non-elective stay shorter than this (days) is costed as a short stay (NES)"),
)


@dataclass(frozen=True)
class ResolvedParameter:
    """One parameter's value for one edition, and where it came from.

    ``basis`` is ``table`` (the row in force on the edition's first day: ``valid_from``,
    ``source``, ``location``, ``verified`` and ``table_edition`` say which), ``configuration``
    (set in the configuration: it overrides the table) or ``not used`` (``value`` None: no
    row is in force and the edition cannot use it, ``source`` says why).
    """

    name: str
    level: str
    edition: str
    value: Any
    basis: str
    source: str
    location: str = ""
    verified: bool | None = None
    valid_from: dt.date | None = None
    table_edition: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (the run manifest records one per parameter and edition used)."""
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"level": self.level, "edition": self.edition, "parameter": self.name, "value": value,
                "basis": self.basis, "overridden": self.basis == "configuration",
                "source": self.source, "location": self.location, "verified": self.verified,
                "valid_from": None if self.valid_from is None else self.valid_from.isoformat(),
                "table": None if self.table_edition is None else f"{KIND}/{self.table_edition}"}


def _rows(tables: TableSet) -> pl.DataFrame:
    editions = tables.editions(KIND)
    frames = [tables.table(KIND, e, KIND).with_columns(pl.lit(e).alias("table_edition")) for e in editions]
    return pl.concat(frames) if frames else pl.DataFrame()


@lru_cache(maxsize=1)
def _shipped_rows() -> pl.DataFrame:
    root = shipped_tables_path() / KIND
    return _rows(load_tables(sorted(p for p in root.iterdir() if p.is_dir())))


def parameter_rows(tables: TableSet) -> pl.DataFrame:
    """Every parameter row of ``tables`` (the shipped ones when it holds no ``parameters``
    edition), with the ``table_edition`` holding it, by parameter and date.

    Raises:
        TableError: two editions give the same parameter from the same date.
    """
    rows = _rows(tables) if tables.editions(KIND) else _shipped_rows()
    dup = rows.filter(pl.struct("parameter", "valid_from").is_duplicated())
    if dup.height:
        r = dup.row(0, named=True)
        raise TableError(
            f"parameters editions {', '.join(sorted(set(dup['table_edition'])))} both give "
            f"{r['parameter']} from {r['valid_from']}; keep one row per parameter and date")
    return rows.sort("parameter", "valid_from")


def _uses_sse(cfg: CostingConfig, edition: Edition) -> bool:
    """Whether the short-stay emergency rule can apply at a tariff edition: it is on and
    the edition publishes at least one short-stay emergency price."""
    apc = edition.frames.get("apc")
    return cfg.short_stay_emergency and apc is not None and apc["sse_price"].is_not_null().any()


def resolve(tables: TableSet, cfg: CostingConfig, edition: Edition) -> tuple[ResolvedParameter, ...]:
    """The parameters ``edition`` (tariff or reference cost) uses: each from the
    configuration when set there, else the table's row in force on the edition's first day.

    Raises:
        ConfigError: no row of a parameter the edition needs is in force on its first day
            (an edition older than the table): set it in the configuration.
    """
    wanted = [p for p in PARAMETERS if p.level == edition.kind]
    if not wanted:
        return ()
    rows = parameter_rows(tables)
    on = edition.manifest.valid_from
    out: list[ResolvedParameter] = []
    missing: list[tuple[Parameter, str]] = []
    for p in wanted:
        given = getattr(cfg, p.name)
        if given is not None:
            out.append(ResolvedParameter(p.name, p.level, edition.edition, given, "configuration",
                                         "the configuration (overrides the table)"))
            continue
        mine = rows.filter(pl.col("parameter") == p.name) if rows.height else rows
        held = mine.filter(pl.col("valid_from") <= on)
        if held.height:
            r = held.row(-1, named=True)
            try:
                value = p.parse(r["value"])
            except ValueError:
                raise TableError(f"parameters/{r['table_edition']}: {p.name} from {r['valid_from']} "
                                 f"has value {r['value']!r}, which is not a valid {p.name}") from None
            out.append(ResolvedParameter(p.name, p.level, edition.edition, value, "table", r["source"],
                                         r["location"], r["verified"], r["valid_from"], r["table_edition"]))
        elif p.level == "tariff" and not _uses_sse(cfg, edition):
            out.append(ResolvedParameter(
                p.name, p.level, edition.edition, None, "not used",
                "no row in force, and the short-stay emergency rule cannot apply at this edition "
                "(it is off, or the edition publishes no short-stay emergency price)"))
        else:
            missing.append((p, f"from {mine['valid_from'].min()}" if mine.height else "none"))
    if missing:
        raise ConfigError(
            f"{edition.kind} edition {edition.edition} (from {on}) is older than the policy parameter "
            f"table's rows for: {'; '.join(f'{p.name} ({p.meaning}; table rows: {since})' for p, since in missing)}. "
            f"Set {', '.join(p.name for p, _ in missing)} in the configuration ([pricing] in the "
            "run file, or CostingConfig) to the rules of that year, or import a parameters edition "
            "holding them (docs/tables.md#parameters).")
    return tuple(out)


def overrides(resolved: tuple[ResolvedParameter, ...]) -> tuple[tuple[str, Any], ...]:
    """The resolved values as configuration fields (the rules read them from the
    configuration of the edition they price at)."""
    return tuple((p.name, p.value) for p in resolved)


def parameters_used(tables: TableSet, cfg: CostingConfig, priced: pl.DataFrame) -> list[dict[str, Any]]:
    """The policy parameters of every edition the priced records used (``priced`` holds
    ``tariff_edition`` and ``reference_cost_edition``), each with its value, source and
    whether the configuration overrode it: what a run manifest records."""
    out = []
    for kind, col in (("tariff", "tariff_edition"), ("reference_cost", "reference_cost_edition")):
        if col in priced.columns:
            for edition in sorted(priced[col].drop_nulls().cast(pl.String).unique()):
                out += [p.to_dict() for p in resolve(tables, cfg, tables.get(kind, edition))]
    return out
