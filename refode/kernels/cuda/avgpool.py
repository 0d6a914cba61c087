"""CUDA kernels of ``avgpool``: the CPU module's bodies and drivers, one thread per ``(n, c)``."""
from ..cpu import avgpool as host
from . import port

__all__ = host.__all__
avgpool, avgpool_vjp = port(host)
