"""Adjustments after the chain has priced a record: the Market Forces Factor
(docs/domain.md#mff, tariff prices only) and inflation to a price base (#inflation)."""

from __future__ import annotations

import polars as pl

from costing.config import CostingConfig
from costing.errors import ConfigError
from costing.pairing import mff_edition_for
from costing.pricing.rules.base import Rule
from costing.tables import Edition, TableSet

__all__ = ["MFF", "INFLATION", "mff_frame", "index_frame", "PRICED_BY_CHAIN"]

# the chain priced the record and no record-level status (invalid, excluded...) came first
PRICED_BY_CHAIN = pl.col("_pre_status").is_null() & pl.col("_chain_cost").is_not_null()

MFF = Rule(
    name="market_forces_factor", output="mff_factor",
    reads=("provider_code", "_tariff_edition", "_pre_status", "_chain_cost", "_level", "_mff"),
    when=lambda cfg: PRICED_BY_CHAIN & (pl.col("_level") == "tariff"),
    value=lambda cfg: pl.col("_mff"), active=lambda cfg: cfg.mff, section="mff",
)
INFLATION = Rule(
    name="inflation", output="inflation_factor",
    reads=("_price_edition", "_pre_status", "_chain_cost", "_inflation"),
    when=lambda cfg: PRICED_BY_CHAIN, value=lambda cfg: pl.col("_inflation"),
    active=lambda cfg: cfg.index is not None, section="inflation",
)


def mff_frame(tables: TableSet, cfg: CostingConfig, tariff: tuple[Edition, ...]) -> pl.LazyFrame:
    """Provider factors per tariff edition: the MFF of the tariff's year by default
    (:func:`costing.pairing.mff_edition_for`)."""
    if not tables.editions("mff"):
        raise ConfigError("mff is on but the tables hold no MFF edition; import one or turn mff off")
    return pl.concat([
        tables.table("mff", str(mff_edition_for(tables, cfg, e.edition)), "mff").lazy().select(
            pl.col("provider_code").alias("_mff_provider"), pl.lit(e.edition).alias("_tariff_edition"),
            pl.col("mff_factor").alias("_mff"))
        for e in tariff
    ] or [pl.LazyFrame(schema={"_mff_provider": pl.String, "_tariff_edition": pl.String, "_mff": pl.Float64})])


def index_frame(tables: TableSet, cfg: CostingConfig) -> pl.LazyFrame:
    """The inflation factor (index at the price base / index of the pricing edition's year)
    per financial year."""
    if cfg.index is None or cfg.price_base is None:
        raise ConfigError("price_base and index go together: give both or neither")
    series = tables.index_series(cfg.index)
    base = series.filter(pl.col("financial_year") == cfg.price_base)
    if base.height == 0:
        raise ConfigError(
            f"price_base {cfg.price_base} is not in index {cfg.index!r} "
            f"(it covers {series['financial_year'].min()!s} to {series['financial_year'].max()!s})")
    base_value = base["value"][0]
    return series.lazy().select(
        pl.col("financial_year").alias("_price_edition"),
        (pl.lit(base_value) / pl.col("value")).alias("_inflation"),
    )
