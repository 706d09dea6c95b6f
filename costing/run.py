"""The whole pipeline from one run file: read -> price -> windows -> (DiD) -> outputs.

A run file (TOML) names the tables, the inputs per setting with their column preset, the
cohort, the pricing configuration, the windows, an optional evaluation and the output
folder. Paths in it are relative to the run file. ``run`` returns every frame it wrote, so
evaluation code gets the same results as ``costing run RUN.toml`` without shelling out.

Example run file::

    [tables]
    paths = ["shipped", "tables"]

    [inputs.apc]
    path = "data/apc.csv"
    columns = "hes"

    [cohort]
    path = "data/cohort.csv"

    [pricing]
    perspective = "purchaser"
    tariff_edition = "2017-18"
    reference_cost_edition = "2017-18"

    [windows]
    windows = [-1, 0]

    [evaluate]
    pre = -1
    post = 0

    [output]
    dir = "output"

    [unpriced]             # optional: warn / fail past these unpriced shares (0 to 1)
    warn = 0.05
    fail = 0.25
"""

from __future__ import annotations

import logging
import sys
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from costing.config import CostingConfig, config_error, read_toml
from costing.errors import ConfigError
from costing.tables import TableSet, load_tables
from costing.unpriced import FAIL_SHARE, WARN_SHARE, UnpricedAssessment, check_thresholds

__all__ = ["RunConfig", "RunResult", "run", "InputSpec", "EngineSpec"]

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InputSpec(_Strict):
    """One activity extract: file(s), column preset or mapping file, sheet, encoding."""

    path: str | list[str]
    columns: str = "hes"
    sheet: str | int | None = None
    encoding: str = "utf8"
    hrg_version: Literal["v3.5", "HRG4"] | None = None
    date_format: str | None = None


class CohortSpec(_Strict):
    path: str
    columns: dict[str, str] | None = None
    sheet: str | int | None = None
    date_format: str | None = None


class WindowSpec(_Strict):
    windows: tuple[int, ...] = (-1, 0)
    months: int = Field(6, gt=0)
    assign: Literal["admission", "discharge", "apportion"] = "admission"
    by: Literal["category", "pod"] = "category"


class EvaluateSpec(_Strict):
    pre: int | tuple[int, ...] = -1
    post: int | tuple[int, ...] = 0
    group: str = "group"
    treated: str = "intervention"
    weight: str | None = None
    cluster: str | None = "matched_set"
    n_boot: int = Field(2000, gt=0)
    seed: int = 0
    ci: float = Field(0.95, gt=0, lt=1)
    censoring: Literal["observed", "complete", "scale"] = "observed"
    pretrend: tuple[int, ...] | None = None
    measure: Literal["both", "activity", "cost"] = "both"
    subgroups: tuple[str, ...] = ()  # cohort columns: the table again for each value
    adjust: tuple[str, ...] | None = None  # cohort covariates: adds the adjusted estimate
    balance: tuple[str, ...] | None = None  # covariates of the balance table (balance.csv)


class MatchSpec(_Strict):
    """``[match]``: build the cohort by matching cases to a candidate pool (``costing.match``)."""

    cases: str
    pool: str
    covariates: tuple[str, ...] = ()
    k: int = Field(1, ge=1, le=5)
    exact: tuple[str, ...] = ()
    caliper: float | None = Field(0.2, gt=0)
    score: Literal["both", "propensity", "prognostic"] = "both"
    seed: int = 0
    min_k: int = Field(1, ge=1, le=5)
    windows: tuple[int, ...] = (-4, -3, -2, -1)
    months: int = Field(6, gt=0)
    exclude_same: str | None = None
    index_spell_days: int | None = Field(None, ge=0)


class OutputSpec(_Strict):
    dir: str = "output"
    priced_format: Literal["parquet", "csv"] = "parquet"
    report: bool = True
    wide: bool = True


class TablesSpec(_Strict):
    paths: list[str] = ["shipped"]


class UnpricedSpec(_Strict):
    """Thresholds on the unpriced share of records or of £-weighted activity (0 to 1):
    past ``warn`` the run warns, past ``fail`` (or with a whole category unpriced) it fails."""

    warn: float = Field(WARN_SHARE, ge=0, le=1)
    fail: float = Field(FAIL_SHARE, ge=0, le=1)

    @model_validator(mode="after")
    def _order(self) -> UnpricedSpec:
        check_thresholds(self.warn, self.fail)
        return self


class EngineSpec(_Strict):
    """Where the run computes: ``polars`` (this machine) or ``spark`` (see docs/spark.md)."""

    name: Literal["polars", "spark"] = "polars"
    master: str | None = None  # spark: local[*], spark://host:7077, yarn; None: active or local[*]
    partitions: int | None = Field(None, gt=0)  # spark: patient buckets; None: from the row count
    conf: dict[str, str] = {}  # spark: settings, e.g. {"spark.executor.memory" = "8g"}


class RunConfig(_Strict):
    """A whole run, as read from a TOML run file (paths relative to ``base_dir``)."""

    tables: TablesSpec = TablesSpec()
    inputs: dict[Literal["apc", "op", "ae"], InputSpec]
    cohort: CohortSpec | None = None
    pricing: CostingConfig = CostingConfig()
    windows: WindowSpec = WindowSpec()
    evaluate: EvaluateSpec | None = None
    match: MatchSpec | None = None
    output: OutputSpec = OutputSpec()
    unpriced: UnpricedSpec = UnpricedSpec()
    engine: EngineSpec = EngineSpec()
    base_dir: str = "."
    run_file: str | None = None

    @model_validator(mode="after")
    def _one_cohort(self) -> RunConfig:
        if self.match is not None and self.cohort is not None:
            raise ValueError("give [cohort] (a cohort you built) or [match] (cases and a pool "
                             "to build it from), not both")
        return self

    @classmethod
    def from_toml(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        data = read_toml(p, "run file")
        data.setdefault("base_dir", str(p.resolve().parent))
        data.setdefault("run_file", str(p.resolve()))
        return cls.from_mapping(data, source=str(p))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "run configuration") -> RunConfig:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise config_error(source, "run file", exc, cls) from None

    def resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else Path(self.base_dir) / p

    def input_paths(self) -> list[Path]:
        out: list[Path] = []
        for spec in self.inputs.values():
            for p in [spec.path] if isinstance(spec.path, str) else spec.path:
                out.append(self.resolve(p))
        if self.cohort:
            out.append(self.resolve(self.cohort.path))
        if self.match:
            out += [self.resolve(self.match.cases), self.resolve(self.match.pool)]
        return out

    def protected_paths(self) -> list[Path]:
        """Everything the run reads: inputs, cohort, run file, table folders, column mappings."""
        out = self.input_paths()
        out += [self.resolve(p) for p in self.tables.paths if p != "shipped"]
        out += [self.resolve(s.columns) for s in self.inputs.values()
                if s.columns not in ("hes", "hes35", "canonical")]
        if self.run_file:
            out.append(Path(self.run_file))
        return out


@dataclass
class RunResult:
    """Everything a run produced, and where it was written."""

    priced: pl.DataFrame
    window_costs: pl.DataFrame | None
    audit: pl.DataFrame | None
    coverage: pl.DataFrame
    did: pl.DataFrame | None
    manifest: dict[str, Any]
    output_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    records_in: int = 0
    unpriced: UnpricedAssessment | None = None
    match: Any = None  # the MatchResult when the run file has [match]
    warnings: list[str] = field(default_factory=list)
    trimpoints: pl.DataFrame | None = None  # see costing.coverage.trimpoint_coverage
    balance: pl.DataFrame | None = None  # the balance table, when [evaluate] balance is set


def _columns_arg(cfg: RunConfig, columns: str) -> str | Path:
    if columns in ("hes", "hes35", "canonical"):
        return columns
    return cfg.resolve(columns)


def read_inputs(cfg: RunConfig) -> pl.LazyFrame:
    """Every input extract as one canonical activity frame."""
    from costing.io import read_activity

    frames = []
    for setting, spec in cfg.inputs.items():
        paths = [spec.path] if isinstance(spec.path, str) else spec.path
        frames.append(read_activity(
            [cfg.resolve(p) for p in paths], setting=setting,
            columns=_columns_arg(cfg, spec.columns), sheet=spec.sheet,
            encoding=spec.encoding, strict=cfg.pricing.strict, hrg_version=spec.hrg_version,
            date_format=spec.date_format,
        ))
    if not frames:
        raise ConfigError("the run file names no inputs ([inputs.apc], [inputs.op] or [inputs.ae])")
    return pl.concat(frames, how="diagonal_relaxed")


def run(config: RunConfig | str | Path, tables: TableSet | None = None,
        progress: Progress | None = None, *, engine: Literal["polars", "spark"] | None = None,
        master: str | None = None) -> RunResult:
    """Run the whole pipeline and write every output into the run's output folder.

    Args:
        config: a RunConfig, or the path of a TOML run file.
        tables: tables to use instead of those the run file names.
        progress: called with a short message at each stage (the CLI shows them).
        engine: ``polars`` or ``spark``, instead of the run file's ``[engine] name``.
        master: the Spark master, instead of the run file's ``[engine] master``.

    The output folder is written whole or not at all: every file goes into a sibling
    temporary folder that replaces the previous output folder only when the run succeeds.
    An output folder that is, or holds, an input (extract, cohort, run file, tables) is
    refused, as is an existing folder with other files and no run manifest.

    Returns:
        A RunResult with the frames, the files written and the unpriced assessment
        (``result.unpriced.level`` is "fail" past the failure threshold: the CLI exits 1).
        Under the Spark engine the priced records and the audit stay in Spark (written to
        ``files["priced"]`` and ``files["audit"]``, Parquet datasets): ``priced`` holds their
        counts (``n_records`` and cost by category, status and source) and ``audit`` is None.
    """
    from costing.io import atomic_folder, refuse_overwriting_inputs

    cfg = config if isinstance(config, RunConfig) else RunConfig.from_toml(config)
    final = cfg.resolve(cfg.output.dir)
    refuse_overwriting_inputs([final], cfg.protected_paths())
    with atomic_folder(final) as work:
        result = _run(cfg, tables, progress, work, engine, master)
    result.files = {k: final / p.relative_to(work) for k, p in result.files.items()}
    result.output_dir = final
    return result


def _run(cfg: RunConfig, tables: TableSet | None, progress: Progress | None, out_dir: Path,
         engine: Literal["polars", "spark"] | None, master: str | None) -> RunResult:
    """The pipeline, writing into ``out_dir`` (the temporary folder of ``run``)."""
    from costing.io import read_cohort, write_frame
    from costing.pricing import price
    from costing.report import coverage_table
    from costing.unpriced import assess_unpriced

    say = progress or (lambda _msg: None)
    t0 = time.perf_counter()
    ts = tables or load_tables([p if p == "shipped" else str(cfg.resolve(p)) for p in cfg.tables.paths])
    overrides = {k: v for k, v in {"name": engine, "master": master}.items() if v is not None}
    if overrides:
        cfg = cfg.model_copy(update={"engine": cfg.engine.model_copy(update=overrides)})
    if cfg.engine.name == "spark":
        from costing.spark_run import run_spark

        # into the temporary folder too, so the swap keeps the Spark run's outputs
        return run_spark(cfg, ts, say, out_dir)
    files: dict[str, Path] = {}

    say("reading inputs")
    activity = read_inputs(cfg)
    say("pricing")
    priced = price(activity, ts, cfg.pricing)
    # every input record is one priced row or one episode of a spell: no second read to count
    records_in = int(priced["n_episodes"].sum())
    files["priced"] = write_frame(priced, out_dir / f"priced.{cfg.output.priced_format}")
    unpriced = assess_unpriced(priced, warn=cfg.unpriced.warn, fail=cfg.unpriced.fail)
    unpriced_windows = None

    cohort = windows = audit_frame = did_frame = matched = balance_frame = None
    from costing.io import duplicate_warnings

    warnings: list[str] = duplicate_warnings(priced)  # file-level: repeated record ids
    w = cfg.windows
    in_windows = priced
    if cfg.match is not None:
        say("matching")
        matched, in_windows = _match(cfg, priced, files, out_dir)
        cohort = matched.cohort
    if cfg.cohort is not None:
        say("reading cohort")
        cohort = read_cohort(cfg.resolve(cfg.cohort.path), columns=cfg.cohort.columns,
                             sheet=cfg.cohort.sheet, date_format=cfg.cohort.date_format)
    if cohort is not None:
        from costing.windows import audit_summary, cost_by_window_and_audit, widen

        say("windows")
        # window costs and the audit from one assignment of every record
        windows, audit_frame = cost_by_window_and_audit(in_windows, cohort, windows=w.windows,
                                                        months=w.months, assign=w.assign, by=w.by)
        files["window_costs"] = write_frame(windows, out_dir / "window_costs.csv")
        if cfg.output.wide:
            files["window_costs_wide"] = write_frame(widen(windows, by=w.by),
                                                     out_dir / "window_costs_wide.csv")
        files["audit"] = write_frame(audit_frame, out_dir / "audit.parquet")
        unpriced_windows = unpriced_table(cfg, windows)
        files["unpriced"] = write_frame(unpriced_windows, out_dir / "unpriced.csv")
        files["audit_summary"] = write_frame(audit_summary(audit_frame), out_dir / "audit_summary.csv")
        if cfg.evaluate is not None:
            e = cfg.evaluate
            pretrend = e.pretrend
            if matched is not None and not pretrend:
                # always for matched cohorts: cases picked at a peak show a pre-trend
                pretrend = _matched_pretrend(w.windows, warnings)
            did_frame, trend = evaluate_windows(e, windows, cohort, say, pretrend)
            if matched is not None and trend is not None:
                warnings += _pretrend_warnings(trend)
            files["did"] = write_frame(did_frame, out_dir / "did.csv")
            balance_frame = balance_table(e, windows, cohort)
            if balance_frame is not None:
                files["balance"] = write_frame(balance_frame, out_dir / "balance.csv")

    cov = coverage_table(priced, cohort, w.windows if cohort is not None else None, w.months, w.assign)
    files["coverage"] = write_frame(cov, out_dir / "coverage.csv")
    from costing.pairing import hrg_not_found_by_edition, run_warnings

    by_edition = hrg_not_found_by_edition(priced, ts)
    files["coverage_by_edition"] = write_frame(by_edition, out_dir / "coverage_by_edition.csv")
    warnings += run_warnings(priced, ts, cfg.pricing)  # editions: consultation, year and grouper pairing
    from costing.coverage import trimpoint_coverage

    # which trim points priced which reference-cost year, and the records they missed
    trim = trimpoint_coverage(priced, ts, cfg.pricing)
    files["coverage_trimpoints"] = write_frame(trim, out_dir / "coverage_trimpoints.csv")

    say("manifest")
    from costing.manifest import run_manifest
    from costing.pricing.parameters import parameters_used

    manifest = run_manifest(
        config=cfg.model_dump(mode="json", exclude={"base_dir", "run_file", "engine"})
        | {"pricing": cfg.pricing.resolved()},
        tables=ts, inputs=cfg.input_paths(),
        outputs={k: v for k, v in {"priced": priced, "window_costs": windows, "did": did_frame}.items()
                 if v is not None},
        counts_by_status=priced,  # counted (records and cost) by run_manifest
        rows_in={"records": records_in, "cohort_patients": cohort.height if cohort is not None else 0},
    ) | {"trimpoints": trim.to_dicts(), "parameters": parameters_used(ts, cfg.pricing, priced)}
    write_manifest_and_report(cfg, manifest, unpriced, warnings, files, out_dir, say, cohort,
                              priced=priced, coverage=cov, window_costs=windows,
                              did_table=did_frame, unpriced_windows=unpriced_windows,
                              match_balance=matched.balance if matched is not None else None,
                              balance_table=balance_frame)
    return RunResult(priced=priced, window_costs=windows, audit=audit_frame, coverage=cov,
                     did=did_frame, manifest=manifest, output_dir=out_dir, files=files,
                     seconds=time.perf_counter() - t0, records_in=records_in, match=matched,
                     warnings=warnings, trimpoints=trim, balance=balance_frame, unpriced=unpriced)


def _match(cfg: RunConfig, priced: pl.DataFrame, files: dict[str, Path],
           out_dir: Path) -> tuple[Any, pl.DataFrame]:
    """``[match]``: the matched cohort and its outputs; the priced records the windows use
    (without the index spells when ``index_spell_days`` is set: from both arms)."""
    from costing.io import read_cohort, read_table, write_frame
    from costing.match import index_spells, match

    m = cfg.match
    assert m is not None
    result = match(
        read_cohort(cfg.resolve(m.cases)), read_table(cfg.resolve(m.pool)), priced,
        covariates=m.covariates, k=m.k, exact=m.exact, caliper=m.caliper, score=m.score,
        seed=m.seed, min_k=m.min_k, windows=m.windows, months=m.months,
        exclude_same=m.exclude_same, index_spell_days=m.index_spell_days,
    )
    d = result.diagnostics
    files["matched_cohort"] = write_frame(result.cohort, out_dir / "matched_cohort.csv")
    files["match_balance"] = write_frame(result.balance, out_dir / "match_balance.csv")
    files["match_strata"] = write_frame(d.strata, out_dir / "match_strata.csv")
    files["match_unmatched"] = write_frame(d.unmatched, out_dir / "match_unmatched.csv")
    files["match_summary"] = write_frame(
        pl.concat([d.summary(), pl.DataFrame({"measure": ["seed"], "value": [float(m.seed)]})]),
        out_dir / "match_summary.csv")
    files["love_plot"] = out_dir / "love_plot.png"
    result.love_plot(files["love_plot"])
    if m.index_spell_days is None:
        return result, priced
    spell = index_spells(priced, result.cohort, m.index_spell_days)
    files["index_spells"] = write_frame(priced.filter(spell), out_dir / "index_spells.csv")
    return result, priced.filter(~spell)


def unpriced_table(cfg: RunConfig, windows: pl.DataFrame) -> pl.DataFrame:
    """``unpriced.csv``: unpriced records per arm (the evaluation's), window and category.
    Both engines call this on their window costs."""
    from costing.unpriced import unpriced_by_window

    e = cfg.evaluate
    arms = {"group": e.group, "treated": e.treated} if e is not None else {}
    return unpriced_by_window(windows, by=cfg.windows.by, **arms)


def balance_table(e: EvaluateSpec, windows: pl.DataFrame, cohort: pl.DataFrame) -> pl.DataFrame | None:
    """``[evaluate] balance``: the balance table of the window costs (None when not asked
    for). Both engines call this; the covariates come from the cohort."""
    if e.balance is None:
        return None
    from costing.balance import balance

    return balance(windows, cohort=cohort, covariates=e.balance, pre=e.pre, group=e.group,
                   treated=e.treated, weight=e.weight)


def evaluate_windows(e: EvaluateSpec, windows: pl.DataFrame, cohort: pl.DataFrame | None,
                     say: Progress, pretrend: tuple[int, ...] | None) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """The run file's difference in differences on window costs, with the pre-trend rows
    appended when ``pretrend`` names windows; returns the table and the pre-trend rows alone
    (None without them). Both engines call this, so their DiD arguments cannot drift apart."""
    from costing.did import did, did_pretrend

    say(f"difference in differences ({e.n_boot} bootstrap replicates)")
    # cohort columns beyond those the windows carry (subgroups, covariates) come from the cohort
    extra = bool(e.subgroups or e.adjust or e.balance)
    kwargs: dict[str, Any] = dict(group=e.group, treated=e.treated, by="category", weight=e.weight,
                                  cluster=e.cluster, n_boot=e.n_boot, seed=e.seed, ci=e.ci,
                                  censoring=e.censoring, cohort=cohort if extra else None,
                                  measure=None if e.measure == "both" else e.measure)
    did_frame = did(windows, pre=e.pre, post=e.post, subgroups=e.subgroups, adjust=e.adjust, **kwargs)
    if not pretrend:
        return did_frame, None
    trend = did_pretrend(windows, windows=pretrend, **kwargs)
    return pl.concat([did_frame, trend], how="diagonal_relaxed"), trend


def write_manifest_and_report(cfg: RunConfig, manifest: dict[str, Any], unpriced: UnpricedAssessment,
                              warnings: list[str], files: dict[str, Path], out_dir: Path,
                              say: Progress, cohort: pl.DataFrame | None, **frames: Any) -> None:
    """The end of a run on either engine: the unpriced assessment and warnings into the
    manifest (warnings logged), the manifest written, then the report from ``frames``."""
    from costing.manifest import write_run_manifest
    from costing.report import write_report

    manifest["unpriced"] = unpriced.to_dict()
    if warnings:
        manifest["warnings"] = warnings
        for msg in warnings:
            logger.warning(msg)
    files["manifest"] = write_run_manifest(manifest, out_dir / "run_manifest.json")
    if cfg.output.report:
        say("report")
        files.update(write_report(out_dir, manifest=manifest,
                                  event_study=event_study_options(cfg.evaluate, cohort), **frames))


def event_study_options(e: EvaluateSpec | None, cohort: pl.DataFrame | None) -> dict[str, Any]:
    """The event-study charts' arguments from ``[evaluate]``: the DiD's arms, weights,
    clusters, censoring, interval and subgroups, so the charts show what it estimates."""
    if e is None:
        return {}
    return {"cohort": cohort if e.subgroups else None, "subgroups": e.subgroups or None,
            "group": e.group, "treated": e.treated, "weight": e.weight, "cluster": e.cluster,
            "censoring": e.censoring, "ci": e.ci, "seed": e.seed}


def _matched_pretrend(windows: tuple[int, ...], warnings: list[str]) -> tuple[int, ...] | None:
    pre = tuple(k for k in sorted(windows) if k < 0)
    if len(pre) >= 2:
        return pre
    warnings.append(f"no pre-trend check: the windows {list(windows)} hold fewer than two "
                    "pre-index windows; add one (e.g. windows = [-2, -1, 0]) to see whether "
                    "cases were picked at a peak of use")
    return None


def _pretrend_warnings(trend: pl.DataFrame) -> list[str]:
    """A warning per pre-trend whose interval excludes zero (regression to the mean?)."""
    bad = trend.filter((pl.col("ci_low") > 0) | (pl.col("ci_high") < 0))
    return [
        f"pre-trend {r['pre_windows']} -> {r['post_windows']} in {r['category']}"
        f"{' (' + r['measure'] + ')' if r.get('measure') else ''}: "
        f"{r['did']:,.2f} per patient, interval [{r['ci_low']:,.2f}, {r['ci_high']:,.2f}] "
        "excludes 0: the arms were not on the same path before the index date (cases picked at "
        "a peak of use regress to the mean); treat the main estimate with caution"
        for r in bad.iter_rows(named=True)
    ]


class _CallableModule(types.ModuleType):
    """``costing.run`` is this module, and calling it calls :func:`run`: ``costing.run(path)``
    and ``costing.run.run(path)`` are the same call (both are documented and used)."""

    def __call__(self, config: RunConfig | str | Path, tables: TableSet | None = None,
                 progress: Progress | None = None) -> RunResult:
        return run(config, tables, progress)


sys.modules[__name__].__class__ = _CallableModule
