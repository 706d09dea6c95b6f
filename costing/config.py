"""CostingConfig: every pricing choice in one declared, hashable, TOML-loadable object."""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from costing.errors import ConfigError
from costing.schema import EMERGENCY_METHODS
from costing.tables import check_edition

__all__ = ["CostingConfig", "Level", "LEVELS", "DEFAULT_TRIMPOINTS_SUBSTITUTE", "read_toml",
           "config_error", "emergency_methods"]

Level = Literal["tariff", "reference_cost", "total_hrg_average"]
LEVELS: tuple[str, ...] = ("tariff", "reference_cost", "total_hrg_average")

# The trim points that price the excess bed days of a reference-cost year with none of its
# own when the configuration names none: 2017/18, the only episode trim points found
# public (docs/reference-costs.md). Every run manifest and summary line says where it was used.
DEFAULT_TRIMPOINTS_SUBSTITUTE = "2017-18"

def read_toml(path: str | Path, what: str = "configuration file") -> dict[str, Any]:
    """A TOML file as a dict; a missing or malformed file is a ConfigError naming it."""
    p = Path(path)
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such {what}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None


def config_error(source: str, what: str, exc: ValidationError,
                 model: type[BaseModel] | None = None) -> ConfigError:
    """One ConfigError listing every field pydantic refused, as ``  field: message`` lines;
    for an unknown key of ``model`` (or of a model inside it), the closest valid key."""
    lines = []
    for e in exc.errors():
        msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
        line = f"  {'.'.join(str(x) for x in e['loc']) or '(top level)'}: {msg}"
        if e["type"] == "extra_forbidden" and model is not None:
            keys = _keys_at(model, e["loc"][:-1])
            close = difflib.get_close_matches(str(e["loc"][-1]), keys, n=1, cutoff=0.6)
            line += (f" (did you mean {close[0]!r}?)" if close else "") + (
                f"; valid keys here: {', '.join(keys)}" if keys else "")
        lines.append(line)
    return ConfigError(f"{source}: invalid {what}:\n" + "\n".join(lines))


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names of the model found at ``loc`` inside ``model`` (a submodel field, an
    optional one, or the values of a mapping of them); empty when none is found there."""
    annotation: Any = model
    for part in loc:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) is dict or typing.get_origin(annotation) is Mapping:
            annotation = typing.get_args(annotation)[1]  # the key is a mapping's key
        else:
            return []
        annotation = _model_in(annotation)
    return list(annotation.model_fields) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _model_in(annotation: Any) -> Any:
    """``X`` for ``X | None``; the annotation itself otherwise."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


_DEFAULT_CHAINS: dict[str, tuple[str, ...]] = {
    "purchaser": ("tariff", "reference_cost"),
    "provider": ("reference_cost",),
}


def emergency_methods(codes: Iterable[object]) -> tuple[str, ...]:
    """Admission method codes for the short-stay emergency rule, normalised, each checked to
    be an emergency method (the configuration and the parameter table both read them here).

    Raises:
        ValueError: none given, or a code that is not an emergency admission method.
    """
    out = tuple(str(c).strip().upper() for c in codes)
    unknown = [c for c in out if c not in EMERGENCY_METHODS]
    if not out or unknown:
        raise ValueError(
            f"{'no admission method given' if not out else f'not emergency admission methods: {unknown}'}"
            f"; give some of {', '.join(EMERGENCY_METHODS)}")
    return out


class CostingConfig(BaseModel):
    """How records are priced.

    Editions: a ``*_edition`` of None means dated mode for that table kind (each record
    priced at the edition in force on its date); a value fixes one edition for every record
    (as the ICP evaluation priced everything at 2008/09).

    Example:
        >>> from costing import CostingConfig
        >>> cfg = CostingConfig(perspective="provider", reference_cost_edition="2017-18")
        >>> cfg.resolved_chain()
        ('reference_cost',)
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    perspective: Literal["purchaser", "provider"] = "purchaser"
    tariff_edition: str | None = None
    reference_cost_edition: str | None = None
    trimpoints_edition: str | None = Field(
        None, description="Episode trim points for the excess bed days of a reference-cost year "
        "that has none of its own (a year's own trim points always price it); None: the "
        "declared default substitute, DEFAULT_TRIMPOINTS_SUBSTITUTE."
    )
    mff_edition: str | None = Field(
        None, description="MFF edition; None: the tariff edition's own year if held, else the newest."
    )
    # reference_cost_edition None with a fixed tariff_edition: the tariff's own year, or no
    # fallback edition when that year has none (costing.pairing.reference_cost_pairing)
    chain: tuple[Level, ...] | None = Field(
        None, description="Declared source order; None: purchaser (tariff, reference_cost), "
        "provider (reference_cost,)."
    )
    mff: bool = False
    short_stay_emergency: bool = True
    long_stay: bool = True
    # Policy thresholds: None takes each edition's value from the dated parameter table
    # (costing.pricing.parameters, docs/tables.md#parameters); a value overrides every edition.
    nes_los_threshold: int | None = Field(
        None, ge=0, description="Non-elective spells with LOS below this use the NES reference "
        "cost; None: the reference-cost edition's value in the parameter table."
    )
    sse_max_los: int | None = Field(
        None, ge=0, description="Short-stay emergency applies when LOS <= this; None: the tariff "
        "edition's value in the parameter table."
    )
    sse_min_age: int | None = Field(
        None, ge=0, description="Short-stay emergency applies from this age; None: the tariff "
        "edition's value in the parameter table."
    )
    sse_admission_methods: tuple[str, ...] | None = Field(
        None, description="Emergency admission methods short-stay emergency applies to (e.g. "
        "[\"21\", \"22\"]); None: the tariff edition's value in the parameter table."
    )
    max_los_days: int = Field(
        3650, gt=0, description="A longer stay is treated as an invalid record (absurd LOS)."
    )
    apc_date: Literal["admission", "discharge"] = "admission"
    apc_unit: Literal["spell", "episode"] | None = Field(
        None, description="Price APC per spell (built from episodes) or per episode; None: "
        "spell for purchaser, episode for provider."
    )
    spell_hrg: Literal["column", "first_episode", "last_episode"] = Field(
        "column", description="Spell HRG: the spell_hrg_code column (single-episode spells "
        "use their own HRG), or a named rule."
    )
    rp_source: Literal["reference_cost", "tariff_day_case"] = "reference_cost"
    op_reference_department: Literal["CL", "NCL"] = "CL"
    default_hrg_version: Literal["v3.5", "HRG4"] = "HRG4"
    price_base: str | None = None
    index: str | None = None
    strict: bool = False

    @field_validator("tariff_edition", "reference_cost_edition", "trimpoints_edition",
                     "mff_edition", "price_base")
    @classmethod
    def _edition(cls, v: str | None) -> str | None:
        return None if v is None else check_edition(v)

    @field_validator("sse_admission_methods")
    @classmethod
    def _methods(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return None
        try:
            return emergency_methods(v)
        except ValueError as exc:
            raise ValueError(f"{exc}, or leave it out for the table's") from None

    @model_validator(mode="after")
    def _check(self) -> CostingConfig:
        if (self.price_base is None) != (self.index is None):
            raise ValueError("price_base and index go together: give both or neither")
        if self.chain is not None:
            if not self.chain:
                raise ValueError("chain must name at least one source")
            if len(set(self.chain)) != len(self.chain):
                raise ValueError("chain names a source twice")
        return self

    def resolved_chain(self) -> tuple[str, ...]:
        return tuple(self.chain) if self.chain else _DEFAULT_CHAINS[self.perspective]

    def resolved_apc_unit(self) -> str:
        if self.apc_unit:
            return self.apc_unit
        return "spell" if self.perspective == "purchaser" else "episode"

    def resolved(self) -> dict[str, Any]:
        """The configuration with defaults resolved, as plain JSON-able data."""
        d = self.model_dump(mode="json")
        d["chain"] = list(self.resolved_chain())
        d["apc_unit"] = self.resolved_apc_unit()
        return d

    def sha256(self) -> str:
        """Hash of the resolved configuration (canonical JSON)."""
        text = json.dumps(self.resolved(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_toml(cls, path: str | Path, table: str | None = None) -> CostingConfig:
        """Load from a TOML file (optionally one [table] of it, e.g. ``pricing``)."""
        p = Path(path)
        data = read_toml(p)
        if table is not None:
            data = data.get(table, {})
        return cls.from_mapping(data, source=str(p))

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "configuration") -> CostingConfig:
        """Build from a mapping, turning validation problems into one ConfigError."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise config_error(source, "configuration", exc, cls) from None
