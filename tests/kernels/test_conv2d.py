"""The ``conv2d`` kernel and its VJP: definition vs Numba CPU vs CUDA (simulator), vs torch.

The definition sums tap by tap (einsum), the CPU kernel directly on a padded grid for
strides 1 and 2 (``_conv2d_direct``: taps in order; the VJP of stride 1 with ``dw`` by
chunked GEMMs) and by im2col and one BLAS GEMM otherwise, CUDA by the CPU's im2col bodies and its own GEMM: the orders differ,
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


#: direct-kernel geometries beyond the model's: no padding, padding 2, a 5x5 kernel, k = 2.
DIRECT = ((3, 0), (3, 2), (5, 2), (5, 1), (2, 1), (2, 0), (1, 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", (1, 2))
@pytest.mark.parametrize("k, pad", DIRECT)
def test_direct_kernel_agrees_with_definition(k, pad, stride, dtype, rng, monkeypatch):
    """The direct kernel on kernel sizes and paddings the models do not use, with the ``dw``
    GEMMs split into several chunks (DW_CHUNK patched small) and non-square images; stride 2
    runs the direct forward and the im2col VJP."""
    from refode.kernels.cpu import _conv2d_direct

    monkeypatch.setattr(_conv2d_direct, "DW_CHUNK", 7)
    x, w, g = _data(rng, 3, 2, 4, (6, 5), k, stride, pad, dtype)
    for a, e in zip(_run("cpu", x, w, g, stride, pad), _run("reference", x, w, g, stride, pad)):
        assert a.shape == e.shape
        assert_close(a, e)


def _fma32(w, x, acc):
    """``fma(w, x, acc)`` in float32: the float64 product of two float32 is exact and the
    float64 sum then rounds twice; a fixed seed keeps this test's data away from the rare
    case (about 2^-29 per term) where that double rounding differs from one rounding."""
    return (w.astype(np.float64) * x + acc).astype(np.float32)


def _fma64(w, x, acc):
    """``fma(w, x, acc)`` in float64, exactly: rational arithmetic, one rounding."""
    from fractions import Fraction

    exact = np.frompyfunc(lambda a, b, c: float(Fraction(a) * Fraction(b) + Fraction(c)), 3, 1)
    return exact(w, x, acc).astype(np.float64)


@pytest.mark.parametrize("dtype, fma", [(np.float32, _fma32), (np.float64, _fma64)])
def test_direct_kernel_sums_taps_in_order_bitwise(dtype, fma, rng):
    """Forward: per output element one fused multiply-add per term, ``acc = fma(w, x, acc)``
    over (c, ki, kj) in order: bitwise the same as that loop written out in NumPy, for a
    3x3 kernel (the unrolled taps) and a 2x2 one (the taps in loops), strides 1 and 2, 19
    output channels (two channel blocks in float64, a partial one in float32) and rows
    longer and shorter than a block."""
    for k, stride, size in ((3, 1, (3, 19)), (2, 1, (4, 3)), (3, 2, (5, 37)), (2, 2, (4, 9)),
                            (1, 2, (3, 7))):
        pad = min(1, k - 1)
        x, w, g = _data(rng, 2, 3, 19, size, k, stride, pad, dtype)
        out = _run("cpu", x, w, g, stride, pad)[0]
        xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
        ho, wo = out.shape[2:]
        want = np.zeros_like(out)
        for c in range(x.shape[1]):
            for ki in range(k):
                for kj in range(k):
                    patch = xp[:, None, c, ki:ki + stride * (ho - 1) + 1:stride,
                               kj:kj + stride * (wo - 1) + 1:stride]
                    weight = np.broadcast_to(w[None, :, c, ki, kj, None, None], want.shape)
                    want = fma(weight, np.broadcast_to(patch, want.shape), want)
        np.testing.assert_array_equal(out, want, err_msg=f"k={k} stride={stride}")


@pytest.mark.parametrize("dtype, fma", [(np.float32, _fma32), (np.float64, _fma64)])
def test_weight_gradient_sums_runs_of_positions_in_order_bitwise(dtype, fma, rng):
    """3x3 ``dw``: per element, each run of ``DW_RUN`` grid positions (folded over the
    batch) summed in order with one fused multiply-add per term, then the runs' sums
    added in order: bitwise that loop written out in NumPy, over three runs, with 11
    output channels (a partial vector of lanes in both dtypes)."""
    from refode.kernels.cpu import _conv2d_direct as direct

    x, w, g = _data(rng, 3, 2, 11, (12, 14), 3, 1, 1, dtype)
    dw = _run("cpu", x, w, g, 1, 1)[2]
    wp = x.shape[3] + 2
    xf = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).transpose(1, 0, 2, 3).reshape(2, 3, -1)
    gf = np.pad(g, ((0, 0), (0, 0), (0, 2), (0, 2))).transpose(1, 0, 2, 3).reshape(11, 3, -1)
    # the plane length of the kernel's grid (its runs start at multiples of DW_RUN of it)
    lp = direct._grid(x, 1, 3, direct._block_width(g.shape[3]), Workspace(), "x")[0].shape[2]
    xf = np.pad(xf, ((0, 0), (0, 0), (0, lp - xf.shape[2]))).reshape(2, -1)
    gf = np.pad(gf, ((0, 0), (0, 0), (0, lp - gf.shape[2]))).reshape(11, -1)
    offsets = [ki * wp + kj for ki in range(3) for kj in range(3)]
    span = 3 * lp - 2 * wp - 2
    assert span > 2 * direct.DW_RUN
    total = np.zeros((11, 2, 9), dtype)
    for start in range(0, span, direct.DW_RUN):
        acc = np.zeros_like(total)
        for p in range(start, min(span, start + direct.DW_RUN)):
            xs = np.stack([xf[:, p + off] for off in offsets], axis=-1)  # (C, 9)
            acc = fma(np.broadcast_to(gf[:, None, None, p], acc.shape),
                      np.broadcast_to(xs[None], acc.shape), acc)
        total = (total + acc).astype(dtype)
    np.testing.assert_array_equal(dw, total.reshape(w.shape))


@pytest.mark.parametrize("dtype", DTYPES)
def test_direct_kernel_block_widths_give_the_same_bits(dtype, rng, monkeypatch):
    """Every output sums the same terms in the same order whatever the block: the narrow
    and the wide block give bitwise the same forward and ``dx``, on rows shorter than,
    equal to and longer than (not a multiple of) either width, and channel counts below,
    at and above one vector of lanes."""
    from refode.kernels.cpu import _conv2d_direct, _simd

    narrow, wide = _simd.BLOCK_WIDTHS
    lane = _simd.lanes(np.dtype(dtype))
    for width in (1, narrow - 1, narrow, wide, wide + 3, 2 * wide + 5):
        for o in (1, lane, lane + 3):
            x, w, g = _data(rng, 2, 3, o, (3, width), 3, 1, 1, dtype)
            runs = []
            for pb in (narrow, wide):
                monkeypatch.setattr(_conv2d_direct, "_block_width", lambda wo, pb=pb: pb)
                runs.append(_run("cpu", x, w, g, 1, 1))
            expected = _run("reference", x, w, g, 1, 1)
            for a, b, e in zip(*runs, expected):
                assert_close(a, e)
            for a, b in zip(runs[0][:2], runs[1][:2]):  # dw's GEMM chunks follow the grid
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unrolled_taps_give_the_bits_of_the_tap_loops(dtype, rng):
    """The micro-kernel with its 3x3 taps unrolled and the one looping over them at run
    time sum the same terms in the same order: bitwise the same block, for both block
    widths and a partial channel vector."""
    import numba

    from refode.kernels.cpu import _simd

    lane = _simd.lanes(np.dtype(dtype))
    chans, n_out, wp = 5, lane + 3, 40
    xg = rng.standard_normal((chans, 2, 4 * wp)).astype(dtype)
    wt = rng.standard_normal((chans, 9, 2 * lane)).astype(dtype)
    for pb in _simd.BLOCK_WIDTHS:
        outs = []
        for size in (None, 3):
            block = _simd.tap_block(pb, size)

            @numba.njit
            def run(xg, wt, out, block=block):
                for o0 in (0, lane):
                    for j0 in (0, 3):
                        block(xg, wt, out, 3, wp, 1, o0, 1, j0)

            out = np.zeros((2, n_out, 2, pb + 3), dtype)
            run(xg, wt, out)
            outs.append(out)
        assert np.count_nonzero(outs[0][1, :, 1]) > 0
        np.testing.assert_array_equal(outs[0], outs[1])


def test_block_transpose_masks_transpose():
    """The shuffle stages of the in-register transpose, simulated on labels."""
    from refode.kernels.cpu._simd import _transpose_masks

    for width in (1, 2, 4, 8, 16):
        vecs = [[(b, o) for o in range(width)] for b in range(width)]
        for g, lo, hi in _transpose_masks(width):
            for i in range(width):
                if not i & g:
                    both = vecs[i] + vecs[i + g]
                    vecs[i], vecs[i + g] = [both[m] for m in lo], [both[m] for m in hi]
        assert vecs == [[(b, o) for b in range(width)] for o in range(width)]


def test_block_intrinsic_rejects_arrays_it_cannot_address():
    """The micro-kernel addresses its arrays from their shapes: non-contiguous arrays,
    mixed dtypes or integer arrays are a typing error, not wrong numbers."""
    import numba

    from refode.kernels.cpu._simd import tap_block

    block = tap_block(4)

    @numba.njit
    def call(xg, wt, out):
        block(xg, wt, out, 1, 4, 0, 0, 0, 0)

    good = (np.zeros((1, 1, 8)), np.zeros((1, 1, 8)), np.zeros((1, 1, 1, 4)))
    call(*good)
    for bad in ((good[0][:, :, ::2], good[1], good[2]),
                (good[0].astype(np.float32), good[1], good[2]),
                (good[0].astype(np.int64), good[1].astype(np.int64), good[2].astype(np.int64))):
        with pytest.raises(numba.TypingError):
            call(*bad)


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


def _bn_data(rng, chans, dtype):
    gamma, beta, mean = (rng.standard_normal(chans).astype(dtype) for _ in range(3))
    return gamma, beta, mean, (rng.random(chans) + 0.1).astype(dtype)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_bn_relu_conv2d_backends_agree_with_definition(backend, dtype, geometry, rng):
    """``conv2d(relu(batchnorm_eval(x)))`` in one call; on the CPU bitwise the two kernels
    in a row (stride 1: the batch norm applied while the padded grid is filled)."""
    k, stride, pad = geometry
    x, w, g = _data(rng, 2, 3, 4, (5, 6), k, stride, pad, dtype)
    x[0, 0, 0, :2] = 0   # relu(bn(0)) is not 0: the padding must come after the ReLU
    bn = _bn_data(rng, 3, dtype)
    results = {}
    for name in ("reference", backend):
        out = np.full_like(g, np.nan)
        get("conv2d.bn_relu_conv2d", name)(x, *bn, w, stride, pad, out)
        results[name] = out
    assert_close(results[backend], results["reference"])
    if backend == "cpu":
        r = np.empty_like(x)
        get("bn_relu.bn_relu_eval", "cpu")(x, *bn, r)
        unfused = np.empty_like(g)
        get("conv2d", "cpu")(r, w, stride, pad, unfused)
        np.testing.assert_array_equal(results["cpu"], unfused)
