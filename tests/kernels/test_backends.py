"""Every backend exports the same kernels with the same signatures; the Backend object."""
import importlib
import inspect
import os
import subprocess
import sys

import numpy as np
import pytest

from refode import backend as backends
from refode import kernels
from refode.errors import RefodeError


def _module(backend, op):
    return importlib.import_module(f"refode.kernels.{backend}.{op}")


def _public_functions(module):
    """Names of the public functions a module defines or re-exports as kernels."""
    return sorted(name for name, obj in vars(module).items()
                  if callable(obj) and not name.startswith("_") and not inspect.isclass(obj)
                  and getattr(obj, "__module__", "").startswith("refode.kernels.")
                  and name in getattr(module, "__all__", ()))


def test_every_backend_has_every_op():
    for backend in kernels.BACKENDS:
        package = importlib.import_module(f"refode.kernels.{backend}")
        found = sorted(p[:-3] for p in os.listdir(os.path.dirname(package.__file__))
                       if p.endswith(".py") and not p.startswith("_"))
        assert found == sorted(kernels.OPS), backend


@pytest.mark.parametrize("op", kernels.OPS)
def test_backends_export_the_same_kernels_with_the_same_signatures(op):
    reference = _module("reference", op)
    names = list(reference.__all__)
    assert names and all(inspect.isfunction(getattr(reference, n)) for n in names)
    for backend in kernels.COMPILED:
        module = _module(backend, op)
        assert list(module.__all__) == names, backend
        assert _public_functions(module) == sorted(names), backend
        for name in names:
            want = inspect.signature(getattr(reference, name))
            assert inspect.signature(getattr(module, name)) == want, (backend, name)
            assert kernels.get(f"{op}.{name}", backend) is getattr(module, name)


def test_backend_objects():
    cpu = backends.get("cpu")
    assert cpu == backends.Backend("cpu") and backends.get(cpu) is cpu
    assert cpu.kernel("dense") is kernels.get("dense", cpu) is kernels.get("dense", "cpu")
    assert cpu.available() and repr(cpu) == "Backend('cpu')"
    x = np.arange(3.0)
    assert cpu.to_device(x) is x and cpu.to_host(x) is x
    with pytest.raises(RefodeError, match="unknown backend 'tpu'; choose one of reference, cpu"):
        backends.get("tpu")


def test_cuda_backend_keeps_arrays_on_the_device(rng):
    cuda = backends.get("cuda")  # the simulator (tests/conftest.py)
    x = rng.standard_normal((3, 4))
    d_x, d_out = cuda.to_device(x), cuda.to_device(np.empty_like(x))
    assert hasattr(d_x, "copy_to_host") and cuda.to_device(d_x) is d_x
    cuda.kernel("activation.tanh")(d_x, d_out)
    np.testing.assert_allclose(cuda.to_host(d_out), np.tanh(x), rtol=1e-12)


def test_missing_gpu_is_one_clear_line():
    code = ("import os; os.environ['NUMBA_ENABLE_CUDASIM'] = '0'; import refode.backend as b\n"
            "try:\n    b.get('cuda')\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, NUMBA_ENABLE_CUDASIM="0", CUDA_VISIBLE_DEVICES=""))
    if out.stdout.strip() == "":  # pragma: no cover - a machine with a GPU
        pytest.skip("a GPU is available")
    assert out.stdout.count("\n") == 1 and out.stdout.startswith("RefodeError ")
    assert "backend='cpu'" in out.stdout or "pip install" in out.stdout


def test_importing_refode_does_not_import_numba_cuda():
    code = "import sys, refode, refode.backend; print('numba.cuda' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
