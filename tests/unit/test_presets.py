"""Column presets: HES field names per setting, user mappings (dict and TOML), matching rules."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from costing.errors import ConfigError, MissingColumnsError
from costing.presets import (
    PRESET_NAMES,
    get_preset,
    load_mapping_file,
    match_columns,
    preset_from_mapping,
    preset_table,
    resolve_columns,
    resolve_preset,
)
from costing.schema import ACTIVITY_REQUIRED, ACTIVITY_SCHEMA, SETTINGS

HES_FILES = {
    "apc": "artificial_hes_apc_0102_sample.csv",
    "op": "artificial_hes_op_0304_sample.csv",
    "ae": "artificial_hes_ae_0708_sample.csv",
}


def test_preset_names_are_the_documented_three() -> None:
    assert PRESET_NAMES == ("hes", "hes35", "canonical")


@pytest.mark.parametrize("setting", SETTINGS)
def test_hes_preset_covers_every_required_column(setting: str) -> None:
    preset = get_preset("hes", setting)
    assert set(ACTIVITY_REQUIRED[setting]) <= set(preset.columns)
    assert set(preset.columns) <= set(ACTIVITY_SCHEMA) - {"setting", "hrg_version"}
    assert preset.hrg_version == "HRG4"
    assert preset.columns["hrg_code"] == ("SUSHRG",)


def test_hes_field_names_per_setting() -> None:
    apc, op, ae = (get_preset("hes", s).columns for s in ("apc", "op", "ae"))
    assert apc["patient_id"] == ("PSEUDO_HESID", "HESID")
    assert apc["record_id"] == ("EPIKEY",)
    assert apc["activity_date"] == ("ADMIDATE",) and apc["discharge_date"] == ("DISDATE",)
    assert apc["age"] == ("STARTAGE", "ADMIAGE")
    assert apc["treatment_function_code"] == ("TRETSPEF", "MAINSPEF")
    assert apc["episode_order"] == ("EPIORDER",)
    assert "SUSSPELLID" in apc["spell_id"]
    assert op["record_id"] == ("ATTENDKEY",) and op["attended"] == ("ATTENDED",)
    assert op["first_attendance"] == ("FIRSTATT",) and op["age"] == ("APPTAGE",)
    # STAFFTYP is the grade of staff seen, not single/multi-professional: not mapped.
    assert "multi_professional" not in op
    assert ae["record_id"] == ("AEKEY",) and ae["department_type"] == ("AEDEPTTYPE",)
    assert ae["ae_admitted"] == ("AEATTENDDISP",) and ae["age"] == ("ARRIVALAGE",)


def test_hes35_is_hrglate35_at_v35_and_apc_only() -> None:
    preset = get_preset("hes35", "apc")
    assert preset.columns["hrg_code"] == ("HRGLATE35",)
    assert preset.hrg_version == "v3.5"
    with pytest.raises(ConfigError, match="admitted patient care"):
        get_preset("hes35", "op")


def test_unknown_preset_and_setting_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="did you mean 'hes'"):
        get_preset("hse", "apc")
    with pytest.raises(ConfigError, match="unknown setting 'inpatient'"):
        get_preset("hes", "inpatient")


def test_alternatives_are_tried_in_order() -> None:
    preset = get_preset("hes", "apc")
    both = ["HESID", "PSEUDO_HESID", "EPIKEY", "ADMIDATE", "DISDATE", "ADMIMETH", "CLASSPAT", "SUSHRG"]
    assert resolve_columns(preset, both, "f.csv")["patient_id"] == "PSEUDO_HESID"
    only_hesid = [h for h in both if h != "PSEUDO_HESID"]
    assert resolve_columns(preset, only_hesid, "f.csv")["patient_id"] == "HESID"


def test_matching_ignores_case_and_surrounding_spaces() -> None:
    found = match_columns(
        {"record_id": ("EPIKEY",), "age": ("STARTAGE",)}, [" epikey ", "StartAge"]
    )
    assert found == {"record_id": " epikey ", "age": "StartAge"}


def test_exact_match_wins_over_case_folded() -> None:
    found = match_columns({"record_id": ("EPIKEY",)}, ["epikey", "EPIKEY"])
    assert found == {"record_id": "EPIKEY"}


def test_missing_required_column_lists_close_matches() -> None:
    preset = get_preset("hes", "apc")
    headers = ["EPIKEY", "PSEUDO_HESID", "ADMI_DATE", "DISDATE", "ADMIMETH", "CLASSPAT", "SUSHRG"]
    with pytest.raises(MissingColumnsError) as info:
        resolve_columns(preset, headers, "extract.csv")
    err = info.value
    assert err.missing == ["activity_date"]
    assert err.suggestions["activity_date"][0] == "ADMI_DATE"
    assert "extract.csv" in str(err) and "ADMIDATE" in str(err) and "'ADMI_DATE'" in str(err)


def test_mapping_fills_unnamed_columns_by_their_canonical_name() -> None:
    preset = preset_from_mapping({"record_id": "episode", "patient_id": ["nhs", "pid"]}, "op")
    found = resolve_columns(preset, ["episode", "pid", "activity_date", "attended"], "x.csv")
    assert found == {
        "record_id": "episode",
        "patient_id": "pid",
        "activity_date": "activity_date",
        "attended": "attended",
    }


def test_mapping_with_unknown_canonical_name_suggests_one() -> None:
    with pytest.raises(ConfigError, match="did you mean 'activity_date'"):
        preset_from_mapping({"activty_date": "ADMIDATE"}, "apc")
    with pytest.raises(ConfigError, match="must name a column"):
        preset_from_mapping({"record_id": ""}, "apc")


def test_toml_mapping_file_with_options(tmp_path: Path) -> None:
    f = tmp_path / "cols.toml"
    f.write_text(
        'record_id = "Episode ID"\n'
        'patient_id = ["NHS number", "Patient"]\n'
        "[options]\n"
        'hrg_version = "v3.5"\n'
        'date_format = "%d.%m.%Y"\n'
        "[true_values]\n"
        'ae_admitted = ["A"]\n',
        encoding="utf-8",
    )
    preset = load_mapping_file(f, "ae")
    assert preset.columns["record_id"] == ("Episode ID",)
    assert preset.columns["patient_id"] == ("NHS number", "Patient")
    assert preset.hrg_version == "v3.5" and preset.date_format == "%d.%m.%Y"
    assert preset.true_values["ae_admitted"] == ("A",)
    assert preset.name == str(f)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("record_id = \n", "not a valid TOML"),
        ('[options]\nseparator = ";"\n', "unknown option"),
        ('[options]\nhrg_version = "HRG5"\n', "unknown hrg_version 'HRG5'"),
        ('[columns]\nrecord_id = "x"\n', r"unknown table \[columns\]"),
        ('[true_values]\nage = ["1"]\n', "not a yes/no canonical column"),
    ],
)
def test_bad_toml_mapping_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_mapping_file(f, "apc")


def test_missing_mapping_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        resolve_preset(tmp_path / "nope.toml", "apc")


def test_hrg_version_option_overrides_the_preset_once() -> None:
    assert resolve_preset("hes", "apc", hrg_version="v3.5").hrg_version == "v3.5"
    assert resolve_preset("hes", "apc").hrg_version == "HRG4"
    with pytest.raises(ConfigError, match="unknown hrg_version"):
        resolve_preset("hes", "apc", hrg_version="4")
    with pytest.raises(ConfigError, match="columns must be"):
        resolve_preset(42, "apc")  # type: ignore[arg-type]


def test_preset_table_lists_every_setting() -> None:
    rows = preset_table("hes")
    assert {s for s, _, _ in rows} == set(SETTINGS)
    assert ("ae", "ae_admitted", "AEATTENDDISP") in rows
    assert ("apc", "episode_start", "EPISTART") in rows
    # 15 APC + 9 OP + 8 A&E canonical columns are mapped by the hes preset (counted above,
    # plus EPISTART/EPIEND for episode-level length of stay).
    assert len(rows) == 15 + 9 + 8


@pytest.mark.parametrize("setting", SETTINGS)
def test_hes_preset_finds_required_columns_in_real_artificial_hes(
    shared_data: Path, setting: str
) -> None:
    path = shared_data / "artificial-hes" / HES_FILES[setting]
    headers = pl.read_csv(path, n_rows=0, infer_schema=False).columns
    found = resolve_columns(get_preset("hes", setting), headers, str(path))
    assert set(ACTIVITY_REQUIRED[setting]) <= set(found)
    assert found["hrg_code"] == "SUSHRG"


def test_misnamed_hrg_column_is_named() -> None:
    # APC and A&E price by HRG: the column must exist even if its values may be blank
    headers = ["PSEUDO_HESID", "EPIKEY", "ADMIDATE", "DISDATE", "ADMIMETH", "CLASSPAT", "SUS_HRG"]
    with pytest.raises(MissingColumnsError, match="SUS_HRG"):
        resolve_columns(get_preset("hes", "apc"), headers, "apc.csv")
    # outpatients price attendances without an HRG
    op = ["PSEUDO_HESID", "ATTENDKEY", "APPTDATE", "ATTENDED"]
    assert "hrg_code" not in resolve_columns(get_preset("hes", "op"), op, "op.csv")
