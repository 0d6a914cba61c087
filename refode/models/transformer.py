"""Transformer-encoder rates ``R(theta, x)`` of the sentence tagger, with hand-written VJPs.

Both rates act on a state ``x`` of shape ``(B, L, D)`` (batch, positions, width) with
weights ``theta`` (one stage's weights, the dict below) and share one layout:

=================  ==========  ==================================================
name               shape       meaning
=================  ==========  ==================================================
``ln1_gamma``      ``(D,)``    scale of the layer norm before attention
``ln1_beta``       ``(D,)``    shift of that layer norm
``attn_weights``   ``(4,D,D)`` Q, K, V, O projections, PyTorch's (out, in) order
``attn_biases``    ``(4,D)``   their biases (only with ``attention_bias=True``)
``ln2_gamma``      ``(D,)``    scale of the layer norm before the MLP
``ln2_beta``       ``(D,)``    shift of that layer norm
``mlp_w1``         ``(F,D)``   first dense layer (width -> ffn)
``mlp_b1``         ``(F,)``    its bias
``mlp_w2``         ``(D,F)``   second dense layer (ffn -> width)
``mlp_b2``         ``(D,)``    its bias
=================  ==========  ==================================================

Formulas (``SA`` multi-head self-attention with the key padding mask, ``LN`` affine
layer norm with ``eps = ln_eps`` (default 1e-5, PyTorch's; the original code uses Flax's
1e-6), ``MLP(v) = W2 elu(W1 v + b1) + b2``):

- :class:`PaperEncoderRate` (paper, section 5): ``s = SA(LN1(x))``,
  ``R = s + MLP(LN2(x + s))``. Without attention biases a basis function holds
  ``4 D^2 + 2 D F + F + 5 D`` numbers: 99,072 at ``D = F = 128``.
- :class:`PreLNEncoderRate` (the pre-LN transformer encoder layer written as one rate):
  ``R = SA(LN1(x)) + MLP(LN2(x))``. Both branches read the same ``x`` (the "parallel"
  form of ``x + SA(LN1 x)`` followed by ``+ MLP(LN2 .)``), so one Euler step with
  ``dt = 1`` equals a pre-LN layer up to the MLP seeing ``x`` instead of ``x + SA``.
  Several heads; attention biases optional.

Padding: ``mask`` (B, L) bool, ``True`` for a padded position. Padded keys get zero
attention weight, and the rate of a padded position is set to **zero**, so padded
states never change and never influence non-padded ones (their attention rows are
computed, as PyTorch does, then discarded). The original code ignored the mask.

Kernels are those of the rate's ``backend`` (a :class:`refode.backend.Backend` or its
name, ``"cpu"`` by default); the ``"reference"`` backend also runs in complex128 for
complex-step checks.
"""
import numpy as np

from .. import _validate
from ..backend import add, copy, empty, empty_like, get as get_backend, on_device
from ..backend import to_device_like
from ..constants import LN_EPS
from ..errors import RefodeError, ShapeError
from ._spec import real

#: names of the weights of the attention sublayer that always exist.
ATTENTION = "attn_weights"
#: name of the optional attention biases.
ATTENTION_BIAS = "attn_biases"
#: attention projections Q, K, V, O stacked in ``attn_weights``.
N_PROJECTIONS = 4
#: the forward intermediates :meth:`_EncoderRate.forward_save` keeps per stage.
SAVED = ("u", "s", "a", "qkv", "ctx", "v", "p", "e")


def weight_shapes(width, ffn, attention_bias):
    """``{name: shape}`` of one stage's weights (one basis function), in file order."""
    d, f = width, ffn
    out = {"ln1_gamma": (d,), "ln1_beta": (d,), ATTENTION: (N_PROJECTIONS, d, d)}
    if attention_bias:
        out[ATTENTION_BIAS] = (N_PROJECTIONS, d)
    out.update({"ln2_gamma": (d,), "ln2_beta": (d,), "mlp_w1": (f, d), "mlp_b1": (f,),
                "mlp_w2": (d, f), "mlp_b2": (d,)})
    return out


class _EncoderRate:
    """Shared forward/VJP of both encoder rates (see the module docstring).

    Parameters
    ----------
    width, heads, ffn : int
        ``D`` (divisible by ``heads >= 1``) and the MLP's hidden width ``F`` (default ``D``).
    attention_bias : bool
        Whether the Q/K/V/O projections have biases.
    mask : (B, L) bool or None
        Key padding mask, ``True`` = padded (see :meth:`with_mask`).
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
    ln_eps : float
        Regulariser of both layer norms (default :data:`LN_EPS`).
    """

    #: whether the MLP reads ``x + SA(LN1 x)`` (paper) or ``x`` (pre-LN).
    mlp_sees_attention = True

    def __init__(self, width, heads=1, ffn=None, *, attention_bias=False, mask=None,
                 backend="cpu", ln_eps=LN_EPS):
        self.width = _validate.positive_int(width, "width")
        self.heads = _validate.positive_int(heads, "heads")
        self.ffn = self.width if ffn is None else _validate.positive_int(ffn, "ffn")
        if self.width % self.heads:
            raise RefodeError(
                f"`heads` ({self.heads}) must divide `width` ({self.width}); "
                f"choose heads in {[h for h in range(1, self.width + 1) if self.width % h == 0]}"
            )
        self.attention_bias = bool(attention_bias)
        self.ln_eps = real(ln_eps, "ln_eps", positive=True)
        self.backend = get_backend(backend)
        self.mask = None if mask is None else np.asarray(mask, dtype=np.bool_)
        self._device_mask = None
        self._k = {op: self.backend.kernel(op) for op in (
            "layernorm", "layernorm.layernorm_vjp", "attention", "attention.attention_vjp",
            "dense", "dense.dense_vjp", "activation.elu", "activation.elu_vjp")}

    # ------------------------------------------------------------------ layout
    def shapes(self):
        """``{name: shape}`` of one stage's weights (:func:`weight_shapes`)."""
        return weight_shapes(self.width, self.ffn, self.attention_bias)

    def num_parameters(self):
        """Numbers in one basis function's weights (99,072 for the paper rate at D = F = 128)."""
        return int(sum(np.prod(s) for s in self.shapes().values()))

    def init(self, rng, n_basis, dtype=np.float64):
        """Independent random coefficients ``(K, *shape)`` for every basis function.

        Every ``theta_k`` gets its own draw (the original drew all copies from one key).
        Projections and dense weights are uniform in ``+-1/sqrt(fan_in)`` (PyTorch's
        ``Linear`` scale); dense and attention biases likewise; layer norms start at
        ``gamma = 1``, ``beta = 0``.

        Parameters
        ----------
        rng : numpy.random.Generator
        n_basis : int, ``K``
        dtype : float32 or float64

        Returns
        -------
        dict name -> ``(K, *shape)`` ndarray of ``dtype``
        """
        k = _validate.positive_int(n_basis, "n_basis")
        fan_in = {ATTENTION: self.width, ATTENTION_BIAS: self.width, "mlp_w1": self.width,
                  "mlp_b1": self.width, "mlp_w2": self.ffn, "mlp_b2": self.ffn}
        out = {}
        for name, shape in self.shapes().items():
            if name.endswith("_gamma"):
                out[name] = np.ones((k, *shape), dtype=dtype)
            elif name.endswith("_beta"):
                out[name] = np.zeros((k, *shape), dtype=dtype)
            else:
                bound = 1.0 / np.sqrt(fan_in[name])
                out[name] = rng.uniform(-bound, bound, (k, *shape)).astype(dtype)
        return out

    def with_mask(self, mask):
        """The same rate applying the key padding ``mask`` (B, L) bool (``True`` = padded)."""
        return type(self)(self.width, self.heads, self.ffn, attention_bias=self.attention_bias,
                          mask=mask, backend=self.backend, ln_eps=self.ln_eps)

    # ----------------------------------------------------------------- forward
    def _check(self, h):
        if h.ndim != 3 or tuple(h.shape)[-1] != self.width:
            raise ShapeError(
                f"`h` has shape {h.shape}; the encoder rate needs (batch, length, {self.width})"
            )
        if self.mask is not None and self.mask.shape != tuple(h.shape)[:2]:
            raise ShapeError(
                f"the rate's `mask` has shape {self.mask.shape} but h has (batch, length) = "
                f"{h.shape[:2]}; build the rate with rate.with_mask(ids == padding_id)"
            )

    def _layernorm(self, x, gamma, beta):
        y = empty_like(x)
        self._k["layernorm"](x, gamma, beta, y, self.ln_eps)
        return y

    def _dense(self, x2, w, b):
        out = empty((x2.shape[0], w.shape[0]), x2.dtype, x2)
        self._k["dense"](x2, w, b, out)
        return out

    def _mask(self, like):
        """The key padding mask where ``like`` is (copied to the device once per rate)."""
        if self.mask is None or not on_device(like):
            return self.mask
        if self._device_mask is None:
            self._device_mask = to_device_like(self.mask, like)
        return self._device_mask

    def _inputs(self, h, theta):
        """``(x, th)``: the state and weights C-contiguous in their common dtype. Device
        arrays (the CUDA backend's integration) are used as they are: one dtype, and
        contiguous as the integrator makes them."""
        if on_device(h):
            if any(v.dtype != h.dtype for v in theta.values()):
                raise ShapeError(f"the state on the device is {h.dtype} but the weights are "
                                 f"{sorted({str(v.dtype) for v in theta.values()})}")
            return h, dict(theta)
        dtype = np.result_type(h, *theta.values())
        x = np.ascontiguousarray(h, dtype=dtype)
        return x, {k: np.ascontiguousarray(v, dtype=dtype) for k, v in theta.items()}

    def _run(self, h, theta, save=False):
        """All intermediates of the forward pass (dict), the rate included as ``"r"``; with
        ``save``, also the attention weights ``"a"`` (B, H, L, L), the projections
        ``"qkv"`` (B, L, 3 D) and the context ``"ctx"`` (B, L, D)."""
        self._check(h)
        x, th = self._inputs(h, theta)
        b, length, d = x.shape
        mask = self._mask(x)
        c = {"x": x, "th": th}
        c["u"] = self._layernorm(x, th["ln1_gamma"], th["ln1_beta"])
        c["s"] = empty_like(x)
        c["a"] = empty((b, self.heads, length, length), x.dtype, x) if save else None
        c["qkv"] = empty((b, length, 3 * d), x.dtype, x) if save else None
        c["ctx"] = empty_like(x) if save else None
        self._k["attention"](c["u"], th[ATTENTION], th.get(ATTENTION_BIAS), mask,
                             self.heads, c["s"], c["a"], c["qkv"], c["ctx"])
        c["z"] = add(x, c["s"]) if self.mlp_sees_attention else x
        c["v"] = self._layernorm(c["z"], th["ln2_gamma"], th["ln2_beta"]).reshape(b * length, d)
        c["p"] = self._dense(c["v"], th["mlp_w1"], th["mlp_b1"])
        c["e"] = empty_like(c["p"])
        self._k["activation.elu"](c["p"], c["e"])
        f = self._dense(c["e"], th["mlp_w2"], th["mlp_b2"]).reshape(b, length, d)
        c["r"] = self._zero_padded(add(c["s"], f))
        return c

    def _zero_padded(self, y):
        """``y`` with the rows of padded positions set to exactly zero (in place)."""
        if self.mask is not None:
            if on_device(y):
                from ..kernels.cuda import _elementwise

                return _elementwise.zero_rows(y, self._mask(y))
            y[self.mask] = 0
        return y

    def forward(self, t, h, theta):
        """The rate ``dx/dt``, shape ``(B, L, D)`` like ``h`` (``t`` is unused).

        Parameters
        ----------
        t : float
        h : (B, L, D) float32, float64 (complex128 with the reference backend)
        theta : dict name -> shape of :meth:`shapes`
        """
        return self._run(h, theta)["r"]

    def forward_save(self, t, h, theta):
        """:meth:`forward` and the intermediates :meth:`vjp_saved` needs.

        ``saved`` is a dict of ``u = LN1(x)``, the attention output ``s``, its weights
        ``a`` (``(B, H, L, L)``, the softmax the attention VJP would otherwise recompute),
        its projections ``qkv`` (``(B, L, 3 D)``) and context ``ctx`` (``(B, L, D)``),
        ``v = LN2(z)`` (``(B L, D)``), the first dense layer's output ``p`` and its ELU
        ``e`` (``(B L, F)``); ``z`` is recomputed (one addition). The cotangents are
        bitwise those of :meth:`vjp`, which recomputes the same intermediates.
        """
        c = self._run(h, theta, save=True)
        return c["r"], {key: c[key] for key in SAVED}

    # --------------------------------------------------------------------- vjp
    def vjp(self, t, h, theta, a):
        """``a^T dR/dh`` and ``a^T dR/dtheta`` for the cotangent ``a`` (B, L, D).

        Recomputes the forward intermediates, then reverses (:meth:`vjp_saved`): the
        output mask zeroes the padded rows of ``a``; MLP (dense, ELU, dense), LN2,
        attention, LN1.

        Returns
        -------
        a_h : (B, L, D)
        a_theta : dict name -> shape of :meth:`shapes`
        """
        return self.vjp_saved(t, h, theta, a, self.forward_save(t, h, theta)[1])

    def vjp_saved(self, t, h, theta, a, saved):
        """:meth:`vjp` from the intermediates ``saved`` of :meth:`forward_save`."""
        self._check(h)
        x, th = self._inputs(h, theta)
        c = dict(saved)
        c["z"] = add(x, c["s"]) if self.mlp_sees_attention else x
        b, length, d = x.shape
        g = self._zero_padded(copy(a) if on_device(x) else np.array(a, dtype=x.dtype))
        grads = {k: empty_like(v) for k, v in th.items()}
        de = empty_like(c["e"])
        self._k["dense.dense_vjp"](c["e"], th["mlp_w2"], g.reshape(b * length, d), de,
                                   grads["mlp_w2"], grads["mlp_b2"])
        dp = empty_like(c["p"])
        self._k["activation.elu_vjp"](c["p"], de, dp)
        dv = empty_like(c["v"])
        self._k["dense.dense_vjp"](c["v"], th["mlp_w1"], dp, dv, grads["mlp_w1"],
                                   grads["mlp_b1"])
        dz = empty_like(x)
        self._k["layernorm.layernorm_vjp"](c["z"], th["ln2_gamma"], dv.reshape(b, length, d),
                                           dz, grads["ln2_gamma"], grads["ln2_beta"], self.ln_eps)
        ds = add(g, dz) if self.mlp_sees_attention else g
        du = empty_like(x)
        self._k["attention.attention_vjp"](c["u"], th[ATTENTION], th.get(ATTENTION_BIAS),
                                           self._mask(x), self.heads, ds, du, grads[ATTENTION],
                                           grads.get(ATTENTION_BIAS), c["a"], c["qkv"],
                                           c["ctx"])
        dx = empty_like(x)
        self._k["layernorm.layernorm_vjp"](x, th["ln1_gamma"], du, dx, grads["ln1_gamma"],
                                           grads["ln1_beta"], self.ln_eps)
        return add(dx, dz), grads


class PaperEncoderRate(_EncoderRate):
    """The paper's rate ``R = SA(LN1(x)) + MLP(LN2(x + SA(LN1(x))))`` (see the module)."""


class PreLNEncoderRate(_EncoderRate):
    """The pre-LN encoder rate ``R = SA(LN1(x)) + MLP(LN2(x))`` (see the module)."""

    mlp_sees_attention = False


#: encoder rates by name, as accepted by :class:`refode.models.ContinuousTagger`.
RATES = {"paper": PaperEncoderRate, "pre_ln": PreLNEncoderRate}
