"""HDF5 interchange: weight files (``docs/format.md``) and golden vectors.

- :func:`save` / :func:`load`: a model to / from a versioned, self-describing file;
- :mod:`refode.io.golden`: reference outputs, loss and gradients for other
  implementations, and their comparison (``refode check``);
- :func:`read_conllu`: words and UPOS tags of a CoNLL-U treebank (``.conllu[.xz]``).
"""
from .conllu import UPOS_TAGS, read_conllu
from .read import load
from .weights import (FORMAT_NAME, FORMAT_VERSION, MAX_N_BASIS, MAX_N_STEPS, MAX_SCALARS,
                      MAX_STAGES, save)

__all__ = ["save", "load", "read_conllu", "UPOS_TAGS", "FORMAT_NAME", "FORMAT_VERSION",
           "MAX_SCALARS", "MAX_N_BASIS", "MAX_N_STEPS", "MAX_STAGES"]
