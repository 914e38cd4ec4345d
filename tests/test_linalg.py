"""gpjax_lite.linalg: Cholesky helpers, the jitter policy and the Gaussian log density.

References are NumPy/SciPy in float64. The derivative of ``gaussian_log_density``
is a ``jax.custom_jvp``; it is checked against central finite differences along
symmetric directions (the function only reads the lower triangle of ``K``, so
per-entry gradients of a non-symmetric perturbation are not meaningful).
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from conftest import naming

import gpjax_lite as gl
from gpjax_lite.linalg import (
    _BLOCK_MIN_SIZE,
    SOLVE_BLOCK_SIZE,
    CholeskyError,
    _apply_lower_inverse,
    _apply_upper_inverse,
    _inverse_from_factor,
    add_jitter,
    cho_solve,
    cholesky,
    default_jitter,
    gaussian_log_density,
    noisy_gaussian_log_density,
    solve_lower,
    solve_small,
)

#: float64, or float32 when 64-bit JAX is off (``JAX_ENABLE_X64=0``, see conftest.py).
X64 = jnp.result_type(float) == jnp.float64


def tol(x64, x32):
    """A tolerance: ``x64`` in float64; ``x32`` in float32 mode, set by round-off."""
    return x64 if X64 else x32


def spd(n, seed=0, ridge=0.5):
    """A well-conditioned random SPD matrix (float64)."""
    A = np.random.default_rng(seed).normal(size=(n, n))
    return A @ A.T / n + ridge * np.eye(n)


def sym(n, seed):
    B = np.random.default_rng(seed).normal(size=(n, n))
    return (B + B.T) / 2


# ------------------------------------------------------------------- jitter
def test_default_jitter_per_dtype():
    assert default_jitter(jnp.float64) == 1e-8
    assert default_jitter(jnp.float32) == 1e-4
    # The API caps the float64 jitter at 1e-6 of the variance scale.
    assert default_jitter(jnp.float64) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.x64)])
@pytest.mark.parametrize("jitter", [None, 1e-3])
def test_add_jitter_adds_relative_diagonal(dtype, jitter):
    K = (spd(5, seed=1) * np.array([1.0, 2.0, 3.0, 4.0, 5.0])[:, None]).astype(dtype)
    K = (K + K.T) / 2
    out = add_jitter(jnp.asarray(K), jitter)
    expected_jitter = default_jitter(dtype) if jitter is None else jitter
    expected = K + expected_jitter * np.mean(np.diag(K)) * np.eye(5)
    assert out.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(np.asarray(out), expected, rtol=rtol)
    # Off-diagonal entries are untouched.
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_array_equal(np.asarray(out)[off], K[off])


# ------------------------------------------------------------ factorisations
def test_cholesky_solves_match_numpy():
    K = spd(7, seed=2)
    B = np.random.default_rng(3).normal(size=(7, 3))
    L = cholesky(jnp.asarray(K))
    np.testing.assert_allclose(
        np.asarray(L), np.linalg.cholesky(K), rtol=tol(1e-12, 1e-5), atol=tol(1e-14, 1e-6)
    )
    assert np.allclose(np.triu(np.asarray(L), 1), 0.0)
    np.testing.assert_allclose(
        np.asarray(solve_lower(L, jnp.asarray(B))),
        scipy.linalg.solve_triangular(np.linalg.cholesky(K), B, lower=True),
        rtol=tol(1e-12, 1e-5),
    )
    np.testing.assert_allclose(
        np.asarray(cho_solve(L, jnp.asarray(B))), np.linalg.solve(K, B), rtol=tol(1e-10, 1e-4)
    )


def test_cholesky_error_eager_and_nan_under_jit():
    K = np.ones((4, 4))
    K[0, 0] = -1.0  # indefinite
    with pytest.raises(CholeskyError, match="my matrix") as info:
        cholesky(jnp.asarray(K), what="my matrix")
    # The documented hierarchy: CholeskyError < LinAlgError < ValueError.
    assert isinstance(info.value, np.linalg.LinAlgError)
    assert isinstance(info.value, ValueError)
    assert gl.CholeskyError is CholeskyError
    message = str(info.value)
    assert "noise" in message and "jitter" in message and "float64" in message
    # Under jit nothing can be inspected: the factor holds NaN instead of raising.
    L = jax.jit(cholesky)(jnp.asarray(K))
    assert not bool(jnp.all(jnp.isfinite(L)))


# -------------------------------------------------------- Gaussian log density
def test_gaussian_log_density_matches_scipy():
    K = spd(6, seed=4)
    r = np.random.default_rng(5).normal(size=6)
    expected = scipy.stats.multivariate_normal(np.zeros(6), K).logpdf(r)
    value = gaussian_log_density(jnp.asarray(K), jnp.asarray(r))
    np.testing.assert_allclose(float(value), expected, rtol=tol(1e-12, 1e-6))
    # Adds no jitter: a tiny-but-positive-definite K gives the exact density.
    K_small = 1e-9 * K
    expected_small = scipy.stats.multivariate_normal(np.zeros(6), K_small).logpdf(1e-5 * r)
    np.testing.assert_allclose(
        float(gaussian_log_density(jnp.asarray(K_small), jnp.asarray(1e-5 * r))),
        expected_small,
        rtol=tol(1e-10, 1e-5),
    )


def _fd(f, h):
    return (f(h) - f(-h)) / (2 * h)


@pytest.mark.x64  # central differences, h = 1e-5: float32 round-off (eps32/h ~ 1e-2) swamps them
def test_gaussian_log_density_jvp_matches_finite_differences():
    n = 6
    K, r = spd(n, seed=6), np.random.default_rng(7).normal(size=n)
    dK, dr = sym(n, seed=8), np.random.default_rng(9).normal(size=n)
    f = lambda t: float(gaussian_log_density(jnp.asarray(K + t * dK), jnp.asarray(r + t * dr)))
    _, tangent = jax.jvp(gaussian_log_density, (jnp.asarray(K), jnp.asarray(r)), (dK, dr))
    np.testing.assert_allclose(float(tangent), _fd(f, 1e-5), rtol=1e-7)
    # The closed form of the docstring, written in NumPy.
    Kinv = np.linalg.inv(K)
    alpha = Kinv @ r
    closed = 0.5 * (alpha @ dK @ alpha - np.trace(Kinv @ dK)) - alpha @ dr
    np.testing.assert_allclose(float(tangent), closed, rtol=1e-10)


@pytest.mark.x64  # central differences, h = 1e-5: float32 round-off (eps32/h ~ 1e-2) swamps them
def test_noisy_gaussian_log_density_is_the_density_of_k_plus_noise():
    n = 7
    K, r = spd(n, seed=11, ridge=0.1), np.random.default_rng(12).normal(size=n)
    noise = np.random.default_rng(13).uniform(0.1, 0.5, size=n)
    dK, dnoise, dr = sym(n, seed=14), np.random.default_rng(15).normal(size=n), np.ones(n)
    value = noisy_gaussian_log_density(jnp.asarray(K), jnp.asarray(noise), jnp.asarray(r))
    expected = scipy.stats.multivariate_normal(np.zeros(n), K + np.diag(noise)).logpdf(r)
    np.testing.assert_allclose(float(value), expected, rtol=1e-12)
    # The tangent in all three arguments, noise included (the closed form of the
    # docstring), against central differences and against the JVP of
    # gaussian_log_density(K + diag(noise), r).
    primals = tuple(map(jnp.asarray, (K, noise, r)))
    tangents = tuple(map(jnp.asarray, (dK, dnoise, dr)))
    _, tangent = jax.jvp(noisy_gaussian_log_density, primals, tangents)
    f = lambda t: float(  # noqa: E731
        noisy_gaussian_log_density(*(p + t * d for p, d in zip(primals, tangents)))
    )
    np.testing.assert_allclose(float(tangent), _fd(f, 1e-5), rtol=1e-7)
    dense = lambda K, noise, r: gaussian_log_density(K + jnp.diag(noise), r)  # noqa: E731
    _, expected_tangent = jax.jvp(dense, primals, tangents)
    np.testing.assert_allclose(float(tangent), float(expected_tangent), rtol=1e-10)
    # Reverse mode and second order (a Hessian differentiates the rule itself).
    grads = jax.grad(noisy_gaussian_log_density, argnums=(0, 1, 2))(*primals)
    for g, e in zip(grads, jax.grad(dense, argnums=(0, 1, 2))(*primals)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-10, atol=1e-12)
    H = jax.hessian(noisy_gaussian_log_density, argnums=1)(*primals)
    np.testing.assert_allclose(
        np.asarray(H), np.asarray(jax.hessian(dense, argnums=1)(*primals)), rtol=1e-9
    )


def _param_K(theta):
    """A symmetric PD matrix depending smoothly on two parameters."""
    n = 5
    i = jnp.arange(n, dtype=theta.dtype)
    K = theta[0] * jnp.exp(-0.5 * (i[:, None] - i[None, :]) ** 2 / theta[1] ** 2)
    return K + 0.3 * jnp.eye(n)


def _param_density(theta):
    r = jnp.linspace(-1.0, 1.0, 5) * theta[0]
    return gaussian_log_density(_param_K(theta), r)


@pytest.mark.x64  # central differences with h = 1e-6 and 1e-5: float32 round-off swamps them
def test_gaussian_log_density_forward_reverse_and_second_order():
    theta = np.array([1.3, 0.8])
    h1, h2 = 1e-6, 1e-5
    E = np.eye(2)
    f_points = jnp.asarray(np.concatenate([theta + h1 * E, theta - h1 * E]))
    g_points = jnp.asarray(np.concatenate([theta + h2 * E, theta - h2 * E]))

    @jax.jit
    def run(theta, f_points, g_points):
        grad = jax.grad(_param_density)
        return (
            grad(theta),
            jax.jacfwd(_param_density)(theta),
            jax.hessian(_param_density)(theta),  # differentiates the custom JVP rule itself
            jax.vmap(_param_density)(f_points),
            jax.vmap(grad)(g_points),
        )

    g, g_fwd, H, f_vals, g_vals = (
        np.asarray(a) for a in run(jnp.asarray(theta), f_points, g_points)
    )
    np.testing.assert_allclose(g_fwd, g, rtol=1e-12)
    np.testing.assert_allclose(g, (f_vals[:2] - f_vals[2:]) / (2 * h1), rtol=1e-6)
    H_fd = (g_vals[:2] - g_vals[2:]) / (2 * h2)  # row i: d grad / d theta_i
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(H, H.T, rtol=1e-10)


def test_gaussian_log_density_under_jit_and_vmap():
    Ks = np.stack([spd(4, seed=s) for s in range(3)])
    rs = np.random.default_rng(10).normal(size=(3, 4))
    batched = jax.jit(jax.vmap(gaussian_log_density))(jnp.asarray(Ks), jnp.asarray(rs))
    expected = [scipy.stats.multivariate_normal(np.zeros(4), K).logpdf(r) for K, r in zip(Ks, rs)]
    np.testing.assert_allclose(np.asarray(batched), expected, rtol=tol(1e-12, 1e-5))
    # A failed factorisation gives NaN (not an exception) under jit.
    bad = jnp.asarray(-np.eye(4))
    assert math.isnan(float(jax.jit(gaussian_log_density)(bad, jnp.ones(4))))


# ------------------------------------- the block-inverse JVP, against a plain Cholesky
# The custom JVP of `gaussian_log_density` forms K⁻¹ from the factor by a 2×2 block
# split at n ≥ _BLOCK_MIN_SIZE (one full-size triangular inverse below it), padding
# the first half at odd n. The sizes cover both branches, the threshold itself and
# odd splits. The reference differentiates, with JAX's own Cholesky rule, a log
# density written here from `jnp.linalg.cholesky` and one triangular solve.
JVP_SIZES = [5, 31, 32, 33, 65]
#: float64 cases skip themselves in a run with 64-bit JAX off (`JAX_ENABLE_X64=0`).
JVP_DTYPES = [
    pytest.param(
        np.float64,
        id="float64",
        marks=pytest.mark.skipif(
            not jax.config.read("jax_enable_x64"), reason="needs float64: 64-bit JAX is off"
        ),
    ),
    pytest.param(np.float32, id="float32"),
]
#: Relative error allowed (max-abs, relative to the reference's largest entry): about
#: 100 ulp for the matrices of `spd`, whose condition numbers stay below 10.
JVP_TOL = {np.float64: 1e-12, np.float32: 1e-5}


def plain_log_density(K, r):
    """``log N(r | 0, K)`` through ``jnp.linalg.cholesky``, differentiated by JAX's own rules."""
    L = jnp.linalg.cholesky(K)
    w = jax.scipy.linalg.solve_triangular(L, r, lower=True)
    n = r.shape[0]
    half_log_det = jnp.sum(jnp.log(jnp.diagonal(L)))
    return -0.5 * jnp.dot(w, w) - half_log_det - 0.5 * n * math.log(2 * math.pi)


def _derivatives(f):
    """Value, reverse-mode gradients (K, r), a forward-mode JVP and second derivatives of ``f``."""

    def run(K, r, dK, dr):
        value, (gK, gr) = jax.value_and_grad(f, argnums=(0, 1))(K, r)
        _, tangent = jax.jvp(f, (K, r), (dK, dr))
        along = lambda t: f(K + t * dK, r + t * dr)  # noqa: E731
        second = jax.grad(jax.grad(along))(jnp.zeros((), K.dtype))
        hess_r = jax.hessian(f, argnums=1)(K, r)
        return value, gK, gr, tangent, second, hess_r

    return jax.jit(run)


_OURS, _PLAIN = _derivatives(gaussian_log_density), _derivatives(plain_log_density)


def _assert_close(got, want, tol, what):
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    scale = max(float(np.max(np.abs(want))), 1e-30)
    err = float(np.max(np.abs(got - want)))
    assert err <= tol * scale, f"{what}: max error {err:.3g} > {tol:g} × {scale:.3g}"


@pytest.mark.parametrize("dtype", JVP_DTYPES)
@pytest.mark.parametrize("n", JVP_SIZES)
def test_block_inverse_jvp_against_plain_cholesky(n, dtype):
    K = spd(n, seed=n).astype(dtype)
    r = np.random.default_rng(n + 1).normal(size=n).astype(dtype)
    dK = (sym(n, seed=n + 2) / n).astype(dtype)
    dr = np.random.default_rng(n + 3).normal(size=n).astype(dtype)
    ours = _OURS(*(jnp.asarray(a) for a in (K, r, dK, dr)))
    plain = _PLAIN(*(jnp.asarray(a) for a in (K, r, dK, dr)))
    names = ["value", "grad K", "grad r", "forward-mode JVP", "second derivative", "Hessian in r"]
    tol = JVP_TOL[dtype]
    for name, a, b in zip(names, ours, plain):
        assert a.dtype == dtype, name
        _assert_close(a, b, tol, name)
    # The textbook forms (Rasmussen & Williams eq. 5.9), in float64 NumPy.
    K64, r64 = K.astype(np.float64), r.astype(np.float64)
    K_inv = np.linalg.inv(K64)
    alpha = K_inv @ r64
    _assert_close(ours[1], 0.5 * (np.outer(alpha, alpha) - K_inv), tol, "grad K vs ½(ααᵀ-K⁻¹)")
    _assert_close(ours[2], -alpha, tol, "grad r vs -K⁻¹r")
    _assert_close(ours[5], -K_inv, tol, "Hessian in r vs -K⁻¹")
    expected = scipy.stats.multivariate_normal(np.zeros(n), K64).logpdf(r64)
    _assert_close(ours[0], expected, tol, "value vs SciPy")


@pytest.mark.parametrize("dtype", JVP_DTYPES)
@pytest.mark.parametrize("n", JVP_SIZES)
def test_inverse_from_factor_against_numpy(n, dtype):
    K = spd(n, seed=10 + n).astype(dtype)
    L = np.linalg.cholesky(K.astype(np.float64)).astype(dtype)
    K_inv, blocks = _inverse_from_factor(jnp.asarray(L))
    # Both branches are exercised: one full-size inverse below the threshold, blocks from it on.
    assert (blocks[1] is None) == (n < _BLOCK_MIN_SIZE)
    assert K_inv.shape == (n, n) and K_inv.dtype == dtype
    tol = JVP_TOL[dtype]
    L64 = L.astype(np.float64)
    _assert_close(K_inv, np.linalg.inv(L64 @ L64.T), tol, "K⁻¹")
    _assert_close(K_inv, np.asarray(K_inv).T, tol, "symmetry of K⁻¹")
    w = np.random.default_rng(n).normal(size=n).astype(dtype)
    _assert_close(
        _apply_upper_inverse(blocks, jnp.asarray(w)),
        scipy.linalg.solve_triangular(L64.T, w.astype(np.float64), lower=False),
        tol,
        "L⁻ᵀ w",
    )
    _assert_close(
        _apply_lower_inverse(blocks, jnp.asarray(w)),
        scipy.linalg.solve_triangular(L64, w.astype(np.float64), lower=True),
        tol,
        "L⁻¹ w",
    )


@pytest.mark.x64
@pytest.mark.parametrize("n", [SOLVE_BLOCK_SIZE * 2 - 1, SOLVE_BLOCK_SIZE * 2, 1031])
def test_recursive_solve_lower_against_scipy_and_its_gradient(n):
    """solve_lower's block forward substitution (n ≥ 2·SOLVE_BLOCK_SIZE) equals one
    LAPACK solve to round-off, at even and odd n and just below the split; its
    gradient equals that of one plain triangular solve."""
    rng = np.random.default_rng(n)
    A = rng.standard_normal((n, n))
    L = np.linalg.cholesky(A @ A.T / n + np.eye(n))
    B = rng.standard_normal((n, 7))
    expected = scipy.linalg.solve_triangular(L, B, lower=True)
    got = jax.jit(solve_lower)(jnp.asarray(L), jnp.asarray(B))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12 * np.abs(expected).max())

    def plain(L, B):
        return jnp.sum(jnp.sin(jax.scipy.linalg.solve_triangular(L, B, lower=True)))

    def ours(L, B):
        return jnp.sum(jnp.sin(solve_lower(L, B)))

    g_plain = jax.grad(plain, argnums=(0, 1))(jnp.asarray(L), jnp.asarray(B))
    g_ours = jax.grad(ours, argnums=(0, 1))(jnp.asarray(L), jnp.asarray(B))
    for a, b in zip(g_ours, g_plain):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10 * float(jnp.abs(b).max()))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.float64])
@pytest.mark.parametrize("s, k", [(1, 1), (2, 3), (4, 4), (7, 2)])
def test_solve_small_against_numpy(s, k, dtype):
    if dtype == jnp.float64 and not jax.config.jax_enable_x64:
        pytest.skip("float64 needs jax_enable_x64")
    rng = np.random.default_rng(s * 10 + k)
    A = rng.standard_normal((3, 5, s, s)) + s * np.eye(s) * rng.uniform(-1, 1, (3, 5, 1, 1))
    if s > 1:
        A[0, 0, 0, 0] = 0.0  # a zero leading pivot: row interchanges are needed
    B = rng.standard_normal((3, 5, s, k))
    X = solve_small(jnp.asarray(A, dtype), jnp.asarray(B, dtype))
    assert X.shape == (3, 5, s, k) and X.dtype == dtype
    R = np.linalg.solve(A.astype(dtype).astype(np.float64), B.astype(dtype).astype(np.float64))
    residual = np.einsum("...ij,...jk->...ik", A, np.asarray(X, np.float64)) - B
    scale = np.linalg.norm(A, axis=(-2, -1))[..., None, None] * np.abs(R).max() + 1.0
    tol = 1e-12 if dtype == jnp.float64 else 1e-4
    assert np.max(np.abs(residual) / scale) < tol
    # Under vmap, and differentiated like jnp.linalg.solve.
    Xv = jax.vmap(solve_small)(jnp.asarray(A[0], dtype), jnp.asarray(B[0], dtype))
    np.testing.assert_allclose(Xv, X[0], rtol=1e-6 if dtype == jnp.float32 else 1e-13)
    if dtype == jnp.float64:
        a, b = jnp.asarray(A[1, 2]), jnp.asarray(B[1, 2])
        for argnum in (0, 1):
            ours = jax.grad(lambda a, b: jnp.sum(jnp.sin(solve_small(a, b))), argnum)(a, b)
            ref = jax.grad(lambda a, b: jnp.sum(jnp.sin(jnp.linalg.solve(a, b))), argnum)(a, b)
            np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


def test_solve_small_makes_no_lapack_call():
    # The point of solve_small: jaxlib's batched LAPACK kernels can deadlock
    # XLA:CPU's thread pool when two run at once (see its docstring).
    A = jnp.eye(3) + jnp.zeros((100, 3, 3))
    text = jax.jit(solve_small).lower(A, A).as_text()
    assert "custom_call" not in text
    assert "custom_call" in jax.jit(jnp.linalg.solve).lower(A, A).as_text() or (
        jax.default_backend() != "cpu"
    )


def test_solve_small_checks_shapes_and_promotes_dtypes():
    eye = jnp.eye(3)
    for A, B, name in [
        (eye, jnp.ones(3), "B"),  # a vector right-hand side must be (s, 1)
        (jnp.ones((4, 3, 3)), jnp.ones((3, 2)), "B"),  # no broadcasting
        (eye, jnp.ones((2, 1)), "B"),
        (jnp.ones((3, 2)), jnp.ones((3, 1)), "A"),
    ]:
        with pytest.raises((ValueError, TypeError), match=naming(name)):
            solve_small(A, B)
    X = solve_small(jnp.eye(3, dtype=jnp.int32) * 2, jnp.ones((3, 1), jnp.int32))
    assert jnp.issubdtype(X.dtype, jnp.floating)
    np.testing.assert_allclose(X, 0.5 * np.ones((3, 1)))
    assert solve_small(jnp.zeros((0, 0)), jnp.zeros((0, 2))).shape == (0, 2)


@pytest.mark.x64
def test_log_density_tangents_take_the_values_dtype():
    """float64 noise variances with a float32 K and residual: the value is float32, and so
    must its tangent be (JAX rejects a custom rule that differs); found as a TypeError in
    ``fit(optimizer=optax.lbfgs())`` with float32 data and restarts."""
    rng = np.random.default_rng(3)
    B = rng.standard_normal((6, 6))
    K = jnp.asarray(B @ B.T + np.eye(6), jnp.float32)
    noise = jnp.full(6, 0.3, jnp.float64)
    r = jnp.asarray(rng.standard_normal(6), jnp.float32)
    value, tangent = jax.jvp(
        lambda s, r: noisy_gaussian_log_density(K, s * noise, r), (1.0, r), (1.0, r)
    )
    assert value.dtype == tangent.dtype == jnp.float32
    # d/ds at s = 1 plus the r-direction derivative, in float64 by central differences.
    K64 = np.asarray(K, np.float64)

    def f(s, t):
        C = K64 + np.diag(s * np.asarray(noise))
        return scipy.stats.multivariate_normal(np.zeros(6), C).logpdf(np.asarray(r, np.float64) * t)

    h = 1e-6
    expected = (f(1 + h, 1 + h) - f(1 - h, 1 - h)) / (2 * h)
    np.testing.assert_allclose(tangent, expected, rtol=1e-4)
