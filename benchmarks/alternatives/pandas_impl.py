"""The engine's provider pipeline in pandas, two ways an analyst would write it.

``price`` / ``windows``: vectorised, with ``merge`` for the reference-cost lookups and
``np.select`` / ``np.where`` for the rules. ``price_rowwise`` / ``windows_rowwise``: a
Python function per record through ``DataFrame.apply(axis=1)`` with dict lookups (what many
teams write first). Both mirror ``costing.price`` (provider perspective, fixed reference-cost
edition, episode level) and ``costing.cost_by_window`` (admission-date assignment, by
category, zero-filled). Input validation is not re-implemented: the generated data is valid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from benchmarks.alternatives.rules import FILES, Rules, Totals

_COHORT_FILL = {"group": "str", "site": "str", "matched_set": "str", "weight": "float64",
                "end_of_follow_up": "datetime64[ms]"}


def load(data: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame, Rules]:
    """Activity, cohort, reference costs, trim points and rules as pandas (not timed)."""
    rules = Rules.load(data / FILES["rules"])
    act = pq.read_table(data / FILES["activity"]).to_pandas(date_as_object=False)
    for c in ("multi_professional", "ae_admitted"):  # canonical columns the generator leaves out
        if c not in act.columns:
            act[c] = pd.Series(pd.NA, index=act.index, dtype="boolean")
    cohort = pq.read_table(data / FILES["cohort"]).to_pandas(date_as_object=False)
    for c, t in _COHORT_FILL.items():
        if c not in cohort.columns:
            cohort[c] = pd.Series(None, index=cohort.index, dtype=t)
    rc = pq.read_table(data / FILES["reference_costs"]).to_pandas()
    rc["service_code"] = rc["service_code"].fillna("")
    tp = pq.read_table(data / FILES["trimpoints"]).to_pandas()
    return act, cohort, rc, tp, rules


# --------------------------------------------------------------------------------------
# vectorised
# --------------------------------------------------------------------------------------


def price(act: pd.DataFrame, rc: pd.DataFrame, tp: pd.DataFrame, r: Rules) -> pd.DataFrame:
    """Priced records: every input column plus pod, cost_category, cost, status, ..."""
    st = r.status
    df = act.copy()
    s = df["setting"]
    apc, op, ae = s.eq("apc"), s.eq("op"), s.eq("ae")
    los = (df["discharge_date"] - df["activity_date"]).dt.days.where(apc)
    df["los_days"] = los.astype("Int32")
    hrg = df["hrg_code"]
    hv = df["hrg_version"].fillna(r.default_hrg_version)
    meth, cls = df["admission_method"], df["patient_classification"]
    elective = meth.isin(r.elective_methods)
    apc_pod = pd.Series(np.select(
        [apc & cls.isin(["3", "4"]), apc & elective & cls.eq("2"), apc & elective & cls.notna(),
         apc & meth.isin(r.admission_methods) & cls.notna()],
        ["RP", "DC", "EL", "NEL"], default=None), index=df.index)
    ok = hrg.notna() & hv.eq(r.edition_hrg_version)
    tf = df["treatment_function_code"]
    first = df["first_attendance"].isin(r.op_first)
    multi = df["multi_professional"].fillna(False).astype(bool)
    adm = df["ae_admitted"].fillna(False).astype(bool)

    # first lookup: department by POD (NES below the LOS threshold), OPROC x tf, AE x T0{type}{A|NA}
    d1 = np.select(
        [apc & apc_pod.eq("NEL") & (los < r.nes_los_threshold), apc & apc_pod.eq("NEL"),
         apc & apc_pod.isin(["EL", "DC", "RP"]), op, ae],
        ["NES", "NEL", apc_pod, "OPROC", "AE"], default=None)
    s1 = np.select([op, ae], [tf, "T" + df["department_type"] + np.where(adm, "A", "NA")], default="")
    # second lookup: excess bed days, or the CL attendance currency WF0{1|2}{B|A}
    d2 = np.select([apc & apc_pod.eq("EL"), apc & apc_pod.eq("NEL") & (los >= r.nes_los_threshold), op],
                   ["EL_XS", "NEL_XS", r.op_reference_department], default=None)
    s2 = np.where(op, tf, "")
    wf = "WF0" + pd.Series(np.where(multi, "2", "1"), index=df.index) + np.where(first, "B", "A")
    c2 = np.where(op, wf, hrg)
    gate2 = op | (ok & r.long_stay)
    keys = pd.DataFrame({
        "_d1": np.where(ok, d1, None), "_s1": np.where(ok, s1, None), "_c1": np.where(ok, hrg, None),
        "_d2": np.where(gate2, d2, None), "_s2": np.where(gate2, s2, None), "_c2": np.where(gate2, c2, None),
    }, index=df.index)
    lk = rc[["department_code", "service_code", "currency_code", "unit_cost"]]
    keys = keys.merge(lk.set_axis(["_d1", "_s1", "_c1", "_p1"], axis=1), how="left", on=["_d1", "_s1", "_c1"])
    keys = keys.merge(lk.set_axis(["_d2", "_s2", "_c2", "_p2"], axis=1), how="left", on=["_d2", "_s2", "_c2"])
    p1 = pd.Series(keys["_p1"].to_numpy(), index=df.index)
    p2 = pd.Series(keys["_p2"].to_numpy(), index=df.index)
    known = hrg.isin(rc.loc[~rc["department_code"].isin(["CL", "NCL", "TOTAL"]), "currency_code"])
    trim = hrg.map(tp.set_index("hrg_code")["trim_days"]).where(apc)

    proc = op & p1.notna()
    xs_ok = apc & r.long_stay & p1.notna() & p2.notna() & trim.notna()
    xs_days = np.where(xs_ok, np.maximum(los - trim, 0), 0)
    base = np.where(op, np.where(proc, p1, p2), p1)
    xs_cost = xs_days * p2.fillna(0.0)
    rc_cost = base + xs_cost

    version_ok = op | hv.eq(r.edition_hrg_version)
    chain_status = np.select(
        [rc_cost.notna(), ~version_ok, ~op & ~known],
        [st["PRICED_REFERENCE_COST"], st["HRG_VERSION_MISMATCH"], st["HRG_NOT_FOUND"]],
        default=st["NO_PRICE_FOR_POD"])
    excluded = op & df["attended"].isin(r.op_not_attended)
    status = np.select(
        [excluded, (apc | ae) & hrg.isna(), hrg.str.startswith("U").fillna(False).astype(bool)],
        [st["EXCLUDED_NOT_ATTENDED"], st["HRG_MISSING"], st["HRG_UNGROUPABLE"]], default=chain_status)
    priced = status < r.not_priced_from
    by_chain = priced & ~excluded

    op_pod = np.select([proc & by_chain, first, df["first_attendance"].isin(["2", "4"])],
                       ["OP_PROC", "OP_FIRST", "OP_FOLLOWUP"], default=None)
    dtype_ = df["department_type"]
    ae_pod = np.where(dtype_.isin(["01", "02"]), "AE_T12",
                      np.where(dtype_.isin(r.ae_types), "AE_T" + dtype_.str.slice(1, 2), None))
    pod = pd.Series(np.select([apc, op, ae], [apc_pod, op_pod, ae_pod], default=None), index=df.index)
    df["pod"] = pod
    df["cost_category"] = np.select(
        [op, ae, pod.isin(["DC", "EL", "RP"]), elective & pod.isna()],
        ["outpatient", "ae", "elective", "elective"], default="non_elective")
    df["cost"] = np.where(excluded, 0.0, np.where(priced, rc_cost, np.nan))
    df["cost_source"] = np.select([excluded, priced], ["excluded", "reference_cost"], default=None)
    df["status"] = status.astype("int16")
    df["status_name"] = pd.Series(status, index=df.index).map(r.status_names)
    df["reference_cost_edition"] = r.edition
    df["base_price"] = np.where(by_chain, base, np.nan)
    df["excess_bed_days"] = pd.Series(xs_days, index=df.index).where(by_chain & apc).astype("Int32")
    df["excess_bed_day_cost"] = xs_cost.where(by_chain & apc)
    return df


def _cohort_windows(cohort: pd.DataFrame, r: Rules) -> pd.DataFrame:
    """One row per cohort patient x window with bounds (month-end clamped by DateOffset)."""
    coh = cohort.reset_index(drop=True)
    coh["_pidx"] = np.arange(len(coh))
    parts = []
    for wi, k in enumerate(r.windows):  # a loop over the (two) windows, not over rows
        parts.append(coh.assign(
            wi=wi, window=k,
            window_start=coh["index_date"] + pd.DateOffset(months=r.months * k),
            window_end=coh["index_date"] + pd.DateOffset(months=r.months * (k + 1))))
    w = pd.concat(parts, ignore_index=True)
    w["window_days"] = (w["window_end"] - w["window_start"]).dt.days.astype("int32")
    return w


def _zero_fill(w: pd.DataFrame, agg: pd.DataFrame, r: Rules) -> pd.DataFrame:
    cats = pd.DataFrame({"category": list(r.categories), "ci": np.arange(len(r.categories))})
    out = w.merge(cats, how="cross").merge(agg, on=["_pidx", "wi", "category"], how="left")
    out["cost"] = out["cost"].fillna(0.0)
    for c in ("n_records", "n_unpriced", "n_excluded"):
        out[c] = out[c].fillna(0).astype("uint32")
    eofu = out["end_of_follow_up"]
    observed_to = out["window_end"].where(eofu.isna() | (out["window_end"] <= eofu + pd.Timedelta(days=1)),
                                          eofu + pd.Timedelta(days=1))
    out["days_observed"] = (observed_to - out["window_start"]).dt.days.clip(lower=0).astype("int32")
    out = out.sort_values(["_pidx", "wi", "ci"], ignore_index=True)
    return out[["patient_id", "window", "window_start", "window_end", "window_days", "category", "cost",
                "n_records", "n_unpriced", "n_excluded", "days_observed",
                "index_date", "group", "site", "matched_set", "weight", "end_of_follow_up"]]


def windows(priced: pd.DataFrame, cohort: pd.DataFrame, r: Rules) -> pd.DataFrame:
    """Cost per cohort patient x window x category, zero-filled (admission-date assignment)."""
    w = _cohort_windows(cohort, r)
    m = priced[["patient_id", "activity_date", "cost_category", "cost", "status"]].merge(
        w[["patient_id", "_pidx", "wi", "window_start", "window_end", "end_of_follow_up"]], on="patient_id")
    d = m["activity_date"]
    inw = m[(d >= m["window_start"]) & (d < m["window_end"])
            & (m["end_of_follow_up"].isna() | (d <= m["end_of_follow_up"]))]
    inw = inw.assign(unpriced=inw["cost"].isna(), excluded=inw["status"].eq(r.status["EXCLUDED_NOT_ATTENDED"]))
    agg = inw.groupby(["_pidx", "wi", "cost_category"], as_index=False).agg(
        cost=("cost", "sum"), n_records=("cost", "size"), n_unpriced=("unpriced", "sum"),
        n_excluded=("excluded", "sum")).rename(columns={"cost_category": "category"})
    return _zero_fill(w, agg, r)


# --------------------------------------------------------------------------------------
# row-wise (DataFrame.apply, one Python call per record)
# --------------------------------------------------------------------------------------


def price_rowwise(act: pd.DataFrame, rc: pd.DataFrame, tp: pd.DataFrame, r: Rules) -> pd.DataFrame:
    """The same rules as ``price``, one record at a time through ``apply(axis=1)``."""
    st = r.status
    lookup = {(d, sv, c): u for d, sv, c, u in zip(rc["department_code"], rc["service_code"],
                                                   rc["currency_code"], rc["unit_cost"], strict=True)}
    known = set(rc.loc[~rc["department_code"].isin(["CL", "NCL", "TOTAL"]), "currency_code"])
    trims = dict(zip(tp["hrg_code"], tp["trim_days"], strict=True))

    def na(x: Any) -> bool:
        return x is None or x is pd.NA or (isinstance(x, float) and np.isnan(x))

    def unit(d: Any, sv: Any, c: Any) -> float | None:
        u = lookup.get((d, sv, c))
        return None if u is None or na(u) else float(u)

    def price_row(row: pd.Series) -> tuple[Any, ...]:
        setting, hrg = row["setting"], row["hrg_code"]
        hrg = None if na(hrg) else hrg
        hv = r.default_hrg_version if na(row["hrg_version"]) else row["hrg_version"]
        ok = hrg is not None and hv == r.edition_hrg_version
        los = pod = None
        p1 = p2 = None
        proc = False
        xs_days = 0
        first = row["first_attendance"] in r.op_first
        if setting == "apc":
            los = (row["discharge_date"] - row["activity_date"]).days
            meth, cls = row["admission_method"], row["patient_classification"]
            cls = None if na(cls) else cls
            if cls in ("3", "4"):
                pod = "RP"
            elif meth in r.elective_methods and cls == "2":
                pod = "DC"
            elif meth in r.elective_methods and cls is not None:
                pod = "EL"
            elif meth in r.admission_methods and cls is not None:
                pod = "NEL"
            dept = ("NES" if los < r.nes_los_threshold else "NEL") if pod == "NEL" else pod
            if ok and dept is not None:
                p1 = unit(dept, "", hrg)
            xs = "EL_XS" if pod == "EL" else ("NEL_XS" if pod == "NEL" and los >= r.nes_los_threshold else None)
            if ok and r.long_stay and xs is not None:
                p2 = unit(xs, "", hrg)
            trim = trims.get(hrg)
            if r.long_stay and p1 is not None and p2 is not None and trim is not None:
                xs_days = max(los - trim, 0)
            base = p1
        elif setting == "op":
            tf = None if na(row["treatment_function_code"]) else row["treatment_function_code"]
            if ok and tf is not None:
                p1 = unit("OPROC", tf, hrg)
            multi = False if na(row["multi_professional"]) else bool(row["multi_professional"])
            wf = "WF0" + ("2" if multi else "1") + ("B" if first else "A")
            if tf is not None:
                p2 = unit(r.op_reference_department, tf, wf)
            proc = p1 is not None
            base = p1 if proc else p2
        else:  # ae
            dtype_ = None if na(row["department_type"]) else row["department_type"]
            adm = False if na(row["ae_admitted"]) else bool(row["ae_admitted"])
            if ok and dtype_ is not None:
                p1 = unit("AE", "T" + dtype_ + ("A" if adm else "NA"), hrg)
            base = p1
            if dtype_ in ("01", "02"):
                pod = "AE_T12"
            elif dtype_ in r.ae_types:
                pod = "AE_T" + dtype_[1:2]
        xs_cost = xs_days * (p2 or 0.0)
        cost = None if base is None else base + xs_cost
        if setting == "op" and row["attended"] in r.op_not_attended:
            status = st["EXCLUDED_NOT_ATTENDED"]
        elif setting in ("apc", "ae") and hrg is None:
            status = st["HRG_MISSING"]
        elif hrg is not None and hrg.startswith("U"):
            status = st["HRG_UNGROUPABLE"]
        elif cost is not None:
            status = st["PRICED_REFERENCE_COST"]
        elif setting != "op" and hv != r.edition_hrg_version:
            status = st["HRG_VERSION_MISMATCH"]
        elif setting != "op" and hrg not in known:
            status = st["HRG_NOT_FOUND"]
        else:
            status = st["NO_PRICE_FOR_POD"]
        excluded = status == st["EXCLUDED_NOT_ATTENDED"]
        priced = status < r.not_priced_from
        by_chain = priced and not excluded
        if setting == "op":
            pod = ("OP_PROC" if proc and by_chain else "OP_FIRST" if first
                   else "OP_FOLLOWUP" if row["first_attendance"] in ("2", "4") else None)
            category = "outpatient"
        elif setting == "ae":
            category = "ae"
        elif pod in ("DC", "EL", "RP") or (pod is None and row["admission_method"] in r.elective_methods):
            category = "elective"
        else:
            category = "non_elective"
        out_cost = 0.0 if excluded else (cost if priced else None)
        return (los, pod, category, out_cost,
                "excluded" if excluded else ("reference_cost" if priced else None),
                status, r.status_names[status], base if by_chain else None,
                xs_days if by_chain and setting == "apc" else None,
                xs_cost if by_chain and setting == "apc" else None)

    names = ["los_days", "pod", "cost_category", "cost", "cost_source", "status", "status_name",
             "base_price", "excess_bed_days", "excess_bed_day_cost"]
    res = act.apply(price_row, axis=1, result_type="expand")
    res.columns = names
    out = pd.concat([act, res], axis=1)
    out["cost"] = out["cost"].astype("float64")
    out["status"] = out["status"].astype("int16")
    out["reference_cost_edition"] = r.edition
    return out


def windows_rowwise(priced: pd.DataFrame, cohort: pd.DataFrame, r: Rules) -> pd.DataFrame:
    """Window assignment per record through ``apply(axis=1)``, then groupby + zero-fill."""
    w = _cohort_windows(cohort, r)
    bounds: dict[Any, list[tuple[int, int, Any, Any, Any]]] = {}
    for rec in w[["patient_id", "_pidx", "wi", "window_start", "window_end", "end_of_follow_up"]].itertuples(
            index=False):
        bounds.setdefault(rec.patient_id, []).append(tuple(rec[1:]))

    def assign(row: pd.Series) -> tuple[Any, Any]:
        for pidx, wi, start, end, eofu in bounds.get(row["patient_id"], ()):
            d = row["activity_date"]
            if start <= d < end and (pd.isna(eofu) or d <= eofu):
                return pidx, wi
        return None, None

    res = priced.apply(assign, axis=1, result_type="expand")
    res.columns = ["_pidx", "wi"]
    inw = pd.concat([priced[["cost_category", "cost", "status"]], res], axis=1).dropna(subset=["_pidx"])
    inw = inw.astype({"_pidx": "int64", "wi": "int64"})
    inw = inw.assign(unpriced=inw["cost"].isna(), excluded=inw["status"].eq(r.status["EXCLUDED_NOT_ATTENDED"]))
    agg = inw.groupby(["_pidx", "wi", "cost_category"], as_index=False).agg(
        cost=("cost", "sum"), n_records=("cost", "size"), n_unpriced=("unpriced", "sum"),
        n_excluded=("excluded", "sum")).rename(columns={"cost_category": "category"})
    return _zero_fill(w, agg, r)


def totals(priced: pd.DataFrame, win: pd.DataFrame, r: Rules) -> Totals:
    """The comparison totals from a priced frame and a windows frame."""
    cost = priced["cost"]
    by_status = priced.groupby("status")["cost"].agg(["size", "sum"])
    by_cat = priced.groupby("cost_category")["cost"].agg(["size", "sum"])
    by_pod = priced["pod"].astype(object).where(priced["pod"].notna(), "None").value_counts()
    pr = priced["status"] < r.not_priced_from
    return {
        "records": len(priced), "total_cost": float(cost.sum()), "n_priced": int(pr.sum()),
        "n_unpriced": int((~pr).sum()),
        "by_status": {str(k): [int(v["size"]), float(v["sum"])] for k, v in by_status.iterrows()},
        "by_category": {str(k): [int(v["size"]), float(v["sum"])] for k, v in by_cat.iterrows()},
        "by_pod": {str(k): int(v) for k, v in by_pod.items()},
        "windows": {"rows": len(win), "cost": float(win["cost"].sum()),
                    "n_records": int(win["n_records"].sum()), "n_unpriced": int(win["n_unpriced"].sum()),
                    "n_excluded": int(win["n_excluded"].sum()), "patients": int(win["patient_id"].nunique())},
    }
