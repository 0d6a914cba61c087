"""CUDA kernel of ``positions``: the CPU module's body and driver, one thread per row."""
from ..cpu import positions as host
from . import port

__all__ = host.__all__
(positions,) = port(host)
