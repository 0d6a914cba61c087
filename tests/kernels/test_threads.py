"""refode.kernels._threads: the tasks of a CPU kernel split over worker threads."""
import os
import subprocess
import sys
import threading

import numba
import numpy as np
import pytest

from refode import config
from refode.kernels import _threads
from refode.kernels._compile import Runner


class Recorder:
    """A plain-Python kernel ``(lo, hi, out)`` that writes ``out[i] = i + 1`` and records
    which thread ran which chunk."""

    def __init__(self, fail_from=None):
        self.calls = []
        self.fail_from = fail_from
        self._lock = threading.Lock()

    def __call__(self, lo, hi, out):
        with self._lock:
            self.calls.append((lo, hi, threading.get_ident()))
        if self.fail_from is not None and lo >= self.fail_from:
            raise IndexError(f"chunk {lo}..{hi} failed")
        out[lo:hi] = np.arange(lo, hi) + 1.0


@pytest.mark.parametrize("n", [0, 1, 5, 16, 17, 1000])
@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_chunks_tile_the_tasks_in_order(n, threads):
    bounds = _threads.chunks(n, threads)
    assert len(bounds) == threads
    assert bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("threads", [2, 3, 5])
def test_chunks_run_on_distinct_threads_and_cover_every_task(threads, monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    kernel, out = Recorder(), np.zeros(23)
    _threads.run_tasks(kernel, out.size, (out,), threads=threads)
    np.testing.assert_array_equal(out, np.arange(23) + 1.0)
    assert sorted((lo, hi) for lo, hi, _ in kernel.calls) == _threads.chunks(23, threads)
    idents = {ident for _, _, ident in kernel.calls}
    assert len(idents) == threads
    first = [ident for lo, _, ident in kernel.calls if lo == 0]
    assert first == [threading.get_ident()]  # chunk 0 runs on the caller


def test_small_arrays_run_on_the_calling_thread(monkeypatch):
    out = np.zeros(8)
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", out.nbytes + 1)
    kernel = Recorder()
    _threads.run_tasks(kernel, out.size, (out,), threads=2)
    assert [(lo, hi) for lo, hi, _ in kernel.calls] == [(0, 8)]
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", out.nbytes)
    kernel = Recorder()
    _threads.run_tasks(kernel, out.size, (out,), threads=2)
    assert len(kernel.calls) == 2


def test_no_tasks_calls_the_kernel_once_on_an_empty_range(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    kernel = Recorder()
    _threads.run_tasks(kernel, 0, (np.zeros(0),), threads=2)
    assert [(lo, hi) for lo, hi, _ in kernel.calls] == [(0, 0)]


def test_error_in_a_worker_chunk_reaches_the_caller_and_the_pool_recovers(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    out = np.zeros(10)
    with pytest.raises(IndexError, match="chunk 5..10 failed"):
        _threads.run_tasks(Recorder(fail_from=5), out.size, (out,), threads=2)
    np.testing.assert_array_equal(out[:5], np.arange(5) + 1.0)  # chunk 0 finished first
    kernel = Recorder()
    _threads.run_tasks(kernel, out.size, (out,), threads=2)
    np.testing.assert_array_equal(out, np.arange(10) + 1.0)
    assert len(kernel.calls) == 2


def test_busy_pool_runs_the_call_on_its_own_thread(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    pool = _threads._pool()
    kernel, out = Recorder(), np.zeros(6)
    assert pool.lock.acquire(blocking=False)
    try:
        _threads.run_tasks(kernel, out.size, (out,), threads=2)
    finally:
        pool.lock.release()
    assert [(lo, hi) for lo, hi, _ in kernel.calls] == [(0, 6)]
    np.testing.assert_array_equal(out, np.arange(6) + 1.0)


FORK_PROBE = r"""
import os, threading
import numpy as np
from refode import config
from refode.kernels import _threads

config.PARALLEL_MIN_BYTES = 0
def kernel(lo, hi, out, idents):
    out[lo:hi] = np.arange(lo, hi) + 1.0
    idents.append(threading.get_ident())

_threads.run_tasks(kernel, 4, (np.zeros(4), []), threads=2)   # the parent's workers exist
pid = os.fork()
if pid == 0:
    out, idents = np.zeros(9), []
    _threads.run_tasks(kernel, 9, (out, idents), threads=2)
    ok = out.tolist() == list(np.arange(9) + 1.0) and len(set(idents)) == 2
    os._exit(0 if ok else 3)
_, status = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_makes_its_own_workers():
    """A child forked after the parent's workers started runs its chunks on new threads
    (the parent's do not exist in the child: waiting for them would hang). A fresh
    interpreter, so that no other library's threads are forked with it."""
    res = subprocess.run([sys.executable, "-c", FORK_PROBE], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split() == ["0"]


def _rowsum(x, out, i):
    """Task ``i``: ``out[i] = sum_j x[i, j]`` in column order."""
    acc = 0.0
    for j in range(x.shape[1]):
        acc += x[i, j] * x[i, j] - j
    out[i] = acc


def test_compiled_kernel_bitwise_identical_for_any_thread_count(monkeypatch):
    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    run = Runner((_rowsum,))
    x = np.random.default_rng(3).standard_normal((37, 11))
    expected = np.array([sum(v * v - j for j, v in enumerate(row)) for row in x])
    before = numba.get_num_threads()
    results = []
    try:
        for threads in range(1, numba.config.NUMBA_NUM_THREADS + 1):
            numba.set_num_threads(threads)
            out = np.full(37, np.nan)
            run("rowsum", x.shape[0], x, out)
            results.append(out)
    finally:
        numba.set_num_threads(before)
    for out in results:
        np.testing.assert_array_equal(out, results[0])
    np.testing.assert_allclose(results[0], expected, rtol=1e-13)
    for threads in (2, 3, 4):  # more chunks than cores too
        out = np.full(37, np.nan)
        _threads.run_tasks(run._loops["rowsum"], x.shape[0], (x, out), threads=threads)
        np.testing.assert_array_equal(out, results[0])



def test_workers_keep_no_reference_to_the_arrays(monkeypatch):
    """Once ``run_tasks`` returns, no worker holds the arguments (they would stay alive
    until the next call and raise the peak memory of a gradient)."""
    import weakref

    monkeypatch.setattr(config, "PARALLEL_MIN_BYTES", 0)
    out = np.zeros(12)
    alive = weakref.ref(out)
    _threads.run_tasks(Recorder(), out.size, (out,), threads=3)
    del out
    assert alive() is None
