"""Tests for aeserve.fileio.write_bytes_atomic."""

from __future__ import annotations

import os
import stat

import pytest

from aeserve.errors import DataError
from aeserve.fileio import write_bytes_atomic


def test_writes_replaces_and_creates_dirs(tmp_path):
    target = tmp_path / "a" / "b" / "out.csv"
    assert write_bytes_atomic(target, b"one") == target
    assert target.read_bytes() == b"one"
    write_bytes_atomic(target, b"two")
    assert target.read_bytes() == b"two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.csv"]  # no temp files left


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_bytes_atomic(tmp_path / "x.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_failure_is_a_data_error_and_leaves_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="cannot write"):
        write_bytes_atomic(tmp_path / "file" / "out.bin", b"x")
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(DataError):
        write_bytes_atomic(target, b"x")  # cannot replace a directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file"]
