"""The Gaussian-process model: prior, marginal likelihood and exact posterior.

Model::

    f ~ GP(m, k),        y_i = f(x_i) + ε_i,      ε_i ~ N(0, σ²_i)

For ``n`` training inputs ``X`` write ``K = k(X, X)`` ``(n, n)``, ``m = m(X)``
``(n,)`` and ``Σ = diag(σ²)`` (``σ²`` the ``noise``, a scalar or ``(n,)``).

* Log marginal likelihood, through one Cholesky factor ``L Lᵀ = K + Σ``::

      log p(y) = -½ rᵀ (K + Σ)⁻¹ r - ½ log|K + Σ| - n/2 log 2π,    r = y - m

* Posterior at ``m`` test inputs ``X*``, with ``K* = k(X, X*)`` ``(n, m)``,
  ``α = (K + Σ)⁻¹ r`` and ``V = L⁻¹ K*``::

      mean(X*) = m(X*) + K*ᵀ α                              (m,)
      cov(X*)  = k(X*, X*) - K*ᵀ (K + Σ)⁻¹ K* = k(X*, X*) - Vᵀ V   (m, m)
      var(X*)  = diag k(X*, X*) - Σ_rows V²                  (m,), no (m, m) matrix

``GP.condition`` factorises ``K + Σ`` once and stores ``L`` and ``α``; every
prediction afterwards costs triangular solves only.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._module import Module
from ._checks import as_inputs, as_targets, check_finite, check_positive, check_kernel_and_mean
from .distributions import MultivariateNormal
from .kernels.base import Kernel
from .linalg import cho_solve, cholesky, gaussian_log_density, raise_if_not_finite, solve_lower
from .means import Zero
from .parameters import positive_field


class GP(Module):
    """A Gaussian-process prior with Gaussian observation noise.

    Attributes:
        kernel: the covariance function ``k``.
        mean: the mean function ``m`` (default :class:`~gpjax_lite.means.Zero`):
            any module mapping one point ``(d,)`` to a scalar.
        noise: the observation-noise *variance* ``σ²`` (positive): a scalar, or
            ``(n,)`` for per-point (heteroscedastic) noise matching the training data.
        jitter: relative diagonal jitter for noise-free covariances (prior
            samples, posterior covariance); ``None`` is the dtype default
            (see :mod:`gpjax_lite.linalg`). Never added to the likelihood.

    Raises:
        TypeError: if ``kernel`` is not a :class:`~gpjax_lite.kernels.Kernel`
            or ``mean`` is not callable.
        ValueError: if ``noise`` is not positive and finite, or has more than
            one dimension.
    """

    kernel: Kernel
    mean: eqx.Module = eqx.field(default_factory=Zero)
    noise: Float[Array, "*n"] = positive_field(1e-2)
    jitter: float | None = eqx.field(default=None, static=True, kw_only=True)

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        if jnp.ndim(self.noise) > 1:
            raise ValueError(
                f"`noise` must be a scalar or have shape (n,), got shape {jnp.shape(self.noise)}."
            )
        check_positive("noise", self.noise)

    # ------------------------------------------------------------------ helpers
    def _noise_for(self, n: int) -> Float[Array, " n"]:
        """The noise variances of ``n`` training points, shape ``(n,)``."""
        if jnp.ndim(self.noise) == 1 and jnp.shape(self.noise)[0] != n:
            raise ValueError(
                f"`noise` has shape {jnp.shape(self.noise)} but `X` has n = {n} rows: "
                "per-point noise must have shape (n,)."
            )
        return jnp.broadcast_to(self.noise, (n,))

    def mean_vector(self, X) -> Float[Array, " n"]:
        """``m(X)``, the prior mean at each row of ``X``, shape ``(n,)``."""
        return jax.vmap(self.mean)(as_inputs("X", X))

    def _data(self, X, y):
        X = as_inputs("X", X)
        y = as_targets("y", y, X.shape[0])
        noise = self._noise_for(X.shape[0])
        m = jax.vmap(self.mean)(X)
        # Otherwise a NaN mean surfaces as a misleading CholeskyError (or NaN `alpha`).
        check_finite("mean", m)
        K = self.kernel.gram(X)
        K_noisy = K + jnp.diag(noise.astype(K.dtype))
        return X, K_noisy, y - m

    # ------------------------------------------------------------------- prior
    def prior(self, X) -> MultivariateNormal:
        """The prior of the latent function at ``X``: ``N(m(X), k(X, X))`` over ``n`` values.

        Args:
            X: inputs ``(n,)`` or ``(n, d)``.

        Returns:
            A :class:`~gpjax_lite.distributions.MultivariateNormal` with mean
            ``(n,)`` and covariance ``(n, n)`` (no noise; sampling adds jitter).

        Raises:
            ValueError: for mis-shaped or non-finite ``X``.
        """
        X = as_inputs("X", X)
        return MultivariateNormal(jax.vmap(self.mean)(X), self.kernel.gram(X), jitter=self.jitter)

    def sample(self, key: PRNGKeyArray, X, num_samples: int = 1) -> Float[Array, "s n"]:
        """Joint prior draws of the latent function at ``X``, shape ``(num_samples, n)``.

        Args:
            key: a JAX PRNG key.
            X: inputs ``(n,)`` or ``(n, d)``.
            num_samples: number of joint draws (default 1).

        Raises:
            ValueError: for mis-shaped or non-finite ``X`` or a bad ``num_samples``.
            CholeskyError: (eager code only) if ``k(X, X)`` plus jitter is not
                positive definite.
        """
        return self.prior(X).sample(key, num_samples)

    # ---------------------------------------------------- marginal likelihood
    def log_marginal_likelihood(self, X, y) -> Float[Array, ""]:
        """``log p(y | X) = -½ rᵀ(K + Σ)⁻¹r - ½ log|K + Σ| - n/2 log 2π``, ``r = y - m(X)``.

        One Cholesky factorisation; no jitter (the noise regularises). Its
        gradient uses the closed form ``½ tr((ααᵀ - (K + Σ)⁻¹) ∂(K + Σ)/∂θ)``.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``noise``
                not matching ``n``.
            CholeskyError: (eager code only) if ``K + Σ`` is not positive definite.
        """
        _, K_noisy, r = self._data(X, y)
        value = gaussian_log_density(K_noisy, r)
        raise_if_not_finite(value, "K + noise·I")
        return value

    # ---------------------------------------------------------------- posterior
    def condition(self, X, y) -> "Posterior":
        """The posterior given observations ``y`` at ``X``: factorises ``K + Σ`` once.

        Args:
            X: training inputs ``(n,)`` or ``(n, d)``.
            y: training targets ``(n,)``.

        Returns:
            A :class:`Posterior` holding ``L`` (``L Lᵀ = K + Σ``) and
            ``α = (K + Σ)⁻¹ (y - m(X))``.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``noise``
                not matching ``n``.
            CholeskyError: (eager code only) if ``K + Σ`` is not positive
                definite; under ``jit`` check :meth:`Posterior.is_valid` instead.
        """
        X, K_noisy, r = self._data(X, y)
        L = cholesky(K_noisy, what="K + noise·I")
        return Posterior(prior=self, X=X, cholesky_factor=L, alpha=cho_solve(L, r))


class Posterior(Module):
    """The exact GP posterior, holding the factor ``L`` of ``K + Σ`` and ``α = (K + Σ)⁻¹ r``.

    Build it with :meth:`GP.condition`. Every method reuses the stored factor.

    Attributes:
        prior: the conditioned :class:`GP`.
        X: training inputs ``(n, d)``.
        cholesky_factor: lower ``L`` with ``L Lᵀ = K + Σ``, ``(n, n)``.
        alpha: ``(K + Σ)⁻¹ (y - m(X))``, ``(n,)``.
    """

    prior: GP
    X: Float[Array, "n d"]
    cholesky_factor: Float[Array, "n n"]
    alpha: Float[Array, " n"]

    def is_valid(self) -> Float[Array, ""]:
        """Whether the factorisation succeeded (all finite): a boolean array, usable under ``jit``."""
        return jnp.all(jnp.isfinite(self.cholesky_factor))

    def _project(self, Xt):
        """Test inputs, the predictive mean and ``V = L⁻¹ k(X, X*)``."""
        Xt = as_inputs("Xt", Xt)
        if Xt.shape[1] != self.X.shape[1]:
            raise ValueError(
                f"`Xt` must have d = {self.X.shape[1]} columns like the training inputs, "
                f"got shape {Xt.shape}."
            )
        K_cross = self.prior.kernel.cross(self.X, Xt)
        mean = jax.vmap(self.prior.mean)(Xt) + K_cross.T @ self.alpha
        return Xt, mean, solve_lower(self.cholesky_factor, K_cross)

    def __call__(self, Xt) -> MultivariateNormal:
        """The posterior of the latent function at ``Xt``: ``N(mean, k(X*, X*) - VᵀV)``, ``m`` values.

        Args:
            Xt: test inputs ``(m,)`` or ``(m, d)``, with the training inputs' ``d``.

        Returns:
            A :class:`~gpjax_lite.distributions.MultivariateNormal` with mean
            ``m(X*) + k(X*, X) α`` ``(m,)`` and covariance ``(m, m)``.

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``.
        """
        Xt, mean, V = self._project(Xt)
        prior_cov = self.prior.kernel.gram(Xt)
        # Sampling jitter relative to the *prior* variance scale: the round-off in
        # k(X*, X*) - VᵀV is relative to it, and near the data the posterior
        # variances are far smaller (a jitter relative to those fails in float32).
        return MultivariateNormal(
            mean,
            prior_cov - V.T @ V,
            jitter=self.prior.jitter,
            jitter_scale=jnp.mean(jnp.diagonal(prior_cov)),
        )

    def predict(self, Xt, include_noise=False):
        """Predictive mean and marginal variance at ``Xt``, each ``(m,)``; no ``(m, m)`` matrix.

        Args:
            Xt: test inputs ``(m,)`` or ``(m, d)``.
            include_noise: ``False`` for the latent function ``f``; ``True`` to
                add the (scalar) observation noise, giving the variance of a new
                observation ``y*``; or an ``(m,)`` array of the test points' own
                noise variances (needed when the training noise is per point).

        Returns:
            ``(mean, variance)``, each ``(m,)``: ``mean = m(X*) + k(X*, X) α`` and
            ``variance = diag k(X*, X*) - Σ_rows V²`` with ``V = L⁻¹ k(X, X*)``
            (plus the noise if asked), clamped at 0 against round-off.

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``; for
                ``include_noise=True`` when the training noise is per point; for
                an ``include_noise`` array that is not ``()`` or ``(m,)`` or not
                positive.
            TypeError: for a boolean *array* ``include_noise`` (under ``jit``,
                make it static).
        """
        if isinstance(include_noise, np.bool_):
            include_noise = bool(include_noise)
        elif not isinstance(include_noise, bool) and jnp.issubdtype(
            jnp.result_type(include_noise), jnp.bool_
        ):
            # A traced/array bool would otherwise be read as a noise variance of 1.0.
            raise TypeError(
                "`include_noise` must be a Python bool (under `jax.jit`, mark it static: "
                "`static_argnames='include_noise'`) or a float array of noise variances, "
                "got a boolean array."
            )
        Xt, mean, V = self._project(Xt)
        variance = self.prior.kernel.diag(Xt) - jnp.sum(V**2, axis=0)
        variance = jnp.maximum(variance, 0.0)
        if include_noise is False:
            return mean, variance
        if include_noise is True:
            if jnp.ndim(self.prior.noise) != 0:
                raise ValueError(
                    "`include_noise=True` needs a scalar noise, but this model has per-point "
                    "noise: pass the test points' noise variances, `include_noise=array (m,)`."
                )
            return mean, variance + self.prior.noise
        test_noise = jnp.asarray(include_noise)
        if test_noise.shape not in ((), mean.shape):
            raise ValueError(
                f"`include_noise` must be a bool or an array of shape {mean.shape}, "
                f"got shape {test_noise.shape}."
            )
        check_positive("include_noise", test_noise)
        return mean, variance + test_noise

    def sample(self, key: PRNGKeyArray, Xt, num_samples: int = 1) -> Float[Array, "s m"]:
        """Joint posterior draws of the latent function at ``Xt``, shape ``(num_samples, m)``.

        Args:
            key: a JAX PRNG key.
            Xt: test inputs ``(m,)`` or ``(m, d)``.
            num_samples: number of joint draws (default 1).

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt`` or a bad ``num_samples``.
            CholeskyError: (eager code only) if the posterior covariance plus
                jitter is not positive definite.
        """
        return self(Xt).sample(key, num_samples)
