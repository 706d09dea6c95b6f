"""Reading extracts (CSV, Excel, Parquet) into the canonical activity frame, and writing outputs.

Each bad input of the I/O part of the catalogue (docs/reading-extracts.md) has a
test here; the expected numbers are counted from the real artificial HES files or written by
hand in the small CSVs below.
"""

from __future__ import annotations

import base64
import datetime as dt
import zlib
from pathlib import Path

import openpyxl
import polars as pl
import pytest

import costing.io as cio
from costing.errors import (
    ConfigError,
    InputError,
    MissingColumnsError,
    ValidationError,
)
from costing.io import read_activity, read_cohort, read_table, write_frame
from costing.schema import ACTIVITY_SCHEMA

APC_HEADER = "EPIKEY,PSEUDO_HESID,ADMIDATE,DISDATE,ADMIMETH,CLASSPAT,SUSHRG,PROCODE3,STARTAGE"
OUTPUT_TAIL = ["source_file", "source_row", "invalid_reason"]


def _csv(tmp_path: Path, text: str, name: str = "apc.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _apc(tmp_path: Path, *rows: str, name: str = "apc.csv") -> Path:
    return _csv(tmp_path, "\n".join((APC_HEADER, *rows)) + "\n", name)


GOOD_ROW = "000123,P1,2009-04-01,2009-04-03,21,1,DZ11V,RTA,67"


# --------------------------------------------------------------------------------------
# The HES preset on the real artificial HES samples
# --------------------------------------------------------------------------------------


def _raw(path: Path) -> pl.DataFrame:
    return pl.read_csv(path, infer_schema=False)


def _check_canonical_schema(df: pl.DataFrame) -> None:
    assert df.select(list(ACTIVITY_SCHEMA)).schema == pl.Schema(ACTIVITY_SCHEMA)
    assert df.columns[-3:] == OUTPUT_TAIL
    assert df.schema["source_row"] == pl.Int64 and df.schema["invalid_reason"] == pl.String


def test_hes_apc_sample_every_row_comes_out_typed(shared_data: Path) -> None:
    path = shared_data / "artificial-hes" / "artificial_hes_apc_0102_sample.csv"
    raw = _raw(path)
    df = read_activity(path, "apc").collect()
    # data/README.md: "first 2,075 rows"; every one comes out, in order.
    assert df.height == raw.height == 2075
    assert df["source_row"].to_list() == list(range(1, 2076))
    assert df["record_id"].to_list() == raw["EPIKEY"].to_list()
    _check_canonical_schema(df)
    assert set(df["setting"].unique()) == {"apc"} and set(df["hrg_version"].unique()) == {"HRG4"}
    # First data row (line 2 of the file): EPIKEY 513700125763, ADMIDATE 2001-09-27, DISDATE
    # empty, ADMIMETH 28, CLASSPAT 1, PROCODE3 RTA, STARTAGE 34, TRETSPEF 300, EPIORDER 1.
    first = df.row(0, named=True)
    assert first["activity_date"] == dt.date(2001, 9, 27) and first["discharge_date"] is None
    assert (first["admission_method"], first["patient_classification"]) == ("28", "1")
    assert (first["provider_code"], first["age"], first["treatment_function_code"]) == (
        "RTA",
        34,
        "300",
    )
    assert first["episode_order"] == 1
    # DISDATE is empty but the episode has its own EPISTART and EPIEND (2001-12-04 to
    # 2002-02-12): in HES only a spell's last episode has DISDATE, so that is no reading problem
    assert first["invalid_reason"] is None
    # Unmapped columns are kept, as strings, with leading zeros (ADMINCAT "01").
    assert first["ADMINCAT"] == "01" and df.schema["DIAG_4_01"] == pl.String
    assert "ADMIDATE" not in df.columns  # mapped columns are not repeated
    # Statuses of parse problems: the file has 80 empty DISDATE, each with EPISTART and
    # EPIEND (no reading problem), and one row dated 1801-01-01.
    n_empty_dis = raw["DISDATE"].null_count()
    assert n_empty_dis == 80
    assert raw.filter(pl.col("DISDATE").is_null() & pl.col("EPIEND").is_not_null()).height == 80
    assert df["invalid_reason"].str.contains("discharge_date: missing").sum() == 0
    dummy = df.filter(pl.col("invalid_reason").str.contains("dummy"))
    assert dummy.height == raw.filter(pl.col("ADMIDATE").str.starts_with("1801")).height == 1
    assert dummy["activity_date"].item() is None
    # STARTAGE 7001-7007 (under one year) read as age 0, none left unread.
    infants = raw.filter(
        pl.col("STARTAGE").is_in(["7001", "7002", "7003", "7004", "7005", "7006", "7007"])
    ).height
    assert infants > 0
    assert (
        df.filter(pl.col("age") == 0).height
        == infants + raw.filter(pl.col("STARTAGE") == "0").height
    )
    assert df["age"].null_count() == 0


def test_hes_op_sample(shared_data: Path) -> None:
    path = shared_data / "artificial-hes" / "artificial_hes_op_0304_sample.csv"
    raw = _raw(path)
    df = read_activity(path, "op").collect()
    assert df.height == raw.height == 1000
    _check_canonical_schema(df)
    assert df["attended"].to_list() == raw["ATTENDED"].to_list()
    assert df["first_attendance"].to_list() == raw["FIRSTATT"].to_list()
    # STAFFTYP is kept as an extra column with its leading zeros ("01", "02", "99").
    assert set(df["STAFFTYP"].unique()) == set(raw["STAFFTYP"].unique())
    assert "01" in set(df["STAFFTYP"])
    assert df["multi_professional"].null_count() == 1000
    # APPTAGE "7004.0" etc. are infant codes (age 0); one APPTAGE is empty (age null, no reason).
    assert df["age"].null_count() == raw["APPTAGE"].null_count() == 1
    assert df["invalid_reason"].null_count() == 1000


def test_hes_ae_sample(shared_data: Path) -> None:
    path = shared_data / "artificial-hes" / "artificial_hes_ae_0708_sample.csv"
    raw = _raw(path)
    df = read_activity(path, "ae").collect()
    assert df.height == raw.height == 1000
    _check_canonical_schema(df)
    # AEATTENDDISP 01 = admitted: 202 rows of the file (counted by value_counts).
    admitted = raw.filter(pl.col("AEATTENDDISP") == "01").height
    assert admitted == 202
    assert df["ae_admitted"].sum() == admitted
    assert df["ae_admitted"].null_count() == raw.filter(pl.col("AEATTENDDISP") == "99").height
    assert set(df["department_type"].unique()) == {"99"}  # AEDEPTTYPE is "99" throughout
    assert df["hrg_code"].null_count() == 1000  # SUSHRG is empty in this sample


def test_hes35_preset_on_real_apc(shared_data: Path) -> None:
    path = shared_data / "artificial-hes" / "artificial_hes_apc_0102_sample.csv"
    df = read_activity(path, "apc", columns="hes35").collect()
    assert set(df["hrg_version"].unique()) == {"v3.5"}
    assert "SUSHRG" in df.columns and "HRGLATE35" not in df.columns


# --------------------------------------------------------------------------------------
# Bad inputs: columns
# --------------------------------------------------------------------------------------


def test_missing_required_column_with_suggestion(tmp_path: Path) -> None:
    path = _csv(tmp_path, APC_HEADER.replace("ADMIDATE", "ADMI_DATE") + "\n" + GOOD_ROW + "\n")
    with pytest.raises(MissingColumnsError) as info:
        read_activity(path, "apc")
    assert info.value.missing == ["activity_date"]
    assert info.value.suggestions["activity_date"] == ["ADMI_DATE"]
    assert str(path) in str(info.value) and "did you mean 'ADMI_DATE'" in str(info.value)


def test_extra_columns_are_kept_as_strings(tmp_path: Path) -> None:
    path = _csv(tmp_path, APC_HEADER + ",MY_FLAG,setting\n" + GOOD_ROW + ",007,x\n")
    df = read_activity(path, "apc").collect()
    assert df["MY_FLAG"].to_list() == ["007"]
    # A source column named like an output column is kept under another name.
    assert df["setting_original"].to_list() == ["x"] and df["setting"].to_list() == ["apc"]
    assert df.columns[: len(ACTIVITY_SCHEMA)] == list(ACTIVITY_SCHEMA)


def test_codes_keep_leading_zeros_and_are_trimmed(tmp_path: Path) -> None:
    path = _apc(tmp_path, "000123, P1 ,2009-04-01,2009-04-03, 21 ,1,dz11v,rta,  ")
    row = read_activity(path, "apc").collect().row(0, named=True)
    assert row["record_id"] == "000123" and row["patient_id"] == "P1"
    assert row["admission_method"] == "21"
    assert (row["hrg_code"], row["provider_code"]) == ("DZ11V", "RTA")  # codes upper-cased
    assert row["age"] is None and row["invalid_reason"] is None  # blank age is just unknown


def test_blank_required_value_is_an_invalid_reason(tmp_path: Path) -> None:
    path = _apc(tmp_path, " ,P1,2009-04-01,2009-04-03,21,1,DZ11V,RTA,67")
    df = read_activity(path, "apc").collect()
    assert df["invalid_reason"].to_list() == ["record_id: missing (required for apc)"]


def test_user_mapping_without_hrg_version_is_refused(tmp_path: Path) -> None:
    path = _csv(tmp_path, "id,pid,date,attended,hrg\n1,P,2009-01-01,5,WF01A\n", "op.csv")
    mapping = {"record_id": "id", "patient_id": "pid", "activity_date": "date", "hrg_code": "hrg"}
    with pytest.raises(ConfigError, match="say which HRG version"):
        read_activity(path, "op", columns=mapping)
    df = read_activity(path, "op", columns=mapping, hrg_version="v3.5").collect()
    assert df["hrg_version"].to_list() == ["v3.5"] and df["hrg_code"].to_list() == ["WF01A"]


def test_toml_mapping_file_with_date_format_and_true_values(tmp_path: Path) -> None:
    toml = tmp_path / "ae.toml"
    toml.write_text(
        'record_id = "Attendance"\npatient_id = "Patient"\nactivity_date = "Arrived"\n'
        'department_type = "Type"\nae_admitted = "Outcome"\nhrg_code = "HRG"\n'
        '[options]\nhrg_version = "HRG4"\ndate_format = "%m/%d/%Y"\n'
        '[true_values]\nae_admitted = ["ADM"]\n',
        encoding="utf-8",
    )
    path = _csv(
        tmp_path,
        "Attendance,Patient,Arrived,Type,Outcome,HRG\n"
        "a1,p1,05/01/2009,1,ADM,VB01Z\n"
        "a2,p2,12/31/2009,03,HOME,VB09Z\n",
        "ae.csv",
    )
    df = read_activity(path, "ae", columns=toml).collect()
    # The user's month-first format is tried first: 05/01/2009 is 1 May 2009.
    assert df["activity_date"].to_list() == [dt.date(2009, 5, 1), dt.date(2009, 12, 31)]
    assert df["ae_admitted"].to_list() == [True, False]
    assert df["department_type"].to_list() == ["01", "03"]  # "1" lost its zero in a spreadsheet
    assert df["hrg_version"].to_list() == ["HRG4", "HRG4"]


def test_canonical_preset_reads_per_row_hrg_version(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "record_id,patient_id,activity_date,attended,hrg_code,hrg_version,multi_professional\n"
        "1,P,2009-01-01,5,WF01A,HRG4,yes\n"
        "2,P,2009-01-02,6,H02,v3.5,0\n"
        "3,P,2009-01-03,5,X,HRG5,maybe\n",
        "op.csv",
    )
    df = read_activity(path, "op", columns="canonical").collect()
    assert df["hrg_version"].to_list() == ["HRG4", "v3.5", None]
    assert df["multi_professional"].to_list() == [True, False, None]
    assert df["invalid_reason"][2] == (
        "hrg_version: unknown 'HRG5' (expected v3.5 or HRG4); "
        "multi_professional: not a yes/no value 'maybe'"
    )


# --------------------------------------------------------------------------------------
# Bad inputs: files
# --------------------------------------------------------------------------------------


def test_empty_file_is_an_input_error(tmp_path: Path) -> None:
    path = _csv(tmp_path, "")
    with pytest.raises(InputError, match="empty.*no header row"):
        read_activity(path, "apc")


def test_header_only_file_gives_an_empty_frame_with_the_full_schema(tmp_path: Path) -> None:
    path = _csv(tmp_path, APC_HEADER + ",EXTRA\n")
    df = read_activity(path, "apc").collect()
    assert df.height == 0
    assert df.schema == pl.Schema(
        {
            **ACTIVITY_SCHEMA,
            "EXTRA": pl.String,
            "source_file": pl.String,
            "source_row": pl.Int64,
            "invalid_reason": pl.String,
        }
    )


def test_unknown_extension_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"cannot read \.json files; use one of \.csv"):
        read_activity(_csv(tmp_path, "{}", "x.json"), "apc")
    with pytest.raises(InputError, match="file not found"):
        read_activity(tmp_path / "nope.csv", "apc")


@pytest.mark.parametrize(("sep", "word"), [(";", "semicolon"), ("\t", "tab"), ("|", "pipe")])
def test_wrong_delimiter_is_detected(tmp_path: Path, sep: str, word: str) -> None:
    text = APC_HEADER.replace(",", sep) + "\n" + GOOD_ROW.replace(",", sep) + "\n"
    with pytest.raises(InputError, match=f"looks {word}-separated"):
        read_activity(_csv(tmp_path, text), "apc")


def test_tab_separated_file_reads_as_tsv(tmp_path: Path) -> None:
    text = APC_HEADER.replace(",", "\t") + "\n" + GOOD_ROW.replace(",", "\t") + "\n"
    df = read_activity(_csv(tmp_path, text, "apc.tsv"), "apc").collect()
    assert df["record_id"].to_list() == ["000123"]


def test_utf8_bom_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (APC_HEADER + "\n" + GOOD_ROW + "\n").encode())
    df = read_activity(path, "apc").collect()
    assert df["record_id"].to_list() == ["000123"]
    assert not any(c.startswith("\ufeff") for c in df.columns)


def test_latin1_without_the_flag_is_refused_with_the_line(tmp_path: Path) -> None:
    text = APC_HEADER + ",SURGEON\n" + GOOD_ROW + ",Smith\n" + GOOD_ROW + ",Zoë Brontë\n"
    path = _csv(tmp_path, text, encoding="latin-1")
    with pytest.raises(
        InputError, match=r"not valid UTF-8 \(line 3, byte 0xeb\).*encoding='latin1'"
    ):
        read_activity(path, "apc")


def test_latin1_with_the_flag(tmp_path: Path) -> None:
    text = APC_HEADER + ",SURGEON\n" + GOOD_ROW + ",Zoë Brontë\n"
    path = _csv(tmp_path, text, encoding="latin-1")
    df = read_activity(path, "apc", encoding="latin1").collect()
    assert df["SURGEON"].to_list() == ["Zoë Brontë"]
    assert df["source_file"].to_list() == [str(path)]  # the user's file, not the temporary copy
    with pytest.raises(InputError, match="unknown encoding"):
        read_activity(path, "apc", encoding="klingon")


# --------------------------------------------------------------------------------------
# Bad values: dates and strict mode
# --------------------------------------------------------------------------------------


def test_unparseable_date_has_its_row_number(tmp_path: Path) -> None:
    path = _apc(tmp_path, GOOD_ROW, "000124,P2,2008-13-45,2009-04-03,21,1,DZ11V,RTA,67")
    df = read_activity(path, "apc").collect()
    bad = df.filter(pl.col("invalid_reason").is_not_null())
    assert bad["source_row"].to_list() == [2]  # data row 2 = line 3 of the file
    assert bad["invalid_reason"].to_list() == ["activity_date: unparseable '2008-13-45'"]
    assert bad["activity_date"].to_list() == [None]
    assert df.height == 2  # the bad row is kept, not dropped


def test_strict_mode_collects_every_failure(tmp_path: Path) -> None:
    path = _apc(
        tmp_path,
        GOOD_ROW,
        "000124,P2,2008-13-45,2009-04-03,21,1,DZ11V,RTA,67",
        "000125,,2009-04-01,1800-01-01,21,1,DZ11V,RTA,old",
    )
    with pytest.raises(ValidationError) as info:
        read_activity(path, "apc", strict=True)
    failures = info.value.failures
    assert failures.select("row", "column", "value").rows() == [
        (2, "ADMIDATE", "2008-13-45"),
        (3, "PSEUDO_HESID", None),
        (3, "DISDATE", "1800-01-01"),
        (3, "STARTAGE", "old"),
    ]
    assert "row 2, column ADMIDATE: activity_date: unparseable '2008-13-45'" in str(info.value)
    assert "4 invalid value(s)" in str(info.value)


def test_strict_mode_on_a_clean_file_returns_the_frame(tmp_path: Path) -> None:
    df = read_activity(_apc(tmp_path, GOOD_ROW), "apc", strict=True).collect()
    assert df["invalid_reason"].to_list() == [None]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("1800-01-01", "discharge_date: HES dummy date 1800-01-01"),
        ("1801-01-01", "discharge_date: HES dummy date 1801-01-01"),
        ("01/01/1600", "discharge_date: HES dummy date 1600-01-01"),
        ("15821015", "discharge_date: HES dummy date 1582-10-15"),
    ],
)
def test_hes_dummy_dates_become_null_with_a_reason(tmp_path: Path, value: str, reason: str) -> None:
    path = _apc(tmp_path, f"1,P,2009-04-01,{value},21,1,DZ11V,RTA,67")
    row = read_activity(path, "apc").collect().row(0, named=True)
    assert row["discharge_date"] is None and row["invalid_reason"] == reason


@pytest.mark.parametrize(
    "value",
    ["2009-04-03", "03/04/2009", "20090403", "03APR2009", "03-Apr-2009", "2009-04-03 00:00:00"],
)
def test_built_in_date_formats(tmp_path: Path, value: str) -> None:
    path = _apc(tmp_path, f"1,P,2009-04-01,{value},21,1,DZ11V,RTA,67")
    row = read_activity(path, "apc").collect().row(0, named=True)
    assert row["discharge_date"] == dt.date(2009, 4, 3) and row["invalid_reason"] is None


@pytest.mark.parametrize(
    ("value", "age", "reason"),
    [
        ("54.0", 54, None),
        ("7002", 0, None),
        ("-1", None, "age: not an age in years (0-130, or HES 7001-7007 for under one) '-1'"),
        ("999", None, "age: not an age in years (0-130, or HES 7001-7007 for under one) '999'"),
    ],
)
def test_ages(tmp_path: Path, value: str, age: int | None, reason: str | None) -> None:
    row = (
        read_activity(_apc(tmp_path, f"1,P,2009-04-01,2009-04-03,21,1,X,R,{value}"), "apc")
        .collect()
        .row(0, named=True)
    )
    assert (row["age"], row["invalid_reason"]) == (age, reason)


# --------------------------------------------------------------------------------------
# Excel and Parquet inputs; several files
# --------------------------------------------------------------------------------------

# A real .xls (BIFF8) workbook, written once with xlwt 1.3.0 and stored zlib+base64 so the test
# needs no xls writer. Sheet 0 "notes" holds one text cell; sheet 1 "episodes" holds:
#   EPIKEY PSEUDO_HESID ADMIDATE          DISDATE    ADMIMETH CLASSPAT SUSHRG PROCODE3 STARTAGE
#   000123 P1           2009-04-01 (date) 2009-04-03 21 (num) 1        DZ11V  RTA      7003
#   000124 P2           01/05/2009        1800-01-01 11       2 (num)  hn12f  RTA      70 (num)
# and TRETSPEF "021", "100".
XLS_B64 = (
    "eNrtWEtoFFkUva/63+bTiYmaFqQQ/EUbX3U76Aja9lhlEpw2bVf7RdBoaog4dEunF44L/1kKA7NSZiPowo2fjTPDuHB2sxhw"
    "mFkMCEKiS1eCgguT9t5bVc+oEQxoIEPdzrv1zv1UnXrv1a2X+vthx/i1u+kJeE+2QgimmgmITrMJbAkfpAD9zSZ1/WMcWzOQ"
    "eSWJOE5kNAK/t/4Vozmk+Z4ADe6E/0AN8ATbITgJu2pVR59D+YY5DAnisEWEce1p8DO2NuhhXp2sj7FeyPo2x95nvY0tl1lv"
    "wdhxcRAe5nf1bvLW8X5tOfvaUAv4hXMescWAbviT1vHZH4UbG4FC/fjQ9/PMsSzcAtcBp7TPqTp1wu1wA5IAB1AyxWLGNMeh"
    "C6f7Orxs6gAv/Of6gR7Y59YuAO2v3rXHPmKP4yS+b/9JCwOcg+YRQYt5DFphSYQ8EajWGs7oGJbqatStz87J46O1YWf0NaTF"
    "UrSksWUArFON+tCxhs7xm3U/Sh+qO3qtqjdGHL3qnGrooyOO08BTWaWBndaBFoCSbe0xBw/3W/aAidW/YBYHzELFwmVnDtjU"
    "84xFq9KP3e3fFmy7VKjgKew9dn+5D22l8uD2QdPKYdeuFMqVQh8lVcpWxS5ZOzBSSmlkc/hslgxcvlkpv87IDRmZw/Vu4H2a"
    "Bw1jbwgAM3EYNkqZQyCzhp+5gTKzmCmN9fKr9ZSPwNgkZUYa+Idug84zUjWy32GqIWWS3nNcF1Pv1MVWrhYtqIehnfsdXDNS"
    "OLKvbz7/p3i0lD/MlnP8LnTfmCtoeqAJ5ykDk9uUx9W9nLGW9QU+61Lup1l34TTicWWp2+vsuMgxl9i7Eq+TY/k3v2pafzX2"
    "x57t/nXZ2NP8Guzf6ps43XXrv/w1WI5v8GHMp99FWCfWiatXSH7L+0fh1dbHrHs+qLNxLeVxb3rbgnaYpMqC0uHuHbROuEeh"
    "WIffylyMakhdab6OanLGUaU7dpE/Oi7SEIUUCiEKKxRGFFEogiiqUBRRTKEYorhCcUQJhRKIkh4/MQM/wfwWePGC+WFhgDNa"
    "kt/ZnXChpnk+4teqfMRvr8ojfm0KEb92hYhfSiHi16EQ8ev0+Gkz8NOY30Iv3l1dXQrR+HUrRPwWKUT8FntsNeaXVD7it0Qh"
    "n58bSfzSwvcRvx7/mYCZnolAAgkkkEACmXsRvItwd05h3ie4u7KY911nEttU8JnkfytlqOGvgf9SWlDFYx1+mNX6WQQR4Z9L"
    "fGKO/72QZB9evQ4n4CjzODHr9Yu7ajH9fj45MfX5HqHZXn9qNjy/8PXfACmYTrg="
)


@pytest.fixture()
def xls_path(tmp_path: Path) -> Path:
    path = tmp_path / "extract.xls"
    path.write_bytes(zlib.decompress(base64.b64decode(XLS_B64)))
    return path


def test_xls_by_sheet_name_and_index(xls_path: Path) -> None:
    by_name = read_activity(xls_path, "apc", sheet="episodes").collect()
    by_index = read_activity(xls_path, "apc", sheet=1).collect()
    assert by_name.equals(by_index)
    assert by_name["record_id"].to_list() == ["000123", "000124"]
    assert by_name["activity_date"].to_list() == [dt.date(2009, 4, 1), dt.date(2009, 5, 1)]
    assert by_name["admission_method"].to_list() == ["21", "11"]  # a number cell reads "21"
    assert by_name["patient_classification"].to_list() == ["1", "2"]
    assert by_name["hrg_code"].to_list() == ["DZ11V", "HN12F"]
    assert by_name["age"].to_list() == [0, 70]
    assert by_name["treatment_function_code"].to_list() == ["021", "100"]
    assert by_name["invalid_reason"].to_list() == [
        None,
        "discharge_date: HES dummy date 1800-01-01",
    ]


def test_wrong_sheet_lists_the_sheets(xls_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"no sheet named 'Episodes'; the workbook has: 0: 'notes', 1: 'episodes'"
    ):
        read_activity(xls_path, "apc", sheet="Episodes")
    with pytest.raises(InputError, match="no sheet number 2"):
        read_activity(xls_path, "apc", sheet=2)
    # The default (first) sheet holds notes, not episodes: the missing columns are named.
    with pytest.raises(MissingColumnsError, match="sheet 'notes'"):
        read_activity(xls_path, "apc")


def test_xlsx_input_keeps_text_codes_and_skips_blank_rows(tmp_path: Path) -> None:
    path = tmp_path / "op.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "op"
    ws.append(["ATTENDKEY", "PSEUDO_HESID", "APPTDATE", "ATTENDED", "FIRSTATT", "TRETSPEF"])
    ws.append(["0042", "P1", dt.datetime(2009, 6, 30), "5", 1, "021"])
    ws.append([None] * 6)
    ws.append(["0043", "P1", "30/06/2009", 6, "2", "110"])
    ws2 = wb.create_sheet("empty")
    del ws2
    wb.save(path)
    df = read_activity(path, "op").collect()
    assert df["record_id"].to_list() == ["0042", "0043"]
    assert df["source_row"].to_list() == [1, 3]  # the blank sheet row 3 (data row 2) is skipped
    assert df["activity_date"].to_list() == [dt.date(2009, 6, 30)] * 2
    assert df["attended"].to_list() == ["5", "6"] and df["first_attendance"].to_list() == ["1", "2"]
    assert df["treatment_function_code"].to_list() == ["021", "110"]
    with pytest.raises(InputError, match="sheet is empty"):
        read_activity(path, "op", sheet="empty")


def test_parquet_input_with_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "ae.parquet"
    pl.DataFrame(
        {
            "AEKEY": [1, 2],
            "PSEUDO_HESID": ["P1", "P2"],
            "ARRIVALDATE": [dt.date(2008, 2, 12), dt.date(1801, 1, 1)],
            "AEDEPTTYPE": ["01", "03"],
            "AEATTENDDISP": ["01", "03"],
            "ARRIVALAGE": [1.0, 28.0],
            "SUSHRG": ["VB01Z", None],
        }
    ).write_parquet(path)
    lf = read_activity(path, "ae")
    assert "Parquet SCAN" in lf.explain() or "parquet" in lf.explain().lower()
    df = lf.collect()
    assert df["record_id"].to_list() == ["1", "2"]
    assert df["activity_date"].to_list() == [dt.date(2008, 2, 12), None]
    assert df["invalid_reason"].to_list() == [None, "activity_date: HES dummy date 1801-01-01"]
    assert df["ae_admitted"].to_list() == [True, False] and df["age"].to_list() == [1, 28]


def test_several_files_are_concatenated(tmp_path: Path) -> None:
    a = _apc(tmp_path, GOOD_ROW, name="a.csv")
    b = _csv(tmp_path, APC_HEADER + ",NOTE\n" + GOOD_ROW.replace("000123", "9") + ",x\n", "b.csv")
    df = read_activity([a, b], "apc").collect()
    assert df["record_id"].to_list() == ["000123", "9"]
    assert df["source_file"].to_list() == [str(a), str(b)]
    assert df["source_row"].to_list() == [1, 1]
    assert df["NOTE"].to_list() == [None, "x"]
    with pytest.raises(InputError, match="no input file"):
        read_activity([], "apc")


def test_strict_failures_over_several_files_name_the_file(tmp_path: Path) -> None:
    a = _apc(tmp_path, GOOD_ROW, name="a.csv")
    b = _apc(tmp_path, "1,P,2009-02-30,2009-04-03,21,1,X,R,1", name="b.csv")
    with pytest.raises(ValidationError, match="2 files") as info:
        read_activity([a, b], "apc", strict=True)
    assert info.value.failures.select("file", "row", "column").rows() == [(str(b), 1, "ADMIDATE")]


def test_a_large_csv_is_scanned_lazily(tmp_path: Path) -> None:
    n = 200_000
    path = tmp_path / "big.csv"
    pl.DataFrame(
        {
            "EPIKEY": pl.int_range(n, eager=True).cast(pl.String).str.zfill(9),
            "PSEUDO_HESID": "P",
            "ADMIDATE": "2009-04-01",
            "DISDATE": "2009-04-03",
            "ADMIMETH": "21",
            "CLASSPAT": "1",
            "SUSHRG": "DZ11V",
        }
    ).write_csv(path)
    lf = read_activity(path, "apc")
    assert isinstance(lf, pl.LazyFrame)
    assert "Csv SCAN" in lf.explain() or "CSV SCAN" in lf.explain().upper()
    out = lf.select(pl.len(), pl.col("record_id").first(), pl.col("source_row").max()).collect(
        engine="streaming"
    )
    assert out.row(0) == (n, "000000000", n)


# --------------------------------------------------------------------------------------
# Cohort
# --------------------------------------------------------------------------------------


def test_read_cohort_maps_columns_and_parses_dates(tmp_path: Path) -> None:
    path = _csv(
        tmp_path, "PID,Index,arm\n007,01/09/2008,icp\n008,2008-09-02,control\n", "cohort.csv"
    )
    df = read_cohort(path, columns={"patient_id": "PID", "index_date": "Index", "group": "arm"})
    assert df["patient_id"].to_list() == ["007", "008"]
    assert df["index_date"].to_list() == [dt.date(2008, 9, 1), dt.date(2008, 9, 2)]
    assert df["group"].to_list() == ["icp", "control"]


def test_read_cohort_missing_index_date_suggests(tmp_path: Path) -> None:
    path = _csv(tmp_path, "patient_id,index_dt\n1,2008-09-01\n", "cohort.csv")
    with pytest.raises(MissingColumnsError, match="did you mean 'index_dt'"):
        read_cohort(path)


def test_read_cohort_bad_date_names_the_row(tmp_path: Path) -> None:
    path = _csv(tmp_path, "patient_id,index_date\n1,2008-09-01\n2,2008-02-30\n", "cohort.csv")
    with pytest.raises(InputError, match=r"row 2, column index_date.*'2008-02-30'"):
        read_cohort(path)
    with pytest.raises(ConfigError, match="not a cohort column"):
        read_cohort(path, columns={"pid": "patient_id"})


# --------------------------------------------------------------------------------------
# Writing: formula neutralisation, atomicity; reading our own outputs back
# --------------------------------------------------------------------------------------


def test_formula_like_codes_are_text_and_neutralised_on_write(tmp_path: Path) -> None:
    path = _apc(
        tmp_path, '=1+1,@SUM(A1),2009-04-01,2009-04-03,21,1,"=HYPERLINK(""http://x"")",RTA,67'
    )
    df = read_activity(path, "apc").collect()
    assert df["record_id"].to_list() == ["=1+1"] and df["patient_id"].to_list() == ["@SUM(A1)"]
    csv_out = write_frame(df, tmp_path / "out.csv")
    text = csv_out.read_text(encoding="utf-8")
    assert "'=1+1" in text and "'@SUM(A1)" in text and '\'=HYPERLINK(""HTTP://X"")' in text
    xlsx_out = write_frame(df, tmp_path / "out.xlsx")
    ws = openpyxl.load_workbook(xlsx_out).active
    header = [c.value for c in ws[1]]
    cell = ws.cell(row=2, column=header.index("record_id") + 1)
    assert cell.data_type == "s" and cell.value == "'=1+1"  # a string, not a formula
    # Reading our own output back restores the text as it was.
    assert read_table(csv_out)["record_id"].to_list() == ["=1+1"]
    assert read_table(xlsx_out)["patient_id"].to_list() == ["@SUM(A1)"]


def test_interrupted_write_leaves_no_half_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "priced.csv"
    target.write_text("previous complete output\n")

    def half_then_fail(df: pl.DataFrame, path: Path) -> None:
        path.write_text("record_id\nhalf")
        raise OSError("disk full")

    monkeypatch.setitem(cio._WRITERS, ".csv", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        write_frame(pl.DataFrame({"record_id": ["1"]}), target)
    assert target.read_text() == "previous complete output\n"
    assert [p.name for p in tmp_path.iterdir()] == ["priced.csv"]  # no temporary file left
    with pytest.raises(OSError):
        write_frame(pl.DataFrame({"record_id": ["1"]}), tmp_path / "new.csv")
    assert not (tmp_path / "new.csv").exists()


def test_write_frame_refuses_an_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"cannot write \.txt; use one of \.csv, \.parquet, \.xlsx"
    ):
        write_frame(pl.DataFrame({"a": [1]}), tmp_path / "out.txt")


def test_read_table_types_known_columns_and_refuses_edited_values(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "record_id,activity_date,cost,status,short_stay_applied,TRETSPEF\n"
        "1,2009-04-01,1580.53,1,false,021\n",
        "priced.csv",
    )
    df = read_table(path)
    assert df.schema["activity_date"] == pl.Date and df.schema["cost"] == pl.Float64
    assert df.schema["status"] == pl.Int16 and df.schema["short_stay_applied"] == pl.Boolean
    assert df.row(0) == ("1", dt.date(2009, 4, 1), 1580.53, 1, False, "021")
    typed = read_table(path, schema={"TRETSPEF": pl.Int32()})
    assert typed.schema["TRETSPEF"] == pl.Int32 and typed["TRETSPEF"].to_list() == [21]
    bad = _csv(tmp_path, "record_id,cost\n1,12\n2,£3\n", "edited.csv")
    with pytest.raises(
        InputError, match=r"column 'cost' should hold Float64 values, but row 2 has '£3'"
    ):
        read_table(bad)
