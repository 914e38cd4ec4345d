"""The multivariate normal distribution, through its Cholesky factor."""

from __future__ import annotations

import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real, UInt32

from ._checks import as_real_array, check_finite, check_jitter
from ._module import Module
from .linalg import add_jitter, cholesky, gaussian_log_density, raise_if_not_finite


def check_num_samples(num_samples) -> int:
    """``num_samples`` as a Python ``int``: a ``TypeError`` unless it is an integer (a
    bool is not), a ``ValueError`` unless it is positive."""
    if not isinstance(num_samples, numbers.Integral) or isinstance(num_samples, (bool, np.bool_)):
        raise TypeError(
            f"`num_samples` must be a positive int, got {type(num_samples).__name__} "
            f"{num_samples!r}."
        )
    if num_samples < 1:
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
    return int(num_samples)


class MultivariateNormal(Module):
    """``N(mean, covariance)`` over ``n`` values.

    Attributes:
        mean: the mean vector, shape ``(n,)``.
        covariance_matrix: the covariance, shape ``(n, n)``.
        jitter: relative diagonal jitter used by :meth:`sample` only (``None``:
            the dtype default of :func:`gpjax_lite.linalg.default_jitter`).
            :meth:`log_prob` uses the covariance as it is.
        jitter_scale: the variance scale the jitter is relative to (``None``:
            ``mean(diag covariance)``). A GP posterior passes its prior's scale,
            since the round-off in its covariance is relative to that.

    A subclass with a structured covariance (the state-space solver's, say)
    may leave ``covariance_matrix`` as ``None`` and form it in
    :meth:`covariance` only when asked; every method here reads the
    covariance through :meth:`covariance`, and the subclass overrides the
    ones it can do without it (:meth:`variance`, :meth:`sample`).

    Raises:
        TypeError: if ``mean`` or ``covariance_matrix`` is not a real numeric
            array (lists and integers are converted), or ``jitter`` is not a number.
        ValueError: if ``mean`` is not ``(n,)`` or ``covariance_matrix`` is not
            ``(n, n)``, either holds NaN/inf (concrete values only), or
            ``jitter`` is negative or not finite.
    """

    mean: Float[Array, " n"] = eqx.field(converter=lambda v: as_real_array("mean", v))
    covariance_matrix: Float[Array, "n n"] | None = eqx.field(
        converter=lambda v: None if v is None else as_real_array("covariance_matrix", v)
    )
    jitter: float | int | np.floating | np.integer | None = eqx.field(default=None, static=True)
    jitter_scale: Real[ArrayLike, ""] | None = None

    def __check_init__(self):
        n = jnp.shape(self.mean)
        lazy = (
            self.covariance_matrix is None
            and type(self).covariance is not MultivariateNormal.covariance
        )
        if len(n) != 1 or (not lazy and jnp.shape(self.covariance_matrix) != (n[0], n[0])):
            raise ValueError(
                "`mean` must be (n,) and `covariance_matrix` (n, n); got shapes "
                f"{jnp.shape(self.mean)} and {jnp.shape(self.covariance_matrix)}."
            )
        # Otherwise NaN surfaces later as a misleading CholeskyError.
        check_finite("mean", self.mean)
        if self.covariance_matrix is not None:
            check_finite("covariance_matrix", self.covariance_matrix)
        check_jitter(self.jitter)

    def covariance(self) -> Float[Array, "n n"]:
        """The ``(n, n)`` covariance matrix."""
        return self.covariance_matrix

    def variance(self) -> Float[Array, " n"]:
        """The marginal variances, ``diag(covariance)``, shape ``(n,)``."""
        return jnp.diagonal(self.covariance())

    def stddev(self) -> Float[Array, " n"]:
        """The marginal standard deviations, shape ``(n,)``."""
        return jnp.sqrt(self.variance())

    def sample(
        self, key: PRNGKeyArray | UInt32[np.ndarray, " 2"], num_samples: int | np.integer = 1
    ) -> Float[Array, "s n"]:
        """``num_samples`` joint draws ``mean + L ε``, ``ε ~ N(0, I)``, shape ``(num_samples, n)``.

        ``L`` is the Cholesky factor of the covariance plus jitter (see the
        jitter policy in :mod:`gpjax_lite.linalg`).

        Args:
            key: a JAX PRNG key.
            num_samples: number of joint draws, a positive ``int`` (default 1).

        Raises:
            TypeError: if ``num_samples`` is not an ``int``.
            ValueError: if it is not positive.
            CholeskyError: (eager code only) if the covariance plus jitter is
                not positive definite.
        """
        num_samples = check_num_samples(num_samples)
        C = add_jitter(self.covariance(), self.jitter, scale=self.jitter_scale)
        L = cholesky(C, what="the covariance plus jitter (for sampling)")
        eps = jax.random.normal(key, (num_samples, self.mean.shape[0]), dtype=L.dtype)
        return self.mean + eps @ L.T

    def log_prob(self, y: ArrayLike) -> Float[Array, ""]:
        """``log N(y | mean, C) = -½ rᵀC⁻¹r - ½ log|C| - n/2 log 2π``, ``r = y - mean``.

        One Cholesky factorisation, no jitter.

        Args:
            y: a point of shape ``(n,)``.

        Returns:
            The scalar log density, in nats.

        Raises:
            ValueError: if ``y`` is not ``(n,)`` or holds NaN/inf.
            CholeskyError: (eager code only) if the covariance is not positive definite.
        """
        y = jnp.asarray(y)
        if y.shape != self.mean.shape:
            raise ValueError(f"`y` must have shape {self.mean.shape}, got {y.shape}.")
        check_finite("y", y)
        value = gaussian_log_density(self.covariance(), y - self.mean)
        raise_if_not_finite(value, "the covariance matrix")
        return value
