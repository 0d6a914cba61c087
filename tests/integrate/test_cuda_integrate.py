"""odeint, gradient and vjp with ``backend="cuda"``: on the device from end to end.

The rate :class:`KernelDenseTanh` computes ``tanh(h W^T + b)`` with the kernels of its
backend and allocates where its input is, so on ``"cuda"`` it runs on device arrays;
the CPU runs the same formulas with the CPU kernels. float64 results agree within
1e-12 relative (the kernels' round-off), float32 within :data:`RTOL32`. The transfer
tests count host <-> device copies and show that they do not grow with ``n_steps``;
:func:`strict_device_arrays` makes any host expression on a device array fail.
"""
import numpy as np
import pytest

import refode
from refode import backend as backends
from refode.errors import RefodeError
from refode.integrate import vjp
from refode.integrate.checkpoint import Binomial
from refode.integrate.weights import theta_at_support
from refode.rates import DenseTanh

from .cuda_checks import close, cuda_or_skip, strict_device_arrays, transfers  # noqa: F401

pytestmark = [pytest.mark.cuda, pytest.mark.usefixtures("strict_device_arrays")]

#: float64 agreement of the CUDA and CPU backends (relative to the largest entry).
RTOL = 1e-12
#: float32 agreement: a few float32 roundings (eps 6e-8) through N steps of tanh layers.
RTOL32 = 1e-5
#: (scheme, basis family, K, N) of the agreement tests.
PROBLEMS = [("euler", "piecewise_constant", 2, 2), ("midpoint", "fem_linear", 2, 2),
            ("rk4", "legendre", 2, 1), ("ssprk3", "piecewise_linear", 2, 1)]
BATCH, WIDTH = 2, 3


class KernelDenseTanh:
    """``R(theta, h) = tanh(h W^T + b)`` computed with ``backend``'s kernels, outputs
    allocated where ``h`` is (a rate that runs on device arrays)."""

    def __init__(self, backend="cpu"):
        self.backend = backends.get(backend)
        k = self.backend.kernel
        self._dense, self._dense_vjp = k("dense"), k("dense.dense_vjp")
        self._tanh, self._tanh_vjp = k("activation.tanh"), k("activation.tanh_vjp")

    def theta_shapes(self, h_shape):
        return DenseTanh.shapes(h_shape[-1])

    def _pre(self, h, theta):
        p = backends.empty(h.shape, h.dtype, h)
        self._dense(h, theta["W"], theta["b"], p)
        return p

    def forward(self, t, h, theta):
        out = backends.empty_like(h)
        self._tanh(self._pre(h, theta), out)
        return out

    def vjp(self, t, h, theta, a):
        g = backends.empty_like(h)
        self._tanh_vjp(self._pre(h, theta), a, g)
        dh, dw, db = (backends.empty_like(v) for v in (h, theta["W"], theta["b"]))
        self._dense_vjp(h, theta["W"], g, dh, dw, db)
        return dh, {"W": dw, "b": db}


def _problem(family, k, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    basis = refode.basis(family, k)
    coefficients = {name: a.astype(dtype) for name, a in
                    refode.rates.init_coefficients(basis, WIDTH, rng).items()}
    h0 = rng.standard_normal((BATCH, WIDTH)).astype(dtype)
    return h0, coefficients, basis, rng.standard_normal((BATCH, WIDTH)).astype(dtype)


def _both(fn, **kw):
    """``fn`` on the CPU and on CUDA (the rate of each backend)."""
    return (fn(KernelDenseTanh("cpu"), **kw),
            fn(KernelDenseTanh("cuda"), backend="cuda", **kw))


@pytest.mark.parametrize("scheme, family, k, n", PROBLEMS)
def test_odeint_on_cuda_matches_cpu(scheme, family, k, n):
    h0, c, basis, _ = _problem(family, k)
    cpu, gpu = _both(lambda rate, **kw: refode.odeint(rate, h0, c, basis, scheme=scheme,
                                                      n_steps=n, **kw))
    assert type(gpu) is np.ndarray and gpu.dtype == np.float64   # back on the host
    close(gpu, cpu, RTOL)
    assert not np.allclose(gpu, h0)   # it integrated something


@pytest.mark.parametrize("scheme, family, k, n", PROBLEMS[:3])
def test_gradient_on_cuda_matches_cpu(scheme, family, k, n):
    h0, c, basis, w = _problem(family, k, seed=1)
    cpu, gpu = _both(lambda rate, **kw: refode.gradient(rate, h0, c, basis, w, scheme=scheme,
                                                        n_steps=n, **kw))
    close(gpu[0], cpu[0], RTOL, "dh0")
    close(gpu[1], cpu[1], RTOL, "dcoefficients")


@pytest.mark.parametrize("checkpoint, slots", [("steps", None), ("binomial", 1),
                                               (Binomial(2), None)])
def test_checkpoint_strategies_on_cuda_match_cpu(checkpoint, slots):
    h0, c, basis, w = _problem("piecewise_constant", 3, seed=2)
    cpu, gpu = _both(lambda rate, **kw: refode.gradient(
        rate, h0, c, basis, w, scheme="euler", n_steps=3, checkpoint=checkpoint, slots=slots,
        **kw))
    close(gpu[0], cpu[0], RTOL, "dh0")
    close(gpu[1], cpu[1], RTOL, "dcoefficients")


def test_continuous_adjoint_on_cuda_matches_cpu():
    h0, c, basis, w = _problem("fem_linear", 2, seed=3)
    cpu, gpu = _both(lambda rate, **kw: refode.gradient(
        rate, h0, c, basis, w, scheme="midpoint", n_steps=1, adjoint="continuous", **kw))
    close(gpu[0], cpu[0], RTOL, "a0")
    close(gpu[1], cpu[1], RTOL, "g0")


def test_vjp_on_cuda_matches_cpu_and_backward_runs_twice():
    h0, c, basis, w = _problem("piecewise_constant", 2, seed=4)
    (h_cpu, back_cpu), (h_gpu, back_gpu) = _both(
        lambda rate, **kw: vjp(rate, h0, c, basis, scheme="midpoint", n_steps=2, **kw))
    close(h_gpu, h_cpu, RTOL, "hT")
    first, second, want = back_gpu(w), back_gpu(w), back_cpu(w)
    for got in (first, second):
        close(got[0], want[0], RTOL, "dh0")
        close(got[1], want[1], RTOL, "dcoefficients")


def test_float32_on_cuda_stays_float32_and_agrees():
    h0, c, basis, w = _problem("fem_linear", 2, np.float32, seed=5)
    cpu, gpu = _both(lambda rate, **kw: refode.gradient(rate, h0, c, basis, w,
                                                        scheme="midpoint", n_steps=2, **kw))
    assert gpu[0].dtype == np.float32 and all(v.dtype == np.float32 for v in gpu[1].values())
    close(gpu[0], cpu[0], RTOL32, "dh0")
    close(gpu[1], cpu[1], RTOL32, "dcoefficients")


def test_device_h0_gives_device_results():
    cuda = cuda_or_skip()
    h0, c, basis, w = _problem("piecewise_constant", 2, seed=6)
    rate = KernelDenseTanh("cuda")
    hT = refode.odeint(rate, cuda.to_device(h0), c, basis, n_steps=2, backend="cuda")
    assert backends.on_device(hT)
    want = refode.odeint(KernelDenseTanh("cpu"), h0, c, basis, n_steps=2)
    close(hT.copy_to_host(), want, RTOL)
    dh0, dc = refode.gradient(rate, cuda.to_device(h0), c, basis, cuda.to_device(w),
                              n_steps=2, backend="cuda")
    assert backends.on_device(dh0) and all(backends.on_device(v) for v in dc.values())


def test_theta_on_the_device_is_the_host_combination():
    cuda = cuda_or_skip()
    _, c, _, _ = _problem("fem_linear", 3, seed=7)
    support = ((0, 2), (0.25, 0.75))
    device = theta_at_support({k: cuda.to_device(v) for k, v in c.items()}, support)
    close({k: v.copy_to_host() for k, v in device.items()}, theta_at_support(c, support), 1e-15)
    empty = theta_at_support({k: cuda.to_device(v) for k, v in c.items()}, ((), ()))
    assert all(not v.copy_to_host().any() for v in empty.values())


@pytest.mark.parametrize("what", ["odeint", "gradient"])
def test_transfers_do_not_grow_with_n_steps(what, monkeypatch):
    h0, c, basis, w = _problem("piecewise_constant", 1, seed=8)
    rate = KernelDenseTanh("cuda")
    counts = []
    for n in (1, 4):
        with transfers(monkeypatch) as count:
            if what == "odeint":
                refode.odeint(rate, h0, c, basis, scheme="midpoint", n_steps=n, backend="cuda")
            else:
                refode.gradient(rate, h0, c, basis, w, scheme="midpoint", n_steps=n,
                                backend="cuda")
        counts.append(dict(count))
    assert counts[0] == counts[1], counts
    # the boundary only: h0 and the two coefficient arrays (and the cotangent) in,
    # the results out
    inputs = 1 + len(c) + (what == "gradient")
    outputs = 1 + (len(c) if what == "gradient" else 0)
    assert counts[0] == {"to_device": inputs, "to_host": outputs}, counts


def test_a_host_rate_is_refused_on_cuda_with_one_line():
    cuda_or_skip()
    h0, c, basis, _ = _problem("piecewise_constant", 1)
    with pytest.raises(RefodeError) as info:
        refode.odeint(DenseTanh(), h0, c, basis, n_steps=1, backend="cuda")
    assert "\n" not in str(info.value) and "backend='cuda'" in str(info.value)


def test_unusable_cuda_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(backends, "_cuda_problem", lambda: "no CUDA GPU is available; use "
                        "backend='cpu'")
    h0, c, basis, _ = _problem("piecewise_constant", 1)
    with pytest.raises(RefodeError, match="^no CUDA GPU is available; use backend='cpu'$"):
        refode.odeint(DenseTanh(), h0, c, basis, n_steps=1, backend="cuda")
