"""Elementwise CUDA kernels on device arrays: the arithmetic between the other kernels.

What the integrator and the models compute with NumPy expressions on the host, done on
the device so that arrays never leave it: ``a + w * b`` (:func:`axpy`, also in place),
``w * a`` (:func:`scale`), ``a + b`` (:func:`add`), zeros, copies, stacking, zero
padding and cropping of images, and zeroing the rows of padded tokens. One thread per
element, in the arrays' dtype: a Python-float weight is cast to that dtype first, as
NumPy casts a weak scalar (``0.5 * float32 array`` multiplies in float32). The
:mod:`refode.backend` functions call these for device arrays and keep the NumPy
expressions for host arrays. Inputs are C-contiguous device arrays (:func:`contiguous`
copies one that is not); outputs are new device arrays unless ``out`` is given.
"""
import numpy as np

from . import blocks_for, cuda_module

cuda = cuda_module()


@cuda.jit
def _axpy_kernel(n, a, w, b, out):
    i = cuda.grid(1)
    if i < n:
        out[i] = a[i] + w * b[i]


@cuda.jit
def _scale_kernel(n, w, a, out):
    i = cuda.grid(1)
    if i < n:
        out[i] = w * a[i]


@cuda.jit
def _add_kernel(n, a, b, out):
    """``out = a + b`` with ``b`` repeated over the leading axes of ``a`` (``b.size``
    divides ``n``: NumPy's broadcasting of a trailing shape)."""
    i = cuda.grid(1)
    if i < n:
        out[i] = a[i] + b[i % b.size]


@cuda.jit
def _fill_kernel(n, value, out):
    i = cuda.grid(1)
    if i < n:
        out[i] = value


@cuda.jit
def _copy_kernel(n, a, out):
    i = cuda.grid(1)
    if i < n:
        out[i] = a[i]


@cuda.jit(device=True)
def _nchw(t, shape):
    """``(b, c, i, j)`` of flat index ``t`` into a C-contiguous 4-D array of ``shape``."""
    j = t % shape[3]
    i = (t // shape[3]) % shape[2]
    c = (t // (shape[3] * shape[2])) % shape[1]
    return t // (shape[3] * shape[2] * shape[1]), c, i, j


@cuda.jit
def _pad_kernel(n, x, top, left, out):
    """``out (B, C, H + pads, W + pads)``: ``x`` at ``(top, left)``, zeros around it."""
    t = cuda.grid(1)
    if t < n:
        b, c, i, j = _nchw(t, out.shape)
        u, v = i - top, j - left
        if 0 <= u < x.shape[2] and 0 <= v < x.shape[3]:
            out[b, c, i, j] = x[b, c, u, v]
        else:
            out[b, c, i, j] = 0


@cuda.jit
def _crop_kernel(n, x, top, left, out):
    """``out = x[:, :, top:top + H, left:left + W]`` for ``out (B, C, H, W)``."""
    t = cuda.grid(1)
    if t < n:
        b, c, i, j = _nchw(t, out.shape)
        out[b, c, i, j] = x[b, c, i + top, j + left]


@cuda.jit
def _zero_rows_kernel(n, mask, out):
    """``out (R, D)``: row ``r`` set to zero where ``mask[r]``."""
    t = cuda.grid(1)
    if t < n:
        r = t // out.shape[1]
        if mask[r]:
            out[r, t % out.shape[1]] = 0


def _flat(a):
    """The 1-D view of a C-contiguous device array."""
    return a.reshape(a.size)


def _run(kernel, n, *args):
    kernel[blocks_for(n)](n, *args)


def _weight(w, dtype):
    """``w`` as a scalar of ``dtype`` (NumPy's weak-scalar cast of a Python number)."""
    return dtype.type(w)


def empty(shape, dtype):
    """An uninitialised C-contiguous device array."""
    shape = (shape,) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
    return cuda.device_array(shape, dtype=np.dtype(dtype))


def empty_like(a):
    """An uninitialised device array of the shape and dtype of ``a``."""
    return empty(a.shape, a.dtype)


def zeros(shape, dtype):
    """A device array of zeros."""
    out = empty(shape, dtype)
    _run(_fill_kernel, out.size, _weight(0, out.dtype), _flat(out))
    return out


def zeros_like(a):
    """Zeros of the shape and dtype of ``a``."""
    return zeros(a.shape, a.dtype)


def copy(a, out=None):
    """A device copy of the device array ``a`` (into ``out`` if given, same size)."""
    out = empty_like(a) if out is None else out
    _run(_copy_kernel, a.size, _flat(a), _flat(out))
    return out


def contiguous(a):
    """``a`` if C-contiguous, else a C-contiguous device copy (a strided copy)."""
    if a.is_c_contiguous():
        return a
    out = empty_like(a)
    out.copy_to_device(a)   # device to device
    return out


def axpy(a, w, b, out=None):
    """``a + w * b`` (``w`` a Python number) in the arrays' dtype; ``out`` may be ``a``."""
    out = empty_like(a) if out is None else out
    _run(_axpy_kernel, a.size, _flat(a), _weight(w, a.dtype), _flat(b), _flat(out))
    return out


def scale(w, a):
    """``w * a`` (``w`` a Python number) in the dtype of ``a``."""
    out = empty_like(a)
    _run(_scale_kernel, a.size, _weight(w, a.dtype), _flat(a), _flat(out))
    return out


def add(a, b):
    """``a + b`` for two device arrays of one dtype, of one shape or one of them of a
    trailing shape of the other (broadcast over the leading axes, as NumPy does)."""
    if a.size < b.size:
        a, b = b, a   # IEEE addition commutes
    if tuple(a.shape)[a.ndim - b.ndim:] != tuple(b.shape) or a.dtype != b.dtype:
        raise ValueError(f"device add of shapes {tuple(a.shape)} and {tuple(b.shape)}, "
                         f"dtypes {a.dtype} and {b.dtype}: not supported")
    out = empty_like(a)
    _run(_add_kernel, a.size, _flat(a), _flat(b), _flat(out))
    return out


def stack(arrays):
    """``(len(arrays), *shape)`` device array of equally shaped device arrays."""
    first = arrays[0]
    out = empty((len(arrays), *first.shape), first.dtype)
    for i, a in enumerate(arrays):
        copy(a, out[i])
    return out


def concatenate(arrays):
    """The 1-D concatenation of device arrays (each flattened), like ``np.concatenate``
    of their ``ravel()``; all of one dtype."""
    out = empty((sum(a.size for a in arrays),), arrays[0].dtype)
    start = 0
    for a in arrays:
        copy(a, out[start:start + a.size])
        start += a.size
    return out


def pad(x, pads):
    """Zero padding of images ``x (B, C, H, W)``: ``pads = ((top, bottom), (left, right))``,
    as ``np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))``."""
    (top, bottom), (left, right) = pads
    b, c, h, w = x.shape
    out = empty((b, c, h + top + bottom, w + left + right), x.dtype)
    _run(_pad_kernel, out.size, x, top, left, out)
    return out


def crop(x, top, left, shape):
    """``x[:, :, top:top + H, left:left + W]`` as a C-contiguous array of ``shape (B, C, H, W)``."""
    out = empty(shape, x.dtype)
    _run(_crop_kernel, out.size, x, top, left, out)
    return out


def zero_rows(y, mask):
    """Set ``y[mask] = 0`` in place: ``y (B, L, D)``, ``mask (B, L)`` bool device array."""
    width = tuple(y.shape)[-1]
    _run(_zero_rows_kernel, y.size, _flat(mask), y.reshape(y.size // width, width))
    return y
