"""Compile one kernel body for both targets: ``numba.njit`` (CPU) and ``cuda.jit(device=True)``.

A *body* is a plain Python function over scalars and arrays (``math`` functions,
loops, no allocation, no slicing assignment) whose last argument is the index of
the task it computes: a row, a column, a channel or an element. It is written once,
in the CPU module of its op, and compiled twice:

- :func:`bodies` compiles a group of bodies with a given ``jit``; calls from one
  body to another of the group go to the compiled version of the same target;
- :func:`loop` wraps a compiled body into a kernel over tasks: for the CPU
  (``"cpu"``) a plain loop over tasks ``lo .. hi - 1``, which :class:`Runner` splits
  over threads (:mod:`refode.kernels._threads`); for CUDA (``"cuda"``, in
  :mod:`refode.kernels.cuda`) one thread per task ``0 .. n - 1``.

Each task writes only its own outputs and sums in a fixed order, so the CPU results
are bitwise identical for any thread count and equal to those of the hand-written
loops these bodies replace. Flags (``fastmath``, ``cache``) come from :mod:`refode.config`.
"""
import types

import numba
import numpy as np

from .. import config
from ._threads import run_tasks
from .workspace import Workspace

_INDEX_MASK = np.uint64(2**63 - 1)  # see _LOOPS["cpu"]

_LOOPS = {
    # the task index is a signed integer (bodies mix it with other int64s), but one that
    # LLVM can see is non-negative (an unsigned loop, masked to 63 bits): else every
    # ``a[i]`` tests for wraparound and the loop does not vectorise (30x slower for an
    # elementwise body). A ``prange`` loop does the same.
    "cpu": ("def {name}(lo, hi, {args}):\n"
            "    for u in range(numba.uint64(lo), numba.uint64(hi)):\n"
            "        body({args}, numba.int64(u & _INDEX_MASK))\n"),
    "cuda": "def {name}(n, {args}):\n    i = cuda.grid(1)\n    if i < n:\n        body({args}, i)\n",
}


def cpu_jit(fn):
    """``numba.njit`` for a body: refode's flags, inlined into the loop that calls it."""
    return numba.njit(**config.njit_options(parallel=False), inline="always")(fn)


def bodies(jit, *functions):
    """Compile ``functions`` (plain Python) with ``jit``.

    Returns
    -------
    types.SimpleNamespace
        The compiled functions under their names without the leading underscore; inside
        them (each keeps the globals of its module), a call to another function of the
        group calls its compiled version.
    """
    scopes, compiled = {}, {}
    for fn in functions:
        scope = scopes.setdefault(fn.__module__, dict(fn.__globals__))
        clone = types.FunctionType(fn.__code__, scope, fn.__name__, fn.__defaults__)
        clone.__qualname__, clone.__module__ = fn.__qualname__, fn.__module__
        compiled[fn.__name__] = jit(clone)
    for scope in scopes.values():
        scope.update(compiled)
    return types.SimpleNamespace(**{name.lstrip("_"): f for name, f in compiled.items()})


def loop(body, target, jit, **scope):
    """A kernel running the compiled ``body(*args, i)`` over tasks ``i``.

    ``"cpu"``: ``kernel(lo, hi, *args)`` for ``lo <= i < hi``; ``"cuda"``:
    ``kernel(n, *args)`` for ``i < n``.

    Parameters
    ----------
    body : compiled body (see :func:`bodies`); its last argument is the task index
    target : {"cpu", "cuda"}
    jit : decorator compiling the generated kernel (``cuda.jit`` for ``"cuda"``)
    scope : names the generated source needs besides ``numba`` and ``body`` (``cuda``)
    """
    py_func = getattr(body, "py_func", getattr(body, "fn", None))
    name = f"{py_func.__name__.lstrip('_')}_{target}"
    args = ", ".join(f"a{k}" for k in range(py_func.__code__.co_argcount - 1))
    source = _LOOPS[target].format(name=name, args=args)
    namespace = dict(scope, numba=numba, body=body, _INDEX_MASK=_INDEX_MASK,
                     __name__=py_func.__module__)
    exec(compile(source, py_func.__code__.co_filename, "exec"), namespace)  # noqa: S102
    return jit(namespace[name])


def rows(a):
    """View a C-contiguous array (host or device) as rows (M, last axis)."""
    return a.reshape(-1, a.shape[a.ndim - 1])


class Runner:
    """Runs task bodies on the CPU: ``run(name, n, *args)`` loops body ``name`` over ``n`` tasks.

    An op module writes its host driver once, as a function of a runner
    (``drivers(run)``); the CUDA backend passes :class:`refode.kernels.cuda.Runner`,
    which has the same interface. ``n_out`` (how many trailing arguments are outputs)
    only matters on CUDA; :meth:`empty` and :meth:`workspace` give scratch arrays where
    the target computes.

    Parameters
    ----------
    functions : the bodies of the op (plain Python), compiled with :func:`bodies`
    parallel : bool
        Tasks split over ``numba.get_num_threads()`` threads (True; see
        :mod:`refode.kernels._threads`) or all run on the calling thread.

    Notes
    -----
    The kernels are compiled without Numba's ``parallel=True``: its ``prange``
    lowering compiles each loop body a second time and made up about two thirds of
    the cold start (issue 11). The threads share nothing but the arrays, each task
    writing its own slices, as the ``prange`` loops did.
    """

    #: columns per task of a column reduction (contiguous lanes of a row vectorise).
    LANES = 64

    def __init__(self, functions, parallel=True):
        self.compiled = bodies(cpu_jit, *functions)
        self._parallel = parallel
        self._loops = {}

    def __call__(self, name, n, *args, n_out=1):
        kernel = self._loops.get(name)
        if kernel is None:
            jit = numba.njit(**config.njit_options())
            kernel = self._loops[name] = loop(getattr(self.compiled, name), "cpu", jit)
        if self._parallel:
            run_tasks(kernel, n, args)
        else:
            kernel(0, n, *args)

    @staticmethod
    def empty(*shape, dtype=np.float64):
        """An uninitialised host array."""
        return np.empty(shape, dtype=dtype)

    @staticmethod
    def workspace(workspace):
        """The caller's :class:`~refode.kernels.workspace.Workspace`, or a throwaway one."""
        return Workspace() if workspace is None else workspace

    @staticmethod
    def matmul(a, b, out, ta=False, tb=False):
        """``out = op(a) @ op(b)`` (``op`` transposes where asked): one BLAS GEMM, called here,
        outside any parallel region (Numba's and OpenBLAS's thread pools never nest)."""
        np.matmul(a.T if ta else a, b.T if tb else b, out=out)
