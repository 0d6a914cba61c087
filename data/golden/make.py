"""Regenerate the golden corpus of ``data/golden/`` (fixed seeds; bitwise reproducible).

    python data/golden/make.py [OUT_DIR]        # default: the folder of this script

Each case is a small model of one family with a basis, a scheme, a step count, a dtype and
a mode; the file name says which (``net_*``: ContinuousNet, ``tagger_*``:
ContinuousTagger). Other implementations check themselves against these files with
``pytest --refode-golden data/golden`` (``docs/testing.md``) or ``refode check``.
``tests/testing/test_corpus.py`` regenerates the corpus and compares it bitwise with the
committed files, so any drift in refode's numerics is caught.

The bits depend on more than refode: the gradients' matrix products run in the BLAS that
NumPy loads (OpenBLAS picks its kernels for the CPU, and kernels for different CPUs sum
in different orders), and NumPy's own loops dispatch on the CPU's SIMD extensions.
:func:`make` therefore also writes :data:`MACHINE_FILE`, :func:`machine`'s description of
those libraries; the test compares bitwise where the regenerating machine's description
equals the committed one, and within a few units of round-off otherwise (measured: an
AVX2 machine's results differ from an AVX-512 machine's in the gradients and in the
tagger's outputs, by at most one epsilon of the file's largest magnitude; the
ContinuousNet outputs agree bitwise).
"""
import json
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


#: the file beside the corpus that describes the libraries it was made with (:func:`machine`).
MACHINE_FILE = "MACHINE.json"


def machine():
    """What the corpus's bits depend on besides refode: ``{"blas": [[library, version, kernel
    architecture], ...], "numpy": version, "numpy_simd": [extensions in use]}`` (NumPy's
    BLAS as threadpoolctl, which scikit-learn brings, reports it; ``None`` without it)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = None
    else:  # NumPy's own BLAS where it can be told apart (SciPy may load another)
        pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        numpys = [p for p in pools
                  if os.path.basename(os.path.dirname(p.get("filepath", ""))).startswith("numpy")]
        blas = sorted([p.get("internal_api"), p.get("version"), p.get("architecture")]
                      for p in numpys or pools)
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy < 2
        from numpy.core import _multiarray_umath as umath
    features = getattr(umath, "__cpu_features__", {})
    dispatch = list(getattr(umath, "__cpu_baseline__", [])) + list(
        getattr(umath, "__cpu_dispatch__", []))
    return {"blas": blas, "numpy": np.__version__,
            "numpy_simd": sorted({f for f in dispatch if features.get(f)})}


def make(out_dir):
    """Write every case of :data:`CASES` to ``out_dir/<name>.h5`` and :func:`machine` to
    ``out_dir/MACHINE.json``; returns the paths of the HDF5 files."""
    from refode.testing import write_golden

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for name, (config, dtype, mode) in CASES.items():
        path = os.path.join(out_dir, f"{name}.h5")
        write_golden(path, config, mode=mode, seed=INPUT_SEED, batch=BATCH, dtype=dtype,
                     model_seed=MODEL_SEED)
        paths.append(path)
    target = os.path.join(out_dir, MACHINE_FILE)
    with open(target + ".tmp", "w") as fh:  # temp file + rename: never half a file
        json.dump(machine(), fh, indent=1)
        fh.write("\n")
    os.replace(target + ".tmp", target)
    return paths


if __name__ == "__main__":
    target = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for p in make(target):
        print(p, os.path.getsize(p))
