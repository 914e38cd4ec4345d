"""Kernels that do not depend on where the inputs are: ``Constant`` and ``White``."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel


class Constant(Kernel):
    """Constant kernel, ``k(x, y) = variance``: a random offset shared by all points.

    Attributes:
        variance: positive variance of the offset (default 1.0).
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)

    def evaluate(self, x, y):
        return self.variance * jnp.ones((), jnp.result_type(x, self.variance))


class White(Kernel):
    """White-noise kernel: independent noise at every *observation*.

    ``gram(X) = variance · I`` and ``diag(X) = variance``, but ``cross(X, Y)``
    is all zeros, even for ``Y = X``: the noise of the training observations is
    independent of any other evaluation. It has no pointwise value, so
    ``k(x, y)`` raises ``TypeError``.

    Attributes:
        variance: positive noise variance (default 1.0).
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)

    def evaluate(self, x, y):
        raise TypeError(
            "`White` has no pointwise value k(x, y): use `gram(X)` (variance · I), "
            "`diag(X)` or `cross(X, Y)` (zeros)."
        )

    def _cross(self, X, Y):
        dtype = jnp.result_type(X, Y, self.variance)
        return jnp.zeros((X.shape[0], Y.shape[0]), dtype)

    def _gram(self, X):
        return self.variance * jnp.eye(X.shape[0], dtype=jnp.result_type(X, self.variance))

    def _diag(self, X):
        return jnp.full(X.shape[:1], self.variance, dtype=jnp.result_type(X, self.variance))

    def matrix_path(self, d, dtype):
        return "constant"
