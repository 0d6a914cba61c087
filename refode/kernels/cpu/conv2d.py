"""Numba CPU kernels of ``conv2d`` (see :mod:`refode.kernels.reference.conv2d`).

Strides 1 and 2 run the direct kernel of :mod:`refode.kernels.cpu._conv2d_direct` (and
the VJP of stride 1); otherwise im2col + one GEMM. The columns of all images sit in one buffer ``cols`` of shape
``(C k k, N, Ho Wo)``, row ``r = (c k + ki) k + kj`` holding what kernel tap
``(c, ki, kj)`` sees, built by a parallel loop whose tasks write disjoint rows.
Then a single BLAS GEMM ``(O, C k k) @ (C k k, N Ho Wo)`` runs outside any parallel
region (Numba's and OpenBLAS's thread pools never nest), and a copy puts the
``(O, N, ...)`` product into the ``(N, O, ...)`` output.

The VJP rebuilds the columns, computes ``dw`` as one GEMM of them with the
transposed cotangent (``dw^T = cols g^T``, then a tiny transpose), then the column
cotangents as one GEMM (into the same buffer) and folds them back with a col2im
that is parallel over ``(n, c)``: every task owns one input plane and adds the taps
in a fixed order, so results are bitwise identical for any number of Numba threads.

Workspace: pass ``workspace=refode.kernels.workspace.Workspace()`` (one per layer,
or per shape) and the temporaries (the columns, ``C k k N Ho Wo`` elements, a
transposed output, ``O N Ho Wo`` elements, and ``dw^T``) are allocated on the first
call only. The VJP rebuilds the columns rather than trusting a workspace filled by the forward
call (a workspace does not know which ``x`` its buffers came from).

Speed: the kernels alternate between Numba's thread pool and OpenBLAS's. Pools that
busy-wait after their work (libgomp, Numba's default ``omp`` layer, unless
``OMP_WAIT_POLICY=PASSIVE``) steal cores from the other pool; importing refode sets
``OMP_WAIT_POLICY=PASSIVE`` unless the variable is already set (:mod:`refode.config`).

CUDA runs the same bodies and drivers, one thread per task, its GEMMs the tiled
shared-memory GEMM (``Runner.matmul``), its temporaries on the device (``workspace`` is not used).
"""
import numpy as np

from ...constants import BN_EPS as EPS
from .._compile import Runner
from . import _conv2d_direct as direct, bn_relu as _bn_relu

__all__ = ["conv2d", "conv2d_vjp", "bn_relu_conv2d"]


def _im2col(x, k, stride, pad, cols, task):
    """Task ``task = (r, n)``: row ``r`` of image ``n`` of ``cols (C k k, N, Ho Wo)``."""
    n_img, chans, height, width = x.shape
    ho = (height + 2 * pad - k) // stride + 1
    wo = (width + 2 * pad - k) // stride + 1
    r, n = divmod(np.int64(task), n_img)
    c, tap = divmod(r, k * k)
    ki, kj = divmod(tap, k)
    # output columns j whose input column j * stride - pad + kj lies inside [0, W)
    j_lo = min(wo, max(0, (pad - kj + stride - 1) // stride))
    j_hi = max(j_lo, min(wo, (width - 1 + pad - kj) // stride + 1))
    for i in range(ho):
        h = i * stride - pad + ki
        row = i * wo
        if h < 0 or h >= height:
            for j in range(wo):
                cols[r, n, row + j] = 0
            continue
        for j in range(j_lo):
            cols[r, n, row + j] = 0
        for j in range(j_lo, j_hi):
            cols[r, n, row + j] = x[n, c, h, j * stride - pad + kj]
        for j in range(j_hi, wo):
            cols[r, n, row + j] = 0


def _col2im(dcols, k, stride, pad, dx, task):
    """Task ``task = (n, c)``: ``dx[n, c]`` = the column cotangents ``dcols`` summed over taps."""
    n_img, chans, height, width = dx.shape
    ho = (height + 2 * pad - k) // stride + 1
    wo = (width + 2 * pad - k) // stride + 1
    n, c = divmod(np.int64(task), chans)
    for h in range(height):
        for v in range(width):
            dx[n, c, h, v] = 0
    for tap in range(k * k):
        ki, kj = divmod(tap, k)
        r = c * k * k + tap
        j_lo = min(wo, max(0, (pad - kj + stride - 1) // stride))
        j_hi = max(j_lo, min(wo, (width - 1 + pad - kj) // stride + 1))
        for i in range(ho):
            h = i * stride - pad + ki
            if h < 0 or h >= height:
                continue
            for j in range(j_lo, j_hi):
                dx[n, c, h, j * stride - pad + kj] += dcols[r, n, i * wo + j]


def _swap(a, out, t):
    """Task ``t``: ``out[i, j, :] = a[j, i, :]`` with ``(i, j) = divmod(t, out.shape[1])``."""
    i, j = divmod(np.int64(t), out.shape[1])
    for p in range(out.shape[2]):
        out[i, j, p] = a[j, i, p]


BODIES = (_im2col, _col2im, _swap)


def _columns(run, x, w, stride, pad, workspace):
    """The im2col buffer ``(C k k, N, Ho Wo)`` of ``x``, filled, from ``workspace``."""
    k = w.shape[2]
    ho = (x.shape[2] + 2 * pad - k) // stride + 1
    wo = (x.shape[3] + 2 * pad - k) // stride + 1
    cols = workspace.buffer("cols", (x.shape[1] * k * k, x.shape[0], ho * wo), x.dtype)
    run("im2col", cols.shape[0] * x.shape[0], x, k, stride, pad, cols)
    return cols


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies and products with ``run``."""

    def conv2d(x, w, stride, pad, out, *, workspace=None):
        """Arguments as :func:`refode.kernels.reference.conv2d.conv2d` (C-contiguous arrays).

        ``workspace`` (a :class:`refode.kernels.workspace.Workspace`, optional) keeps the
        temporaries across calls (see the module docstring).
        """
        workspace = run.workspace(workspace)
        n_img, n_out = x.shape[0], w.shape[0]
        cols = _columns(run, x, w, stride, pad, workspace)
        prod = workspace.buffer("out_t", (n_out, n_img, cols.shape[2]), x.dtype)
        run.matmul(w.reshape(n_out, -1), cols.reshape(cols.shape[0], -1), prod.reshape(n_out, -1))
        run("swap", n_img * n_out, prod, out.reshape(n_img, n_out, -1))

    def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
        """Arguments as :func:`refode.kernels.reference.conv2d.conv2d_vjp`; ``workspace`` as
        for ``conv2d`` (shared with it)."""
        workspace = run.workspace(workspace)
        n_img, n_out = x.shape[0], w.shape[0]
        cols = _columns(run, x, w, stride, pad, workspace)
        cols2 = cols.reshape(cols.shape[0], -1)
        g_t = workspace.buffer("out_t", (n_out, n_img, cols.shape[2]), x.dtype)
        run("swap", n_out * n_img, g.reshape(n_img, n_out, -1), g_t)
        g_t2 = g_t.reshape(n_out, -1)
        # dw^T = cols g^T: the long reduction (N Ho Wo) runs down the columns of both
        # operands, the layout OpenBLAS handles fastest for this shape (measured)
        dw_t = workspace.buffer("dw_t", (cols2.shape[0], n_out), x.dtype)
        run.matmul(cols2, g_t2, dw_t, tb=True)
        run("swap", dw.size, dw_t.reshape(-1, n_out, 1), dw.reshape(n_out, -1, 1))
        run.matmul(w.reshape(n_out, -1), g_t2, cols2, ta=True)  # column cotangents, in place
        run("col2im", dx.shape[0] * dx.shape[1], cols, w.shape[2], stride, pad, dx)

    bn_relu_eval = _bn_relu.drivers(type(run)(_bn_relu.BODIES))[1]

    def bn_relu_conv2d(x, gamma, beta, mean, var, w, stride, pad, out, eps=EPS, *,
                       workspace=None):
        """Arguments as :func:`refode.kernels.reference.conv2d.bn_relu_conv2d`: the two
        kernels in a row, the batch norm's output a temporary of the runner's target."""
        r = run.empty(*x.shape, dtype=x.dtype)
        bn_relu_eval(x, gamma, beta, mean, var, r, eps)
        conv2d(r, w, stride, pad, out, workspace=workspace)

    return conv2d, conv2d_vjp, bn_relu_conv2d


_im2col_conv2d, _im2col_conv2d_vjp, _im2col_bn_relu_conv2d = drivers(Runner(BODIES))


def conv2d(x, w, stride, pad, out, *, workspace=None):
    """Arguments as :func:`refode.kernels.reference.conv2d.conv2d` (C-contiguous arrays).

    Strides 1 and 2 (``direct.STRIDES``) run the direct kernel of
    :mod:`refode.kernels.cpu._conv2d_direct`, other strides im2col + GEMM (the module
    docstring). ``workspace`` (a
    :class:`refode.kernels.workspace.Workspace`, optional) keeps the temporaries.
    """
    if stride in direct.STRIDES and pad < w.shape[2]:
        direct.conv2d(x, w, stride, pad, out, Runner.workspace(workspace))
    else:
        _im2col_conv2d(x, w, stride, pad, out, workspace=workspace)


def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
    """Arguments as :func:`refode.kernels.reference.conv2d.conv2d_vjp`; stride 1 direct (the
    cotangent of a strided convolution is no correlation on one grid: im2col + GEMM);
    ``workspace`` as for ``conv2d`` (shared with it)."""
    if stride == 1 and pad < w.shape[2]:
        direct.conv2d_vjp(x, w, g, pad, dx, dw, Runner.workspace(workspace))
    else:
        _im2col_conv2d_vjp(x, w, g, stride, pad, dx, dw, workspace=workspace)


def bn_relu_conv2d(x, gamma, beta, mean, var, w, stride, pad, out, eps=EPS, *, workspace=None):
    """Arguments as :func:`refode.kernels.reference.conv2d.bn_relu_conv2d`.

    Strides 1 and 2: the direct kernel, the batch norm and ReLU applied while the input is copied
    onto its padded grid (:func:`refode.kernels.cpu._conv2d_direct.bn_relu_conv2d`: no
    intermediate array, bitwise ``bn_relu_eval`` then :func:`conv2d`); other strides the
    two kernels in a row.
    """
    if stride in direct.STRIDES and pad < w.shape[2]:
        direct.bn_relu_conv2d(x, gamma, beta, mean, var, eps, w, stride, pad, out,
                              Runner.workspace(workspace))
    else:
        _im2col_bn_relu_conv2d(x, gamma, beta, mean, var, w, stride, pad, out, eps,
                               workspace=workspace)

