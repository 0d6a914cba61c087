"""CUDA kernels of the activations (see :mod:`refode.kernels.reference.activation`).

One thread per element of the flattened arrays; the VJPs take the input ``x``.
Host drivers take host or device arrays (C-contiguous); host outputs are copied back.
"""
import math

from . import blocks_for, cuda_module, on_device, require_gpu, to_device

cuda = cuda_module()

#: 1 / sqrt(2), the scale inside the erf of the exact GELU.
INV_SQRT2 = 0.7071067811865476
#: 1 / sqrt(2 pi), the standard normal density at 0.
INV_SQRT_2PI = 0.3989422804014327


@cuda.jit
def _relu_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = 0 if x[i] <= 0 else x[i]


@cuda.jit
def _relu_vjp_kernel(x, g, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = 0 if x[i] <= 0 else g[i]


@cuda.jit
def _gelu_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = 0.5 * x[i] * (1.0 + math.erf(x[i] * INV_SQRT2))


@cuda.jit
def _gelu_vjp_kernel(x, g, out):
    i = cuda.grid(1)
    if i < x.size:
        v = x[i]
        cdf = 0.5 * (1.0 + math.erf(v * INV_SQRT2))
        out[i] = g[i] * (cdf + v * INV_SQRT_2PI * math.exp(-0.5 * v * v))


@cuda.jit
def _elu_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = x[i] if x[i] > 0 else math.expm1(x[i])


@cuda.jit
def _elu_vjp_kernel(x, g, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = g[i] if x[i] > 0 else g[i] * math.exp(x[i])


@cuda.jit
def _tanh_kernel(x, out):
    i = cuda.grid(1)
    if i < x.size:
        out[i] = math.tanh(x[i])


@cuda.jit
def _tanh_vjp_kernel(x, g, out):
    i = cuda.grid(1)
    if i < x.size:
        y = math.tanh(x[i])
        out[i] = g[i] * (1.0 - y * y)


def _flat(a):
    """``a`` on the device, as a 1-D view."""
    d = to_device(cuda, a)
    return d.reshape(d.size)


def _launch(kernel, inputs, out):
    """One thread per element; copy a host ``out`` back."""
    require_gpu(cuda)
    d_out = to_device(cuda, out)
    blocks, threads = blocks_for(out.size)
    kernel[blocks, threads](*[_flat(a) for a in inputs], d_out.reshape(d_out.size))
    if not on_device(out):
        d_out.copy_to_host(out)


def relu(x, out):
    """``max(x, 0)``; NaN stays NaN."""
    _launch(_relu_kernel, (x,), out)


def relu_vjp(x, g, out):
    """0 where ``x <= 0``, else ``g``."""
    _launch(_relu_vjp_kernel, (x, g), out)


def gelu(x, out):
    """Exact GELU."""
    _launch(_gelu_kernel, (x,), out)


def gelu_vjp(x, g, out):
    """``g (Phi(x) + x phi(x))``."""
    _launch(_gelu_vjp_kernel, (x, g), out)


def elu(x, out):
    """ELU with alpha = 1."""
    _launch(_elu_kernel, (x,), out)


def elu_vjp(x, g, out):
    """``g`` for ``x > 0``, else ``g exp(x)``."""
    _launch(_elu_vjp_kernel, (x, g), out)


def tanh(x, out):
    """Hyperbolic tangent."""
    _launch(_tanh_kernel, (x,), out)


def tanh_vjp(x, g, out):
    """``g (1 - tanh(x)^2)``."""
    _launch(_tanh_vjp_kernel, (x, g), out)
