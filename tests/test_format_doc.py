"""docs/format.md is tied to the code, so that the specification cannot drift.

The tables of the document (basis families, tableaus, configuration keys, attributes,
array names, constants) are parsed and compared with the registries and constants of
refode; the formulas of the document are transcribed here in plain NumPy (basis
functions, stage grid, Runge-Kutta step, both models op by op, read from the HDF5 file
with h5py only) and compared numerically with refode's results and golden files.
"""
import ast
import importlib
import json
import math
import pathlib
import re
from fractions import Fraction

import h5py
import numpy as np
import pytest

import refode
from refode import cli
from refode.integrate.grid import stage_grid
from refode.io import golden, layout
from refode.models import ContinuousNet, ContinuousTagger

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "format.md"
TEXT = DOC.read_text()
DATA = pathlib.Path(__file__).resolve().parent / "data"

#: agreement of the transcriptions with refode (float64; both round differently).
RTOL = 1e-10
#: absolute agreement of basis values (they are O(1); Legendre scales by sqrt(2k+1)).
BASIS_ATOL = 1e-12
#: step and agreement of the central differences that check the golden gradients.
FD_STEP, FD_RTOL = 1e-6, 1e-6


# --------------------------------------------------------------------- doc parsing
def section(title):
    """The text under the heading containing ``title``, up to the next heading of its level."""
    lines = TEXT.splitlines()
    for start, line in enumerate(lines):
        if line.startswith("#") and title in line:
            level = len(line) - len(line.lstrip("#"))
            break
    else:
        raise AssertionError(f"docs/format.md has no heading {title!r}")
    out = []
    for line in lines[start + 1:]:
        if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
            break
        out.append(line)
    return "\n".join(out)


def table(title):
    """Rows (lists of cell strings) of the first markdown table under heading ``title``."""
    rows = []
    for line in section(title).splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    assert len(rows) > 2, f"no table under {title!r}"
    return rows[2:]  # without the header and the --- row


def code(cell):
    """The backticked fragments of a cell."""
    return re.findall(r"`([^`]*)`", cell)


def fractions(text):
    return [Fraction(v.strip()) for v in text.split(",")]


def doc_tableaus():
    """``{name: (order, c, b, a)}`` from the tableau table, ``a`` as full lower rows."""
    out = {}
    for name, order, c, b, a in table("Registered tableaus"):
        c, b = fractions(code(c)[0]), fractions(code(b)[0])
        rows = [] if code(a)[0] == "—" else [fractions(r) for r in code(a)[0].split(";")]
        full = [[Fraction(0)] * len(c) for _ in c]
        for i, row in enumerate(rows, start=1):
            assert len(row) == i, f"{name}: row {i} of a must have {i} entries"
            full[i][:i] = row
        out[code(name)[0]] = (int(order), c, b, full)
    return out


TABLEAUS = doc_tableaus()


# ------------------------------------------------------ basis formulas (doc 4.2/4.3)
#: number of pieces of the piecewise families (doc 4.2).
PIECES = {"piecewise_constant": lambda k: k, "piecewise_linear": lambda k: k // 2,
          "fem_linear": lambda k: k - 1}
#: the "valid K" column of doc 4.2, as predicates.
VALID_K = {"every `K >= 1`": lambda k: k >= 1, "even `K >= 2`": lambda k: k >= 2 and k % 2 == 0,
           "`K >= 2`": lambda k: k >= 2, "`K = 2` only": lambda k: k == 2,
           "odd `K >= 1`": lambda k: k % 2 == 1}


def piece(n_pieces, x, side):
    """Doc 4.3: the piece of the exact position ``x`` (integer arithmetic on a Fraction)."""
    x = Fraction(x)
    if side == "right":
        return min(math.floor(n_pieces * x), n_pieces - 1)
    return max(math.ceil(n_pieces * x) - 1, 0)


def legendre_p(k_max, s):
    out = [np.ones_like(s), s]
    for k in range(1, k_max):
        out.append(((2 * k + 1) * s * out[k] - k * out[k - 1]) / (k + 1))
    return out[:k_max + 1]


def chebyshev_t(k_max, s):
    out = [np.ones_like(s), s]
    for _ in range(1, k_max):
        out.append(2 * s * out[-1] - out[-2])
    return out[:k_max + 1]


def phi(family, k_count, interval, x, side="right"):
    """Doc 4.2: every ``phi_k`` at the unit position ``x`` (exact Fraction or float)."""
    t0, t1 = interval
    length = t1 - t0
    out = np.zeros(k_count)
    if family in PIECES:
        n_pieces = PIECES[family](k_count)
        p = piece(n_pieces, x, side)
        xi = float(n_pieces * Fraction(x) - p)
        if family == "piecewise_constant":
            out[p] = 1.0
        elif family == "piecewise_linear":
            out[2 * p], out[2 * p + 1] = 1.0 - xi, xi
        else:
            out[p], out[p + 1] = 1.0 - xi, xi
        return out
    x = float(x)
    s = np.float64(2.0 * x - 1.0)
    if family == "poly_linear":
        return np.array([1.0, t0 + x * length])
    if family == "legendre":
        return np.array([math.sqrt((2 * k + 1) / length) * v
                         for k, v in enumerate(legendre_p(k_count - 1, s))])
    if family == "chebyshev":
        return np.array(chebyshev_t(k_count - 1, s))
    assert family == "fourier"
    out[0] = 1.0
    for m in range(1, (k_count - 1) // 2 + 1):
        out[2 * m - 1], out[2 * m] = math.cos(2 * math.pi * m * x), math.sin(2 * math.pi * m * x)
    return out


def doc_families():
    return {code(row[0])[0]: row[1] for row in table("Basis families")}


def valid_sizes(family, upto=9):
    return [k for k in range(1, upto + 1) if VALID_K[doc_families()[family]](k)]


# ------------------------------------------------------------- integration (doc 4.5-4.7)
def stage_weights(family, k_count, interval, n, c, n_steps):
    """Doc 4.5/4.6: ``[(k, phi_k)]`` with ``phi_k != 0`` at stage ``(n, c)``."""
    x = (n + c) / Fraction(n_steps)
    w = phi(family, k_count, interval, x, "left" if c == 1 else "right")
    return [(k, w[k]) for k in range(k_count) if w[k] != 0]


def at_stage(arrays, weights):
    """Doc 4.6: ``sum_k phi_k * theta[k]`` for every array of the dict."""
    return {name: sum(w * a[k] for k, w in weights) for name, a in arrays.items()}


def integrate(rate, h, arrays, family, k_count, interval, scheme, n_steps):
    """Doc 4.7: ``N`` steps of the doc's tableau; ``rate(theta, y, stage_weights)``."""
    _, c, b, a = TABLEAUS[scheme]
    dt = (interval[1] - interval[0]) / n_steps
    for n in range(n_steps):
        ks = []
        for i, ci in enumerate(c):
            weights = stage_weights(family, k_count, interval, n, ci, n_steps)
            terms = [float(a[i][j]) * ks[j] for j in range(i) if a[i][j] != 0]
            y = h + dt * sum(terms) if terms else h
            ks.append(rate(at_stage(arrays, weights), y, weights))
        h = h + dt * sum(float(bi) * k for bi, k in zip(b, ks) if bi != 0)
    return h


# ------------------------------------------------------------- operations (doc 5)
def pad_axis(size, k, stride, padding):
    """Doc 5.1: ``(before, after)`` zero padding of one axis."""
    if padding == "symmetric":
        return k // 2, k // 2
    total = max((math.ceil(size / stride) - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def conv(x, w, stride, padding):
    k = w.shape[2]
    pads = [pad_axis(n, k, stride, padding) for n in x.shape[2:]]
    xp = np.pad(x, ((0, 0), (0, 0), *pads))
    ho, wo = ((xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1)
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for u in range(k):
        for v in range(k):
            win = xp[:, :, u:u + stride * (ho - 1) + 1:stride, v:v + stride * (wo - 1) + 1:stride]
            out += np.einsum("bchw,oc->bohw", win, w[:, :, u, v])
    return out


def batchnorm(x, gamma, beta, mean=None, var=None, eps=1e-5):
    """Doc 5.2: ``(y, (batch mean, unbiased batch variance))``; given stats: evaluation."""
    per = (slice(None), None, None)
    if mean is not None:
        return gamma[per] * (x - mean[per]) / np.sqrt(var[per] + eps) + beta[per], None
    mu = x.mean(axis=(0, 2, 3))
    var_b = ((x - mu[per]) ** 2).mean(axis=(0, 2, 3))
    n = x.size // x.shape[1]
    y = gamma[per] * (x - mu[per]) / np.sqrt(var_b + eps)[per] + beta[per]
    return y, (mu, var_b * n / (n - 1))


def relu(x):
    return np.maximum(x, 0.0)


def elu(x):
    return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))


def layernorm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    return gamma * (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps) + beta


def cross_entropy(z, y):
    """Doc 5.8: mean over rows whose target is not -100."""
    z, y = z.reshape(-1, z.shape[-1]), y.reshape(-1)
    keep = y != -100
    top = z.max(axis=-1, keepdims=True)
    lse = (top + np.log(np.exp(z - top).sum(axis=-1, keepdims=True)))[:, 0]
    nll = lse - z[np.arange(z.shape[0]), np.where(keep, y, 0)]
    return float(np.where(keep, nll, 0.0).sum() / max(int(keep.sum()), 1))


def positions(length, width):
    """Doc 5.7: interleaved sinusoidal positions."""
    p = np.arange(length)[:, None]
    j = np.arange(width)[None, :]
    angle = p / 10000.0 ** (2 * (j // 2) / width)
    return np.where(j % 2 == 0, np.sin(angle), np.cos(angle))


def attention(u, w, bias, mask, heads):
    """Doc 5.6."""
    d = u.shape[-1]
    dh = d // heads
    lin = [u @ w[i].T + (0 if bias is None else bias[i]) for i in range(3)]
    split = [t.reshape(*t.shape[:2], heads, dh).transpose(0, 2, 1, 3) for t in lin]
    q, k, v = split
    scores = (1.0 / math.sqrt(dh)) * (q @ k.transpose(0, 1, 3, 2))
    keep = np.ones(u.shape[:2], bool) if mask is None else ~mask
    keep = keep[:, None, None, :]
    top = np.where(keep, scores, -np.inf).max(axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(keep, np.exp(scores - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    att = e / np.where(total != 0, total, 1.0)
    ctx = (att @ v).transpose(0, 2, 1, 3).reshape(u.shape)
    return ctx @ w[3].T + (0 if bias is None else bias[3])


# ------------------------------------------------------------- files (doc 2, 10)
def read_file(path, where="/"):
    """Config (version-1 meaning filled in), params and state of a weight group, h5py only."""
    with h5py.File(path, "r") as f:
        g = f[where]
        cfg = json.loads(g.attrs["config"])
        if int(g.attrs["format_version"]) == 1:
            cfg = {**V1[g.attrs["model"].decode()], **cfg}
        params = {k: v[()] for k, v in g["params"].items()}
        state = {k: v[()] for k, v in g["state"].items()}
        family = g.attrs["model"].decode()
    return family, cfg, params, state


def _doc_value(cell):
    text = code(cell)[0] if code(cell) else cell
    return None if text in ("—", "") else ast.literal_eval(text)


def config_table(family):
    rows = table(f"{family} configuration")
    return {code(r[0])[0]: (r[1], _doc_value(r[2])) for r in rows}


V1 = {fam: {k: v for k, (_, v) in config_table(fam).items() if v is not None}
      for fam in layout.MODELS}


# ------------------------------------------------------------- ContinuousNet (doc 6)
def net_forward(cfg, params, state, x, train):
    """Doc 6.1-6.4: logits and, in training, the updated state."""
    p, new = params, {}
    pad = cfg["padding"]

    def bn(name, h):
        if train:
            y, (mu, var_u) = batchnorm(h, p[f"{name}.gamma"], p[f"{name}.beta"])
            new[f"{name}.mean"] = 0.1 * mu + 0.9 * state[f"{name}.mean"]
            new[f"{name}.var"] = 0.1 * var_u + 0.9 * state[f"{name}.var"]
            return y
        return batchnorm(h, p[f"{name}.gamma"], p[f"{name}.beta"], state[f"{name}.mean"],
                         state[f"{name}.var"])[0]

    h = relu(bn("stem_bn", conv(x, p["stem_conv.weight"], 1, pad)))
    for j in range(1, len(cfg["widths"]) + 1):
        s, pre = (1 if j == 1 else 2), f"stitch{j}"
        branch = relu(bn(f"{pre}.branch.bn1", h))
        branch = conv(branch, p[f"{pre}.branch.conv1.weight"], s, pad)
        branch = relu(bn(f"{pre}.branch.bn2", branch))
        branch = conv(branch, p[f"{pre}.branch.conv2.weight"], 1, pad)
        if j >= 2:
            short = bn(f"{pre}.shortcut.bn", conv(h, p[f"{pre}.shortcut.conv.weight"], s, pad))
        else:
            short = h
        h = short + cfg["stitch_scale"] * branch
        h = ode_block(cfg, f"block{j}", params, state, h, train, new)
    g = bn("head_bn", h)
    if cfg["head_activation"] == "relu":
        g = relu(g)
    return g.mean(axis=(2, 3)) @ p["dense.weight"].T + p["dense.bias"], new


STATS = ("bn1.mean", "bn1.var", "bn2.mean", "bn2.var")


def ode_block(cfg, block, params, state, h, train, new):
    """Doc 6.2-6.4 for ODE-block ``block``; training writes the refitted state to ``new``."""
    k_count, family = cfg["n_basis"], cfg["basis"]
    arrays = {k[len(block) + 1:]: v for k, v in params.items() if k.startswith(block + ".")}
    stats = {k[len(block) + 1:]: v for k, v in state.items() if k.startswith(block + ".")}
    records = []

    def rate(th, y, weights):
        ev = at_stage(stats, weights)
        if train:
            y1, b1 = batchnorm(y, th["bn1.gamma"], th["bn1.beta"])
        else:
            y1, _ = batchnorm(y, th["bn1.gamma"], th["bn1.beta"], ev["bn1.mean"], ev["bn1.var"])
        c1 = conv(relu(y1), th["conv1.weight"], 1, "symmetric")
        if train:
            y2, b2 = batchnorm(c1, th["bn2.gamma"], th["bn2.beta"])
            records.append((weights, ev, (*b1, *b2)))
        else:
            y2, _ = batchnorm(c1, th["bn2.gamma"], th["bn2.beta"], ev["bn2.mean"], ev["bn2.var"])
        return cfg["rate_scale"] * conv(relu(y2), th["conv2.weight"], 1, "symmetric")

    out = integrate(rate, h, arrays, family, k_count, (0.0, 1.0), cfg["scheme"], cfg["n_steps"])
    if train:
        phi_rows = np.zeros((len(records), k_count))
        for r, (weights, _, _) in enumerate(records):
            for k, w in weights:
                phi_rows[r, k] = w
        active = np.flatnonzero(np.any(phi_rows != 0, axis=0))
        pa = phi_rows[:, active]
        for q, name in enumerate(STATS):
            samples = np.stack([0.1 * batch[q] + 0.9 * ev[name] for _, ev, batch in records])
            coef = stats[name].copy()
            coef[active] = stats[name][active] + np.linalg.pinv(pa) @ (
                samples - pa @ stats[name][active])
            new[f"{block}.{name}"] = coef
    return out


# ------------------------------------------------------------- ContinuousTagger (doc 7)
def tagger_forward(cfg, params, ids, embedded=None):
    """Doc 7.1-7.2: logits ``(B, L, n_tags)``; ``embedded`` replaces ``e`` if given."""
    mask = ids == cfg["padding_id"]
    eps = cfg["ln_eps"]
    if embedded is None:
        embedded = params["embed.weight"][ids] + positions(ids.shape[1], cfg["width"])
    arrays = {k[4:]: v for k, v in params.items() if k.startswith("ode.")}

    def rate(th, x, weights):
        u = layernorm(x, th["ln1_gamma"], th["ln1_beta"], eps)
        a = attention(u, th["attn_weights"], th.get("attn_biases"), mask, cfg["heads"])
        z = x + a if cfg["rate"] == "paper" else x
        v = layernorm(z, th["ln2_gamma"], th["ln2_beta"], eps)
        f = elu(v @ th["mlp_w1"].T + th["mlp_b1"]) @ th["mlp_w2"].T + th["mlp_b2"]
        return np.where(mask[..., None], 0.0, a + f)

    xt = integrate(rate, embedded, arrays, cfg["basis"], cfg["n_basis"], tuple(cfg["interval"]),
                   cfg["scheme"], cfg["n_steps"])
    y = layernorm(xt, params["norm.gamma"], params["norm.beta"], eps)
    return y @ params["head.weight"].T + params["head.bias"]


# ====================================================================== the tests
def test_every_basis_family_is_specified_with_its_valid_sizes():
    families = doc_families()
    assert tuple(sorted(families)) == refode.families()
    for family, rule in families.items():
        assert rule in VALID_K, f"{family}: unknown size rule {rule!r}"
        for k in range(1, 12):
            if VALID_K[rule](k):
                assert refode.basis(family, k).n == k
            else:
                with pytest.raises(refode.BasisError):
                    refode.basis(family, k)


@pytest.mark.parametrize("family", refode.families())
@pytest.mark.parametrize("interval", [(0.0, 1.0), (-0.5, 2.0)])
def test_basis_formulas_match_the_code(family, interval, rng):
    for k in valid_sizes(family):
        b = refode.basis(family, k, interval)
        t = np.concatenate([rng.uniform(*interval, 40), interval])
        want = np.array([phi(family, k, interval, (v - interval[0]) / (interval[1] - interval[0]))
                         for v in t])
        np.testing.assert_allclose(b.evaluate(t), want, rtol=0, atol=BASIS_ATOL)
        for position in b.unit_breakpoints:       # exact positions, both one-sided limits
            for side in ("right", "left"):
                np.testing.assert_allclose(b.evaluate_at(position, side),
                                           phi(family, k, interval, position, side),
                                           rtol=0, atol=BASIS_ATOL)


def test_legendre_is_orthonormal_on_its_interval():
    interval = (-0.5, 2.0)
    x, w = np.polynomial.legendre.leggauss(12)
    t = interval[0] + (x + 1) / 2 * (interval[1] - interval[0])
    values = np.array([phi("legendre", 5, interval, (v - interval[0]) / 2.5) for v in t])
    gram = values.T @ (values * (w * 2.5 / 2)[:, None])
    np.testing.assert_allclose(gram, np.eye(5), atol=1e-13)


def test_tableau_table_is_every_registered_tableau():
    assert tuple(sorted(TABLEAUS)) == refode.tableaus()
    for name, (order, c, b, a) in TABLEAUS.items():
        tab = refode.tableau(name)
        assert tab.order == order, name
        assert list(tab.c) == c and list(tab.b) == b, name
        assert [list(row) for row in tab.a] == a, name


@pytest.mark.parametrize("family", ["piecewise_constant", "piecewise_linear", "fem_linear"])
def test_stage_positions_sides_and_pieces_follow_the_integer_rule(family):
    for k in valid_sizes(family, 12):
        b = refode.basis(family, k)
        n_pieces = PIECES[family](k)
        assert b.n_pieces == n_pieces
        for name, (_, c, _, _) in TABLEAUS.items():
            for n_steps in (1, 2, 3, 5, 7, 12):
                grid = stage_grid(b, refode.tableau(name), n_steps)
                assert len(grid.positions) == n_steps
                assert grid.dt == 1.0 / n_steps
                for n in range(n_steps):
                    for i, ci in enumerate(c):
                        x = (n + ci) / Fraction(n_steps)
                        side = "left" if ci == 1 else "right"
                        assert grid.positions[n][i] == x and grid.sides[n][i] == side
                        assert b.piece_at(x, side) == piece(n_pieces, x, side)
                        idx, w = grid.supports[n][i]
                        got = np.zeros(k)
                        got[list(idx)] = w
                        np.testing.assert_allclose(
                            got, phi(family, k, (0.0, 1.0), x, side), rtol=0, atol=1e-15)


def test_euler_piecewise_constant_n_equals_k_uses_piece_n():
    for k in range(1, 40):
        grid = stage_grid(refode.basis("piecewise_constant", k), refode.tableau("euler"), k)
        assert [s[0] for s in grid.supports] == [((n,), (1.0,)) for n in range(k)]


@pytest.mark.parametrize("family,k,scheme,n_steps,interval", [
    ("piecewise_linear", 4, "rk4", 3, (0.0, 1.0)),
    ("fem_linear", 3, "ssprk3", 2, (0.0, 1.0)),
    ("piecewise_constant", 5, "kutta3", 7, (0.0, 1.0)),
    ("legendre", 3, "heun", 4, (-1.0, 0.5)),
    ("fourier", 5, "rk4_38", 3, (0.0, 2.0)),
    ("poly_linear", 2, "ralston", 2, (0.5, 3.0)),
    ("chebyshev", 4, "midpoint", 1, (0.0, 1.0)),
])
def test_runge_kutta_step_of_the_doc_matches_odeint(family, k, scheme, n_steps, interval, rng):
    rate = refode.rates.DenseTanh()
    b = refode.basis(family, k, interval)
    coefficients = refode.rates.init_coefficients(b, 3, rng)
    h0 = rng.standard_normal((2, 3))
    want = integrate(lambda th, y, _: rate.forward(0.0, y, th), h0, coefficients, family, k,
                     interval, scheme, n_steps)
    got = refode.odeint(rate, h0, coefficients, b, scheme=scheme, n_steps=n_steps)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("family", layout.MODELS)
def test_config_tables_list_every_key_type_and_version_1_value(family):
    doc = config_table(family)
    json_types = {int: "integer", float: "number", str: "string", list: "array", bool: "boolean"}
    assert set(doc) == set(layout.CONFIG_KEYS[family])
    for key, kind in layout.CONFIG_KEYS[family].items():
        assert doc[key][0] == json_types[kind], key
    assert V1[family] == layout.VERSION_1_DEFAULTS[family]


def test_version_1_files_mean_the_documented_options():
    net = refode.load(DATA / "v1_continuousnet.h5")
    for key, value in V1["ContinuousNet"].items():
        assert getattr(net, key) == value, key
    tagger = refode.load(DATA / "v1_tagger.h5")
    assert tagger.ln_eps == V1["ContinuousTagger"]["ln_eps"]


def _attribute_table(title):
    return {code(r[0])[0]: r[1] for r in table(title)}


def _check_attrs(attrs, doc):
    assert set(attrs) == set(doc)
    kinds = {"str": (bytes, str), "int": (np.integer,), "float": (np.floating,)}
    for name, kind in doc.items():
        assert isinstance(attrs[name], kinds[kind]), name


def _net_from(options):
    base = dict(in_channels=2, n_classes=3, widths=(2, 3, 3), basis="fem_linear", n_basis=3,
                scheme="rk4", n_steps=2, seed=5)
    return ContinuousNet(**{**base, **options})


def _small_net(**kw):
    return _net_from(kw)


def _small_tagger(**kw):
    return ContinuousTagger(**{**dict(vocab_size=9, n_tags=4, width=4, heads=2, ffn=5, seed=2),
                               **kw})


def test_root_attributes_of_weight_and_golden_files(tmp_path):
    doc_weights = _attribute_table("Root attributes of a weight file")
    doc_golden = _attribute_table("Root attributes of a golden file")
    for name, model in (("net", _small_net()), ("tagger", _small_tagger(n_basis=2))):
        refode.save(model, tmp_path / f"{name}.h5")
        assert cli.main(["golden", str(tmp_path / f"{name}.h5"), "-o",
                         str(tmp_path / f"{name}_g.h5")]) == 0
        with h5py.File(tmp_path / f"{name}.h5", "r") as f:
            _check_attrs(dict(f.attrs), doc_weights)
            assert f.attrs["format_version"] == refode.io.FORMAT_VERSION
        with h5py.File(tmp_path / f"{name}_g.h5", "r") as f:
            _check_attrs(dict(f.attrs), doc_golden)
            _check_attrs(dict(f["model"].attrs), doc_weights)
            block_attrs = _attribute_table("/blocks/<block>")
            for block in f["model/blocks"].values():
                assert set(block.attrs) == set(block_attrs)


def _name_patterns(title):
    """Regexes of the array names in the first column of the layout table ``title``."""
    section_text = section("/params/<name>")
    marker = section_text.index(title)
    rows = []
    for line in section_text[marker:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    out = []
    for line in rows[2:]:
        for name in code(line.strip("|").split("|")[0]):
            pattern = re.escape(name)
            for old, new in ((r"\{j\}", r"\d+"), (r"\{gamma,beta\}", "(gamma|beta)"),
                             (r"\{mean,var\}", "(mean|var)"), (r"\*", "(gamma|beta|mean|var)")):
                pattern = pattern.replace(old, new)
            out.append(re.compile(pattern + "$"))
    return out


@pytest.mark.parametrize("title,model", [
    ("ContinuousNet with widths", _small_net()),
    ("ContinuousTagger (no state", _small_tagger(n_basis=2, attention_bias=True)),
])
def test_array_tables_name_every_array(title, model):
    patterns = _name_patterns(title)
    names = [*model.params, *model.state]
    for name in names:
        assert any(p.match(name) for p in patterns), name
    for p in patterns:
        assert any(p.match(name) for name in names), p.pattern


def _resolve(path):
    match = re.fullmatch(r"([\w.]+)((?:\[\"[^\"]+\"\])*)", path)
    dotted, keys = match.group(1), re.findall(r"\[\"([^\"]+)\"\]", match.group(2))
    parts = dotted.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        break
    for key in keys:
        obj = obj[key]
    return obj


#: constants the document must state (section 8).
REQUIRED_CONSTANTS = {
    "refode.models._ops.EPS", "refode.models._ops.MOMENTUM", "refode.models.transformer.LN_EPS",
    "refode.models.tagger.IGNORE_INDEX", "refode.kernels.reference.positions.POSITION_BASE",
    "refode.io.weights.MAX_N_BASIS", "refode.io.weights.MAX_N_STEPS",
    "refode.io.weights.MAX_STAGES", "refode.io.weights.MAX_SCALARS",
    "refode.io.weights.FORMAT_VERSION", "refode.io.weights.READ_VERSIONS",
    'refode.io.golden.TOLERANCES["float64"]', 'refode.io.golden.TOLERANCES["float32"]',
}


def test_constants_table_states_the_values_of_the_code():
    rows = table("8. Constants")
    seen = set()
    for _, value, path in rows:
        path = code(path)[0]
        want = _resolve(path)
        assert ast.literal_eval(code(value)[0]) == want, path
        seen.add(path)
    assert REQUIRED_CONSTANTS <= seen


def test_same_padding_formula_and_output_sizes():
    from refode.models import _ops

    for size in range(1, 20):
        for k, stride in ((3, 1), (3, 2), (1, 1), (1, 2)):
            assert _ops.same_padding(size, k, stride) == pad_axis(size, k, stride, "same")
            for mode in ("same", "symmetric"):
                before, after = pad_axis(size, k, stride, mode)
                assert (size + before + after - k) // stride + 1 == math.ceil(size / stride)
    assert pad_axis(8, 3, 2, "same") == (0, 1) and pad_axis(7, 3, 2, "same") == (1, 1)


def test_positions_formula():
    tagger = _small_tagger(n_basis=2, width=6, heads=3)
    np.testing.assert_allclose(tagger.network.layers["embed"].positions(11), positions(11, 6),
                               rtol=0, atol=1e-15)


# ------------------------------------------------------------- models from files alone
NET_OPTIONS = [
    dict(padding="same", head_activation="relu", rate_scale=0.7, stitch_scale=0.5),
    dict(padding="symmetric", head_activation="none", basis="legendre", n_basis=3,
         scheme="euler", n_steps=1),                          # rank-deficient fit
    dict(padding="same", head_activation="none", basis="piecewise_constant", n_basis=4,
         scheme="midpoint", n_steps=1, rate_scale=-0.3),        # pieces 1 and 3 unsampled
    dict(padding="same", head_activation="relu", basis="piecewise_linear", n_basis=4,
         scheme="ssprk3", n_steps=3, stitch_scale=2.0),         # a c = 1 stage not last
]


@pytest.mark.parametrize("options", NET_OPTIONS)
def test_continuousnet_forward_and_state_update_follow_the_doc(options, tmp_path, rng):
    net = _net_from(options)
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([0, 2, 1])
    net.loss_and_gradients(x, y)            # moves the running statistics off their init
    refode.save(net, tmp_path / "net.h5")
    family, cfg, params, state = read_file(tmp_path / "net.h5")
    assert family == "ContinuousNet"
    for train in (False, True):
        logits, new = net_forward(cfg, params, state, x, train)
        np.testing.assert_allclose(logits, net.forward(x, train, update_state=False),
                                   rtol=RTOL, atol=1e-12)
    net.loss_and_gradients(x, y)            # a training step updates the state
    assert set(new) == set(net.state)
    for name, value in new.items():
        np.testing.assert_allclose(net.state[name], value, rtol=RTOL, atol=1e-12, err_msg=name)


def _golden(tmp_path, model, mode, inputs=None):
    refode.save(model, tmp_path / "m.h5")
    args = ["golden", str(tmp_path / "m.h5"), "-o", str(tmp_path / "g.h5"), "--mode", mode]
    if inputs is not None:
        np.savez(tmp_path / "in.npz", x=inputs[0], y=inputs[1])
        args += ["--inputs", str(tmp_path / "in.npz")]
    assert cli.main(args) == 0
    with h5py.File(tmp_path / "g.h5", "r") as f:
        arrays = {}
        f.visititems(lambda n, o: arrays.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset)
                     and not n.startswith("model/") else None)
    return arrays


def _fd(fun, array, index):
    old = array[index]
    array[index] = old + FD_STEP
    up = fun()
    array[index] = old - FD_STEP
    down = fun()
    array[index] = old
    return (up - down) / (2 * FD_STEP)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_continuousnet_golden_outputs_and_gradients_follow_the_doc(mode, tmp_path, rng):
    net = _net_from(NET_OPTIONS[0])
    x = rng.standard_normal((3, 2, 6, 6))
    y = np.array([2, 0, 1])
    net.loss_and_gradients(x, y)
    arrays = _golden(tmp_path, net, mode, (x, y))
    _, cfg, params, state = read_file(tmp_path / "g.h5", "/model")
    train = mode == "train"

    def loss():
        return cross_entropy(net_forward(cfg, params, state, arrays["inputs/x"], train)[0],
                             arrays["inputs/y"])

    logits = net_forward(cfg, params, state, arrays["inputs/x"], train)[0]
    np.testing.assert_allclose(arrays["outputs/logits"], logits, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(arrays["outputs/loss"], loss(), rtol=RTOL)
    for name, index in (("block2.conv1.weight", (1, 0, 2, 1, 1)), ("block1.bn2.gamma", (2, 1)),
                        ("stitch3.shortcut.conv.weight", (1, 2, 0, 0)), ("dense.bias", (1,))):
        fd = _fd(loss, params[name], index)
        np.testing.assert_allclose(arrays[f"gradients/params/{name}"][index], fd,
                                   rtol=FD_RTOL, atol=1e-9, err_msg=name)
    xin = arrays["inputs/x"].copy()
    fd = _fd(lambda: cross_entropy(net_forward(cfg, params, state, xin, train)[0],
                                   arrays["inputs/y"]), xin, (1, 1, 2, 3))
    np.testing.assert_allclose(arrays["gradients/inputs/x"][1, 1, 2, 3], fd, rtol=FD_RTOL,
                               atol=1e-9)


TAGGER_OPTIONS = [
    dict(rate="paper", attention_bias=True, basis=refode.basis("legendre", 3, (0.5, 2.0)),
         scheme="midpoint", n_steps=3, ln_eps=1e-6),
    dict(rate="pre_ln", heads=1, basis=refode.basis("poly_linear", 2, (-1.0, 1.5)),
         scheme="rk4", n_steps=2),
    dict(rate="paper", basis=refode.basis("piecewise_linear", 4, (0.0, 1.0)), scheme="heun",
         n_steps=3, padding_id=3),
]


@pytest.mark.parametrize("options", TAGGER_OPTIONS)
def test_tagger_golden_outputs_and_gradients_follow_the_doc(options, tmp_path):
    tagger = _small_tagger(**options)
    pad = tagger.padding_id
    ids = np.array([[1, 2, 5, 7, pad], [4, 8, 6, 2, 1], [5, 5, 1, pad, pad]])
    tags = np.where(ids == pad, -100, np.array([[0, 1, 2, 3, 0]] * 3))
    tags[1, 2] = -100                                           # not padding, not counted
    arrays = _golden(tmp_path, tagger, "train", (ids, tags))
    _, cfg, params, _ = read_file(tmp_path / "g.h5", "/model")
    logits = tagger_forward(cfg, params, ids)
    np.testing.assert_allclose(arrays["outputs/logits"], logits, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(arrays["outputs/loss"], cross_entropy(logits, tags), rtol=RTOL)

    def loss():
        return cross_entropy(tagger_forward(cfg, params, ids), tags)

    for name, index in (("ode.attn_weights", (1, 2, 3, 0)), ("ode.mlp_b1", (0, 4)),
                        ("ode.ln2_gamma", (1, 2)), ("embed.weight", (ids[0, 1], 3))):
        fd = _fd(loss, params[name], index)
        np.testing.assert_allclose(arrays[f"gradients/params/{name}"][index], fd,
                                   rtol=FD_RTOL, atol=1e-9, err_msg=name)
    e = params["embed.weight"][ids] + positions(ids.shape[1], cfg["width"])
    fd = _fd(lambda: cross_entropy(tagger_forward(cfg, params, ids, e), tags), e, (2, 1, 2))
    np.testing.assert_allclose(arrays["gradients/inputs/embedded"][2, 1, 2], fd, rtol=FD_RTOL,
                               atol=1e-9)
    assert np.all(arrays["gradients/inputs/embedded"][ids == pad] == 0)


def test_check_compares_every_output_and_gradient_with_the_stated_criterion(tmp_path):
    arrays = _golden(tmp_path, _small_tagger(n_basis=2), "eval")
    compared = sorted(k for k in arrays if k.startswith(("outputs/", "gradients/")))
    rtol, atol = golden.TOLERANCES["float64"]

    def candidate(factor):
        with h5py.File(tmp_path / "c.h5", "w") as f:
            for name in compared:
                value = arrays[name]
                if name == "outputs/logits":
                    value = value + factor * (atol + rtol * np.abs(value))
                f[name] = value
        return golden.compare(tmp_path / "g.h5", tmp_path / "c.h5")

    rows, got_rtol, got_atol = candidate(0.5)
    assert (got_rtol, got_atol) == (rtol, atol)
    assert sorted(r["array"][1:] for r in rows) == compared
    assert all(r["passed"] for r in rows)
    rows, _, _ = candidate(2.0)
    assert [r["array"] for r in rows if not r["passed"]] == ["/outputs/logits"]
