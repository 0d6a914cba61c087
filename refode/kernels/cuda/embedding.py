"""CUDA kernels of ``embedding``: the CPU module's bodies and drivers, one thread per row.

The VJP gives each thread one column of ``dweight`` (deterministic, no atomics).
"""
from ..cpu import embedding as host
from . import Runner

__all__ = host.__all__
embedding, embedding_vjp = host.drivers(Runner(host.BODIES), chunk=1)
