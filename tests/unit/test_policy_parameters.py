"""The policy thresholds (short-stay emergency length of stay, age and admission methods; the NES
threshold) as dated table parameters with a source (costing.pricing.parameters,
docs/tables.md#parameters): read by the importer, resolved per edition, overridden by the
configuration, and priced per edition in dated mode by every engine."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import costing
from costing import CostingConfig
from costing.errors import ConfigError, ImportFormatError, TableError
from costing.importers import parameters as importer
from costing.importers.shipped_tariffs import SHIPPED_TARIFFS
from costing.pricing.parameters import parameter_rows, parameters_used, resolve
from costing.pricing.reference import price_reference
from costing.tables import shipped_tables_path
from tests.fixtures.tables import (
    SSE_METHODS,
    D,
    apc,
    apc_rows,
    frame,
    load,
    two_rule_years,
    write_parameters,
    write_tariff,
)

WORKBOOK = {t.edition: t.file for t in SHIPPED_TARIFFS}


def _values(resolved: tuple[object, ...]) -> dict[str, object]:
    return {p.name: p.value for p in resolved}  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------
# the importer reads the workbooks' wording
# --------------------------------------------------------------------------------------


def test_the_2022_23_ssem_sheet_gives_the_short_stay_rule(shared_data: Path) -> None:
    rows = importer.read_ssem(shared_data / WORKBOOK["2022-23"], "2022-23", "Annex A")
    got = {r["parameter"]: (r["value"], r["location"], r["verified"]) for r in rows.iter_rows(named=True)}
    # sheet "8 SSEM" read by eye: B4 "the patient's adjusted LoS is either zero or one day",
    # B5 "... defined as aged under 19 years on the date of admission", B6 "the admission
    # method code is 21-25, 2A, 2B, 2C or 2D (or 28 if ... CDS version 6.2)"
    assert got == {
        "sse_max_los": ("1", "sheet '8 SSEM', cell B4", True),
        "sse_min_age": ("19", "sheet '8 SSEM', cell B5", True),
        "sse_admission_methods": ("21 22 23 24 25 2A 2B 2C 2D", "sheet '8 SSEM', cell B6", True),
    }
    assert set(rows["valid_from"]) == {D(2022, 4, 1)}


@pytest.mark.parametrize("edition", ["2016-17", "2017-18"])
def test_the_older_workbooks_glossary_gives_the_length_of_stay(shared_data: Path, edition: str) -> None:
    # Contents glossary: 2016/17 "lengths of stay shorter than two days" (row 59); the 2017/19
    # consultation workbook "lengths of stay of less than two days" (row 92): LoS 0 or 1
    rows = importer.read_glossary(shared_data / WORKBOOK[edition], edition, "workbook")
    assert rows.select("parameter", "value").rows() == [("sse_max_los", "1")]
    assert rows["location"][0] == f"sheet 'Contents', row {59 if edition == '2016-17' else 92}"


def _ssem_workbook(path: Path, age_line: str) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "8 SSEM"
    ws["B4"] = "a. the patient's adjusted LoS is either zero or one day"
    ws["B5"] = age_line
    ws["B6"] = "c. the admission method code is 21-25, 2A, 2B, 2C or 2D"
    wb.save(path)
    return path


def test_changed_wording_is_refused_not_carried_over(tmp_path: Path) -> None:
    ok = _ssem_workbook(tmp_path / "ok.xlsx", "b. the patient is not a child, defined as aged under 18 years")
    assert importer.read_ssem(ok, "2030-31", "t").filter(pl.col("parameter") == "sse_min_age")["value"].item() == "18"
    changed = _ssem_workbook(tmp_path / "changed.xlsx", "b. the patient is an adult")
    with pytest.raises(ImportFormatError, match=r"changed.xlsx, sheet '8 SSEM': no cell\(s\) state the age"):
        importer.read_ssem(changed, "2030-31", "t")
    with pytest.raises(ImportFormatError, match="ok.xlsx, sheet 'Contents': cannot be read"):
        importer.read_glossary(ok, "2030-31", "t")  # no Contents sheet: not silently empty


def test_the_shipped_parameter_tables_equal_a_fresh_import(shared_data: Path, tmp_path: Path) -> None:
    written = importer.build_shipped(shared_data, tmp_path)
    shipped = shipped_tables_path()
    assert sorted(p.name for p in written) == sorted(p.name for p in (shipped / "parameters").iterdir())
    for folder in written:
        rel = folder.relative_to(tmp_path)
        for name in ("manifest.json", "parameters.csv"):
            assert (folder / name).read_bytes() == (shipped / rel / name).read_bytes(), rel / name
    ours = {line for line in (shipped / "SHA256SUMS").read_text().splitlines() if "parameters/" in line}
    assert set((tmp_path / "SHA256SUMS").read_text().splitlines()) == ours


def test_recalled_rows_name_their_document_and_are_not_verified() -> None:
    tables = costing.load_tables()
    rows = parameter_rows(tables)
    listed = tables.summary().filter(pl.col("kind") == "parameters")  # as `costing tables list` shows
    assert listed.select("edition", "status").rows() == [
        ("2011-12", "recalled"), ("2016-17", "partly recalled"), ("2017-18", "partly recalled"),
        ("2018-19", "partly recalled"), ("2022-23", "final")]
    recalled = rows.filter(~pl.col("verified"))
    assert set(recalled["location"]) == {"recalled: not in the shared data"}
    assert recalled.height == 7 and all("guidance" in s for s in recalled["source"])
    # what the workbooks state is read: every 2022/23 row, and 2016-19's length of stay
    assert rows.filter(pl.col("verified")).select("parameter", "valid_from").sort("valid_from").rows() == [
        ("sse_max_los", D(2016, 4, 1)), ("sse_max_los", D(2017, 4, 1)), ("sse_max_los", D(2018, 4, 1)),
        ("sse_admission_methods", D(2022, 4, 1)), ("sse_max_los", D(2022, 4, 1)),
        ("sse_min_age", D(2022, 4, 1))]


# --------------------------------------------------------------------------------------
# resolution: by the edition's date; an uncovered edition; the configuration overrides
# --------------------------------------------------------------------------------------


def test_each_edition_gets_the_rows_in_force_on_its_first_day(tmp_path: Path) -> None:
    tables = costing.load_tables()
    t2223 = resolve(tables, CostingConfig(), tables.get("tariff", "2022-23"))
    assert _values(t2223) == {"sse_max_los": 1, "sse_min_age": 19, "sse_admission_methods": tuple(SSE_METHODS.split())}
    assert {p.table_edition for p in t2223} == {"2022-23"} and all(p.verified for p in t2223)
    age_1718 = next(p for p in resolve(tables, CostingConfig(), tables.get("tariff", "2017-18"))
                    if p.name == "sse_min_age")
    assert (age_1718.table_edition, age_1718.verified, age_1718.basis) == ("2017-18", False, "table")
    # a row stays in force until the next row of its parameter: 2023/24 costs use 2011/12's
    (nes,) = resolve(tables, CostingConfig(), tables.get("reference_cost", "2023-24"))
    assert (nes.value, nes.valid_from, nes.verified) == (2, D(2011, 4, 1), False)

    # editions the table does not cover: a user's 2019/20 tariff gets the 2018/19 rows; a
    # 2008/09 tariff with a short-stay price is refused; one without any needs none
    sse = {"hrg_code": "E12", "nel_price": 2000.0, "sse_applicable": True, "sse_price": 600.0}
    write_tariff(tmp_path, "2019-20", apc_rows(sse))
    write_tariff(tmp_path, "2008-09", apc_rows(sse), hrg_version="v3.5")
    write_tariff(tmp_path, "2007-08", apc_rows({"hrg_code": "E12", "nel_price": 2000.0}), hrg_version="v3.5")
    user = load(tmp_path)  # no parameters edition of its own: the shipped rows
    assert {p.table_edition for p in resolve(user, CostingConfig(), user.get("tariff", "2019-20"))} == {"2018-19"}
    with pytest.raises(ConfigError, match=r"tariff edition 2008-09 \(from 2008-04-01\) is older .*sse_max_los, "
                                          r"sse_min_age, sse_admission_methods in the configuration"):
        resolve(user, CostingConfig(), user.get("tariff", "2008-09"))
    unused = resolve(user, CostingConfig(), user.get("tariff", "2007-08"))
    assert {(p.value, p.basis) for p in unused} == {(None, "not used")}
    given = resolve(user, CostingConfig(sse_max_los=1, sse_min_age=19, sse_admission_methods=["21"]),
                    user.get("tariff", "2008-09"))
    assert _values(given) == {"sse_max_los": 1, "sse_min_age": 19, "sse_admission_methods": ("21",)}
    assert {p.basis for p in given} == {"configuration"}


def test_a_bad_table_value_or_two_rows_for_one_date_are_refused(tmp_path: Path) -> None:
    write_tariff(tmp_path / "a", "2017-18", apc_rows({"hrg_code": "E12", "sse_price": 1.0}))
    write_parameters(tmp_path / "a", "2017-18", {"sse_max_los": "one", "sse_min_age": "19",
                                                 "sse_admission_methods": "21"})
    tables = load(tmp_path / "a")
    with pytest.raises(TableError, match="parameters/2017-18: sse_max_los .* 'one'"):
        resolve(tables, CostingConfig(), tables.get("tariff", "2017-18"))
    write_parameters(tmp_path / "a", "2016-17", {"sse_min_age": "19"}, valid_from=D(2017, 4, 1))
    twice = load(tmp_path / "a")
    with pytest.raises(TableError, match="both give sse_min_age from 2017-04-01"):
        parameter_rows(twice)


def test_the_configuration_checks_its_overrides() -> None:
    with pytest.raises(ConfigError, match="sse_admission_methods: .*not emergency admission methods: \\['11'\\]"):
        CostingConfig.from_mapping({"sse_admission_methods": ["11"]})
    with pytest.raises(ConfigError, match="sse_min_age: Input should be greater than or equal to 0"):
        CostingConfig.from_mapping({"sse_min_age": -1})
    # a run file written before the table keeps working: its values override every edition
    old = CostingConfig.from_mapping({"sse_max_los": 1, "sse_min_age": 19, "nes_los_threshold": 2,
                                      "sse_admission_methods": ["2a", "21"]})
    assert old.sse_admission_methods == ("2A", "21")


# --------------------------------------------------------------------------------------
# pricing: per edition in dated mode, the override for every edition, the run manifest
# --------------------------------------------------------------------------------------


def test_dated_mode_prices_the_same_stay_by_each_editions_parameters(tmp_path: Path) -> None:
    tables = two_rule_years(tmp_path)
    # the same one-day emergency stay of a 40-year-old, and a two-day one, in each year
    records = frame(*(apc(f"{kind}{year}", admit=D(year, 10, 2), los=los, age=40)
                      for year in (2016, 2017) for kind, los in (("short", 1), ("two_days", 2))))
    tariff = CostingConfig(chain=("tariff",))
    provider = CostingConfig(perspective="provider")
    for cfg, expected in (
        # 2016/17: 40 >= 19, the short-stay price 600; 2017/18: 40 < 65, the NEL price 2,000
        (tariff, {"short2016": 600.0, "two_days2016": 2000.0, "short2017": 2000.0, "two_days2017": 2000.0}),
        # NES below 2 days in 2016/17 (NEL 1,500 for two days), below 3 days in 2017/18 (NES 400)
        (provider, {"short2016": 400.0, "two_days2016": 1500.0, "short2017": 400.0, "two_days2017": 400.0}),
        # the configuration overrides every edition: age 19 in 2017/18 too
        (tariff.model_copy(update={"sse_min_age": 19}),
         {"short2016": 600.0, "two_days2016": 2000.0, "short2017": 600.0, "two_days2017": 2000.0}),
    ):
        out = costing.price(records, tables, cfg)
        assert dict(zip(out["record_id"], out["cost"], strict=True)) == expected
        assert_frame_equal(costing.price_lazy(records.lazy(), tables, cfg).collect(), out)
        assert_frame_equal(price_reference(records, tables, cfg), out)
    used = parameters_used(tables, tariff, costing.price(records, tables, tariff))
    ages = {(p["edition"], p["value"], p["overridden"], p["table"]) for p in used if p["parameter"] == "sse_min_age"}
    assert ages == {("2016-17", 19, False, "parameters/2016-17"), ("2017-18", 65, False, "parameters/2017-18")}


def test_the_run_manifest_records_each_editions_parameters(tmp_path: Path) -> None:
    tables = two_rule_years(tmp_path)
    cfg = CostingConfig(chain=("tariff",), sse_max_los=0)
    priced = costing.price(frame(apc("a", admit=D(2017, 10, 2), los=1)), tables, cfg)
    got = json.loads(json.dumps(parameters_used(tables, cfg, priced)))  # as the manifest holds it
    by = {(p["level"], p["edition"], p["parameter"]): p for p in got}
    assert set(by) == {("tariff", "2017-18", n) for n in ("sse_max_los", "sse_min_age", "sse_admission_methods")}
    assert by["tariff", "2017-18", "sse_max_los"] == {
        "level": "tariff", "edition": "2017-18", "parameter": "sse_max_los", "value": 0,
        "basis": "configuration", "overridden": True, "source": "the configuration (overrides the table)",
        "location": "", "verified": None, "valid_from": None, "table": None}
    assert by["tariff", "2017-18", "sse_admission_methods"]["value"] == SSE_METHODS.split()
    assert by["tariff", "2017-18", "sse_min_age"]["source"] == "test fixture (invented rules)"


def test_your_own_rows_price_an_older_edition(tmp_path: Path) -> None:
    rules = tmp_path / "rules-2008-09.csv"
    rules.write_text("parameter,value,source,statement\n"
                     "sse_max_los,0,my reading of the 2008/09 guidance,same-day stays only\n"
                     "sse_min_age,19,my reading of the 2008/09 guidance,19 and over\n"
                     "sse_admission_methods,21 28,my reading of the 2008/09 guidance,21 and 28\n")
    costing.importers.import_edition("parameters", rules, edition="2008-09", into=tmp_path / "t")
    write_tariff(tmp_path / "t", "2008-09", apc_rows({"hrg_code": "E12", "nel_price": 2000.0, "sse_applicable": True,
                                                      "sse_price": 600.0}), hrg_version="v3.5")
    tables = costing.load_tables(["shipped", tmp_path / "t"])
    got = {p.name: (p.value, p.verified, p.table_edition) for p in resolve(tables, CostingConfig(),
                                                                            tables.get("tariff", "2008-09"))}
    assert got == {"sse_max_los": (0, False, "2008-09"), "sse_min_age": (19, False, "2008-09"),
                   "sse_admission_methods": (("21", "28"), False, "2008-09")}
    # same day, method 28: the short-stay price 600; one night: the NEL price 2,000
    out = costing.price(frame(apc("same_day", admit=D(2008, 6, 2), los=0, method="28", hrg="E12", version="v3.5"),
                              apc("one_night", admit=D(2008, 6, 2), los=1, method="28", hrg="E12", version="v3.5")),
                        tables, CostingConfig(tariff_edition="2008-09", chain=("tariff",)))
    assert out["cost"].to_list() == [600.0, 2000.0]
    rules.write_text("parameter,value,source,statement\nsse_min_ag,19,x,y\n")
    with pytest.raises(ImportFormatError, match="line 2: unknown parameter 'sse_min_ag'"):
        costing.importers.import_edition("parameters", rules, edition="2009-10", into=tmp_path / "t")
