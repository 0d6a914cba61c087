"""Read words and universal POS tags from CoNLL-U files (Universal Dependencies).

A CoNLL-U file holds sentences separated by blank lines; every word is one line of
:data:`N_COLUMNS` tab-separated fields ``ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS
MISC``. :func:`read_conllu` keeps ``(FORM, UPOS)`` of the syntactic words and skips

- comment lines (``# sent_id = ...``, ``# text = ...``),
- multiword-token lines (``ID`` a range such as ``3-4``: the surface token "don't"
  whose words ``do`` and ``n't`` follow on their own lines),
- empty nodes (``ID`` a decimal such as ``8.1``, used by enhanced dependencies).

Files ending in ``.xz`` are decompressed (lzma); others are read as UTF-8 text.
Malformed lines raise :class:`~refode.errors.FormatError` naming the file and line.
"""
import lzma
import os
import re

from ..errors import FormatError

#: tab-separated fields of a word line.
N_COLUMNS = 10
#: fields of a word line that :func:`read_conllu` keeps.
FORM, UPOS = 1, 3
#: the 17 universal part-of-speech tags of UD v2, in alphabetical order.
UPOS_TAGS = ("ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART",
             "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X")
#: the ``ID`` field of a word, of a multiword token and of an empty node.
WORD_ID = re.compile(r"[1-9][0-9]*")
RANGE_ID = re.compile(r"[1-9][0-9]*-[1-9][0-9]*")
EMPTY_ID = re.compile(r"[0-9]+\.[1-9][0-9]*")
#: suffix of lzma-compressed files.
XZ_SUFFIX = ".xz"


def _open(path):
    if os.fspath(path).endswith(XZ_SUFFIX):
        return lzma.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def _word(path, number, line, expected_id):
    """``(form, upos)`` of a word line, None for a line to skip; raises if malformed."""
    fields = line.split("\t")
    where = f"{path}, line {number}"
    if len(fields) != N_COLUMNS:
        raise FormatError(f"{where}: {len(fields)} tab-separated columns, a CoNLL-U word line "
                          f"has {N_COLUMNS} (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS "
                          "MISC); separate the fields by single tabs")
    word_id = fields[0]
    if RANGE_ID.fullmatch(word_id) or EMPTY_ID.fullmatch(word_id):
        return None
    if not WORD_ID.fullmatch(word_id):
        raise FormatError(f"{where}: ID {word_id!r} is not a word number (1, 2, ...), a "
                          "range (3-4) or an empty node (8.1)")
    if int(word_id) != expected_id:
        raise FormatError(f"{where}: word ID {word_id} where {expected_id} was expected; "
                          "words are numbered 1, 2, ... within a sentence, and sentences "
                          "end with a blank line")
    form, upos = fields[FORM], fields[UPOS]
    if not form or not upos or upos == "_":
        raise FormatError(f"{where}: empty FORM or UPOS ({form!r}, {upos!r}); every word "
                          "needs both")
    return form, upos


def read_conllu(path):
    """The sentences of a CoNLL-U file as lists of ``(form, upos)`` pairs.

    Parameters
    ----------
    path : str or PathLike
        A ``.conllu`` file, or ``.conllu.xz`` (lzma).

    Returns
    -------
    list of list of (str, str)
        One list per sentence (sentences without words are dropped), the words in
        order; multiword tokens and empty nodes are left out.

    Raises
    ------
    FormatError
        An unreadable file, or a malformed line (its path and line number are named).
    """
    sentences, words = [], []
    try:
        with _open(path) as fh:
            for number, raw in enumerate(fh, start=1):
                line = raw.rstrip("\r\n")
                if not line.strip():
                    if words:
                        sentences.append(words)
                    words = []
                elif not line.startswith("#"):
                    word = _word(path, number, line, len(words) + 1)
                    if word is not None:
                        words.append(word)
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot be read as CoNLL-U ({exc}); pass a UTF-8 .conllu "
                          "file or an lzma-compressed .conllu.xz") from None
    if words:
        sentences.append(words)
    return sentences
