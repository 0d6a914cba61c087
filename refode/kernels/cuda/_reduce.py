"""Block reductions: one block of ``TPB`` threads reduces one row, column or channel.

A block kernel gives thread ``tid`` the elements ``tid, tid + TPB, tid + 2 TPB, ...`` of
its row, which it sums serially in that order into a float64 partial (the NumPy
definitions of batch norm, layer norm, softmax and cross-entropy sum in float64). The
partials meet in a shared array and :func:`tree_sum` (or :func:`tree_max`) folds them in
a fixed pairwise order: ``buf[t] += buf[t + s]`` for ``s = HALF, HALF / 2, ..., 1``. The
order depends only on ``TPB``, never on timing, and no floating-point atomics are used:
results are deterministic, run to run. The buffer is the block's dynamic shared memory,
``cuda.shared.array(0, float64)`` (see :func:`refode.kernels.cuda.launch_blocks`). Every
thread of a block must call a reduction (they synchronise), so kernels branch around them
only on values uniform over the block.

``TPB`` (threads per block, ``config.CUDA_THREADS_PER_BLOCK`` at compile time) and
``HALF`` (half the smallest power of two ``>= TPB``) are compile-time constants that
:func:`refode.kernels.cuda.specialise` puts into the globals of the functions here.
"""
from ... import config
from . import launch_blocks, specialise

__all__ = ["SHARED_ITEM", "REDUCERS", "block_constants", "compile_blocks", "run_blocks",
           "tree_max", "tree_sum"]

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = TPB = HALF = None


#: bytes of one entry of a block's shared buffer (float64).
SHARED_ITEM = 8


def tree_sum(buf, tid):
    """Sum of ``buf[0:TPB]`` (each thread wrote its ``buf[tid]``), seen by every thread."""
    cuda.syncthreads()
    s = HALF
    while s > 0:
        if tid < s and tid + s < TPB:
            buf[tid] += buf[tid + s]
        cuda.syncthreads()
        s //= 2
    total = buf[0]
    cuda.syncthreads()  # every thread has read buf[0] before anyone writes buf again
    return total


def tree_max(buf, tid):
    """Largest of ``buf[0:TPB]`` (NaN never enters: partials skip NaN), seen by every thread."""
    cuda.syncthreads()
    s = HALF
    while s > 0:
        if tid < s and tid + s < TPB and buf[tid + s] > buf[tid]:
            buf[tid] = buf[tid + s]
        cuda.syncthreads()
        s //= 2
    top = buf[0]
    cuda.syncthreads()
    return top


#: the reduction device functions, compiled with every block kernel.
REDUCERS = (tree_sum, tree_max)


def block_constants():
    """``TPB`` and ``HALF`` for the current ``config.CUDA_THREADS_PER_BLOCK``."""
    tpb = max(1, int(config.CUDA_THREADS_PER_BLOCK))
    return {"TPB": tpb, "HALF": 1 << max(0, (tpb - 1).bit_length() - 1) if tpb > 1 else 0}


def compile_blocks(*functions):
    """``functions`` (block kernels and their helpers) compiled with the reducers for the
    current block size (see :func:`refode.kernels.cuda.specialise`)."""
    return specialise(REDUCERS + functions, **block_constants())


def run_blocks(functions, name, blocks, *args, n_out=1):
    """Launch block kernel ``name`` of ``functions`` on ``blocks`` blocks of ``TPB`` threads,
    each with a float64 shared buffer of ``TPB`` entries (``cuda.shared.array(0, float64)``)."""
    kernels = compile_blocks(*functions)
    tpb = block_constants()["TPB"]
    launch_blocks(getattr(kernels, name), blocks, tpb, tpb * SHARED_ITEM, *args, n_out=n_out)
