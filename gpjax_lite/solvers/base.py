"""The solver interface: how a Gaussian-process model factorises its covariance.

A :class:`~gpjax_lite.GP` states the model (kernel, mean, noise); its
``solver`` decides how the linear algebra of

    K + Σ,   K = k(X, X) (n, n),   Σ = diag(noise) (n, n)

is done. A solver writes four things, on inputs the model has already
validated (``X`` ``(n, d)``, ``noise`` ``(n,)``, ``residual = y - m(X)`` ``(n,)``):

* :meth:`Solver.log_marginal_likelihood` — ``log N(residual | 0, K + Σ)``;
* :meth:`Solver.condition` — a :class:`SolverState` holding whatever the
  posterior reuses (a Cholesky factor, filtered state-space moments, …);
* :meth:`Solver.prior` — the prior ``N(m(X), K)`` as a
  :class:`~gpjax_lite.MultivariateNormal` (dense by default);
* :meth:`Solver.check_inputs` — eager checks a solver adds (the state-space
  solver accepts one input column only).

and its :class:`SolverState` writes the posterior's latent moments and joint
distribution at test inputs. ``GP`` and ``Posterior`` then work unchanged,
and so does :func:`gpjax_lite.fit`.

:meth:`Solver.loo_log_predictive` (leave-one-out) has a generic form built on
``condition`` and the state's ``predict``; a solver may override it.
"""

from __future__ import annotations

import abc
import math

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from .._module import Module
from ..distributions import MultivariateNormal


class SolverState(Module):
    """What a solver keeps after conditioning on ``(X, y)``; written by each solver."""

    @abc.abstractmethod
    def is_valid(self) -> Bool[Array, ""]:
        """Whether the factorisation succeeded (all finite): a boolean array, usable under ``jit``."""

    @abc.abstractmethod
    def predict(self, kernel, Xt: Float[Array, "m d"]):
        """Posterior mean *shift* ``k(X*, X)(K + Σ)⁻¹ r`` and latent variance at ``Xt``, each ``(m,)``.

        The model adds its prior mean ``m(X*)`` to the first; the variance is
        that of ``f(X*)`` (no noise, not yet clamped at 0).
        """

    @abc.abstractmethod
    def distribution(
        self, kernel, Xt: Float[Array, "m d"], prior_mean: Float[Array, " m"], jitter
    ) -> MultivariateNormal:
        """The joint posterior of ``f(X*)`` with prior mean ``prior_mean`` ``(m,)`` at ``Xt``."""


class Solver(Module):
    """A strategy for the linear algebra of ``K + Σ``; see the module docs."""

    def check_inputs(self, kernel, X: Float[Array, "n d"], name: str) -> None:
        """Eager checks of inputs named ``name`` beyond the model's own (default: none).

        Raises:
            ValueError / TypeError: naming ``name`` or the kernel.
        """

    @abc.abstractmethod
    def log_marginal_likelihood(
        self,
        kernel,
        X: Float[Array, "n d"],
        noise: Float[Array, " n"],
        residual: Float[Array, " n"],
    ) -> Float[Array, ""]:
        """``log N(residual | 0, k(X, X) + diag(noise))`` (nats)."""

    @abc.abstractmethod
    def condition(
        self,
        kernel,
        X: Float[Array, "n d"],
        noise: Float[Array, " n"],
        residual: Float[Array, " n"],
    ) -> SolverState:
        """Factorise ``k(X, X) + diag(noise)`` once, for the posterior to reuse."""

    def prior(
        self, kernel, X: Float[Array, "n d"], mean: Float[Array, " n"], jitter
    ) -> MultivariateNormal:
        """The prior ``N(mean, k(X, X))`` of the latent function at ``X`` (dense by default)."""
        return MultivariateNormal(mean, kernel.gram(X), jitter=jitter)

    def loo_log_predictive(
        self,
        kernel,
        X: Float[Array, "n d"],
        noise: Float[Array, " n"],
        residual: Float[Array, " n"],
    ) -> Float[Array, ""]:
        """``Σ_i log N(residual_i | μ₋ᵢ, σ²₋ᵢ)``: the leave-one-out predictive log density (nats).

        ``μ₋ᵢ`` and ``σ²₋ᵢ`` are the mean and variance of the noisy observation
        ``i`` given all the others (its own noise included). This generic form
        works for any solver whose state gives the posterior marginals
        ``(μᵢ, vᵢ)`` of ``f(xᵢ)`` at the training inputs: it removes point
        ``i``'s Gaussian site ``N(rᵢ | fᵢ, sᵢ)`` (``sᵢ`` its noise variance) from
        that marginal. The cavity has precision ``1/vᵢ - 1/sᵢ``; adding the noise
        back gives (Rasmussen & Williams 2006, eq. 5.10–5.12, rewritten with
        ``[(K + Σ)⁻¹]ᵢᵢ = (sᵢ - vᵢ)/sᵢ²`` and ``αᵢ = (rᵢ - μᵢ)/sᵢ``)::

            σ²₋ᵢ = sᵢ² / (sᵢ - vᵢ),     rᵢ - μ₋ᵢ = sᵢ (rᵢ - μᵢ) / (sᵢ - vᵢ).

        Accuracy: ``sᵢ - vᵢ`` cancels when the data pin ``f(xᵢ)`` down much
        better than the prior (``vᵢ`` close to ``sᵢ``); the relative error of a
        term is at worst about ``ε · (k(xᵢ, xᵢ)/sᵢ)²`` for machine epsilon ``ε``
        (~10⁻⁸ in float64 at a signal-to-noise variance ratio ``k/s`` of 10⁴;
        ~10⁻³ in float32 at ``k/s = 100``), and a non-positive ``sᵢ - vᵢ`` gives
        NaN. Solvers with a direct
        ``diag((K + Σ)⁻¹)`` (like :class:`~gpjax_lite.solvers.Cholesky`) override
        this. The marginals come from ``state.predict(kernel, X)``, i.e. from
        ``kernel.cross(X, X)``, so a kernel whose ``cross(X, X)`` differs from
        ``gram(X)`` (``White``) needs such an override.
        """
        state = self.condition(kernel, X, noise, residual)
        shift, variance = state.predict(kernel, X)
        noise = noise.astype(variance.dtype)
        removed = noise - variance  # sᵢ - vᵢ = sᵢ² [(K + Σ)⁻¹]ᵢᵢ > 0
        loo_variance = noise**2 / removed
        loo_error = noise * (residual - shift) / removed
        return _sum_gaussian_log_densities(loo_error, loo_variance)


def _sum_gaussian_log_densities(error, variance) -> Float[Array, ""]:
    """``Σ_i log N(errorᵢ | 0, varianceᵢ)`` (nats)."""
    return -0.5 * jnp.sum(error**2 / variance + jnp.log(variance) + math.log(2 * math.pi))
