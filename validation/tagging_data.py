"""Data of the tagging experiment: UD treebank splits, vocabulary, unknown-word signatures.

The choices (exact form, lowercase back-off, signatures of the words seen once) are
explained in :mod:`validation.tagging`. Ids: 0 padding, 1 ``<unk>``, then the
signatures kept, then the words by decreasing count; tags index
:data:`refode.io.UPOS_TAGS`, ``-100`` at padding.
"""
import collections
import glob
import os
import re
import zlib

import numpy as np

from refode.errors import RefodeError
from refode.io import UPOS_TAGS, read_conllu
from refode.train import pad_sequences, trim_padding

#: token ids of padding and of unknown words without a trained signature.
PAD_ID, UNK_ID = 0, 1
PAD, UNK = "<pad>", "<unk>"
#: target of padding (ignored by loss and accuracy).
IGNORE = -100
#: least count in train of a word form (or signature) to get its own id.
MIN_COUNT = 2
#: word dropout: a training word seen ``c`` times is replaced by its signature with
#: probability ``WORD_DROPOUT / (WORD_DROPOUT + c)`` (Kiperwasser and Goldberg, 2016).
WORD_DROPOUT = 1.0
#: the split files looked for in ``--data``.
SPLITS = ("train", "dev", "test")

#: English suffixes of the signatures, longest first so that "-tion" wins over "-s".
SUFFIXES = tuple(sorted(("ing", "ed", "ly", "tion", "sion", "ness", "ment", "able", "ible",
                         "ity", "ous", "ive", "ful", "less", "ist", "ism", "ize", "ise",
                         "est", "er", "al", "ic", "ian", "es", "s", "y"),
                        key=lambda s: (-len(s), s)))
#: letters a word keeps before its suffix for the suffix to count ("sing" has none).
STEM_LETTERS = 3
#: URLs and e-mail addresses (frequent in web text, mostly tagged X or PROPN).
URL = re.compile(r"(?i)(https?://|www\.|\S@\S+\.\w|\.(com|org|net|edu|gov)\b)")
#: numbers: digits with separators, optionally an ordinal, plural or percent ending.
NUMBER = re.compile(r"[+-]?(\d+([.,:/-]\d+)*|\.\d+)(st|nd|rd|th|s|%)?")


def signature(form):
    """The unknown-word class of a word form (see the module docstring).

    >>> signature("Al-Zaman"), signature("preaching"), signature("3,000")
    ('<unk:cap:dash>', '<unk:lower:-ing>', '<unk:number>')
    """
    if URL.search(form):
        return "<unk:url>"
    if not any(c.isalnum() for c in form):
        return "<unk:punct>"
    if NUMBER.fullmatch(form):
        return "<unk:number>"
    letters = [c for c in form if c.isalpha()]
    if len(letters) > 1 and all(c.isupper() for c in letters):
        parts = ["caps"]
    elif form[0].isupper():
        parts = ["cap"]
    elif letters and all(c.islower() for c in letters):
        parts = ["lower"]
    else:
        parts = ["mixed"]
    if any(c.isdigit() for c in form):
        parts.append("digit")
    if "-" in form:
        parts.append("dash")
    lower = form.lower()
    suffix = next((s for s in SUFFIXES
                   if lower.endswith(s) and len(lower) >= len(s) + STEM_LETTERS), None)
    if suffix is not None:
        parts.append("-" + suffix)
    return "<unk:" + ":".join(parts) + ">"


class Vocabulary:
    """Word ids from the training sentences (see the module docstring).

    Parameters
    ----------
    sentences : list of list of (form, upos)
        The training split.
    min_count : int
    """

    def __init__(self, sentences, min_count=MIN_COUNT):
        exact = collections.Counter(form for s in sentences for form, _ in s)
        lower = collections.Counter(form.lower() for s in sentences for form, _ in s)
        counts = {f: c for f, c in lower.items() if c >= min_count}
        counts.update({f: c for f, c in exact.items() if c >= min_count})
        self.words = counts
        signatures = collections.Counter(
            signature(form) for s in sentences for form, _ in s if self._word(form) is None)
        kept = sorted(s for s, c in signatures.items() if c >= min_count)
        ranked = sorted(counts, key=lambda f: (-counts[f], f))
        self.tokens = [PAD, UNK, *kept, *ranked]
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.n_signatures = len(kept)

    def _word(self, form):
        if form in self.words:
            return form
        return form.lower() if form.lower() in self.words else None

    def __len__(self):
        return len(self.tokens)

    def encode(self, form):
        """``(id, known)``: the id of a form and whether it is a vocabulary word."""
        word = self._word(form)
        if word is not None:
            return self.ids[word], True
        return self.ids.get(signature(form), UNK_ID), False


class WordDropout:
    """Training ``collate``: trim the padding, then replace words by their signature at random.

    A word id of count ``c`` in train is replaced with probability
    ``alpha / (alpha + c)`` (1/3 for a word seen twice at ``alpha = 1``, 1% for one seen
    99 times) by the id of its signature (``<unk>`` if that is not kept): the
    signatures are trained on many more words, and rare words cannot be memorised.
    The random mask is a pure function of ``seed`` and the batch's ids (a generator
    seeded by both), so a run resumed from a checkpoint draws the same masks.

    Parameters
    ----------
    vocab : Vocabulary
    alpha : float
    seed : int
    """

    def __init__(self, vocab, alpha=WORD_DROPOUT, seed=0):
        self.seed = int(seed)
        self.probability = np.zeros(len(vocab))
        self.replacement = np.arange(len(vocab))
        for word, count in vocab.words.items():
            i = vocab.ids[word]
            self.probability[i] = alpha / (alpha + count)
            self.replacement[i] = vocab.ids.get(signature(word), UNK_ID)

    def __call__(self, x, y=None):
        """``(x, y)`` of a batch, trimmed; ``x`` with the dropped words replaced."""
        x, y = trim_padding(x, y, padding_id=PAD_ID)
        rng = np.random.default_rng([self.seed, zlib.crc32(x.tobytes())])
        drop = rng.random(x.shape) < self.probability[x]
        return np.where(drop, self.replacement[x], x), y


def encode(sentences, vocab):
    """``(x, y, lengths, unknown)``: padded ids and tags ``(n, L)``, lengths, OOV tokens."""
    tag_ids = {t: i for i, t in enumerate(UPOS_TAGS)}
    ids, tags, unknown = [], [], 0
    for sentence in sentences:
        coded = [vocab.encode(form) for form, _ in sentence]
        unknown += sum(not known for _, known in coded)
        ids.append([i for i, _ in coded])
        try:
            tags.append([tag_ids[upos] for _, upos in sentence])
        except KeyError as exc:
            raise RefodeError(f"UPOS tag {exc.args[0]!r} is not one of the 17 of UD v2 "
                              f"({', '.join(UPOS_TAGS)}); fix the treebank") from None
    return (pad_sequences(ids, PAD_ID), pad_sequences(tags, IGNORE),
            np.array([len(s) for s in sentences]), unknown)


def find_split(data, split):
    """The one ``*-ud-<split>.conllu`` or ``.conllu.xz`` file of the folder ``data``."""
    found = sorted(glob.glob(os.path.join(data, f"*-ud-{split}.conllu")) +
                   glob.glob(os.path.join(data, f"*-ud-{split}.conllu.xz")))
    if len(found) != 1:
        raise RefodeError(f"`--data` {data} must hold one *-ud-{split}.conllu[.xz] file, "
                          f"found {len(found)}; pass the treebank's folder")
    return found[0]


def by_length(x, y, lengths):
    """``(x, y)`` sorted by sentence length (evaluation batches are then barely padded)."""
    order = np.argsort(lengths, kind="stable")
    return x[order], y[order]


def load(folder, max_sentences=0):
    """Read the splits, build the vocabulary, encode.

    Parameters
    ----------
    folder : str
        Holds ``*-ud-{train,dev,test}.conllu[.xz]``.
    max_sentences : int
        Keep only the first training sentences (0: all).

    Returns
    -------
    data : dict
        ``"vocab"``: the :class:`Vocabulary`; ``"train"``: ``(x, y, lengths)`` in file
        order; ``"dev"``, ``"test"``: ``(x, y)`` sorted by length (``x`` ids ``(n, L)``,
        ``y`` tags ``(n, L)`` with ``-100`` at padding).
    stats : dict
        Sentences, tokens, unknown-token fraction and file of every split; vocabulary
        sizes.
    """
    sentences = {s: read_conllu(find_split(folder, s)) for s in SPLITS}
    if max_sentences:
        sentences["train"] = sentences["train"][:max_sentences]
    vocab = Vocabulary(sentences["train"])
    data, stats = {"vocab": vocab}, {}
    for split, sents in sentences.items():
        x, y, lengths, unknown = encode(sents, vocab)
        data[split] = (x, y, lengths) if split == "train" else by_length(x, y, lengths)
        stats[split] = {"sentences": len(sents), "tokens": int(lengths.sum()),
                        "unknown": unknown / max(int(lengths.sum()), 1),
                        "file": find_split(folder, split)}
    stats["vocabulary"] = {"size": len(vocab), "signatures": vocab.n_signatures,
                           "words": len(vocab.words)}
    return data, stats
