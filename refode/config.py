"""Process-wide switches, read once from the environment at import time.

``REFODE_FASTMATH``
    ``1`` compiles the Numba CPU kernels with ``fastmath=True``. Off by default:
    fastmath lets LLVM reassociate sums, which breaks bitwise reproducibility
    against the NumPy reference definitions and across builds.
``REFODE_CACHE``
    ``1`` caches compiled kernels on disk (``cache=True``; with ``NUMBA_CACHE_DIR``
    where they go). Off by default (decided in issue 11, docs/performance.md): it
    cuts the first calls of a ContinuousNet and a tagger step from about 13 s to
    1.0 s, but Numba keys a cached kernel on the timestamp of the one file that
    defines it, while refode's kernels inline bodies and constants from other
    modules, so an edited or partly upgraded source can silently run stale machine
    code. CI loops that keep a cache directory should set it and clear the directory
    when refode changes.
``REFODE_PARALLEL_MIN_BYTES`` (default 65536)
    A CPU kernel whose array arguments hold fewer bytes than this runs on the calling
    thread only (:mod:`refode.kernels._threads`): handing chunks to worker threads
    costs tens of microseconds, more than such a kernel's work. Results do not depend
    on it. The test suite sets it to 0 so that its small shapes run split over threads.
``OMP_WAIT_POLICY`` (set here to ``PASSIVE`` unless already set)
    The loops of projection between bases (``prange``) run on Numba's
    thread pool and alternate with OpenBLAS's (one GEMM outside every parallel
    region); the op kernels use refode's own worker threads, which sleep on a
    semaphore between calls. Numba's default threading
    layer is OpenMP (libgomp), whose threads spin after each parallel region
    (``ACTIVE`` waiting), taking the cores away from the OpenBLAS threads that run
    next; on few cores this made the conv workload W1 about 1.6x slower. Importing
    refode therefore does ``os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")``:
    idle OpenMP threads sleep. Trade-off: waking sleeping threads costs a few
    microseconds per parallel region, which only matters for many tiny kernels. It
    takes effect only if the OpenMP runtime has not started yet (refode imported
    before any parallel Numba function ran, or other OpenMP library was loaded); it
    applies to every OpenMP runtime loaded later in the process (PyTorch's too). To
    keep spinning threads, set ``OMP_WAIT_POLICY=ACTIVE`` (or any value) before
    importing refode. The ``workqueue`` layer does not spin but is not thread safe;
    refode does not select it.
``OPENBLAS_THREAD_TIMEOUT`` (set here to ``4`` unless already set)
    OpenBLAS's own worker threads (its pthreads build, NumPy's and SciPy's wheels)
    spin for ``2^28`` cycles, some 90 ms, after each multi-threaded GEMM before they
    sleep. refode's kernels alternate with GEMMs (the convolution's weight gradient,
    the dense layers, the stride-2 VJPs), so on few cores the spinning thread took a
    core from refode's worker threads: measured on 2 cores, each convolution after a
    GEMM ran at half speed for about 45 ms, and W1 float64 took 550 instead of 475 ms
    (issue 11, docs/performance.md). ``OPENBLAS_THREAD_TIMEOUT=4`` makes them spin
    ``2^4`` cycles, then sleep; waking them costs microseconds per GEMM. OpenBLAS reads
    the variable when it is loaded, that is when NumPy is first imported: it takes
    effect where refode is imported before NumPy (the ``refode`` command, scripts that
    import refode first) and otherwise not (set it in the shell then). It changes no
    result.
``REFODE_MALLOC`` (glibc only; ``0`` leaves malloc as it is)
    A step of an ODE-block allocates its intermediates and temporaries afresh (NumPy
    arrays of a few MiB). glibc serves such sizes with ``mmap`` or returns freed
    heap tops to the system, so every array is page-faulted and zeroed by the kernel
    again: in the transformer workload W2 (float64) 463,000 page faults and a quarter
    of the time of five steps (issue 11, docs/performance.md). Importing refode
    therefore calls ``mallopt`` once: arrays below :data:`MMAP_THRESHOLD` come from the
    heap, and at most :data:`TRIM_THRESHOLD` of freed heap stays with the process for
    reuse (the resident size can stay that much above what is live). Not done when
    ``REFODE_MALLOC=0``, when the user already tuned malloc (``MALLOC_MMAP_THRESHOLD_``,
    ``MALLOC_TRIM_THRESHOLD_`` or ``GLIBC_TUNABLES`` set), or off glibc. It applies to
    the whole process (other libraries' arrays too) and changes no result.
    :data:`MALLOC_TUNED` says whether it was done.
"""
import ctypes
import os
import sys
import warnings

_TRUE = ("1", "true", "yes", "on")

#: the OpenMP wait policy refode asks for (see the module docstring); a user's wins.
OMP_WAIT_POLICY = os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
#: log2 of the cycles OpenBLAS's idle threads spin (the module docstring); a user's wins.
OPENBLAS_THREAD_TIMEOUT = os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

#: fastmath flag handed to every ``numba.njit`` in refode (never hard-coded elsewhere).
FASTMATH = os.environ.get("REFODE_FASTMATH", "0").strip().lower() in _TRUE
#: on-disk cache flag handed to every ``numba.njit`` in refode.
CACHE = os.environ.get("REFODE_CACHE", "0").strip().lower() in _TRUE

#: kernels whose arrays hold fewer bytes run on the calling thread only (see above).
PARALLEL_MIN_BYTES = 1 << 16
try:
    PARALLEL_MIN_BYTES = int(os.environ.get("REFODE_PARALLEL_MIN_BYTES", PARALLEL_MIN_BYTES))
except ValueError:
    warnings.warn("REFODE_PARALLEL_MIN_BYTES must be an integer number of bytes (e.g. 65536); "
                  f"using {PARALLEL_MIN_BYTES}", RuntimeWarning, stacklevel=1)

#: default floating dtype of refode (float32 is supported where documented).
DEFAULT_DTYPE = "float64"

#: arrays up to this size (bytes) come from the heap once malloc is tuned (glibc caps it
#: at 32 MiB on 64-bit systems).
MMAP_THRESHOLD = 32 * 2**20
#: freed heap kept by the process for reuse once malloc is tuned (bytes).
TRIM_THRESHOLD = 256 * 2**20
#: ``mallopt`` parameter numbers of glibc's ``malloc.h``.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
#: environment variables by which a user tunes glibc's malloc (refode then leaves it).
_USER_MALLOC_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def _tune_malloc():
    """Set glibc's mmap and trim thresholds (module docstring); True if it was done."""
    wanted = os.environ.get("REFODE_MALLOC", "1").strip().lower() in _TRUE
    if not wanted or any(k in os.environ for k in _USER_MALLOC_SETTINGS):
        return False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: leave them
            return False
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                    and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False


#: whether importing refode tuned glibc's malloc (``REFODE_MALLOC``).
MALLOC_TUNED = _tune_malloc()

#: threads per block of the CUDA kernels (tests patch it to a small odd number).
CUDA_THREADS_PER_BLOCK = 256


def njit_options(parallel=False):
    """Keyword arguments for ``numba.njit`` following the switches above."""
    return {"fastmath": FASTMATH, "cache": CACHE, "parallel": parallel, "nogil": True}
