"""CUDA kernels of ``cross_entropy``: the CPU module's bodies and drivers, one thread per row.

On the device, ``loss`` must be a (1,) array.
"""
from ..cpu import cross_entropy as host
from . import port

__all__ = host.__all__
cross_entropy, cross_entropy_vjp = port(host)
