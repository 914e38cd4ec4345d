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
"""

from __future__ import annotations

import abc

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
        self, kernel, X: Float[Array, "n d"], noise: Float[Array, " n"], residual: Float[Array, " n"]
    ) -> Float[Array, ""]:
        """``log N(residual | 0, k(X, X) + diag(noise))`` (nats)."""

    @abc.abstractmethod
    def condition(
        self, kernel, X: Float[Array, "n d"], noise: Float[Array, " n"], residual: Float[Array, " n"]
    ) -> SolverState:
        """Factorise ``k(X, X) + diag(noise)`` once, for the posterior to reuse."""

    def prior(
        self, kernel, X: Float[Array, "n d"], mean: Float[Array, " n"], jitter
    ) -> MultivariateNormal:
        """The prior ``N(mean, k(X, X))`` of the latent function at ``X`` (dense by default)."""
        return MultivariateNormal(mean, kernel.gram(X), jitter=jitter)
