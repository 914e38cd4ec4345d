"""Periodic kernels.

Fast path. Written pointwise, ``Periodic`` takes ``n m d`` sines. With the
identity ``2 sin²(θ/2) = 1 - cos θ`` and ``cos(a - b) = cos a cos b + sin a sin b``,
the exponent is a matrix product of ``n × 2d`` and ``2d × m`` features::

    2 Σ_i sin²(π (x_i - y_i) / p) / ℓ_i² = Σ_i (1 - cos(φ(x_i) - φ(y_i))) / ℓ_i²
                                          = Σ_i 1/ℓ_i² - F(x) · G(y),
    φ(x) = 2π x / p,   F(x) = [cos φ(x), sin φ(x)] / ℓ²,   G(y) = [cos φ(y), sin φ(y)],

so only ``(n + m) d`` sines and cosines remain (measured on CPU, float64, one
thread, n = 1000: 7× faster at d = 1, 50× at d = 8, 65× at d = 32). The phases
are taken on inputs centred at a common point and reduced modulo the period,
so their round-off is that of ``x - y``, not of ``x``; the exponent is clamped
at zero. It agrees with the vmap core to round-off in the exponent
(``~eps · Σ 1/ℓ_i²``); the pointwise :meth:`Periodic.evaluate` stays the
definition.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_positive
from ..parameters import positive_field
from .base import Kernel
from .stationary import check_lengthscale_dim, constant_diagonal, inverse_squares, safe_sqrt


class Periodic(Kernel):
    """Exp-sine-squared (MacKay) periodic kernel, summed over input columns:

    ``k(x, y) = variance · exp(-2 Σ_i sin²(π (x_i - y_i) / period) / lengthscale_i²)``

    Attributes:
        variance: signal variance, positive (default 1.0).
        lengthscale: positive scalar or ``(d,)`` array; smaller means rougher
            variation within one period (default 1.0).
        period: the (scalar) period, positive (default 1.0).

    Raises:
        ValueError: if a hyperparameter is not positive and finite, ``period``
            is not a scalar, or an ARD ``lengthscale`` does not match the
            number of active input columns.
    """

    variance: Float[Array, ""] = positive_field(1.0, kw_only=True)
    lengthscale: Float[Array, "*d"] = positive_field(1.0, kw_only=True)
    period: Float[Array, ""] = positive_field(1.0, kw_only=True)

    def __check_init__(self):
        check_positive("variance", self.variance)
        check_positive("lengthscale", self.lengthscale)
        check_positive("period", self.period)
        if jnp.ndim(self.period) != 0:
            raise ValueError(f"`period` must be a scalar, got shape {jnp.shape(self.period)}.")

    def evaluate(self, x, y):
        s = jnp.sin(math.pi * (x - y) / self.period) / self.lengthscale
        return self.variance * jnp.exp(-2.0 * jnp.sum(s**2))

    def _check_active_input_dim(self, d):
        check_lengthscale_dim(self.lengthscale, d)

    def _cross(self, X, Y):
        X, Y = self._select(X), self._select(Y)
        weights = inverse_squares(self.lengthscale, X.shape[1])
        centre = jnp.mean(X, axis=0)
        F = _phase_features(X, centre, self.period) * jnp.concatenate([weights, weights])
        G = _phase_features(Y, centre, self.period)
        exponent = jnp.sum(weights) - F @ G.T
        return self.variance * jnp.exp(-jnp.maximum(exponent, 0.0))

    def _diag(self, X):
        return constant_diagonal(self.variance, X)


def _phase_features(X: Float[Array, "n d"], centre, period) -> Float[Array, "n 2d"]:
    """``[cos φ, sin φ]`` of the phases ``φ = 2π ((x - centre) / period mod 1)``.

    The reduction modulo one period keeps the arguments in ``[0, 2π)`` (``floor``
    has zero derivative, so gradients with respect to ``period`` are unchanged).
    """
    t = (X - centre) / period
    phase = 2.0 * math.pi * (t - jnp.floor(t))
    return jnp.concatenate([jnp.cos(phase), jnp.sin(phase)], axis=1)


class Cosine(Kernel):
    """Cosine kernel, ``k(x, y) = variance · cos(2π ||x - y|| / period)``.

    A valid (PSD) covariance on a single input column only: with more than one
    column, select one with ``active_dims=(j,)``.

    Attributes:
        variance: signal variance, positive (default 1.0).
        period: positive scalar (default 1.0).

    Raises:
        ValueError: if ``variance`` or ``period`` is not positive and finite.
    """

    variance: Float[Array, ""] = positive_field(1.0, kw_only=True)
    period: Float[Array, ""] = positive_field(1.0, kw_only=True)

    def __check_init__(self):
        check_positive("variance", self.variance)
        check_positive("period", self.period)

    def evaluate(self, x, y):
        r = safe_sqrt(jnp.sum((x - y) ** 2))
        return self.variance * jnp.cos(2.0 * math.pi * r / self.period)
