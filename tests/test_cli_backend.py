"""``refode eval`` and ``refode golden`` with ``--backend``: CUDA (the simulator here)
agrees with the CPU; CUDA unavailable is one line on stderr with exit code 2."""
import h5py
import numpy as np
import pytest

import refode
from refode import backend as backends, cli
from refode.models import ContinuousNet

from tests.integrate.cuda_checks import cuda_or_skip

#: a ContinuousNet small enough for the CUDA simulator (as tests/models' SIM_NET).
SIM_NET = dict(in_channels=1, n_classes=2, widths=(2,), n_basis=1, n_steps=1)
#: float64 agreement of the two backends' printed and stored numbers.
RTOL = 1e-12
#: what the monkeypatched availability check says.
NO_GPU = "no CUDA GPU is available; use backend='cpu'"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny model (recording the CPU backend) and 2 images 2x2 with labels."""
    folder = tmp_path_factory.mktemp("cli_backend")
    model, data = folder / "net.h5", folder / "data.npz"
    refode.save(ContinuousNet(**SIM_NET, seed=4), model)
    rng = np.random.default_rng(4)
    np.savez(data, x=rng.standard_normal((2, 1, 2, 2)), y=np.array([0, 1]))
    return model, data


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _eval_numbers(capsys, argv):
    assert cli.main(argv) == 0
    fields = capsys.readouterr().out.split()
    return float(fields[fields.index("loss") + 1]), float(fields[fields.index("accuracy") + 1])


@pytest.mark.cuda
def test_eval_on_cuda_agrees_with_cpu(files, capsys):
    cuda_or_skip()
    model, data = files
    cpu = _eval_numbers(capsys, ["eval", str(model), "--data", str(data)])
    gpu = _eval_numbers(capsys, ["eval", str(model), "--data", str(data), "--backend", "cuda"])
    assert gpu[0] == pytest.approx(cpu[0], rel=RTOL) and gpu[1] == cpu[1]


@pytest.mark.cuda
def test_golden_on_cuda_agrees_with_cpu_and_records_the_backend(files, tmp_path, capsys):
    cuda_or_skip()
    model, _ = files
    paths = {b: tmp_path / f"{b}.h5" for b in ("cpu", "cuda")}
    for name, path in paths.items():
        assert cli.main(["golden", str(model), "-o", str(path), "--batch", "2",
                         "--backend", name]) == 0
    capsys.readouterr()
    with h5py.File(paths["cpu"]) as a, h5py.File(paths["cuda"]) as b:
        assert _text(b["model"].attrs["backend"]) == "cuda"
        assert _text(a["model"].attrs["backend"]) == "cpu"
        names = [n for n in ("outputs/logits", "outputs/loss") if n in a]
        assert names
        for name in names:
            want, got = a[name][()], b[name][()]
            assert np.abs(got - want).max() <= RTOL * np.abs(want).max(), name
    assert cli.main(["check", str(paths["cpu"]), str(paths["cuda"])]) == 0


@pytest.mark.cuda
def test_backend_flag_overrides_the_files(files, tmp_path, capsys):
    cuda_or_skip()
    model, data = files
    on_cuda = tmp_path / "cuda.h5"
    refode.save(refode.load(model, backend="cuda"), on_cuda)
    assert refode.load(on_cuda).backend.name == "cuda"
    assert _eval_numbers(capsys, ["eval", str(on_cuda), "--data", str(data), "--backend",
                                  "cpu"]) == _eval_numbers(
        capsys, ["eval", str(model), "--data", str(data)])


@pytest.mark.parametrize("command", ["eval", "golden"])
def test_cuda_unavailable_is_one_line_and_exit_2(files, tmp_path, capsys, monkeypatch,
                                                  command):
    model, data = files
    monkeypatch.setattr(backends, "_cuda_problem", lambda: NO_GPU)
    argv = ([command, str(model), "--data", str(data)] if command == "eval"
            else [command, str(model), "-o", str(tmp_path / "g.h5")])
    assert cli.main(argv + ["--backend", "cuda"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"refode {command}: error: {NO_GPU}\n"
    assert not (tmp_path / "g.h5").exists()


def test_unknown_backend_is_a_usage_error(files, capsys):
    model, data = files
    with pytest.raises(SystemExit) as info:
        cli.main(["eval", str(model), "--data", str(data), "--backend", "gpu"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--backend" in err and "cuda" in err
