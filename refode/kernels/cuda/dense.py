"""CUDA kernels of ``dense`` (see :mod:`refode.kernels.reference.dense`).

One thread per output element; sums run over the shared index in order, in float64.
Host drivers take host or device arrays; host outputs are copied back.
"""
import numpy as np

from . import blocks_for, cuda_module, on_device, require_gpu, to_device

cuda = cuda_module()


@cuda.jit
def _dense_kernel(x, w, b, out):
    """``out[m, o] = sum_i x[m, i] w[o, i] + b[o]``."""
    t = cuda.grid(1)
    n_out = out.shape[1]
    if t < out.shape[0] * n_out:
        m = t // n_out
        o = t - m * n_out
        acc = 0.0
        for i in range(x.shape[1]):
            acc += x[m, i] * w[o, i]
        out[m, o] = acc + b[o]


@cuda.jit
def _dx_kernel(w, g, dx):
    """``dx[m, i] = sum_o g[m, o] w[o, i]``."""
    t = cuda.grid(1)
    n_in = dx.shape[1]
    if t < dx.shape[0] * n_in:
        m = t // n_in
        i = t - m * n_in
        acc = 0.0
        for o in range(g.shape[1]):
            acc += g[m, o] * w[o, i]
        dx[m, i] = acc


@cuda.jit
def _dw_kernel(x, g, dw):
    """``dw[o, i] = sum_m g[m, o] x[m, i]``."""
    t = cuda.grid(1)
    n_in = dw.shape[1]
    if t < dw.shape[0] * n_in:
        o = t // n_in
        i = t - o * n_in
        acc = 0.0
        for m in range(x.shape[0]):
            acc += g[m, o] * x[m, i]
        dw[o, i] = acc


@cuda.jit
def _db_kernel(g, db):
    """``db[o] = sum_m g[m, o]``, rows in order."""
    o = cuda.grid(1)
    if o < db.shape[0]:
        acc = 0.0
        for m in range(g.shape[0]):
            acc += g[m, o]
        db[o] = acc


def _launch(kernel, n_threads, inputs, outputs):
    """Run ``kernel`` over ``n_threads`` threads and copy host outputs back."""
    d_out = [to_device(cuda, y) for y in outputs]
    blocks, threads = blocks_for(n_threads)
    kernel[blocks, threads](*[to_device(cuda, a) for a in inputs], *d_out)
    for y, d in zip(outputs, d_out):
        if not on_device(y):
            d.copy_to_host(y)


def dense(x, w, b, out):
    """Host driver: same arguments as the NumPy definition (``b`` may be None)."""
    require_gpu(cuda)
    if b is None:
        b = np.zeros(w.shape[0], dtype=out.dtype)
    _launch(_dense_kernel, out.shape[0] * out.shape[1], (x, w, b), (out,))


def dense_vjp(x, w, g, dx, dw, db):
    """Host driver: same arguments as the NumPy definition (``db`` may be None)."""
    require_gpu(cuda)
    _launch(_dx_kernel, dx.shape[0] * dx.shape[1], (w, g), (dx,))
    _launch(_dw_kernel, dw.shape[0] * dw.shape[1], (x, g), (dw,))
    if db is not None:
        _launch(_db_kernel, db.shape[0], (g,), (db,))
