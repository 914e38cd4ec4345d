"""Dense linear algebra for Gaussians: Cholesky factors, jitter and the log density.

Everything that touches a covariance matrix goes through a Cholesky factor
``K = L Lᵀ``; nothing calls ``inv`` or ``svd``.

Jitter policy
-------------
The marginal likelihood and ``log_prob`` add **no** jitter: the observation
noise already regularises ``K + σ²I``, and silently changing the model would
change the likelihood being maximised. Covariances without noise (prior
samples, posterior covariances for sampling) may be singular to working
precision, so they get ``jitter · mean(diag K)`` added to the diagonal, with
``jitter`` defaulting to :func:`default_jitter` of the dtype: ``1e-8`` in
float64 and ``1e-4`` in float32 (relative to the variance scale). Pass
``jitter=`` to change it.

When a factorisation fails
--------------------------
LAPACK/cuSOLVER report failure through NaNs in the factor. In eager code we
check and raise :class:`CholeskyError` saying what to change. Inside
``jax.jit``/``vmap``/``grad`` values cannot be inspected, so the NaN flows into
the result; check it with ``jnp.isfinite`` (for a posterior,
``Posterior.is_valid()``), and ``fit`` reports the first non-finite step.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import is_concrete


class CholeskyError(np.linalg.LinAlgError):
    """A covariance matrix was not positive definite to working precision.

    A subclass of ``numpy.linalg.LinAlgError`` (itself a ``ValueError``).
    """


def default_jitter(dtype) -> float:
    """Relative diagonal jitter for covariances without noise: 1e-8 (float64), 1e-4 (float32)."""
    return 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-4


def add_jitter(K: Float[Array, "n n"], jitter: float | None = None) -> Float[Array, "n n"]:
    """``K + jitter · mean(diag K) · I``; ``jitter=None`` picks :func:`default_jitter`."""
    if jitter is None:
        jitter = default_jitter(K.dtype)
    scale = jnp.mean(jnp.diagonal(K))
    return K + (jitter * scale) * jnp.eye(K.shape[0], dtype=K.dtype)


def cholesky(K: Float[Array, "n n"], *, what: str = "the covariance matrix") -> Float[Array, "n n"]:
    """Lower Cholesky factor ``L`` with ``K = L Lᵀ``.

    In eager code a failed factorisation raises :class:`CholeskyError`; under
    a JAX transformation the factor holds NaNs instead (see module docs).

    Args:
        K: a symmetric ``(n, n)`` matrix (only its lower triangle is read).
        what: how to name ``K`` in the error message.

    Raises:
        CholeskyError: (eager code only) if ``K`` is not positive definite in
            its dtype.
    """
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    raise_if_not_finite(L, what)
    return L


def raise_if_not_finite(value, what: str) -> None:
    """Eager-mode guard: raise :class:`CholeskyError` if a concrete ``value`` holds NaN/inf."""
    if is_concrete(value) and not bool(jnp.all(jnp.isfinite(value))):
        dtype = jnp.result_type(value)
        raise CholeskyError(
            f"The Cholesky factorisation of {what} failed: it is not positive definite in "
            f"{dtype}. Increase the observation `noise` (or the `jitter`), shorten very "
            "long lengthscales, remove duplicated inputs without noise, or enable float64 "
            "with `jax.config.update('jax_enable_x64', True)`."
        )


def solve_lower(L: Float[Array, "n n"], B: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
    """``L⁻¹ B`` for lower-triangular ``L`` (a triangular solve; no inverse is formed)."""
    return jax.scipy.linalg.solve_triangular(L, B, lower=True)


def cho_solve(L: Float[Array, "n n"], B: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
    """``(L Lᵀ)⁻¹ B`` through two triangular solves."""
    return jax.scipy.linalg.cho_solve((L, True), B)


@jax.custom_jvp
def gaussian_log_density(K: Float[Array, "n n"], r: Float[Array, " n"]) -> Float[Array, ""]:
    """``log N(r | 0, K) = -½ rᵀK⁻¹r - ½ log|K| - n/2 log 2π`` through one Cholesky factor.

    Differentiation uses the closed form (Rasmussen & Williams, eq. 5.9)::

        d log N = ½ tr((α αᵀ - K⁻¹) dK) - αᵀ dr,     α = K⁻¹ r,

    with ``K⁻¹`` formed once from the factor, instead of differentiating
    through the Cholesky decomposition (several extra triangular solves).
    It is a ``custom_jvp``, so forward mode, reverse mode and higher
    derivatives all work.
    """
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    return _log_density_from_factor(L, r)[0]


def _log_density_from_factor(L, r):
    w = solve_lower(L, r)
    n = r.shape[-1]
    value = -0.5 * jnp.dot(w, w) - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n * math.log(2 * math.pi)
    return value, w


@gaussian_log_density.defjvp
def _gaussian_log_density_jvp(primals, tangents):
    K, r = primals
    dK, dr = tangents
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    value, w = _log_density_from_factor(L, r)
    L_inv = solve_lower(L, jnp.eye(L.shape[0], dtype=L.dtype))
    K_inv = L_inv.T @ L_inv
    alpha = L_inv.T @ w
    dvalue = 0.5 * (alpha @ dK @ alpha - jnp.sum(K_inv * dK)) - jnp.dot(alpha, dr)
    return value, dvalue
