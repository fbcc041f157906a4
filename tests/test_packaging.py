"""pyproject.toml: the licence is declared the way current setuptools reads without warnings."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

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
