"""Argument types and output checks of the ``refode`` command line.

The argparse types reject a value with a message naming the rule, which
:class:`refode.cli._Parser` prints after the flag (``--n-basis must be an integer
from 1 to 4096, got '2.5'``). :func:`check_output` refuses, before any work, an output
path that would destroy an input (the same file, also through a link or a hard link)
or a refode file of another kind, unless ``--force`` is given.
"""
import argparse
import os

from . import limits
from .errors import RefodeError
from .io.read import file_format

#: ``format`` attribute of each kind of file the commands write, and its description.
KINDS = {"refode-weights": "a refode weight file", "refode-golden": "a refode golden file"}


def integer(text, minimum=1, maximum=None):
    """``int(text)`` within ``[minimum, maximum]``, or an ArgumentTypeError naming the rule."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum or (maximum is not None and value > maximum):
        rule = (f"an integer >= {minimum}" if maximum is None
                else f"an integer from {minimum} to {maximum}")
        raise argparse.ArgumentTypeError(f"must be {rule}, got {text!r}")
    return value


def capped(maximum, minimum=1):
    """An argparse type: an integer from ``minimum`` to ``maximum`` (a size cap)."""
    def parse(text):
        return integer(text, minimum, maximum)

    parse.__name__ = f"integer_to_{maximum}"
    return parse


def positive(text):
    """An argparse type: an integer >= 1."""
    return integer(text, 1)


def seed(text):
    """An argparse type: a seed, an integer >= 0."""
    return integer(text, 0)


#: the size flags of the commands.
N_BASIS = capped(limits.MAX_N_BASIS)
N_STEPS = capped(limits.MAX_N_STEPS)
BATCH = capped(limits.MAX_BATCH)


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(flag, path, inputs, kind, force):
    """Refuse (RefodeError) writing a ``kind`` file to ``path`` when it would destroy data.

    Parameters
    ----------
    flag : str
        How the command line names the output (``"OUT.h5"``, ``"-o"``).
    path : str
    inputs : iterable of str
        The command's input paths (``None`` entries are skipped).
    kind : {"refode-weights", "refode-golden"}
    force : bool
        ``--force``: overwrite an existing file (never a folder).

    Refused unless ``force``: ``path`` is one of ``inputs`` (``os.path.samefile``, so a
    symbolic or hard link to an input counts), or it exists and is not a refode file of
    the same ``kind`` (a weight file is never replaced by a golden file, nor a golden
    file by a weight file, nor any other file by either).
    """
    if not os.path.lexists(path):
        return
    if os.path.isdir(path):
        raise RefodeError(f"{flag} {path} is a folder; give a file path")
    if force or not os.path.exists(path):   # a dangling link is replaced, not followed
        return
    for source in inputs:
        if source is not None and _same_file(path, source):
            how = " (through a link)" if os.path.realpath(path) != os.path.abspath(path) \
                or os.path.realpath(source) != os.path.abspath(source) else ""
            raise RefodeError(f"{flag} {path} is the input {source}{how}; writing it would "
                              "destroy the input: choose another path, or pass --force")
    found = file_format(path)
    if found != kind:
        what = KINDS.get(found, "not a refode file of that kind")
        raise RefodeError(f"{flag} {path} exists and is {what}; writing {KINDS[kind]} over "
                          "it needs --force (or choose another path)")
