"""Smoke tests of ``benchmarks/gpu.py`` (issue 12) under Numba's CUDA simulator.

``gpu.py --quick`` in the simulator runs W1, W2 and W4 at tiny sizes with refode's CUDA
backend and checks refode-cuda's outputs and gradients against refode's CPU backend and
against PyTorch (CUDA where it has a device, else CPU); it exits 1 on a disagreement
(``test_broken_refode_output_fails`` shows that it does) and 2 where CUDA cannot run.
The real-GPU run (PyTorch CUDA timed beside refode) is not exercised here.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "gpu.py")
HAS_TORCH = importlib.util.find_spec("torch") is not None
#: the rows of each workload with both dtypes (W4: Euler and RK4).
ROWS = {"W1": ["float64", "float32"], "W2": ["float64", "float32"],
        "W4": [f"{d}/{s}" for d in ("float64", "float32") for s in ("euler", "rk4")]}
#: the coefficient arrays of W1's block (two convolutions, two batch norms' gamma/beta).
MIN_COEFFICIENTS = 6
#: what the broken run adds to refode-cuda's input gradient, relative.
PERTURBATION = 1e-6
#: a child that makes refode-cuda's ``dx`` wrong by :data:`PERTURBATION`, then runs main.
BROKEN_CHILD = f"""
import sys
sys.path.insert(0, {ROOT!r})
from benchmarks import gpu
honest = gpu.refode_arrays
def broken(arrays):
    out = honest(arrays)
    out["dx"] = out["dx"] * (1 + {PERTURBATION!r})
    return out
gpu.refode_arrays = broken
sys.exit(gpu.main(sys.argv[1:]))
"""


def run_gpu(args, simulator="1", child=None):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": simulator}
    if simulator != "1":
        env["CUDA_VISIBLE_DEVICES"] = ""  # no GPU even on a machine that has one
    command = [sys.executable, *(["-c", child] if child else [SCRIPT]), *args]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1200)


@pytest.mark.cuda
@pytest.mark.slow  # about 3 minutes on 2 busy cores: every CUDA thread is a Python thread
def test_quick_in_simulator(tmp_path):
    out = tmp_path / "gpu.json"
    proc = run_gpu(["--quick", "--json", str(out)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["device"]["simulator"] is True
    assert "simulator" in report["device"]["name"].lower()
    assert len(report["device"]["compute_capability"]) == 2
    assert report["machine"]["numba_cuda"] and report["machine"]["numba"]
    assert report["simulator_settings"]["CUDA_THREADS_PER_BLOCK"] > 0
    assert report["failures"] == []
    torch_cuda = "pytorch-cuda" not in report["skipped"]
    if not torch_cuda:
        assert "pytorch-cuda: skipped" in proc.stdout
    assert sorted(report["workloads"]) == sorted(ROWS)
    for name, labels in ROWS.items():
        rows = report["workloads"][name]["rows"]
        assert sorted(rows) == sorted(labels), name
        for label, row in rows.items():
            where = (name, label)
            assert row["times"]["refode-cuda"]["median_s"] > 0, where
            assert row["flops"] > 0 and row["gflops"]["refode-cuda"] > 0, where
            expected = {"refode-cpu"}
            if HAS_TORCH:
                expected.add("pytorch-cuda" if torch_cuda else "pytorch-cpu")
            assert set(row["agreement"]) == expected, where
            for lib, agree in row["agreement"].items():
                assert agree["ok"] and agree["worst_error"] <= agree["rtol"], (where, lib)
                assert agree["rtol"] == report["rtol"][label.split("/")[0]]
                if name == "W4":
                    assert set(agree["errors"]) == {"logits"}, (where, lib)
                else:
                    assert {"h", "dx"} <= set(agree["errors"]), (where, lib)
                    coefficients = [e for e in agree["errors"] if e.startswith("d[")]
                    assert len(coefficients) >= MIN_COEFFICIENTS, (where, lib)
            if not torch_cuda:
                assert "pytorch-cuda" in row["skipped"], where
                assert "pytorch-cuda" not in row["times"], where
    assert "W2 float32" in proc.stdout and "W4 float64/rk4" in proc.stdout


@pytest.mark.cuda
def test_broken_refode_output_fails(tmp_path):
    """A wrong refode-cuda input gradient is reported against both references, exit 1."""
    out = tmp_path / "broken.json"
    proc = run_gpu(["--quick", "--only", "W1", "--dtypes", "float64", "--json", str(out)],
                   child=BROKEN_CHILD)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    agreement = report["workloads"]["W1"]["rows"]["float64"]["agreement"]
    references = ["refode-cpu"] + (["pytorch-cpu"] if HAS_TORCH and
                                   "pytorch-cuda" in report["skipped"] else [])
    for lib in references:
        agree = agreement[lib]
        assert not agree["ok"] and agree["worst"] == "dx", lib
        assert 0.5 * PERTURBATION < agree["errors"]["dx"] < 2 * PERTURBATION, lib
        assert agree["errors"]["h"] <= agree["rtol"], lib  # only dx was broken
        assert any(line.startswith(f"W1 float64 {lib}: dx") for line in report["failures"])
    assert "FAIL W1 float64 refode-cpu: dx" in proc.stderr


@pytest.mark.cuda
def test_without_cuda_exits_2():
    """Neither a GPU nor the simulator: one line saying what to do, exit status 2."""
    proc = run_gpu(["--quick"], simulator="0")
    assert proc.returncode == 2, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "NUMBA_ENABLE_CUDASIM" in lines[0], proc.stderr
    assert proc.stdout == ""


def test_timed_call_synchronises():
    """The timed call waits for the device: ``sync`` runs after the call, inside it."""
    sys.path.insert(0, ROOT)
    from benchmarks import gpu

    order = []
    call = gpu.synced(lambda: order.append("call") or "result", lambda: order.append("sync"))
    assert order == []
    assert call() == "result" and order == ["call", "sync"]


def test_parse_rejects_other_workloads():
    sys.path.insert(0, ROOT)
    from benchmarks import gpu

    args = gpu.parse(["--only", "w1,W4", "--dtypes", "float32"])
    assert args.only == ["W1", "W4"] and args.dtypes == ["float32"]
    for bad in (["--only", "W3"], ["--dtypes", "float16"]):
        with pytest.raises(SystemExit):
            gpu.parse(bad)
