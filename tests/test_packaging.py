"""pyproject.toml: the licence is declared the way current setuptools reads without warnings."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the dev extra installs tomli on Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def test_license_is_an_spdx_string_with_its_file():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = meta["project"]
    # a TOML table (license = {text = ...}) makes setuptools >= 77 warn on every install
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] and all((ROOT / f).is_file() for f in project["license-files"])
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # deprecated with SPDX
    assert "setuptools>=77" in meta["build-system"]["requires"]  # the first to read SPDX licence strings
    assert "Apache License" in (ROOT / "LICENSE").read_text()[:200]


def test_package_data_files_exist_and_ship_in_the_wheel(tmp_path):
    """Every package-data file pyproject names (py.typed: the package is typed, PEP 561) exists
    and is inside a wheel built from the tree."""
    import shutil
    import subprocess
    import sys
    import zipfile

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = meta["tool"]["setuptools"]["package-data"]["aeserve"]
    assert "py.typed" in declared and (ROOT / "aeserve" / "py.typed").is_file()
    src = tmp_path / "src"          # build from a copy: setuptools writes build/ next to the sources
    shutil.copytree(ROOT / "aeserve", src / "aeserve", ignore=shutil.ignore_patterns("__pycache__"))
    for f in ("pyproject.toml", "README.md", *meta["project"]["license-files"]):
        shutil.copy2(ROOT / f, src / f)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    names = zipfile.ZipFile(next((tmp_path / "dist").glob("aeserve-*.whl"))).namelist()
    assert "aeserve/py.typed" in names and "aeserve/serve/backend_model.py.tmpl" in names
