"""CUDA kernels of ``dense``: the CPU module's bodies and drivers, one thread per element."""
from ..cpu import dense as host
from . import port

__all__ = host.__all__
dense, dense_vjp = port(host)
