"""The Laplace approximation: an exact GP prior with a non-Gaussian likelihood.

Model (Rasmussen & Williams 2006, §3.4)::

    f ~ GP(m, k),        y_i ~ p(y_i | f(x_i))      (Bernoulli, Poisson, Gaussian, ...)

For ``n`` training inputs write ``K = k(X, X)``, ``m = m(X)`` and
``Ψ(f) = log p(y | f) - ½ (f - m)ᵀ K⁻¹ (f - m)``, the log of the unnormalised
posterior. The Laplace approximation replaces ``p(f | y)`` by the Gaussian
``N(f̂, (K⁻¹ + W)⁻¹)`` at the posterior mode ``f̂ = argmax Ψ`` with
``W = -∇∇ log p(y | f̂)``, diagonal because each ``y_i`` depends on ``f_i`` only.
``W`` is the curvature of the log likelihood: the precision that each
observation adds to its latent value (``σ(f̂)(1 - σ(f̂))`` for the logit link,
``e^f̂``, the fitted rate, for Poisson, ``1/noise`` for Gaussian). For
log-concave likelihoods ``W ≥ 0`` and ``Ψ`` has one maximum.

* **Mode** — Newton's method in the stable form of R&W Algorithm 3.1: with
  ``B = I + W^½ K W^½ = L Lᵀ`` (eigenvalues ≥ 1, so no jitter is needed)::

      b = W (f - m) + ∇ log p(y | f)
      a = b - W^½ L⁻ᵀ L⁻¹ W^½ K b,       f ← m + K a

  starting from ``f = m``. A step that does not increase ``Ψ`` (or makes it
  NaN, as an overshooting Poisson step can) is halved, in ``a``, up to
  :data:`MAX_HALVINGS` times. The iteration stops when a step moves ``f`` by
  less than :func:`mode_tolerance` (relative; the value is then converged far
  below 1e-10 relative). When ``Ψ`` cannot be increased any more before that
  (every halving rejected) after a Newton step larger than the square root of
  that tolerance, or after :data:`MAX_NEWTON_STEPS` steps, there is no mode:
  it is NaN, an error in eager code and a non-finite loss that
  ``fit`` flags under ``jit``. (This happens when ``W`` exceeds ``1/ε``, e.g.
  a Poisson prior mean tens above the log rate, where the two terms of ``a``
  cancel. Stuck after a smaller step is the mode of an ill-conditioned ``K``,
  whose round-off in ``K a`` hides the last gains in ``Ψ``.)
* **Approximate log marginal likelihood** (R&W eq. 3.32)::

      log q(y | X) = -½ (f̂ - m)ᵀ K⁻¹ (f̂ - m) + Σ log p(y_i | f̂_i) - ½ log|B|

  with ``K⁻¹ (f̂ - m) = ∇ log p(y | f̂)`` at the mode (so ``K`` is never inverted).
* **Gradient** — exact, including the mode's dependence on the
  hyperparameters ``θ`` (R&W §5.5.1, Algorithm 5.1). Implicit differentiation
  of the mode condition ``f̂ = m + K ∇ log p(y | f̂)`` gives::

      (I + K W) df̂ = dm + dK ∇log p(y | f̂) + K d_θ∇log p(y | f̂)
      (I + K W)⁻¹ = I - K W^½ B⁻¹ W^½

  so the Newton iterations are never differentiated. The marginal likelihood
  has a closed-form derivative (a ``jax.custom_jvp``, so forward and reverse
  mode both work) from one Cholesky factor of ``B`` at the mode and ``B⁻¹``:
  the explicit part ``½ aᵀ dK a - ½ tr(W^½ B⁻¹ W^½ dK) + ...`` plus the
  ``log|B|`` term through ``W(f̂)``, which brings in the third derivative of
  ``log p`` (R&W eqs. 5.21–5.24; see :func:`_laplace_log_marginal_likelihood_jvp`).
  :func:`posterior_mode` alone is differentiable through the same ``df̂``.
* **Predictions** (R&W Algorithm 3.2) at test inputs ``X*``, ``K* = k(X, X*)``::

      mean(X*) = m(X*) + K*ᵀ ∇log p(y | f̂)
      V = L⁻¹ W^½ K*,    cov(X*) = k(X*, X*) - Vᵀ V
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from ._checks import (
    as_targets,
    as_test_inputs,
    check_kernel_and_mean,
    check_key,
    evaluate_mean,
    model_inputs,
)
from ._module import Module
from .distributions import MultivariateNormal
from .kernels.base import Kernel
from .likelihoods import Likelihood, StudentT
from .linalg import (
    CholeskyError,
    _inverse_from_factor,
    cho_solve,
    holds_non_finite,
    solve_lower,
)
from .means import Zero
from .posterior import AbstractPosterior

__all__ = ["MAX_HALVINGS", "MAX_NEWTON_STEPS", "LaplaceGP", "LaplacePosterior", "posterior_mode"]

#: The most Newton steps for the posterior mode (each costs one Cholesky of ``B``).
#: Newton's method converges quadratically near the mode; a few tens suffice
#: even from far away.
MAX_NEWTON_STEPS = 100

#: The most halvings of one Newton step that does not increase ``Ψ`` (beyond
#: round-off); the search stops there, at the last accepted point.
MAX_HALVINGS = 30


def mode_tolerance(dtype) -> float:
    """Newton's method stops once a step moves ``f`` by less than this times ``1 + max|f|``.

    1e-6 in float64, 1e-4 in float32. Newton's method converges quadratically,
    so after a step of size ``e`` the error of ``f`` is ``O(e²)``: about 1e-12
    in float64 (1e-8, below round-off, in float32). The marginal likelihood
    is sensitive to the mode to first order (through ``log|B|``), so its
    relative error is then far below 1e-10 too; a stricter test only adds a
    Newton step (one more Cholesky factorisation) that moves nothing. A test
    on the change of ``Ψ`` alone could not give that guarantee: near the mode
    ``Ψ`` changes by ``O(e²)``, which round-off hides once ``e`` is below
    ``√ε``.
    """
    return 1e-6 if jnp.finfo(dtype).bits >= 64 else 1e-4


# ------------------------------------------------------------------- the mode
def _sqrt_W(second):
    """``W^½`` from ``∂² log p/∂f²``, floored at the smallest normal number: a ``W`` that
    underflows to 0 (a logit at ``|f| ≳ 700``) must not give ``√0`` an infinite derivative."""
    return jnp.sqrt(jnp.maximum(-second, jnp.finfo(second.dtype).tiny))


def _B(K, sqrt_W):
    """``B = I + W^½ K W^½`` in one elementwise pass: XLA fuses the identity (an
    ``iota`` comparison) into the products, so no ``n × n`` identity is stored,
    and no second pass over ``B`` adds its diagonal (as a scatter would)."""
    return sqrt_W[:, None] * K * sqrt_W[None, :] + jnp.eye(K.shape[0], dtype=K.dtype)


def _newton_pieces(K, m, y, likelihood, f):
    """``∇ log p``, ``∇² log p``, ``W^½`` and the factor ``L`` of ``B = I + W^½ K W^½`` at ``f``."""
    first, second = likelihood.log_prob_derivatives(f, y)
    sqrt_W = _sqrt_W(second)
    B = _B(K, sqrt_W)
    L = jax.lax.linalg.cholesky(B, symmetrize_input=False)
    return first, second, sqrt_W, L


def _psi(K, m, y, likelihood, a):
    """``Ψ = Σᵢ (log p(yᵢ | fᵢ) - ½ aᵢ (K a)ᵢ)``, ``f = m + K a`` and the round-off scale of ``Ψ``.

    The scale, ``ε Σᵢ (|log pᵢ| + ½|aᵢ (K a)ᵢ|)`` times a safety factor of 64,
    bounds the rounding error of the sum: a step that lowers ``Ψ`` by less is
    not an overshoot, just noise, and is accepted.
    """
    Ka = K @ a
    f = m + Ka
    log_p, half_quadratic = likelihood._log_prob(f, y), 0.5 * a * Ka
    # Both sums in one reduction: one kernel to compile, not two.
    psi, scale = jnp.sum(
        jnp.stack([log_p - half_quadratic, jnp.abs(log_p) + jnp.abs(half_quadratic)]), axis=1
    )
    return psi, f, 64 * jnp.finfo(K.dtype).eps * (scale + 1.0)


def _newton(K, m, y, likelihood):
    """The mode ``f̂`` and ``a = K⁻¹(f̂ - m)`` by Newton's method with step halving
    (R&W Algorithm 3.1); ``f̂ = m + K a`` to round-off.

    One ``while_loop``: each pass tries a candidate ``a``, either a new Newton
    step from the current point or, after a rejected one, the midpoint between
    the current ``a`` and the rejected candidate (one loop, not a halving loop
    inside a Newton loop, compiles markedly faster). The first pass evaluates
    the start ``a = 0`` itself, as a "midpoint" of ``0`` and ``0`` that is
    always accepted over ``Ψ = -∞``: ``Ψ`` is then compiled once, in the loop,
    not a second time before it (see the ``laplace`` case of ``python -m benchmarks``).
    """
    tolerance = mode_tolerance(K.dtype)

    def newton_step(f):
        # B from Kᵀ (= K): LAPACK's Cholesky takes B column-major, and reading K
        # transposed writes it so straight from K's row-major layout. From K itself
        # XLA made a transposed copy of K, and one back for `K @ b`, in every step
        # (n × n each; the `laplace` case of `python -m benchmarks`).
        first, _, sqrt_W, L = _newton_pieces(K.T, m, y, likelihood, f)
        b = sqrt_W**2 * (f - m) + first
        return b - sqrt_W * cho_solve(L, sqrt_W * (K @ b))

    def attempt(state):
        a, f, psi, noise, candidate, halvings, _, steps, full_step = state
        candidate = jax.lax.cond(
            halvings > 0, lambda: 0.5 * (a + candidate), lambda: newton_step(f)
        )
        steps = steps + (halvings == 0)
        psi_new, f_new, noise_new = _psi(K, m, y, likelihood, candidate)
        # NaN compares False: an overflowing step is rejected and halved.
        accepted = psi_new >= psi - noise
        moved, size = jnp.max(jnp.abs(jnp.stack([f_new - f, f_new])), axis=1)
        small = moved <= tolerance * (1.0 + size)
        # The size of the last full Newton step, relative (NaN for an overflowing one).
        full_step = jnp.where(halvings == 0, moved / (1.0 + size), full_step)
        converged = accepted & (steps > 0) & small
        stuck = ~accepted & (halvings + 1 >= MAX_HALVINGS)
        keep = lambda new, old: jnp.where(accepted, new, old)
        return (
            keep(candidate, a),
            keep(f_new, f),
            keep(psi_new, psi),
            keep(noise_new, noise),
            candidate,
            jnp.where(accepted, 0, halvings + 1),
            converged | stuck,
            steps,
            full_step,
        )

    zero, one = jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32)
    a0 = jnp.zeros_like(m)
    psi0, noise0 = jnp.asarray(-jnp.inf, m.dtype), jnp.zeros((), m.dtype)
    inf = jnp.asarray(jnp.inf, m.dtype)
    state = (a0, m, psi0, noise0, a0, one, jnp.asarray(False), zero, inf)
    # Stop when converged or stuck; after MAX_NEWTON_STEPS Newton steps, finish any halving.
    a, f, _, _, _, halvings, done, _, full_step = jax.lax.while_loop(
        lambda s: ~s[6] & ((s[7] < MAX_NEWTON_STEPS) | (s[5] > 0)), attempt, state
    )
    # Stuck (every halving of a step rejected) or out of steps, with a last Newton step
    # that is not small, is no mode: NaN, so that eager code raises and `fit` flags the
    # step, rather than a finite value at a point that is not the mode (a Poisson prior
    # mean far above the log rate: W = e^f beyond 1/ε, where the Newton step is lost to
    # cancellation). Stuck after a step below √tolerance is the mode of an ill-conditioned
    # K, where round-off in K a hides Ψ's last gains (an error of O(step²) in f).
    converged = done & (halvings == 0)
    found = converged | (full_step <= math.sqrt(tolerance))
    failed = jnp.where(found, 0.0, jnp.nan).astype(f.dtype)
    return f + failed, a + failed


def _mode_pieces(K, m, y, likelihood):
    """The mode ``f̂``, ``a``, ``∇² log p``, ``W^½`` and the factor ``L`` of ``B`` at ``f̂``
    (one Cholesky)."""
    f, a = _newton(K, m, y, likelihood)
    _, second, sqrt_W, L = _newton_pieces(K, m, y, likelihood, f)
    return f, a, second, sqrt_W, L


@jax.custom_jvp
def _mode(K, m, y, likelihood):
    """``(f̂, a)``, ``a = K⁻¹(f̂ - m) = ∇log p(y | f̂)``, differentiable by implicit differentiation."""
    return _newton(K, m, y, likelihood)


@_mode.defjvp
def _mode_jvp(primals, tangents):
    K, m, y, likelihood = primals
    dK, dm, dy, dlikelihood = tangents
    f, a, _, sqrt_W, L = _mode_pieces(K, m, y, likelihood)

    def gradient(lik, y_):
        return lik.log_prob_derivatives(f, y_)[0]

    # ∂_θ ∇log p(y | f) at fixed f: from the likelihood's hyperparameters and y.
    _, dfirst = jax.jvp(gradient, (likelihood, y), (dlikelihood, dy))
    rhs = dm + dK @ a + K @ dfirst
    df = rhs - K @ (sqrt_W * cho_solve(L, sqrt_W * rhs))
    # a = ∇log p(y | f̂) on the solution manifold, so da = -W df + ∂_θ∇log p.
    da = dfirst - sqrt_W**2 * df
    return (f, a), (df, da)


def posterior_mode(
    K: Float[Array, "n n"], m: Float[Array, " n"], y: Float[Array, " n"], likelihood: Likelihood
) -> Float[Array, " n"]:
    """The Laplace mode ``f̂ = argmax_f log p(y | f) - ½ (f - m)ᵀ K⁻¹ (f - m)``, ``(n,)``.

    Newton's method with step halving (R&W 2006, Algorithm 3.1; see the module
    docs). Differentiable in ``K``, ``m``, ``y`` and the likelihood's
    hyperparameters by the implicit function theorem (R&W eq. 5.24)::

        df̂ = (I + K W)⁻¹ (dm + dK ∇log p + K d∇log p),  (I + K W)⁻¹ = I - K W^½ B⁻¹ W^½

    so the iterations themselves are never differentiated.
    """
    return _mode(K, m, y, likelihood)[0]


def _lml_value(m, y, likelihood, f, a, L):
    """``log q(y | X)`` (R&W eq. 3.32) from the mode and the factor of ``B``."""
    # (f̂ - m)ᵀK⁻¹(f̂ - m) = aᵀ(f̂ - m) with Newton's own a (no solve with K): the
    # value Ψ(a) is stationary in a, so a small error in the mode barely moves it.
    return (
        -0.5 * jnp.dot(a, f - m)
        + jnp.sum(likelihood._log_prob(f, y))
        - jnp.sum(jnp.log(jnp.diagonal(L)))
    )


@jax.custom_jvp
def _laplace_log_marginal_likelihood(K, m, y, likelihood):
    """``log q(y | X)`` at the mode, with the closed-form derivative of R&W Algorithm 5.1."""
    f, a, _, _, L = _mode_pieces(K, m, y, likelihood)
    return _lml_value(m, y, likelihood, f, a, L)


@_laplace_log_marginal_likelihood.defjvp
def _laplace_log_marginal_likelihood_jvp(primals, tangents):
    """``d log q`` (R&W §5.5.1, Algorithm 5.1), linear in the tangents.

    Everything that depends on the primals only (the mode, one Cholesky of ``B``
    and ``B⁻¹`` from it) is computed once here; the tangent is then a few inner
    products, so reverse mode transposes it into outer products and elementwise
    maps (no Cholesky or solve is differentiated). With ``Σ = (K⁻¹ + W)⁻¹`` and
    ``R = W^½ B⁻¹ W^½ = (W⁻¹ + K)⁻¹``::

        d log q = ½ aᵀ dK a - ½ tr(R dK) + aᵀ dm + Σᵢ ∂_θ log p(yᵢ | f̂ᵢ)
                  + ½ Σᵢ Σᵢᵢ (∂³log pᵢ df̂ᵢ + ∂_θ ∂²log pᵢ)
        df̂ = (I + K W)⁻¹ (dm + dK a + K ∂_θ∇log p)                   (R&W eq. 5.24)

    The first line is the explicit part (``Ψ`` is stationary in ``f̂``, so only its
    partial derivatives count), the second the ``log|B|`` term through ``W(f̂)``
    (R&W eq. 5.23). The mode's tangent enters through one vector,
    ``u = (I + W K)⁻¹ s₂`` with ``s₂ = ½ Σᵢᵢ ∂³log pᵢ`` (R&W's ``s₂``, transposed
    onto the right-hand side: ``s₂ᵀ df̂ = uᵀ (dm + dK a + K ∂_θ∇log p)``).
    """
    K, m, y, likelihood = primals
    dK, dm, dy, dlikelihood = tangents
    f, a, second, sqrt_W, L = _mode_pieces(K, m, y, likelihood)
    value = _lml_value(m, y, likelihood, f, a, L)
    B_inv, _ = _inverse_from_factor(L)
    # ½ Σᵢᵢ as ∂(½ log|B|)/∂Wᵢ = Σⱼ Kᵢⱼ W^½ⱼ B⁻¹ⱼᵢ / (2 W^½ᵢ): elementwise in B⁻¹, no
    # product of n × n matrices. Where W^½ sits at its floor it does not move with W.
    moving = -second > jnp.finfo(second.dtype).tiny
    half_sigma = jnp.where(moving, jnp.sum(K * B_inv * sqrt_W, axis=1) / (2 * sqrt_W), 0.0)
    _, third = jax.jvp(
        lambda f_: likelihood.log_prob_derivatives(f_, y)[1], (f,), (jnp.ones_like(f),)
    )
    s2 = half_sigma * third
    # (I + W K)⁻¹ = I - R K.
    u = s2 - sqrt_W * (B_inv @ (sqrt_W * (K @ s2)))
    Ku = K @ u

    def likelihood_terms(lik, y_):
        # The terms through the likelihood's hyperparameters and y at the fixed mode.
        first_, second_ = lik.log_prob_derivatives(f, y_)
        return jnp.sum(lik._log_prob(f, y_) + half_sigma * second_ + Ku * first_)

    _, dlikelihood_terms = jax.jvp(likelihood_terms, (likelihood, y), (dlikelihood, dy))
    R = sqrt_W[:, None] * B_inv * sqrt_W[None, :]
    dvalue = (
        jnp.dot(0.5 * a + u, dK @ a)
        - 0.5 * jnp.sum(R * dK)
        + jnp.dot(a + u, dm)
        + dlikelihood_terms
    )
    return value, dvalue


# ------------------------------------------------------------------- the model
class LaplaceGP(Module):
    """A GP prior with a non-Gaussian likelihood, under the Laplace approximation.

    ``LaplaceGP(kernel, likelihood, mean=Zero(), *, jitter=None)``

    Attributes:
        kernel: the covariance function ``k``.
        likelihood: a log-concave :class:`~gpjax_lite.likelihoods.Likelihood`:
            :class:`~gpjax_lite.likelihoods.Bernoulli`,
            :class:`~gpjax_lite.likelihoods.Poisson` or
            :class:`~gpjax_lite.likelihoods.Gaussian` (then the approximation
            is exact and equals :class:`~gpjax_lite.GP`).
        mean: the prior mean function (default :class:`~gpjax_lite.means.Zero`).
        jitter: relative diagonal jitter for sampling the posterior covariance
            only (``None``: the dtype default of
            :func:`gpjax_lite.linalg.default_jitter`). The mode and the marginal
            likelihood need none: ``B`` has eigenvalues ≥ 1.

    Raises:
        TypeError: if ``kernel`` is not a Kernel, ``mean`` not callable,
            ``likelihood`` not a Likelihood, or a ``StudentT`` likelihood (not
            log-concave: ``W`` can be negative and Newton's method can fail;
            use :class:`gpjax_lite.sparse.SVGP`).
    """

    kernel: Kernel
    likelihood: Likelihood
    mean: eqx.Module = eqx.field(default_factory=Zero)
    jitter: float | None = eqx.field(default=None, static=True, kw_only=True)

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        if not isinstance(self.likelihood, Likelihood):
            raise TypeError(
                "`likelihood` must be a gpjax_lite.likelihoods.Likelihood (e.g. "
                f"`likelihoods.Bernoulli()`), got {type(self.likelihood).__name__}."
            )
        if isinstance(self.likelihood, StudentT):
            raise TypeError(
                "`likelihood` StudentT is not log-concave, so the Laplace approximation's W can "
                "be negative: LaplaceGP supports Bernoulli, Poisson and Gaussian. Use "
                "gpjax_lite.sparse.SVGP(..., likelihood=StudentT()) instead."
            )

    # ------------------------------------------------------------------ checks
    def _inputs(self, X, name: str = "X") -> Float[Array, "n d"]:
        return model_inputs(self, X, name)

    def _data(self, X, y):
        """Validated ``X`` ``(n, d)`` and ``y`` ``(n,)`` in the likelihood's support."""
        X = self._inputs(X)
        return X, self.likelihood.check_targets(as_targets("y", y, X.shape[0]))

    # ------------------------------------------------------------------- prior
    def prior(self, X) -> MultivariateNormal:
        """The prior of the latent function at ``X``: ``N(m(X), k(X, X))``, ``n`` values."""
        X = self._inputs(X)
        return MultivariateNormal(
            evaluate_mean(self.mean, X), self.kernel.gram(X), jitter=self.jitter
        )

    def sample(self, key: PRNGKeyArray, X, num_samples: int = 1) -> Float[Array, "s n"]:
        """Joint prior draws of the latent function at ``X``, ``(num_samples, n)``."""
        check_key(key)
        return self.prior(X).sample(key, num_samples)

    # ---------------------------------------------------- marginal likelihood
    def log_marginal_likelihood(self, X, y) -> Float[Array, ""]:
        """The Laplace approximation ``log q(y | X)`` (nats), with its exact gradient.

        ``-½ (f̂-m)ᵀK⁻¹(f̂-m) + Σ log p(y_i | f̂_i) - ½ log|I + W^½ K W^½|``
        at the mode ``f̂`` (R&W 2006, eq. 3.32 and Algorithm 3.1); its gradient
        includes the mode's dependence on the hyperparameters (R&W Algorithm
        5.1, here by implicit differentiation; see the module docs).

        Args:
            X: inputs ``(n,)`` or ``(n, d)``.
            y: observations ``(n,)`` in the likelihood's support.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``y``
                outside the likelihood's support.
            CholeskyError: (eager code only) if Newton's method finds no mode
                or the result is not finite (see :func:`_raise_if_failed`);
                under ``jit`` the value is NaN instead.
        """
        X, y = self._data(X, y)
        value = _log_marginal_likelihood(self, X, y)
        _raise_if_failed(value)
        return value

    # ---------------------------------------------------------------- posterior
    def condition(self, X, y) -> LaplacePosterior:
        """The Laplace posterior ``N(f̂, (K⁻¹ + W)⁻¹)`` given ``y`` at ``X``.

        Args:
            X: training inputs ``(n,)`` or ``(n, d)``.
            y: observations ``(n,)`` in the likelihood's support.

        Returns:
            A :class:`LaplacePosterior` holding the mode, ``∇log p(y | f̂)``,
            ``W^½`` and the factor of ``B``.

        Raises:
            ValueError: as for :meth:`log_marginal_likelihood`.
            CholeskyError: (eager code only) if Newton's method finds no mode
                or the factorisation is not finite; under ``jit`` the factor
                is NaN instead.
        """
        X, y = self._data(X, y)
        posterior = _condition(self, X, y)
        _raise_if_failed(posterior.cholesky_factor)
        return posterior


def _raise_if_failed(value) -> None:
    """Eager guard: :class:`CholeskyError` if a concrete ``value`` holds NaN/inf.

    ``B`` has eigenvalues ≥ 1, so a failure is not a matter of noise or jitter:
    either Newton's method found no mode (it is NaN then, see :func:`_newton`)
    or ``K``, ``W`` or the mean overflowed.
    """
    if holds_non_finite(value):
        raise CholeskyError(
            "The Laplace approximation failed: Newton's method found no posterior mode, or "
            "the factorisation of I + W^½ K W^½ was not finite. Check the mean function and "
            "the kernel variance against the scale of the latent function (for Poisson it "
            "is the log rate: a constant mean near log(mean count), not the mean count), "
            "and that the kernel matrix is finite."
        )


# Compiled cores: the public methods check their inputs eagerly, then call these
# (one compilation per model structure and data shape, not one per call).
@eqx.filter_jit
def _log_marginal_likelihood(model, X, y):
    K, m = model.kernel.gram(X), evaluate_mean(model.mean, X)
    return _laplace_log_marginal_likelihood(K, m, y, model.likelihood)


@eqx.filter_jit
def _condition(model, X, y):
    K, m = model.kernel.gram(X), evaluate_mean(model.mean, X)
    f, a = _mode(K, m, y, model.likelihood)
    _, _, sqrt_W, L = _newton_pieces(K, m, y, model.likelihood, f)
    return LaplacePosterior(model=model, X=X, mode=f, gradient=a, sqrt_W=sqrt_W, cholesky_factor=L)


class LaplacePosterior(AbstractPosterior):
    """The Laplace posterior of a :class:`LaplaceGP` (R&W 2006, Algorithm 3.2).

    ``predict`` (latent), ``sample`` and ``__call__`` come from
    :class:`~gpjax_lite.posterior.AbstractPosterior`; :meth:`predict_y` gives
    the moments of new observations.

    Attributes:
        model: the conditioned :class:`LaplaceGP`.
        X: training inputs ``(n, d)``.
        mode: the posterior mode ``f̂`` at ``X``, ``(n,)``.
        gradient: ``∇ log p(y | f̂) = K⁻¹(f̂ - m)``, ``(n,)``.
        sqrt_W: ``W^½``, ``(n,)``.
        cholesky_factor: lower ``L`` with ``L Lᵀ = I + W^½ K W^½``, ``(n, n)``.
    """

    model: LaplaceGP
    X: Float[Array, "n d"]
    mode: Float[Array, " n"]
    gradient: Float[Array, " n"]
    sqrt_W: Float[Array, " n"]
    cholesky_factor: Float[Array, "n n"]

    def _check_test_inputs(self, Xt):
        return as_test_inputs(self.model, Xt, self.X.shape[1])

    def _projection(self, Xt):
        """``K* = k(X, X*)`` ``(n, m)`` and ``V = L⁻¹ W^½ K*`` ``(n, m)``."""
        Ks = self.model.kernel.cross(self.X, Xt)
        return Ks, solve_lower(self.cholesky_factor, self.sqrt_W[:, None] * Ks)

    def _latent_moments(self, Xt):
        Ks, V = self._projection(Xt)
        mean = evaluate_mean(self.model.mean, Xt) + Ks.T @ self.gradient
        return mean, self.model.kernel.diag(Xt) - jnp.sum(V**2, axis=0)

    def _latent_distribution(self, Xt):
        Ks, V = self._projection(Xt)
        mean = evaluate_mean(self.model.mean, Xt) + Ks.T @ self.gradient
        prior_cov = self.model.kernel.gram(Xt)
        return MultivariateNormal(
            mean,
            prior_cov - V.T @ V,
            jitter=self.model.jitter,
            # Round-off in the posterior covariance is relative to the prior's scale.
            jitter_scale=jnp.mean(jnp.diagonal(prior_cov)),
        )

    def _observation_noise(self):
        return self.model.likelihood._observation_noise()

    def predict_y(self, Xt):
        """Moments of a new observation ``y*`` at ``Xt``: ``likelihood.predict`` of the latent ones.

        Args:
            Xt: test inputs ``(m,)`` or ``(m, d)``.

        Returns:
            ``(mean_y, variance_y)``, each ``(m,)`` (for ``Bernoulli``,
            ``P(y* = 1)`` and ``P(1 - P)``; for ``Poisson``, the rate's mean and
            the count's variance).

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``.
        """
        mean, variance = self.predict(Xt)
        return self.model.likelihood.predict(mean, variance)
