"""CUDA kernels of ``layernorm``: the CPU module's bodies and drivers, a thread per row / column."""
from ..cpu import layernorm as host
from . import port

__all__ = host.__all__
layernorm, layernorm_vjp = port(host)
