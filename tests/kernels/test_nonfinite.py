"""NaN and Inf propagation, one table row per kernel: every backend, the definition's pattern.

Each row puts a NaN (or an Inf) into one entry of one input. The definition says which
outputs that entry touches: those become NaN (a NaN in, NaN out), the others stay as
they were. The NumPy reference states it; the CPU and CUDA kernels must give the same
pattern of NaN and Inf entries, and the reference must show the NaN where the table
says it goes, so a kernel that drops or spreads a NaN fails.
"""
import numpy as np
import pytest

from refode.kernels import COMPILED, get

from .vjp_checks import run_outputs

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # NaN arithmetic, on purpose


def _r(rng, *shape):
    return rng.standard_normal(shape)


def _csr():
    indptr, indices = np.array([0, 2, 3, 5]), np.array([0, 1, 1, 0, 2])
    return indptr, indices, np.array([0.5, 2.0, -1.0, 1.5, 3.0])


def _cases(rng):
    """``(kernel, args, output templates, (arg index, entry, value), touched)``.

    ``touched`` lists, per output, an index expression that must be NaN or Inf in the
    reference (None: that output must stay finite)."""
    x4, g4 = _r(rng, 2, 3, 4, 5), _r(rng, 2, 3, 4, 5)
    x2, w, g2 = _r(rng, 4, 5), _r(rng, 3, 5), _r(rng, 4, 3)
    ln, z = _r(rng, 2, 3, 6), _r(rng, 4, 7)
    t = np.array([1, 0, 6, 2])
    ids = np.array([[0, 2, 1], [2, 2, 0]])
    att, wq = _r(rng, 2, 3, 4), _r(rng, 4, 4, 4) / 2
    conv_g = _r(rng, 2, 2, 4, 5)
    rows = [
        ("activation.gelu", (x2,), [x2], (0, (1, 2), np.nan), [(1, 2)]),
        ("activation.elu_vjp", (x2, g2[:, :1] * x2), [x2], (1, (0, 0), np.nan), [(0, 0)]),
        ("combine", (*_csr(), _r(rng, 3, 4)), [np.empty((3, 4))], (3, (1, 2), np.nan),
         [(slice(0, 2), 2)]),
        ("embedding", (ids, _r(rng, 3, 4)), [np.empty((2, 3, 4))], (1, (2, 1), np.nan),
         [((0, 1, 1), (1, 0, 1), 1)]),
        ("embedding.embedding_vjp", (ids, _r(rng, 2, 3, 4)), [np.empty((3, 4))],
         (1, (0, 0, 3), np.nan), [(0, 3)]),
        ("avgpool", (x4,), [np.empty((2, 3))], (0, (1, 2, 0, 0), np.inf), [(1, 2)]),
        ("avgpool.avgpool_vjp", (_r(rng, 2, 3),), [x4], (0, (0, 1), np.nan), [(0, 1)]),
        ("avgpool", (x4,), [np.empty((2, 3))], (0, (1, 2, 0, 0), np.nan), [(1, 2)]),
        ("dense", (x2, w, _r(rng, 3)), [np.empty((4, 3))], (0, (2, 1), np.nan), [(2,)]),
        ("dense.dense_vjp", (x2, w, g2), [x2, w, np.empty(3)], (2, (1, 0), np.nan),
         [(1,), (0,), (0,)]),
        ("batchnorm", (x4, _r(rng, 3), _r(rng, 3)), [x4, np.empty(3), np.empty(3)],
         (0, (0, 1, 2, 3), np.nan), [(slice(None), 1), (1,), (1,)]),
        ("batchnorm.batchnorm_eval_vjp", (x4, _r(rng, 3), _r(rng, 3), np.ones(3), g4),
         [x4] + [np.empty(3)] * 4, (4, (1, 0, 0, 0), np.nan),
         [(1, 0, 0, 0), (0,), (0,), (0,), (0,)]),
        ("layernorm", (ln, _r(rng, 6), _r(rng, 6)), [ln], (0, (1, 2, 0), np.nan), [(1, 2)]),
        ("layernorm.layernorm_vjp", (ln, _r(rng, 6), _r(rng, 2, 3, 6)), [ln, np.empty(6),
         np.empty(6)], (2, (0, 0, 4), np.nan), [(0, 0), (4,), (4,)]),
        ("cross_entropy", (z, t), [np.empty(())], (0, (2, 3), np.nan), [()]),
        ("cross_entropy.cross_entropy_vjp", (z, t, 1.0), [z], (0, (2, 3), np.inf), [(2,)]),
        ("attention", (att, wq, _r(rng, 4, 4), None, 2), [att], (0, (1, 2, 3), np.nan),
         [(1,)]),
        ("attention.attention_vjp", (att, wq, None, None, 2, _r(rng, 2, 3, 4)),
         [att, wq, None], (5, (0, 1, 0), np.nan), [(0,), (3, 0), None]),
        ("conv2d", (x4, _r(rng, 2, 3, 3, 3), 1, 1), [conv_g], (0, (0, 2, 1, 1), np.nan),
         [(0, slice(None), slice(0, 3), slice(0, 3))]),
        ("conv2d.conv2d_vjp", (x4, _r(rng, 2, 3, 3, 3), conv_g, 1, 1), [x4, _r(rng, 2, 3, 3, 3)],
         (2, (1, 0, 2, 2), np.nan), [(1, slice(None), slice(1, 4), slice(1, 4)), (0,)]),
    ]
    return rows


_ROWS = _cases(np.random.default_rng(0))


@pytest.mark.parametrize("row", range(len(_ROWS)), ids=[f"{r[0]}-{r[3][2]}" for r in _ROWS])
@pytest.mark.parametrize("backend", COMPILED)
def test_nonfinite_inputs_propagate_as_defined(backend, row, rng):
    kernel, args, templates, (which, entry, value), touched = _cases(rng)[row]
    args = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in args]
    args[which][entry] = value
    expected = run_outputs(get(kernel, "reference"), args, templates)
    actual = run_outputs(get(kernel, backend), args, templates)
    for e, a, where in zip(expected, actual, touched):
        if e is None:
            continue
        if where is None:
            assert np.all(np.isfinite(e))
        else:
            assert not np.any(np.isfinite(e[where])), (kernel, where)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(e))
        np.testing.assert_array_equal(np.isinf(a), np.isinf(e))
