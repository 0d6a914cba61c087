"""``cross_entropy`` (mean over non-ignored targets) and its VJP on every backend.

Backends are compared with the NumPy definition within 1e-12 (float64) / 1e-5
(float32), relative: the reference sums with NumPy's pairwise summation.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refode.kernels import BACKENDS, COMPILED, get

from .vjp_checks import (
    assert_close,
    assert_dot_product_identity,
    assert_finite_differences,
    assert_thread_count_invariant,
    run_outputs,
)
from tests.profiles import examples

KERNELS = ("cross_entropy", "cross_entropy.cross_entropy_vjp")
#: logits shapes per backend, (B, L, C) and (N, C): the CUDA simulator is slow.
SHAPES = {"cpu": [(3, 7, 11), (20, 5)], "cuda": [(2, 3, 4), (5, 3)]}
#: enough rows to split between threads.
THREAD_SHAPE = (16, 64, 9)
IGNORE = -100


def _case(rng, shape, dtype=np.float64, ignore_index=IGNORE):
    logits = (3 * rng.standard_normal(shape)).astype(dtype)
    targets = rng.integers(0, shape[-1], shape[:-1])
    targets[rng.random(shape[:-1]) < 0.3] = ignore_index
    return {
        "cross_entropy": ((logits, targets), [np.empty((), dtype)]),
        "cross_entropy.cross_entropy_vjp": ((logits, targets, 1.7), [logits]),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            for shape in [(1, 2, 2), (2, 2)]:
                for kernel, (args, outs) in _case(np.random.default_rng(0), shape, dtype).items():
                    run_outputs(get(kernel, "cpu"), args, outs)

    warmup("cross_entropy", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", KERNELS)
def test_backends_agree_with_definition(backend, dtype, kernel, rng):
    for shape in SHAPES[backend]:
        args, outs = _case(rng, shape, dtype)[kernel]
        expected = run_outputs(get(kernel, "reference"), args, outs)
        for actual, want in zip(run_outputs(get(kernel, backend), args, outs), expected):
            assert actual.dtype == dtype
            assert_close(actual, want)


@pytest.mark.parametrize("backend", BACKENDS)
def test_all_ignored_gives_zero_loss_and_gradient(backend, rng):
    logits = rng.standard_normal((2, 3, 4))
    targets = np.full((2, 3), 7, dtype=np.int64)
    loss = np.full((), np.nan)
    get("cross_entropy", backend)(logits, targets, loss, ignore_index=7)
    assert loss == 0.0
    grad = np.full_like(logits, np.nan)
    get("cross_entropy.cross_entropy_vjp", backend)(logits, targets, 1.0, grad, ignore_index=7)
    np.testing.assert_array_equal(grad, 0.0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cpu_is_bitwise_independent_of_thread_count(kernel, rng):
    args, outs = _case(rng, THREAD_SHAPE)[kernel]
    assert_thread_count_invariant(get(kernel, "cpu"), args, outs)


def _op(targets, backend):
    fwd, vjp = get("cross_entropy", "reference"), get("cross_entropy.cross_entropy_vjp", backend)

    def forward(inp):
        loss = np.empty((), inp["logits"].dtype)
        fwd(inp["logits"], targets, loss)
        return [loss]

    def gradient(inp, cot):
        dlogits = np.empty_like(inp["logits"])
        vjp(inp["logits"], targets, float(cot[0]), dlogits)
        return {"logits": dlogits}

    return forward, gradient


_shapes = st.lists(st.integers(1, 3), min_size=1, max_size=2).map(tuple)


@settings(max_examples=examples(12))
@given(lead=_shapes, classes=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_dot_product_identity_and_finite_differences(lead, classes, seed, backend):
    rng = np.random.default_rng(seed)
    args, _ = _case(rng, lead + (classes,))["cross_entropy"]
    inp = {"logits": args[0]}
    assert_dot_product_identity(*_op(args[1], backend), inp, rng)
    assert_finite_differences(*_op(args[1], backend), inp, rng)


@pytest.mark.parametrize("ignore_index", [IGNORE, 2])
def test_agrees_with_torch(ignore_index, rng):
    torch = pytest.importorskip("torch")
    (logits, targets), _ = _case(rng, (3, 7, 6), ignore_index=ignore_index)["cross_entropy"]
    tz = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tz.reshape(-1, 6), torch.tensor(targets.reshape(-1)),
                                              ignore_index=ignore_index)
    tloss.backward(torch.tensor(1.7, dtype=torch.float64))
    loss = np.empty(())
    get("cross_entropy", "cpu")(logits, targets, loss, ignore_index)
    np.testing.assert_allclose(loss, tloss.item(), rtol=1e-12, atol=1e-12)
    dz = np.empty_like(logits)
    get("cross_entropy.cross_entropy_vjp", "cpu")(logits, targets, 1.7, dz, ignore_index)
    np.testing.assert_allclose(dz, tz.grad.numpy(), rtol=1e-12, atol=1e-12)
