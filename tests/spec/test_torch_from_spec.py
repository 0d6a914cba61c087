"""refode vs an independent PyTorch implementation written from docs/format.md alone.

refode is used only to build models, perturb and save them, and compute its own results
(``forward``, ``loss_and_gradients``, ``refode.io.golden.write``); ``torch_from_spec``
reads the saved files with h5py and computes everything from the document.
"""
import json

import h5py
import numpy as np
import pytest
import torch

import refode
import refode.io.golden
from refode.models import ContinuousNet, ContinuousTagger

from . import torch_from_spec as spec

LOGIT_RTOL = 1e-12
GRAD_RTOL = 1e-10
GRAD_FLOOR = 1e-5
STATE_RTOL = 1e-10
IMAGE = (4, 3, 6, 6)

#: id -> (basis, K, scheme, N, options)
NET_CASES = {
    # every basis family, default options
    "pc-K4-euler-N4": ("piecewise_constant", 4, "euler", 4, {}),
    "pc-K4-rk4-N2": ("piecewise_constant", 4, "rk4", 2, {}),          # stages on breakpoints
    "pc-K4-midpoint-N4": ("piecewise_constant", 4, "midpoint", 4, {}),
    "pc-K3-rk4-N3": ("piecewise_constant", 3, "rk4", 3, {}),
    "pc-K3-midpoint-N6": ("piecewise_constant", 3, "midpoint", 6, {}),
    "pc-K3-heun-N6": ("piecewise_constant", 3, "heun", 6, {}),
    "pc-K2-midpoint-N1": ("piecewise_constant", 2, "midpoint", 1, {}),  # c=1/2 on breakpoint
    "pc-K7-rk4_38-N7": ("piecewise_constant", 7, "rk4_38", 7, {}),
    "pc-K6-ssprk3-N4": ("piecewise_constant", 6, "ssprk3", 4, {}),
    "pl-K4-rk4-N2": ("piecewise_linear", 4, "rk4", 2, {}),
    "pl-K4-heun-N3": ("piecewise_linear", 4, "heun", 3, {}),
    "pl-K6-ralston-N2": ("piecewise_linear", 6, "ralston", 2, {}),
    "fem-K3-rk4-N2": ("fem_linear", 3, "rk4", 2, {}),
    "fem-K4-kutta3-N3": ("fem_linear", 4, "kutta3", 3, {}),
    "poly-K2-rk4-N3": ("poly_linear", 2, "rk4", 3, {}),
    "poly-K2-euler-N1": ("poly_linear", 2, "euler", 1, {}),
    "legendre-K3-rk4_38-N2": ("legendre", 3, "rk4_38", 2, {}),
    "legendre-K4-euler-N1": ("legendre", 4, "euler", 1, {}),
    "chebyshev-K4-ssprk3-N2": ("chebyshev", 4, "ssprk3", 2, {}),
    "fourier-K5-midpoint-N3": ("fourier", 5, "midpoint", 3, {}),
    "fourier-K3-rk4-N2": ("fourier", 3, "rk4", 2, {}),
    # non-default options
    "opt-relu-same-pc-K4-rk4-N2": ("piecewise_constant", 4, "rk4", 2,
                                   {"head_activation": "relu", "padding": "same"}),
    "opt-scales-fem-K3-midpoint-N2": ("fem_linear", 3, "midpoint", 2,
                                      {"rate_scale": 0.7, "stitch_scale": -0.5}),
    "opt-same-odd7-legendre-K2-heun-N2": ("legendre", 2, "heun", 2,
                                          {"padding": "same", "_image": (3, 3, 7, 7)}),
    "opt-all-3stages-pl-K2-rk4-N1": ("piecewise_linear", 2, "rk4", 1,
                                     {"head_activation": "relu", "padding": "same",
                                      "rate_scale": 1.3, "stitch_scale": 0.4,
                                      "_widths": (2, 3, 2), "_image": (3, 3, 9, 9)}),
}

#: the cases whose golden files (both modes, incl. d loss / d x) are also compared
GOLDEN_CASES = ["pc-K3-midpoint-N6", "pl-K4-rk4-N2", "fourier-K5-midpoint-N3",
                "opt-relu-same-pc-K4-rk4-N2", "opt-scales-fem-K3-midpoint-N2"]

@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """The arrays are tiny: torch's thread pool only costs time (a lot on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


#: worst errors seen, per kind (printed with -s)
WORST = {}


def _note(kind, err):
    WORST[kind] = max(WORST.get(kind, 0.0), float(err))


def _perturb(model, seed):
    """Seeded noise on every array (nothing stays trivially 1 or 0)."""
    rng = np.random.default_rng(seed)
    for arr in model.params.values():
        arr += 0.3 * rng.standard_normal(arr.shape)
    for name, arr in model.state.items():
        if name.endswith(".mean"):
            arr += 0.2 * rng.standard_normal(arr.shape)
        else:
            # additive and small so that every stage's variance stays positive
            arr += 0.05 * rng.standard_normal(arr.shape) + 0.1 * rng.random(arr.shape)


def _build_net(case, tmp_path, seed=0):
    basis, K, scheme, N, options = NET_CASES[case]
    options = dict(options)
    widths = options.pop("_widths", (2, 3))
    image = options.pop("_image", IMAGE)
    model = ContinuousNet(in_channels=3, n_classes=4, widths=widths, basis=basis, n_basis=K,
                          scheme=scheme, n_steps=N, seed=seed, **options)
    _perturb(model, 1000 + seed)
    path = tmp_path / "net.h5"
    refode.save(model, path)
    ref = refode.load(path)  # refode computes from exactly what the file holds
    rng = np.random.default_rng(7 + seed)
    x = rng.standard_normal(image)
    y = rng.integers(0, 4, image[0])
    return path, ref, x, y


def _rel_logits(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b))


def _check_grads(mine, ref, kind):
    assert set(mine) == set(ref)
    largest = max(np.linalg.norm(g) for g in ref.values())
    assert largest > 0
    for name, g in ref.items():
        assert mine[name].shape == g.shape, name
        err = np.linalg.norm(mine[name] - g) / max(np.linalg.norm(g), GRAD_FLOOR * largest)
        # gradients that vanish identically (e.g. the shortcut BN beta in training mode,
        # removed by the next batch norms) are pure round-off on both sides
        _note(kind + (" (vanishing)" if np.linalg.norm(g) < 1e-8 * largest else ""), err)
        assert err <= GRAD_RTOL, (name, err, np.linalg.norm(g))


@pytest.mark.parametrize("case", list(NET_CASES))
def test_continuousnet(case, tmp_path):
    path, ref, x, y = _build_net(case, tmp_path)
    mine = spec.load(path)
    xt = torch.tensor(x)
    with torch.no_grad():
        for train in (False, True):
            expected = ref.forward(x, train=train, update_state=False)
            got = mine.forward(xt, train=train).numpy()
            err = _rel_logits(got, expected)
            _note("logits train" if train else "logits eval", err)
            assert err <= LOGIT_RTOL, (train, err)
    loss, grads = ref.loss_and_gradients(x, y, train=True, update_state=False)
    my_loss, _, my_grads, _ = mine.loss_and_gradients(x, y, train=True)
    _note("loss train", abs(my_loss - loss) / abs(loss))
    assert abs(my_loss - loss) <= 1e-12 * abs(loss)
    _check_grads(my_grads, grads, "grads train")
    # evaluation-mode gradients too (statistics are constants)
    loss_e, grads_e = ref.loss_and_gradients(x, y, train=False)
    my_loss_e, _, my_grads_e, _ = mine.loss_and_gradients(x, y, train=False)
    assert abs(my_loss_e - loss_e) <= 1e-12 * abs(loss_e)
    _check_grads(my_grads_e, grads_e, "grads eval")


@pytest.mark.parametrize("case", list(NET_CASES))
def test_running_statistics_after_a_training_step(case, tmp_path):
    path, ref, x, y = _build_net(case, tmp_path, seed=3)
    mine = spec.load(path)
    before = {k: v.copy() for k, v in ref.state.items()}
    ref.loss_and_gradients(x, y, train=True)  # update_state=True: a training step
    after = ref.state
    with torch.no_grad():
        mine.forward(torch.tensor(x), train=True)
    new = mine.updated_state()
    assert set(new) == set(after)
    for name, value in after.items():
        scale = max(np.max(np.abs(value)), 1e-300)
        err = np.max(np.abs(new[name] - value)) / scale
        _note("state after step", err)
        assert err <= STATE_RTOL, (name, err)
    assert any(not np.array_equal(before[k], after[k]) for k in after)


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("case", GOLDEN_CASES)
def test_golden_file(case, mode, tmp_path):
    _, ref, x, y = _build_net(case, tmp_path, seed=5)
    gpath = tmp_path / "golden.h5"
    refode.io.golden.write(gpath, ref, x, y, mode=mode)
    with h5py.File(gpath, "r") as f:
        mine = spec.load(f)  # reads the /model group
        gx = f["inputs/x"][()]
        gy = f["inputs/y"][()]
        golden = {}
        f.visititems(lambda n, o: golden.__setitem__(n, o[()])
                     if isinstance(o, h5py.Dataset) and n.split("/")[0] in ("outputs", "gradients")
                     else None)
    loss, logits, grads, dx = mine.loss_and_gradients(gx, gy, train=(mode == "train"))
    _note(f"golden logits {mode}", _rel_logits(logits, golden["outputs/logits"]))
    assert _rel_logits(logits, golden["outputs/logits"]) <= LOGIT_RTOL
    assert abs(loss - golden["outputs/loss"]) <= 1e-12 * abs(golden["outputs/loss"])
    ref_grads = {n[len("gradients/params/"):]: v for n, v in golden.items()
                 if n.startswith("gradients/params/")}
    _check_grads(grads, ref_grads, f"golden grads {mode}")
    dxg = golden["gradients/inputs/x"]
    err = np.linalg.norm(dx - dxg) / np.linalg.norm(dxg)
    _note(f"golden dx {mode}", err)
    assert err <= GRAD_RTOL
    # Not in docs/format.md (3.2 lists only logits and loss under /outputs, 6.4 says the
    # running statistics are "not part of golden outputs"), but refode's working tree
    # writes the state after the training step under /outputs/state in train mode, and
    # `refode check` compares it: check it against 6.4 when present.
    states = {n[len("outputs/state/"):]: v for n, v in golden.items()
              if n.startswith("outputs/state/")}
    if states:
        assert mode == "train"
        new = mine.updated_state()  # from the training forward of loss_and_gradients
        assert set(new) == set(states)
        for name, value in states.items():
            err = np.max(np.abs(new[name] - value)) / np.max(np.abs(value))
            _note("golden state train", err)
            assert err <= STATE_RTOL, (name, err)
    # 3.4: our results as a candidate file pass refode's own comparison
    cpath = tmp_path / "candidate.h5"
    with h5py.File(cpath, "w") as f:
        f["outputs/logits"] = logits
        f["outputs/loss"] = np.float64(loss)
        f["gradients/inputs/x"] = dx
        for name, g in grads.items():
            f["gradients/params/" + name] = g
        for name, value in (mine.updated_state().items() if states else ()):
            f["outputs/state/" + name] = value
    rows, _, _ = refode.io.golden.compare(gpath, cpath)
    assert len(rows) == len(golden)
    assert all(row["passed"] for row in rows), [r for r in rows if not r["passed"]]


def test_version_1_weight_file(tmp_path):
    """A version-1 file (options removed from config) means relu head, symmetric, scales 1."""
    path, _, x, y = _build_net("pc-K4-rk4-N2", tmp_path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["config"])
        for key in ("head_activation", "padding", "rate_scale", "stitch_scale"):
            cfg.pop(key)
        f.attrs["config"] = json.dumps(cfg, sort_keys=True)
        f.attrs["format_version"] = 1
    ref = refode.load(path)
    mine = spec.load(path)
    assert mine.head_activation == "relu" and mine.padding == "symmetric"
    with torch.no_grad():
        got = mine.forward(torch.tensor(x), train=False).numpy()
    assert _rel_logits(got, ref.forward(x, train=False)) <= LOGIT_RTOL


# ---------------------------------------------------------------------------------------
# ContinuousTagger
# ---------------------------------------------------------------------------------------
#: id -> (basis, K, scheme, N, rate, attention_bias, heads, interval or None, ln_eps)
TAGGER_CASES = {
    "paper-pc-K2-euler-N2": ("piecewise_constant", 2, "euler", 2, "paper", False, 1, None, 1e-5),
    "paper-pc-K4-rk4-N2-bias-2heads": ("piecewise_constant", 4, "rk4", 2, "paper", True, 2,
                                       None, 1e-5),
    "preln-fem-K3-midpoint-N3": ("fem_linear", 3, "midpoint", 3, "pre_ln", False, 2, None, 1e-3),
    "paper-legendre-K3-rk4_38-N2-interval": ("legendre", 3, "rk4_38", 2, "paper", True, 1,
                                             (0.5, 2.0), 1e-5),
    "preln-poly-K2-heun-N2-interval": ("poly_linear", 2, "heun", 2, "pre_ln", False, 2,
                                       (-1.0, 1.5), 1e-5),
    "paper-pl-K4-ralston-N3-interval": ("piecewise_linear", 4, "ralston", 3, "paper", False, 1,
                                        (1.0, 3.0), 1e-5),
}


def _build_tagger(case, tmp_path):
    basis, K, scheme, N, rate, bias, heads, interval, ln_eps = TAGGER_CASES[case]
    model = ContinuousTagger(vocab_size=7, n_tags=5, width=4, heads=heads, ffn=6, basis=basis,
                             n_basis=K, scheme=scheme, n_steps=N, seed=2, padding_id=0,
                             rate=rate, attention_bias=bias, ln_eps=ln_eps)
    rng = np.random.default_rng(11)
    for arr in model.params.values():
        arr += 0.3 * rng.standard_normal(arr.shape)
    path = tmp_path / "tagger.h5"
    refode.save(model, path)
    if interval is not None:
        # a depth interval other than [0, 1], written with h5py (section 10)
        with h5py.File(path, "r+") as f:
            cfg = json.loads(f.attrs["config"])
            cfg["interval"] = list(interval)
            f.attrs["config"] = json.dumps(cfg, sort_keys=True)
            f["blocks/ode"].attrs["interval"] = np.array(interval, dtype=np.float64)
    ref = refode.load(path)
    ids = rng.integers(1, 7, (3, 5))
    ids[0, 4] = 0          # padding at the end of sentence 0
    ids[2, 3:] = 0         # and of sentence 2
    tags = rng.integers(0, 5, (3, 5))
    tags[ids == 0] = -100
    tags[1, 2] = -100      # a non-padded token that does not count
    return path, ref, ids, tags


@pytest.mark.parametrize("case", list(TAGGER_CASES))
def test_tagger(case, tmp_path):
    path, ref, ids, tags = _build_tagger(case, tmp_path)
    mine = spec.load(path)
    expected = ref.forward(ids)
    with torch.no_grad():
        got = mine.forward(ids).numpy()
    # every row, padded ones included (7.2: padded positions keep x = e, so their logits
    # are LN(e) W^T + b; the golden file compares them elementwise)
    err = _rel_logits(got, expected)
    _note("tagger logits", err)
    assert err <= LOGIT_RTOL
    loss, grads = ref.loss_and_gradients(ids, tags)
    my_loss, _, my_grads, _ = mine.loss_and_gradients(ids, tags)
    assert abs(my_loss - loss) <= 1e-12 * abs(loss)
    _check_grads(my_grads, grads, "tagger grads")
    # golden file: d loss / d e as well
    gpath = tmp_path / "golden.h5"
    out = refode.io.golden.write(gpath, ref, ids, tags, mode="train")
    with h5py.File(gpath, "r") as f:
        mine2 = spec.load(f)
    _, logits2, _, de = mine2.loss_and_gradients(ids, tags)
    assert _rel_logits(logits2, out["outputs/logits"]) <= LOGIT_RTOL
    deg = out["gradients/inputs/embedded"]
    err = np.linalg.norm(de - deg) / np.linalg.norm(deg)
    _note("tagger d loss/d e", err)
    assert err <= GRAD_RTOL
    assert np.all(de[ids == 0] == 0)


@pytest.mark.parametrize("variant", ["sentence-all-padding", "no-padding", "all-ignored"])
def test_tagger_edge_batches(variant, tmp_path):
    """5.6 (all keys padded: A = 0), 7.2 (no padding: no mask), 5.8 (no kept row: 0)."""
    path, ref, ids, tags = _build_tagger("paper-pc-K4-rk4-N2-bias-2heads", tmp_path)
    if variant == "sentence-all-padding":
        ids[1, :] = 0
        tags[ids == 0] = -100
    elif variant == "no-padding":
        ids = np.where(ids == 0, 3, ids)
        tags = np.where(tags == -100, 1, tags)
    else:
        tags[:] = -100
    mine = spec.load(path)
    loss, grads = ref.loss_and_gradients(ids, tags)
    my_loss, logits, my_grads, _ = mine.loss_and_gradients(ids, tags)
    assert _rel_logits(logits, ref.forward(ids)) <= LOGIT_RTOL
    if variant == "all-ignored":
        assert loss == 0 and my_loss == 0
        assert all(not np.any(g) for g in grads.values())
        assert all(not np.any(g) for g in my_grads.values())
    else:
        assert abs(my_loss - loss) <= 1e-12 * abs(loss)
        _check_grads(my_grads, grads, "tagger grads")


def test_zz_report_worst_errors():
    """Prints the worst error per kind (run with ``-s``)."""
    for kind, err in sorted(WORST.items()):
        print(f"{kind:24s} {err:.3e}")
