"""CUDA kernels of ``dense``: the CPU module's drivers, the products on the tiled GEMM of
:mod:`._gemm` (in the input dtype, as the definition), the bias bodies one thread per row
(``add_bias``) or column (``sum_column``, rows added in order in the output dtype: bitwise
the definition's loop)."""
from ..cpu import dense as host
from . import port

__all__ = host.__all__
dense, dense_vjp = port(host)
