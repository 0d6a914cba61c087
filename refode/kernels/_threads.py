"""The tasks of a CPU kernel split over threads: one contiguous chunk per thread.

A CPU kernel is compiled serially (``kernel(lo, hi, *args)`` runs tasks ``lo .. hi - 1``,
with ``nogil``), and :func:`run_tasks` runs chunk 0 on the calling thread and the
others on a small pool of worker threads, then waits for all of them. This is the
static schedule of a Numba ``prange`` loop (equal contiguous chunks), without Numba's
parallel compilation: outlining each ``prange`` loop into a gufunc compiles the loop
body twice and costs 0.5-2 s per kernel, about two thirds of refode's cold start
(issue 11, docs/performance.md, "C1").

The number of threads is ``numba.get_num_threads()`` of the calling thread, so
``NUMBA_NUM_THREADS`` and ``numba.set_num_threads`` keep their meaning. Each task
writes only its own outputs and sums in a fixed order: the results do not depend on
the number of threads or on the chunks.
"""
import os
import threading

import numba

from .. import config


class _Worker:
    """A daemon thread that runs one job at a time: ``start(job)``, then ``join()``.

    Two semaphores and no queue: ``concurrent.futures.ThreadPoolExecutor`` took about
    0.2 ms more per kernel call (its futures, queue and idle bookkeeping) on a 2-core
    machine, where Numba's ``prange`` launch took 0.05 ms more than one thread.
    """

    def __init__(self):
        self._go = threading.Semaphore(0)
        self._done = threading.Semaphore(0)
        self._job = self._error = None
        threading.Thread(target=self._serve, name="refode-worker", daemon=True).start()

    def _serve(self):
        while True:
            self._go.acquire()
            kernel, args = self._job
            try:
                kernel(*args)
            except BaseException as exc:  # noqa: BLE001 - re-raised by join() in the caller
                self._error = exc
            kernel = args = None  # keep no array alive between jobs (peak memory)
            self._done.release()

    def start(self, kernel, args):
        self._job, self._error = (kernel, args), None
        self._go.release()

    def join(self):
        self._done.acquire()
        self._job, error, self._error = None, self._error, None
        return error


class _Pool:
    """Worker threads of this process; one caller at a time (a lock that others do not
    wait for: a kernel called while another thread holds the pool runs on its own
    thread, with the same result)."""

    def __init__(self):
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.workers = []

    def get(self, count):
        while len(self.workers) < count:
            self.workers.append(_Worker())
        return self.workers[:count]


_POOL = _Pool()
_POOL_LOCK = threading.Lock()


def _pool():
    """This process's pool (made afresh in a child after ``fork``: threads do not survive it)."""
    global _POOL
    if _POOL.pid != os.getpid():
        with _POOL_LOCK:
            if _POOL.pid != os.getpid():
                _POOL = _Pool()
    return _POOL


def chunks(n, threads):
    """Bounds ``lo, hi`` of ``threads`` contiguous chunks of ``0 .. n - 1`` (sizes differ
    by at most one, as Numba's static ``prange`` schedule)."""
    return [(n * k // threads, n * (k + 1) // threads) for k in range(threads)]


def run_tasks(kernel, n, args, threads=None):
    """Run ``kernel(lo, hi, *args)`` over the chunks of ``n`` tasks; return when all are done.

    Parameters
    ----------
    kernel : compiled ``nogil`` function ``(lo, hi, *args)``
    n : int, number of tasks
    args : tuple, the kernel's remaining arguments
    threads : int, optional
        Default ``numba.get_num_threads()``; at most ``n`` are used, and one if the
        array arguments hold fewer than ``config.PARALLEL_MIN_BYTES`` bytes: handing a
        chunk to a worker thread costs some 30-80 microseconds (waking it, and the GIL
        for its dispatch), more than such a kernel's whole work.
    """
    threads = min(numba.get_num_threads() if threads is None else threads, n)
    if threads > 1 and sum(getattr(a, "nbytes", 0) for a in args) < config.PARALLEL_MIN_BYTES:
        threads = 1
    pool = _pool() if threads > 1 else None
    if pool is None or not pool.lock.acquire(blocking=False):  # one thread, or pool busy
        kernel(0, n, *args)
        return
    try:
        bounds = chunks(n, threads)
        workers = pool.get(threads - 1)
        for worker, (lo, hi) in zip(workers, bounds[1:]):
            worker.start(kernel, (lo, hi, *args))
        try:
            kernel(*bounds[0], *args)
        finally:  # no chunk still writes after the call returns, even on an error
            errors = [worker.join() for worker in workers]
    finally:
        pool.lock.release()
    for error in errors:
        if error is not None:
            raise error
