"""refode.testing.strategies: every example is valid for refode, and hypothesis stays optional."""
import subprocess
import sys
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import refode
from refode.io import layout
from refode.testing import build_model
from refode.testing import strategies as rst

from .conftest import ROOT
from tests.profiles import examples

FEW = settings(max_examples=examples(15), deadline=None)


def test_valid_sizes_follow_the_families():
    assert rst.valid_sizes("piecewise_linear", 6) == (2, 4, 6)
    assert rst.valid_sizes("fourier", 6) == (1, 3, 5)
    assert rst.valid_sizes("poly_linear", 6) == (2,)
    assert rst.valid_sizes("fem_linear", 3) == (2, 3)


@FEW
@given(rst.bases(max_n=6, interval="random"))
def test_bases_are_valid(basis):
    assert basis.family in refode.families() and 1 <= basis.n <= 6
    assert basis.t0 < basis.t1
    assert refode.basis(basis.family, basis.n, basis.interval).same_as(basis)


@FEW
@given(st.data())
def test_coefficients_fit_the_basis(data):
    basis = data.draw(rst.bases(max_n=5))
    coefs = data.draw(rst.coefficients(basis, (2, 3), dtype="float32", bound=2.0))
    assert coefs.shape == (basis.n, 2, 3) and coefs.dtype == np.float32
    assert np.all(np.abs(coefs) <= 2.0)


@settings(max_examples=examples(40), deadline=None)
@given(rst.random_tableaus())
def test_random_tableaus_are_valid_explicit_methods(tab):
    s = tab.stages
    assert all(tab.a[i][j] == 0 for i in range(s) for j in range(i, s))
    assert all(sum(tab.a[i], Fraction(0)) == tab.c[i] for i in range(s))
    assert all(0 <= c <= 1 for c in tab.c) and sum(tab.b, Fraction(0)) == 1


@FEW
@given(rst.any_tableaus(), rst.step_counts(4))
def test_tableaus_integrate_a_constant_rate_exactly(tab, n_steps):
    """Any consistent explicit method integrates dh/dt = b (constant) exactly."""
    b1 = refode.basis("piecewise_constant", 1)
    rate = refode.rates.DenseTanh()
    weights = {"W": np.zeros((1, 2, 2)), "b": np.full((1, 2), 0.5)}
    h = refode.odeint(rate, np.zeros((1, 2)), weights, b1, scheme=tab, n_steps=n_steps)
    np.testing.assert_allclose(h, np.tanh(0.5), rtol=1e-12)


@FEW
@given(rst.model_configs())
def test_model_configs_build_and_round_trip(cfg):
    model = build_model(cfg)
    family, saved = layout.config_of(model)
    assert family == cfg["model"]
    for key, value in cfg.items():
        if key not in ("model", "seed"):
            assert saved[key] == (list(value) if isinstance(value, tuple) else value), key


@FEW
@given(st.data())
def test_inputs_fit_the_models(data):
    model = data.draw(rst.models())
    x, y = data.draw(rst.inputs_for(model))
    if isinstance(model, refode.models.ContinuousNet):
        assert x.ndim == 4 and x.dtype == model.dtype and x.shape[0] == y.shape[0] >= 2
        assert x.shape[1] == model.params["stem_conv.weight"].shape[1]
        assert np.all((0 <= y) & (y < model.params["dense.bias"].shape[0]))
    else:
        assert x.shape == y.shape and np.all((0 <= x) & (x < model.vocab_size))
        assert np.all(y[x == model.padding_id] == -100)
        assert np.all((y == -100) | ((0 <= y) & (y < model.n_tags)))


@settings(max_examples=examples(5), deadline=None)
@given(st.data())
def test_saved_models_load_bitwise(tmp_path_factory, data):
    saved = data.draw(rst.saved_models(directory=tmp_path_factory.mktemp("saved")))
    loaded = refode.load(saved.path)
    assert type(loaded) is type(saved.model)
    for name, value in saved.model.params.items():
        np.testing.assert_array_equal(loaded.params[name], value)


def _python(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def test_hypothesis_is_not_imported_by_refode_and_its_absence_is_explained():
    proc = _python("import sys, refode, refode.testing; "
                   "assert 'hypothesis' not in sys.modules, 'hypothesis imported'; "
                   "sys.modules['hypothesis'] = None; import refode.testing.strategies")
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last == ("ImportError: refode.testing.strategies needs hypothesis: "
                    "pip install refode[testing]"), proc.stderr
