"""Generate the synthetic ICP-style worked example: extracts and cohort.

Everything here is SYNTHETIC. No real patient is described. The run file prices the records
at the real national tariff 2016/17 (shipped, final Annex A), with the 2016/17 reference costs
(shipped) as the fallback: both are editions of the same year.

The study is shaped like the Integrated Care Pilots (ICP) case-management evaluation:

* 2 sites x 150 intervention (case-managed) patients, index dates spread over 2008/09-2009/10;
* 3 or 4 matched controls per case (most 4), sharing their case's index date, with
  ``matched_set`` = the case's patient id and ``weight`` = 1 for cases, 1/k for k controls;
* a few deaths (``end_of_follow_up``) in the six months after the index date;
* HES-layout extracts: admitted patient care episodes (with some two-episode spells), outpatient
  attendances (with DNAs and procedure HRGs) and A&E attendances, with HRG codes held in the
  shipped 2016/17 reference costs. Most admitted HRGs are also priced by the 2016/17 tariff;
  some are HRG4+ codes the tariff (still on the earlier HRG4 design) does not hold, so they
  fall back to the reference costs on purpose, and the coverage table shows it;
* activity in the windows k = -2, -1 (before) and 0 (after the index date), and a thinner
  scatter in k = -3 and k = +1, outside the windows the run uses (it shows in the audit);
* a handful of awkward records (UZ01Z, an HRG no table knows, a HES dummy date, a spell with
  no spell HRG, an A&E record with no HRG, activity of a patient not in the cohort, an
  outpatient attendance dated after the patient's death).

The intervention effect is built in: after the index date case-managed patients have MORE
emergency admissions (and A&E attendances) and FEWER elective admissions and outpatient
attendances than their controls; before it both arms follow the same (slightly rising) trend,
so the pre-trend check (-2 -> -1) should show no effect. The effect is full at the
case-management site (A) and weaker at the "other" site (B) (``site_type`` in the cohort), and
the cases are frailer and more often women than their age-matched controls, so they cost more
before the index date too (``sex`` and ``prior_cost``, the prior-year cost, in the cohort): a
built-in imbalance for the balance table and the risk adjustment to show. All of these effects
are SYNTHETIC choices of this generator, not findings.

Run from the repository root (``make demo`` does it)::

    .venv/bin/python examples/icp/generate.py

It writes ``data/*.csv`` next to this file, overwriting them; the output is byte-identical
from run to run (fixed seed).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"

SEED = 20080401

# ---------------------------------------------------------------------------------------
# Study design
# ---------------------------------------------------------------------------------------

SITES = ("A", "B")  # case-management sites
PROVIDER = {"A": "ZZA", "B": "ZZB"}  # fictitious provider codes (PROCODE3), one per site
CASES_PER_SITE = 200
CONTROLS_PER_CASE = (3, 4)
CONTROLS_PER_CASE_P = (0.2, 0.8)
FIRST_INDEX = np.datetime64("2008-04-01")  # index dates uniform over 2008/09-2009/10
INDEX_SPAN_DAYS = 730
DEATH_P = 0.04  # share of patients who die in the six months after the index date
AGE_RANGE = (65, 96)  # case management targets older people with long-term conditions
FRAILTY_SHAPE = 3.0  # patient frailty ~ Gamma(shape, 1/shape): mean 1

MONTHS = 6
WINDOWS = (-3, -2, -1, 0, 1)  # generated; the run file uses -2, -1 and 0
# Thin activity outside the windows the run uses (-3 and +1).
WINDOW_EXTENT = {-3: 0.3, -2: 1.0, -1: 1.0, 0: 1.0, 1: 0.3}
TREND = {-3: 0.90, -2: 0.95, -1: 1.00, 0: 1.05, 1: 1.10}  # common to both arms: parallel trends

# Events per patient per six months (before trend, frailty and effect).
BASE_RATE = {"nel": 0.55, "el": 0.60, "op": 1.50, "ae_other": 0.30}
# Multiplier on the rate of case-managed patients from the index date on (window >= 0).
EFFECT = {"nel": 1.30, "el": 0.60, "op": 0.65, "ae_other": 1.20}
AE_BEFORE_NEL_P = 0.70  # share of emergency admissions arriving through A&E the same day

# Admitted care. HRGs priced by the 2016/17 tariff and held in the 2016/17 reference costs
# (VA.., DZ37A, LB..); and HRG4+ codes only the reference costs hold (DZ65K, EB03E, DZ11V,
# LA04S, ...): these fall back on purpose.
NEL_HRGS = ("VA10A", "VA10B", "VA10C", "VA10D", "VA11A", "DZ37A", "LB15E",
            "DZ65K", "EB03E", "DZ11V", "LA04S", "DZ19M", "WJ06J", "EB12B")
NEL_HRG_P = (0.14, 0.12, 0.10, 0.06, 0.08, 0.08, 0.04, 0.08, 0.06, 0.06, 0.05, 0.05, 0.04, 0.04)
NEL_METHODS = ("21", "22", "28")
NEL_METHOD_P = (0.85, 0.05, 0.10)
NEL_LOS_P = 0.17  # LOS ~ Geometric(p) - 1 days
SHORT_STAY_HRGS = ("DZ65K",)  # "with length of stay 1 day or less": LOS capped at 1
MAX_LOS = 60
TWO_EPISODE_P = 0.15  # emergency spells with a second (consultant) episode
SECOND_EPISODE_HRGS = ("WJ06J", "DZ19M", "EB12B")
DC_P = 0.65  # elective spells that are day cases
DC_HRGS = ("LB72A", "LB17Z", "MA12Z", "LB14Z", "LB15E", "BZ34C", "FE21Z")
DC_HRG_P = (0.25, 0.15, 0.10, 0.15, 0.10, 0.15, 0.10)
EL_HRGS = ("LB14Z", "MA12Z", "LB15E", "HN12F", "BZ34C")
EL_HRG_P = (0.30, 0.20, 0.20, 0.10, 0.20)
EL_METHODS = ("11", "12", "13")
EL_METHOD_P = (0.70, 0.25, 0.05)
EL_LOS = (1, 7)  # ordinary elective LOS uniform in [1, 7) days

# Outpatients.
OP_TFC = ("300", "320", "340", "430", "130", "110", "101")
OP_TFC_P = (0.20, 0.20, 0.15, 0.15, 0.15, 0.10, 0.05)
# procedure HRGs: LB72A and DZ37A have a 2016/17 outpatient procedure price, the others
# only reference costs (OPROC)
OP_PROC_HRG = {"320": "EY51Z", "340": "DZ37A", "130": "BZ88A", "101": "LB72A", "110": "HN46Z"}
OP_PROC_P = 0.12
OP_FIRSTATT = ("1", "2", "3", "4")
OP_FIRSTATT_P = (0.28, 0.66, 0.02, 0.04)
OP_ATTENDED = ("5", "6", "3", "2", "4", "7")  # 5/6 seen; 3 DNA; 2/4 cancelled; 7 late, not seen
OP_ATTENDED_P = (0.84, 0.03, 0.08, 0.02, 0.02, 0.01)
OP_STAFFTYP = ("01", "02", "03", "04")
OP_STAFFTYP_P = (0.55, 0.10, 0.25, 0.10)

# A&E.
AE_HRGS_ADMITTED = ("VB01Z", "VB02Z", "VB03Z", "VB04Z")
AE_HRGS_ADMITTED_P = (0.30, 0.25, 0.25, 0.20)
AE_HRGS_OTHER = ("VB03Z", "VB04Z", "VB05Z", "VB06Z", "VB07Z", "VB08Z", "VB09Z", "VB11Z")
AE_HRGS_OTHER_P = (0.10, 0.15, 0.15, 0.10, 0.15, 0.15, 0.10, 0.10)
AE_DEPT = ("01", "02", "03")
AE_DEPT_P = (0.85, 0.03, 0.12)
AE_DISP_OTHER = ("02", "03", "04", "10")
AE_DISP_OTHER_P = (0.40, 0.45, 0.10, 0.05)

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def add_months(d: np.ndarray, months: int) -> np.ndarray:
    """``d`` + ``months`` calendar months, clamped at month end (2008-08-31 + 6 = 2009-02-28)."""
    month = d.astype("datetime64[M]")
    day = (d - month.astype("datetime64[D]")).astype(np.int64)
    target = month + months
    last = ((target + 1).astype("datetime64[D]") - target.astype("datetime64[D]")).astype(np.int64)
    return target.astype("datetime64[D]") + np.minimum(day, last - 1)


def iso(d: np.ndarray) -> np.ndarray:
    """Dates as ISO text."""
    return np.datetime_as_string(d, unit="D")


def pick(rng: np.random.Generator, values: tuple[str, ...], p: tuple[float, ...],
         n: int) -> np.ndarray:
    """``n`` draws from ``values`` with probabilities ``p`` (normalised)."""
    return np.asarray(values)[rng.choice(len(values), size=n, p=np.asarray(p) / np.sum(p))]


@dataclass
class Cohort:
    patient_id: np.ndarray
    index_date: np.ndarray
    treated: np.ndarray
    site: np.ndarray
    matched_set: np.ndarray
    weight: np.ndarray
    age: np.ndarray
    frailty: np.ndarray
    death: np.ndarray  # NaT where alive at the end of follow-up

    @property
    def n(self) -> int:
        return len(self.patient_id)


@dataclass
class Events:
    patient: np.ndarray  # index into the cohort
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.patient)


def make_cohort(rng: np.random.Generator) -> Cohort:
    """Cases at two sites and their matched controls (same index date, age within 2 years)."""
    n_cases = CASES_PER_SITE * len(SITES)
    k = np.asarray(CONTROLS_PER_CASE)[
        rng.choice(len(CONTROLS_PER_CASE), size=n_cases, p=CONTROLS_PER_CASE_P)]
    n = n_cases + int(k.sum())
    ids = np.char.upper(np.char.mod("%012x", rng.choice(16**11, size=n + 1, replace=False)))
    case_of = np.concatenate([np.arange(n_cases), np.repeat(np.arange(n_cases), k)])
    case_idx = FIRST_INDEX + rng.integers(0, INDEX_SPAN_DAYS, n_cases).astype("timedelta64[D]")
    case_site = np.repeat(np.asarray(SITES), CASES_PER_SITE)
    case_age = rng.integers(*AGE_RANGE, n_cases)
    age = np.clip(case_age[case_of] + np.where(np.arange(n) < n_cases, 0, rng.integers(-2, 3, n)),
                  AGE_RANGE[0], AGE_RANGE[1] + 2)
    treated = np.arange(n) < n_cases
    weight = np.where(treated, 1.0, 1.0 / k[case_of])
    index_date = case_idx[case_of]
    dies = rng.random(n) < DEATH_P
    death = np.where(dies, index_date + rng.integers(5, 180, n).astype("timedelta64[D]"),
                     np.datetime64("NaT"))
    return Cohort(
        patient_id=ids[:n], index_date=index_date, treated=treated, site=case_site[case_of],
        matched_set=ids[:n][case_of], weight=weight, age=age,
        frailty=rng.gamma(FRAILTY_SHAPE, 1.0 / FRAILTY_SHAPE, n), death=death,
    )


def draw_events(rng: np.random.Generator, c: Cohort, setting: str) -> Events:
    """Poisson events per patient per window; dates uniform within the window; none after death."""
    patients, dates = [], []
    for k in WINDOWS:
        start = add_months(c.index_date, MONTHS * k)
        end = add_months(c.index_date, MONTHS * (k + 1))
        effect = np.where(c.treated & (k >= 0), site_effect(c, setting), 1.0)
        rate = BASE_RATE[setting] * TREND[k] * WINDOW_EXTENT[k] * c.frailty * effect
        count = rng.poisson(rate)
        who = np.repeat(np.arange(c.n), count)
        span = (end - start).astype(np.int64)[who]
        when = start[who] + np.floor(rng.random(len(who)) * span).astype("timedelta64[D]")
        alive = np.isnat(c.death[who]) | (when < c.death[who])
        patients.append(who[alive])
        dates.append(when[alive])
    p, d = np.concatenate(patients), np.concatenate(dates)
    order = np.lexsort((p, d))
    return Events(p[order], d[order])


# ---------------------------------------------------------------------------------------
# evaluation layer: site types and covariates with a built-in imbalance (all SYNTHETIC)
# ---------------------------------------------------------------------------------------

# Site A runs case management; site B another kind of integrated care, with a weaker effect:
# the "case-management sites" against "all sites" comparison of the ICP evaluation.
SITE_TYPE = {"A": "case management", "B": "other"}
OTHER_SITE_EFFECT_SHARE = 0.3  # effect at "other" sites = 1 + 0.3 * (EFFECT - 1)
# Cases are frailer than their age-matched controls (matching on age alone misses it), and
# more often women: the imbalance the balance table should flag and risk adjustment address.
CASE_FRAILTY = 1.25
FEMALE_P = (0.52, 0.62)  # controls, cases
PRIOR_COST_PER_FRAILTY = 2400.0  # £ of secondary care in the year before the index date
PRIOR_COST_SIGMA = 0.5  # lognormal noise around it
COVARIATE_SEED = SEED + 20  # own stream: the activity draws do not shift with these


@dataclass
class Covariates:
    site_type: np.ndarray
    sex: np.ndarray  # "F" / "M"
    prior_cost: np.ndarray  # £, whole pounds


def site_effect(c: Cohort, setting: str) -> np.ndarray:
    """Per-patient multiplier on the rate from the index date on, if treated: by site type."""
    full = EFFECT[setting]
    other = 1.0 + OTHER_SITE_EFFECT_SHARE * (full - 1.0)
    case_management = np.vectorize(SITE_TYPE.get)(c.site) == "case management"
    return np.where(case_management, full, other)


def add_covariates(c: Cohort) -> Covariates:
    """Make the cases frailer (in place) and draw sex and prior-year cost from frailty."""
    rng = np.random.default_rng(COVARIATE_SEED)
    c.frailty = np.where(c.treated, c.frailty * CASE_FRAILTY, c.frailty)
    female = rng.random(c.n) < np.where(c.treated, FEMALE_P[1], FEMALE_P[0])
    noise = rng.lognormal(-PRIOR_COST_SIGMA**2 / 2, PRIOR_COST_SIGMA, c.n)
    return Covariates(
        site_type=np.vectorize(SITE_TYPE.get)(c.site),
        sex=np.where(female, "F", "M"),
        prior_cost=np.round(PRIOR_COST_PER_FRAILTY * c.frailty * noise),
    )


# ---------------------------------------------------------------------------------------
# extracts in HES layout
# ---------------------------------------------------------------------------------------


def apc_spells(rng: np.random.Generator, c: Cohort, nel: Events, el: Events) -> pl.DataFrame:
    """One row per spell: patient, admission date, LOS, method, classification, HRG(s)."""
    n_nel, n_el = len(nel), len(el)
    # emergency spells
    nel_hrg = pick(rng, NEL_HRGS, NEL_HRG_P, n_nel)
    nel_los = np.minimum(rng.geometric(NEL_LOS_P, n_nel) - 1, MAX_LOS)
    nel_los = np.where(np.isin(nel_hrg, SHORT_STAY_HRGS), np.minimum(nel_los, 1), nel_los)
    nel_method = pick(rng, NEL_METHODS, NEL_METHOD_P, n_nel)
    two = (rng.random(n_nel) < TWO_EPISODE_P) & (nel_los >= 2)
    # elective spells
    dc = rng.random(n_el) < DC_P
    el_hrg = np.where(dc, pick(rng, DC_HRGS, DC_HRG_P, n_el), pick(rng, EL_HRGS, EL_HRG_P, n_el))
    el_los = np.where(dc, 0, rng.integers(*EL_LOS, n_el))
    spells = pl.DataFrame({
        "patient": np.concatenate([nel.patient, el.patient]),
        "admidate": np.concatenate([nel.date, el.date]),
        "los": np.concatenate([nel_los, el_los]),
        "ADMIMETH": np.concatenate([nel_method, pick(rng, EL_METHODS, EL_METHOD_P, n_el)]),
        "CLASSPAT": np.concatenate([np.full(n_nel, "1"), np.where(dc, "2", "1")]),
        "SPELL_HRG": np.concatenate([nel_hrg, el_hrg]),
        "episodes": np.concatenate([np.where(two, 2, 1), np.ones(n_el, dtype=np.int64)]),
        "second_hrg": np.concatenate([pick(rng, SECOND_EPISODE_HRGS, (1, 1, 1), n_nel),
                                      np.full(n_el, "")]),
    })
    return spells.sort("admidate", "patient").with_row_index("spell")


def apc_episodes(c: Cohort, spells: pl.DataFrame) -> pl.DataFrame:
    """One row per episode (two for a two-episode spell), HES APC columns."""
    pid, prov, age = c.patient_id, np.vectorize(PROVIDER.get)(c.site), c.age
    idx = spells["patient"].to_numpy()
    eps = (
        spells.with_columns(
            pl.Series("PSEUDO_HESID", pid[idx]), pl.Series("PROCODE3", prov[idx]),
            pl.Series("STARTAGE", age[idx].astype(str)),
            pl.format("SP{}", (pl.col("spell") + 1).cast(pl.String).str.zfill(6)).alias("SPELL_ID"),
            pl.col("admidate").dt.to_string("%Y-%m-%d").alias("ADMIDATE"),
            (pl.col("admidate") + pl.duration(days=pl.col("los"))).dt.to_string("%Y-%m-%d")
            .alias("DISDATE"),
            pl.int_ranges(1, pl.col("episodes") + 1).alias("EPIORDER"),
        )
        .explode("EPIORDER", empty_as_null=True)
        .with_columns(
            pl.when(pl.col("EPIORDER") == 1).then(pl.col("SPELL_HRG"))
            .otherwise(pl.col("second_hrg"))
            .alias("SUSHRG"),
            pl.col("EPIORDER").cast(pl.String),
        )
        .with_row_index("n")
        .with_columns(
            pl.format("1{}", (pl.col("n") + 1).cast(pl.String).str.zfill(11)).alias("EPIKEY"))
    )
    return eps.select("EPIKEY", "PSEUDO_HESID", "PROCODE3", "SPELL_ID", "EPIORDER", "ADMIDATE",
                      "DISDATE", "ADMIMETH", "CLASSPAT", "STARTAGE", "SUSHRG", "SPELL_HRG")


def op_extract(rng: np.random.Generator, c: Cohort, op: Events) -> pl.DataFrame:
    """Outpatient appointments (attended, DNA, cancelled), some with a procedure HRG."""
    n = len(op)
    tfc = pick(rng, OP_TFC, OP_TFC_P, n)
    first = pick(rng, OP_FIRSTATT, OP_FIRSTATT_P, n)
    attended = pick(rng, OP_ATTENDED, OP_ATTENDED_P, n)
    proc_hrg = np.vectorize(lambda t: OP_PROC_HRG.get(t, ""))(tfc)
    has_proc = (rng.random(n) < OP_PROC_P) & (proc_hrg != "")
    wf = np.where(np.isin(first, ("1", "3")), "WF01B", "WF01A")
    hrg = np.where(has_proc, proc_hrg, wf)
    return pl.DataFrame({
        "ATTENDKEY": np.char.mod("2%011d", np.arange(1, n + 1)),
        "PSEUDO_HESID": c.patient_id[op.patient],
        "PROCODE3": np.vectorize(PROVIDER.get)(c.site[op.patient]),
        "APPTDATE": iso(op.date),
        "APPTAGE": c.age[op.patient].astype(str),
        "TRETSPEF": tfc,
        "FIRSTATT": first,
        "ATTENDED": attended,
        "STAFFTYP": pick(rng, OP_STAFFTYP, OP_STAFFTYP_P, n),
        "SUSHRG": hrg,
    })


def ae_extract(rng: np.random.Generator, c: Cohort, admitted: Events,
               other: Events) -> pl.DataFrame:
    """A&E attendances: one per admission through A&E (disposal 01) and the others."""
    na, no = len(admitted), len(other)
    p = np.concatenate([admitted.patient, other.patient])
    d = np.concatenate([admitted.date, other.date])
    hrg = np.concatenate([pick(rng, AE_HRGS_ADMITTED, AE_HRGS_ADMITTED_P, na),
                          pick(rng, AE_HRGS_OTHER, AE_HRGS_OTHER_P, no)])
    dept = np.concatenate([np.full(na, "01"), pick(rng, AE_DEPT, AE_DEPT_P, no)])
    disp = np.concatenate([np.full(na, "01"), pick(rng, AE_DISP_OTHER, AE_DISP_OTHER_P, no)])
    order = np.lexsort((p, d))
    p, d, hrg, dept, disp = p[order], d[order], hrg[order], dept[order], disp[order]
    n = na + no
    return pl.DataFrame({
        "AEKEY": np.char.mod("3%011d", np.arange(1, n + 1)),
        "PSEUDO_HESID": c.patient_id[p],
        "PROCODE3": np.vectorize(PROVIDER.get)(c.site[p]),
        "ARRIVALDATE": iso(d),
        "ARRIVALAGE": c.age[p].astype(str),
        "AEDEPTTYPE": dept,
        "AEATTENDDISP": disp,
        "SUSHRG": hrg,
    })


def add_awkward(c: Cohort, apc: pl.DataFrame, op: pl.DataFrame, ae: pl.DataFrame,
                outsider: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A few records any real extract has, so the coverage table has something to show."""
    def day(i: int, offset: int) -> str:
        return str(c.index_date[i] + np.timedelta64(offset, "D"))

    pid, site = c.patient_id, c.site
    prov = [PROVIDER[s] for s in site[:6]]
    extra_apc = pl.DataFrame({
        "EPIKEY": ["190000000001", "190000000002", "190000000003", "190000000004",
                   "190000000005", "190000000006"],
        "PSEUDO_HESID": [pid[0], pid[1], pid[2], pid[3], pid[3], outsider],
        "PROCODE3": [prov[0], prov[1], prov[2], prov[3], prov[3], "ZZA"],
        "SPELL_ID": ["SPX00001", "SPX00002", "SPX00003", "SPX00004", "SPX00004", "SPX00005"],
        "EPIORDER": ["1", "1", "1", "1", "2", "1"],
        # UZ01Z (ungroupable) / HRG no table knows / HES dummy admission date /
        # two-episode spell with no spell HRG / a patient who is not in the cohort
        "ADMIDATE": [day(0, 30), day(1, -40), "1800-01-01", day(3, 60), day(3, 60), day(0, 10)],
        "DISDATE": [day(0, 33), day(1, -38), day(2, 20), day(3, 66), day(3, 66), day(0, 12)],
        "ADMIMETH": ["21", "11", "21", "21", "21", "21"],
        "CLASSPAT": ["1", "1", "1", "1", "1", "1"],
        "STARTAGE": [str(a) for a in c.age[[0, 1, 2, 3, 3, 0]]],
        "SUSHRG": ["UZ01Z", "DZ99Z", "DZ65K", "EB03E", "WJ06J", "DZ65K"],
        "SPELL_HRG": ["UZ01Z", "DZ99Z", "DZ65K", "", "", "DZ65K"],
    })
    # a patient who is not in the cohort (twice), and an attendance after a patient's death
    dead = int(np.flatnonzero(~np.isnat(c.death))[0])
    after_death = str(c.death[dead] + np.timedelta64(7, "D"))
    extra_op = pl.DataFrame({
        "ATTENDKEY": ["290000000001", "290000000002", "290000000003"],
        "PSEUDO_HESID": [outsider, outsider, pid[dead]],
        "PROCODE3": ["ZZA", "ZZA", PROVIDER[site[dead]]],
        "APPTDATE": [day(0, 20), day(0, 50), after_death],
        "APPTAGE": ["70", "70", str(c.age[dead])],
        "TRETSPEF": ["300", "300", "430"],
        "FIRSTATT": ["1", "2", "2"],
        "ATTENDED": ["5", "5", "5"],
        "STAFFTYP": ["01", "01", "01"],
        "SUSHRG": ["WF01B", "WF01A", "WF01A"],
    })
    extra_ae = pl.DataFrame({
        "AEKEY": ["390000000001"],
        "PSEUDO_HESID": [pid[4]],
        "PROCODE3": [prov[4]],
        "ARRIVALDATE": [day(4, 15)],
        "ARRIVALAGE": [str(c.age[4])],
        "AEDEPTTYPE": ["01"],
        "AEATTENDDISP": ["03"],
        "SUSHRG": [""],  # no HRG recorded
    })
    return (pl.concat([apc, extra_apc]), pl.concat([op, extra_op]), pl.concat([ae, extra_ae]))


def cohort_frame(c: Cohort, cov: Covariates) -> pl.DataFrame:
    """The cohort file: one row per patient, with the evaluation's covariates last."""
    return pl.DataFrame({
        "patient_id": c.patient_id,
        "index_date": iso(c.index_date),
        "group": np.where(c.treated, "intervention", "control"),
        "site": c.site,
        "matched_set": c.matched_set,
        "weight": np.round(c.weight, 6),
        "end_of_follow_up": [None if np.isnat(d) else str(d) for d in c.death],
        "site_type": cov.site_type,
        "age": c.age,
        "sex": cov.sex,
        "prior_cost": cov.prior_cost,
    })


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def generate(data_dir: Path = DATA) -> dict[str, Path]:
    """Write the cohort and the three extracts; return the paths."""
    rng = np.random.default_rng(SEED)
    c = make_cohort(rng)
    cov = add_covariates(c)
    # Cohort ids have 11 hex digits after a leading 0, so an id starting with F is not one.
    outsider = "F" + c.patient_id[0][1:]
    nel = draw_events(rng, c, "nel")
    el = draw_events(rng, c, "el")
    op = draw_events(rng, c, "op")
    ae_other = draw_events(rng, c, "ae_other")
    through_ae = rng.random(len(nel)) < AE_BEFORE_NEL_P
    ae_admitted = Events(nel.patient[through_ae], nel.date[through_ae])

    apc = apc_episodes(c, apc_spells(rng, c, nel, el))
    op_df = op_extract(rng, c, op)
    ae_df = ae_extract(rng, c, ae_admitted, ae_other)
    apc, op_df, ae_df = add_awkward(c, apc, op_df, ae_df, outsider)

    data_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "cohort": data_dir / "cohort.csv",
        "apc": data_dir / "apc.csv",
        "op": data_dir / "op.csv",
        "ae": data_dir / "ae.csv",
    }
    cohort_frame(c, cov).write_csv(paths["cohort"], line_terminator="\n")
    apc.write_csv(paths["apc"], line_terminator="\n")
    op_df.write_csv(paths["op"], line_terminator="\n")
    ae_df.write_csv(paths["ae"], line_terminator="\n")
    return paths


def main() -> int:
    paths = generate()
    for name, path in paths.items():
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        print(f"{name:9s} {shown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
