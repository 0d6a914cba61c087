"""The ``refode`` command line.

Every command validates its input; bad input prints one line naming the problem
(``refode: error: ...``) on standard error and exits with code 2, never a traceback.
"""
import argparse
import os
import re
import sys
import warnings

from .errors import RefodeError, RefodeWarning

#: exit code for bad input (as argparse uses for usage errors).
EXIT_BAD_INPUT = 2

EPILOG_DEMO = """examples:
  refode demo                      # train, compress and evaluate on sklearn's 8x8 digits
  refode demo --out out/demo --seed 1
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit code 2.

    A type's message ``"must be ..."`` reads after the flag: ``--n-basis must be an
    integer >= 1, got '2.5'`` (argparse itself writes ``argument --n-basis: must ...``).
    """

    def error(self, message):
        message = re.sub(r"^argument ([^:]+): must ", r"\1 must ", message)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _cmd_demo(args):
    from .demo import run_demo

    run_demo(out=args.out, seed=args.seed, quiet=args.quiet)
    return 0


def build_parser():
    """The argument parser of ``refode`` with all its subcommands."""
    parser = _Parser(
        prog="refode",
        description="Reference implementation of Stateful ODE-Nets (basis-function weights).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    demo = sub.add_parser(
        "demo",
        help="train, compress (change of basis) and evaluate an ODE-Net on the bundled digits",
        epilog=EPILOG_DEMO,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    demo.add_argument("--quiet", action="store_true", help="print only the final table")
    demo.set_defaults(func=_cmd_demo)
    from .cli_io import add_commands
    from .cli_sweep import add_command as add_sweep

    add_commands(sub)
    add_sweep(sub)
    return parser


def main(argv=None):
    """Entry point of the ``refode`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _warning_line(args.command, warnings.showwarning)
            code = args.func(args)
        sys.stdout.flush()   # a closed pipe shows here, inside the handler below
        return code
    except BrokenPipeError:
        return _closed_stdout()
    except (RefodeError, OSError, ValueError, KeyError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"refode {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("refode: interrupted", file=sys.stderr)
        return 130


def _warning_line(command, show):
    """A ``warnings.showwarning`` printing a RefodeWarning as one line on stderr
    (``refode info: warning: ...``) and any other warning with ``show``."""
    def line(message, category, filename, lineno, file=None, text=None):
        if issubclass(category, RefodeWarning):
            print(f"refode {command}: warning: {' '.join(str(message).split())}",
                  file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, text)
    return line


def _closed_stdout():
    """Standard output was closed by its reader (``refode info f.h5 | head -1``): what
    it read is all it wanted, so exit quietly with 0. Later writes, and the flush at
    interpreter exit, go to ``os.devnull`` instead of raising again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):   # no file descriptor (captured output)
        pass
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
