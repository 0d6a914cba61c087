"""Atomic writes leave either the new file or the old one, never a partial file."""
import os

import pytest

from refode import _io


def test_write_text_creates_file_and_no_temporaries(tmp_path):
    target = tmp_path / "sub" / "report.json"
    _io.write_text(target, "hello\n")
    assert target.read_text() == "hello\n"
    assert os.listdir(target.parent) == ["report.json"]


def test_failure_keeps_old_file_and_removes_temporary(tmp_path):
    target = tmp_path / "model.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="boom"):
        with _io.atomic_path(target) as tmp:
            with open(tmp, "w") as fh:
                fh.write("partial")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["model.txt"]


def test_written_file_has_the_usual_permissions(tmp_path):
    target = tmp_path / "r.txt"
    _io.write_text(target, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~mask)
