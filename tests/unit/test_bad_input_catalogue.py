"""The bad-input catalogue: what a user who gets an input or an option wrong sees, through the
CLI. docs/bad-inputs.md is this table in words (a test keeps the two in step).

Each case asserts the exit code (0 with a status on the row, 1 error, 2 usage), a message or
reason naming the problem, no traceback, and conservation of rows: on exit 0 every input
record comes out (one row each, or counted in its spell's n_episodes) with the expected
status; on an error no output file is written. Prices are invented (small fixture tables).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from costing.cli import main
from tests.conftest import REPO
from tests.fixtures.tables import apc_rows, write_reference_costs, write_tariff, write_trimpoints

APC_HEADER = ("PSEUDO_HESID", "EPIKEY", "PROCODE3", "ADMIDATE", "DISDATE", "ADMIMETH", "CLASSPAT",
              "SUSHRG", "STARTAGE")
APC_ROW = {"PSEUDO_HESID": "p1", "EPIKEY": "e1", "PROCODE3": "RXX", "ADMIDATE": "2017-06-01",
           "DISDATE": "2017-06-04", "ADMIMETH": "21", "CLASSPAT": "1", "SUSHRG": "DZ11V", "STARTAGE": "50"}
OP_HEADER = ("PSEUDO_HESID", "ATTENDKEY", "APPTDATE", "ATTENDED", "FIRSTATT", "TRETSPEF")
OP_ROW = {"PSEUDO_HESID": "p1", "ATTENDKEY": "o1", "APPTDATE": "2017-06-01", "ATTENDED": "5",
          "FIRSTATT": "1", "TRETSPEF": "100"}
AE_HEADER = ("PSEUDO_HESID", "AEKEY", "ARRIVALDATE", "AEDEPTTYPE", "SUSHRG", "AEATTENDDISP")
AE_ROW = {"PSEUDO_HESID": "p1", "AEKEY": "a1", "ARRIVALDATE": "2017-06-01", "AEDEPTTYPE": "01",
          "SUSHRG": "VB01Z", "AEATTENDDISP": "02"}
COHORT = "patient_id,index_date,group,matched_set\np1,2017-07-01,intervention,s1\np2,2017-07-01,control,s1\n"
PROVIDER = ["--perspective", "provider", "--reference-costs", "2017-18"]
PURCHASER = ["--tariff", "2017-18", "--reference-costs", "2017-18"]


def csv(header: tuple[str, ...], base: dict[str, str], *rows: dict[str, str]) -> str:
    """A CSV of ``rows``, each ``base`` with its changes (a key mapped to None is left out)."""
    lines = [",".join(header)]
    for i, r in enumerate(rows or ({},)):
        values = {**base, **r}
        lines.append(",".join(values.get(h) or "" for h in header))
    return "\n".join(lines) + "\n"


def apc(*rows: dict[str, str]) -> str:
    return csv(APC_HEADER, APC_ROW, *rows)


def op(*rows: dict[str, str]) -> str:
    return csv(OP_HEADER, OP_ROW, *rows)


def ae(*rows: dict[str, str]) -> str:
    return csv(AE_HEADER, AE_ROW, *rows)


@dataclass(frozen=True)
class Case:
    """One bad input: the files written, the command ({name} is a file's path, {out} the
    output, {tables} the fixture tables), the exit code, a text the output or a row's reason
    must hold, and on exit 0 the status of each output row."""

    id: str
    files: dict[str, str | bytes]
    args: str
    code: int
    message: str
    statuses: tuple[str, ...] = ()
    out: str = "out.csv"
    extra: dict[str, str] = field(default_factory=dict)


def price(extract: str, more: str = "") -> str:
    return f"price {extract} --tables {{tables}} {more} -o {{out}}"


P, T = " ".join(PROVIDER), " ".join(PURCHASER)
HES35_NAME = "hes35"

CASES = [
    # ---- reading an extract ------------------------------------------------------------
    Case("empty-file", {"a.csv": ""}, price("{a.csv} --setting apc", P), 1, "the file is empty"),
    Case("header-only", {"a.csv": ",".join(APC_HEADER) + "\n"}, price("{a.csv} --setting apc", P), 0,
         "0 records read"),
    Case("semicolon-separated", {"a.csv": apc().replace(",", ";")}, price("{a.csv} --setting apc", P), 1,
         "looks semicolon-separated"),
    Case("latin1-without-encoding", {"a.csv": apc({"PROCODE3": "R\xc9X"}).encode("latin-1")},
         price("{a.csv} --setting apc", P), 1, "not valid UTF-8"),
    Case("latin1-with-encoding", {"a.csv": apc({"PROCODE3": "R\xc9X"}).encode("latin-1")},
         price("{a.csv} --setting apc --encoding latin1", P), 0, "1 records read", ("priced_reference_cost",)),
    Case("utf8-byte-order-mark", {"a.csv": b"\xef\xbb\xbf" + apc().encode()}, price("{a.csv} --setting apc", P),
         0, "1 records read", ("priced_reference_cost",)),
    Case("unknown-extension", {"a.txt": apc()}, price("{a.txt} --setting apc", P), 1, "cannot read .txt"),
    Case("file-not-found", {}, price("missing.csv --setting apc", P), 2, "does not exist"),
    Case("missing-required-column", {"a.csv": apc().replace("ADMIMETH", "METHOD")},
         price("{a.csv} --setting apc", P), 1, "missing required column(s): 'admission_method"),
    Case("renamed-hrg-column", {"a.csv": apc().replace("SUSHRG", "SUS_HRG")}, price("{a.csv} --setting apc", P),
         1, "did you mean 'SUS_HRG'?"),
    Case("wrong-setting-for-file", {"a.csv": apc()}, price("{a.csv} --setting op", P), 1,
         "'attended (looked for ATTENDED)'"),
    Case("setting-not-told-by-columns", {"a.csv": "x,y\n1,2\n"}, price("{a.csv}", P), 1,
         "cannot tell its setting"),
    Case("row-with-more-fields-than-header", {"a.csv": apc().replace(",50\n", ",50,surplus\n")},
         price("{a.csv} --setting apc", P), 0, "more fields than the header", ("invalid_record",)),
    Case("unparseable-date", {"a.csv": apc({"ADMIDATE": "31/02/2017"})}, price("{a.csv} --setting apc", P), 0,
         "activity_date: unparseable '31/02/2017'", ("invalid_record",)),
    Case("us-month-first-date", {"a.csv": apc({"DISDATE": "06/13/2017"})}, price("{a.csv} --setting apc", P), 0,
         "discharge_date: unparseable '06/13/2017'", ("invalid_record",)),
    Case("hes-dummy-date", {"a.csv": apc({"ADMIDATE": "1800-01-01"})}, price("{a.csv} --setting apc", P), 0,
         "HES dummy date 1800-01-01", ("invalid_record",)),
    Case("missing-discharge-date", {"a.csv": apc({"DISDATE": None})}, price("{a.csv} --setting apc", P), 0,
         "discharge_date: missing", ("invalid_record",)),
    Case("discharge-before-admission", {"a.csv": apc({"DISDATE": "2017-05-30"})},
         price("{a.csv} --setting apc", P), 0, "discharge before admission", ("invalid_record",)),
    Case("stay-over-max-length", {"a.csv": apc({"DISDATE": "2027-06-04"})}, price("{a.csv} --setting apc", P),
         0, "length of stay over 3650 days", ("invalid_record",)),
    Case("unknown-admission-method", {"a.csv": apc({"ADMIMETH": "77"})}, price("{a.csv} --setting apc", P), 0,
         "unknown admission method", ("invalid_record",)),
    Case("unknown-patient-classification", {"a.csv": apc({"CLASSPAT": "7"})}, price("{a.csv} --setting apc", P),
         0, "unknown patient classification", ("invalid_record",)),
    Case("malformed-hrg", {"a.csv": apc({"SUSHRG": "12345"})}, price("{a.csv} --setting apc", P), 0,
         "malformed HRG code", ("invalid_record",)),
    Case("ungroupable-u-code", {"a.csv": apc({"SUSHRG": "UZ01Z"})}, price("{a.csv} --setting apc", P), 0,
         "hrg_ungroupable 1", ("hrg_ungroupable",)),
    Case("hrg-missing", {"a.csv": apc({"SUSHRG": None})}, price("{a.csv} --setting apc", P), 0,
         "hrg_missing 1", ("hrg_missing",)),
    Case("hrg-not-in-tables", {"a.csv": apc({"SUSHRG": "ZZ99Z"})}, price("{a.csv} --setting apc", P), 0,
         "hrg_not_found 1", ("hrg_not_found",)),
    Case("lower-case-hrg-with-spaces", {"a.csv": apc({"SUSHRG": " dz11v "})}, price("{a.csv} --setting apc", P),
         0, "1 records read", ("priced_reference_cost",)),
    Case("hrg-version-declared-wrong", {"a.csv": apc()}, price("{a.csv} --setting apc --hrg-version v3.5", P),
         0, "hrg_version_mismatch 1", ("hrg_version_mismatch",)),
    Case("hes35-preset-for-outpatients", {"o.csv": op()}, price("{o.csv} --setting op --columns hes35", P), 1,
         "is for admitted patient care"),
    Case("unknown-column-preset", {"a.csv": apc()}, price("{a.csv} --setting apc --columns hez", P), 1,
         "did you mean 'hes'?"),
    Case("impossible-age-provider", {"a.csv": apc({"STARTAGE": "999"})}, price("{a.csv} --setting apc", P), 0,
         "age: not an age in years", ("priced_reference_cost",)),
    Case("impossible-age-short-stay-tariff", {"a.csv": apc({"STARTAGE": "999", "DISDATE": "2017-06-02"})},
         price("{a.csv} --setting apc", T), 0, "age: not an age in years", ("invalid_record",)),
    Case("text-age", {"a.csv": apc({"STARTAGE": "fifty"})}, price("{a.csv} --setting apc", P), 0,
         "age: not an age in years", ("priced_reference_cost",)),
    Case("hes-infant-age-code", {"a.csv": apc({"STARTAGE": "7001"})}, price("{a.csv} --setting apc", P), 0,
         "1 records read", ("priced_reference_cost",)),
    Case("episode-without-discharge-date", {"a.csv": apc({"DISDATE": None}).replace(
        "STARTAGE", "STARTAGE,EPISTART,EPIEND").replace(",50\n", ",50,2017-06-01,2017-06-03\n")},
         price("{a.csv} --setting apc", P), 0, "1 records read", ("priced_reference_cost",)),
    Case("episode-ends-before-it-starts", {"a.csv": apc().replace("STARTAGE", "STARTAGE,EPISTART,EPIEND")
                                           .replace(",50\n", ",50,2017-06-03,2017-06-01\n")},
         price("{a.csv} --setting apc", P), 0, "episode ends before it starts", ("invalid_record",)),
    Case("duplicate-record-id", {"a.csv": apc({}, {"PSEUDO_HESID": "p2"})}, price("{a.csv} --setting apc", P), 0,
         "1 record(s) repeat an earlier record's id", ("priced_reference_cost", "duplicate_record")),
    Case("same-file-twice", {"a.csv": apc()}, price("{a.csv} {a.csv} --setting apc", P), 0,
         "is given more than once", ("priced_reference_cost", "duplicate_record")),
    Case("same-file-twice-strict", {"a.csv": apc()}, price("{a.csv} {a.csv} --setting apc --strict", P), 1,
         "the same file given twice"),
    Case("strict-with-an-invalid-row", {"a.csv": apc({}, {"EPIKEY": "e2", "ADMIMETH": "77"})},
         price("{a.csv} --setting apc --strict", P), 1, "invalid value(s) in strict mode"),
    Case("op-treatment-function-not-a-code", {"o.csv": op({"TRETSPEF": "&"})}, price("{o.csv} --setting op", P),
         0, "not a treatment function code", ("invalid_record",)),
    Case("op-unknown-attendance", {"o.csv": op({"ATTENDED": "8"})}, price("{o.csv} --setting op", P), 0,
         "unknown attendance status", ("invalid_record",)),
    Case("op-unknown-first-attendance", {"o.csv": op({"FIRSTATT": "9"})}, price("{o.csv} --setting op", P), 0,
         "first/follow-up unknown", ("invalid_record",)),
    Case("op-did-not-attend", {"o.csv": op({"ATTENDED": "3"})}, price("{o.csv} --setting op", P), 0,
         "excluded 1", ("excluded_not_attended",)),
    Case("ae-unknown-department-type", {"e.csv": ae({"AEDEPTTYPE": "99"})}, price("{e.csv} --setting ae", P), 0,
         "unknown A&E department type", ("invalid_record",)),
    Case("ae-department-type-lost-its-zero", {"e.csv": ae({"AEDEPTTYPE": "1"})}, price("{e.csv} --setting ae", P),
         0, "1 records read", ("priced_reference_cost",)),
    Case("mapping-names-an-absent-column", {"a.csv": apc(), "m.toml": 'age = "STARTAGE_"\n'},
         price("{a.csv} --setting apc --columns {m.toml} --hrg-version HRG4", P), 1,
         "did you mean 'STARTAGE'?"),
    Case("mapping-key-not-a-column", {"a.csv": apc(), "m.toml": 'agee = "STARTAGE"\n'},
         price("{a.csv} --setting apc --columns {m.toml}", P), 1, "did you mean 'age'"),
    Case("mapping-not-toml", {"a.csv": apc(), "m.toml": "age = \n"},
         price("{a.csv} --setting apc --columns {m.toml}", P), 1, "not a valid TOML column mapping"),
    # ---- pricing options ------------------------------------------------------------------
    Case("output-extension-unknown", {"a.csv": apc()}, "price {a.csv} --setting apc --tables {tables} "
         + P + " -o {out}", 2, "-o must end in one of", out="out.txt"),
    Case("price-base-without-index", {"a.csv": apc()}, price("{a.csv} --setting apc --price-base 2022-23", P),
         2, "--price-base and --index go together"),
    Case("tariff-edition-not-held", {"a.csv": apc()}, price("{a.csv} --setting apc --tariff 2099-00"), 1,
         "no tariff edition '2099-00'"),
    Case("edition-not-yyyy-yy", {"a.csv": apc()}, price("{a.csv} --setting apc --reference-costs 2017"), 1,
         "YYYY-YY"),
    Case("chain-names-unknown-source", {"a.csv": apc()}, price("{a.csv} --setting apc --chain tarif", P), 1,
         "chain"),
    Case("config-key-typo", {"a.csv": apc(), "c.toml": 'perspectve = "provider"\n'},
         price("{a.csv} --setting apc --config {c.toml}"), 1, "did you mean 'perspective'?"),
    Case("config-not-toml", {"a.csv": apc(), "c.toml": "perspective = \n"},
         price("{a.csv} --setting apc --config {c.toml}"), 1, "not valid TOML"),
    Case("config-value-refused", {"a.csv": apc(), "c.toml": 'perspective = "payer"\n'},
         price("{a.csv} --setting apc --config {c.toml}"), 1, "perspective"),
    Case("tables-folder-not-a-table-set", {"a.csv": apc(), "t/x.txt": "x"},
         "price {a.csv} --setting apc --tables {t} " + P + " -o {out}", 1, "reference_cost"),
    # ---- windows ---------------------------------------------------------------------------
    Case("windows-list-not-integers", {"p.csv": "", "c.csv": COHORT},
         "windows {p.parquet} --cohort {c.csv} --windows a,b -o {out}", 2, "not a comma-separated list"),
    Case("windows-months-zero", {"c.csv": COHORT}, "windows {p.parquet} --cohort {c.csv} --months 0 -o {out}", 2,
         "--months"),
    Case("windows-priced-file-twice", {"c.csv": COHORT},
         "windows {p.parquet} {p.parquet} --cohort {c.csv} -o {out}", 1, "given more than once"),
    Case("windows-cohort-without-index-date", {"c.csv": "patient_id,date\np1,2017-07-01\n"},
         "windows {p.parquet} --cohort {c.csv} -o {out}", 1, "index_date"),
    Case("windows-cohort-duplicate-patient", {"c.csv": COHORT + "p1,2017-08-01,control,s2\n"},
         "windows {p.parquet} --cohort {c.csv} -o {out}", 1, "p1"),
    Case("windows-cohort-row-with-more-fields", {"c.csv": COHORT.replace("s1\np2", "s1,x\np2")},
         "windows {p.parquet} --cohort {c.csv} -o {out}", 1, "have more fields than the header"),
    Case("windows-cohort-bad-index-date", {"c.csv": COHORT.replace("p2,2017-07-01", "p2,2017-13-45")},
         "windows {p.parquet} --cohort {c.csv} -o {out}", 1, "2017-13-45"),
    # ---- evaluate --------------------------------------------------------------------------
    Case("evaluate-cluster-typo", {}, "evaluate {w.csv} --cluster matchset --boot 10 -o {out}", 1,
         "did you mean 'matched_set'?"),
    Case("evaluate-weight-typo", {}, "evaluate {w.csv} --weight wieght --boot 10 -o {out}", 1,
         "weight column 'wieght' not found"),
    Case("evaluate-group-column-absent", {}, "evaluate {w.csv} --group arm --boot 10 -o {out}", 1,
         "group column 'arm' not found"),
    Case("evaluate-window-absent", {}, "evaluate {w.csv} --pre 5 --boot 10 -o {out}", 1, "5"),
    Case("evaluate-confidence-out-of-range", {}, "evaluate {w.csv} --ci 1.5 -o {out}", 2, "--ci"),
    # ---- run files ---------------------------------------------------------------------------
    Case("run-file-key-typo", {"r.toml": '[inputs.apc]\npath = "a.csv"\n[pricing]\ntarif_edition = "2017-18"\n'},
         "run {r.toml}", 1, "did you mean 'tariff_edition'?", out=""),
    Case("run-file-without-inputs", {"r.toml": "[pricing]\nperspective = \"provider\"\n"}, "run {r.toml}", 1,
         "inputs: Field required", out=""),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture tables, a priced file and a window-cost file the later commands read."""
    root = tmp_path_factory.mktemp("catalogue")
    tables = root / "tables"
    # invented prices: tariff NEL 1000 (trim 5, 200/day, short stay 300); reference cost
    # NEL 900, NES 400, CL first 150, A&E type 1 not admitted 100
    write_tariff(tables, "2017-18", apc_rows(
        dict(hrg_code="DZ11V", nel_price=1000.0, nel_trim_days=5, excess_bed_day_price=200.0,
             sse_applicable=True, sse_percent=30.0, sse_price=300.0)))
    write_reference_costs(tables, "2017-18", [
        ("NEL", None, "DZ11V", 900.0), ("NES", None, "DZ11V", 400.0), ("CL", "100", "WF01B", 150.0),
        ("AE", "T01NA", "VB01Z", 100.0)])
    write_trimpoints(tables, "2017-18", {"DZ11V": 4})
    (root / "a.csv").write_text(apc({}, {"EPIKEY": "e2", "PSEUDO_HESID": "p2"}))
    priced = root / "p.parquet"
    res = CliRunner().invoke(main, ["price", str(root / "a.csv"), "--setting", "apc", "--tables", str(tables),
                                    *PROVIDER, "-o", str(priced)])
    assert res.exit_code == 0, res.output
    (root / "c.csv").write_text(COHORT)
    windows = root / "w.csv"
    res = CliRunner().invoke(main, ["windows", str(priced), "--cohort", str(root / "c.csv"), "-o", str(windows)])
    assert res.exit_code == 0, res.output
    return {"tables": tables, "p.parquet": priced, "w.csv": windows}


def _input_rows(case: Case, files: dict[str, Path]) -> int:
    """Data rows of the extracts a case gives (CSV lines after the header), as many times
    as the command names each."""
    return sum(max(p.read_bytes().count(b"\n") - 1, 0) * case.args.count("{" + n + "}")
               for n, p in files.items() if n.endswith(".csv") and n[0] in "aoe")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, workspace: dict[str, Path], tmp_path: Path) -> None:
    paths: dict[str, Path] = dict(workspace)
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        paths[name] = path
    paths["t"] = tmp_path / "t"
    out = tmp_path / case.out if case.out else None
    values = {**{k: str(v) for k, v in paths.items()}, "out": str(out)}
    args = re.sub(r"\{([^{}]+)\}", lambda m: values[m.group(1)], case.args).split()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == case.code, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    if case.code != 0:
        assert case.message in res.output
        assert out is None or not out.exists()  # nothing written, nothing half-written
        return
    assert out is not None and out.exists()
    priced = pl.read_csv(out, infer_schema=False) if out.stat().st_size else pl.DataFrame()
    reasons = " ".join(priced["invalid_reason"].drop_nulls().to_list()) if "invalid_reason" in priced.columns else ""
    assert case.message in res.output or case.message in reasons
    extracts = {n: p for n, p in paths.items() if n in case.files}
    assert sum(int(n) for n in priced["n_episodes"]) == _input_rows(case, extracts) if priced.height else True
    assert tuple(priced["status_name"]) == case.statuses if priced.height else case.statuses == ()


def test_the_catalogue_has_at_least_60_cases_with_distinct_ids() -> None:
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


def test_docs_list_every_case_of_the_catalogue() -> None:
    docs = (REPO / "docs" / "bad-inputs.md").read_text(encoding="utf-8")
    listed = re.findall(r"^\| `([a-z0-9-]+)` \|", docs, flags=re.M)
    assert sorted(listed) == sorted(c.id for c in CASES), "docs/bad-inputs.md and CASES differ"
