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

How ``K + Σ`` is factorised is the ``solver``'s business (a strategy, see
:mod:`gpjax_lite.solvers`): the default :class:`~gpjax_lite.solvers.Cholesky`
forms the dense ``L Lᵀ = K + Σ`` once in ``GP.condition`` and every prediction
afterwards costs triangular solves only. Whatever the solver, the numbers are
the same to round-off.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._checks import (
    as_inputs,
    as_targets,
    check_key,
    check_kernel_and_mean,
    check_positive,
    evaluate_mean,
)
from ._module import Module
from .distributions import MultivariateNormal
from .kernels.base import Kernel
from .linalg import raise_if_not_finite
from .means import Zero
from .parameters import positive_field
from .posterior import AbstractPosterior
from .solvers import Cholesky, Solver, SolverState


class GP(Module):
    """A Gaussian-process prior with Gaussian observation noise.

    ``GP(kernel, mean=Zero(), noise=1e-2, *, solver=solvers.Cholesky(), jitter=None)``

    Attributes:
        kernel: the covariance function ``k``.
        mean: the mean function ``m`` (default :class:`~gpjax_lite.means.Zero`):
            any module mapping one point ``(d,)`` to a scalar.
        noise: the observation-noise *variance* ``σ²`` (positive): a scalar, or
            ``(n,)`` for per-point (heteroscedastic) noise matching the training data.
        solver: how ``K + Σ`` is factorised (default
            :class:`~gpjax_lite.solvers.Cholesky`); see :mod:`gpjax_lite.solvers`.
        jitter: relative diagonal jitter for noise-free covariances (prior
            samples, posterior covariance); ``None`` is the dtype default
            (see :mod:`gpjax_lite.linalg`). Never added to the likelihood.

    Raises:
        TypeError: if ``kernel`` is not a :class:`~gpjax_lite.kernels.Kernel`,
            ``mean`` is not callable or ``solver`` is not a
            :class:`~gpjax_lite.solvers.Solver`.
        ValueError: if ``noise`` is not positive and finite, or has more than
            one dimension.
    """

    kernel: Kernel
    mean: eqx.Module = eqx.field(default_factory=Zero)
    noise: Float[Array, "*n"] = positive_field(1e-2)
    solver: Solver = eqx.field(default_factory=Cholesky, kw_only=True)
    jitter: float | None = eqx.field(default=None, static=True, kw_only=True)

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        if not isinstance(self.solver, Solver):
            raise TypeError(
                "`solver` must be a gpjax_lite.solvers.Solver (e.g. `solvers.Cholesky()`), "
                f"got {type(self.solver).__name__}."
            )
        if jnp.ndim(self.noise) > 1:
            raise ValueError(
                f"`noise` must be a scalar or have shape (n,), got shape {jnp.shape(self.noise)}."
            )
        check_positive("noise", self.noise)

    # ------------------------------------------------------------------ helpers
    def _inputs(self, X, name: str = "X") -> Float[Array, "n d"]:
        X = as_inputs(name, X)
        # The solver first: its checks (one column for StateSpace) name the argument.
        self.solver.check_inputs(self.kernel, X, name)
        self.kernel.check_input_dim(X.shape[1])
        return X

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
        return evaluate_mean(self.mean, as_inputs("X", X))

    def _data(self, X, y):
        """Validated ``X`` ``(n, d)``, per-point noise ``(n,)`` and residual ``y - m(X)`` ``(n,)``."""
        X = self._inputs(X)
        y = as_targets("y", y, X.shape[0])
        noise = self._noise_for(X.shape[0])
        return X, noise, y - evaluate_mean(self.mean, X)

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
        X = self._inputs(X)
        return self.solver.prior(self.kernel, X, evaluate_mean(self.mean, X), self.jitter)

    def sample(self, key: PRNGKeyArray, X, num_samples: int = 1) -> Float[Array, "s n"]:
        """Joint prior draws of the latent function at ``X``, shape ``(num_samples, n)``.

        Args:
            key: a JAX PRNG key.
            X: inputs ``(n,)`` or ``(n, d)``.
            num_samples: number of joint draws (default 1).

        Raises:
            TypeError: if ``key`` is not a single PRNG key.
            ValueError: for mis-shaped or non-finite ``X`` or a bad ``num_samples``.
            CholeskyError: (eager code only) if ``k(X, X)`` plus jitter is not
                positive definite.
        """
        check_key(key)
        return self.prior(X).sample(key, num_samples)

    # ---------------------------------------------------- marginal likelihood
    def log_marginal_likelihood(self, X, y) -> Float[Array, ""]:
        """``log p(y | X) = -½ rᵀ(K + Σ)⁻¹r - ½ log|K + Σ| - n/2 log 2π``, ``r = y - m(X)``.

        Computed by the ``solver`` (R&W eq. 2.30); no jitter (the noise
        regularises). The dense solver differentiates it in closed form,
        ``½ tr((ααᵀ - (K + Σ)⁻¹) ∂(K + Σ)/∂θ)`` (R&W eq. 5.9).

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``noise``
                not matching ``n``.
            CholeskyError: (eager code only) if ``K + Σ`` is not positive definite.
        """
        X, noise, r = self._data(X, y)
        value = self.solver.log_marginal_likelihood(self.kernel, X, noise, r)
        raise_if_not_finite(value, "K + noise·I")
        return value

    # ---------------------------------------------------------------- posterior
    def condition(self, X, y) -> "Posterior":
        """The posterior given observations ``y`` at ``X``: the solver factorises ``K + Σ`` once.

        Args:
            X: training inputs ``(n,)`` or ``(n, d)``.
            y: training targets ``(n,)``.

        Returns:
            A :class:`Posterior`; with the default solver it holds ``L``
            (``L Lᵀ = K + Σ``) and ``α = (K + Σ)⁻¹ (y - m(X))``.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``noise``
                not matching ``n``.
            CholeskyError: (eager code only) if ``K + Σ`` is not positive
                definite; under ``jit`` check :meth:`Posterior.is_valid` instead.
        """
        X, noise, r = self._data(X, y)
        state = self.solver.condition(self.kernel, X, noise, r)
        raise_if_not_finite(state, "K + noise·I")
        return Posterior(model=self, X=X, state=state)


class Posterior(AbstractPosterior):
    """The exact GP posterior: the model, its training inputs and the solver's state.

    Build it with :meth:`GP.condition`; every method reuses the factorisation.
    ``predict``, ``sample`` and ``__call__`` are those of
    :class:`~gpjax_lite.posterior.AbstractPosterior`.

    Attributes:
        model: the conditioned :class:`GP` (also available as ``prior``).
        X: training inputs ``(n, d)``.
        state: the solver's :class:`~gpjax_lite.solvers.SolverState` (for the
            default solver, ``cholesky_factor`` and ``alpha``).
    """

    model: GP
    X: Float[Array, "n d"]
    state: SolverState

    @property
    def prior(self) -> GP:
        """The conditioned :class:`GP` (the same as ``model``)."""
        return self.model

    @property
    def cholesky_factor(self) -> Float[Array, "n n"]:
        """Lower ``L`` with ``L Lᵀ = K + Σ``, ``(n, n)`` (dense solver only)."""
        return self.state.cholesky_factor

    @property
    def alpha(self) -> Float[Array, " n"]:
        """``(K + Σ)⁻¹ (y - m(X))``, ``(n,)`` (dense solver only)."""
        return self.state.alpha

    def is_valid(self) -> Float[Array, ""]:
        """Whether the factorisation succeeded (all finite): a boolean array, usable under ``jit``."""
        return self.state.is_valid()

    def _check_test_inputs(self, Xt):
        Xt = as_inputs("Xt", Xt)
        if Xt.shape[1] != self.X.shape[1]:
            raise ValueError(
                f"`Xt` must have d = {self.X.shape[1]} columns like the training inputs, "
                f"got shape {Xt.shape}."
            )
        self.model.solver.check_inputs(self.model.kernel, Xt, "Xt")
        return Xt

    def _latent_moments(self, Xt):
        shift, variance = self.state.predict(self.model.kernel, Xt)
        return evaluate_mean(self.model.mean, Xt) + shift, variance

    def _latent_distribution(self, Xt):
        prior_mean = evaluate_mean(self.model.mean, Xt)
        return self.state.distribution(self.model.kernel, Xt, prior_mean, self.model.jitter)

    def _observation_noise(self):
        return self.model.noise
