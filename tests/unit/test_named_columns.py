"""Options that name a column, and TOML keys, are checked: a typo fails with the closest
match and the list of what exists, never a silent fallback (issue 17, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from costing.cli import main
from costing.config import CostingConfig
from costing.did import did
from costing.errors import ConfigError, InputError, MissingColumnsError
from costing.io import read_activity
from costing.run import RunConfig
from tests.unit.test_did import HAND, frame


def test_a_misspelt_cluster_column_fails_with_the_closest_match() -> None:
    windows = frame(HAND, matched_set={"A": "s1", "C": "s1", "B": "s2", "D": "s2"})
    with pytest.raises(InputError) as err:
        did(windows, n_boot=10, cluster="matchset")
    text = str(err.value)
    assert "cluster column 'matchset' not found (did you mean 'matched_set'?)" in text
    assert "patient_id, window, window_days, category, cost" in text  # the columns are listed
    # the correct name clusters by matched set: 2 clusters, not 4 patients
    assert did(windows, n_boot=10, cluster="matched_set")["n_clusters"][0] == 2


def test_the_default_cluster_column_may_be_absent() -> None:
    # no matched_set column at all: patients are resampled (each its own cluster)
    windows = frame(HAND).drop("matched_set")
    assert did(windows, n_boot=10)["n_clusters"][0] == 4


@pytest.mark.parametrize(("option", "typo", "closest"), [("weight", "wieght", "weight"),
                                                          ("group", "grup", "group")])
def test_misspelt_weight_and_group_columns(option: str, typo: str, closest: str) -> None:
    with pytest.raises(InputError, match=rf"{option} column '{typo}' not found \(did you mean '{closest}'\?\)"):
        did(frame(HAND), n_boot=10, **{option: typo})


def test_cli_evaluate_cluster_typo_exits_1(tmp_path: Path) -> None:
    path = tmp_path / "windows.csv"
    frame(HAND, matched_set={"A": "s1", "C": "s1", "B": "s2", "D": "s2"}).write_csv(path)
    res = CliRunner().invoke(main, ["evaluate", str(path), "--cluster", "matchset", "--boot", "10",
                                    "-o", str(tmp_path / "did.csv")])
    assert res.exit_code == 1, res.output
    assert "did you mean 'matched_set'?" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "did.csv").exists()


def test_a_mapping_that_names_a_column_the_file_lacks_fails(tmp_path: Path) -> None:
    data = tmp_path / "apc.csv"
    data.write_text("id,pat,adm,dis,meth,cls,hrg,AGE_AT_START\nr1,p1,2017-06-01,2017-06-02,21,1,DZ11V,40\n")
    mapping = tmp_path / "cols.toml"
    mapping.write_text('record_id = "id"\npatient_id = "pat"\nactivity_date = "adm"\ndischarge_date = "dis"\n'
                       'admission_method = "meth"\npatient_classification = "cls"\nhrg_code = "hrg"\n'
                       'age = "AGE_AT_STRAT"\n[options]\nhrg_version = "HRG4"\n')
    with pytest.raises(MissingColumnsError) as err:
        read_activity(data, setting="apc", columns=mapping)
    assert err.value.missing == ["age"]  # an optional column, but named: a typo, not an absence
    assert "did you mean 'AGE_AT_START'?" in str(err.value)
    mapping.write_text(mapping.read_text().replace("AGE_AT_STRAT", "AGE_AT_START"))
    assert read_activity(data, setting="apc", columns=mapping).collect()["age"].to_list() == [40]


def test_a_mapping_option_typo_names_the_closest(tmp_path: Path) -> None:
    mapping = tmp_path / "cols.toml"
    mapping.write_text('record_id = "id"\n[options]\nhrg_versoin = "HRG4"\n')
    with pytest.raises(ConfigError, match="did you mean 'hrg_version'"):
        read_activity(tmp_path / "x.csv", setting="apc", columns=mapping)


def test_toml_key_typos_name_the_closest_valid_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        CostingConfig.from_mapping({"perspectve": "provider"}, source="cfg.toml")
    assert "perspectve: unknown key (did you mean 'perspective'?)" in str(err.value)
    run = {"inputs": {"apc": {"path": "a.csv", "colums": "hes"}}, "pricing": {"tarif_edition": "2017-18"},
           "evaluate": {"clustr": "matched_set"}, "windws": {}}
    with pytest.raises(ConfigError) as err:
        RunConfig.from_mapping(run, source="run.toml")
    text = str(err.value)
    for line in ("inputs.apc.colums: unknown key (did you mean 'columns'?)",
                 "pricing.tarif_edition: unknown key (did you mean 'tariff_edition'?)",
                 "evaluate.clustr: unknown key (did you mean 'cluster'?)",
                 "windws: unknown key (did you mean 'windows'?)"):
        assert line in text
    assert "valid keys here: path, columns" in text


def test_cli_config_typo_exits_1(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('refrence_cost_edition = "2017-18"\n')
    data = tmp_path / "apc.csv"
    data.write_text("x\n1\n")
    res = CliRunner().invoke(main, ["price", str(data), "--config", str(cfg), "-o", str(tmp_path / "o.csv")])
    assert res.exit_code == 1 and "did you mean 'reference_cost_edition'?" in res.output
    assert not (tmp_path / "o.csv").exists()


def test_a_cohort_mapping_that_names_a_column_the_file_lacks_fails(tmp_path: Path) -> None:
    from costing.io import read_cohort

    path = tmp_path / "cohort.csv"
    path.write_text("patient_id,index_date,arm,set_id\np1,2017-06-01,intervention,s1\n")
    with pytest.raises(MissingColumnsError) as err:
        read_cohort(path, columns={"group": "arm", "matched_set": "setid"})
    assert err.value.missing == ["matched_set"] and "did you mean 'set_id'?" in str(err.value)
    assert read_cohort(path, columns={"group": "arm", "matched_set": "set_id"})["matched_set"].to_list() == ["s1"]
