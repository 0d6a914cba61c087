"""The command line: one-line errors, exit code 2, no traceback."""
import subprocess
import sys

import pytest

from refode import cli


def _run(*args):
    return subprocess.run(
        [sys.executable, "-m", "refode", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("args", [[], ["nonsense"], ["demo", "--seed", "abc"]])
def test_bad_usage_prints_one_line_and_exits_2(args):
    res = _run(*args)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "error" in lines[0]
    assert "Traceback" not in res.stderr


def test_help_has_examples():
    res = _run("demo", "--help")
    assert res.returncode == 0
    assert "examples:" in res.stdout


def test_refode_errors_become_one_line(monkeypatch, capsys):
    from refode.errors import BasisError

    def boom(args):
        raise BasisError("unknown basis family 'x';\n choose one of ...")

    parser = cli.build_parser()
    args = parser.parse_args(["demo"])
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: args)
    args.func = boom
    assert cli.main([]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["refode demo: error: unknown basis family 'x'; choose one of ..."]
