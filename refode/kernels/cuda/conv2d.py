"""CUDA kernels of ``conv2d``: the CPU module's bodies and drivers (im2col, GEMM, col2im)."""
from ..cpu import conv2d as host
from . import port

__all__ = host.__all__
conv2d, conv2d_vjp = port(host)
