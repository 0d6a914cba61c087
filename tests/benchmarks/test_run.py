"""Smoke test of the benchmark harness: ``benchmarks/run.py --quick`` in a subprocess.

The quick run checks that refode's and every installed peer's outputs and gradients
agree (W1 and W2: PyTorch and JAX; W3: the projection against the pair-mean formula;
M1: all checkpoint strategies give bitwise equal gradients) and exits 1 otherwise; this
test also reads the JSON it writes. W4 and C1 (the slowest: a JAX compilation per
scheme and dtype, three fresh interpreters) are left to ``test_quick_w4_c1``, marked slow.
"""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "run.py")
PEERS = [name for name, module in (("pytorch", "torch"), ("jax", "jax"))
         if importlib.util.find_spec(module) is not None]


def run_quick(tmp_path, only):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, SCRIPT, "--quick", "--json", str(out),
                           "--only", only], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def check_peer_rows(report, name, labels):
    rows = report["workloads"][name]["rows"]
    assert sorted(rows) == sorted(labels)
    for label, row in rows.items():
        assert row["times"]["refode"]["median_s"] > 0
        assert sorted(row["agreement"]) == sorted(PEERS), label
        for peer in PEERS:
            agree = row["agreement"][peer]
            assert agree["ok"] and agree["worst_error"] <= agree["rtol"], (label, peer)
            # outputs, the input's gradient and at least one coefficient's were compared
            assert {"h", "dx"} <= set(agree["errors"]) or "logits" in agree["errors"]
            assert row["times"][peer]["median_s"] > 0
            assert row["ratio_peer_over_refode"][peer] > 0
        assert row["gflops"]["refode"] > 0
        if "jax" in PEERS:
            assert row["compile_s"]["jax"] > 0


def test_quick(tmp_path):
    report, stdout = run_quick(tmp_path, "W1,W2,W3,M1")
    assert set(report["workloads"]) == {"W1", "W2", "W3", "M1"}
    assert report["failures"] == []
    for dtype in ("float64", "float32"):
        assert report["gemm"][dtype]["gflops"] > 0
    for name in ("W1", "W2"):
        check_peer_rows(report, name, ["float64", "float32"])
        for peer in PEERS:  # every coefficient's gradient was compared
            errors = report["workloads"][name]["rows"]["float64"]["agreement"][peer]["errors"]
            assert len([e for e in errors if e.startswith("d[")]) >= 6, (name, peer)
    for dtype, row in report["workloads"]["W3"]["rows"].items():
        assert row["agreement"]["pair_mean"]["ok"], dtype
        assert row["times"]["refode"]["median_s"] > 0 and row["times"]["copy"]["median_s"] > 0
    for dtype, row in report["workloads"]["M1"]["rows"].items():
        assert row["strategies_bitwise_equal"], dtype
        assert set(row["peak_bytes"]) == {"forward", "gradient[all]", "gradient[steps]",
                                          "gradient[binomial]"}
        assert all(v > 0 for v in row["peak_bytes"].values())
    assert report["threads"]["OMP_NUM_THREADS"] == "2"
    assert "W1 float64" in stdout


@pytest.mark.slow
def test_quick_w4_c1(tmp_path):
    report, _ = run_quick(tmp_path, "W4,C1")
    check_peer_rows(report, "W4", [f"{d}/{s}" for d in ("float64", "float32")
                                   for s in ("euler", "rk4")])
    c1 = report["workloads"]["C1"]["rows"]["float64"]
    assert c1["cache_bytes"] > 0
    for kind in ("cache_empty", "cache_filled", "cache_off"):
        assert c1["first_call_s"][kind] > 0


def test_disagreement_fails():
    """The agreement check fails on a wrong peer (it cannot pass by doing nothing)."""
    sys.path.insert(0, ROOT)
    from benchmarks import common

    import numpy as np

    a = {"h": np.ones(3), "dx": np.arange(3.0)}
    assert common.agreement(a, dict(a), "float64")["ok"]
    assert not common.agreement(a, {"h": np.ones(3), "dx": np.arange(3.0) + 1e-8},
                                "float64")["ok"]
    assert not common.agreement(a, {"h": np.ones(3)}, "float64")["ok"]
    assert not common.agreement({}, {}, "float64")["ok"]
