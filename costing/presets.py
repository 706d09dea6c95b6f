"""Column presets: which column of a user's extract feeds each canonical activity column.

A preset names, per canonical column of ``costing.schema.ACTIVITY_SCHEMA``, the source columns
to try in order (matched exactly, then ignoring case and surrounding spaces), the HRG version
its HRG column holds (declared once per preset) and how its yes/no columns are coded.
Built-in presets: ``hes`` (HES field names, ``SUSHRG`` = HRG4), ``hes35`` (APC only,
``HRGLATE35`` = HRG v3.5) and ``canonical`` (the file already uses canonical names). A user
mapping (a dict, or a TOML file ``canonical_name = "their column"``) becomes a preset too.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Final

from costing.errors import ConfigError, MissingColumnsError
from costing.schema import ACTIVITY_REQUIRED, ACTIVITY_SCHEMA, HRG_VERSIONS, SETTINGS

__all__ = [
    "ColumnPreset",
    "PRESET_NAMES",
    "MAPPABLE_COLUMNS",
    "GENERIC_TRUE",
    "GENERIC_FALSE",
    "HES_INFANT_AGE_CODES",
    "get_preset",
    "preset_from_mapping",
    "load_mapping_file",
    "resolve_preset",
    "resolve_columns",
    "match_columns",
    "missing_columns_error",
    "preset_table",
]

#: Canonical columns a preset may fill (``setting`` is always the constant given by the caller).
MAPPABLE_COLUMNS: Final[tuple[str, ...]] = tuple(c for c in ACTIVITY_SCHEMA if c != "setting")

#: Generic yes/no spellings (compared lower-cased, stripped) for Boolean columns.
GENERIC_TRUE: Final[tuple[str, ...]] = ("true", "t", "yes", "y", "1")
GENERIC_FALSE: Final[tuple[str, ...]] = ("false", "f", "no", "n", "0")

#: HES age codes for patients under one year old (7001 = under 1 day ... 7007 = 273-365 days):
#: read as age 0 (HES APC data dictionary, STARTAGE / ADMIAGE).
HES_INFANT_AGE_CODES: Final[tuple[str, ...]] = (
    "7001",
    "7002",
    "7003",
    "7004",
    "7005",
    "7006",
    "7007",
)


@dataclass(frozen=True)
class ColumnPreset:
    """How to find the canonical activity columns in one kind of extract.

    Attributes:
        name: preset name (``hes``), or the mapping file path for a user mapping.
        setting: ``apc``, ``op`` or ``ae``.
        columns: canonical column -> source column names to try, in order.
        hrg_version: the version of the codes in the HRG columns (``HRG4`` / ``v3.5``), declared
            once; None when the file has an ``hrg_version`` column or no HRG column.
        true_values: Boolean canonical column -> source codes meaning True; any other non-null
            code (except ``null_values``) means False. Columns not listed use the generic
            yes/no spellings ``GENERIC_TRUE`` / ``GENERIC_FALSE``.
        null_values: Boolean canonical column -> source codes meaning "not known" (read as null,
            not as a problem).
        date_format: a strptime format tried before the built-in date formats.
    """

    name: str
    setting: str
    columns: Mapping[str, tuple[str, ...]]
    hrg_version: str | None = None
    true_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    null_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    date_format: str | None = None
    #: canonical columns a user's mapping names explicitly: each must be in the file
    explicit: frozenset[str] = frozenset()


# --------------------------------------------------------------------------------------
# The built-in HES presets (field names: docs/domain.md#hes-fields)
# --------------------------------------------------------------------------------------

_PATIENT = ("PSEUDO_HESID", "HESID")
_PROVIDER = ("PROCODE3", "PROCODE")

_HES_COLUMNS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "apc": {
        "record_id": ("EPIKEY",),
        "patient_id": _PATIENT,
        "provider_code": _PROVIDER,
        "activity_date": ("ADMIDATE",),
        "discharge_date": ("DISDATE",),
        "admission_method": ("ADMIMETH",),
        "patient_classification": ("CLASSPAT",),
        "hrg_code": ("SUSHRG",),
        "age": ("STARTAGE", "ADMIAGE"),
        "treatment_function_code": ("TRETSPEF", "MAINSPEF"),
        "spell_id": ("SPELL_ID", "SUSSPELLID", "SPELLID"),
        "spell_hrg_code": ("SPELL_HRG", "SUSHRG_SPELL", "SPELHRG", "SPELL_HRG_CODE"),
        "episode_order": ("EPIORDER",),
        "episode_start": ("EPISTART",),
        "episode_end": ("EPIEND",),
    },
    "op": {
        "record_id": ("ATTENDKEY",),
        "patient_id": _PATIENT,
        "provider_code": _PROVIDER,
        "activity_date": ("APPTDATE",),
        "hrg_code": ("SUSHRG",),
        "age": ("APPTAGE",),
        "treatment_function_code": ("TRETSPEF",),
        "first_attendance": ("FIRSTATT",),
        "attended": ("ATTENDED",),
        # multi_professional: no HES outpatient field says it. STAFFTYP is the grade of the
        # medical staff seen (consultant, registrar, ...), not single/multi-professional, so it
        # stays an extra column. Map a multi-professional column yourself if you have one.
    },
    "ae": {
        "record_id": ("AEKEY",),
        "patient_id": _PATIENT,
        "provider_code": _PROVIDER,
        "activity_date": ("ARRIVALDATE",),
        "hrg_code": ("SUSHRG",),
        "age": ("ARRIVALAGE",),
        "department_type": ("AEDEPTTYPE",),
        "ae_admitted": ("AEATTENDDISP",),
    },
}

# AEATTENDDISP (attendance disposal): 01 = admitted to a hospital bed; 99 = not known.
# "1" is 01 with its leading zero lost (e.g. by a spreadsheet).
_HES_TRUE: Final = {"ae_admitted": ("01", "1")}
_HES_NULL: Final = {"ae_admitted": ("99",)}


def _freeze(d: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(d))


def _hes(setting: str) -> ColumnPreset:
    return ColumnPreset(
        name="hes",
        setting=setting,
        columns=_freeze(_HES_COLUMNS[setting]),
        hrg_version="HRG4",
        true_values=_freeze(_HES_TRUE),
        null_values=_freeze(_HES_NULL),
    )


def _hes35(setting: str) -> ColumnPreset:
    if setting != "apc":
        raise ConfigError(
            f"column preset 'hes35' is for admitted patient care (HRGLATE35) only, "
            f"not {setting!r}; use columns='hes' with hrg_version='v3.5' if your SUSHRG "
            "column holds v3.5 codes"
        )
    cols = dict(_HES_COLUMNS["apc"])
    cols["hrg_code"] = ("HRGLATE35",)
    return replace(_hes("apc"), name="hes35", columns=_freeze(cols), hrg_version="v3.5")


def _canonical(setting: str) -> ColumnPreset:
    cols = {c: (c,) for c in MAPPABLE_COLUMNS}
    cols["hrg_version"] = ("hrg_version",)
    return ColumnPreset(name="canonical", setting=setting, columns=_freeze(cols), hrg_version=None)


_BUILDERS: Final = {"hes": _hes, "hes35": _hes35, "canonical": _canonical}

#: Names accepted by ``get_preset`` (and ``read_activity(columns=...)``).
PRESET_NAMES: Final[tuple[str, ...]] = tuple(_BUILDERS)


def _check_setting(setting: str) -> str:
    if setting not in SETTINGS:
        raise ConfigError(f"unknown setting {setting!r}; use one of {', '.join(SETTINGS)}")
    return setting


def _check_version(version: str | None, where: str) -> str | None:
    if version is not None and version not in HRG_VERSIONS:
        raise ConfigError(
            f"{where}: unknown hrg_version {version!r}; use one of {', '.join(HRG_VERSIONS)}"
        )
    return version


def get_preset(name: str, setting: str) -> ColumnPreset:
    """Return a built-in column preset.

    Args:
        name: ``hes``, ``hes35`` (APC, HRGLATE35 codes) or ``canonical``.
        setting: ``apc``, ``op`` or ``ae``.

    Raises:
        ConfigError: unknown preset or setting.
    """
    _check_setting(setting)
    builder = _BUILDERS.get(name)
    if builder is None:
        close = difflib.get_close_matches(name, PRESET_NAMES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown column preset {name!r}{hint}; use one of {', '.join(PRESET_NAMES)}, "
            "a mapping, or a TOML mapping file"
        )
    return builder(setting)


def preset_from_mapping(
    mapping: Mapping[str, str | Sequence[str]],
    setting: str,
    *,
    name: str = "mapping",
    hrg_version: str | None = None,
    date_format: str | None = None,
    true_values: Mapping[str, Sequence[str]] | None = None,
) -> ColumnPreset:
    """Build a preset from ``{canonical_name: "their column" | ["first choice", ...]}``.

    Canonical columns not named in the mapping are looked for under their own canonical
    name, so a file that already uses a few canonical names needs only the others mapped.

    Raises:
        ConfigError: a key that is not a canonical column, a value that is not a column name,
            or an unknown setting or HRG version.
    """
    _check_setting(setting)
    allowed = (*MAPPABLE_COLUMNS, "hrg_version")
    cols: dict[str, tuple[str, ...]] = {c: (c,) for c in allowed}
    for key, value in mapping.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigError(
                f"{name}: {key!r} is not a canonical activity column{hint}; "
                f"the left-hand side must be one of: {', '.join(allowed)}"
            )
        names = (value,) if isinstance(value, str) else tuple(value)
        if not names or not all(isinstance(v, str) and v.strip() for v in names):
            raise ConfigError(
                f"{name}: {key} must name a column (a string, or a list of strings to try in order)"
            )
        cols[key] = names
    trues = {k: tuple(str(v) for v in vs) for k, vs in (true_values or {}).items()}
    for key in trues:
        if ACTIVITY_SCHEMA.get(key) != ACTIVITY_SCHEMA["ae_admitted"]:
            raise ConfigError(f"{name}: [true_values] {key!r} is not a yes/no canonical column")
    return ColumnPreset(
        name=name,
        setting=setting,
        columns=_freeze(cols),
        hrg_version=_check_version(hrg_version, name),
        true_values=_freeze(trues),
        date_format=date_format,
        explicit=frozenset(mapping),
    )


def load_mapping_file(path: str | os.PathLike[str], setting: str) -> ColumnPreset:
    """Read a TOML column mapping into a preset.

    The file holds ``canonical_name = "their column"`` lines, and optionally::

        [options]
        hrg_version = "HRG4"          # the version of the codes in the hrg_code column
        date_format = "%d/%m/%Y"      # tried before the built-in date formats

        [true_values]
        ae_admitted = ["01"]          # codes meaning yes; any other code means no

    Raises:
        ConfigError: the file is missing or not valid TOML, or has unknown keys.
    """
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: column mapping file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: not a valid TOML column mapping ({exc})") from None
    options = data.pop("options", {})
    trues = data.pop("true_values", {})
    if not isinstance(options, dict) or not isinstance(trues, dict):
        raise ConfigError(f"{p}: [options] and [true_values] must be tables")
    unknown = set(options) - {"hrg_version", "date_format"}
    if unknown:
        close = [m for k in sorted(unknown) for m in difflib.get_close_matches(k, ["hrg_version", "date_format"], n=1)]
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(
            f"{p}: unknown option(s) {', '.join(sorted(unknown))} in [options]{hint}; "
            "allowed: hrg_version, date_format"
        )
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(
                f"{p}: unknown table [{key}]; allowed tables are [options] and [true_values]"
            )
    return preset_from_mapping(
        data,
        setting,
        name=str(p),
        hrg_version=options.get("hrg_version"),
        date_format=options.get("date_format"),
        true_values=trues,
    )


def resolve_preset(
    columns: str | Mapping[str, str | Sequence[str]] | os.PathLike[str],
    setting: str,
    *,
    hrg_version: str | None = None,
    date_format: str | None = None,
) -> ColumnPreset:
    """Turn a ``columns=`` argument (preset name, mapping or TOML path) into a preset.

    ``hrg_version`` and ``date_format``, when given, override the preset's.
    """
    if isinstance(columns, os.PathLike) or (
        isinstance(columns, str) and columns.lower().endswith(".toml")
    ):
        preset = load_mapping_file(columns, setting)
    elif isinstance(columns, str):
        preset = get_preset(columns, setting)
    elif isinstance(columns, Mapping):
        preset = preset_from_mapping(columns, setting)
    else:
        raise ConfigError(
            f"columns must be a preset name ({', '.join(PRESET_NAMES)}), a mapping or a TOML "
            f"file path, not {type(columns).__name__}"
        )
    if hrg_version is not None:
        preset = replace(preset, hrg_version=_check_version(hrg_version, "hrg_version option"))
    if date_format is not None:
        preset = replace(preset, date_format=date_format)
    return preset


def _norm(name: str) -> str:
    return name.strip().casefold()


def match_columns(wanted: Mapping[str, Sequence[str]], headers: Sequence[str]) -> dict[str, str]:
    """Canonical column -> the first of its alternatives present in ``headers``.

    A header matches exactly, else ignoring case and surrounding spaces. Columns with no
    alternative present are left out.
    """
    exact = set(headers)
    folded: dict[str, str] = {}
    for h in headers:
        folded.setdefault(_norm(h), h)
    found: dict[str, str] = {}
    for canonical, alternatives in wanted.items():
        for alt in alternatives:
            hit = alt if alt in exact else folded.get(_norm(alt))
            if hit is not None:
                found[canonical] = hit
                break
    return found


def missing_columns_error(
    source: str,
    wanted: Mapping[str, Sequence[str]],
    missing: Sequence[str],
    headers: Sequence[str],
    used: Sequence[str] = (),
) -> MissingColumnsError:
    """Build a MissingColumnsError naming what was looked for, with close matches.

    The error's ``missing`` holds canonical names and ``suggestions`` maps each canonical name
    to up to three headers of the file that look like it (difflib, case-insensitive), leaving
    out headers ``used`` for another canonical column.
    """
    folded: dict[str, str] = {}
    taken = set(used)
    for h in headers:
        if h not in taken:
            folded.setdefault(_norm(h), h)
    suggestions: dict[str, list[str]] = {}
    for col in missing:
        close: list[str] = []
        for alt in (*wanted.get(col, (col,)), col):
            for m in difflib.get_close_matches(_norm(alt), list(folded), n=3, cutoff=0.6):
                if folded[m] not in close:
                    close.append(folded[m])
        suggestions[col] = close[:3]
    labels = {c: f"{c} (looked for {' or '.join(wanted.get(c, (c,)))})" for c in missing}
    err = MissingColumnsError(
        source, [labels[c] for c in missing], {labels[c]: suggestions[c] for c in missing}
    )
    err.missing = list(missing)
    err.suggestions = suggestions
    return err


# Columns a file must have (their values may still be blank): the required ones plus the HRG
# for the settings priced by HRG, so a renamed HRG column (e.g. SUS_HRG) is an error naming
# it rather than every record coming out hrg_missing. Outpatient attendances price without one.
EXPECTED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    s: ACTIVITY_REQUIRED[s] + (("hrg_code",) if s in ("apc", "ae") else ()) for s in SETTINGS
}


def resolve_columns(
    preset: ColumnPreset,
    headers: Sequence[str],
    source: str,
    required: Sequence[str] | None = None,
) -> dict[str, str]:
    """Match a preset against a file's headers: canonical column -> header found.

    Each canonical column takes the first of its alternatives present in ``headers`` (see
    ``match_columns``). Optional columns that are absent are left out of the result.

    Args:
        preset: the preset to apply.
        headers: the file's column names, as read.
        source: the file name, for the error message.
        required: canonical columns that must be found (default: ``EXPECTED_COLUMNS`` of the
            preset's setting).

    Raises:
        MissingColumnsError: a required column has none of its alternatives in the file; the
            error carries close matches from the file's headers.
    """
    if required is None:
        # a column a user's mapping names must be there too (a typo would read as empty)
        required = (*EXPECTED_COLUMNS[preset.setting],
                    *sorted(preset.explicit - set(EXPECTED_COLUMNS[preset.setting])))
    found = match_columns(preset.columns, headers)
    missing = [c for c in required if c not in found]
    if missing:
        raise missing_columns_error(source, preset.columns, missing, headers, list(found.values()))
    return found


def preset_table(name: str = "hes") -> list[tuple[str, str, str]]:
    """Rows (setting, canonical column, source alternatives) of a built-in preset, for docs."""
    rows: list[tuple[str, str, str]] = []
    for setting in SETTINGS:
        try:
            preset = get_preset(name, setting)
        except ConfigError:
            continue
        for canonical, alts in preset.columns.items():
            rows.append((setting, canonical, " / ".join(alts)))
    return rows
