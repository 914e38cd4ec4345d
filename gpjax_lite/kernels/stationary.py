"""Stationary kernels: functions of the scaled distance between two points.

With ``r = ||(x - y) / lengthscale||`` (``lengthscale`` a scalar, or a ``(d,)``
array for automatic relevance determination, ARD), each kernel here is
``variance · f(r)`` for a profile ``f`` with ``f(0) = 1``. A subclass writes
only the profile, as a function of ``r²`` (Rasmussen & Williams 2006, ch. 4).

Fast paths. The vmap core forms every difference ``x - y`` as one ``(d,)``
vector per pair and reduces it: XLA vectorises that reduction over a short
axis poorly, and its backward pass is slow. Two rewrites of ``r²`` do better
(see benchmarks case ``gram``, and ``mll`` for gradients);
:meth:`Stationary.matrix_path` makes the choice, from static information only:

* ``"columns"``: ``r²[i, j] = Σ_k (X[i, k] - Y[j, k])² / ℓ_k²``, one fused
  ``n × m`` pass per column: the same arithmetic as the vmap core, so the
  same round-off, in every dtype. Used up to ``COLUMNWISE_MAX_DIM`` columns;
  beyond, the unrolled loop costs more compile time than it saves (see
  benchmarks case ``compile``), and the vmap core (``"vmap"``) is used.
* ``"matmul"``: through one matrix product, for kernels whose profile is
  smooth in ``r²`` (``RBF``, ``RationalQuadratic``), in float64, from
  ``FAST_PATH_MIN_DIM`` columns on::

      r²[i, j] = |a_i|² + |b_j|² - 2 a_i · b_j,     a = (X - c) / ℓ,  b = (Y - c) / ℓ

  on inputs centred at the mean ``c`` of ``X`` and clamped at zero. Its
  absolute error in ``r²`` is about ``4 eps · max(|a_i|², |b_j|²)``: relative
  to the squared spread of the data in lengthscales, not to ``r²``. In
  float64 (``eps = 2.2e-16``) that stays below 1e-9 for data spanning up to
  10³ lengthscales. In float32 (``eps = 1.2e-7``) it would be 1e-4 for data
  spanning only 30 lengthscales, enough to make a Gram matrix with noise
  1e-3 fail to factorise (and float32 matrix products may run in reduced
  precision on GPUs), so **float32 never uses it**: the column path is exact
  there. A Matérn profile involves ``r = sqrt(r²)``, which would turn a
  round-off error ``ε`` in ``r²`` near zero into an error ``sqrt(ε)`` in
  ``r``, so Matérn kernels never use it either.

Derivatives at coincident inputs are right on every path: profiles that
involve ``r`` are built by :func:`~gpjax_lite.kernels.radial.even_profile`,
and the clamp of the matrix-product path passes derivatives through
unchanged (it only removes round-off).
"""

from __future__ import annotations

import abc

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel, vmap_cross
from .radial import matern12_profile, matern32_profile, matern52_profile

#: Smallest number of (active) input columns for which a kernel smooth in r²
#: uses the matrix-product squared distance (float64 only). Below it the
#: column-by-column sum is as fast or faster (see benchmarks case ``gram``).
FAST_PATH_MIN_DIM = 3

#: Largest number of (active) input columns summed column by column; wider
#: inputs use the vmap core. The unrolled sum stays faster at run time beyond
#: this width, but its compile time grows with d and a fit compiles the
#: objective several times (see benchmarks cases ``mll`` and ``compile``).
COLUMNWISE_MAX_DIM = 32


def check_lengthscale_dim(lengthscale, d: int) -> None:
    """ARD lengthscales must have one entry per active input column."""
    shape = jnp.shape(lengthscale)
    if len(shape) > 1 or (len(shape) == 1 and shape[0] not in (1, d)):
        raise ValueError(
            f"`lengthscale` has shape {shape} but the inputs have d = {d} active columns: "
            f"use a scalar or an array of shape ({d},)."
        )


def distance_path(d: int, dtype, smooth_in_r2: bool) -> str:
    """How a stationary kernel computes ``r²`` on ``d`` active columns of ``dtype``.

    Args:
        d: the number of active input columns.
        dtype: the floating-point dtype of the computation.
        smooth_in_r2: whether the kernel's profile is smooth in ``r²`` (only
            then may the matrix product be used).

    Returns:
        ``"matmul"`` (float64, smooth in ``r²``, ``d >= FAST_PATH_MIN_DIM``),
        ``"columns"`` (``d <= COLUMNWISE_MAX_DIM``) or ``"vmap"``; see the
        module docstring for the accuracy of each.
    """
    if smooth_in_r2 and d >= FAST_PATH_MIN_DIM and jnp.dtype(dtype) == jnp.float64:
        return "matmul"
    return "columns" if d <= COLUMNWISE_MAX_DIM else "vmap"


class Stationary(Kernel):
    """``k(x, y) = variance · profile(r²)`` with ``r = ||(x - y) / lengthscale||``.

    Subclasses write only :meth:`profile`. Hyperparameters are keyword-only.

    Attributes:
        variance: the signal variance ``k(x, x)``, a positive scalar (default 1.0).
        lengthscale: positive scalar, or a ``(d,)`` array with one entry per
            active input column (ARD) (default 1.0).

    Raises:
        ValueError: at construction, if ``variance`` or ``lengthscale`` is not
            positive and finite or has the wrong rank; when evaluated, if an
            ARD ``lengthscale`` does not have one entry per active input column.
        TypeError: at construction, if a hyperparameter is not real.
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    lengthscale: Float[Array, "*d"] = positive_field(1.0, shape="scalar_or_vector", kw_only=True)

    #: Whether the profile is smooth in r² (then the matrix-product path is exact to round-off).
    _smooth_in_r2 = False

    @abc.abstractmethod
    def profile(self, r2: Float[Array, ...]) -> Float[Array, ...]:
        """The profile ``f`` as an elementwise function of the squared scaled distance ``r²``."""

    def evaluate(self, x, y):
        r2 = jnp.sum(((x - y) / self.lengthscale) ** 2)
        return self.variance * self.profile(r2)

    def _check_active_input_dim(self, d):
        check_lengthscale_dim(self.lengthscale, d)

    def matrix_path(self, d, dtype):
        """``"matmul"``, ``"columns"`` or ``"vmap"``: see :func:`distance_path`."""
        return distance_path(self._active_dim(d), dtype, self._smooth_in_r2)

    def _cross(self, X, Y):
        dtype = jnp.result_type(X, Y, self.lengthscale)
        path = distance_path(X.shape[1], dtype, self._smooth_in_r2)
        if path == "matmul":
            r2 = scaled_sq_dist(X, Y, self.lengthscale)
        elif path == "columns":
            r2 = scaled_sq_dist_by_column(X, Y, self.lengthscale)
        else:
            return vmap_cross(self._evaluate_scalar, X, Y)
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


@jax.custom_jvp
def clamp_round_off(x):
    """``max(x, 0)`` for a quantity that is ``>= 0`` but for round-off, with derivative 1.

    The clamp only removes round-off, so derivatives are those of the exact
    expression (``jnp.maximum`` would halve them at a tie and zero them below).
    """
    return jnp.maximum(x, 0.0)


@clamp_round_off.defjvp
def _clamp_round_off_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return clamp_round_off(x), dx


def scaled_sq_dist(X, Y, lengthscale) -> Float[Array, "n m"]:
    """Squared distances ``||(x - y)/ℓ||²`` through one matrix product, clamped at 0.

    Absolute error about ``4 eps · max |(x - c)/ℓ|²`` (``c`` the mean of ``X``):
    use it only where that is small (see the module docstring).
    """
    centre = jnp.mean(X, axis=0)
    A = (X - centre) / lengthscale
    B = (Y - centre) / lengthscale
    r2 = jnp.sum(A**2, axis=1)[:, None] + jnp.sum(B**2, axis=1)[None, :] - 2.0 * (A @ B.T)
    return clamp_round_off(r2)


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

    The kernel is not differentiable at ``r = 0`` (``|x - y|`` has a kink).
    Derivatives with respect to the inputs at coincident points ``x = y``
    are returned as 0: for the first derivatives this is the average of the
    one-sided values ``∓variance/lengthscale``; for the second derivatives the
    kink's Dirac term is dropped (and 0 is not the limit ``-variance/ℓ²`` of
    ``∂²k/∂x∂y`` off the diagonal). Hyperparameter gradients are exact there.
    """

    def profile(self, r2):
        return matern12_profile(r2)


Exponential = Matern12


class Matern32(Stationary):
    """Matérn-3/2 kernel, ``k(x, y) = variance · (1 + √3 r) exp(-√3 r)``.

    Once mean-square-differentiable sample paths.
    """

    def profile(self, r2):
        return matern32_profile(3.0 * r2)


class Matern52(Stationary):
    """Matérn-5/2 kernel, ``k(x, y) = variance · (1 + √5 r + 5 r² / 3) exp(-√5 r)``.

    Twice mean-square-differentiable sample paths.
    """

    def profile(self, r2):
        return matern52_profile(5.0 * r2)


class RationalQuadratic(Stationary):
    """Rational-quadratic kernel, ``k(x, y) = variance · (1 + r² / (2 alpha))^(-alpha)``.

    A scale mixture of RBF kernels; ``alpha → ∞`` recovers the RBF.

    Attributes:
        alpha: positive shape parameter (default 1.0).
    """

    alpha: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    _smooth_in_r2 = True

    def profile(self, r2):
        return (1.0 + r2 / (2.0 * self.alpha)) ** (-self.alpha)
