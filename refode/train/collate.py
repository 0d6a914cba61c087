"""Batches of padded sequences: pad a list of sequences, trim a batch's padding, group
sentences of similar length.

Sentences of different lengths are stored as one ``(n, L_max)`` array of token ids
padded with ``padding_id`` (targets padded with ``-100``, which no loss or accuracy
counts). A random mini-batch is usually much shorter than ``L_max``:
:func:`trim_padding` (the ``collate`` of :class:`~refode.train.Trainer`,
:func:`~refode.train.evaluate` and :func:`~refode.train.predict`) drops the trailing
columns that are padding in every row, which changes the tagger's logits of the
real positions by round-off only (padding is masked).

Random batches of sentences are still padded to their longest member (on UD English
EWT, 32 random sentences hold ~520 tokens in ~1,640 padded slots). The ``batches``
strategy :func:`length_batches` groups sentences of similar length under a token
budget instead, so the padded slots are about the tokens.
"""
import numpy as np

from .. import _validate
from ..errors import RefodeError, ShapeError
from ..constants import IGNORE_INDEX

#: token id of padding in refode's taggers (their default ``padding_id``).
PADDING_ID = 0


def pad_sequences(sequences, value, *, length=None, dtype=np.int64):
    """Stack sequences of different lengths into one array, padded at the end.

    Parameters
    ----------
    sequences : list of 1-d int sequences
    value : int
        Fill value (``PADDING_ID`` for token ids, ``-100`` for targets).
    length : int, optional
        Columns of the result (default: the longest sequence).
    dtype : integer dtype

    Returns
    -------
    (len(sequences), length) ndarray
    """
    lengths = [len(s) for s in sequences]
    longest = max(lengths, default=0)
    length = longest if length is None else int(length)
    if length < longest:
        raise RefodeError(f"`length` ({length}) is shorter than the longest sequence "
                          f"({longest}); leave it out or pass at least {longest}")
    out = np.full((len(sequences), length), value, dtype=dtype)
    for row, seq in zip(out, sequences):
        row[:len(seq)] = seq
    return out


def trim_padding(x, y=None, *, padding_id=PADDING_ID):
    """Drop the trailing columns in which every row of ``x`` is padding.

    Parameters
    ----------
    x : (B, L) int token ids
    y : (B, L) int targets or None
        Trimmed alike (``-100`` at padding).
    padding_id : int

    Returns
    -------
    x : (B, L') int64, contiguous, ``L'`` the last column holding a real token (at
        least 1)
    y : (B, L') int64 or None
    """
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.integer):
        raise ShapeError(f"`x` must be token ids of shape (batch, length) and integer dtype, "
                         f"got shape {x.shape} dtype {x.dtype}")
    real = np.flatnonzero((x != padding_id).any(axis=0))
    length = int(real[-1]) + 1 if real.size else 1
    xs = np.ascontiguousarray(x[:, :length], dtype=np.int64)
    if y is None:
        return xs, None
    y = np.asarray(y)
    if y.shape != x.shape:
        raise ShapeError(f"`y` must have the shape of `x` {x.shape}, got {y.shape}")
    if np.any(y[:, length:] != IGNORE_INDEX):
        raise RefodeError(f"`y` counts padded positions after column {length}; set the "
                          f"targets of padding to {IGNORE_INDEX}")
    return xs, np.ascontiguousarray(y[:, :length], dtype=np.int64)


def length_batches(lengths, max_tokens):
    """A ``batches`` strategy of :class:`~refode.train.Trainer`: similar lengths per batch.

    Every epoch, the sentences are ordered by length (ties in a random order drawn
    from the run's generator), cut greedily into batches whose padded size
    ``sentences * longest`` stays within ``max_tokens`` (a longer sentence is a batch
    of its own), and the batches are shuffled. The batch sizes are the same every
    epoch, their members and order are not.

    Parameters
    ----------
    lengths : (n,) int
        Tokens of every sentence (``len`` of each, without padding).
    max_tokens : int
        Padded tokens per batch at most.

    Returns
    -------
    callable
        ``batches(rng, n, batch_size) -> list of index arrays`` (``batch_size`` is
        ignored).
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer) or (
            lengths.size and lengths.min() < 1):
        raise RefodeError("`lengths` must be a 1-d array of sentence lengths >= 1; compute "
                          "it as [len(s) for s in sentences]")
    budget = _validate.positive_int(max_tokens, "max_tokens")
    sorted_lengths = np.sort(lengths, kind="stable")
    cuts, start = [0], 0
    for i, length in enumerate(sorted_lengths):
        if i > start and (i - start + 1) * length > budget:
            cuts.append(i)
            start = i
    cuts.append(len(lengths))

    def batches(rng, n, batch_size=None):
        if n != len(lengths):
            raise RefodeError(f"`lengths` has {len(lengths)} entries for {n} training "
                              "sentences; pass one length per sentence")
        order = rng.permutation(n)
        order = order[np.argsort(lengths[order], kind="stable")]
        chunks = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
        return [chunks[j] for j in rng.permutation(len(chunks))]

    return batches
