"""The convolutional rate unit ``R(theta(t), h) = conv(relu(BN(conv(relu(BN(h))))))``.

``R`` is BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv3x3 (paper, section 5; each BN -> ReLU
one fused kernel, :mod:`refode.kernels.cpu.bn_relu`): no biases,
stride 1, zero padding 1, ``C`` channels in and out, times ``scale`` (the original code's
``epsilon``; 1 by default). It is a *rate* for
:func:`refode.odeint` / :func:`refode.integrate.vjp`: ``theta`` is the dict of weights
at the stage time,

- ``"bn1.gamma", "bn1.beta", "bn2.gamma", "bn2.beta"``: ``(C,)``;
- ``"conv1.weight", "conv2.weight"``: ``(C, C, 3, 3)``;
- evaluation mode only: ``"bn1.mean", "bn1.var", "bn2.mean", "bn2.var"``: ``(C,)``, the
  running statistics at the stage time (the state expanded in the same basis).

In training mode both batch norms use batch statistics (the VJP goes through them);
in evaluation mode they use ``theta``'s running statistics (the VJP also returns
their cotangents). ``h`` is ``(N, C, H, W)``.

The rate implements the optional parts of the rate protocol
(:mod:`refode.integrate.odeint`): ``forward_save``/``vjp_saved`` and
``forward_stats``, through which an observed forward sweep receives the batch
statistics of every stage.
"""
from ..backend import get as get_backend, scale as times
from ..kernels.workspace import Workspace
from . import _ops

#: kernel size, stride and padding of the rate's convolutions.
KERNEL, STRIDE, PAD = 3, 1, 1
#: names of the running statistics (state), used in evaluation mode.
STATS = ("bn1.mean", "bn1.var", "bn2.mean", "bn2.var")


def weight_shapes(channels):
    """Shapes of the trainable weights at one depth for ``channels`` channels."""
    conv = (channels, channels, KERNEL, KERNEL)
    vec = (channels,)
    return {"bn1.gamma": vec, "bn1.beta": vec, "conv1.weight": conv,
            "bn2.gamma": vec, "bn2.beta": vec, "conv2.weight": conv}


class ConvRate:
    """The conv rate unit (see the module docstring).

    Parameters
    ----------
    train : bool
        Batch statistics (True) or ``theta``'s running statistics (False).
    scale : float
    backend : str or refode.backend.Backend
        Whose kernels run (default ``"cpu"``).
    """

    def __init__(self, train, scale=1.0, backend="cpu"):
        self.train = bool(train)
        self.scale = float(scale)
        self.backend = get_backend(backend)
        self.workspace = Workspace()

    def _conv(self, x, w):
        return _ops.conv(x, w, STRIDE, PAD, self.workspace, backend=self.backend)

    def _bn_relu(self, x, theta, which):
        return _ops.bn_relu(x, theta[f"{which}.gamma"], theta[f"{which}.beta"],
                            theta.get(f"{which}.mean"), theta.get(f"{which}.var"), self.train,
                            backend=self.backend)

    def _forward(self, h, theta):
        r1, m1, v1 = self._bn_relu(h, theta, "bn1")
        c1 = self._conv(r1, theta["conv1.weight"])
        r2, m2, v2 = self._bn_relu(c1, theta, "bn2")
        out = self._conv(r2, theta["conv2.weight"])
        if self.scale != 1.0:
            out = times(self.scale, out)
        return out, (r1, c1, r2), (m1, v1, m2, v2)

    def forward(self, t, h, theta):
        """``R(theta, h)``, shape of ``h``.

        In evaluation mode each BN -> ReLU -> conv is one kernel (``conv2d.bn_relu_conv2d``,
        no intermediate array), bitwise the unfused :meth:`forward_save`.
        """
        if self.train:
            return self._forward(h, theta)[0]
        out = self._bn_relu_conv(self._bn_relu_conv(h, theta, "1"), theta, "2")
        return times(self.scale, out) if self.scale != 1.0 else out

    def _bn_relu_conv(self, x, theta, which):
        return _ops.bn_relu_conv(x, theta[f"bn{which}.gamma"], theta[f"bn{which}.beta"],
                                 theta[f"bn{which}.mean"], theta[f"bn{which}.var"],
                                 theta[f"conv{which}.weight"], STRIDE, PAD, self.workspace,
                                 backend=self.backend)

    def forward_save(self, t, h, theta):
        """:meth:`forward` and the intermediates :meth:`vjp_saved` needs.

        ``saved = (r1, c1, r2)``: the two conv inputs (ReLU outputs) and the second
        batch norm's input, three arrays of the shape of ``h``. The ReLU VJP reads
        its output instead of its input: ``relu(y) <= 0`` exactly where ``y <= 0``
        (NaN stays NaN), so the cotangents are bitwise those of :meth:`vjp`.
        """
        return self._forward(h, theta)[:2]

    def forward_stats(self, t, h, theta, save=False):
        """:meth:`forward` with the stage's batch statistics (and :meth:`forward_save`'s
        ``saved`` when ``save``).

        Returns
        -------
        out : shape of ``h``, bitwise :meth:`forward`
        stats : ``(mean1, var1, mean2, var2)``, each ``(C,)`` (variances unbiased), the
            batch statistics of the two batch norms in training mode; None in evaluation
        saved : ``(r1, c1, r2)`` if ``save``, else None
        """
        out, saved, stats = self._forward(h, theta)
        return out, (stats if self.train else None), (saved if save else None)

    def _bn_relu_vjp(self, x, theta, which, r, dr, grads):
        """Cotangent of the input ``x`` of ``relu(bn(x)) = r`` (fused in training mode)."""
        gamma = theta[f"{which}.gamma"]
        if self.train:
            dx, g = _ops.bn_relu_vjp(x, gamma, r, dr, backend=self.backend)
        else:
            dx, g = _ops.bn_vjp(x, gamma, theta[f"{which}.mean"], theta[f"{which}.var"],
                                _ops.relu_vjp(r, dr, backend=self.backend), False,
                                backend=self.backend)
        grads.update({f"{which}.{k}": v for k, v in g.items()})
        return dx

    def vjp(self, t, h, theta, a):
        """``(a^T dR/dh, {name: a^T dR/dtheta[name]})`` for every name of ``theta``."""
        return self.vjp_saved(t, h, theta, a, self._forward(h, theta)[1])

    def vjp_saved(self, t, h, theta, a, saved):
        """:meth:`vjp` from the intermediates ``saved`` of :meth:`forward_save`."""
        r1, c1, r2 = saved
        grads, backend = {}, self.backend
        if self.scale != 1.0:
            a = times(self.scale, a)
        # each cotangent is dropped once the next is computed (the reverse pass's peak)
        dr2, grads["conv2.weight"] = _ops.conv_vjp(r2, theta["conv2.weight"], a, STRIDE, PAD,
                                                   self.workspace, backend=backend)
        del a
        dc1 = self._bn_relu_vjp(c1, theta, "bn2", r2, dr2, grads)
        del dr2
        dr1, grads["conv1.weight"] = _ops.conv_vjp(r1, theta["conv1.weight"], dc1, STRIDE, PAD,
                                                   self.workspace, backend=backend)
        del dc1
        return self._bn_relu_vjp(h, theta, "bn1", r1, dr1, grads), grads
