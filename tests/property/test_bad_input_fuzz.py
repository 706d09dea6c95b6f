"""Random malformations of valid extracts (their rows, fields, quoting, encodings and values)
through read_activity, pricing and the CLI: every run ends in a result, with every row kept,
or in a clear CostingError (exit 1/2 on the command line); never another exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import costing
from costing.cli import main
from costing.errors import CostingError
from tests.fixtures.tables import write_reference_costs

VALID = {
    "apc": "PSEUDO_HESID,EPIKEY,PROCODE3,ADMIDATE,DISDATE,EPISTART,EPIEND,ADMIMETH,CLASSPAT,SUSHRG,STARTAGE\n"
           "p1,e1,RXX,2017-06-01,2017-06-04,2017-06-01,2017-06-04,21,1,DZ11V,50\n"
           "p2,e2,RXX,2017-06-02,,2017-06-02,2017-06-03,11,2,DZ11V,7001\n"
           "p3,e3,RXX,01/07/2017,05/07/2017,,,22,1,DZ11V,80\n",
    "op": "PSEUDO_HESID,ATTENDKEY,APPTDATE,ATTENDED,FIRSTATT,TRETSPEF\n"
          "p1,o1,2017-06-01,5,1,100\np2,o2,2017-06-02,3,2,100\np3,o3,2017-06-03,6,2,110\n",
    "ae": "PSEUDO_HESID,AEKEY,ARRIVALDATE,AEDEPTTYPE,SUSHRG,AEATTENDDISP\n"
          "p1,a1,2017-06-01,01,VB01Z,01\np2,a2,2017-06-02,1,VB01Z,99\np3,a3,2017-06-03,03,VB01Z,02\n",
}

# values a careless export puts in a cell
NASTY = st.sampled_from(["", " ", "NULL", "null", "NA", "-", "&", "?", "0", "-1", "99999999999999999999",
                         "1e400", "nan", "1800-01-01", "2017-02-30", "31/12/2017", "2017-06-01 00:00:00",
                         "=1+1", "'", '"', "a,b", "a\nb", "é", "\u00a0", "\ufeff", "\x00", "7001",
                         "UZ01Z", "dz11v", " DZ11V ", "2A", "T01NA"])


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, bytes, str]:
    """(setting, bytes of a malformed extract, encoding to read it with)."""
    setting = draw(st.sampled_from(sorted(VALID)))
    lines = VALID[setting].splitlines()
    header, rows = lines[0], [r.split(",") for r in lines[1:]]
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["cell", "cell", "drop_row", "repeat_row", "short_row", "long_row",
                                     "quote", "header"]))
        if kind == "cell" and rows:
            r = draw(st.integers(0, len(rows) - 1))
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(NASTY | st.text(max_size=6))
        elif kind == "drop_row" and rows:
            rows.pop(draw(st.integers(0, len(rows) - 1)))
        elif kind == "repeat_row" and rows:
            rows.append(list(rows[draw(st.integers(0, len(rows) - 1))]))
        elif kind == "short_row" and rows:
            rows[-1] = rows[-1][: draw(st.integers(0, len(rows[-1]) - 1))]
        elif kind == "long_row" and rows:
            rows[0] = [*rows[0], "extra"]
        elif kind == "quote" and rows:
            rows[0][0] = '"' + rows[0][0]
        elif kind == "header":
            cols = header.split(",")
            cols[draw(st.integers(0, len(cols) - 1))] = draw(st.sampled_from(["", "x", cols[0], " ADMIDATE"]))
            header = ",".join(cols)
    text = "\n".join([header, *(",".join(r) for r in rows)]) + draw(st.sampled_from(["\n", "", "\r\n"]))
    encoding = draw(st.sampled_from(["utf8", "utf8", "latin1", "utf8-bom", "utf16"]))
    if encoding == "utf8-bom":
        data, read_as = b"\xef\xbb\xbf" + text.encode("utf-8", "surrogatepass"), "utf8"
    elif encoding == "utf16":
        data, read_as = text.encode("utf-16", "surrogatepass"), "utf8"  # the wrong encoding to give
    else:
        data = text.encode("latin-1" if encoding == "latin1" else "utf-8", "replace")
        read_as = "latin1" if encoding == "latin1" and draw(st.booleans()) else "utf8"
    return setting, data, read_as


_TABLES: list[costing.TableSet] = []
_ROOT = Path(tempfile.mkdtemp(prefix="costing-fuzz-"))


def _tables() -> costing.TableSet:
    if not _TABLES:  # invented prices
        write_reference_costs(_ROOT / "tables", "2017-18", [
            ("NEL", None, "DZ11V", 900.0), ("EL", None, "DZ11V", 800.0), ("DC", None, "DZ11V", 500.0),
            ("CL", "100", "WF01B", 150.0), ("AE", "T01NA", "VB01Z", 100.0)])
        _TABLES.append(costing.load_tables(_ROOT / "tables"))
    return _TABLES[0]


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(malformed(), st.booleans())
def test_a_malformed_extract_gives_a_result_or_a_costing_error(case: tuple[str, bytes, str], strict: bool) -> None:
    setting, data, encoding = case
    path = _ROOT / f"{setting}.csv"
    path.write_bytes(data)
    cfg = costing.CostingConfig(perspective="provider", reference_cost_edition="2017-18", strict=strict)
    try:
        read = costing.read_activity(path, setting=setting, encoding=encoding, strict=strict).collect()
        priced = costing.price(read, _tables(), cfg)
    except CostingError as exc:
        assert str(exc)  # a message for the user
    else:
        assert int(priced["n_episodes"].sum() or 0) == read.height  # every row kept
        assert priced.filter(pl.col("cost").is_null() & (pl.col("status") < 50)).height == 0
    out = _ROOT / "out.csv"
    out.unlink(missing_ok=True)
    res = CliRunner().invoke(main, ["price", str(path), "--setting", setting, "--encoding", encoding,
                                    "--tables", str(_ROOT / "tables"), "--perspective", "provider",
                                    "--reference-costs", "2017-18", *(["--strict"] if strict else []),
                                    "-o", str(out)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1), res.output
    assert "Traceback" not in res.output
    if res.exit_code == 1 and "unpriced" not in res.output:
        assert "costing: error:" in res.output and not out.exists()
