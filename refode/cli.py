"""The ``refode`` command line.

Every command validates its input; bad input prints one line naming the problem
(``refode: error: ...``) on standard error and exits with code 2, never a traceback.
"""
import argparse
import sys

from .errors import RefodeError

#: exit code for bad input (as argparse uses for usage errors).
EXIT_BAD_INPUT = 2

EPILOG_DEMO = """examples:
  refode demo                      # train, compress and evaluate on sklearn's 8x8 digits
  refode demo --out out/demo --seed 1
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (no usage block) and exit code 2."""

    def error(self, message):
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

    add_commands(sub)
    return parser


def main(argv=None):
    """Entry point of the ``refode`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (RefodeError, OSError, ValueError, KeyError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"refode {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("refode: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
