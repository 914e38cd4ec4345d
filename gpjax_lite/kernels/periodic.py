"""Periodic kernels.

Fast paths. Written pointwise, ``Periodic`` takes ``n m d`` sines.
:meth:`Periodic.matrix_path` chooses by dtype (see benchmarks case ``gram``):

* ``"features"`` (float64): only ``(n + m) d`` sines and cosines of the
  phases ``φ(x) = π (x - c) / p`` (inputs centred at a common point ``c``
  and reduced modulo the period, so their round-off is that of ``x - y``,
  not of ``x``). With ``2 sin²(θ) = 1 - cos 2θ`` and
  ``cos(a - b) = cos a cos b + sin a sin b`` the exponent is one matrix
  product of ``n × 2d`` and ``2d × m`` features::

      2 Σ_i sin²(φ(x_i) - φ(y_i)) / ℓ_i² = Σ_i 1/ℓ_i² - F(x) · G(y),
      F(x) = [cos 2φ(x), sin 2φ(x)] / ℓ²,   G(y) = [cos 2φ(y), sin 2φ(y)],

  clamped at zero. Its absolute error in the exponent is a few
  ``eps · Σ_i 1/ℓ_i²``, however close ``x`` and ``y`` are: negligible in float64,
  but in float32 (and with reduced-precision matrix products on GPUs) larger
  than the pointwise formula's near the diagonal.
* ``"columns"`` (float32 and narrower, up to ``COLUMNWISE_MAX_DIM`` columns;
  beyond, the vmap core): the pointwise arithmetic, one fused ``n × m`` pass
  per column of ``2 sin²(π (x_i - y_i) / p) / ℓ_i²``. It takes ``n m d`` sines
  like the vmap core, but no ``(d,)`` vector per pair, and has the vmap
  core's round-off. Any formula built from the sines of single points has an
  absolute phase error of ``eps · π`` however close ``x`` and ``y`` are (in
  float32 with ``ℓ = 0.1``, Gram errors of 3e-5 by the features and 3e-6 by
  products of sines, against 1.4e-7 pointwise), so float32 keeps the
  pointwise arithmetic.

Both agree with the pointwise :meth:`Periodic.evaluate`, which stays the
definition, to round-off.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel, vmap_cross
from .radial import cosine_profile
from .stationary import (
    COLUMNWISE_MAX_DIM,
    check_lengthscale_dim,
    clamp_round_off,
    constant_diagonal,
    inverse_squares,
)


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

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    lengthscale: Float[Array, "*d"] = positive_field(1.0, shape="scalar_or_vector", kw_only=True)
    period: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)

    def evaluate(self, x, y):
        s = jnp.sin(math.pi * (x - y) / self.period) / self.lengthscale
        return self.variance * jnp.exp(-2.0 * jnp.sum(s**2))

    def _check_active_input_dim(self, d):
        check_lengthscale_dim(self.lengthscale, d)

    def matrix_path(self, d, dtype):
        """``"features"`` (float64), ``"columns"`` or ``"vmap"``: see the module docstring."""
        return _phase_path(self._active_dim(d), dtype)

    def _cross(self, X, Y):
        path = _phase_path(X.shape[1], jnp.result_type(X, Y, self.lengthscale, self.period))
        if path == "vmap":
            return vmap_cross(self._evaluate_scalar, X, Y)
        weights = inverse_squares(self.lengthscale, X.shape[1])
        if path == "features":
            centre = jnp.mean(X, axis=0)
            phase_x = _half_phases(X, centre, self.period)
            phase_y = _half_phases(Y, centre, self.period)
            exponent = _exponent_by_features(phase_x, phase_y, weights)
        else:
            exponent = _exponent_by_column(X, Y, weights, self.period)
        return self.variance * jnp.exp(-exponent)

    def _diag(self, X):
        return constant_diagonal(self.variance, X)


def _phase_path(d: int, dtype) -> str:
    if jnp.dtype(dtype) == jnp.float64:
        return "features"
    return "columns" if d <= COLUMNWISE_MAX_DIM else "vmap"


def _half_phases(X: Float[Array, "n d"], centre, period) -> Float[Array, "n d"]:
    """The phases ``φ = π ((x - centre) / period mod 1)``, in ``[0, π)``.

    ``sin²`` has period ``π`` in ``φ``, so the reduction changes nothing but
    round-off (``floor`` has zero derivative: gradients are unchanged).
    """
    t = (X - centre) / period
    return math.pi * (t - jnp.floor(t))


def _exponent_by_features(phase_x, phase_y, weights) -> Float[Array, "n m"]:
    """``Σ_i w_i (1 - cos 2(φx_i - φy_i))`` as ``Σ w - F · G`` (one matrix product)."""
    F = jnp.concatenate([jnp.cos(2.0 * phase_x), jnp.sin(2.0 * phase_x)], axis=1)
    G = jnp.concatenate([jnp.cos(2.0 * phase_y), jnp.sin(2.0 * phase_y)], axis=1)
    F = F * jnp.concatenate([weights, weights])
    return clamp_round_off(jnp.sum(weights) - F @ G.T)


def _exponent_by_column(X, Y, weights, period) -> Float[Array, "n m"]:
    """``Σ_i 2 w_i sin²(π (x_i - y_i) / p)``, one fused ``n × m`` pass per column."""

    def column(k):
        return 2.0 * weights[k] * jnp.sin(math.pi * (X[:, k, None] - Y[None, :, k]) / period) ** 2

    exponent = column(0)
    for k in range(1, X.shape[1]):  # d is static and small: unrolled
        exponent = exponent + column(k)
    return exponent


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

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    period: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)

    def evaluate(self, x, y):
        # cos(2π r / p) as a function of (r / p)², so derivatives at x = y are right.
        return self.variance * cosine_profile(jnp.sum(((x - y) / self.period) ** 2))
