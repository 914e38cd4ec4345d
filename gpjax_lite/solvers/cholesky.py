"""The dense solver: one Cholesky factor of ``K + Σ``, ``O(n³)`` time, ``O(n²)`` memory.

With ``L Lᵀ = K + Σ`` and ``r = y - m(X)``:

* log marginal likelihood (Rasmussen & Williams 2006, eq. 2.30 and Alg. 2.1)::

      log p(y) = -½ rᵀ(K + Σ)⁻¹r - ½ log|K + Σ| - n/2 log 2π
               = -½ |L⁻¹r|² - Σ log diag L - n/2 log 2π,

  differentiated in closed form (R&W eq. 5.9; see
  :func:`gpjax_lite.linalg.noisy_gaussian_log_density`), no jitter;
* posterior at ``m`` test inputs, with ``K* = k(X, X*)`` ``(n, m)``,
  ``α = (K + Σ)⁻¹ r`` and ``V = L⁻¹ K*`` (R&W Alg. 2.1)::

      mean(X*) = m(X*) + K*ᵀ α = m(X*) + Vᵀ L⁻¹ r                (m,)
      cov(X*)  = k(X*, X*) - Vᵀ V                                (m, m)
      var(X*)  = diag k(X*, X*) - Σ_rows V²                       (m,)

  The variance is computed in chunks of test points, so ``predict`` never
  holds more than one ``(n, chunk)`` block of ``V`` (see
  :data:`PREDICT_CHUNK_SIZE`).
* leave-one-out predictive log density from ``diag((K + Σ)⁻¹)``, read off
  ``L⁻¹`` (R&W eq. 5.10–5.12; see :meth:`Cholesky.loo_log_predictive`).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._batching import vmap_in_chunks
from ..distributions import MultivariateNormal
from ..linalg import cho_solve, cholesky, noisy_gaussian_log_density, solve_lower
from .base import Solver, SolverState, _sum_gaussian_log_densities

#: Test points per block in :meth:`CholeskyState.predict`: memory is
#: ``O(n · PREDICT_CHUNK_SIZE + m)`` for ``m`` test points instead of ``O(n m)``.
PREDICT_CHUNK_SIZE = 4096

#: Under ``jax.vmap`` on the CPU, :meth:`Cholesky.log_marginal_likelihood`
#: runs a batch in chunks of about this many Gram-matrix entries (2 MiB of
#: float64): 64 problems of 64 points, one problem of 512 or more.
BATCH_CHUNK_ENTRIES = 2**18


class CholeskyState(SolverState):
    """The factor ``L`` (``L Lᵀ = K + Σ``) and ``α = (K + Σ)⁻¹ r``, kept by :class:`Cholesky`.

    Attributes:
        X: training inputs ``(n, d)``.
        cholesky_factor: lower ``L``, ``(n, n)``.
        alpha: ``(K + Σ)⁻¹ (y - m(X))``, ``(n,)``.
    """

    X: Float[Array, "n d"]
    cholesky_factor: Float[Array, "n n"]
    alpha: Float[Array, " n"]

    def is_valid(self):
        return jnp.all(jnp.isfinite(self.cholesky_factor))

    def predict(self, kernel, Xt):
        return _chunked_moments(self, kernel, Xt)

    def distribution(self, kernel, Xt, prior_mean, jitter):
        K_cross = kernel.cross(self.X, Xt)
        V = solve_lower(self.cholesky_factor, K_cross)
        prior_cov = kernel.gram(Xt)
        # Sampling jitter relative to the *prior* variance scale: the round-off in
        # k(X*, X*) - VᵀV is relative to it, and near the data the posterior
        # variances are far smaller (a jitter relative to those fails in float32).
        return MultivariateNormal(
            prior_mean + K_cross.T @ self.alpha,
            prior_cov - V.T @ V,
            jitter=jitter,
            jitter_scale=jnp.mean(jnp.diagonal(prior_cov)),
        )


def _moments(state: CholeskyState, kernel, Xt, whitened):
    """Mean and variance at ``Xt``; ``whitened`` is ``L⁻¹r = Lᵀα``, formed once per call.

    The mean ``K*ᵀα`` is written ``Vᵀ(L⁻¹r)`` (the same number): then nothing
    reads ``K*`` after the solve, which XLA runs in place in ``K*``'s buffer;
    reading ``K*`` again would first copy the whole ``(n, m)`` block (see
    benchmarks case ``predict``).
    """
    K_cross = kernel.cross(state.X, Xt)
    V = solve_lower(state.cholesky_factor, K_cross)
    return whitened @ V, kernel.diag(Xt) - jnp.sum(V**2, axis=0)


def _chunked_moments(state: CholeskyState, kernel, Xt):
    m = Xt.shape[0]
    whitened = state.cholesky_factor.T @ state.alpha
    if m <= PREDICT_CHUNK_SIZE:
        return _moments(state, kernel, Xt, whitened)
    num_chunks = -(-m // PREDICT_CHUNK_SIZE)
    pad = num_chunks * PREDICT_CHUNK_SIZE - m
    # Padding repeats the last test point, so every block stays finite.
    padded = jnp.concatenate([Xt, jnp.broadcast_to(Xt[-1:], (pad, Xt.shape[1]))])
    blocks = padded.reshape(num_chunks, PREDICT_CHUNK_SIZE, Xt.shape[1])
    mean, var = jax.lax.map(lambda block: _moments(state, kernel, block, whitened), blocks)
    return mean.reshape(-1)[:m], var.reshape(-1)[:m]


class Cholesky(Solver):
    """The default solver: one dense Cholesky factor of ``K + Σ`` (see the module docs).

    ``O(n³)`` time and ``O(n²)`` memory; any kernel, any number of input
    columns. A failed factorisation is a :class:`~gpjax_lite.CholeskyError`
    in eager code and NaNs under ``jit`` (check ``Posterior.is_valid()``).
    """

    def log_marginal_likelihood(self, kernel, X, noise, residual):
        """``log N(r | 0, K + Σ)``; under ``jax.vmap`` on the CPU, a chunk of the batch at a time.

        A batch of many small problems (512 datasets of 64 points, say) runs
        faster in cache-sized chunks than vectorised all at once (see
        :mod:`gpjax_lite._batching` and benchmarks case ``batched``).
        """
        # The chunked function takes arrays: the kernel's arrays go in as positional ones.
        params, static = eqx.partition(kernel, eqx.is_inexact_array)
        arrays, treedef = jax.tree_util.tree_flatten(params)

        def log_density(X, noise, residual, *arrays):
            kernel = eqx.combine(jax.tree_util.tree_unflatten(treedef, arrays), static)
            return noisy_gaussian_log_density(kernel.gram(X), noise, residual)

        n = residual.shape[0]
        chunked = vmap_in_chunks(log_density, max(1, BATCH_CHUNK_ENTRIES // (n * n)))
        return chunked(X, noise, residual, *arrays)

    def condition(self, kernel, X, noise, residual):
        K = kernel.gram(X)
        L = cholesky(K + jnp.diag(noise.astype(K.dtype)), what="K + noise·I")
        return CholeskyState(X=X, cholesky_factor=L, alpha=cho_solve(L, residual))

    def loo_log_predictive(self, kernel, X, noise, residual):
        """The leave-one-out predictive log density from ``diag((K + Σ)⁻¹)`` (R&W eq. 5.10–5.12).

        With ``A = (K + Σ)⁻¹`` and ``α = A r``, point ``i``'s predictive given
        the others has ``σ²₋ᵢ = 1/Aᵢᵢ`` and ``rᵢ - μ₋ᵢ = αᵢ/Aᵢᵢ``, so::

            log p(yᵢ | X, y₋ᵢ) = -½ log 2π + ½ log Aᵢᵢ - ½ αᵢ² / Aᵢᵢ.

        ``A``'s diagonal is the column sums of squares of ``L⁻¹``: one Cholesky
        factor and one triangular solve against the identity, ``O(n³)``;
        gradients by automatic differentiation through both.
        """
        K = kernel.gram(X)
        L = cholesky(K + jnp.diag(noise.astype(K.dtype)), what="K + noise·I")
        L_inv = solve_lower(L, jnp.eye(L.shape[0], dtype=L.dtype))
        # α from L⁻¹ by products, not by a second (independent) triangular solve:
        # two batched LAPACK calls at once can deadlock jaxlib's CPU thread pool
        # (see gpjax_lite.linalg._inverse_from_factor).
        alpha = L_inv.T @ (L_inv @ residual)
        precision_diag = jnp.sum(L_inv**2, axis=0)  # Aᵢᵢ = Σ_j (L⁻¹)ⱼᵢ²
        return _sum_gaussian_log_densities(alpha / precision_diag, 1.0 / precision_diag)
