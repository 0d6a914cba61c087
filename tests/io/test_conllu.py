"""CoNLL-U reader: words and UPOS of hand-written files (plain and .xz), multiword tokens
and empty nodes skipped, malformed lines named by path and line number."""
import lzma

import pytest

from refode.errors import FormatError
from refode.io import UPOS_TAGS, read_conllu


def _line(*fields):
    return "\t".join(fields)


def _word(i, form, upos):
    return _line(str(i), form, form.lower(), upos, "_", "_", "0", "dep", "_", "_")


#: two sentences: a multiword token ("don't" = do + n't), an empty node 2.1, comments,
#: Windows line ends on one line, and no blank line after the last sentence.
TEXT = "\n".join([
    "# newdoc id = test",
    "# sent_id = 1",
    "# text = I don't know.",
    _word(1, "I", "PRON"),
    _line("2-3", "don't", "_", "_", "_", "_", "_", "_", "_", "_"),
    _word(2, "do", "AUX"),
    _line("2.1", "know", "know", "VERB", "_", "_", "_", "_", "0:root", "_"),
    _word(3, "n't", "PART") + "\r",
    _word(4, "know", "VERB"),
    _word(5, ".", "PUNCT"),
    "",
    "",
    "# sent_id = 2",
    _word(1, "Hi", "INTJ"),
])
WANT = [[("I", "PRON"), ("do", "AUX"), ("n't", "PART"), ("know", "VERB"), (".", "PUNCT")],
        [("Hi", "INTJ")]]


def test_reads_words_and_upos_skipping_comments_ranges_and_empty_nodes(tmp_path):
    path = tmp_path / "a.conllu"
    path.write_text(TEXT, encoding="utf-8")
    assert read_conllu(path) == WANT


def test_reads_xz_compressed_files_alike(tmp_path):
    path = tmp_path / "a.conllu.xz"
    with lzma.open(path, "wt", encoding="utf-8") as fh:
        fh.write(TEXT + "\n\n")
    assert read_conllu(str(path)) == WANT


def test_utf8_forms_and_the_seventeen_tags(tmp_path):
    path = tmp_path / "u.conllu"
    path.write_text(_word(1, "naïve", "ADJ") + "\n" + _word(2, "€", "SYM") + "\n\n",
                    encoding="utf-8")
    assert read_conllu(path) == [[("naïve", "ADJ"), ("€", "SYM")]]
    assert len(UPOS_TAGS) == 17 and "PROPN" in UPOS_TAGS


@pytest.mark.parametrize("bad,message", [
    ("1\tI\tI\tPRON\t_\t_\t0\troot\t_", "line 3: 9 tab-separated columns"),
    ("1 I I PRON _ _ 0 root _ _", "line 3: 1 tab-separated columns"),
    (_word("x", "I", "PRON"), "line 3: ID 'x'"),
    (_word(2, "I", "PRON"), "line 3: word ID 2 where 1 was expected"),
    (_word(1, "I", "_"), "line 3: empty FORM or UPOS"),
])
def test_malformed_lines_name_the_path_and_line(tmp_path, bad, message):
    path = tmp_path / "bad.conllu"
    path.write_text("# sent_id = 1\n# text = I\n" + bad + "\n\n", encoding="utf-8")
    with pytest.raises(FormatError, match=message) as info:
        read_conllu(path)
    assert str(path) in str(info.value)


def test_word_numbers_restart_in_every_sentence_and_must_not_skip(tmp_path):
    path = tmp_path / "gap.conllu"
    path.write_text("\n".join([_word(1, "a", "DET"), "", _word(1, "b", "X"),
                               _word(3, "c", "X")]), encoding="utf-8")
    with pytest.raises(FormatError, match="line 4: word ID 3 where 2"):
        read_conllu(path)


def test_unreadable_files_raise_format_error(tmp_path):
    with pytest.raises(FormatError, match="cannot be read"):
        read_conllu(tmp_path / "missing.conllu")
    broken = tmp_path / "broken.conllu.xz"
    broken.write_bytes(b"not xz at all")
    with pytest.raises(FormatError, match="broken.conllu.xz"):
        read_conllu(broken)
    latin = tmp_path / "latin1.conllu"
    latin.write_bytes(_word(1, "na\xefve", "ADJ").encode("latin-1"))
    with pytest.raises(FormatError, match="UTF-8"):
        read_conllu(latin)
