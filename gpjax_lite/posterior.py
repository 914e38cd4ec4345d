"""One posterior interface: ``predict``, ``sample`` and ``__call__`` written once.

Every model's posterior (the exact :class:`~gpjax_lite.Posterior`, SGPR's and
SVGP's variational ones, the Laplace approximation) answers the same three
questions about the latent function ``f`` at ``m`` test inputs ``X*``:

* ``predict(Xt, include_noise=False)`` — the marginal mean and variance of
  ``f(X*)``, each ``(m,)``, optionally plus the Gaussian observation noise;
* ``post(Xt)`` — the joint distribution of ``f(X*)``, a
  :class:`~gpjax_lite.MultivariateNormal` with an ``(m, m)`` covariance;
* ``sample(key, Xt, num_samples=1)`` — joint draws of ``f(X*)``,
  ``(num_samples, m)``.

A model's posterior subclasses :class:`AbstractPosterior` and writes only
its maths: :meth:`~AbstractPosterior._check_test_inputs`,
:meth:`~AbstractPosterior._latent_moments`,
:meth:`~AbstractPosterior._latent_distribution` and, when it has Gaussian
observation noise, :meth:`~AbstractPosterior._observation_noise`.
"""

from __future__ import annotations

import abc

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray, UInt32

from ._checks import check_key, check_positive
from ._module import Module
from .distributions import MultivariateNormal


class AbstractPosterior(Module):
    """Base class of every posterior: the public methods, written once."""

    # ------------------------------------------------------------- to write
    @abc.abstractmethod
    def _check_test_inputs(self, Xt) -> Float[Array, "m d"]:
        """Validate test inputs (named ``Xt``) and return them as ``(m, d)``."""

    @abc.abstractmethod
    def _latent_moments(self, Xt: Float[Array, "m d"]):
        """Marginal mean and variance ``(m,)``, ``(m,)`` of ``f(X*)``; no ``(m, m)`` matrix."""

    @abc.abstractmethod
    def _latent_distribution(self, Xt: Float[Array, "m d"]) -> MultivariateNormal:
        """The joint distribution of ``f(X*)`` (an ``(m, m)`` covariance)."""

    def _observation_noise(self):
        """The Gaussian observation-noise variance of the training data (a scalar or
        ``(n,)``), or ``None`` for a model whose observations are not Gaussian."""
        return None

    # -------------------------------------------------------------- public
    def predict(self, Xt, include_noise=False):
        """Predictive mean and marginal variance at ``Xt``, each ``(m,)``; no ``(m, m)`` matrix.

        Args:
            Xt: test inputs ``(m,)`` or ``(m, d)``.
            include_noise: ``False`` for the latent function ``f``; ``True`` to
                add the (scalar) Gaussian observation noise, giving the variance
                of a new observation ``y*``; or an array ``()`` or ``(m,)`` of the
                test points' own noise variances (needed when the training noise
                is per point).

        Returns:
            ``(mean, variance)``, each ``(m,)``; the variance is clamped at 0
            against round-off.

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``; for
                ``include_noise=True`` when the training noise is per point or
                the model has no Gaussian noise; for an ``include_noise`` array
                that is not ``()`` or ``(m,)`` or not positive.
            TypeError: for an ``include_noise`` that is neither a bool nor a
                float array (a boolean *array* included: under ``jit``, make it
                static).
        """
        include_noise = _as_include_noise(include_noise)
        Xt = self._check_test_inputs(Xt)
        if include_noise is not False and include_noise is not True:
            m = Xt.shape[0]
            if include_noise.shape not in ((), (m,)):
                raise ValueError(
                    f"`include_noise` must be a bool or an array of shape ({m},), "
                    f"got shape {include_noise.shape}."
                )
            check_positive("include_noise", include_noise)
        if include_noise is True:
            noise = self._observation_noise()
            if noise is None:
                raise ValueError(
                    "`include_noise=True` needs Gaussian observation noise, which this model "
                    "does not have: use `predict_y(Xt)` for the predictive of y."
                )
            if jnp.ndim(noise) != 0:
                raise ValueError(
                    "`include_noise=True` needs a scalar noise, but this model has per-point "
                    "noise: pass the test points' noise variances, `include_noise=array (m,)`."
                )
        mean, variance = self._latent_moments(Xt)
        variance = jnp.maximum(variance, 0.0)
        if include_noise is False:
            return mean, variance
        extra = self._observation_noise() if include_noise is True else include_noise
        return mean, variance + jnp.asarray(extra, variance.dtype)

    def __call__(self, Xt) -> MultivariateNormal:
        """The joint posterior of the latent function at ``Xt``, ``m`` values.

        Args:
            Xt: test inputs ``(m,)`` or ``(m, d)``.

        Returns:
            A :class:`~gpjax_lite.MultivariateNormal` with mean ``(m,)`` and
            covariance ``(m, m)``.

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``.
        """
        return self._latent_distribution(self._check_test_inputs(Xt))

    def sample(
        self, key: PRNGKeyArray | UInt32[np.ndarray, " 2"], Xt, num_samples: int | np.integer = 1
    ) -> Float[Array, "s m"]:
        """Joint posterior draws of the latent function at ``Xt``, shape ``(num_samples, m)``.

        Args:
            key: a JAX PRNG key (``jax.random.key`` or ``jax.random.PRNGKey``).
            Xt: test inputs ``(m,)`` or ``(m, d)``.
            num_samples: number of joint draws, a positive ``int`` (default 1).

        Raises:
            TypeError: if ``key`` is not a single PRNG key.
            ValueError: for mis-shaped or non-finite ``Xt`` or a ``num_samples`` below 1.
            TypeError: for a ``num_samples`` that is not an ``int``.
            CholeskyError: (eager code only) if the posterior covariance plus
                jitter is not positive definite.
        """
        check_key(key)
        return self(Xt).sample(key, num_samples)


def _as_include_noise(include_noise):
    """``True``/``False`` for Python or NumPy bools, else a float array (checked by the caller)."""
    if isinstance(include_noise, (bool, np.bool_)):
        return bool(include_noise)
    array = (
        None
        if include_noise is None or isinstance(include_noise, str)
        else jnp.asarray(include_noise)
    )
    if array is None or not jnp.issubdtype(array.dtype, jnp.floating):
        raise TypeError(
            "`include_noise` must be a Python bool (under `jax.jit`, mark it static: "
            "`static_argnames='include_noise'`) or a float array of noise variances, "
            f"got {include_noise!r}."
        )
    return array
