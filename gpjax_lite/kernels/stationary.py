"""Stationary kernels: functions of the scaled distance between two points.

With ``r = ||(x - y) / lengthscale||`` (``lengthscale`` a scalar, or a ``(d,)``
array for automatic relevance determination, ARD), each kernel here is
``variance · f(r)`` for a profile ``f`` with ``f(0) = 1``. A subclass writes
only the profile, as a function of ``r²``.

Fast paths. The vmap core forms every difference ``x - y`` as one ``(d,)``
vector per pair and reduces it: XLA vectorises that reduction over a short
axis poorly, and its backward pass is slow. Two exact rewrites of ``r²`` do
better (measured in ``benchmarks/``, CPU, float64, one thread, n = 1000):

* Column by column, ``r²[i, j] = Σ_k (X[i, k] - Y[j, k])² / ℓ_k²``: one fused
  ``n × m`` loop per column, the same arithmetic as the vmap core (so the
  same round-off). Matérn-5/2 Gram: 1.3 vs 1.7 ms at d = 1, 3.5 vs 11 ms at
  d = 8; its gradient 2.2 vs 25 ms at d = 1. Used up to
  ``COLUMNWISE_MAX_DIM`` columns; beyond, the unrolled loop costs more
  compile time than it saves.
* Through one matrix product, for kernels whose profile is smooth in ``r²``
  (``RBF``, ``RationalQuadratic``), from ``FAST_PATH_MIN_DIM`` columns on::

      r²[i, j] = |a_i|² + |b_j|² - 2 a_i · b_j,     a = (X - c) / ℓ,  b = (Y - c) / ℓ

  computed on inputs centred at a common ``c`` (so the cancellation error is
  relative to the data's spread, not its offset) and clamped at zero. It
  agrees with the vmap core to round-off in ``r²`` (RBF Gram + gradient at
  d = 8: 2.7 ms vs 27 ms column by column). A Matérn profile involves
  ``r = sqrt(r²)``, which would turn a round-off error ``ε`` in ``r²`` near
  zero into an error ``sqrt(ε)`` in ``r``, so Matérn kernels never use it.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import check_positive
from ..parameters import positive_field
from .base import Kernel, vmap_cross

#: Smallest number of (active) input columns for which a kernel smooth in r²
#: uses the matrix-product squared distance. Below it the column-by-column sum
#: is as fast or faster (RBF, n = 1000, Gram: d = 1 0.8 vs 2.7 ms, d = 2 1.0 vs
#: 1.0 ms; Gram gradient: d = 2 2.6 vs 3.3 ms, d = 4 5.9 vs 3.0 ms).
FAST_PATH_MIN_DIM = 3

#: Largest number of (active) input columns summed column by column; wider
#: inputs use the vmap core. The unrolled sum stays faster at run time up to
#: d = 128 (Matérn-5/2, n = 1000, MLL + gradient: d = 32 156 vs 233 ms,
#: d = 128 539 vs 697 ms), but its compile time grows with d (d = 32
#: 0.76 vs 0.41 s, d = 128 2.1 vs 0.4 s), and a fit compiles the objective
#: several times.
COLUMNWISE_MAX_DIM = 32


def safe_sqrt(r2):
    """``sqrt(r2)`` whose gradient at ``r2 = 0`` is 0 instead of NaN.

    The stationary profiles below are even in ``r``, so 0 is the right
    one-sided limit for hyperparameter gradients on the diagonal.
    """
    positive = r2 > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, r2, 1.0)), 0.0)


def check_lengthscale_dim(lengthscale, d: int) -> None:
    """ARD lengthscales must have one entry per active input column."""
    shape = jnp.shape(lengthscale)
    if len(shape) > 1 or (len(shape) == 1 and shape[0] not in (1, d)):
        raise ValueError(
            f"`lengthscale` has shape {shape} but the inputs have d = {d} active columns: "
            f"use a scalar or an array of shape ({d},)."
        )


class Stationary(Kernel):
    """``k(x, y) = variance · profile(r²)`` with ``r = ||(x - y) / lengthscale||``.

    Subclasses write only :meth:`profile`. Hyperparameters are keyword-only.

    Attributes:
        variance: the signal variance ``k(x, x)``, positive (default 1.0).
        lengthscale: positive scalar, or a ``(d,)`` array with one entry per
            active input column (ARD) (default 1.0).

    Raises:
        ValueError: at construction, if ``variance`` or ``lengthscale`` is not
            positive and finite; when evaluated, if an ARD ``lengthscale`` does
            not have one entry per active input column.
    """

    variance: Float[Array, ""] = positive_field(1.0, kw_only=True)
    lengthscale: Float[Array, "*d"] = positive_field(1.0, kw_only=True)

    #: Whether the profile is smooth in r² (then the matrix-product path is exact to round-off).
    _smooth_in_r2 = False

    def __check_init__(self):
        check_positive("variance", self.variance)
        check_positive("lengthscale", self.lengthscale)

    def profile(self, r2: Float[Array, "..."]) -> Float[Array, "..."]:
        """The profile ``f`` as a function of the squared scaled distance ``r²``."""
        raise NotImplementedError

    def evaluate(self, x, y):
        r2 = jnp.sum(((x - y) / self.lengthscale) ** 2)
        return self.variance * self.profile(r2)

    def _check_active_input_dim(self, d):
        check_lengthscale_dim(self.lengthscale, d)

    def _use_fast_path(self, d: int) -> bool:
        return self._smooth_in_r2 and d >= FAST_PATH_MIN_DIM

    def _cross(self, X, Y):
        X, Y = self._select(X), self._select(Y)
        d = X.shape[1]
        if self._use_fast_path(d):
            r2 = scaled_sq_dist(X, Y, self.lengthscale)
        elif d <= COLUMNWISE_MAX_DIM:
            r2 = scaled_sq_dist_by_column(X, Y, self.lengthscale)
        else:
            return vmap_cross(self.evaluate, X, Y)
        return self.variance * self.profile(r2)

    def _diag(self, X):
        return constant_diagonal(self.variance, X)


def constant_diagonal(variance, X: Float[Array, "n d"]) -> Float[Array, " n"]:
    """``[variance, ..., variance]`` for a kernel with ``k(x, x) = variance`` everywhere."""
    return jnp.broadcast_to(variance, X.shape[:1]).astype(jnp.result_type(variance, X))


def inverse_squares(lengthscale, d: int) -> Float[Array, " d"]:
    """``1 / ℓ_k²`` for each of the ``d`` active columns (a scalar ``ℓ`` is shared)."""
    return jnp.broadcast_to(jnp.asarray(lengthscale) ** -2.0, (d,))


def scaled_sq_dist_by_column(X, Y, lengthscale) -> Float[Array, "n m"]:
    """Squared distances ``Σ_k (x_k - y_k)² / ℓ_k²``, one fused ``n × m`` pass per column (exact)."""
    weights = inverse_squares(lengthscale, X.shape[1])

    def column(k):
        return weights[k] * (X[:, k, None] - Y[None, :, k]) ** 2

    r2 = column(0)
    for k in range(1, X.shape[1]):  # d is static and small: unrolled
        r2 = r2 + column(k)
    return r2


def scaled_sq_dist(X, Y, lengthscale) -> Float[Array, "n m"]:
    """Squared distances ``||(x - y)/ℓ||²`` through one matrix product, clamped at 0."""
    centre = jnp.mean(X, axis=0)
    A = (X - centre) / lengthscale
    B = (Y - centre) / lengthscale
    r2 = jnp.sum(A**2, axis=1)[:, None] + jnp.sum(B**2, axis=1)[None, :] - 2.0 * (A @ B.T)
    return jnp.maximum(r2, 0.0)


class RBF(Stationary):
    """Squared-exponential kernel, ``k(x, y) = variance · exp(-r² / 2)``.

    Infinitely differentiable sample paths. Alias: ``SquaredExponential``.
    """

    _smooth_in_r2 = True

    def profile(self, r2):
        return jnp.exp(-0.5 * r2)


SquaredExponential = RBF


class Matern12(Stationary):
    """Matérn-1/2 (exponential) kernel, ``k(x, y) = variance · exp(-r)``.

    Continuous but nowhere-differentiable sample paths (Ornstein–Uhlenbeck in 1-D).
    Alias: ``Exponential``.
    """

    def profile(self, r2):
        return jnp.exp(-safe_sqrt(r2))


Exponential = Matern12


class Matern32(Stationary):
    """Matérn-3/2 kernel, ``k(x, y) = variance · (1 + √3 r) exp(-√3 r)``.

    Once mean-square-differentiable sample paths.
    """

    def profile(self, r2):
        s = math.sqrt(3.0) * safe_sqrt(r2)
        return (1.0 + s) * jnp.exp(-s)


class Matern52(Stationary):
    """Matérn-5/2 kernel, ``k(x, y) = variance · (1 + √5 r + 5 r² / 3) exp(-√5 r)``.

    Twice mean-square-differentiable sample paths.
    """

    def profile(self, r2):
        s = math.sqrt(5.0) * safe_sqrt(r2)
        return (1.0 + s + (5.0 / 3.0) * r2) * jnp.exp(-s)


class RationalQuadratic(Stationary):
    """Rational-quadratic kernel, ``k(x, y) = variance · (1 + r² / (2 alpha))^(-alpha)``.

    A scale mixture of RBF kernels; ``alpha → ∞`` recovers the RBF.

    Attributes:
        alpha: positive shape parameter (default 1.0).
    """

    alpha: Float[Array, ""] = positive_field(1.0, kw_only=True)
    _smooth_in_r2 = True

    def __check_init__(self):
        check_positive("alpha", self.alpha)

    def profile(self, r2):
        return (1.0 + r2 / (2.0 * self.alpha)) ** (-self.alpha)
