"""The Kalman-filter log likelihood in blocks, with a hand-written reverse mode.

Same model and notation as :mod:`gpjax_lite.solvers._kalman` (``N`` sorted
points, transitions ``A_k, Q_k`` *into* point ``k``, ``A_0 = I, Q_0 = 0``,
observation row ``h``). This computes the same number as
:func:`~gpjax_lite.solvers._kalman.log_likelihood_sequential` — the sum of the
innovations' log densities ``log N(v_k | 0, S_k)`` (Särkkä 2013, "Bayesian
Filtering and Smoothing", eq. 12.11) — but a sequential loop of ``N`` tiny
``s × s`` steps is slow on a CPU, where each step costs far more in
per-operation overhead than in arithmetic. Here the points are cut into ``B``
blocks of ``T`` (``B T ≥ N``, the tail padded with unobserved points with
``A = I, Q = 0``, which change nothing) and every pass is either a loop of
``T`` steps vectorised over the ``B`` blocks, a loop over the ``B`` blocks, or
fully vectorised:

1. **Block summaries** (vectorised over blocks, ``T`` steps). For each block,
   the Kalman filter *conditioned on the state* ``x₀`` *at the last point of
   the previous block*: the state's law is ``N(Φ x₀ + b, C)``, affine in
   ``x₀``, and the block's observations so far contribute
   ``exp(-½ x₀ᵀ J x₀ + ηᵀ x₀)`` to the likelihood of ``x₀``. An observation
   is an ordinary Kalman update of ``(b, C)`` with the innovation
   ``v = y - h b - (hΦ) x₀``, and adds ``w wᵀ / S`` to ``J``, ``w v₀ / S`` to
   ``η`` (``w = Φᵀ hᵀ``, ``v₀ = y - h b``). These are the filtering elements of
   Särkkä & García-Fernández (2021, "Temporal parallelization of Bayesian
   smoothers", IEEE TAC 66(1), Lemmas 7–8) built up one observation at a
   time, where the rank-one ``J`` of an observation makes their combination
   rule a Kalman update (no matrix inverse).
2. **Block starts** (``B`` steps). With ``x₀ ~ N(m, P)`` (the filtered state
   at the end of the previous block), the block's summary gives
   ``x₀ | y ~ N((I + PJ)⁻¹(m + Pη), (I + PJ)⁻¹ P)`` and the filtered state at
   the block's end ``N(Φ m' + b, Φ P' Φᵀ + C)`` (the same lemma).
3. **The filter** (vectorised over blocks, ``T`` steps): the ordinary Kalman
   filter (Särkkä 2013, Alg. 4.4) in every block at once, each started from
   its block start. Its log-likelihood terms are the sequential filter's to
   round-off (the filter forgets a round-off error in its start at its own
   rate).

The covariance update is ``P = P⁻ - S K Kᵀ`` (symmetrised), the textbook form
(Särkkä 2013, Alg. 4.4); the sum of the terms is the log likelihood.

Reverse mode (:func:`log_likelihood_blocked` is a ``jax.custom_vjp``): the
derivative of ``log p(y)`` with respect to the predicted moments
``m⁻_k, P⁻_k`` of each point is ``λ_k`` and ``½(λ_k λ_kᵀ - Λ_k)``, where
``λ, Λ`` are the adjoint variables of the modified Bryson–Frazier smoother
(Bierman 1977, "Factorization Methods for Discrete Sequential Estimation",
ch. X), a backward recursion with no matrix inverse::

    λ_k = hᵀ v_k / S_k + Ψ_kᵀ λ_{k+1},    Λ_k = hᵀ h / S_k + Ψ_kᵀ Λ_{k+1} Ψ_k,
    Ψ_k = A_{k+1} (I - K_k h),           λ_N = 0, Λ_N = 0.

(``log p(y) = log p(y_{<k}) + log ∫ N(x; m⁻_k, P⁻_k) p(y_{≥k} | x) dx``, and the
first factor does not depend on ``A_k, Q_k``.) With
``m⁻_k = A_k m_{k-1}``, ``P⁻_k = A_k P_{k-1} A_kᵀ + Q_k`` and
``G_k = ½(λ_k λ_kᵀ - Λ_k)``::

    ∂/∂Q_k = G_k,   ∂/∂A_k = λ_k m_{k-1}ᵀ + 2 G_k A_k P_{k-1},   ∂/∂P₀ = A_0ᵀ G_0 A_0,
    ∂/∂y_k = -e_k,  ∂/∂σ²_k = ½(e_k² - 1/S_k - K_kᵀ Λ'_k K_k),

with ``λ'_k = A_{k+1}ᵀ λ_{k+1}``, ``Λ'_k = A_{k+1}ᵀ Λ_{k+1} A_{k+1}`` and
``e_k = v_k / S_k - K_kᵀ λ'_k`` (the entry ``k`` of ``(K + Σ)⁻¹ y``, and
``1/S_k + K_kᵀ Λ'_k K_k`` the diagonal entry of ``(K + Σ)⁻¹``: the dense
formula ``∂/∂Σ = ½(α αᵀ - (K + Σ)⁻¹)``). The derivative in ``h`` is Fisher's
identity, ``Σ_k ((y_k - h m^s_k) m^sᵀ_k - h P^s_k) / σ²_k`` with the smoothed
moments ``m^s = m⁻ + P⁻ λ``, ``P^s = P⁻ - P⁻ Λ P⁻`` (Bierman 1977). The
backward recursion runs in the same three kinds of pass as the filter: it is
affine in ``(λ, Λ)``, so each block's map from the value entering it to every
value inside is kept (``Ψ`` products), the values entering the blocks follow by
a loop over the blocks, and every point's ``λ_k, Λ_k`` by one vectorised step.
Memory: ``O(N s²)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from ..linalg import solve_small
from ._sde import small_matmul as _mm

LOG_2PI = math.log(2.0 * math.pi)


def _mT(A):
    return jnp.swapaxes(A, -1, -2)


def _sym(P):
    return 0.5 * (P + _mT(P))


def _mv(A, x):
    return jnp.einsum("...ij,...j->...i", A, x)


def _outer(a, b):
    return a[..., :, None] * b[..., None, :]


def block_length(n: int) -> int:
    """Points per block: about ``√n`` (passes over ``T`` steps and over ``n / T`` blocks balance)."""
    return max(1, math.ceil(math.sqrt(n)))


def _to_blocks(x, T, fill):
    """``(N, ...)`` → ``(T, B, ...)``, the tail padded with ``fill``."""
    n = x.shape[0]
    B = -(-n // T)
    pad = B * T - n
    if pad:
        x = jnp.concatenate([x, jnp.broadcast_to(fill, (pad,) + x.shape[1:]).astype(x.dtype)])
    return jnp.swapaxes(x.reshape((B, T) + x.shape[1:]), 0, 1)


def _from_blocks(x, n):
    """``(T, B, ...)`` → ``(N, ...)``."""
    T, B = x.shape[:2]
    return jnp.swapaxes(x, 0, 1).reshape((T * B,) + x.shape[2:])[:n]


def _blocked_inputs(A, Q, y, noise, observed, T):
    s = A.shape[-1]
    eye = jnp.eye(s, dtype=A.dtype)
    return (
        _to_blocks(A, T, eye),
        _to_blocks(Q, T, jnp.zeros((s, s), Q.dtype)),
        _to_blocks(y, T, 0.0),
        _to_blocks(noise, T, 1.0),
        _to_blocks(observed, T, False),
    )


def _block_summaries(h, A, Q, y, noise, observed):
    """Pass 1: each block's ``(Φ, b, C, J, η)``, given blocked inputs ``(T, B, ...)``."""
    B, s = A.shape[1], A.shape[-1]
    dtype = A.dtype

    def step(carry, inputs):
        Phi, b, C, J, eta = carry
        Ak, Qk, yk, nk, ok = inputs
        Phi = _mm(Ak, Phi)
        b = _mv(Ak, b)
        C = _mm(_mm(Ak, C), _mT(Ak)) + Qk
        Ch = C @ h
        S = Ch @ h + nk
        weight = jnp.where(ok, 1.0 / S, 0.0)
        v = yk - b @ h
        w = jnp.einsum("bij,i->bj", Phi, h)
        K = Ch * weight[:, None]
        J = J + _outer(w, w) * weight[:, None, None]
        eta = eta + w * (v * weight)[:, None]
        b = b + K * v[:, None]
        Phi = Phi - _outer(K, w)
        C = _sym(C - _outer(K, Ch))
        return (Phi, b, C, J, eta), None

    zeros = jnp.zeros((B, s, s), dtype)
    init = (
        jnp.broadcast_to(jnp.eye(s, dtype=dtype), (B, s, s)),
        jnp.zeros((B, s), dtype),
        zeros,
        zeros,
        jnp.zeros((B, s), dtype),
    )
    summaries, _ = jax.lax.scan(step, init, (A, Q, y, noise, observed))
    return summaries


def _block_starts(P0, summaries):
    """Pass 2: the filtered ``(m, P)`` at the point before each block, ``(B, s)`` and ``(B, s, s)``."""
    s = P0.shape[0]
    eye = jnp.eye(s, dtype=P0.dtype)

    def step(carry, summary):
        m, P = carry
        Phi, b, C, J, eta = summary
        # x₀ | block ~ N(M⁻¹(m + Pη), M⁻¹P), M = I + PJ (Särkkä & García-Fernández 2021, Lemma 8).
        solved = solve_small(eye + P @ J, jnp.concatenate([P, (m + P @ eta)[:, None]], 1))
        P_post, m_post = _sym(solved[:, :s]), solved[:, s]
        m_next = Phi @ m_post + b
        P_next = _sym(Phi @ P_post @ Phi.T + C)
        return (m_next, P_next), (m, P)

    m0 = jnp.zeros((s,), P0.dtype)
    _, starts = jax.lax.scan(step, (m0, P0), summaries)
    return starts


def _filter_blocks(h, starts, A, Q, y, noise, observed, keep: bool):
    """Pass 3: the Kalman filter in every block from its start; the terms, and residuals if ``keep``."""

    def step(carry, inputs):
        m, P = carry
        Ak, Qk, yk, nk, ok = inputs
        m_pred = _mv(Ak, m)
        P_pred = _mm(_mm(Ak, P), _mT(Ak)) + Qk
        Ph = P_pred @ h
        S = Ph @ h + nk
        weight = jnp.where(ok, 1.0 / S, 0.0)
        v = yk - m_pred @ h
        K = Ph * weight[:, None]
        m_new = m_pred + K * v[:, None]
        P_new = _sym(P_pred - _outer(K, Ph))
        term = jnp.where(ok, -0.5 * (v * v / S + jnp.log(S) + LOG_2PI), 0.0)
        out = (term, m, P, v, S, K) if keep else term
        return (m_new, P_new), out

    _, out = jax.lax.scan(step, starts, (A, Q, y, noise, observed))
    return out


def _value(h, P0, A, Q, y, noise, observed, keep: bool):
    # Materialise the inputs: XLA would otherwise fuse the computation of A and Q (with its
    # transcendental functions) into each of their many elementwise uses and repeat it.
    A, Q, y, noise = jax.lax.optimization_barrier((A, Q, y, noise))
    n = y.shape[0]
    T = block_length(n)
    blocked = _blocked_inputs(A, Q, y, noise, observed, T)
    starts = _block_starts(P0, _block_summaries(h, *blocked))
    out = _filter_blocks(h, starts, *blocked, keep=keep)
    if not keep:
        return jnp.sum(out)
    return jnp.sum(out[0]), tuple(_from_blocks(x, n) for x in out[1:])


@jax.custom_vjp
def log_likelihood_blocked(h, P0, A, Q, y, noise, observed):
    """``log p(y)`` of the observed points (nats), by the blocked passes of the module docs.

    Args:
        h: observation row ``(s,)``.
        P0: the prior covariance of the first state ``(s, s)``.
        A, Q: transitions into each point ``(N, s, s)`` (``A_0 = I``, ``Q_0 = 0``).
        y, noise: targets and noise variances ``(N,)``.
        observed: bool ``(N,)``; unobserved points add nothing.
    """
    return _value(h, P0, A, Q, y, noise, observed, keep=False)


def _forward(h, P0, A, Q, y, noise, observed):
    value, residuals = _value(h, P0, A, Q, y, noise, observed, keep=True)
    return value, (h, P0, A, Q, y, noise, observed, residuals)


def _backward(saved, g):
    h, P0, A, Q, y, noise, observed, (m_prev, P_prev, v, S, K) = saved
    A, Q = jax.lax.optimization_barrier((A, Q))
    n, s = K.shape
    dtype = K.dtype
    eye = jnp.eye(s, dtype=dtype)
    weight = jnp.where(observed, 1.0 / S, 0.0)
    A_next = jnp.concatenate([A[1:], eye[None]])
    Psi = _mm(A_next, eye - _outer(K, h))
    c = (v * weight)[:, None] * h
    T = block_length(n)
    Psi_b, weight_b, c_b = (
        _to_blocks(Psi, T, eye),
        _to_blocks(weight, T, 0.0),
        _to_blocks(c, T, 0.0),
    )
    B = Psi_b.shape[1]
    hh = _outer(h, h)

    def within(carry, inputs):
        lam, Lam, R = carry
        Psi_k, w_k, c_k = inputs
        lam = c_k + _mv(_mT(Psi_k), lam)
        Lam = w_k[:, None, None] * hh + _mm(_mm(_mT(Psi_k), Lam), Psi_k)
        R = _mm(R, Psi_k)
        return (lam, Lam, R), (lam, Lam, R)

    init = (
        jnp.zeros((B, s), dtype),
        jnp.zeros((B, s, s), dtype),
        jnp.broadcast_to(eye, (B, s, s)),
    )
    _, (lam0, Lam0, R) = jax.lax.scan(within, init, (Psi_b, weight_b, c_b), reverse=True)

    # The values entering each block, from the last block back: λ at the next block's first point.
    def across(carry, first):
        lam_in, Lam_in = carry
        lam0_1, Lam0_1, R_1 = first
        lam = lam0_1 + _mv(_mT(R_1), lam_in)
        Lam = Lam0_1 + _mT(R_1) @ Lam_in @ R_1
        return (lam, Lam), (lam_in, Lam_in)

    _, (lam_in, Lam_in) = jax.lax.scan(
        across,
        (jnp.zeros((s,), dtype), jnp.zeros((s, s), dtype)),
        (lam0[0], Lam0[0], R[0]),
        reverse=True,
    )
    lam = _from_blocks(lam0 + jnp.einsum("tbji,bj->tbi", R, lam_in), n)
    Lam = _from_blocks(Lam0 + _mm(_mm(_mT(R), Lam_in[None]), R), n)

    # Cotangents (module docs).
    G = 0.5 * (_outer(lam, lam) - Lam)
    AP = _mm(A, P_prev)
    dA = _outer(lam, m_prev) + 2.0 * _mm(G, AP)
    dQ = G
    dP0 = A[0].T @ G[0] @ A[0]
    lam_next = jnp.concatenate([lam[1:], jnp.zeros((1, s), dtype)])
    Lam_next = jnp.concatenate([Lam[1:], jnp.zeros((1, s, s), dtype)])
    lam_filt = _mv(_mT(A_next), lam_next)  # λ'_k
    Lam_filt = _mm(_mm(_mT(A_next), Lam_next), A_next)  # Λ'_k
    e = jnp.where(observed, v * weight - jnp.sum(K * lam_filt, -1), 0.0)
    KLK = jnp.einsum("ni,nij,nj->n", K, Lam_filt, K)
    dnoise = jnp.where(observed, 0.5 * (e * e - weight - KLK), 0.0)
    dy = -e
    # Fisher's identity for h, with the smoothed moments.
    m_pred = _mv(A, m_prev)
    P_pred = _mm(AP, _mT(A)) + Q
    m_s = m_pred + _mv(P_pred, lam)
    P_s = P_pred - _mm(_mm(P_pred, Lam), P_pred)
    inv_noise = jnp.where(observed, 1.0 / noise, 0.0)
    r = (y - m_s @ h) * inv_noise
    dh = jnp.sum(r[:, None] * m_s, 0) - jnp.einsum("n,nij,j->i", inv_noise, P_s, h)
    return tuple(g * x for x in (dh, dP0, dA, dQ, dy, dnoise)) + (None,)


log_likelihood_blocked.defvjp(_forward, _backward)
