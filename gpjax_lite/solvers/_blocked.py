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
``T`` steps vectorised over the ``B`` blocks, or a loop over the ``B`` blocks:

1. **Block summaries** (vectorised over blocks, ``T`` steps). For each block,
   the Kalman filter *conditioned on the state* ``x₀`` *at the last point of
   the previous block*: the state's law is ``N(Φ x₀ + b, C)``, affine in
   ``x₀``, and the block's observations so far contribute
   ``exp(-½ |ζ - U x₀|²)`` to the likelihood of ``x₀`` (``U`` upper
   triangular). An observation is an ordinary Kalman update of ``(b, C)``
   with the innovation ``v = y - h b - (hΦ) x₀``, and appends the row
   ``wᵀ/√S`` to ``U`` and ``v₀/√S`` to ``ζ`` (``w = Φᵀ hᵀ``, ``v₀ = y - h b``),
   re-triangularised by Givens rotations (:func:`_absorb_row`). In
   information form, ``J = UᵀU`` and ``η = Uᵀζ`` are the filtering elements of
   Särkkä & García-Fernández (2021, "Temporal parallelization of Bayesian
   smoothers", IEEE TAC 66(1), Lemmas 7–8) built up one observation at a
   time; the square root is kept instead because with a noise variance far
   below the signal's, ``J`` and ``η`` are ``O(1/σ²)`` and rounding them
   loses about ``log₁₀(1/σ²)`` digits of the weakly informed directions
   (Bierman 1977, ch. V: the square-root information filter; the case in
   ``tests/solvers/test_blocked.py``).
2. **Block starts** (``B`` steps). With ``x₀ ~ N(m, P)`` (the filtered state
   at the end of the previous block), the block's summary is an observation
   ``ζ = U x₀ + e``, ``e ~ N(0, I)``, and a Kalman update gives
   ``x₀ | y ~ N(m', P')``: ``m' = m + P Uᵀ G⁻¹(ζ - U m)``,
   ``P' = P - P Uᵀ G⁻¹ U P`` with ``G = I + U P Uᵀ`` (eigenvalues ≥ 1), and
   the filtered state at the block's end ``N(Φ m' + b, Φ P' Φᵀ + C)`` (the
   same lemma).
3. **The filter** (vectorised over blocks, ``T`` steps): the ordinary Kalman
   filter (Särkkä 2013, Alg. 4.4) in every block at once, each started from
   its block start. Its log-likelihood terms are the sequential filter's to
   round-off (the filter forgets a round-off error in its start at its own
   rate).

The covariance update is ``P = P⁻ - (P⁻h)(P⁻h)ᵀ / S`` (Särkkä 2013, Alg. 4.4),
every symmetric matrix formed from its upper triangle (symmetric by
construction); the sum of the terms is the log likelihood.

**Layout.** Every per-point quantity is stored entry by entry, each entry a
``(T, B)`` array (blocks in the minor, contiguous dimension), and the small
matrix algebra of one step is written out entry by entry
(:func:`_matmul` and friends), so each loop step is a few fused elementwise
loops over ``B`` contiguous numbers. The transitions come as the entries of a
static sparsity *pattern* (a sum of kernels has block-diagonal ``A``, ``Q``)
and ``h`` as static numbers: products skip structural zeros at trace time.
``Q`` is given by its upper triangle.

**Reverse mode** (:func:`log_likelihood_entries` is a ``jax.custom_vjp``): the
derivative of ``log p(y)`` with respect to the predicted moments
``m⁻_k, P⁻_k`` of each point is ``λ_k`` and ``½(λ_k λ_kᵀ - Λ_k)``, where
``λ, Λ`` are the adjoint variables of the modified Bryson–Frazier smoother
(Bierman 1977, "Factorization Methods for Discrete Sequential Estimation",
ch. X). In terms of ``λ'_k = A_{k+1}ᵀ λ_{k+1}``, ``Λ'_k = A_{k+1}ᵀ Λ_{k+1} A_{k+1}``
(``λ'_N = 0, Λ'_N = 0``) the backward recursion has no matrix inverse::

    e_k = v_k / S_k - K_kᵀ λ'_k,       u_k = Λ'_k K_k,   κ_k = K_kᵀ Λ'_k K_k,
    λ_k = λ'_k + hᵀ e_k,               Λ_k = Λ'_k - hᵀ u_kᵀ - u_k h + (κ_k + 1/S_k) hᵀ h,
    λ'_{k-1} = A_kᵀ λ_k,               Λ'_{k-1} = A_kᵀ Λ_k A_k

(``λ_k = hᵀ v_k/S_k + (I - K_k h)ᵀ λ'_k`` and ``Λ_k = hᵀh/S_k + (I - K_k h)ᵀ Λ'_k (I - K_k h)``
expanded; ``log p(y) = log p(y_{<k}) + log ∫ N(x; m⁻_k, P⁻_k) p(y_{≥k} | x) dx``,
and the first factor does not depend on ``A_k, Q_k``). With
``m⁻_k = A_k m_{k-1}``, ``P⁻_k = A_k P_{k-1} A_kᵀ + Q_k`` and
``G_k = ½(λ_k λ_kᵀ - Λ_k)``::

    ∂/∂Q_k = G_k,   ∂/∂A_k = λ_k m_{k-1}ᵀ + 2 G_k A_k P_{k-1},   ∂/∂P₀ = A_0ᵀ G_0 A_0 = ½(λ'λ'ᵀ - Λ')_{-1},
    ∂/∂y_k = -e_k,  ∂/∂σ²_k = ½(e_k² - 1/S_k - κ_k)

(``e_k`` is entry ``k`` of ``(K + Σ)⁻¹ y`` and ``1/S_k + κ_k`` the diagonal
entry of ``(K + Σ)⁻¹``: the dense formula ``∂/∂Σ = ½(α αᵀ - (K + Σ)⁻¹)``).
Only the entries of ``∂/∂A`` and ``∂/∂Q`` inside the pattern are formed. The
recursion is affine in ``(λ', Λ')``, so it runs in the same three kinds of
pass as the filter: each block's map ``λ'_in ↦ c + Rᵀ λ'_out``,
``Λ'_in ↦ D + Rᵀ Λ'_out R`` (``R`` the product of the ``(I - K_k h) A_k``; pass 1,
keeping only the block totals), the values entering every block by a loop over
the blocks (pass 2), and the recursion itself in every block from its entering
value, forming the cotangents as it goes (pass 3). The forward filter keeps
``m_{k-1}``, the upper triangle of ``P_{k-1}``, ``K_k``, ``v_k`` and ``1/S_k``:
memory ``O(N s²)``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from ..linalg import solve_small

LOG_2PI = math.log(2.0 * math.pi)


def block_length(n: int) -> int:
    """Points per block: about ``√n`` (passes over ``T`` steps and over ``n / T`` blocks balance)."""
    return max(1, math.ceil(math.sqrt(n)))


def to_blocks(x, T: int, fill):
    """``(N,)`` → ``(T, B)`` (point ``b T + t`` at ``[t, b]``), the tail padded with ``fill``."""
    n = x.shape[0]
    B = -(-n // T)
    pad = B * T - n
    if pad:
        x = jnp.concatenate([x, jnp.full((pad,), fill, x.dtype)])
    return x.reshape(B, T).T


def from_blocks(x, n: int):
    """``(T, B)`` → ``(N,)``."""
    return x.T.reshape(-1)[:n]


# ------------------------------------------------------------------ entrywise algebra
# A matrix is a tuple of rows, a vector a tuple of entries; an entry is an array (here the
# B blocks of one step) or None, a structural zero that every operation skips at trace time.
# ``h`` is a tuple of Python numbers.


def _add(a, b):
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _mul(a, b):
    if a is None or b is None:
        return None
    return a * b


def _total(terms):
    out = None
    for term in terms:
        out = _add(out, term)
    return out


def _scaled(c: float, a):
    """``c · a`` for a static number ``c``."""
    if c == 0.0 or a is None:
        return None
    return a if c == 1.0 else c * a


def _neg(a):
    return None if a is None else -a


def _matmul(X, Y):
    return tuple(
        tuple(_total(_mul(X[i][k], Y[k][j]) for k in range(len(Y))) for j in range(len(Y[0])))
        for i in range(len(X))
    )


def _transpose(X):
    return tuple(zip(*X))


def _matvec(X, x):
    return tuple(_total(_mul(row[k], x[k]) for k in range(len(x))) for row in X)


def _sym_from(upper, s):
    """The symmetric matrix whose entries ``(i, j), i ≤ j`` are ``upper(i, j)``."""
    rows = [[None] * s for _ in range(s)]
    for i in range(s):
        for j in range(i, s):
            rows[i][j] = rows[j][i] = upper(i, j)
    return tuple(tuple(row) for row in rows)


def _sandwich(X, C, Q=None):
    """``X C Xᵀ + Q`` for symmetric ``C``, ``Q`` (``Q`` may be ``None``)."""
    XC = _matmul(X, C)
    return _sym_from(
        lambda i, j: _add(
            _total(_mul(XC[i][k], X[j][k]) for k in range(len(C))),
            None if Q is None else Q[i][j],
        ),
        len(X),
    )


def _h_dot(h, x):
    """``h · x`` for the static row ``h``."""
    return _total(_scaled(h[i], x[i]) for i in range(len(h)))


def _sym_update(C, a, b, subtract=False):
    """``C ± a bᵀ`` for symmetric ``C`` and ``a bᵀ`` (``b`` a multiple of ``a``)."""
    sign = _neg if subtract else (lambda x: x)
    return _sym_from(lambda i, j: _add(C[i][j], sign(_mul(a[i], b[j]))), len(C))


def _dense(X, zero):
    """``X`` with every structural zero an array of zeros (loop carries keep one structure)."""
    if isinstance(X[0], tuple):
        return tuple(_dense(row, zero) for row in X)
    return tuple(zero if x is None else x for x in X)


def _stack_matrix(X):
    return jnp.stack([jnp.stack(row, -1) for row in X], -2)


def _unstack_matrix(M):
    s = M.shape[-1]
    return tuple(tuple(M[..., i, j] for j in range(s)) for i in range(s))


def pattern_entries(pattern):
    """The ``(i, j)`` of ``A``'s entries (row-major) and ``Q``'s upper entries in ``pattern``."""
    s = len(pattern)
    A = tuple((i, j) for i in range(s) for j in range(s) if pattern[i][j])
    Q = tuple((i, j) for i, j in A if i <= j)
    return A, Q


def _transition(pattern, A_flat):
    s = len(pattern)
    rows = [[None] * s for _ in range(s)]
    for (i, j), a in zip(pattern_entries(pattern)[0], A_flat):
        rows[i][j] = a
    return tuple(tuple(row) for row in rows)


def _noise(pattern, Q_flat):
    s = len(pattern)
    rows = [[None] * s for _ in range(s)]
    for (i, j), q in zip(pattern_entries(pattern)[1], Q_flat):
        rows[i][j] = rows[j][i] = q
    return tuple(tuple(row) for row in rows)


# ------------------------------------------------------------------------- forward
def _absorb_row(U, zeta, r, z):
    """``(U, ζ)`` with one more row: the triangle of ``[U; rᵀ]``, ``[ζ; z]`` by Givens rotations.

    ``U`` is upper triangular (row ``i`` holds the entries ``j ≥ i``), so that
    ``|ζ - U x|² + (z - r·x)²`` equals ``|ζ' - U' x|²`` plus a term free of ``x``:
    one step of Bierman's square-root information filter (Bierman 1977, ch. V;
    Golub & Van Loan 2013, §5.1.8, on Givens rotations). Rotation ``i`` zeroes
    ``r_i`` against the diagonal entry ``U_ii ≥ 0``; a zero row (an unobserved
    point) leaves ``U, ζ`` as they are.
    """
    U = [list(row) for row in U]
    zeta = list(zeta)
    r = list(r)
    for i in range(len(U)):
        if r[i] is None:
            continue
        d = U[i][0]
        rho = jnp.sqrt(d * d + r[i] * r[i])
        safe = jnp.where(rho > 0, rho, 1.0)
        c, sn = jnp.where(rho > 0, d / safe, 1.0), r[i] / safe
        U[i][0] = rho
        for j in range(i + 1, len(U)):
            u, x = U[i][j - i], r[j]
            U[i][j - i] = _add(_mul(c, u), _mul(sn, x))
            r[j] = _add(_mul(c, x), _neg(_mul(sn, u)))
        zeta[i], z = c * zeta[i] + sn * z, c * z - sn * zeta[i]
    return tuple(tuple(row) for row in U), tuple(zeta)


def _block_summaries(h, pattern, A, Q, y, noise, observed):
    """Pass 1: each block's ``(Φ, b, C, U, ζ)`` as entries ``(B,)`` (``U`` by its upper rows)."""
    s = len(h)
    zero = jnp.zeros(y.shape[1:], y.dtype)
    one = jnp.ones_like(zero)

    def step(carry, inputs):
        Phi, b, C, U, zeta = carry
        Ak, Qk, yk, nk, ok = inputs
        Ak, Qk = _transition(pattern, Ak), _noise(pattern, Qk)
        Phi = _matmul(Ak, Phi)
        b = _matvec(Ak, b)
        C = _sandwich(Ak, C, Qk)
        Ch = _matvec(C, h)
        S = _h_dot(h, Ch) + nk
        weight = jnp.where(ok, 1.0 / S, 0.0)
        v = yk - _h_dot(h, b)
        w = _matvec(_transpose(Phi), h)
        K = tuple(_mul(c, weight) for c in Ch)
        root = jnp.sqrt(weight)
        U, zeta = _absorb_row(U, zeta, tuple(_mul(wi, root) for wi in w), v * root)
        b = tuple(_add(bi, _mul(Ki, v)) for bi, Ki in zip(b, K))
        Phi = tuple(
            tuple(_add(Phi[i][j], _neg(_mul(K[i], w[j]))) for j in range(s)) for i in range(s)
        )
        C = _sym_update(C, Ch, K, subtract=True)
        return _dense((Phi, b, C, U, zeta), zero), None

    eye = tuple(tuple(one if i == j else zero for j in range(s)) for i in range(s))
    zeros = tuple(tuple(zero for _ in range(s)) for _ in range(s))
    triangle = tuple((zero,) * (s - i) for i in range(s))
    init = (eye, (zero,) * s, zeros, triangle, (zero,) * s)
    summaries, _ = jax.lax.scan(step, init, (A, Q, y, noise, observed))
    return summaries


def _block_starts(P0, summaries):
    """Pass 2: the filtered ``(m, P)`` at the point before each block, ``(B, s)`` and ``(B, s, s)``."""
    s = P0.shape[0]
    eye = jnp.eye(s, dtype=P0.dtype)
    Phi, b, C, U, zeta = summaries
    zero = jnp.zeros_like(zeta[0])
    stacked = (
        _stack_matrix(Phi),
        jnp.stack(b, -1),
        _stack_matrix(C),
        _stack_matrix(tuple((zero,) * i + row for i, row in enumerate(U))),
        jnp.stack(zeta, -1),
    )

    def step(carry, summary):
        m, P = carry
        Phi, b, C, U, zeta = summary
        # x₀ | block: a Kalman update with the block as the observation ζ = U x₀ + e,
        # e ~ N(0, I) (Särkkä & García-Fernández 2021, Lemma 8, with J = UᵀU, η = Uᵀζ).
        UP = U @ P
        solved = solve_small(eye + UP @ U.T, jnp.concatenate([UP, (zeta - U @ m)[:, None]], 1))
        m_post = m + UP.T @ solved[:, s]
        P_post = P - UP.T @ solved[:, :s]
        m_next = Phi @ m_post + b
        P_next = Phi @ P_post @ Phi.T + C
        return (m_next, 0.5 * (P_next + P_next.T)), (m, P)

    m0 = jnp.zeros((s,), P0.dtype)
    _, starts = jax.lax.scan(step, (m0, P0), stacked)
    return starts


def _filter_blocks(h, pattern, starts, A, Q, y, noise, observed, keep: bool):
    """Pass 3: the Kalman filter in every block from its start; the terms, and what reverse mode needs if ``keep``."""
    s = len(h)
    m0, P0 = starts
    zero = jnp.zeros(y.shape[1:], y.dtype)

    def step(carry, inputs):
        m, P = carry
        Ak, Qk, yk, nk, ok = inputs
        Ak, Qk = _transition(pattern, Ak), _noise(pattern, Qk)
        m_pred = _matvec(Ak, m)
        P_pred = _sandwich(Ak, P, Qk)
        Ph = _matvec(P_pred, h)
        S = _h_dot(h, Ph) + nk
        weight = jnp.where(ok, 1.0 / S, 0.0)
        v = yk - _h_dot(h, m_pred)
        K = tuple(_mul(p, weight) for p in Ph)
        m_new = tuple(_add(mi, _mul(Ki, v)) for mi, Ki in zip(m_pred, K))
        P_new = _sym_update(P_pred, Ph, K, subtract=True)
        term = jnp.where(ok, -0.5 * (v * v * weight + jnp.log(S) + LOG_2PI), 0.0)
        if keep:
            upper = tuple(P[i][j] for i in range(s) for j in range(i, s))
            out = (term, (m, upper, _dense(K, zero), v, weight))
        else:
            out = term
        return _dense((m_new, P_new), zero), out

    init = (
        tuple(m0[:, i] for i in range(s)),
        tuple(tuple(P0[:, i, j] for j in range(s)) for i in range(s)),
    )
    _, out = jax.lax.scan(step, init, (A, Q, y, noise, observed))
    return out


def _value(h, pattern, P0, A, Q, y, noise, observed, keep: bool):
    summaries = _block_summaries(h, pattern, A, Q, y, noise, observed)
    starts = _block_starts(P0, summaries)
    out = _filter_blocks(h, pattern, starts, A, Q, y, noise, observed, keep)
    if not keep:
        return jnp.sum(out)
    return jnp.sum(out[0]), out[1]


def _log_likelihood_entries(h, pattern, P0, A, Q, y, noise, observed):
    return _value(h, pattern, P0, A, Q, y, noise, observed, keep=False)


log_likelihood_entries = jax.custom_vjp(_log_likelihood_entries, nondiff_argnums=(0, 1))
log_likelihood_entries.__doc__ = """``log p(y)`` of the observed points (nats), by the blocked passes of the module docs.

Args:
    h: the observation row, a tuple of ``s`` Python numbers (static).
    pattern: ``s × s`` tuple of tuples of bools (static), symmetric: the entries of
        ``A_k`` and ``Q_k`` that may be nonzero.
    P0: the prior covariance of the first state ``(s, s)``.
    A: the entries of the transitions in ``pattern`` (row-major), each ``(T, B)``
        (point ``b T + t`` at ``[t, b]``; ``A_0 = I``).
    Q: the upper-triangle entries of the process noise in ``pattern``, each ``(T, B)`` (``Q_0 = 0``).
    y, noise: targets and noise variances ``(T, B)``.
    observed: bool ``(T, B)``; unobserved points (and the padding) add nothing.
"""


def _forward(h, pattern, P0, A, Q, y, noise, observed):
    value, kept = _value(h, pattern, P0, A, Q, y, noise, observed, keep=True)
    return value, (A, kept)


def _adjoint_step(h, lp, Lp, K, v, weight):
    """One step of the backward recursion (module docs): ``e, κ, λ, Λ`` from ``λ', Λ'``."""
    e = v * weight - _total(_mul(Ki, li) for Ki, li in zip(K, lp))
    u = _matvec(Lp, K)
    kappa = _total(_mul(Ki, ui) for Ki, ui in zip(K, u))
    lam = tuple(_add(li, _scaled(hi, e)) for li, hi in zip(lp, h))
    diag = kappa + weight
    Lam = _sym_from(
        lambda i, j: _total(
            [
                Lp[i][j],
                _neg(_scaled(h[i], u[j])),
                _neg(_scaled(h[j], u[i])),
                _scaled(h[i] * h[j], diag),
            ]
        ),
        len(h),
    )
    return e, kappa, lam, Lam


@jax.custom_jvp
def _first_derivatives_only(saved):
    """``saved`` itself; differentiating it (a second derivative) is a ``TypeError``.

    The reverse pass below is written for first derivatives; differentiated in
    turn by JAX (``jax.jacrev(jax.grad(...))``) it gave NaN, and forward mode
    through a ``custom_vjp`` is JAX's own error, so a second derivative is an
    error that names the way out.
    """
    return saved


@_first_derivatives_only.defjvp
def _first_derivatives_only_jvp(primals, tangents):
    raise TypeError(
        "solvers.StateSpace gives first derivatives of the log marginal likelihood in "
        "reverse mode (jax.grad, jax.vjp, jax.jacrev), not a gradient of a gradient (nor "
        "forward mode: jax.jvp, jax.jacfwd, jax.hessian); use solvers.Cholesky() for those."
    )


def _backward(h, pattern, saved, g):
    A, (m_prev, P_upper, K, v, weight) = _first_derivatives_only(saved)
    s = len(h)
    zero = jnp.zeros(v.shape[1:], v.dtype)
    one = jnp.ones_like(zero)
    A_pairs, Q_pairs = pattern_entries(pattern)

    # Pass 1: each block's affine map (c, D, R), from the end of the block back to its start.
    def block_map(carry, inputs):
        c, D, R = carry
        Ak, Kk, vk, wk = inputs
        Ak = _transition(pattern, Ak)
        _, _, lam, Lam = _adjoint_step(h, c, D, Kk, vk, wk)
        At = _transpose(Ak)
        c = _matvec(At, lam)
        D = _sandwich(At, Lam)
        RK = _matvec(R, Kk)
        R = _matmul(
            tuple(
                tuple(_add(R[i][j], _neg(_scaled(h[j], RK[i]))) for j in range(s)) for i in range(s)
            ),
            Ak,
        )
        return _dense((c, D, R), zero), None

    eye = tuple(tuple(one if i == j else zero for j in range(s)) for i in range(s))
    zeros = tuple(tuple(zero for _ in range(s)) for _ in range(s))
    (c, D, R), _ = jax.lax.scan(
        block_map, ((zero,) * s, zeros, eye), (A, K, v, weight), reverse=True
    )

    # Pass 2: (λ', Λ') entering each block from the right, from the last block back.
    def across(carry, block):
        lp, Lp = carry
        c_b, D_b, R_b = block
        return (c_b + R_b.T @ lp, D_b + R_b.T @ Lp @ R_b), (lp, Lp)

    dtype = v.dtype
    _, (lp_in, Lp_in) = jax.lax.scan(
        across,
        (jnp.zeros((s,), dtype), jnp.zeros((s, s), dtype)),
        (jnp.stack(c, -1), _stack_matrix(D), _stack_matrix(R)),
        reverse=True,
    )

    # Pass 3: the recursion in every block from its entering value, with the cotangents.
    def adjoint(carry, inputs):
        lp, Lp = carry
        Ak, mk, Pk, Kk, vk, wk = inputs
        Ak = _transition(pattern, Ak)
        P_prev = _noise(tuple(tuple(True for _ in range(s)) for _ in range(s)), Pk)
        e, kappa, lam, Lam = _adjoint_step(h, lp, Lp, Kk, vk, wk)
        dnoise = 0.5 * (e * e - wk - kappa)
        G = _sym_from(lambda i, j: 0.5 * (lam[i] * lam[j] - Lam[i][j]), s)
        GA = _matmul(G, Ak)
        GAP = _matmul(GA, P_prev)
        dA = tuple(lam[i] * mk[j] + 2.0 * GAP[i][j] for i, j in A_pairs)
        dQ = tuple(G[i][j] if i == j else 2.0 * G[i][j] for i, j in Q_pairs)
        At = _transpose(Ak)
        lp = _matvec(At, lam)
        Lp = _sandwich(At, Lam)
        return _dense((lp, Lp), zero), (dA, dQ, -e, dnoise)

    init = (
        tuple(lp_in[:, i] for i in range(s)),
        tuple(tuple(Lp_in[:, i, j] for j in range(s)) for i in range(s)),
    )
    (lp0, Lp0), (dA, dQ, dy, dnoise) = jax.lax.scan(
        adjoint, init, (A, m_prev, P_upper, K, v, weight), reverse=True
    )
    # ∂/∂P₀ = A_0ᵀ G_0 A_0 = ½(λ'λ'ᵀ - Λ') before the first point (block 0).
    dP0 = jnp.stack(
        [
            jnp.stack([0.5 * (lp0[i][0] * lp0[j][0] - Lp0[i][j][0]) for j in range(s)])
            for i in range(s)
        ]
    )
    scale = lambda xs: tuple(g * x for x in xs)  # noqa: E731
    return g * dP0, scale(dA), scale(dQ), g * dy, g * dnoise, None


log_likelihood_entries.defvjp(_forward, _backward)


# ------------------------------------------------------------------ dense interface
def log_likelihood_blocked(h, P0, A, Q, y, noise, observed):
    """:func:`log_likelihood_entries` for dense inputs: ``A``, ``Q`` ``(N, s, s)``, ``y``, ``noise``, ``observed`` ``(N,)``.

    ``h`` must be concrete (it becomes static numbers); ``A`` and ``Q`` are
    taken as dense (every entry may be nonzero), ``Q`` by its upper triangle.
    """
    h = tuple(float(x) for x in np.asarray(h))
    s = len(h)
    n = y.shape[0]
    T = block_length(n)
    pattern = tuple(tuple(True for _ in range(s)) for _ in range(s))
    A_pairs, Q_pairs = pattern_entries(pattern)
    eye = np.eye(s)
    A_b = tuple(to_blocks(A[:, i, j], T, eye[i, j]) for i, j in A_pairs)
    Q_b = tuple(to_blocks(Q[:, i, j], T, 0.0) for i, j in Q_pairs)
    return log_likelihood_entries(
        h,
        pattern,
        P0,
        A_b,
        Q_b,
        to_blocks(y, T, 0.0),
        to_blocks(noise, T, 1.0),
        to_blocks(observed, T, False),
    )
