"""Atomic writes keep the permissions a plain write would give (not the temporary file's 0600)."""

from __future__ import annotations

import os
import stat

import pytest

from relreps import files


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_file_is_readable_as_open_would_make_it(tmp_path, umask_022):
    files.write_text(tmp_path / "a.json", "{}")
    assert _mode(tmp_path / "a.json") == 0o644
    files.copy_file(tmp_path / "a.json", tmp_path / "b.json")
    assert _mode(tmp_path / "b.json") == 0o644
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask_022):
    path = tmp_path / "card.json"
    path.write_text("old")
    path.chmod(0o640)
    files.write_text(path, "new")
    assert path.read_text() == "new" and _mode(path) == 0o640


def test_a_new_folder_is_readable_as_mkdir_would_make_it(tmp_path, umask_022):
    new = files.new_folder_beside(tmp_path / "set")
    (new / "x").write_text("1")
    files.replace_folder(new, tmp_path / "set")
    assert _mode(tmp_path / "set") == 0o755
