"""Periodic kernels."""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_positive
from ..parameters import positive_field
from .base import Kernel
from .stationary import check_lengthscale_dim, safe_sqrt


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
