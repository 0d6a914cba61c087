"""CUDA kernels of ``batchnorm``: the CPU module's bodies and drivers, one thread per channel."""
from ..cpu import batchnorm as host
from . import port

__all__ = host.__all__
batchnorm, batchnorm_eval, batchnorm_vjp, batchnorm_eval_vjp = port(host)
