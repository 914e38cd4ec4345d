"""Kalman filtering, RTS smoothing and backward sampling on a sorted time grid.

The model on ``N`` sorted times (the state ``x_k`` has ``s`` entries)::

    x_0 ~ N(0, P∞),   x_k = A_k x_{k-1} + q_k,   q_k ~ N(0, Q_k),   y_k = h·x_k + ε_k,   ε_k ~ N(0, σ²_k)

with ``A_0 = I, Q_0 = 0``; some grid points are *unobserved* (test inputs
merged into the grid): they are predicted and smoothed but contribute no
update and no likelihood term.

* Filtering (Särkkä 2013, "Bayesian Filtering and Smoothing", Alg. 4.4), with
  the covariance update in Joseph form, ``P = (I - K h)P⁻(I - K h)ᵀ + σ² K Kᵀ``,
  which stays symmetric positive semi-definite under round-off (Bucy & Joseph
  1968). The log likelihood is the sum of the innovations' log densities,
  ``log N(v_k | 0, S_k)`` (Särkkä 2013, eq. 12.11).
* Smoothing (Rauch–Tung–Striebel; Särkkä 2013, Thm 8.2) written as backward
  conditionals ``x_k | x_{k+1}, y ~ N(E_k x_{k+1} + g_k, L_k)``::

      E_k = P_k A_{k+1}ᵀ (P⁻_{k+1})⁻¹,  g_k = m_k - E_k m⁻_{k+1},  L_k = P_k - E_k P⁻_{k+1} E_kᵀ,

  so that ``m^s_k = g_k + E_k m^s_{k+1}`` and ``P^s_k = L_k + E_k P^s_{k+1} E_kᵀ``;
  sampling ``x_k = g_k + E_k x_{k+1} + L_k^{½} ξ_k`` backwards is
  forward-filtering backward-sampling (Carter & Kohn 1994; Särkkä 2013, §8.5).
* ``parallel=True`` runs the filter and the smoother as associative scans
  (Särkkä & García-Fernández 2021, "Temporal parallelization of Bayesian
  smoothers", IEEE TAC 66(1), Lemmas 7–10): ``O(log N)`` depth for
  accelerators, the same numbers to round-off.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from ..linalg import solve_small
from ._blocked import log_likelihood_blocked

LOG_2PI = math.log(2.0 * math.pi)

#: Loop iterations per compiled step of the filter scans. Unrolling lets XLA fuse the small
#: matrix products of consecutive steps, which on CPU removes most of the
#: per-iteration overhead that otherwise dominates O(s³) work with s ≤ 10.
UNROLL = 8


def _sym(P):
    return 0.5 * (P + jnp.swapaxes(P, -1, -2))


def _mT(A):
    return jnp.swapaxes(A, -1, -2)


# --------------------------------------------------------------------- filtering
def _filter_step(h, carry, inputs):
    m, P = carry
    A, Q, y, noise, observed = inputs
    m = A @ m
    P = A @ P @ A.T + Q
    Ph = P @ h
    S = h @ Ph + noise
    v = y - h @ m
    K = jnp.where(observed, Ph / S, 0.0)
    m = m + K * v
    I_Kh = jnp.eye(m.shape[0], dtype=m.dtype) - jnp.outer(K, h)
    P = I_Kh @ P @ I_Kh.T + noise * jnp.outer(K, K)
    log_lik = jnp.where(observed, -0.5 * (v**2 / S + jnp.log(S) + LOG_2PI), 0.0)
    return (m, P), (m, P, log_lik)


def filter_sequential(h, P0, A, Q, y, noise, observed):
    """Filtered means ``(N, s)``, covariances ``(N, s, s)`` and log-likelihood terms ``(N,)``."""
    m0 = jnp.zeros(h.shape, h.dtype)
    _, (m, P, log_lik) = jax.lax.scan(
        lambda c, x: _filter_step(h, c, x), (m0, P0), (A, Q, y, noise, observed), unroll=UNROLL
    )
    return m, P, log_lik


def log_likelihood_sequential(h, P0, A, Q, y, noise, observed):
    """``Σ_k log N(v_k | 0, S_k)`` by one scan that keeps only the running state."""

    def step(carry, inputs):
        (m, P), total = carry
        (m, P), (_, _, term) = _filter_step(h, (m, P), inputs)
        return ((m, P), total + term), None

    m0 = jnp.zeros(h.shape, h.dtype)
    carry = ((m0, P0), jnp.zeros((), h.dtype))
    (_, total), _ = jax.lax.scan(step, carry, (A, Q, y, noise, observed), unroll=UNROLL)
    return total


def _filtering_elements(h, P0, A, Q, y, noise, observed):
    """The elements ``(A, b, C, η, J)`` of Särkkä & García-Fernández (2021), Lemma 7."""
    s = h.shape[0]
    I = jnp.eye(s, dtype=h.dtype)
    # Generic element k ≥ 1: the filter started from "no information" at x_{k-1}.
    Qh = Q @ h
    S = Qh @ h + noise
    K = jnp.where(observed[:, None], Qh / S[:, None], 0.0)
    I_Kh = I - K[:, :, None] * h[None, None, :]
    A_e = I_Kh @ A
    b = K * y[:, None]
    C = _sym(Q - S[:, None, None] * K[:, :, None] * K[:, None, :])
    Ah = jnp.einsum("nij,i->nj", A, h)  # Aᵀ h
    weight = jnp.where(observed, 1.0 / S, 0.0)
    eta = Ah * (weight * y)[:, None]
    J = weight[:, None, None] * Ah[:, :, None] * Ah[:, None, :]
    # First element: the prior N(0, P0) updated by y_0 (A_0 = I, Q_0 = 0).
    P0h = P0 @ h
    S0 = P0h @ h + noise[0]
    K0 = jnp.where(observed[0], P0h / S0, 0.0)
    A_e = A_e.at[0].set(jnp.zeros_like(I))
    b = b.at[0].set(K0 * y[0])
    C = C.at[0].set(_sym(P0 - S0 * jnp.outer(K0, K0)))
    eta = eta.at[0].set(0.0)
    J = J.at[0].set(0.0)
    return A_e, b, C, eta, J


def _filtering_operator(earlier, later):
    """Combine two filtering elements (Särkkä & García-Fernández 2021, Lemma 8)."""
    Ai, bi, Ci, eta_i, Ji = earlier
    Aj, bj, Cj, eta_j, Jj = later
    I = jnp.eye(Ai.shape[-1], dtype=Ai.dtype)
    M = I + Ci @ Jj
    # Aj M⁻¹ and Aiᵀ (I + Jj Ci)⁻¹ = Aiᵀ M⁻ᵀ from one M⁻¹: M = I + Ci Jj with Ci, Jj
    # positive semi-definite has eigenvalues ≥ 1, so the inverse is well conditioned.
    # (solve_small: no batched LAPACK call, which can deadlock XLA:CPU's pool.)
    M_inv = solve_small(M, I)
    Aj_Minv = Aj @ M_inv
    Ai_T_MinvT = Ai.T @ M_inv.T
    A = Aj_Minv @ Ai
    b = Aj_Minv @ (bi + Ci @ eta_j) + bj
    C = _sym(Aj_Minv @ Ci @ Aj.T + Cj)
    eta = Ai_T_MinvT @ (eta_j - Jj @ bi) + eta_i
    J = _sym(Ai_T_MinvT @ Jj @ Ai + Ji)
    return A, b, C, eta, J


def filter_parallel(h, P0, A, Q, y, noise, observed):
    """As :func:`filter_sequential`, by one associative scan."""
    elements = _filtering_elements(h, P0, A, Q, y, noise, observed)
    _, m, P, _, _ = jax.lax.associative_scan(jax.vmap(_filtering_operator), elements)
    # Innovations from the filtered moments of the previous point.
    m_prev = jnp.concatenate([jnp.zeros_like(m[:1]), m[:-1]])
    P_prev = jnp.concatenate([P0[None], P[:-1]])
    m_pred = jnp.einsum("nij,nj->ni", A, m_prev)
    P_pred = A @ P_prev @ _mT(A) + Q
    S = jnp.einsum("i,nij,j->n", h, P_pred, h) + noise
    v = y - m_pred @ h
    log_lik = jnp.where(observed, -0.5 * (v**2 / S + jnp.log(S) + LOG_2PI), 0.0)
    return m, P, log_lik


def filter_grid(h, P0, A, Q, y, noise, observed, parallel: bool):
    """Filtered means ``(N, s)``, covariances ``(N, s, s)``, log-likelihood terms ``(N,)``."""
    run = filter_parallel if parallel else filter_sequential
    return run(h, P0, A, Q, y, noise, observed)


def log_likelihood(h, P0, A, Q, y, noise, observed, parallel: bool) -> Float[Array, ""]:
    """``log p(y)`` of the observed points (nats); ``h`` concrete unless ``parallel``.

    The solver itself calls :func:`~gpjax_lite.solvers._blocked.log_likelihood_entries`
    for ``parallel=False``, with the transitions formed entry by entry.
    """
    if parallel:
        return jnp.sum(filter_parallel(h, P0, A, Q, y, noise, observed)[2])
    return log_likelihood_blocked(h, P0, A, Q, y, noise, observed)


# --------------------------------------------------------------------- smoothing
def smoothing_elements(m, P, A, Q):
    """Backward conditionals ``x_k | x_{k+1} ~ N(E_k x_{k+1} + g_k, L_k)``: ``(N, s, s)``, ``(N, s)``, ``(N, s, s)``.

    ``m, P`` are the filtered moments; ``A, Q`` the transitions *into* each point
    (``A[k + 1]`` takes ``x_k`` to ``x_{k+1}``). The last element is the filtered
    distribution itself (``E = 0``).
    """
    A_next, Q_next = A[1:], Q[1:]
    P_pred = A_next @ P[:-1] @ _mT(A_next) + Q_next
    m_pred = jnp.einsum("nij,nj->ni", A_next, m[:-1])
    # E = P Aᵀ (P⁻)⁻¹ = ((P⁻)⁻¹ A P)ᵀ, P and P⁻ symmetric.
    E = _mT(solve_small(P_pred, A_next @ P[:-1]))
    g = m[:-1] - jnp.einsum("nij,nj->ni", E, m_pred)
    L = _sym(P[:-1] - E @ P_pred @ _mT(E))
    E = jnp.concatenate([E, jnp.zeros_like(P[-1:])])
    g = jnp.concatenate([g, m[-1:]])
    L = jnp.concatenate([L, P[-1:]])
    return E, g, L


def _smoothing_operator(earlier, later):
    """Compose ``x_i | x_j`` (earlier) with ``x_j | x_k`` (later): Lemma 10 of the same paper."""
    Ei, gi, Li = earlier
    Ej, gj, Lj = later
    return Ei @ Ej, Ei @ gj + gi, _sym(Ei @ Lj @ Ei.T + Li)


def smooth(E, g, L, parallel: bool):
    """Smoothed means ``(N, s)`` and covariances ``(N, s, s)`` from the backward conditionals."""
    if parallel:
        _, m, P = jax.lax.associative_scan(
            jax.vmap(lambda later, earlier: _smoothing_operator(earlier, later)),
            (E, g, L),
            reverse=True,
        )
        return m, P

    def step(carry, element):
        m_next, P_next = carry
        Ek, gk, Lk = element
        m = gk + Ek @ m_next
        P = _sym(Ek @ P_next @ Ek.T + Lk)
        return (m, P), (m, P)

    last = (g[-1], L[-1])
    _, (m, P) = jax.lax.scan(step, last, (E[:-1], g[:-1], L[:-1]), reverse=True)
    return jnp.concatenate([m, g[-1:]]), jnp.concatenate([P, L[-1:]])


def psd_sqrt(M: Float[Array, "... s s"]) -> Float[Array, "... s s"]:
    """A square root ``R`` with ``R Rᵀ = M`` of symmetric PSD matrices, by eigendecomposition.

    Eigenvalues below zero (round-off in ``L_k``, or an exactly singular ``L_k``
    where the state is determined, e.g. at ``Δt = 0``) are set to zero, which a
    Cholesky factor could not do.
    """
    w, V = jnp.linalg.eigh(_sym(M))
    return V * jnp.sqrt(jnp.maximum(w, 0.0))[..., None, :]


def sample_backward(E, g, L, noise: Float[Array, "N s"], parallel: bool) -> Float[Array, "N s"]:
    """One joint draw of the states: ``x_k = g_k + E_k x_{k+1} + L_k^{½} ξ_k``, given ``ξ`` ``(N, s)``."""
    c = g + jnp.einsum("nij,nj->ni", psd_sqrt(L), noise)
    if parallel:
        zero = jnp.zeros_like(E)
        _, x, _ = jax.lax.associative_scan(
            jax.vmap(lambda later, earlier: _smoothing_operator(earlier, later)),
            (E, c, zero),
            reverse=True,
        )
        return x

    def step(x_next, element):
        Ek, ck = element
        x = ck + Ek @ x_next
        return x, x

    _, x = jax.lax.scan(step, c[-1], (E[:-1], c[:-1]), reverse=True)
    return jnp.concatenate([x, c[-1:]])


def chain_gains(E: Float[Array, "N s s"], is_test: Bool[Array, " N"]) -> Float[Array, "N s s"]:
    """``c_k = E_k E_{k+1} ⋯ E_{q-1}`` with ``q`` the next test point after ``k``.

    At a test point ``p_a``, ``c`` is the gain from the next test point's
    state back to this one's, so ``Cov(x_a, x_b) = c_{p_a} ⋯ c_{p_{b-1}} P^s_b``.
    """
    s = E.shape[-1]
    I = jnp.eye(s, dtype=E.dtype)

    def step(c_next, inputs):
        Ek, next_is_test = inputs
        c = Ek @ jnp.where(next_is_test, I, c_next)
        return c, c

    next_is_test = jnp.concatenate([is_test[1:], jnp.ones((1,), bool)])
    _, c = jax.lax.scan(step, I, (E, next_is_test), reverse=True)
    return c
