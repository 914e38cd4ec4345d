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

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Shaped

from ._checks import is_concrete


class CholeskyError(np.linalg.LinAlgError):
    """A covariance matrix was not positive definite to working precision.

    A subclass of ``numpy.linalg.LinAlgError`` (itself a ``ValueError``).
    """


def default_jitter(dtype) -> float:
    """Relative diagonal jitter for covariances without noise: 1e-8 (float64), 1e-4 (float32)."""
    return 1e-8 if jnp.finfo(dtype).bits >= 64 else 1e-4


def add_jitter(
    K: Float[Array, "n n"],
    jitter: float | int | np.floating | np.integer | None = None,
    *,
    scale: Float[Array, ""] | float | None = None,
) -> Float[Array, "n n"]:
    """``K + jitter · scale · I``; ``jitter=None`` picks :func:`default_jitter`,
    ``scale=None`` is ``mean(diag K)``."""
    if jitter is None:
        jitter = default_jitter(K.dtype)
    if scale is None:
        scale = jnp.mean(jnp.diagonal(K))
    return _add_to_diagonal(K, jitter * scale)


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


def holds_non_finite(value) -> bool:
    """Whether a concrete ``value`` (an array or a pytree of them) holds NaN/inf.

    Only floating-point leaves are inspected; ``False`` under ``jit`` (for
    tracers), where the caller's flag is the NaN itself.
    """
    leaves = _inexact_leaves(value)
    if not leaves or not all(is_concrete(leaf) for leaf in leaves):
        return False
    return not all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in leaves)


def _inexact_leaves(value) -> list:
    return [leaf for leaf in jax.tree_util.tree_leaves(value) if eqx.is_inexact_array(leaf)]


def raise_if_not_finite(value, what: str) -> None:
    """Eager-mode guard: raise :class:`CholeskyError` if a concrete ``value`` holds NaN/inf.

    ``value`` is an array or a pytree of them (a solver's state, say); only its
    floating-point leaves are inspected.
    """
    if holds_non_finite(value):
        dtype = jnp.result_type(_inexact_leaves(value)[0])
        raise CholeskyError(
            f"The Cholesky factorisation of {what} failed: it is not positive definite in "
            f"{dtype}. Increase the observation `noise` (or the `jitter`), shorten very "
            "long lengthscales, remove duplicated inputs without noise, or enable float64 "
            "with `jax.config.update('jax_enable_x64', True)`."
        )


#: :func:`solve_lower` splits a factor into halves while both have at least this many rows.
SOLVE_BLOCK_SIZE = 256


def solve_lower(L: Float[Array, "n n"], B: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
    """``L⁻¹ B`` for lower-triangular ``L`` (a triangular solve; no inverse is formed).

    A right-hand side with columns ``(n, m)`` and ``n ≥ 2 · SOLVE_BLOCK_SIZE``
    goes by block forward substitution on ``L = [[A, 0], [C, D]]``, recursively
    (the recursive triangular solve of Elmroth et al. 2004, SIAM Review 46(1))::

        V₁ = A⁻¹ B₁,     V₂ = D⁻¹ (B₂ - C V₁),

    so that most of the ``n² m`` flops are in the matrix product ``C V₁``,
    which XLA:CPU runs faster than LAPACK's triangular solve does the same
    work (see benchmarks case ``predict``). The result agrees with one
    solve to round-off. The two half solves depend on each other, so they
    never run at once (see :func:`_inverse_from_factor` on why that matters).
    """
    n = L.shape[0]
    if B.ndim != 2 or n < 2 * SOLVE_BLOCK_SIZE:
        return jax.scipy.linalg.solve_triangular(L, B, lower=True)
    n1 = n // 2
    V1 = solve_lower(L[:n1, :n1], B[:n1])
    V2 = solve_lower(L[n1:, n1:], B[n1:] - L[n1:, :n1] @ V1)
    return jnp.concatenate([V1, V2])


def cho_solve(L: Float[Array, "n n"], B: Float[Array, "n ..."]) -> Float[Array, "n ..."]:
    """``(L Lᵀ)⁻¹ B`` through two triangular solves."""
    return jax.scipy.linalg.cho_solve((L, True), B)


def solve_small(
    A: Shaped[Array, "*batch s s"], B: Shaped[Array, "*batch s k"]
) -> Float[Array, "*batch s k"]:
    """``A⁻¹ B`` for a batch of small systems, by Gauss–Jordan elimination with partial pivoting.

    Written in array operations over the batch (``s`` steps, each a pivot
    search, a row swap and one rank-one update), for the ``(s, s)`` systems
    of the state-space solver, ``s`` a handful. Not ``jnp.linalg.solve``:
    jaxlib's batched LAPACK kernels split a batch over XLA:CPU's intra-op
    thread pool and block one of its threads until every piece is done, so two
    such calls that XLA runs at the same time can hold every thread of a small
    pool and wait forever (seen with jax 0.10.2 on 2 cores: ``StateSpace``
    predictions at m = 10⁴ hung in ``getrf`` and ``trsm``). Partial pivoting
    makes it as accurate as LU with row interchanges (Golub & Van Loan 2013,
    §3.4); a singular ``A`` gives inf/NaN, as a LAPACK solve does.

    Args:
        A: ``(..., s, s)``.
        B: ``(..., s, k)``, with the same leading dimensions.

    Returns:
        ``(..., s, k)``, in the dtype ``A`` and ``B`` promote to (integers to
        the default float). Differentiable (through the elimination itself).

    Raises:
        ValueError: if ``A`` is not ``(..., s, s)`` or ``B`` not ``(..., s, k)``
            with the same leading dimensions (no broadcasting; a vector ``b``
            is ``b[:, None]``).
    """
    A, B = jnp.asarray(A), jnp.asarray(B)
    if A.ndim < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"`A` must have shape (..., s, s), got {A.shape}.")
    if B.ndim != A.ndim or B.shape[:-1] != A.shape[:-1]:
        raise ValueError(
            f"`B` must have shape (..., s, k) with the leading dimensions of `A` {A.shape}, "
            f"got {B.shape}."
        )
    dtype = jnp.result_type(A, B, jnp.float32)
    A, B = A.astype(dtype), B.astype(dtype)
    s = A.shape[-1]
    if s == 0:
        return B
    rows = jnp.arange(s)

    def eliminate(j, M):
        # Swap row j with the row (at or below j) of the largest entry in column j.
        column = jnp.take(M, j, axis=-1)
        pivot_row = jnp.argmax(jnp.where(rows >= j, jnp.abs(column), -1.0), axis=-1)
        row_j = jnp.take(M, j, axis=-2)
        row_p = jnp.take_along_axis(M, pivot_row[..., None, None], axis=-2)[..., 0, :]
        M = jnp.where((rows == pivot_row[..., None])[..., None], row_j[..., None, :], M)
        M = jnp.where((rows == j)[:, None], row_p[..., None, :], M)
        # Scale it to a unit pivot and clear column j from every other row.
        row = row_p / jnp.take(row_p, j, axis=-1)[..., None]
        factors = jnp.where(rows == j, 0.0, jnp.take(M, j, axis=-1))
        M = M - factors[..., :, None] * row[..., None, :]
        return jnp.where((rows == j)[:, None], row[..., None, :], M)

    # A loop, not s unrolled steps: one step to compile, whatever s.
    M = jax.lax.fori_loop(0, s, eliminate, jnp.concatenate([A, B], axis=-1))
    return M[..., s:]


@jax.custom_jvp
def gaussian_log_density(K: Float[Array, "n n"], r: Float[Array, " n"]) -> Float[Array, ""]:
    """``log N(r | 0, K) = -½ rᵀK⁻¹r - ½ log|K| - n/2 log 2π`` through one Cholesky factor.

    Differentiation uses the closed form (Rasmussen & Williams, eq. 5.9)::

        d log N = ½ tr((α αᵀ - K⁻¹) dK) - αᵀ dr,     α = K⁻¹ r,

    with ``K⁻¹`` formed once from the factor (see :func:`_inverse_from_factor`),
    instead of differentiating through the Cholesky decomposition (several
    extra triangular solves). It is a ``custom_jvp``, so forward mode, reverse
    mode and higher derivatives all work.
    """
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    return _log_density_from_factor(L, r)[0]


def _log_density_from_factor(L, r):
    w = solve_lower(L, r)
    return _log_density_value(L, w), w


def _log_density_value(L, w):
    """``log N(r | 0, L Lᵀ)`` from the factor and the whitened residual ``w = L⁻¹ r``."""
    n = w.shape[-1]
    return (
        -0.5 * jnp.dot(w, w) - jnp.sum(jnp.log(jnp.diagonal(L))) - 0.5 * n * math.log(2 * math.pi)
    )


#: Below this size :func:`_inverse_from_factor` inverts the factor in one
#: triangular solve of full size instead of a split into two halves.
_BLOCK_MIN_SIZE = 32


def _upper_inverse(A):
    """``A⁻ᵀ`` (upper triangular) for lower-triangular ``A`` (or a stack of them):
    one triangular solve against the identity."""
    eye = jnp.broadcast_to(jnp.eye(A.shape[-1], dtype=A.dtype), A.shape)
    return jax.lax.linalg.triangular_solve(A, eye, left_side=True, lower=True, transpose_a=True)


def _inverse_from_factor(L):
    """``K⁻¹`` and ``U = L⁻ᵀ`` (as the blocks ``(Uₐ, V, U꜀)``) from the lower factor of ``K = L Lᵀ``.

    With ``U = L⁻ᵀ`` (upper triangular), ``K⁻¹ = U Uᵀ``. ``U`` is built from
    one 2×2 block split of ``L = [[A, 0], [B, C]]``::

        U = [[Uₐ, -V], [0, U꜀]],   Uₐ = A⁻ᵀ,  U꜀ = C⁻ᵀ,  V = Uₐ Bᵀ U꜀
        K⁻¹ = [[Uₐ Uₐᵀ + V Vᵀ, -V U꜀ᵀ], [-U꜀ Vᵀ, U꜀ U꜀ᵀ]]

    Two half-size triangular inverses (one batched triangular solve) and five
    half-size matrix products replace one full triangular solve and one full
    product (``L⁻¹`` then ``L⁻ᵀ L⁻¹``): about half the flops, every product in
    the ``A @ B`` or ``A @ Bᵀ`` layout (XLA:CPU runs ``Aᵀ @ B`` more slowly)
    and only a handful of extra ops, so compile time barely moves (see the
    ``mll`` and ``compile`` cases of ``python -m benchmarks``). Deeper
    recursion saves little more and costs compile time.

    The two halves go through *one* (stacked) triangular solve on purpose:
    jaxlib's batched LAPACK kernels block a thread of the intra-op pool while
    they wait for their sub-batches, so two independent batched solves running
    at once under ``vmap`` can deadlock the pool on a machine with few cores
    (seen with jax 0.10.2 on 2 cores; XLA drops optimisation barriers, so only
    a data dependency orders them). The JVP therefore makes exactly one
    Cholesky and one triangular-solve call, in sequence.
    """
    n = L.shape[-1]
    if n < _BLOCK_MIN_SIZE:
        U = _upper_inverse(L)
        return U @ U.T, (U, None, None)
    n1 = n // 2
    n2 = n - n1
    A, B, C = L[:n1, :n1], L[n1:, :n1], L[n1:, n1:]
    if n2 != n1:  # pad A with a unit diagonal entry so both halves stack
        A = jnp.pad(A, ((0, 1), (0, 1))).at[n1, n1].set(1)
    halves = _upper_inverse(jnp.stack([A, C]))
    grams = halves @ jnp.swapaxes(halves, -1, -2)
    Ua, Uc = halves[0, :n1, :n1], halves[1]
    V = (Ua @ B.T) @ Uc
    top_left = grams[0, :n1, :n1] + V @ V.T
    off = V @ Uc.T
    K_inv = jnp.block([[top_left, -off], [-off.T, grams[1]]])
    return K_inv, (Ua, V, Uc)


def _apply_upper_inverse(blocks, w):
    """``U w = L⁻ᵀ w`` from the blocks returned by :func:`_inverse_from_factor`."""
    Ua, V, Uc = blocks
    if V is None:
        return Ua @ w
    n1 = Ua.shape[0]
    w1, w2 = w[:n1], w[n1:]
    return jnp.concatenate([Ua @ w1 - V @ w2, Uc @ w2])


def _apply_lower_inverse(blocks, r):
    """``Uᵀ r = L⁻¹ r`` from the same blocks (matrix-vector products, no solve)."""
    Ua, V, Uc = blocks
    if V is None:
        return r @ Ua
    n1 = Ua.shape[0]
    r1, r2 = r[:n1], r[n1:]
    return jnp.concatenate([r1 @ Ua, r2 @ Uc - r1 @ V])


def _log_density_tangent(alpha, K_inv, dK, dr):
    """``d log N(r | 0, K) = ½(αᵀ dK α - tr(K⁻¹ dK)) - αᵀ dr`` (R&W eq. 5.9), ``α = K⁻¹r``."""
    return 0.5 * (alpha @ dK @ alpha - jnp.sum(K_inv * dK)) - jnp.dot(alpha, dr)


@gaussian_log_density.defjvp
def _gaussian_log_density_jvp(primals, tangents):
    K, r = primals
    dK, dr = tangents
    value, alpha, K_inv = _value_and_inverse(K, r)
    return value, _log_density_tangent(alpha, K_inv, dK, dr)


def _value_and_inverse(K, r):
    """``log N(r | 0, K)``, ``α = K⁻¹ r`` and ``K⁻¹``, through one Cholesky factor of ``K``."""
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    K_inv, blocks = _inverse_from_factor(L)
    # w = L⁻¹ r from the inverse already at hand, not by another triangular
    # solve: that solve would be independent of the inverse's, and two batched
    # LAPACK calls at once can deadlock jaxlib (see _inverse_from_factor).
    w = _apply_lower_inverse(blocks, r)
    return _log_density_value(L, w), _apply_upper_inverse(blocks, w), K_inv


@jax.custom_jvp
def noisy_gaussian_log_density(
    K: Float[Array, "n n"], noise: Float[Array, " n"], r: Float[Array, " n"]
) -> Float[Array, ""]:
    """``log N(r | 0, K + diag(noise))``: :func:`gaussian_log_density` with the noise apart.

    The same number as ``gaussian_log_density(K + jnp.diag(noise), r)``; the
    derivative in the noise variances is read off the same closed form
    (R&W eq. 5.9 with ``∂(K + Σ)/∂σᵢ² = eᵢeᵢᵀ``)::

        ∂ log N / ∂σᵢ² = ½ (αᵢ² - (K + Σ)⁻¹ᵢᵢ),

    so the diagonal is added only on the way forward and the derivative needs
    no ``n × n`` diagonal matrix of its own: a differentiated fit compiles
    fewer ``n × n`` kernels (see benchmarks case ``compile``).
    """
    return gaussian_log_density(_add_to_diagonal(K, noise), r)


@noisy_gaussian_log_density.defjvp
def _noisy_gaussian_log_density_jvp(primals, tangents):
    K, noise, r = primals
    dK, dnoise, dr = tangents
    value, alpha, K_inv = _value_and_inverse(_add_to_diagonal(K, noise), r)
    dvalue = _log_density_tangent(alpha, K_inv, dK, dr) + 0.5 * jnp.dot(
        alpha**2 - _diagonal(K_inv), dnoise
    )
    # In the value's dtype: float64 noise variances of a float32 K give float64 tangents.
    return value, dvalue.astype(value.dtype)


def _add_to_diagonal(K, d):
    """``K + diag(d)`` (``d`` a scalar or ``(n,)``), as an update of the diagonal in place
    (no ``n × n`` identity or mask)."""
    # jnp, not NumPy, indices: a NumPy array would be a constant captured by the
    # marginal likelihood's custom batching rule, which JAX refuses once a batched
    # `lax.cond` (optax's L-BFGS under `vmap`) marks every captured value batched.
    i = jnp.arange(K.shape[-1])
    return K.at[i, i].add(jnp.asarray(d, K.dtype))


def _diagonal(A):
    """The diagonal of a square matrix, as a strided slice of its flattening (no gather)."""
    return A.reshape(-1)[:: A.shape[-1] + 1]
