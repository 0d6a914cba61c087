"""Numba CPU kernels of ``conv2d`` (see :mod:`refode.kernels.reference.conv2d`).

im2col + one GEMM. The columns of all images sit in one buffer ``cols`` of shape
``(C k k, N, Ho Wo)``, row ``r = (c k + ki) k + kj`` holding what kernel tap
``(c, ki, kj)`` sees, built by a ``prange`` loop whose tasks write disjoint rows.
Then a single BLAS GEMM ``(O, C k k) @ (C k k, N Ho Wo)`` runs outside any parallel
region (Numba's and OpenBLAS's thread pools never nest), and a NumPy copy puts
the ``(O, N, ...)`` product into the ``(N, O, ...)`` output.

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

Not shared with CUDA: the CUDA backend convolves directly, one thread per output
element, because this layout exists to feed one BLAS GEMM called outside the parallel
loops, and neither the GEMM nor the workspace temporaries have a CUDA counterpart.
"""
import numba
import numpy as np

from ... import config
from ..workspace import Workspace

__all__ = ["conv2d", "conv2d_vjp"]
_PARALLEL = config.njit_options(parallel=True)


@numba.njit(**_PARALLEL)
def _im2col(x, k, stride, pad, cols):
    """Fill ``cols (C k k, N, Ho Wo)`` from ``x (N, C, H, W)``; parallel over (row, image)."""
    n_img, chans, height, width = x.shape
    ho = (height + 2 * pad - k) // stride + 1
    wo = (width + 2 * pad - k) // stride + 1
    for task in numba.prange(chans * k * k * n_img):
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


@numba.njit(**_PARALLEL)
def _col2im(dcols, k, stride, pad, dx):
    """``dx (N, C, H, W)`` = sum of the column cotangents ``dcols (C k k, N, Ho Wo)`` over taps.

    Parallel over ``(n, c)``: each task owns ``dx[n, c]`` and adds the taps in order.
    """
    n_img, chans, height, width = dx.shape
    ho = (height + 2 * pad - k) // stride + 1
    wo = (width + 2 * pad - k) // stride + 1
    for task in numba.prange(n_img * chans):
        n, c = divmod(np.int64(task), chans)
        dx[n, c] = 0
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


def _sizes(x, w, stride, pad):
    """``(k, Ho, Wo)`` of a convolution of ``x`` with ``w``."""
    k = w.shape[2]
    ho = (x.shape[2] + 2 * pad - k) // stride + 1
    wo = (x.shape[3] + 2 * pad - k) // stride + 1
    return k, ho, wo


def _columns(x, w, stride, pad, workspace):
    """The im2col buffer ``(C k k, N, Ho Wo)`` of ``x``, filled, from ``workspace``."""
    k, ho, wo = _sizes(x, w, stride, pad)
    cols = workspace.buffer("cols", (x.shape[1] * k * k, x.shape[0], ho * wo), x.dtype)
    _im2col(x, k, stride, pad, cols)
    return cols


def conv2d(x, w, stride, pad, out, *, workspace=None):
    """Convolution (PyTorch's cross-correlation), zero padding, no bias.

    Parameters
    ----------
    x : (N, C, H, W) float32 or float64, C-contiguous
    w : (O, C, k, k) same dtype, C-contiguous
    stride : int
    pad : int
    out : (N, O, Ho, Wo) same dtype, C-contiguous; overwritten
    workspace : Workspace, optional
        Scratch buffers reused across calls (see the module docstring).
    """
    workspace = Workspace() if workspace is None else workspace
    n_img, n_out = x.shape[0], w.shape[0]
    cols = _columns(x, w, stride, pad, workspace)
    prod = workspace.buffer("out_t", (n_out, n_img, cols.shape[2]), x.dtype)
    np.matmul(w.reshape(n_out, -1), cols.reshape(cols.shape[0], -1), out=prod.reshape(n_out, -1))
    out.reshape(n_img, n_out, -1)[...] = prod.transpose(1, 0, 2)


def conv2d_vjp(x, w, g, stride, pad, dx, dw, *, workspace=None):
    """Cotangents of ``x`` and ``w`` of :func:`conv2d` for the output cotangent ``g``.

    Parameters
    ----------
    x : (N, C, H, W), C-contiguous
    w : (O, C, k, k), C-contiguous
    g : (N, O, Ho, Wo), C-contiguous
    stride, pad : int
    dx : (N, C, H, W), C-contiguous; overwritten
    dw : (O, C, k, k), C-contiguous; overwritten
    workspace : Workspace, optional
        Scratch buffers reused across calls (shared with :func:`conv2d`).
    """
    workspace = Workspace() if workspace is None else workspace
    n_img, n_out = x.shape[0], w.shape[0]
    k = w.shape[2]
    cols = _columns(x, w, stride, pad, workspace)
    cols2 = cols.reshape(cols.shape[0], -1)
    g_t = workspace.buffer("out_t", (n_out, n_img, cols.shape[2]), x.dtype)
    g_t[...] = g.reshape(n_img, n_out, -1).transpose(1, 0, 2)
    g_t2 = g_t.reshape(n_out, -1)
    # dw^T = cols g^T: the long reduction (N Ho Wo) runs down the columns of both
    # operands, the layout OpenBLAS handles fastest for this shape (measured)
    dw_t = workspace.buffer("dw_t", (cols2.shape[0], n_out), x.dtype)
    np.matmul(cols2, g_t2.T, out=dw_t)
    dw.reshape(n_out, -1)[...] = dw_t.T
    np.matmul(w.reshape(n_out, -1).T, g_t2, out=cols2)  # column cotangents, in place
    _col2im(cols, k, stride, pad, dx)
