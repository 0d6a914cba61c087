"""The ``conv2d`` kernel and its VJP: definition vs Numba CPU vs CUDA (simulator), vs torch.

The definition sums tap by tap (einsum), the CPU kernel directly on a padded grid for
stride 1 (``_conv2d_direct``: taps in order, ``dw`` by chunked GEMMs) and by im2col and one
BLAS GEMM otherwise, CUDA by the CPU's im2col bodies and its own GEMM: the orders differ,
so backends agree within 1e-12
(float64) / 1e-5 (float32), relative to the array's size, not bitwise.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refode.kernels import COMPILED, get
from refode.kernels.reference.conv2d import output_size
from refode.kernels.workspace import Workspace

from ._checks import (
    DOT_RTOL,
    FD_RTOL,
    THREAD_COUNTS,
    assert_close,
    central_difference,
    numba_threads,
    relative_gap,
    vdot_all,
)

DTYPES = (np.float64, np.float32)
#: (kernel size, stride, padding) of the convolutions refode uses.
GEOMETRIES = ((3, 1, 1), (3, 2, 1), (1, 1, 0), (1, 2, 0))


def _data(rng, n, c, o, size, k, stride, pad, dtype=np.float64):
    """``x (n, c, H, W)``, ``w (o, c, k, k)``, ``g (n, o, Ho, Wo)``; ``size = (H, W)``."""
    height, width = size
    ho, wo = output_size(height, k, stride, pad), output_size(width, k, stride, pad)
    shapes = ((n, c, height, width), (o, c, k, k), (n, o, ho, wo))
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _run(backend, x, w, g, stride, pad, workspace=None):
    """Forward output and the cotangents ``dx``, ``dw``."""
    out = np.full_like(g, np.nan)
    get("conv2d", backend)(x, w, stride, pad, out, workspace=workspace)
    dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
    get("conv2d.conv2d_vjp", backend)(x, w, g, stride, pad, dx, dw, workspace=workspace)
    return out, dx, dw


def _compile_cpu():
    for dtype in DTYPES:
        _run("cpu", *_data(np.random.default_rng(0), 1, 2, 2, (4, 4), 3, 1, 1, dtype), 1, 1)


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    warmup("conv2d", _compile_cpu)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv2d_backends_agree_with_definition(backend, dtype, geometry, rng):
    k, stride, pad = geometry
    x, w, g = _data(rng, 2, 3, 2, (5, 6), k, stride, pad, dtype)
    expected = _run("reference", x, w, g, stride, pad)
    for a, e in zip(_run(backend, x, w, g, stride, pad), expected):
        assert_close(a, e)


def test_conv2d_definition_matches_a_direct_loop(rng):
    x, w, g = _data(rng, 1, 2, 2, (4, 3), 3, 2, 1)
    out = _run("reference", x, w, g, 2, 1)[0]
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    for o in range(2):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                patch = xpad[0, :, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3]
                assert out[0, o, i, j] == pytest.approx(np.sum(patch * w[o]), rel=1e-13)


@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    o=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    geometry=st.sampled_from(GEOMETRIES),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_vjp_dot_product_identity_and_finite_differences(
    n, c, o, height, width, geometry, seed
):
    k, stride, pad = geometry
    rng = np.random.default_rng(seed)
    x, w, g = _data(rng, n, c, o, (height, width), k, stride, pad)
    vx, vw, _ = _data(rng, n, c, o, (height, width), k, stride, pad)
    conv = get("conv2d")

    def forward(x, w):
        out = np.empty_like(g)
        conv(x, w, stride, pad, out)
        return out

    _, dx, dw = _run("cpu", x, w, g, stride, pad)
    vjp_side = vdot_all((vx, vw), (dx, dw))
    jv = forward(vx, w) + forward(x, vw)  # exact JVP: the op is bilinear
    assert relative_gap(float(np.vdot(jv, g)), vjp_side) <= DOT_RTOL
    fd = central_difference(forward, (x, w), (vx, vw))
    assert relative_gap(float(np.vdot(fd, g)), vjp_side) <= FD_RTOL


@pytest.mark.parametrize("geometry", [(3, 1, 1), (1, 2, 0)])
def test_conv2d_cpu_is_bitwise_identical_across_thread_counts(geometry, rng):
    k, stride, pad = geometry
    x, w, g = _data(rng, 4, 5, 6, (9, 8), k, stride, pad)
    results = []
    for n in THREAD_COUNTS:
        with numba_threads(n):
            results.append(_run("cpu", x, w, g, stride, pad))
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


#: stride-1 geometries beyond the model's: no padding, padding 2, a 5x5 kernel, k = 2.
DIRECT = ((3, 0), (3, 2), (5, 2), (5, 1), (2, 1), (2, 0), (1, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, pad", DIRECT)
def test_direct_stride_1_kernel_agrees_with_definition(k, pad, dtype, rng, monkeypatch):
    """The direct kernel on kernel sizes and paddings the models do not use, with the ``dw``
    GEMMs split into several chunks (DW_CHUNK patched small) and non-square images."""
    from refode.kernels.cpu import _conv2d_direct

    monkeypatch.setattr(_conv2d_direct, "DW_CHUNK", 7)
    x, w, g = _data(rng, 3, 2, 4, (6, 5), k, 1, pad, dtype)
    for a, e in zip(_run("cpu", x, w, g, 1, pad), _run("reference", x, w, g, 1, pad)):
        assert a.shape == e.shape
        assert_close(a, e)


def test_direct_kernel_sums_taps_in_order_bitwise(rng):
    """Forward: per output element ``acc = acc + w x`` over (c, ki, kj) in order: bitwise the
    same as that loop written out in NumPy (a 3x3 kernel takes the nine-tap path)."""
    for k in (3, 2):
        x, w, g = _data(rng, 2, 3, 2, (5, 4), k, 1, 1, np.float32)
        out = _run("cpu", x, w, g, 1, 1)[0]
        xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
        want = np.zeros_like(out)
        for c in range(x.shape[1]):
            for ki in range(k):
                for kj in range(k):
                    patch = xp[:, None, c, ki:ki + out.shape[2], kj:kj + out.shape[3]]
                    want = want + w[None, :, c, ki, kj, None, None] * patch
        np.testing.assert_array_equal(out, want)


def test_conv2d_workspace_is_reused_without_allocation(rng):
    x, w, g = _data(rng, 2, 3, 4, (6, 6), 3, 1, 1)
    workspace = Workspace()
    first = _run("cpu", x, w, g, 1, 1, workspace)
    buffers = workspace.buffers
    second = _run("cpu", x, w, g, 1, 1, workspace)
    assert buffers and all(workspace.buffers[name] is buf for name, buf in buffers.items())
    for a, b, c in zip(first, second, _run("cpu", x, w, g, 1, 1)):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_conv2d_matches_torch(geometry, rng):
    torch = pytest.importorskip("torch")
    k, stride, pad = geometry
    x, w, g = _data(rng, 2, 3, 4, (7, 6), k, stride, pad)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    y = torch.nn.functional.conv2d(tx, tw, stride=stride, padding=pad)
    grads = torch.autograd.grad(y, (tx, tw), torch.tensor(g))
    out, dx, dw = _run("cpu", x, w, g, stride, pad)
    assert_close(out, y.detach().numpy())
    assert_close(dx, grads[0].numpy())
    assert_close(dw, grads[1].numpy())
