"""Argument types and the output check of the command line (refode/_cli_args.py)."""
import argparse
import os

import pytest

import refode
from refode import _cli_args
from refode.errors import RefodeError

from tests.io.conftest import small_net


@pytest.mark.parametrize("parse, text, rule", [
    (_cli_args.N_BASIS, "2.5", "an integer from 1 to 4096"),
    (_cli_args.N_BASIS, "0", "an integer from 1 to 4096"),
    (_cli_args.N_STEPS, "100001", "an integer from 1 to 100000"),
    (_cli_args.BATCH, "x", "an integer from 1 to 65536"),
    (_cli_args.seed, "-1", "an integer >= 0"),
    (_cli_args.positive, "0", "an integer >= 1"),
])
def test_types_name_the_rule(parse, text, rule):
    with pytest.raises(argparse.ArgumentTypeError, match=f"must be {rule}, got '{text}'"):
        parse(text)


def test_types_accept_their_range():
    assert _cli_args.N_BASIS("4096") == 4096 and _cli_args.seed("0") == 0


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.h5"
    refode.save(small_net(), path)
    return path


def test_hard_links_folders_and_other_files_are_refused(weights, tmp_path):
    hard = tmp_path / "hard.h5"
    os.link(weights, hard)
    with pytest.raises(RefodeError, match="is the input"):
        _cli_args.check_output("OUT.h5", str(hard), [str(weights)], "refode-weights", False)
    with pytest.raises(RefodeError, match="is a folder"):
        _cli_args.check_output("OUT.h5", str(tmp_path), [], "refode-weights", True)
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(RefodeError, match="not a refode file of that kind; writing a refode "
                       "golden file over it needs --force"):
        _cli_args.check_output("-o", str(tmp_path / "notes.txt"), [], "refode-golden", False)


def test_new_paths_dangling_links_same_kind_and_force_are_allowed(weights, tmp_path):
    check = _cli_args.check_output
    check("OUT.h5", str(tmp_path / "new.h5"), [str(weights)], "refode-weights", False)
    (tmp_path / "dangling.h5").symlink_to(tmp_path / "nowhere.h5")
    check("OUT.h5", str(tmp_path / "dangling.h5"), [str(weights)], "refode-weights", False)
    refode.save(small_net(), tmp_path / "other.h5")
    check("OUT.h5", str(tmp_path / "other.h5"), [str(weights)], "refode-weights", False)
    check("OUT.h5", str(weights), [str(weights)], "refode-weights", True)
