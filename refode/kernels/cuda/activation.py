"""CUDA kernels of the activations: the CPU module's bodies and drivers, one thread per element."""
from ..cpu import activation as host
from . import port

__all__ = host.__all__
relu, relu_vjp, gelu, gelu_vjp, elu, elu_vjp, tanh, tanh_vjp = port(host)
