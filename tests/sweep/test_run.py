"""Sweeps on a 2-worker LocalCluster: identical to a 1-worker sweep, failures recorded,
resumed without recomputation, complete despite a killed worker."""
import json
import os
import signal
import threading

import pytest

distributed = pytest.importorskip("distributed")

from refode.errors import RefodeError  # noqa: E402
from refode.sweep import TIMING_FIELDS, run_sweep  # noqa: E402
from refode.sweep.run import _client  # noqa: E402

#: cells of the configuration of conftest.py (12 + 1 failing + the model itself).
N_CELLS = 14
#: this process's Numba thread setting before any cluster started.
NUMBA_ENV = os.environ.get("NUMBA_NUM_THREADS")


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes (as ``refode sweep`` starts it)."""
    client, cluster = _client(distributed, None, 2, True)
    client.wait_for_workers(2)
    yield client
    client.close()
    cluster.close()


def _untimed(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in rows]


@pytest.fixture(scope="module")
def two_worker_sweep(client, sweep_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    return out, run_sweep(sweep_files["config"], [sweep_files["data"]], out, client=client,
                          progress=False)


def test_two_workers_give_the_rows_of_one_worker(client, sweep_files, two_worker_sweep,
                                                 tmp_path):
    out, two = two_worker_sweep
    one_worker = [sorted(client.scheduler_info()["workers"])[0]]
    one = run_sweep(sweep_files["config"], [sweep_files["data"]], tmp_path, client=client,
                    progress=False, workers=one_worker)
    assert len(two.rows) == N_CELLS and len(two.computed) == N_CELLS and not two.reused
    assert _untimed(one.rows) == _untimed(two.rows)  # bitwise: floats compared exactly
    ok = [r for r in two.rows if r["status"] == "ok"]
    assert len(ok) == N_CELLS - 1 and all(r["seconds"] > 0 for r in ok)
    assert len({r["accuracy"] for r in ok} | {r["loss"] for r in ok}) > 1
    saved = json.loads((out / "results.json").read_text())
    assert _untimed(saved) == _untimed(two.rows)
    lines = (out / "results.csv").read_text().splitlines()
    assert len(lines) == N_CELLS + 1 and lines[0].startswith("id,basis,n_basis")
    for name in ("pareto_parameters.png", "pareto_time.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_the_cluster_leaves_numba_of_this_process_usable(two_worker_sweep):
    # the nannies copy their environment into os.environ; a changed NUMBA_NUM_THREADS
    # would make Numba refuse every later compilation in this process
    assert os.environ.get("NUMBA_NUM_THREADS") == NUMBA_ENV
    import numba

    assert numba.njit(lambda v: v + 1)(1) == 2


def test_a_failing_cell_is_recorded_and_the_others_run(two_worker_sweep):
    out, result = two_worker_sweep
    failed = [r for r in result.rows if r["status"] == "failed"]
    assert [r["id"] for r in failed] == ["fem_linear-K1-projection-project-euler-N4"]
    assert "BasisError" in failed[0]["error"] and "n >= 2" in failed[0]["error"]
    record = json.loads((out / "cells" / f"{failed[0]['id']}.json").read_text())
    assert record["status"] == "failed" and record["accuracy"] is None


def test_statistics_policies_differ_and_keep_the_weights(two_worker_sweep):
    rows = {r["id"]: r for r in two_worker_sweep[1].rows}
    cells = [rows[f"legendre-K2-projection-{s}-euler-N4"] for s in
             ("project", "recalibrate", "positive")]
    assert len({c["l2_error"] for c in cells}) == 1  # the weights move the same way
    assert len({c["loss"] for c in cells}) == 3  # the statistics do not
    assert rows["piecewise_constant-K4-projection-project-euler-N4"]["l2_error"] == 0.0


def test_a_resumed_sweep_recomputes_nothing_written(sweep_files, two_worker_sweep):
    out, first = two_worker_sweep
    cells = out / "cells"
    stamps = {p.name: p.stat().st_mtime_ns for p in cells.iterdir()}
    assert len(stamps) == N_CELLS
    again = run_sweep(sweep_files["config"], [sweep_files["data"]], out, progress=False,
                      scheduler="tcp://127.0.0.1:1")  # no cluster is needed: never contacted
    assert again.computed == [] and len(again.reused) == N_CELLS
    assert _untimed(again.rows) == _untimed(first.rows)
    assert {p.name: p.stat().st_mtime_ns for p in cells.iterdir()} == stamps


def test_an_interrupted_sweep_computes_only_the_missing_cells(client, sweep_files,
                                                              two_worker_sweep, tmp_path):
    out, first = two_worker_sweep
    for p in (out / "cells").iterdir():
        (tmp_path / "cells").mkdir(exist_ok=True)
        (tmp_path / "cells" / p.name).write_bytes(p.read_bytes())
    (tmp_path / "manifest.json").write_bytes((out / "manifest.json").read_bytes())
    missing = "legendre-K2-projection-recalibrate-euler-N2"
    os.remove(tmp_path / "cells" / f"{missing}.json")
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "cells").iterdir()}
    again = run_sweep(sweep_files["config"], [sweep_files["data"]], tmp_path, client=client,
                      progress=False)
    assert again.computed == [missing] and len(again.reused) == N_CELLS - 1
    assert all((tmp_path / "cells" / n).stat().st_mtime_ns == t for n, t in kept.items())
    assert _untimed(again.rows) == _untimed(first.rows)
    retried = run_sweep(sweep_files["config"], [sweep_files["data"]], tmp_path, client=client,
                        progress=False, retry_failed=True)
    assert retried.computed == ["fem_linear-K1-projection-project-euler-N4"]


def test_a_sweep_of_other_data_in_the_same_folder_is_refused(sweep_files, two_worker_sweep):
    out, _ = two_worker_sweep
    with pytest.raises(RefodeError, match="other model/data"):
        run_sweep(sweep_files["config"], [sweep_files["calibration"]], out, progress=False)


def test_killing_a_worker_mid_sweep_still_completes_it(client, sweep_files, two_worker_sweep,
                                                       tmp_path):
    config = json.loads(sweep_files["config"].read_text())
    config["grid"] = {"basis": ["legendre", "fem_linear"], "n_basis": [2],
                      "stats": ["project", "recalibrate", "positive"], "n_steps": [2, 4, 8, 16]}
    config["model"] = str(sweep_files["model"])
    config["calibration"]["data"] = str(sweep_files["calibration"])
    pids = client.run(os.getpid)
    victim = sorted(pids.items())[-1][1]
    killed, after = threading.Event(), []

    def kill_once(record):
        if killed.is_set():
            after.append(record["id"])
        else:
            killed.set()
            os.kill(victim, signal.SIGKILL)

    result = run_sweep(config, [sweep_files["data"]], tmp_path, client=client, progress=False,
                       on_result=kill_once)
    assert killed.is_set() and after  # killed while cells were still to come
    assert victim not in client.run(os.getpid).values()  # the worker really died
    assert len(result.rows) == 24 and all(r["status"] == "ok" for r in result.rows)
    assert len(list((tmp_path / "cells").iterdir())) == 24
    reference = {r["id"]: r for r in _untimed(two_worker_sweep[1].rows)}
    common = [r for r in _untimed(result.rows) if r["id"] in reference]
    assert len(common) == 12 and all(r == reference[r["id"]] for r in common)
