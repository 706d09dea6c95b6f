"""Which editions a run pairs, and what a user should be told about the pairing.

Purchaser pricing reads two kinds of table: the tariff and, where the tariff has no price,
the reference costs. Their years must match, or the mismatch must be chosen openly:

* dated mode (no edition fixed): each record takes the editions in force on its date, so
  the tariff and reference costs it uses are of the same year by construction; a year with
  no reference costs of its own (2018-19, 2022-23 as shipped) leaves a record that needs
  the fallback with ``no_edition_for_date``;
* a fixed tariff edition with no reference-cost edition configured falls back to the
  reference costs of the same year when they are held, and to none otherwise (never the
  nearest year);
* a reference-cost edition named in the configuration is used as named; if its year
  differs from the tariff's, the run records a warning.

:func:`run_warnings` lists, for the editions a priced frame actually used: consultation
(proposed) prices, a tariff paired with reference costs of another year, tariff and
reference-cost editions whose HRG4+ grouper phases differ, and an MFF of another year than
the tariff. :func:`hrg_not_found_by_edition` puts a number on a grouper mismatch.
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from costing.config import CostingConfig
from costing.tables import TableSet

__all__ = ["NO_PAIRED_EDITION", "grouper_phase", "hrg_not_found_by_edition", "mff_edition_for",
           "reference_cost_pairing", "run_warnings"]

# reference_cost_pairing's answer when a fixed tariff year has no reference costs of its own
NO_PAIRED_EDITION: Final = ""
_PHASE_RE: Final = re.compile(r"(\d{4})\s*[/-]\s*(\d{2})")
_FAMILY_RE: Final = re.compile(r"HRG ?4\+?|HRG v?3\.5")


def reference_cost_pairing(tables: TableSet, cfg: CostingConfig) -> str | None:
    """The reference-cost edition a configuration prices its fallback at.

    Returns:
        The configured edition if one is named; with a fixed tariff edition and none named,
        the tariff's year when held, else :data:`NO_PAIRED_EDITION` (no fallback edition:
        records that need one get ``no_edition_for_date``); otherwise None (dated mode).

    Example:
        >>> from costing import CostingConfig, load_tables
        >>> reference_cost_pairing(load_tables(), CostingConfig(tariff_edition="2016-17"))
        '2016-17'
        >>> reference_cost_pairing(load_tables(), CostingConfig(tariff_edition="2022-23"))
        ''
    """
    if cfg.reference_cost_edition is not None:
        return cfg.reference_cost_edition
    chain = cfg.resolved_chain()
    if cfg.tariff_edition is None or "tariff" not in chain:
        return None
    if cfg.tariff_edition in tables.editions("reference_cost"):
        return cfg.tariff_edition
    return NO_PAIRED_EDITION


def mff_edition_for(tables: TableSet, cfg: CostingConfig, tariff_edition: str) -> str | None:
    """The MFF edition applied to prices of a tariff edition: the configured one, else the
    tariff's own year when held, else the newest held (None when none is held)."""
    held = tables.editions("mff")
    if cfg.mff_edition is not None:
        return cfg.mff_edition
    if tariff_edition in held:
        return tariff_edition
    return held[-1] if held else None


def grouper_phase(grouper: str | None) -> str | None:
    """The HRG design and year a grouper's name states (``"HRG4 2016/17 Local Payment
    Grouper"`` -> ``"HRG4 2016/17"``, ``"HRG4+ 2016/17 Reference Costs Grouper"`` ->
    ``"HRG4+ 2016/17"``); None when the name is unknown or states neither.

    Example:
        >>> grouper_phase("HRG4+ 2023/24 National Costs Grouper")
        'HRG4+ 2023/24'
    """
    if not grouper:
        return None
    family = _FAMILY_RE.search(grouper)
    year = _PHASE_RE.search(grouper)
    parts = [family.group(0) if family else None, f"{year.group(1)}/{year.group(2)}" if year else None]
    return " ".join(p for p in parts if p) or None


def _used(priced: pl.DataFrame, *cols: str) -> list[tuple[str, ...]]:
    present = [c for c in cols if c in priced.columns]
    if len(present) < len(cols):
        return []
    return [tuple(r) for r in priced.select(cols).unique().drop_nulls().sort(cols).iter_rows()]


def run_warnings(priced: pl.DataFrame, tables: TableSet, cfg: CostingConfig) -> list[str]:
    """Warnings about the editions a priced frame used (each once, in a stable order).

    Example:
        >>> import datetime as dt, polars as pl, costing
        >>> rec = pl.DataFrame({"record_id": ["a"], "patient_id": ["p"], "setting": ["ae"],
        ...     "activity_date": [dt.date(2017, 6, 1)], "hrg_code": ["VB01Z"],
        ...     "department_type": ["01"]})
        >>> priced = costing.price(rec)
        >>> print(run_warnings(priced, costing.load_tables(), costing.CostingConfig())[0][:60])
        tariff 2017-18 holds consultation (proposed) prices, not the
    """
    out: list[str] = []
    for kind, col in (("tariff", "tariff_edition"), ("reference_cost", "reference_cost_edition")):
        for (edition,) in _used(priced, col):
            m = tables.get(kind, edition).manifest
            if m.status == "consultation":
                out.append(f"{kind} {edition} holds consultation (proposed) prices, not the final "
                           f"published ones ({m.sources[0].file_name if m.sources else 'no source'})")
    for tariff, rc in _used(priced, "tariff_edition", "reference_cost_edition"):
        if tariff != rc:
            out.append(f"tariff {tariff} is paired with reference costs {rc} (a different year), "
                       "as the configuration names them: fallback prices are of another year")
        t_phase = grouper_phase(tables.get("tariff", tariff).manifest.grouper)
        r_phase = grouper_phase(tables.get("reference_cost", rc).manifest.grouper)
        if t_phase and r_phase and t_phase != r_phase:
            out.append(f"tariff {tariff} ({t_phase} grouper) and reference costs {rc} "
                       f"({r_phase} grouper) are of different HRG grouper phases: codes of one "
                       "may be unknown to the other (see coverage_by_edition: hrg_not_found)")
    if cfg.mff and "mff_factor" in priced.columns:
        for (tariff,) in _used(priced.filter(pl.col("mff_factor").is_not_null()), "tariff_edition"):
            mff = mff_edition_for(tables, cfg, tariff)
            if mff is not None and mff != tariff:
                out.append(f"tariff {tariff} prices are multiplied by the MFF of {mff} "
                           f"({'as configured' if cfg.mff_edition else 'none of its own year is held'})")
    return out


def hrg_not_found_by_edition(priced: pl.DataFrame, tables: TableSet) -> pl.DataFrame:
    """Per edition used, the share of HRG-coded records whose HRG it does not hold.

    A record counts for the tariff edition and the reference-cost edition it was looked up
    in (``tariff_edition``, ``reference_cost_edition``), when it has an HRG code of that
    edition's HRG version (admitted care and A&E; outpatient procedures too). A high share
    for one edition and not the other points at a grouper phase mismatch.

    Returns:
        kind, edition, grouper, n_records, n_hrg_not_found, share_hrg_not_found.
    """
    schema = {"kind": pl.String, "edition": pl.String, "grouper": pl.String,
              "n_records": pl.UInt32, "n_hrg_not_found": pl.UInt32,
              "share_hrg_not_found": pl.Float64}
    rows = []
    need = {"hrg_code", "setting"}
    for kind, col in (("tariff", "tariff_edition"), ("reference_cost", "reference_cost_edition")):
        if col not in priced.columns or not need <= set(priced.columns):
            continue
        for (edition,) in _used(priced, col):
            ed = tables.get(kind, edition)
            held = _hrg_codes(ed.frames, kind)
            recs = priced.filter((pl.col(col) == edition) & pl.col("hrg_code").is_not_null()
                                 & pl.col("setting").is_in(["apc", "ae"]))
            if "hrg_version" in recs.columns:
                recs = recs.filter(pl.col("hrg_version").fill_null(ed.hrg_version or "")
                                   == (ed.hrg_version or ""))
            missing = int((~recs["hrg_code"].is_in(held.to_list())).sum()) if recs.height else 0
            rows.append({"kind": kind, "edition": edition, "grouper": ed.manifest.grouper,
                         "n_records": recs.height, "n_hrg_not_found": missing,
                         "share_hrg_not_found": missing / recs.height if recs.height else None})
    return pl.DataFrame(rows, schema=schema)


def _hrg_codes(frames: dict[str, pl.DataFrame], kind: str) -> pl.Series:
    if kind == "tariff":
        parts = [frames[r]["hrg_code"] for r in ("apc", "ae") if r in frames]
    else:
        rc = frames["reference_costs"]
        parts = [rc.filter(~pl.col("department_code").is_in(["CL", "NCL"]))["currency_code"]]
    return pl.concat(parts).unique() if parts else pl.Series([], dtype=pl.String)


# --------------------------------------------------------------------------------------
# "what will fall back": a tariff edition against a reference-cost edition
# --------------------------------------------------------------------------------------

COMPARE_GROUPS: Final = ("tariff", "reference_cost_only", "neither")
# point of delivery -> (tariff resource, tariff price columns (any priced), reference-cost
# departments); "combined" stands for the combined day case / elective price
_COMPARE_PODS: Final[dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]] = {
    "DC": ("apc", ("combined_dc_el_price", "dc_price"), ("DC",)),
    "EL": ("apc", ("combined_dc_el_price", "el_price"), ("EL",)),
    "NEL": ("apc", ("nel_price",), ("NEL", "NES")),
    "OP_PROC": ("apc", ("op_procedure_price",), ("OPROC",)),
    "OP_ATTENDANCE": ("op_attendance", ("first_single_price", "first_multi_price",
                                        "followup_single_price", "followup_multi_price"), ("CL",)),
    "AE": ("ae", ("type_1_2_price", "type_3_price"), ("AE",)),
}


def compare_editions(tables: TableSet, tariff: str, reference_costs: str,
                     detail: bool = False) -> pl.DataFrame:
    """What a tariff edition prices and what falls back to a reference-cost edition.

    For each point of delivery, every code either table holds for it (HRGs; treatment
    functions for outpatient attendances; for outpatient procedures, the HRGs with a tariff
    procedure price or an OPROC reference cost) is put in one group: ``tariff`` (the tariff has a price),
    ``reference_cost_only`` (no tariff price, a reference cost) or ``neither``.

    Args:
        tables: the TableSet holding both editions.
        tariff, reference_costs: the editions (``YYYY-YY``).
        detail: one row per code (pod, code_type, code, group) instead of the counts.

    Returns:
        pod, code_type, tariff_edition, reference_cost_edition, group, n_codes (with
        ``detail``: pod, code_type, code, in_tariff, tariff_priced, reference_cost_priced,
        group), sorted.

    Example:
        >>> from costing import load_tables
        >>> c = compare_editions(load_tables(), "2016-17", "2016-17")
        >>> c.filter(pl.col("pod") == "AE").select("group", "n_codes").row(0)
        ('tariff', 11)
    """
    t = tables.get("tariff", tariff)
    rc = tables.table("reference_cost", reference_costs, "reference_costs")
    parts = []
    for pod, (resource, price_cols, departments) in _COMPARE_PODS.items():
        key = "treatment_function_code" if resource == "op_attendance" else "hrg_code"
        code_type = "treatment_function" if resource == "op_attendance" else "hrg"
        if resource in t.frames:
            tab = t.table(resource)
            cols = [c for c in price_cols if c in tab.columns]
            in_tariff = tab.select(pl.col(key).alias("code"),
                                   pl.any_horizontal([pl.col(c).is_not_null() for c in cols])
                                   .alias("tariff_priced"))
        else:
            in_tariff = pl.DataFrame(schema={"code": pl.String, "tariff_priced": pl.Boolean})
        if pod == "OP_PROC":  # the APC table lists every HRG; procedures are the priced ones
            in_tariff = in_tariff.filter(pl.col("tariff_priced"))
        rc_code = pl.col("service_code") if resource == "op_attendance" else pl.col("currency_code")
        in_rc = (rc.filter(pl.col("department_code").is_in(departments)
                           & rc_code.is_not_null() & (rc_code != ""))  # not department-wide rows
                 .group_by(rc_code.alias("code"))
                 .agg(pl.col("unit_cost").is_not_null().any().alias("reference_cost_priced")))
        parts.append(
            in_tariff.with_columns(pl.lit(True).alias("in_tariff"))
            .join(in_rc, on="code", how="full", coalesce=True)
            .with_columns(pl.lit(pod).alias("pod"), pl.lit(code_type).alias("code_type"),
                          pl.col("in_tariff").fill_null(False),
                          pl.col("tariff_priced").fill_null(False),
                          pl.col("reference_cost_priced").fill_null(False))
        )
    codes = pl.concat(parts, how="diagonal_relaxed").with_columns(
        pl.when(pl.col("tariff_priced")).then(pl.lit(COMPARE_GROUPS[0]))
        .when(pl.col("reference_cost_priced")).then(pl.lit(COMPARE_GROUPS[1]))
        .otherwise(pl.lit(COMPARE_GROUPS[2])).alias("group")
    )
    pod_order = pl.col("pod").replace_strict(list(_COMPARE_PODS), range(len(_COMPARE_PODS)))
    group_order = pl.col("group").replace_strict(list(COMPARE_GROUPS), range(len(COMPARE_GROUPS)))
    if detail:
        return codes.select("pod", "code_type", "code", "in_tariff", "tariff_priced",
                            "reference_cost_priced", "group").sort(pod_order, "code")
    counts = codes.group_by("pod", "code_type", "group").agg(pl.len().cast(pl.UInt32).alias("n_codes"))
    return counts.select(
        "pod", "code_type", pl.lit(tariff).alias("tariff_edition"),
        pl.lit(reference_costs).alias("reference_cost_edition"), "group", "n_codes",
    ).sort(pod_order, group_order)
