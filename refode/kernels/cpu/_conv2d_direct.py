"""Direct stride-1 convolution on a padded grid: the CPU kernels ``conv2d`` use it for stride 1.

No im2col. The input is copied once, zero padded, into planes of a flat *grid*:
``xg (C, N, Lp)``, plane ``(c, n)`` holding the padded image row by row
(``Hp x Wp``, ``Hp = H + 2 pad``, ``Wp = W + 2 pad``) followed by ``k - 1`` zeros.
On this grid a kernel tap ``(ki, kj)`` is a constant offset ``ki Wp + kj``: the
output at grid position ``p = h Wp + j`` (``h < Ho``, ``j < Wp``; the columns
``j >= Wo`` are scratch) is

    out[p] = sum over c, ki, kj (in this order) of  w[o, c, ki, kj] * xg[c, n, p + ki Wp + kj]

accumulated in the input dtype, each term added in order (``acc = acc + w x``), one
task per ``(n, o)`` whose inner loop runs over the ``Ho Wp`` contiguous positions (it
vectorises: no reduction, no reassociation). The padded zeros enter the sum as
``w * 0`` terms, as in the reference's zero padding.

The VJP reuses the same kernel: for stride 1, ``dx`` is the convolution of the output
cotangent, padded by ``k - 1 - pad``, with the weights transposed over channels and
flipped (``w'[c, o, ki, kj] = w[o, c, k-1-ki, k-1-kj]``). ``dw`` is ``k^2`` GEMMs, one per
tap, of the cotangent on the grid (zeros in the scratch columns) with the shifted grid
of ``x``, both folded over the batch: ``dw[:, :, ki, kj] = G (O, N Lp) @ X_off^T``, called
from Python outside any parallel region.

Each task writes its own output plane and sums in a fixed order: bitwise identical
for any number of threads. CPU only (the bodies allocate their row accumulator);
the CUDA backend keeps im2col (:mod:`refode.kernels.cpu.conv2d` ``BODIES``).
"""
import numpy as np

from .._compile import Runner

#: grid positions per ``dw`` GEMM: both operands of a product (``C`` and ``O`` rows of
#: this many values) stay in the L2 cache (measured: 2048 is 1.6x faster than one GEMM
#: over the whole grid for 16 channels). The chunks' products are added in order.
DW_CHUNK = 2048


def _pad_planes(x, pad, lp, xg, task):
    """Task ``(c, n)``: plane ``xg[c, n]`` (length ``lp``) = ``x[n, c]`` zero padded by ``pad``,
    rows of ``Wp = W + 2 pad``, then zeros to the end of the plane."""
    n_img, chans, height, width = x.shape
    c, n = divmod(np.int64(task), n_img)
    wp = width + 2 * pad
    plane = xg[c, n]
    for p in range(pad * wp + pad):  # the top rows and the left border of the first row
        plane[p] = 0
    for h in range(height):
        dst = plane[(h + pad) * wp + pad:(h + pad + 1) * wp + pad]  # a row and the border
        src = x[n, c, h]                                            # to the next row
        for j in range(width):
            dst[j] = src[j]
        for j in range(width, wp):
            dst[j] = 0
    tail = plane[(height + pad) * wp + pad:]
    for p in range(tail.size):
        tail[p] = 0


def _grid_cotangent(g, wp, lp, gg, task):
    """Task ``(o, n)``: plane ``gg[o, n]`` = ``g[n, o]`` on rows of ``wp``, zeros elsewhere."""
    n_img, n_out, ho, wo = g.shape
    o, n = divmod(np.int64(task), n_img)
    plane = gg[o, n]
    for h in range(ho):
        dst = plane[h * wp:(h + 1) * wp]
        src = g[n, o, h]
        for j in range(wo):
            dst[j] = src[j]
        for j in range(wo, wp):
            dst[j] = 0
    tail = plane[ho * wp:]
    for p in range(tail.size):
        tail[p] = 0


def _correlate(xg, w, wp, out, task):
    """Task ``(n, o)``: ``out[n, o] (Ho, Wo)`` = the grid sum of the module docstring."""
    n_img, n_out, ho, wo = out.shape
    n, o = divmod(np.int64(task), n_out)
    k = w.shape[2]
    size = ho * wp
    acc = np.zeros(size, dtype=out.dtype)
    for c in range(w.shape[1]):
        if k == 3:  # the nine taps in one pass over the row (the same order of additions)
            _taps3(xg, w, wp, size, acc, n, o, c)
            continue
        for ki in range(k):
            for kj in range(k):
                wv = w[o, c, ki, kj]
                off = ki * wp + kj
                xs = xg[c, n, off:off + size]  # a view: indices p >= 0 (no wraparound test)
                for p in range(size):
                    acc[p] = acc[p] + wv * xs[p]
    for h in range(ho):
        for j in range(wo):
            out[n, o, h, j] = acc[h * wp + j]


def _taps3(xg, w, wp, size, acc, n, o, c):
    """``acc[p] += sum_{ki, kj} w[o, c, ki, kj] xg[c, n, p + ki wp + kj]`` for a 3x3 kernel,
    the nine terms added one after the other in the order of ``(ki, kj)``."""
    w00, w01, w02 = w[o, c, 0, 0], w[o, c, 0, 1], w[o, c, 0, 2]
    w10, w11, w12 = w[o, c, 1, 0], w[o, c, 1, 1], w[o, c, 1, 2]
    w20, w21, w22 = w[o, c, 2, 0], w[o, c, 2, 1], w[o, c, 2, 2]
    r0 = xg[c, n, 0:size + 2]
    r1 = xg[c, n, wp:wp + size + 2]
    r2 = xg[c, n, 2 * wp:2 * wp + size + 2]
    for p in range(size):
        a = acc[p] + w00 * r0[p]
        a = a + w01 * r0[p + 1]
        a = a + w02 * r0[p + 2]
        a = a + w10 * r1[p]
        a = a + w11 * r1[p + 1]
        a = a + w12 * r1[p + 2]
        a = a + w20 * r2[p]
        a = a + w21 * r2[p + 1]
        acc[p] = a + w22 * r2[p + 2]


def _flip(w, wf, task):
    """Task ``(c, o)``: ``wf[c, o] = w[o, c]`` flipped in both spatial axes."""
    n_out = w.shape[0]
    c, o = divmod(np.int64(task), n_out)
    k = w.shape[2]
    for ki in range(k):
        for kj in range(k):
            wf[c, o, ki, kj] = w[o, c, k - 1 - ki, k - 1 - kj]


BODIES = (_pad_planes, _grid_cotangent, _taps3, _correlate, _flip)
_run = Runner(BODIES)


def _grid(run, x, pad, k, workspace, name):
    """``x (N, C, H, W)`` on the padded grid ``(C, N, Lp)`` and the grid's row length ``Wp``."""
    n_img, chans, height, width = x.shape
    wp = width + 2 * pad
    lp = (height + 2 * pad) * wp + k - 1
    xg = workspace.buffer(name, (chans, n_img, lp), x.dtype)
    run("pad_planes", chans * n_img, x, pad, lp, xg)
    return xg, wp


def conv2d(x, w, pad, out, workspace):
    """Stride-1 ``conv2d`` (arguments as :func:`refode.kernels.reference.conv2d.conv2d`)."""
    xg, wp = _grid(_run, x, pad, w.shape[2], workspace, "grid_x")
    _run("correlate", out.shape[0] * out.shape[1], xg, w, wp, out)


def conv2d_vjp(x, w, g, pad, dx, dw, workspace):
    """Stride-1 ``conv2d_vjp`` (arguments as the reference ``conv2d_vjp``)."""
    n_out, chans, k, _ = w.shape
    n_img = x.shape[0]
    # dx: the cotangent, padded by k - 1 - pad, correlated with the flipped weights
    wf = workspace.buffer("flipped", (chans, n_out, k, k), w.dtype)
    _run("flip", chans * n_out, w, wf)
    gg, gwp = _grid(_run, g, k - 1 - pad, k, workspace, "grid_g")
    _run("correlate", n_img * chans, gg, wf, gwp, dx)
    # dw: one GEMM per tap over the batch-folded grids
    xg, wp = _grid(_run, x, pad, k, workspace, "grid_x")
    lp = xg.shape[2]
    gq = workspace.buffer("grid_dy", (n_out, n_img, lp), g.dtype)
    _run("grid_cotangent", n_out * n_img, g, wp, lp, gq)
    xf, gf = xg.reshape(chans, -1), gq.reshape(n_out, -1)
    span = xf.shape[1] - (k - 1) * wp - (k - 1)
    tap = workspace.buffer("dw_tap", (n_out, chans), w.dtype)
    dw[...] = 0
    for start in range(0, span, DW_CHUNK):
        stop = min(span, start + DW_CHUNK)
        for ki in range(k):
            for kj in range(k):
                off = ki * wp + kj
                np.matmul(gf[:, start:stop], xf[:, start + off:stop + off].T, out=tap)
                dw[:, :, ki, kj] += tap
