"""Smoke test of validation/tagging.py on a tiny synthetic treebank: the report's keys,
the tables, the files written, and a resumed run that reproduces the numbers."""
import json
import lzma

import numpy as np
import pytest

import refode
from validation import tagging

#: a toy grammar: DET ADJ? NOUN VERB (ADP DET NOUN)? PUNCT.
WORDS = {"DET": ["the", "a", "The"], "ADJ": ["big", "red", "old"],
         "NOUN": ["dog", "cat", "Paris", "walking"], "VERB": ["runs", "sleeps", "eats"],
         "ADP": ["in", "on"], "PUNCT": [".", "!"]}


def _sentence(rng):
    tags = ["DET"] + (["ADJ"] if rng.random() < 0.5 else []) + ["NOUN", "VERB"]
    tags += ["ADP", "DET", "NOUN"] if rng.random() < 0.5 else []
    return [(WORDS[t][rng.integers(len(WORDS[t]))], t) for t in tags + ["PUNCT"]]


def _conllu(sentences):
    blocks = []
    for i, sentence in enumerate(sentences):
        lines = [f"# sent_id = {i}"]
        lines += [f"{j}\t{form}\t_\t{upos}\t_\t_\t0\tdep\t_\t_"
                  for j, (form, upos) in enumerate(sentence, start=1)]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n\n"


@pytest.fixture(scope="module")
def treebank(tmp_path_factory):
    folder = tmp_path_factory.mktemp("toy_ud")
    rng = np.random.default_rng(0)
    (folder / "toy-ud-train.conllu").write_text(_conllu([_sentence(rng) for _ in range(40)]),
                                                encoding="utf-8")
    for split in ("dev", "test"):
        with lzma.open(folder / f"toy-ud-{split}.conllu.xz", "wt", encoding="utf-8") as fh:
            fh.write(_conllu([_sentence(rng) for _ in range(8)]))
    return folder


def _args(data, out, *extra):
    return ["--data", str(data), "--out", str(out), "--width", "8", "--ffn", "8",
            "--epochs", "1,1", "--warmup", "2", "--batch-tokens", "40", "--quiet",
            "--workers", "0", *extra]


def test_main_writes_report_tables_and_model(treebank, tmp_path, capsys):
    report = tagging.main(_args(treebank, tmp_path))
    assert {"command", "seed", "refode_revision", "settings", "data", "summary", "history",
            "compression", "steps", "seconds"} <= report.keys()
    assert report["command"].startswith("python validation/tagging.py --data ")
    assert [h["n_basis"] for h in report["history"]] == [1, 2]
    assert all(0.0 <= h["train_accuracy"] <= 1.0 for h in report["history"])
    # compression at K_full = 2: the trained model, piecewise constant K = 1, FEM and DG
    # K = 2, each by projection and interpolation; steps: 3 schemes x N = 1, 2
    assert [(r["basis"], r["n_basis"], r["method"]) for r in report["compression"]] == [
        ("piecewise_constant", 2, "trained"),
        ("piecewise_constant", 1, "projection"), ("piecewise_constant", 1, "interpolation"),
        ("fem_linear", 2, "projection"), ("fem_linear", 2, "interpolation"),
        ("piecewise_linear", 2, "projection"), ("piecewise_linear", 2, "interpolation")]
    assert {(r["scheme"], r["n_steps"]) for r in report["steps"]} == {
        (s, n) for s in ("euler", "midpoint", "rk4") for n in (1, 2)}
    for r in report["compression"] + report["steps"]:
        assert set(r) == {k for k, _ in tagging.COLUMNS} and 0.0 <= r["accuracy"] <= 1.0
    assert report["compression"][1]["depth_parameters"] * 2 == \
        report["compression"][0]["depth_parameters"]

    on_disk = json.loads((tmp_path / "report.json").read_text())
    assert on_disk["summary"] == report["summary"]
    tables = (tmp_path / "tables.md").read_text()
    assert tables.count("| basis | K | method |") == 2 and tables in capsys.readouterr().out
    model = refode.load(tmp_path / "model.h5")
    assert (model.basis.n, model.n_steps, model.rate.width) == (2, 2, 8)
    assert (tmp_path / "checkpoint.h5").exists()

    # resuming the finished run trains nothing and reproduces the numbers
    again = tagging.main(_args(treebank, tmp_path, "--resume"))
    assert again["history"] == report["history"]
    assert [r["accuracy"] for r in again["compression"]] == \
        [r["accuracy"] for r in report["compression"]]


def test_missing_split_names_the_folder(tmp_path):
    with pytest.raises(refode.RefodeError, match="train"):
        tagging.main(["--data", str(tmp_path), "--out", str(tmp_path / "o"), "--quiet"])


class _SweepCalled(Exception):
    """Raised by the stand-in of run_sweep, carrying its keyword arguments."""


@pytest.mark.parametrize("extra,wanted", [([], False), (["--retry-failed"], True)])
def test_retry_failed_reaches_the_sweep(monkeypatch, tmp_path, extra, wanted):
    def stop(*a, **kw):
        raise _SweepCalled(kw)

    monkeypatch.setattr(tagging, "sweep_grids", lambda model: ([], []))
    monkeypatch.setattr(tagging, "run_sweep", stop)
    args = tagging.parse_args(["--data", str(tmp_path), "--out", str(tmp_path)] + extra)
    with pytest.raises(_SweepCalled) as called:
        tagging.sweep_tables(args, None, np.zeros((1, 2)), np.zeros((1, 2)), None)
    assert called.value.args[0]["retry_failed"] is wanted
