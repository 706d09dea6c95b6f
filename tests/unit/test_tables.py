"""Table registry: loading, verification errors, lookups, immutability, packaging."""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import shutil
import tomllib
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

import costing
from costing.cli import main
from costing.tables import (
    edition_dates,
    financial_year_of,
    load_tables,
    sha256_file,
    shipped_tables_path,
    verify_tables,
    write_edition,
)
from tests.fixtures.tables import FIXTURE_SOURCE, write_mff, write_trimpoints

REPO = Path(__file__).resolve().parents[2]

# What the shipped tables must hold (issue 2): kind -> editions
SHIPPED = {
    "reference_cost": ["2011-12", "2013-14", "2014-15", "2015-16", "2016-17", "2017-18", "2018-19",
                       "2023-24", "2024-25"],
    "trimpoints": ["2017-18"],
    "mff": ["2016-17", "2017-18", "2018-19", "2022-23", "2026-27"],
    "tariff": ["2016-17", "2017-18", "2018-19", "2022-23"],
}


def test_shipped_editions_present_and_verified(shipped_tables: costing.TableSet) -> None:
    for kind, editions in SHIPPED.items():
        assert shipped_tables.editions(kind) == editions
    assert shipped_tables.editions("index"), "an inflation index edition must be shipped"
    assert shipped_tables.get("reference_cost", "2017-18").hrg_version == "HRG4"


def test_shipped_sources_record_original_sha256(shipped_tables: costing.TableSet, shared_data: Path) -> None:
    # every source file named in a shipped manifest, when it is one of ../shared/data's files,
    # must carry that file's real sha256
    by_name = {p.name: p for p in shared_data.rglob("*") if p.is_file()}
    checked = 0
    for ed in shipped_tables:
        for src in ed.manifest.sources:
            if src.file_name in by_name:
                assert src.sha256 == sha256_file(by_name[src.file_name]), (ed.kind, ed.edition)
                checked += 1
    assert checked >= 8


def test_edition_in_force_on_a_date(shipped_tables: costing.TableSet) -> None:
    assert shipped_tables.in_force("reference_cost", dt.date(2018, 3, 31)).edition == "2017-18"
    assert shipped_tables.in_force("reference_cost", dt.date(2017, 4, 1)).edition == "2017-18"
    # no 2018-19 .. 2022-23 edition: never the nearest year
    assert shipped_tables.in_force("reference_cost", dt.date(2019, 6, 1)) is None


def test_financial_year_helpers() -> None:
    assert financial_year_of(dt.date(2009, 3, 31)) == "2008-09"
    assert financial_year_of(dt.date(2009, 4, 1)) == "2009-10"
    assert edition_dates("1999-00") == (dt.date(1999, 4, 1), dt.date(2000, 3, 31))
    with pytest.raises(ValueError, match="YYYY-YY"):
        edition_dates("2017-19")


def test_tableset_is_immutable(shipped_tables: costing.TableSet) -> None:
    with pytest.raises(AttributeError):
        shipped_tables.foo = 1  # type: ignore[attr-defined]
    smaller = shipped_tables.without("mff")
    assert "mff" not in smaller.kinds() and "mff" in shipped_tables.kinds()


def test_unknown_edition_error_lists_what_exists(shipped_tables: costing.TableSet) -> None:
    with pytest.raises(costing.EditionNotFoundError, match="2014-15, 2015-16"):
        shipped_tables.get("reference_cost", "2009-10")


def _copy_edition(tmp_path: Path, kind: str, edition: str) -> Path:
    """A shipped edition copied into a new tables folder with its SHA256SUMS line (a
    released edition is refused without one), so that only its files are under test."""
    from costing.tables import _update_checksums

    dst = tmp_path / kind / edition
    shutil.copytree(shipped_tables_path() / kind / edition, dst)
    _update_checksums(tmp_path, dst)
    return dst


def test_tampered_file_is_refused_with_both_hashes(tmp_path: Path) -> None:
    folder = _copy_edition(tmp_path, "trimpoints", "2017-18")
    csv = folder / "trimpoints.csv"
    before = sha256_file(csv)
    data = bytearray(csv.read_bytes())
    data[-3] = ord("9") if data[-3] != ord("9") else ord("8")
    csv.write_bytes(bytes(data))
    with pytest.raises(costing.TableIntegrityError) as exc:
        load_tables(tmp_path)
    msg = str(exc.value)
    assert str(csv) in msg and before in msg and sha256_file(csv) in msg


def test_missing_file_is_refused(tmp_path: Path) -> None:
    folder = _copy_edition(tmp_path, "mff", "2026-27")
    (folder / "mff.csv").unlink()
    with pytest.raises(costing.TableMissingError, match="mff.csv"):
        load_tables(tmp_path)


def _rewrite_with_manifest_hash(folder: Path, name: str, text: str) -> None:
    """Change a resource and update its manifest hash, so only the content check can fail."""
    (folder / name).write_text(text, encoding="utf-8")
    m = json.loads((folder / "manifest.json").read_text())
    for r in m["resources"]:
        if r["path"] == name:
            r["sha256"] = sha256_file(folder / name)
            r["rows"] = text.count("\n") - 1
    (folder / "manifest.json").write_text(json.dumps(m))
    from costing.tables import _update_checksums

    _update_checksums(folder.parent.parent, folder)


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    write_trimpoints(tmp_path, "2017-18", {"AA01A": 3, "AA02A": 4})
    folder = tmp_path / "trimpoints" / "2017-18"
    _rewrite_with_manifest_hash(folder, "trimpoints.csv", "hrg_code,trim_days\nAA01A,3\nAA01A,4\n")
    with pytest.raises(costing.TableKeyError, match="duplicate primary key"):
        load_tables(tmp_path)


def test_wrong_dtype_is_refused(tmp_path: Path) -> None:
    write_trimpoints(tmp_path, "2017-18", {"AA01A": 3})
    folder = tmp_path / "trimpoints" / "2017-18"
    _rewrite_with_manifest_hash(folder, "trimpoints.csv", "hrg_code,trim_days\nAA01A,three\n")
    with pytest.raises(costing.TableSchemaError, match="trim_days"):
        load_tables(tmp_path)


def test_write_edition_refuses_duplicate_keys_and_overwrites(tmp_path: Path) -> None:
    dup = pl.DataFrame({"hrg_code": ["AA01A", "AA01A"], "trim_days": [3, 4]})
    with pytest.raises(costing.TableKeyError, match="AA01A"):
        write_edition(tmp_path, kind="trimpoints", edition="2017-18", frames={"trimpoints": dup},
                      sources=FIXTURE_SOURCE)
    assert not (tmp_path / "trimpoints" / "2017-18" / "manifest.json").exists()
    write_mff(tmp_path, "2026-27", {"RAA": 1.0})
    with pytest.raises(costing.TableError, match="not edited in place"):
        write_mff(tmp_path, "2026-27", {"RAA": 1.1})


def test_user_folder_added_to_shipped(tmp_path: Path) -> None:
    write_mff(tmp_path, "2025-26", {"RAA": 1.05})
    both = load_tables(["shipped", tmp_path])
    assert both.editions("mff") == [*SHIPPED["mff"][:4], "2025-26", "2026-27"]
    with pytest.raises(costing.TableError, match="defined twice"):
        load_tables(["shipped", shipped_tables_path()])


def test_verify_cli_ok_and_failure(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["tables", "verify"])
    assert ok.exit_code == 0, ok.output
    folder = _copy_edition(tmp_path, "mff", "2026-27")
    with open(folder / "mff.csv", "ab") as f:
        f.write(b"\n")
    bad = runner.invoke(main, ["tables", "verify", "--path", str(tmp_path)])
    assert bad.exit_code == 1
    assert "sha256 mismatch" in bad.output and "Traceback" not in bad.output
    assert verify_tables(tmp_path)[0][1] is not None


def test_list_and_show_cli() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["tables", "list"])
    assert res.exit_code == 0
    for edition in SHIPPED["reference_cost"]:
        assert edition in res.output
    show = runner.invoke(main, ["tables", "show", "reference_cost", "2017-18", "--rows", "2"])
    assert show.exit_code == 0 and '"hrg_version": "HRG4"' in show.output
    missing = runner.invoke(main, ["tables", "show", "reference_cost", "2001-02"])
    assert missing.exit_code == 1 and "no reference_cost edition" in missing.output


def test_import_cli_writes_a_loadable_edition(tmp_path: Path, shared_data: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["tables", "import", "mff", str(shared_data / "mff" / "mff-2026-27.csv"),
                               "--edition", "2026-27", "--into", str(tmp_path)])
    assert res.exit_code == 0, res.output
    ts = load_tables(tmp_path)
    shipped = costing.load_tables().table("mff", "2026-27")
    assert ts.table("mff", "2026-27").equals(shipped)
    again = runner.invoke(main, ["tables", "import", "mff", str(shared_data / "mff" / "mff-2026-27.csv"),
                                 "--edition", "2026-27", "--into", str(tmp_path)])
    assert again.exit_code == 1 and "--overwrite" in again.output
    wrong = runner.invoke(main, ["tables", "import", "mff", str(shared_data / "mff" / "mff-2026-27.csv"),
                                 "--edition", "2026-28", "--into", str(tmp_path)])
    assert wrong.exit_code != 0 and "Traceback" not in wrong.output


def test_package_data_patterns_cover_every_shipped_file() -> None:
    # the wheel carries tariffs/ as costing.tariffs: every shipped file must match a pattern
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = cfg["tool"]["setuptools"]["package-data"]["costing.tariffs"]
    root = REPO / "tariffs"
    files = [p.relative_to(root).as_posix() for p in root.rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and p.name != "__init__.py"]
    assert files
    unmatched = [f for f in files if not any(fnmatch.fnmatch(f, pat) for pat in patterns)]
    assert unmatched == []


def test_read_only_frames_are_copies_not_shared_state(shipped_tables: costing.TableSet) -> None:
    t = shipped_tables.table("mff", "2026-27")
    t2 = t.with_columns(pl.lit(0.0).alias("mff_factor"))
    assert shipped_tables.table("mff", "2026-27")["mff_factor"].max() > 0
    assert t2["mff_factor"].max() == 0


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "tables"
    shutil.copytree(shipped_tables_path(), root, ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    return root


def test_changed_manifest_free_text_is_refused(tmp_path: Path) -> None:
    # a manifest carries no hash of itself: the folder's SHA256SUMS lists every manifest
    root = _copy_tree(tmp_path)
    manifest = root / "mff" / "2026-27" / "manifest.json"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace('"description": "', '"description": "X', 1), encoding="utf-8")
    with pytest.raises(costing.TableIntegrityError, match="manifest.json"):
        load_tables(root)
    assert any(err and "sha256 mismatch" in err for _, err in verify_tables(root))


def test_changed_or_missing_checksums_file_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    sums = root / "SHA256SUMS"
    original = sums.read_bytes()
    sums.write_bytes(original.replace(b"\n", b"\r", 1))
    with pytest.raises(costing.ManifestError, match="line 1"):
        load_tables(root)
    sums.write_bytes(original.replace(b"mff/2026-27", b"mff/2026-28", 1))
    with pytest.raises(costing.TableError):
        load_tables(root)
    # a copy of a released set without SHA256SUMS is refused, by load and by verify
    sums.unlink()
    with pytest.raises(costing.TableMissingError, match="SHA256SUMS: missing"):
        load_tables(root)
    assert any(err and "SHA256SUMS: missing" in err for _, err in verify_tables(root))


def test_hand_added_edition_not_in_checksums_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    shutil.copytree(root / "mff" / "2026-27", root / "mff" / "2025-26")
    with pytest.raises(costing.ManifestError):
        load_tables(root)


def test_write_edition_records_its_manifest_in_checksums(tmp_path: Path) -> None:
    write_mff(tmp_path, "2026-27", {"RAA": 1.0})
    write_trimpoints(tmp_path, "2017-18", {"AA01A": 3})
    lines = (tmp_path / "SHA256SUMS").read_text().splitlines()
    assert [ln.split("  ")[1] for ln in lines] == ["mff/2026-27/manifest.json",
                                                    "trimpoints/2017-18/manifest.json"]
    assert lines[0].split("  ")[0] == sha256_file(tmp_path / "mff" / "2026-27" / "manifest.json")


def test_no_side_door_checksums_deleted_and_a_manifest_edited(tmp_path: Path) -> None:
    """The case that once read "verified": SHA256SUMS deleted, then a manifest edited."""
    root = _copy_tree(tmp_path)
    (root / "SHA256SUMS").unlink()
    manifest = root / "mff" / "2026-27" / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        '"description": "', '"description": "edited ', 1), encoding="utf-8")
    res = CliRunner().invoke(main, ["tables", "verify", "--path", str(root)])
    assert res.exit_code == 1 and "SHA256SUMS: missing" in res.output, res.output
    assert "Traceback" not in res.output


def test_a_single_edition_folder_is_checked_against_its_set(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    folder = root / "mff" / "2026-27"
    assert load_tables(folder).editions("mff") == ["2026-27"]
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace(
        '"description": "', '"description": "edited ', 1), encoding="utf-8")
    with pytest.raises(costing.TableIntegrityError, match="manifest.json"):
        load_tables(folder)
    # the same released edition on its own, outside any set: nothing covers its manifest
    alone = tmp_path / "alone"
    shutil.copytree(folder, alone)
    with pytest.raises(costing.TableMissingError, match="not marked illustrative"):
        load_tables(alone)


def test_an_illustrative_folder_may_lack_checksums(tmp_path: Path) -> None:
    folder = write_mff(tmp_path / "mine", "2026-27", {"RAA": 1.0})
    manifest = folder / "manifest.json"
    m = json.loads(manifest.read_text())
    assert m["illustrative"] is False
    (tmp_path / "mine" / "SHA256SUMS").unlink()
    with pytest.raises(costing.TableMissingError, match="SHA256SUMS: missing"):
        load_tables(tmp_path / "mine")
    m["illustrative"] = True  # says it is no released set: then it needs no SHA256SUMS
    manifest.write_text(json.dumps(m))
    assert load_tables(tmp_path / "mine").get("mff", "2026-27").manifest.illustrative
