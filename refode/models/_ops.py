"""Allocating wrappers around the kernels used by the convolutional model.

Kernels take preallocated outputs (passed last) and trust their inputs; the functions
here allocate the outputs, make inputs C-contiguous and return results in the dtype of
their first argument, so that layers read as formulas. ``backend``: the layer's.

Outputs are allocated where the first input is: NumPy arrays for host inputs (the
CPU path), device arrays for device inputs, so a model on the CUDA backend keeps its
activations on the device from layer to layer; a host weight passed with a device
input is copied to the device once for the call (:func:`refode.backend.contiguous`).
"""
import numpy as np

from .. import kernels
from ..backend import contiguous, empty, empty_like, on_device, to_device_like
from ..constants import BN_EPS as EPS, IGNORE_INDEX, KEEP, MOMENTUM  # noqa: F401  (re-exported)

#: the backend of a layer built without one.
BACKEND = "cpu"


_k = kernels.get   # a kernel by name


def _c(x, like=None):
    """``x`` C-contiguous (``np.ascontiguousarray`` on the host), on the device when
    ``x`` or ``like`` is there."""
    return contiguous(x, like)


def same_padding(size, k, stride):
    """Flax/TensorFlow ``'SAME'`` zero padding ``(before, after)`` of one axis.

    ``total = max((ceil(size / stride) - 1) * stride + k - size, 0)``, ``before =
    total // 2``, ``after = total - before``: ``(1, 1)`` for a 3x3 stride-1 conv,
    ``(0, 1)`` for a 3x3 stride-2 conv on an even size, ``(0, 0)`` for 1x1 convs.
    """
    total = max((-(-size // stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def pads(shape, k, stride, padding):
    """Zero padding ``((top, bottom), (left, right))`` of a ``k x k`` conv on ``shape``.

    ``padding`` is ``"symmetric"`` (``k // 2`` on every side, PyTorch's ``padding=k//2``)
    or ``"same"`` (:func:`same_padding` per axis).
    """
    if padding == "symmetric":
        return (k // 2, k // 2), (k // 2, k // 2)
    return same_padding(shape[2], k, stride), same_padding(shape[3], k, stride)


def _pad_input(x, pad):
    """``(x, scalar pad)`` for the kernels: asymmetric padding is applied here, explicitly."""
    if isinstance(pad, int):
        return x, pad
    (top, bottom), (left, right) = pad
    if top == bottom == left == right:
        return x, top
    if on_device(x):
        from ..kernels.cuda import _elementwise

        return _elementwise.pad(x, pad), 0
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right))), 0


def conv(x, w, stride, pad, workspace, *, backend=BACKEND):
    """``(N, C, H, W) * (O, C, k, k) -> (N, O, Ho, Wo)`` (cross-correlation, zero padding).

    ``pad`` is an int (on every side) or ``((top, bottom), (left, right))``.
    """
    x, pad = _pad_input(_c(x), pad)
    w = _c(w, x)
    k = w.shape[2]
    ho = (x.shape[2] + 2 * pad - k) // stride + 1
    wo = (x.shape[3] + 2 * pad - k) // stride + 1
    out = empty((x.shape[0], w.shape[0], ho, wo), x.dtype, x)
    _k("conv2d", backend)(x, w, stride, pad, out, workspace=workspace)
    return out


def conv_vjp(x, w, g, stride, pad, workspace, *, backend=BACKEND):
    """``(dx, dw)`` of :func:`conv` for the output cotangent ``g``."""
    shape = x.shape
    x, scalar = _pad_input(_c(x), pad)
    w, g = _c(w, x), _c(g, x)
    dx, dw = empty_like(x), empty_like(w)
    _k("conv2d.conv2d_vjp", backend)(x, w, g, stride, scalar, dx, dw, workspace=workspace)
    if dx.shape != shape:   # explicitly padded: the cotangent of the unpadded input
        (top, _), (left, _) = pad
        if on_device(dx):
            from ..kernels.cuda import _elementwise

            return _elementwise.crop(dx, top, left, shape), dw
        dx = np.ascontiguousarray(dx[:, :, top:top + shape[2], left:left + shape[3]])
    return dx, dw


def bn_train(x, gamma, beta, *, backend=BACKEND):
    """Training batch norm: ``(y, batch mean, unbiased batch variance)``, stats ``(C,)``."""
    x = _c(x)
    y = empty_like(x)
    mean = empty(x.shape[1], x.dtype, x)
    var = empty(x.shape[1], x.dtype, x)
    _k("batchnorm", backend)(x, _c(gamma, x), _c(beta, x), y, mean, var, EPS)
    return y, mean, var


def bn(x, gamma, beta, mean, var, train, *, backend=BACKEND):
    """Batch norm: ``(y, batch mean, unbiased batch variance)`` in training mode
    (:func:`bn_train`), ``(y, None, None)`` in evaluation with ``mean, var (C,)``."""
    if train:
        return bn_train(x, gamma, beta, backend=backend)
    x = _c(x)
    y = empty_like(x)
    _k("batchnorm.batchnorm_eval", backend)(x, _c(gamma, x), _c(beta, x), _c(mean, x),
                                            _c(var, x), y, EPS)
    return y, None, None


def bn_vjp(x, gamma, mean, var, dy, train, *, backend=BACKEND):
    """``(dx, {"gamma": (C,), "beta": (C,)})`` of :func:`bn` (through the batch statistics
    in training mode); evaluation also gives the cotangents ``"mean"`` and ``"var"``."""
    x = _c(x)
    dy = _c(dy, x)
    dx = empty_like(x)
    d = [empty(x.shape[1], x.dtype, x) for _ in range(2 if train else 4)]
    if train:
        _k("batchnorm.batchnorm_vjp", backend)(x, _c(gamma, x), dy, dx, *d, EPS)
    else:
        _k("batchnorm.batchnorm_eval_vjp", backend)(x, _c(gamma, x), _c(mean, x), _c(var, x),
                                                    dy, dx, *d, EPS)
    return dx, dict(zip(("gamma", "beta", "mean", "var"), d))


def bn_relu(x, gamma, beta, mean, var, train, *, backend=BACKEND):
    """``relu(bn(x))`` fused: ``(r, batch mean, unbiased batch variance)`` in training mode,
    ``(r, None, None)`` in evaluation with ``mean, var (C,)``."""
    x = _c(x)
    r = empty_like(x)
    if not train:
        _k("bn_relu.bn_relu_eval", backend)(x, _c(gamma, x), _c(beta, x), _c(mean, x),
                                            _c(var, x), r, EPS)
        return r, None, None
    mean = empty(x.shape[1], x.dtype, x)
    var = empty(x.shape[1], x.dtype, x)
    _k("bn_relu", backend)(x, _c(gamma, x), _c(beta, x), r, mean, var, EPS)
    return r, mean, var


def bn_relu_conv(x, gamma, beta, mean, var, w, stride, pad, workspace, *, backend=BACKEND):
    """``conv(relu(bn(x)), w)`` in evaluation mode (statistics ``mean, var (C,)``) as one kernel
    (``conv2d.bn_relu_conv2d``): bitwise :func:`bn_relu` then :func:`conv` on the CPU,
    without the intermediate array. ``pad`` is an int (the zero padding follows the ReLU)."""
    x = _c(x)
    w = _c(w, x)
    k = w.shape[2]
    ho = (x.shape[2] + 2 * pad - k) // stride + 1
    wo = (x.shape[3] + 2 * pad - k) // stride + 1
    out = empty((x.shape[0], w.shape[0], ho, wo), x.dtype, x)
    _k("conv2d.bn_relu_conv2d", backend)(x, _c(gamma, x), _c(beta, x), _c(mean, x),
                                         _c(var, x), w, stride, pad, out, EPS,
                                         workspace=workspace)
    return out


def bn_relu_vjp(x, gamma, r, dr, *, backend=BACKEND):
    """``(dx, {"gamma": (C,), "beta": (C,)})`` of the training form of :func:`bn_relu`, from
    its input ``x``, its output ``r`` and the cotangent ``dr``."""
    x = _c(x)
    r, dr = _c(r, x), _c(dr, x)
    dx = empty_like(x)
    d = [empty(x.shape[1], x.dtype, x) for _ in range(2)]
    _k("bn_relu.bn_relu_vjp", backend)(x, _c(gamma, x), r, dr, dx, *d, EPS)
    return dx, dict(zip(("gamma", "beta"), d))


def running_update(running, batch):
    """``KEEP * running + MOMENTUM * batch`` (PyTorch's update of running statistics).

    The running statistics live on the host: a device ``batch`` (``(C,)``, once per
    layer and call) is copied back first."""
    if on_device(batch):
        batch = batch.copy_to_host()
    return MOMENTUM * batch + KEEP * running


def relu(x, *, backend=BACKEND):
    x = _c(x)
    out = empty_like(x)
    _k("activation.relu", backend)(x, out)
    return out


def relu_vjp(x, g, *, backend=BACKEND):
    """Cotangent of the ReLU input ``x`` for the output cotangent ``g``."""
    x = _c(x)
    g = _c(g, x)
    out = empty_like(x)
    _k("activation.relu_vjp", backend)(x, g, out)
    return out


def avgpool(x, *, backend=BACKEND):
    """``(N, C, H, W) -> (N, C)`` global average."""
    x = _c(x)
    out = empty(x.shape[:2], x.dtype, x)
    _k("avgpool", backend)(x, out)
    return out


def avgpool_vjp(g, shape, *, backend=BACKEND):
    out = empty(shape, g.dtype, g)
    _k("avgpool.avgpool_vjp", backend)(_c(g), out)
    return out


def cross_entropy(logits, targets, gradient=True, *, backend=BACKEND):
    """Mean cross-entropy of ``logits (..., C)`` over the ``targets (...)`` other than
    ``IGNORE_INDEX`` (a Python float, 0 when none counts) and its gradient with respect
    to ``logits`` (None unless ``gradient``)."""
    logits = _c(logits)
    targets = to_device_like(np.ascontiguousarray(np.asarray(targets, dtype=np.int64)), logits)
    loss, dlogits = np.empty((), dtype=logits.dtype), None
    _k("cross_entropy", backend)(logits, targets, loss, IGNORE_INDEX)
    if gradient:
        dlogits = empty_like(logits)
        _k("cross_entropy.cross_entropy_vjp", backend)(logits, targets, 1.0, dlogits,
                                                       IGNORE_INDEX)
    return float(loss), dlogits
