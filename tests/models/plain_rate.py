"""A rate seen through the base rate protocol only (``forward``/``vjp``, no ``forward_save``)."""


class PlainRate:
    """Wraps a rate so the integrator recomputes its forward in every VJP."""

    def __init__(self, rate):
        self.rate = rate

    def forward(self, t, h, theta):
        return self.rate.forward(t, h, theta)

    def vjp(self, t, h, theta, a):
        return self.rate.vjp(t, h, theta, a)
