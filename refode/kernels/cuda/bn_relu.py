"""CUDA kernels of ``bn_relu``: the CUDA batch norm followed by the CUDA ReLU (a device
temporary between them), as in :mod:`refode.kernels.reference.bn_relu`."""
from ...constants import BN_EPS as EPS
from ..cpu import bn_relu as host
from . import activation, batchnorm as bn, cuda_module, on_device, to_device

__all__ = host.__all__


def _device_like(a):
    return cuda_module().device_array(a.shape, dtype=a.dtype)


def _to_host(dev, host_out):
    if not on_device(host_out):
        dev.copy_to_host(host_out)


def _on_device(a):
    return to_device(cuda_module(), a)


def bn_relu(x, gamma, beta, r, mean, var, eps=EPS):
    """Arguments as :func:`refode.kernels.reference.bn_relu.bn_relu`; host or device arrays."""
    y, r_dev = _device_like(r), (r if on_device(r) else _device_like(r))
    bn.batchnorm(_on_device(x), gamma, beta, y, mean, var, eps)
    activation.relu(y, r_dev)
    _to_host(r_dev, r)


def bn_relu_eval(x, gamma, beta, mean, var, r, eps=EPS):
    """Arguments as the reference ``bn_relu_eval``; host or device arrays."""
    y, r_dev = _device_like(r), (r if on_device(r) else _device_like(r))
    bn.batchnorm_eval(_on_device(x), gamma, beta, mean, var, y, eps)
    activation.relu(y, r_dev)
    _to_host(r_dev, r)


def bn_relu_vjp(x, gamma, r, dr, dx, dgamma, dbeta, eps=EPS):
    """Arguments as the reference ``bn_relu_vjp``; host or device arrays."""
    dy = _device_like(dr)
    activation.relu_vjp(_on_device(r), _on_device(dr), dy)
    bn.batchnorm_vjp(_on_device(x), gamma, dy, dx, dgamma, dbeta, eps)
