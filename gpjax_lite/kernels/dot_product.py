"""Dot-product kernels: functions of ``x · y`` (not stationary)."""

from __future__ import annotations

import numbers

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel


class Linear(Kernel):
    """Linear kernel, ``k(x, y) = variance · (x · y)``: Bayesian linear regression through 0.

    Attributes:
        variance: positive weight variance (default 1.0).
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)

    def evaluate(self, x, y):
        return self.variance * jnp.dot(x, y)

    def _cross(self, X, Y):
        # A matrix product is exactly the pointwise formula, row by column.
        return self.variance * (X @ Y.T)

    def matrix_path(self, d, dtype):
        return "matmul"


class Polynomial(Kernel):
    """Polynomial kernel, ``k(x, y) = variance · (x · y + bias)^degree``.

    Attributes:
        variance: positive scale (default 1.0).
        bias: positive offset (default 1.0).
        degree: a static positive integer (default 2); it is not optimised.

    Raises:
        ValueError: if ``variance`` or ``bias`` is not positive and finite, or
            ``degree < 1``.
        TypeError: if ``degree`` is not an ``int``.
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    bias: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    degree: int = eqx.field(default=2, static=True, kw_only=True)

    def __check_init__(self):
        if isinstance(self.degree, bool) or not isinstance(self.degree, numbers.Integral):
            raise TypeError(f"`degree` must be a positive int, got {self.degree!r}.")
        if self.degree < 1:
            raise ValueError(f"`degree` must be a positive int, got {self.degree!r}.")

    def evaluate(self, x, y):
        return self.variance * (jnp.dot(x, y) + self.bias) ** self.degree

    def _cross(self, X, Y):
        return self.variance * (X @ Y.T + self.bias) ** self.degree

    def matrix_path(self, d, dtype):
        return "matmul"
