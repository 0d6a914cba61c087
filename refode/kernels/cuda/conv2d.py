"""CUDA kernels of ``conv2d``: the CPU module's bodies and drivers: im2col and col2im one
thread per task, the forward and both VJP products on the tiled GEMM of :mod:`._gemm`
(``Runner.matmul``), the temporaries on the device; ``bn_relu_conv2d`` is the CUDA
``bn_relu_eval`` then ``conv2d``."""
from ..cpu import conv2d as host
from . import port

__all__ = host.__all__
conv2d, conv2d_vjp, bn_relu_conv2d = port(host)
