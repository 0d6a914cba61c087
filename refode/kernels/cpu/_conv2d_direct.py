"""Direct convolution on a padded grid: the CPU kernels ``conv2d`` use it for strides 1 and 2.

No im2col. The input is copied once, zero padded, into planes of a flat *grid*:
``xg (C, N, Lp)``, plane ``(c, n)`` holding the padded image row by row
(``Hp x Wp``, ``Hp = H + 2 pad``, ``Wp = W + 2 pad``) followed by zeros (at least
``k - 1``, more where a block of positions runs past a short last row). On this grid a
kernel tap ``(ki, kj)`` is a constant offset ``ki Wp + kj``: the output at row ``h`` and
column ``j`` is

    out[n, o, h, j] = sum over c, ki, kj (in this order) of  w[o, c, ki, kj] * xg[c, n, (h + ki) Wp + j + kj]

(stride 2: ``xg[c, n, (2 h + ki) Wp + 2 j + kj]``, the forward only)

accumulated in the input dtype, one fused multiply-add per term (``acc = fma(w, x,
acc)``, one rounding each, as in BLAS; nothing reassociated). The padded zeros enter the
sum as ``w * 0`` terms, as in the reference's zero padding.

The sum runs in register blocks (:mod:`refode.kernels.cpu._simd`): a block is ``pb``
positions of one output row times one vector of ``L`` output channels (``L`` = 16
float32 or 8 float64 with AVX-512), its ``pb`` accumulator vectors stay in registers
while the loop over ``c, ki, kj`` broadcasts one input value per position into a
multiply-add with the vector of packed weights ``wt[c, ki k + kj, o0 : o0 + L]`` (the
weights are packed once per call, zero past the last channel), then the block is
transposed in registers and stored row by row. One task per ``(n, channel block)`` runs
the blocks of every row; the last block of a row ends at the row's end (it recomputes
columns of the block before, the same values in the same task). Every output element
sums the same terms in the same order whatever the block, the block width and the thread
count, so results are bitwise identical for any number of threads.

The VJP reuses the same kernel: for stride 1, ``dx`` is the convolution of the output
cotangent, padded by ``k - 1 - pad``, with the weights transposed over channels and
flipped (``w'[c, o, ki, kj] = w[o, c, k-1-ki, k-1-kj]``). ``dw`` is the sum over the grid
positions ``p`` (folded over the batch) of the cotangent on the grid (zeros in the
scratch columns) times the shifted grid of ``x``,
``dw[o, c, ki, kj] = sum_p G[o, p] X[c, p + ki Wp + kj]``: for 3x3 kernels register blocks
(:func:`refode.kernels.cpu._simd.tap_gradient`, one task per input channel and vector of
output channels, the positions in runs of :data:`DW_RUN`: no GEMM, so the sum's order is
the same on every machine), for other sizes ``k^2`` GEMMs, one per tap,
``dw[:, :, ki, kj] = G (O, N Lp) @ X_off^T``, called from Python outside any parallel
region.

Each task writes its own output slices and sums in a fixed order. CPU only (the micro-kernel
is LLVM vector code for the host CPU); the CUDA backend keeps im2col
(:mod:`refode.kernels.cpu.conv2d` ``BODIES``).
"""
import math

import numpy as np

from .._compile import Runner
from . import _simd

#: the kernel size whose taps the micro-kernel unrolls (straight-line code per input
#: channel; every convolution of the paper's networks is 3x3): faster than loops over the
#: taps by 30-45% in float32 and 5-20% in float64 (measured on W4's layers, AVX2). Other
#: sizes loop.
UNROLLED_SIZE = 3

#: grid positions per run of the 3x3 ``dw`` register blocks: each run is summed in order,
#: then the runs (:func:`refode.kernels.cpu._simd.tap_gradient`), as a GEMM blocks its
#: inner dimension (its accuracy; measured at W1's size, largest error relative to the
#: largest entry: float32 3.8e-7 with runs of 256, 4.8e-6 in one run, 2.3e-7 by the
#: GEMMs; float64 9.7e-16, 7.8e-15, 8.8e-16).
DW_RUN = 256

#: grid positions per ``dw`` GEMM: both operands of a product (``C`` and ``O`` rows of
#: this many values) stay in the L2 cache (measured: 2048 is 1.6x faster than one GEMM
#: over the whole grid for 16 channels). The chunks' products are added in order.
DW_CHUNK = 2048


def _pad_planes(x, pad, lp, xg, task):
    """Task ``(c, n)``: plane ``xg[c, n]`` (length ``lp``) = ``x[n, c]`` zero padded by ``pad``,
    rows of ``Wp = W + 2 pad``, then zeros to the end of the plane."""
    c, n = divmod(np.int64(task), x.shape[0])
    _fill_plane(x, n, c, pad, False, 1.0, 0.0, 0.0, xg[c, n])


def _pad_bn_relu(x, gamma, beta, mean, var, eps, pad, lp, xg, task):
    """Task ``(c, n)``: as :func:`_pad_planes` for ``relu(batchnorm_eval(x))``, the expression
    of :mod:`refode.kernels.cpu.bn_relu`'s evaluation form (the same roundings)."""
    c, n = divmod(np.int64(task), x.shape[0])
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    _fill_plane(x, n, c, pad, True, gamma[c] * inv, np.float64(mean[c]), beta[c], xg[c, n])


def _fill_plane(x, n, c, pad, affine, scale, mu, shift, plane):
    """``plane`` = image ``x[n, c]`` (or ``relu(scale (x - mu) + shift)`` if ``affine``) on
    rows of ``W + 2 pad``, zero padded, then zeros to the end of the plane."""
    height, width = x.shape[2], x.shape[3]
    wp = width + 2 * pad
    for p in range(pad * wp + pad):  # the top rows and the left border of the first row
        plane[p] = 0
    for h in range(height):
        dst = plane[(h + pad) * wp + pad:(h + pad + 1) * wp + pad]  # a row and the border
        src = x[n, c, h]                                            # to the next row
        if affine:
            for j in range(width):
                y = scale * (src[j] - mu) + shift
                dst[j] = 0 if y <= 0 else y  # relu(round(y)) == round(relu(y))
        else:
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


def _grid_cotangent_t(g, wp, lp, gt, task):
    """Task ``n``: rows ``n lp .. (n + 1) lp - 1`` of ``gt (N Lp, Op)`` = ``g[n]`` on the grid
    positions, transposed (channels last), zeros elsewhere."""
    n_img, n_out, ho, wo = g.shape
    n = np.int64(task)
    rows = gt[n * lp:(n + 1) * lp]
    for p in range(lp):
        for o in range(gt.shape[1]):
            rows[p, o] = 0
    for o in range(n_out):
        for h in range(ho):
            for j in range(wo):
                rows[h * wp + j, o] = g[n, o, h, j]


def _weight_gradient(xf, gt, wp, span, lane, dw, task):
    """Task ``(c, j)``: ``dw[j lane .. (j + 1) lane - 1, c]`` of a 3x3 kernel, the sum over
    the grid positions of the module docstring in runs of :data:`DW_RUN` (one register
    block)."""
    n_blocks = (dw.shape[0] + lane - 1) // lane
    c, j = divmod(np.int64(task), n_blocks)
    _gradient_block(xf, gt, dw, wp, span, c, j * lane)


def _pack(w, flip, wt, task):
    """Task ``(c, t)``: ``wt[c, t, :]`` = the weights of input channel ``c`` at tap ``t`` over the
    output channels, zeros past them. ``flip``: the kernel of ``dx`` (channels swapped, taps
    flipped), ``wt[o, t, c] = w[o, c, k-1-ki, k-1-kj]``."""
    taps = wt.shape[1]
    c, t = divmod(np.int64(task), taps)
    k = w.shape[2]
    ki, kj = divmod(t, k)
    row = wt[c, t]
    if flip:
        n_out = w.shape[1]
        for o in range(n_out):
            row[o] = w[c, o, k - 1 - ki, k - 1 - kj]
    else:
        n_out = w.shape[0]
        for o in range(n_out):
            row[o] = w[o, c, ki, kj]
    for o in range(n_out, row.size):
        row[o] = 0


def _block(xg, wt, out, k, wp, n, o0, h, j0, pb, stride):
    """One register block (:func:`refode.kernels.cpu._simd.tap_block`) of the micro-kernel
    for ``pb``, ``k`` and ``stride``: positions ``(h, j0 ..)``, channels ``o0 ..``."""
    if stride == 1:
        if k == UNROLLED_SIZE:
            if pb == _WIDE:
                _wide_unrolled(xg, wt, out, k, wp, n, o0, h, j0)
            else:
                _narrow_unrolled(xg, wt, out, k, wp, n, o0, h, j0)
        elif pb == _WIDE:
            _wide_block(xg, wt, out, k, wp, n, o0, h, j0)
        else:
            _narrow_block(xg, wt, out, k, wp, n, o0, h, j0)
    elif k == UNROLLED_SIZE:
        if pb == _WIDE:
            _wide_unrolled_2(xg, wt, out, k, wp, n, o0, h, j0)
        else:
            _narrow_unrolled_2(xg, wt, out, k, wp, n, o0, h, j0)
    elif pb == _WIDE:
        _wide_block_2(xg, wt, out, k, wp, n, o0, h, j0)
    else:
        _narrow_block_2(xg, wt, out, k, wp, n, o0, h, j0)


def _correlate(xg, wt, k, wp, lane, pb, stride, out, task):
    """Task ``(n, j)``: channels ``j lane .. (j + 1) lane - 1`` of ``out[n]``, the grid sum of the
    module docstring (stride 1 or 2), block by block of ``pb`` positions of a row (the last
    block of a row ends at its end, recomputing columns of the one before: the same values,
    same task)."""
    n_img, n_out, ho, wo = out.shape
    n_blocks = (n_out + lane - 1) // lane
    n, j = divmod(np.int64(task), n_blocks)
    last = max(wo - pb, 0)
    for h in range(ho):
        for j0 in range(0, wo, pb):
            _block(xg, wt, out, k, wp, n, j * lane, h, min(j0, last), pb, stride)


BODIES = (_pad_planes, _pad_bn_relu, _fill_plane, _grid_cotangent, _grid_cotangent_t,
          _weight_gradient, _pack, _block, _correlate)
#: the strides of the direct forward (the paper's networks use 1 and 2; others use im2col).
STRIDES = (1, 2)
_WIDE = _simd.BLOCK_WIDTHS[1]
_wide_block, _narrow_block = (_simd.tap_block(pb) for pb in reversed(_simd.BLOCK_WIDTHS))
_wide_unrolled, _narrow_unrolled = (_simd.tap_block(pb, UNROLLED_SIZE)
                                    for pb in reversed(_simd.BLOCK_WIDTHS))
_wide_block_2, _narrow_block_2 = (_simd.tap_block(pb, None, 2)
                                  for pb in reversed(_simd.BLOCK_WIDTHS))
_wide_unrolled_2, _narrow_unrolled_2 = (_simd.tap_block(pb, UNROLLED_SIZE, 2)
                                        for pb in reversed(_simd.BLOCK_WIDTHS))
_gradient_block = _simd.tap_gradient(UNROLLED_SIZE, DW_RUN)
_run = Runner(BODIES)


def _block_width(wo):
    """The block width of :data:`~refode.kernels.cpu._simd.BLOCK_WIDTHS` computing the fewest
    columns for rows of ``wo`` outputs (the wide one on a tie)."""
    narrow, wide = _simd.BLOCK_WIDTHS
    return narrow if -(-wo // narrow) * narrow < -(-wo // wide) * wide else wide


def _grid(x, pad, k, pb, workspace, name, bn=None, stride=1):
    """``x (N, C, H, W)`` on the padded grid ``(C, N, Lp)`` and the grid's row length ``Wp``;
    ``Lp`` leaves room for blocks of ``pb`` positions (``stride`` apart) past a short last
    row. ``bn = (gamma, beta, mean, var, eps)``: the grid of ``relu(batchnorm_eval(x))``
    instead."""
    n_img, chans, height, width = x.shape
    wp = width + 2 * pad
    hp = height + 2 * pad
    lp = max(hp * wp, (hp - 1) * wp + stride * (pb - 1) + 1) + k - 1
    xg = workspace.buffer(name, (chans, n_img, lp), x.dtype)
    if bn is None:
        _run("pad_planes", chans * n_img, x, pad, lp, xg)
    else:
        _run("pad_bn_relu", chans * n_img, x, *bn, pad, lp, xg)
    return xg, wp


def _packed(w, flip, workspace, name):
    """The weights ``(C, k k, Op)`` of :func:`_pack`, ``Op`` a multiple of the lanes."""
    n_out, chans, k, _ = w.shape
    if flip:
        n_out, chans = chans, n_out
    lane = _simd.lanes(w.dtype)
    wt = workspace.buffer(name, (chans, k * k, -(-n_out // lane) * lane), w.dtype)
    _run("pack", chans * k * k, w, flip, wt)
    return wt


def _correlate_grid(xg, wt, k, wp, out, stride=1):
    lane = _simd.lanes(out.dtype)
    n_blocks = -(-out.shape[1] // lane)
    _run("correlate", out.shape[0] * n_blocks, xg, wt, k, wp, lane, _block_width(out.shape[3]),
         stride, out)


def conv2d(x, w, stride, pad, out, workspace):
    """``conv2d`` of a stride in :data:`STRIDES` (arguments as
    :func:`refode.kernels.reference.conv2d.conv2d`)."""
    k = w.shape[2]
    xg, wp = _grid(x, pad, k, _block_width(out.shape[3]), workspace, "grid_x", stride=stride)
    _correlate_grid(xg, _packed(w, False, workspace, "packed"), k, wp, out, stride)


def bn_relu_conv2d(x, gamma, beta, mean, var, eps, w, stride, pad, out, workspace):
    """``bn_relu_conv2d`` of a stride in :data:`STRIDES`
    (:func:`refode.kernels.reference.conv2d.bn_relu_conv2d`): the batch norm and ReLU
    computed while the grid is filled, no intermediate array."""
    k = w.shape[2]
    xg, wp = _grid(x, pad, k, _block_width(out.shape[3]), workspace, "grid_x",
                   (gamma, beta, mean, var, eps), stride)
    _correlate_grid(xg, _packed(w, False, workspace, "packed"), k, wp, out, stride)


def conv2d_vjp(x, w, g, pad, dx, dw, workspace):
    """Stride-1 ``conv2d_vjp`` (arguments as the reference ``conv2d_vjp``)."""
    n_out, chans, k, _ = w.shape
    n_img = x.shape[0]
    # dx: the cotangent, padded by k - 1 - pad, correlated with the flipped weights
    gg, gwp = _grid(g, k - 1 - pad, k, _block_width(dx.shape[3]), workspace, "grid_g")
    _correlate_grid(gg, _packed(w, True, workspace, "packed_flipped"), k, gwp, dx)
    xg, wp = _grid(x, pad, k, _block_width(g.shape[3]), workspace, "grid_x")
    lp = xg.shape[2]
    if k == UNROLLED_SIZE:  # dw: register blocks summing over the grid positions
        lane = _simd.lanes(w.dtype)
        gt = workspace.buffer("grid_dy_t", (n_img * lp, -(-n_out // lane) * lane), g.dtype)
        _run("grid_cotangent_t", n_img, g, wp, lp, gt)
        xf = xg.reshape(chans, -1)
        span = xf.shape[1] - (k - 1) * wp - (k - 1)
        _run("weight_gradient", chans * (gt.shape[1] // lane), xf, gt, wp, span, lane, dw)
        return
    # dw: one GEMM per tap over the batch-folded grids
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
