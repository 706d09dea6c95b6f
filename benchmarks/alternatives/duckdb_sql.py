"""The engine's provider pipeline as DuckDB SQL: one pricing query and one windows query.

Mirrors ``costing.price`` (provider perspective, fixed reference-cost edition, episode
level) and ``costing.cost_by_window`` (admission-date assignment, by category, zero-filled)
rule for rule; the comments name the engine rule each piece mirrors. Input validation (the
engine's ``invalid_reason`` checks) is not re-implemented: the generated data is valid.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from benchmarks.alternatives.rules import FILES, Rules, Totals, sql_list


def connect(threads: int | None = None) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    return con


def load(con: duckdb.DuckDBPyConnection, data: Path) -> Rules:
    """Load activity, cohort and tables into DuckDB tables (not timed)."""
    rules = Rules.load(data / FILES["rules"])
    con.execute(f"CREATE OR REPLACE TABLE act AS SELECT * FROM read_parquet('{data / FILES['activity']}')")
    names = {r[0] for r in con.execute("DESCRIBE act").fetchall()}
    # the canonical columns the generator leaves out, as typed nulls (as canonicalise does)
    extra = []
    if "multi_professional" not in names:
        extra.append("CAST(NULL AS BOOLEAN) AS multi_professional")
    if "ae_admitted" not in names:
        extra.append("CAST(NULL AS BOOLEAN) AS ae_admitted")
    if extra:
        con.execute(f"CREATE OR REPLACE TABLE act AS SELECT *, {', '.join(extra)} FROM act")
    con.execute(f"CREATE OR REPLACE TABLE cohort_in AS SELECT * RENAME (file_row_number AS _pidx) "
                f"FROM read_parquet('{data / FILES['cohort']}', file_row_number = true)")
    cnames = {r[0] for r in con.execute("DESCRIBE cohort_in").fetchall()}
    fill = {"group": "VARCHAR", "site": "VARCHAR", "matched_set": "VARCHAR", "weight": "DOUBLE",
            "end_of_follow_up": "DATE"}
    cols = ", ".join(f'CAST(NULL AS {t}) AS "{c}"' for c, t in fill.items() if c not in cnames)
    con.execute("CREATE OR REPLACE TABLE cohort AS SELECT *" + (f", {cols}" if cols else "") + " FROM cohort_in")
    con.execute("DROP TABLE cohort_in")
    con.execute(
        f"CREATE OR REPLACE TABLE rc AS SELECT department_code, coalesce(service_code, '') AS service_code, "
        f"currency_code, unit_cost FROM read_parquet('{data / FILES['reference_costs']}')")
    con.execute(f"CREATE OR REPLACE TABLE tp AS SELECT hrg_code, trim_days FROM read_parquet('{data / FILES['trimpoints']}')")
    return rules


def pricing_sql(r: Rules) -> str:
    """One query: activity -> priced records (input columns + the engine's main outputs)."""
    st = r.status
    elective = sql_list(r.elective_methods)
    methods = sql_list(r.admission_methods)
    return f"""
CREATE OR REPLACE TABLE priced AS
WITH a AS (
  SELECT *,
    -- with_los / apc_pod: LOS and point of delivery for admitted care
    CASE WHEN setting = 'apc' THEN date_diff('day', activity_date, discharge_date) END AS los_days,
    coalesce(hrg_version, '{r.default_hrg_version}') AS _hrg_version,
    CASE WHEN setting = 'apc' THEN
      CASE WHEN patient_classification IN ('3', '4') THEN 'RP'
           WHEN admission_method IN {elective} AND patient_classification = '2' THEN 'DC'
           WHEN admission_method IN {elective} AND patient_classification IS NOT NULL THEN 'EL'
           WHEN admission_method IN {methods} AND patient_classification IS NOT NULL THEN 'NEL' END
    END AS _apc_pod
  FROM act
), k AS (
  SELECT *,
    -- _hrg_usable: the HRG may be looked up in the edition (version must match)
    (hrg_code IS NOT NULL AND _hrg_version = '{r.edition_hrg_version}') AS _ok,
    -- first lookup: department by POD (NES below the LOS threshold), OPROC, AE
    CASE setting
      WHEN 'apc' THEN CASE WHEN _apc_pod = 'NEL' THEN
                             CASE WHEN los_days < {r.nes_los_threshold} THEN 'NES' ELSE 'NEL' END
                           WHEN _apc_pod IN ('EL', 'DC', 'RP') THEN _apc_pod END
      WHEN 'op' THEN 'OPROC' WHEN 'ae' THEN 'AE' END AS _d1,
    CASE setting
      WHEN 'op' THEN treatment_function_code
      WHEN 'ae' THEN 'T' || department_type || CASE WHEN coalesce(ae_admitted, false) THEN 'A' ELSE 'NA' END
      ELSE '' END AS _s1,
    -- second lookup: excess bed days (APC) or the CL attendance currency WF0{{1|2}}{{B|A}} (OP)
    CASE setting
      WHEN 'apc' THEN CASE WHEN _apc_pod = 'EL' THEN 'EL_XS'
                           WHEN _apc_pod = 'NEL' AND los_days >= {r.nes_los_threshold} THEN 'NEL_XS' END
      WHEN 'op' THEN '{r.op_reference_department}' END AS _d2,
    CASE WHEN setting = 'op' THEN treatment_function_code ELSE '' END AS _s2,
    CASE WHEN setting = 'op'
      THEN 'WF0' || CASE WHEN coalesce(multi_professional, false) THEN '2' ELSE '1' END
                 || CASE WHEN first_attendance IN {sql_list(r.op_first)} THEN 'B' ELSE 'A' END
      ELSE hrg_code END AS _c2
  FROM a
), j AS (
  SELECT k.*, r1.unit_cost AS _p1, r2.unit_cost AS _p2, kh.known AS _known, tp.trim_days AS _trim
  FROM k
  LEFT JOIN rc r1 ON k._ok AND r1.department_code = k._d1 AND r1.service_code = k._s1
                  AND r1.currency_code = k.hrg_code
  LEFT JOIN rc r2 ON (k.setting = 'op' OR (k._ok AND {str(r.long_stay).lower()}))
                  AND r2.department_code = k._d2 AND r2.service_code = k._s2 AND r2.currency_code = k._c2
  LEFT JOIN (SELECT DISTINCT currency_code, true AS known FROM rc
             WHERE department_code NOT IN ('CL', 'NCL', 'TOTAL')) kh ON kh.currency_code = k.hrg_code
  LEFT JOIN tp ON k.setting = 'apc' AND tp.hrg_code = k.hrg_code
), c AS (
  SELECT *,
    (setting = 'op' AND _p1 IS NOT NULL) AS _proc,
    CASE WHEN setting = 'apc' AND {str(r.long_stay).lower()} AND _p1 IS NOT NULL AND _p2 IS NOT NULL
              AND _trim IS NOT NULL
         THEN greatest(los_days - _trim, 0) ELSE 0 END AS _xs_days
  FROM j
), p AS (
  SELECT *,
    CASE WHEN setting = 'op' THEN CASE WHEN _proc THEN _p1 ELSE _p2 END ELSE _p1 END AS _base,
    _xs_days * coalesce(_p2, 0.0) AS _xs_cost
  FROM c
), s AS (
  SELECT *,
    _base + _xs_cost AS _rc_cost,
    coalesce(
      -- record-level status before the chain: excluded, HRG missing, ungroupable
      CASE WHEN setting = 'op' AND attended IN {sql_list(r.op_not_attended)} THEN {st['EXCLUDED_NOT_ATTENDED']}
           WHEN setting IN ('apc', 'ae') AND hrg_code IS NULL THEN {st['HRG_MISSING']}
           WHEN starts_with(hrg_code, 'U') THEN {st['HRG_UNGROUPABLE']} END,
      -- the chain (reference cost only) priced it, or the most specific reason it did not
      CASE WHEN _base + _xs_cost IS NOT NULL THEN {st['PRICED_REFERENCE_COST']}
           WHEN setting <> 'op' AND NOT coalesce(_hrg_version = '{r.edition_hrg_version}', false)
             THEN {st['HRG_VERSION_MISMATCH']}
           WHEN setting <> 'op' AND NOT coalesce(_known, false) THEN {st['HRG_NOT_FOUND']}
           ELSE {st['NO_PRICE_FOR_POD']} END
    ) AS status
  FROM p
), o AS (
  SELECT *,
    status < {r.not_priced_from} AND status <> {st['EXCLUDED_NOT_ATTENDED']} AS _by_chain,
    CASE setting
      WHEN 'apc' THEN _apc_pod
      WHEN 'op' THEN CASE WHEN _proc AND status < {r.not_priced_from} AND status <> {st['EXCLUDED_NOT_ATTENDED']}
                            THEN 'OP_PROC'
                          WHEN first_attendance IN {sql_list(r.op_first)} THEN 'OP_FIRST'
                          WHEN first_attendance IN ('2', '4') THEN 'OP_FOLLOWUP' END
      WHEN 'ae' THEN CASE WHEN department_type IN ('01', '02') THEN 'AE_T12'
                          WHEN department_type IN {sql_list(r.ae_types)}
                            THEN 'AE_T' || substr(department_type, 2, 1) END
    END AS pod
  FROM s
)
SELECT * EXCLUDE (_hrg_version, _apc_pod, _ok, _d1, _s1, _d2, _s2, _c2, _p1, _p2, _known, _trim,
                  _proc, _xs_days, _base, _xs_cost, _rc_cost, _by_chain),
  CASE setting WHEN 'op' THEN 'outpatient' WHEN 'ae' THEN 'ae'
       ELSE CASE WHEN pod IN ('DC', 'EL', 'RP') THEN 'elective'
                 WHEN admission_method IN {elective} AND pod IS NULL THEN 'elective'
                 ELSE 'non_elective' END END AS cost_category,
  CASE WHEN status = {st['EXCLUDED_NOT_ATTENDED']} THEN 0.0
       WHEN status < {r.not_priced_from} THEN _rc_cost END AS cost,
  CASE WHEN status = {st['EXCLUDED_NOT_ATTENDED']} THEN 'excluded'
       WHEN status < {r.not_priced_from} THEN 'reference_cost' END AS cost_source,
  CASE status {' '.join(f"WHEN {k} THEN '{v}'" for k, v in r.status_names.items())} END AS status_name,
  '{r.edition}' AS reference_cost_edition,
  CASE WHEN _by_chain THEN _base END AS base_price,
  CASE WHEN _by_chain AND setting = 'apc' THEN _xs_days END AS excess_bed_days,
  CASE WHEN _by_chain AND setting = 'apc' THEN _xs_cost END AS excess_bed_day_cost
FROM o
"""


def windows_sql(r: Rules) -> str:
    """One query: priced records + cohort -> cost per patient x window x category, zero-filled."""
    wins = ", ".join(f"({i}, {k})" for i, k in enumerate(r.windows))
    cats = ", ".join(f"('{c}', {i})" for i, c in enumerate(r.categories))
    st = r.status
    return f"""
CREATE OR REPLACE TABLE windows AS
WITH w AS (
  -- window k: [index + months*k, index + months*(k+1)), each bound from the index date,
  -- month-end clamped (DuckDB month arithmetic clamps, as polars offset_by does)
  SELECT c.*, ks.wi, ks.k AS "window",
    CAST(c.index_date + to_months({r.months} * ks.k) AS DATE) AS window_start,
    CAST(c.index_date + to_months({r.months} * (ks.k + 1)) AS DATE) AS window_end
  FROM cohort c CROSS JOIN (VALUES {wins}) ks(wi, k)
), agg AS (
  -- assignment by admission / appointment / arrival date; after end of follow-up is not in
  SELECT w._pidx, w.wi, p.cost_category AS category,
    sum(coalesce(p.cost, 0.0)) AS cost,
    count(*) AS n_records,
    count(*) FILTER (WHERE p.cost IS NULL) AS n_unpriced,
    count(*) FILTER (WHERE p.status = {st['EXCLUDED_NOT_ATTENDED']}) AS n_excluded
  FROM priced p JOIN w ON p.patient_id = w.patient_id
  WHERE p.activity_date >= w.window_start AND p.activity_date < w.window_end
    AND (w.end_of_follow_up IS NULL OR p.activity_date <= w.end_of_follow_up)
  GROUP BY ALL
)
SELECT w.patient_id, w."window", w.window_start, w.window_end,
  CAST(date_diff('day', w.window_start, w.window_end) AS INTEGER) AS window_days,
  cats.category,
  coalesce(agg.cost, 0.0) AS cost,
  CAST(coalesce(agg.n_records, 0) AS UINTEGER) AS n_records,
  CAST(coalesce(agg.n_unpriced, 0) AS UINTEGER) AS n_unpriced,
  CAST(coalesce(agg.n_excluded, 0) AS UINTEGER) AS n_excluded,
  CAST(CASE WHEN w.end_of_follow_up IS NULL THEN date_diff('day', w.window_start, w.window_end)
       ELSE greatest(date_diff('day', w.window_start,
                               least(w.window_end, CAST(w.end_of_follow_up + INTERVAL 1 DAY AS DATE))), 0)
  END AS INTEGER) AS days_observed,
  w.index_date, w."group", w.site, w.matched_set, w.weight, w.end_of_follow_up
FROM w CROSS JOIN (VALUES {cats}) cats(category, ci)
LEFT JOIN agg ON agg._pidx = w._pidx AND agg.wi = w.wi AND agg.category = cats.category
ORDER BY w._pidx, w.wi, cats.ci
"""


def pipeline(con: duckdb.DuckDBPyConnection, rules: Rules) -> None:
    """The timed part: price, then windows (both materialised as DuckDB tables)."""
    con.execute(pricing_sql(rules))
    con.execute(windows_sql(rules))


def totals(con: duckdb.DuckDBPyConnection, rules: Rules) -> Totals:
    """The comparison totals from the ``priced`` and ``windows`` tables."""
    q = con.execute
    by_status = {str(s): [n, float(c)] for s, n, c in q(
        "SELECT status, count(*), coalesce(sum(cost), 0.0) FROM priced GROUP BY 1 ORDER BY 1").fetchall()}
    by_cat = {c: [n, float(x)] for c, n, x in q(
        "SELECT cost_category, count(*), coalesce(sum(cost), 0.0) FROM priced GROUP BY 1").fetchall()}
    by_pod = {str(p): n for p, n in q("SELECT pod, count(*) FROM priced GROUP BY 1").fetchall()}
    n, total, n_priced, n_unpriced = q(
        "SELECT count(*), coalesce(sum(cost), 0.0), count(*) FILTER (WHERE status < $1), "
        "count(*) FILTER (WHERE status >= $1) FROM priced", [rules.not_priced_from]).fetchone()  # type: ignore[misc]
    rows, wcost, wn, wu, wx, pats = q(
        "SELECT count(*), sum(cost), sum(n_records), sum(n_unpriced), sum(n_excluded), "
        "count(DISTINCT patient_id) FROM windows").fetchone()  # type: ignore[misc]
    return {
        "records": int(n), "total_cost": float(total), "n_priced": int(n_priced),
        "n_unpriced": int(n_unpriced), "by_status": by_status, "by_category": by_cat,
        "by_pod": by_pod,
        "windows": {"rows": int(rows), "cost": float(wcost), "n_records": int(wn),
                    "n_unpriced": int(wu), "n_excluded": int(wx), "patients": int(pats)},
    }
