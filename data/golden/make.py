"""Regenerate the golden corpus of ``data/golden/`` (fixed seeds; bitwise reproducible).

    python data/golden/make.py [OUT_DIR]        # default: the folder of this script

Each case is a small model of one family with a basis, a scheme, a step count, a dtype and
a mode; the file name says which (``net_*``: ContinuousNet, ``tagger_*``:
ContinuousTagger). Other implementations check themselves against these files with
``pytest --refode-golden data/golden`` (``docs/testing.md``) or ``refode check``.
``tests/testing/test_corpus.py`` regenerates the corpus and compares it bitwise with the
committed files, so any drift in refode's numerics is caught.
"""
import os
import sys

#: seed of every model's initialisation and of every batch of inputs.
MODEL_SEED, INPUT_SEED = 7, 11
#: batch of every case.
BATCH = 3

#: ``name: (config, dtype, mode)``; a ``"model"`` key of the config names the family.
CASES = {
    "net_pc2_rk4_n2_f64_train": (
        {"in_channels": 2, "n_classes": 3, "widths": [2, 3], "basis": "piecewise_constant",
         "n_basis": 2, "scheme": "rk4", "n_steps": 2}, "float64", "train"),
    "net_pc7_euler_n7_f64_train": (
        {"in_channels": 1, "n_classes": 2, "widths": [2], "basis": "piecewise_constant",
         "n_basis": 7, "scheme": "euler", "n_steps": 7}, "float64", "train"),
    "net_pc3_ssprk3_n2_f32_eval": (
        {"in_channels": 2, "n_classes": 3, "widths": [2, 2], "basis": "piecewise_constant",
         "n_basis": 3, "scheme": "ssprk3", "n_steps": 2, "padding": "same",
         "stitch_scale": 0.5}, "float32", "eval"),
    "net_fem3_midpoint_n3_f32_eval": (
        {"in_channels": 2, "n_classes": 3, "widths": [2, 3], "basis": "fem_linear",
         "n_basis": 3, "scheme": "midpoint", "n_steps": 3, "padding": "same",
         "head_activation": "relu"}, "float32", "eval"),
    "net_legendre2_heun_n1_f64_eval": (
        {"in_channels": 1, "n_classes": 2, "widths": [2], "basis": "legendre", "n_basis": 2,
         "scheme": "heun", "n_steps": 1, "rate_scale": 0.5, "stitch_scale": 0.25},
        "float64", "eval"),
    "net_pl4_rk438_n3_f32_train": (
        {"in_channels": 1, "n_classes": 2, "widths": [3], "basis": "piecewise_linear",
         "n_basis": 4, "scheme": "rk4_38", "n_steps": 3}, "float32", "train"),
    "tagger_cheb3_kutta3_n2_f64": (
        {"model": "ContinuousTagger", "vocab_size": 7, "n_tags": 3, "width": 4, "heads": 2,
         "ffn": 5, "basis": "chebyshev", "n_basis": 3, "scheme": "kutta3", "n_steps": 2,
         "attention_bias": True}, "float64", "train"),
    "tagger_fourier3_ssprk3_n2_f32": (
        {"model": "ContinuousTagger", "vocab_size": 6, "n_tags": 2, "width": 2, "heads": 1,
         "ffn": 3, "basis": "fourier", "n_basis": 3, "scheme": "ssprk3", "n_steps": 2,
         "rate": "pre_ln", "ln_eps": 1e-6}, "float32", "eval"),
    "tagger_poly2_ralston_n3_f64": (
        {"model": "ContinuousTagger", "vocab_size": 5, "n_tags": 2, "width": 3, "heads": 1,
         "ffn": 2, "basis": "poly_linear", "n_basis": 2, "interval": [0.5, 1.5],
         "scheme": "ralston", "n_steps": 3, "padding_id": 4}, "float64", "train"),
}


def make(out_dir):
    """Write every case of :data:`CASES` to ``out_dir/<name>.h5``; returns the paths."""
    from refode.testing import write_golden

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, (config, dtype, mode) in CASES.items():
        path = os.path.join(out_dir, f"{name}.h5")
        write_golden(path, config, mode=mode, seed=INPUT_SEED, batch=BATCH, dtype=dtype,
                     model_seed=MODEL_SEED)
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for p in make(target):
        print(p, os.path.getsize(p))
