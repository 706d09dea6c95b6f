"""Generate the synthetic ICP-style worked example: cases, a candidate pool and their extracts.

Everything here is SYNTHETIC. No real patient is described. The run file prices the records
at the real national tariff 2016/17 (shipped, final Annex A), with the 2016/17 reference costs
(shipped) as the fallback: both are editions of the same year. It then builds the control
group itself, by matching the cases to the pool on their priced prior use (``[match]``).

The study is shaped like the Integrated Care Pilots (ICP) case-management evaluation:

* a population of older people (65 and over) living around two sites; each has a sex, a
  birth date, a deprivation decile and a count of long-term conditions (``ltc_count``), and a
  frailty that follows mostly from their conditions and age. Their hospital use is a Poisson
  process in calendar time at a rate proportional to their frailty, with a slightly rising
  trend common to everyone (so parallel trends hold);
* ``CASES_PER_SITE`` x 2 of them are enrolled in case management (the cases), picked with a
  probability rising with their long-term conditions and higher for women: a built-in
  imbalance (cases frailer, with more prior use, and more often women than the pool) that
  the balance table shows before matching and the matching removes. Index dates are spread
  over 2008/09; a few cases die in the six months after it (``end_of_follow_up``);
* the others form the candidate pool (``pool.csv``), with the death dates of those who die
  and, for a few, the date another intervention started (``intervention_start``): the
  matching never takes them as controls after it, and censors those it takes before it;
* HES-layout extracts for cases and pool alike, from two years before the first index date
  to six months after the last: admitted patient care episodes (with some two-episode
  spells), outpatient attendances (with DNAs and procedure HRGs) and A&E attendances, with
  HRG codes held in the shipped 2016/17 reference costs. Most admitted HRGs are also priced by
  the 2016/17 tariff; some are HRG4+ codes the tariff (still on the earlier HRG4 design) does
  not hold, so they fall back to the reference costs on purpose, and the coverage table shows
  it;
* a handful of awkward records (UZ01Z, an HRG no table knows, a HES dummy date, a spell with
  no spell HRG, an A&E record with no HRG, activity of a patient who is neither a case nor in
  the pool, an outpatient attendance dated after the patient's death).

The intervention effect is built in: from the index date case-managed patients have MORE
emergency admissions (and A&E attendances) and FEWER elective admissions and outpatient
attendances than they would have had (``EFFECT``). The effect is full at the
case-management site (A) and weaker at the "other" site (B) (``site_type`` in the cases).
All of these effects, and the imbalance, are SYNTHETIC choices of this generator, not
findings.

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
POOL = 4000  # candidate controls
FIRST_INDEX = np.datetime64("2008-04-01")  # case index dates uniform over 2008/09
INDEX_SPAN_DAYS = 365
# Activity from two years before the first index date (the matching's features and its
# prognostic model look that far back) to six months after the last.
START = np.datetime64("2006-04-01")
END = np.datetime64("2009-10-01")
CASE_DEATH_P = 0.04  # share of cases who die in the six months after their index date
POOL_DEATH_P = 0.08  # share of the pool who die at some point between START and END
LATER_INTERVENTION_P = 0.02  # pool members who start another intervention in 2008/09-2009/10
AGE_RANGE = (65, 96)  # age on FIRST_INDEX
FEMALE_P = 0.55
LTC_MEAN = 1.2  # long-term conditions ~ Poisson, capped
LTC_MAX = 8
# frailty = exp(LTC_FRAILTY * (ltc - LTC_REF) + AGE_FRAILTY * (age - 80) + N(0, FRAILTY_SIGMA))
LTC_FRAILTY = 0.45
LTC_REF = 3
AGE_FRAILTY = 0.01
FRAILTY_SIGMA = 0.3
# Selection into case management: odds x exp(SELECT_LTC) per condition, x SELECT_FEMALE
# for women (the built-in imbalance).
SELECT_LTC = 0.6
SELECT_FEMALE = 1.5

SIX_MONTHS_DAYS = 365.25 / 2
TREND_PER_YEAR = 0.06  # common to everyone: rates x exp(0.06 per year)
# Events per patient per six months at frailty 1 (before trend and effect).
BASE_RATE = {"nel": 0.55, "el": 0.60, "op": 1.50, "ae_other": 0.30}
# Multiplier on the rate of case-managed patients from the index date on.
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

# Site A runs case management; site B another kind of integrated care, with a weaker effect:
# the "case-management sites" against "all sites" comparison of the ICP evaluation.
SITE_TYPE = {"A": "case management", "B": "other"}
OTHER_SITE_EFFECT_SHARE = 0.3  # effect at "other" sites = 1 + 0.3 * (EFFECT - 1)

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------

NAT = np.datetime64("NaT", "D")


def iso(d: np.ndarray) -> np.ndarray:
    """Dates as ISO text."""
    return np.datetime_as_string(d, unit="D")


def iso_or_none(d: np.ndarray) -> list[str | None]:
    """Dates as ISO text, None where NaT (an empty cell in the CSV)."""
    return [None if np.isnat(x) else str(x) for x in d]


def pick(rng: np.random.Generator, values: tuple[str, ...], p: tuple[float, ...],
         n: int) -> np.ndarray:
    """``n`` draws from ``values`` with probabilities ``p`` (normalised)."""
    return np.asarray(values)[rng.choice(len(values), size=n, p=np.asarray(p) / np.sum(p))]


def age_at(birth: np.ndarray, when: np.ndarray) -> np.ndarray:
    """Whole years of age on ``when`` (a day count, close enough for a synthetic HES age)."""
    return np.floor((when - birth).astype(np.int64) / 365.25).astype(np.int64)


@dataclass
class Population:
    """Everyone: the cases first, then the pool."""

    patient_id: np.ndarray
    case: np.ndarray  # bool
    index_date: np.ndarray  # NaT for the pool
    site: np.ndarray  # the case's site; the pool's local site (their provider)
    sex: np.ndarray  # "F" / "M"
    birth_date: np.ndarray
    deprivation: np.ndarray  # decile, 1 = most deprived
    ltc: np.ndarray  # long-term conditions
    frailty: np.ndarray
    death: np.ndarray  # NaT where alive at END
    intervention_start: np.ndarray  # NaT but for a few pool members

    @property
    def n(self) -> int:
        return len(self.patient_id)


@dataclass
class Events:
    patient: np.ndarray  # index into the population
    date: np.ndarray

    def __len__(self) -> int:
        return len(self.patient)


def make_population(rng: np.random.Generator) -> Population:
    """A population of older people; the cases drawn from it with a selection on long-term
    conditions and sex, then put first."""
    n_cases = CASES_PER_SITE * len(SITES)
    n = n_cases + POOL
    ids = np.char.upper(np.char.mod("%012x", rng.choice(16**11, size=n, replace=False)))
    female = rng.random(n) < FEMALE_P
    age = rng.integers(*AGE_RANGE, n)
    birth = FIRST_INDEX - (age * 365.25 + rng.integers(0, 365, n)).astype("timedelta64[D]")
    deprivation = rng.integers(1, 11, n)
    ltc = np.minimum(rng.poisson(LTC_MEAN, n), LTC_MAX)
    frailty = np.exp(LTC_FRAILTY * (ltc - LTC_REF) + AGE_FRAILTY * (age - 80)
                     + rng.normal(0.0, FRAILTY_SIGMA, n))
    odds = np.exp(SELECT_LTC * ltc) * np.where(female, SELECT_FEMALE, 1.0)
    chosen = rng.choice(n, size=n_cases, replace=False, p=odds / odds.sum())
    rest = np.setdiff1d(np.arange(n), chosen)
    order = np.concatenate([chosen, rest])
    case = np.arange(n) < n_cases
    index_date = np.where(
        case, FIRST_INDEX + rng.integers(0, INDEX_SPAN_DAYS, n).astype("timedelta64[D]"), NAT)
    case_site = np.asarray(SITES)[np.minimum(np.arange(n) // CASES_PER_SITE, len(SITES) - 1)]
    site = np.where(case, case_site, np.asarray(SITES)[rng.integers(0, len(SITES), n)])
    span = (END - START).astype(np.int64)
    case_dies = case & (rng.random(n) < CASE_DEATH_P)
    pool_dies = ~case & (rng.random(n) < POOL_DEATH_P)
    death = np.where(case_dies, index_date + rng.integers(5, 180, n).astype("timedelta64[D]"),
                     np.where(pool_dies, START + rng.integers(0, span, n).astype("timedelta64[D]"),
                              NAT))
    later = ~case & (rng.random(n) < LATER_INTERVENTION_P)
    start = np.where(later, FIRST_INDEX + rng.integers(0, 2 * 365, n).astype("timedelta64[D]"), NAT)
    return Population(
        patient_id=ids, case=case, index_date=index_date, site=site,
        sex=np.where(female[order], "F", "M"), birth_date=birth[order],
        deprivation=deprivation[order], ltc=ltc[order], frailty=frailty[order], death=death,
        intervention_start=start,
    )


def trend(d: np.ndarray) -> np.ndarray:
    """The common calendar trend of every rate."""
    return np.exp(TREND_PER_YEAR * (d - FIRST_INDEX).astype(np.int64) / 365.25)


def site_effect(p: Population, setting: str) -> np.ndarray:
    """Per-patient multiplier on the rate from the index date on: 1 for the pool, by site
    type for the cases."""
    full = EFFECT[setting]
    other = 1.0 + OTHER_SITE_EFFECT_SHARE * (full - 1.0)
    case_management = np.vectorize(SITE_TYPE.get)(p.site) == "case management"
    return np.where(p.case, np.where(case_management, full, other), 1.0)


def draw_events(rng: np.random.Generator, p: Population, setting: str) -> Events:
    """A Poisson process per patient over [START, END) at rate base x frailty x trend x
    (effect from a case's index date), by thinning; none after death."""
    span = int((END - START).astype(np.int64))
    effect = site_effect(p, setting)
    peak = BASE_RATE[setting] * p.frailty * trend(np.asarray([END]))[0] * np.maximum(effect, 1.0)
    count = rng.poisson(peak * span / SIX_MONTHS_DAYS)
    who = np.repeat(np.arange(p.n), count)
    when = START + rng.integers(0, span, len(who)).astype("timedelta64[D]")
    after = p.case[who] & (when >= p.index_date[who])
    rate = BASE_RATE[setting] * p.frailty[who] * trend(when) * np.where(after, effect[who], 1.0)
    keep = rng.random(len(who)) < rate / peak[who]
    alive = np.isnat(p.death[who]) | (when < p.death[who])
    who, when = who[keep & alive], when[keep & alive]
    order = np.lexsort((who, when))
    return Events(who[order], when[order])


# ---------------------------------------------------------------------------------------
# extracts in HES layout
# ---------------------------------------------------------------------------------------


def apc_spells(rng: np.random.Generator, p: Population, nel: Events, el: Events) -> pl.DataFrame:
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
    patient = np.concatenate([nel.patient, el.patient])
    admidate = np.concatenate([nel.date, el.date])
    spells = pl.DataFrame({
        "patient": patient,
        "admidate": admidate,
        "age": age_at(p.birth_date[patient], admidate),
        "los": np.concatenate([nel_los, el_los]),
        "ADMIMETH": np.concatenate([nel_method, pick(rng, EL_METHODS, EL_METHOD_P, n_el)]),
        "CLASSPAT": np.concatenate([np.full(n_nel, "1"), np.where(dc, "2", "1")]),
        "SPELL_HRG": np.concatenate([nel_hrg, el_hrg]),
        "episodes": np.concatenate([np.where(two, 2, 1), np.ones(n_el, dtype=np.int64)]),
        "second_hrg": np.concatenate([pick(rng, SECOND_EPISODE_HRGS, (1, 1, 1), n_nel),
                                      np.full(n_el, "")]),
    })
    return spells.sort("admidate", "patient").with_row_index("spell")


def apc_episodes(p: Population, spells: pl.DataFrame) -> pl.DataFrame:
    """One row per episode (two for a two-episode spell), HES APC columns."""
    prov = np.vectorize(PROVIDER.get)(p.site)
    idx = spells["patient"].to_numpy()
    eps = (
        spells.with_columns(
            pl.Series("PSEUDO_HESID", p.patient_id[idx]), pl.Series("PROCODE3", prov[idx]),
            pl.col("age").cast(pl.String).alias("STARTAGE"),
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


def op_extract(rng: np.random.Generator, p: Population, op: Events) -> pl.DataFrame:
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
        "PSEUDO_HESID": p.patient_id[op.patient],
        "PROCODE3": np.vectorize(PROVIDER.get)(p.site[op.patient]),
        "APPTDATE": iso(op.date),
        "APPTAGE": age_at(p.birth_date[op.patient], op.date).astype(str),
        "TRETSPEF": tfc,
        "FIRSTATT": first,
        "ATTENDED": attended,
        "STAFFTYP": pick(rng, OP_STAFFTYP, OP_STAFFTYP_P, n),
        "SUSHRG": hrg,
    })


def ae_extract(rng: np.random.Generator, p: Population, admitted: Events,
               other: Events) -> pl.DataFrame:
    """A&E attendances: one per admission through A&E (disposal 01) and the others."""
    na, no = len(admitted), len(other)
    who = np.concatenate([admitted.patient, other.patient])
    d = np.concatenate([admitted.date, other.date])
    hrg = np.concatenate([pick(rng, AE_HRGS_ADMITTED, AE_HRGS_ADMITTED_P, na),
                          pick(rng, AE_HRGS_OTHER, AE_HRGS_OTHER_P, no)])
    dept = np.concatenate([np.full(na, "01"), pick(rng, AE_DEPT, AE_DEPT_P, no)])
    disp = np.concatenate([np.full(na, "01"), pick(rng, AE_DISP_OTHER, AE_DISP_OTHER_P, no)])
    order = np.lexsort((who, d))
    who, d, hrg, dept, disp = who[order], d[order], hrg[order], dept[order], disp[order]
    n = na + no
    return pl.DataFrame({
        "AEKEY": np.char.mod("3%011d", np.arange(1, n + 1)),
        "PSEUDO_HESID": p.patient_id[who],
        "PROCODE3": np.vectorize(PROVIDER.get)(p.site[who]),
        "ARRIVALDATE": iso(d),
        "ARRIVALAGE": age_at(p.birth_date[who], d).astype(str),
        "AEDEPTTYPE": dept,
        "AEATTENDDISP": disp,
        "SUSHRG": hrg,
    })


def add_awkward(p: Population, apc: pl.DataFrame, op: pl.DataFrame, ae: pl.DataFrame,
                outsider: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """A few records any real extract has, so the coverage table has something to show.
    They belong to the first cases (around their index dates)."""
    def day(i: int, offset: int) -> str:
        return str(p.index_date[i] + np.timedelta64(offset, "D"))

    def age(i: int) -> str:
        return str(age_at(p.birth_date[i:i + 1], p.index_date[i:i + 1])[0])

    pid, site = p.patient_id, p.site
    prov = [PROVIDER[s] for s in site[:6]]
    extra_apc = pl.DataFrame({
        "EPIKEY": ["190000000001", "190000000002", "190000000003", "190000000004",
                   "190000000005", "190000000006"],
        "PSEUDO_HESID": [pid[0], pid[1], pid[2], pid[3], pid[3], outsider],
        "PROCODE3": [prov[0], prov[1], prov[2], prov[3], prov[3], "ZZA"],
        "SPELL_ID": ["SPX00001", "SPX00002", "SPX00003", "SPX00004", "SPX00004", "SPX00005"],
        "EPIORDER": ["1", "1", "1", "1", "2", "1"],
        # UZ01Z (ungroupable) / HRG no table knows / HES dummy admission date /
        # two-episode spell with no spell HRG / a patient who is neither a case nor in the pool
        "ADMIDATE": [day(0, 30), day(1, -40), "1800-01-01", day(3, 60), day(3, 60), day(0, 10)],
        "DISDATE": [day(0, 33), day(1, -38), day(2, 20), day(3, 66), day(3, 66), day(0, 12)],
        "ADMIMETH": ["21", "11", "21", "21", "21", "21"],
        "CLASSPAT": ["1", "1", "1", "1", "1", "1"],
        "STARTAGE": [age(0), age(1), age(2), age(3), age(3), "70"],
        "SUSHRG": ["UZ01Z", "DZ99Z", "DZ65K", "EB03E", "WJ06J", "DZ65K"],
        "SPELL_HRG": ["UZ01Z", "DZ99Z", "DZ65K", "", "", "DZ65K"],
    })
    # a patient who is neither a case nor in the pool (twice), and an attendance after a
    # case's death
    dead = int(np.flatnonzero(p.case & ~np.isnat(p.death))[0])
    after_death = str(p.death[dead] + np.timedelta64(7, "D"))
    extra_op = pl.DataFrame({
        "ATTENDKEY": ["290000000001", "290000000002", "290000000003"],
        "PSEUDO_HESID": [outsider, outsider, pid[dead]],
        "PROCODE3": ["ZZA", "ZZA", PROVIDER[site[dead]]],
        "APPTDATE": [day(0, 20), day(0, 50), after_death],
        "APPTAGE": ["70", "70", age(dead)],
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
        "ARRIVALAGE": [age(4)],
        "AEDEPTTYPE": ["01"],
        "AEATTENDDISP": ["03"],
        "SUSHRG": [""],  # no HRG recorded
    })
    return (pl.concat([apc, extra_apc]), pl.concat([op, extra_op]), pl.concat([ae, extra_ae]))


def cases_frame(p: Population) -> pl.DataFrame:
    """The cases: index date, site and site type, death, then their attributes."""
    c = p.case
    return pl.DataFrame({
        "patient_id": p.patient_id[c],
        "index_date": iso(p.index_date[c]),
        "site": p.site[c],
        "site_type": np.vectorize(SITE_TYPE.get)(p.site[c]),
        "end_of_follow_up": iso_or_none(p.death[c]),
        "sex": p.sex[c],
        "birth_date": iso(p.birth_date[c]),
        "deprivation_decile": p.deprivation[c],
        "ltc_count": p.ltc[c],
    })


def pool_frame(p: Population) -> pl.DataFrame:
    """The candidate controls and their attributes, deaths and later interventions."""
    c = ~p.case
    return pl.DataFrame({
        "patient_id": p.patient_id[c],
        "sex": p.sex[c],
        "birth_date": iso(p.birth_date[c]),
        "deprivation_decile": p.deprivation[c],
        "ltc_count": p.ltc[c],
        "death_date": iso_or_none(p.death[c]),
        "intervention_start": iso_or_none(p.intervention_start[c]),
    })


# ---------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------


def generate(data_dir: Path = DATA) -> dict[str, Path]:
    """Write the cases, the pool and the three extracts; return the paths."""
    rng = np.random.default_rng(SEED)
    p = make_population(rng)
    # Ids have 11 hex digits after a leading 0, so an id starting with F is nobody's.
    outsider = "F" + p.patient_id[0][1:]
    nel = draw_events(rng, p, "nel")
    el = draw_events(rng, p, "el")
    op = draw_events(rng, p, "op")
    ae_other = draw_events(rng, p, "ae_other")
    through_ae = rng.random(len(nel)) < AE_BEFORE_NEL_P
    ae_admitted = Events(nel.patient[through_ae], nel.date[through_ae])

    apc = apc_episodes(p, apc_spells(rng, p, nel, el))
    op_df = op_extract(rng, p, op)
    ae_df = ae_extract(rng, p, ae_admitted, ae_other)
    apc, op_df, ae_df = add_awkward(p, apc, op_df, ae_df, outsider)

    data_dir.mkdir(parents=True, exist_ok=True)
    frames = {"cases": cases_frame(p), "pool": pool_frame(p), "apc": apc, "op": op_df, "ae": ae_df}
    paths = {}
    for name, frame in frames.items():
        paths[name] = data_dir / f"{name}.csv"
        frame.write_csv(paths[name], line_terminator="\n")
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
