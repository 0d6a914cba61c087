"""``batchnorm`` (training and evaluation forms) and their VJPs on every backend.

Backends are compared with the NumPy definition within 1e-12 (float64) / 1e-5
(float32), relative: the reference sums with NumPy's pairwise summation, the kernels
serially, so the arithmetic order differs.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refode.kernels import COMPILED, get

from .vjp_checks import (
    assert_close,
    assert_dot_product_identity,
    assert_finite_differences,
    assert_thread_count_invariant,
    run_outputs,
)
from tests.profiles import examples

KERNELS = ("batchnorm", "batchnorm.batchnorm_eval", "batchnorm.batchnorm_vjp",
           "batchnorm.batchnorm_eval_vjp")
#: (N, C, H, W) per backend: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": (4, 6, 5, 3), "cuda": (2, 3, 2, 2)}
#: large enough that the channel loop is split between threads.
THREAD_SHAPE = (8, 16, 6, 6)


def _case(rng, shape, dtype=np.float64):
    c = shape[1]
    x, dy = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta, mean = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    var = (rng.random(c) + 0.5).astype(dtype)
    per_c = [gamma] * 4
    return {
        "batchnorm": ((x, gamma, beta), [x] + per_c[:2]),
        "batchnorm.batchnorm_eval": ((x, gamma, beta, mean, var), [x]),
        "batchnorm.batchnorm_vjp": ((x, gamma, dy), [x] + per_c[:2]),
        "batchnorm.batchnorm_eval_vjp": ((x, gamma, mean, var, dy), [x] + per_c),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            cases = _case(np.random.default_rng(0), (2, 2, 1, 1), dtype)
            for kernel, (args, outs) in cases.items():
                run_outputs(get(kernel, "cpu"), args, outs)

    warmup("batchnorm", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", KERNELS)
def test_backends_agree_with_definition(backend, dtype, kernel, rng):
    args, outs = _case(rng, SHAPES[backend], dtype)[kernel]
    expected = run_outputs(get(kernel, "reference"), args, outs)
    for actual, want in zip(run_outputs(get(kernel, backend), args, outs), expected):
        assert actual.dtype == dtype
        assert_close(actual, want)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cpu_is_bitwise_independent_of_thread_count(kernel, rng):
    args, outs = _case(rng, THREAD_SHAPE)[kernel]
    assert_thread_count_invariant(get(kernel, "cpu"), args, outs)


def _op(form, backend):
    """(forward over named inputs, vjp over named inputs) of one form."""
    names = ("x", "gamma", "beta") + (("mean", "var") if form == "eval" else ())
    fwd = get("batchnorm" if form == "train" else "batchnorm.batchnorm_eval", "reference")
    vjp = get("batchnorm.batchnorm_vjp" if form == "train" else "batchnorm.batchnorm_eval_vjp",
              backend)

    def forward(inp):
        x = inp["x"]
        outs = [np.empty(x.shape, x.dtype)] + (
            [np.empty(x.shape[1], x.dtype) for _ in range(2)] if form == "train" else [])
        fwd(*(inp[k] for k in names), *outs)
        return outs[:1]

    def gradient(inp, cot):
        x = inp["x"]
        grads = [np.empty_like(x)] + [np.empty(x.shape[1]) for _ in names[1:]]
        if form == "train":
            vjp(x, inp["gamma"], cot[0], *grads)
        else:
            vjp(x, inp["gamma"], inp["mean"], inp["var"], cot[0], *grads[:3], *grads[3:])
        return dict(zip(names, grads))

    return names, forward, gradient


def _inputs(names, shape, rng):
    inp = {k: rng.standard_normal(shape if k == "x" else shape[1]) for k in names}
    if "var" in inp:
        inp["var"] = rng.random(shape[1]) + 0.5
    return inp


_shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 3))


@settings(max_examples=examples(10))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1), form=st.sampled_from(["train", "eval"]),
       backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_dot_product_identity(shape, seed, form, backend):
    if form == "train" and shape[0] * shape[2] * shape[3] < 2:
        shape = (2,) + shape[1:]  # the batch variance needs two values per channel
    rng = np.random.default_rng(seed)
    names, forward, gradient = _op(form, backend)
    assert_dot_product_identity(forward, gradient, _inputs(names, shape, rng), rng)


@settings(max_examples=examples(6))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1), form=st.sampled_from(["train", "eval"]),
       backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_matches_finite_differences(shape, seed, form, backend):
    if form == "train":
        shape = (max(2, shape[0]),) + shape[1:]
    rng = np.random.default_rng(seed)
    names, forward, gradient = _op(form, backend)
    assert_finite_differences(forward, gradient, _inputs(names, shape, rng), rng)


def test_agrees_with_torch_training_and_eval(rng):
    torch = pytest.importorskip("torch")
    f = torch.nn.functional
    shape = (4, 3, 5, 2)
    names = ("x", "gamma", "beta", "mean", "var")
    inp = _inputs(names, shape, rng)
    dy = rng.standard_normal(shape)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inp.items()}
    for form in ("train", "eval"):
        keys, forward, gradient = _op(form, "cpu")
        running_mean = torch.zeros(3, dtype=torch.float64)
        running_var = torch.ones(3, dtype=torch.float64)
        if form == "train":
            ty = f.batch_norm(t["x"], running_mean, running_var, t["gamma"], t["beta"],
                              training=True, momentum=1.0, eps=1e-5)
            y, mean, var = (np.empty(s) for s in (shape, 3, 3))
            get("batchnorm", "cpu")(inp["x"], inp["gamma"], inp["beta"], y, mean, var)
            np.testing.assert_allclose(mean, running_mean.numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(var, running_var.numpy(), rtol=1e-12, atol=1e-12)
        else:
            ty = f.batch_norm(t["x"], t["mean"].detach(), t["var"].detach(), t["gamma"], t["beta"],
                              training=False, eps=1e-5)
            # torch's batch_norm has no gradient for the running statistics: the same
            # function written out, for d(mean) and d(var)
            c = (slice(None), None, None)
            explicit = (t["x"] - t["mean"][c]) / torch.sqrt(t["var"][c] + 1e-5) * t["gamma"][c]
            ty_stats = explicit + t["beta"][c]
            np.testing.assert_allclose(ty_stats.detach().numpy(), ty.detach().numpy(),
                                       rtol=1e-12, atol=1e-12)
            ty = ty_stats
        np.testing.assert_allclose(forward(inp)[0], ty.detach().numpy(), rtol=1e-12, atol=1e-12)
        want = torch.autograd.grad(ty, [t[k] for k in keys], torch.tensor(dy))
        got = gradient(inp, [dy])
        for k, w in zip(keys, want):
            np.testing.assert_allclose(got[k], w.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
