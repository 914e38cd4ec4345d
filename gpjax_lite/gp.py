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

from collections.abc import Callable

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray, UInt32

from ._checks import (
    as_inputs,
    as_targets,
    as_test_inputs,
    check_jitter,
    check_kernel_and_mean,
    check_key,
    evaluate_mean,
    model_inputs,
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
    mean: Callable[[Float[Array, " d"]], Float[Array, ""]] = eqx.field(default_factory=Zero)
    noise: Float[Array, "*n"] = positive_field(1e-2, shape="scalar_or_vector")
    solver: Solver = eqx.field(default_factory=Cholesky, kw_only=True)
    jitter: float | int | np.floating | np.integer | None = eqx.field(
        default=None, static=True, kw_only=True
    )

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        if not isinstance(self.solver, Solver):
            raise TypeError(
                "`solver` must be a gpjax_lite.solvers.Solver (e.g. `solvers.Cholesky()`), "
                f"got {type(self.solver).__name__}."
            )
        check_jitter(self.jitter)

    # ------------------------------------------------------------------ helpers
    def _inputs(self, X, name: str = "X") -> Float[Array, "n d"]:
        return model_inputs(self, X, name)

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

    def sample(
        self, key: PRNGKeyArray | UInt32[np.ndarray, " 2"], X, num_samples: int | np.integer = 1
    ) -> Float[Array, "s n"]:
        """Joint prior draws of the latent function at ``X``, shape ``(num_samples, n)``.

        Args:
            key: a JAX PRNG key.
            X: inputs ``(n,)`` or ``(n, d)``.
            num_samples: number of joint draws (default 1).

        Raises:
            TypeError: if ``key`` is not a single PRNG key.
            ValueError: for mis-shaped or non-finite ``X`` or a ``num_samples`` below 1.
            TypeError: for a ``num_samples`` that is not an ``int``.
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
    def condition(self, X, y) -> Posterior:
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

    # ------------------------------------------------------- Bayesian workflow
    def loo_log_predictive(self, X, y) -> Float[Array, ""]:
        """``Σ_i log p(y_i | X, y_{-i})``: the exact leave-one-out predictive log density (nats).

        Each noisy observation ``y_i`` is predicted from all the others, with its
        own noise in the predictive variance (Rasmussen & Williams 2006, eq.
        5.10–5.12, with ``r = y - m(X)``)::

            A = (K + Σ)⁻¹,   α = A r,   μ_{-i} = y_i - α_i / A_ii,   σ²_{-i} = 1 / A_ii
            log p(y_i | X, y_{-i}) = -½ log σ²_{-i} - (y_i - μ_{-i})² / (2σ²_{-i}) - ½ log 2π

        from one factorisation by the ``solver`` (no refits, no jitter). Usable
        as a model-selection criterion, or as a ``fit`` objective:
        ``fit(gp, X, y, objective=lambda m, X, y: m.loo_log_predictive(X, y))``
        (R&W §5.4.2).

        Args:
            X: training inputs ``(n,)`` or ``(n, d)``.
            y: training targets ``(n,)``.

        Returns:
            A scalar, in nats.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``noise``
                not matching ``n``.
            CholeskyError: (eager code only) if ``K + Σ`` is not positive
                definite; under ``jit`` the value is NaN instead.
        """
        X, noise, r = self._data(X, y)
        value = self.solver.loo_log_predictive(self.kernel, X, noise, r)
        raise_if_not_finite(value, "K + noise·I")
        return value

    def numpyro_dist(self, X):
        """The marginal distribution of the noisy observations at ``X``, as a numpyro distribution.

        ``y ~ N(m(X), K + Σ)`` (R&W eq. 2.30), the latent function integrated
        out: a ``numpyro.distributions.Distribution`` with event shape ``(n,)``
        and batch shape ``()`` whose ``log_prob(y)`` is
        :meth:`log_marginal_likelihood` (through the model's solver) and whose
        ``sample(key, (N,))`` draws ``(N, n)`` noisy observations. Use it as the
        likelihood of a numpyro model with priors on the hyperparameters::

            ell = numpyro.sample("ell", dist.LogNormal(0.0, 1.0))
            gp = GP(kernels.RBF(lengthscale=ell), noise=0.1)
            numpyro.sample("y", gp.numpyro_dist(X), obs=y)

        numpyro is an optional dependency (``pip install 'gpjax_lite[numpyro]'``),
        imported only here; see :class:`gpjax_lite._numpyro.GPMarginal`.

        Args:
            X: inputs ``(n,)`` or ``(n, d)``.

        Raises:
            ImportError: if numpyro is not installed.
            ValueError: for mis-shaped or non-finite ``X``, or ``noise`` not
                matching ``n``.
        """
        from ._numpyro import GPMarginal  # the optional dependency, on first use only

        X = self._inputs(X)
        self._noise_for(X.shape[0])
        return GPMarginal(self, X)


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

    def is_valid(self) -> Bool[Array, ""]:
        """Whether the factorisation succeeded (all finite): a boolean array, usable under ``jit``."""
        return self.state.is_valid()

    def _check_test_inputs(self, Xt):
        return as_test_inputs(self.model, Xt, self.X.shape[1])

    def _latent_moments(self, Xt):
        shift, variance = self.state.predict(self.model.kernel, Xt)
        return evaluate_mean(self.model.mean, Xt) + shift, variance

    def _latent_distribution(self, Xt):
        prior_mean = evaluate_mean(self.model.mean, Xt)
        return self.state.distribution(self.model.kernel, Xt, prior_mean, self.model.jitter)

    def _observation_noise(self):
        return self.model.noise
