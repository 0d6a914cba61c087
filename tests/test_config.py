"""Process-wide switches of ``refode.config``: the OpenMP wait policy, OpenBLAS's spin
time and the malloc tuning set at import."""
import os
import subprocess
import sys

import pytest

PROBE = "import os, refode; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize("preset,expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_import_sets_passive_wait_policy_unless_the_user_did(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset is not None:
        env["OMP_WAIT_POLICY"] = preset
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected


#: three 2-thread GEMMs, then the CPU seconds of the process during a 50 ms sleep: the
#: time OpenBLAS's idle threads spin (measured: 0.052 s with OpenBLAS's default, 3e-5 s
#: with refode imported first); refode imported first or not (argv[1]).
SPIN_PROBE = """
import sys, time
if sys.argv[1] == "refode":
    import refode
import numpy as np
a = np.ones((1024, 1024))
for _ in range(3):
    a @ a
t = time.process_time()
time.sleep(0.05)
print(time.process_time() - t)
"""


def test_import_before_numpy_stops_openblas_threads_spinning():
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    env["OPENBLAS_NUM_THREADS"] = "2"

    def spin(first):
        out = subprocess.run([sys.executable, "-c", SPIN_PROBE, first], env=env,
                             capture_output=True, text=True, check=True)
        return float(out.stdout)

    if spin("numpy") < 0.02:
        pytest.skip("this BLAS does not spin after a GEMM here (not OpenBLAS, or one core)")
    assert spin("refode") < 0.01
    env["OPENBLAS_THREAD_TIMEOUT"] = "28"  # the user's setting wins
    assert spin("refode") > 0.02


#: allocate and free two 4 MiB arrays 20 times (after a warm-up); print whether refode
#: tuned malloc and the page faults per round. Untuned glibc gives back the freed heap
#: top and faults about 1,000 pages a round again (measured); tuned, none.
MALLOC_PROBE = """
import resource, numpy as np, refode
n = (4 << 20) // 8
def rounds(k):
    for _ in range(k):
        a = np.ones(n); b = np.ones(n); del a, b
rounds(3)
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds(20)
print(refode.config.MALLOC_TUNED, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 20)
"""


def _malloc_probe(**settings):
    env = {k: v for k, v in os.environ.items()
           if k not in ("REFODE_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_",
                        "GLIBC_TUNABLES")}
    env.update(settings)
    out = subprocess.run([sys.executable, "-c", MALLOC_PROBE], env=env, capture_output=True,
                         text=True, check=True)
    tuned, faults = out.stdout.split()
    return tuned == "True", float(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_import_tunes_malloc_so_that_freed_arrays_are_reused():
    import ctypes

    if not hasattr(ctypes.CDLL(None), "gnu_get_libc_version"):
        pytest.skip("not glibc")
    tuned, faults = _malloc_probe()
    assert tuned and faults < 10
    off, faults_off = _malloc_probe(REFODE_MALLOC="0")
    assert not off and faults_off > 100  # the waste the tuning removes
    user, _ = _malloc_probe(MALLOC_TRIM_THRESHOLD_="131072")
    assert not user  # a user's own setting wins


@pytest.mark.parametrize("value, expected, warns", [
    (None, 65536, False), ("0", 0, False), ("1048576", 1048576, False), ("lots", 65536, True)])
def test_parallel_min_bytes_from_the_environment(value, expected, warns):
    env = {k: v for k, v in os.environ.items() if k != "REFODE_PARALLEL_MIN_BYTES"}
    if value is not None:
        env["REFODE_PARALLEL_MIN_BYTES"] = value
    probe = "from refode import config; print(config.PARALLEL_MIN_BYTES)"
    out = subprocess.run([sys.executable, "-W", "always", "-c", probe], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == expected
    assert ("REFODE_PARALLEL_MIN_BYTES must be an integer" in out.stderr) == warns
