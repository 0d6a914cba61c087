"""HDF5 interchange: weight files (``docs/format.md``) and golden vectors.

- :func:`save` / :func:`load`: a model to / from a versioned, self-describing file;
- :mod:`refode.io.golden`: reference outputs, loss and gradients for other
  implementations, and their comparison (``refode check``);
- :func:`read_conllu`: words and UPOS tags of a CoNLL-U treebank (``.conllu[.xz]``);
- :func:`from_statefulodenets` / :func:`to_statefulodenets`: run directories (Flax
  checkpoints) of the original Stateful ODE-Nets code.
"""
from .conllu import UPOS_TAGS, read_conllu
from .read import load
from .statefulodenets import from_statefulodenets, to_statefulodenets
from .weights import (FORMAT_NAME, FORMAT_VERSION, MAX_N_BASIS, MAX_N_STEPS, MAX_SCALARS,
                      MAX_STAGES, save)

__all__ = ["save", "load", "read_conllu", "UPOS_TAGS", "from_statefulodenets",
           "to_statefulodenets", "FORMAT_NAME", "FORMAT_VERSION",
           "MAX_SCALARS", "MAX_N_BASIS", "MAX_N_STEPS", "MAX_STAGES"]
