"""Packaging: the shipped tables are declared so an installed wheel carries them and
setuptools prints no "would be ignored" warning; `make demo` installs no test extras."""

from __future__ import annotations

import tomllib

from tests.conftest import REPO


def test_every_table_kind_folder_is_a_declared_package() -> None:
    setup = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    assert setup["package-dir"]["costing.tariffs"] == "tariffs"
    kinds = {p.name for p in (REPO / "tariffs").iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert kinds  # the shipped tables are there
    declared = {p.removeprefix("costing.tariffs.") for p in setup["packages"] if p.startswith("costing.tariffs.")}
    assert kinds == declared, "declare each tariffs/<kind> folder in [tool.setuptools] packages"


def test_make_demo_installs_without_test_extras() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    demo = next(line for line in makefile.splitlines() if line.startswith("demo:"))
    assert "installed-demo" in demo
    recipe = makefile.split("$(VENV)/.installed-demo:", 1)[1].split("\n\n", 1)[0]
    assert "pip install --quiet -e ." in recipe and "[test]" not in recipe
