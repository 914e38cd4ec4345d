"""gpjax_lite.Posterior: exact predictions against the textbook formulas.

Reference (Rasmussen & Williams, eqs. 2.23-2.24), written with ``numpy.linalg.solve``::

    mean(X*) = m(X*) + K*ᵀ (K + Σ)⁻¹ (y - m(X)),
    cov(X*)  = K** - K*ᵀ (K + Σ)⁻¹ K*,

with Gram matrices from NumPy closed forms (independent of the library).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from oracle import matern32 as np_matern32
from oracle import periodic as np_periodic
from oracle import rbf as np_rbf

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite import GP, Posterior
from gpjax_lite.means import Constant

N, D, M = 12, 2, 7
RNG = np.random.default_rng(11)
X = RNG.uniform(-2.0, 2.0, size=(N, D))
Y = np.sin(X[:, 0]) + 0.5 * np.cos(2 * X[:, 1]) + 0.1 * RNG.normal(size=N)
XT = RNG.uniform(-2.5, 2.5, size=(M, D))
HETERO = RNG.uniform(0.05, 0.3, size=N)

#: The session's float dtype: float64, or float32 when 64-bit JAX is off
#: (``JAX_ENABLE_X64=0``, see conftest.py). NumPy inputs are converted to it.
FLOAT = jnp.result_type(float)
X64 = FLOAT == jnp.float64


def tol(x64, x32):
    """A tolerance: ``x64`` in float64; ``x32`` in float32 mode, set by round-off
    (eps32 ≈ 1.2e-7 times the conditioning of these small, well-posed problems)."""
    return x64 if X64 else x32


class LinearMean(eqx.Module):
    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return jnp.dot(self.w, x) + self.b


W, B0 = np.array([0.5, -1.0]), 0.3

KERNELS = [
    (
        "rbf-ard",
        lambda: gk.RBF(variance=1.3, lengthscale=jnp.array([0.6, 1.5])),
        lambda A, B: np_rbf(A, B, 1.3, [0.6, 1.5]),
    ),
    (
        "matern32",
        lambda: gk.Matern32(variance=0.7, lengthscale=0.9),
        lambda A, B: np_matern32(A, B, 0.7, 0.9),
    ),
    (
        "periodic+rbf",
        lambda: gk.Periodic(period=2.0, lengthscale=0.8) + gk.RBF(variance=0.5, lengthscale=2.0),
        lambda A, B: np_periodic(A, B, 1.0, 0.8, 2.0) + np_rbf(A, B, 0.5, 2.0),
    ),
]
MEANS = {
    "constant": (lambda: Constant(0.7), lambda A: np.full(len(A), 0.7)),
    "user-linear": (lambda: LinearMean(jnp.asarray(W), jnp.asarray(B0)), lambda A: A @ W + B0),
}
NOISES = {"scalar": 0.1, "per-point": HETERO}


def textbook(np_gram, np_mean, noise, X_=X, y=Y, Xt=XT):
    A = np_gram(X_, X_) + np.diag(np.broadcast_to(noise, (len(y),)))
    Ks = np_gram(X_, Xt)
    mean = np_mean(Xt) + Ks.T @ np.linalg.solve(A, y - np_mean(X_))
    cov = np_gram(Xt, Xt) - Ks.T @ np.linalg.solve(A, Ks)
    return mean, cov


# ------------------------------------------------------------------ formulas
@pytest.mark.parametrize("noise_kind", list(NOISES))
@pytest.mark.parametrize("mean_kind", list(MEANS))
@pytest.mark.parametrize("kid, make_kernel, np_gram", KERNELS, ids=[k[0] for k in KERNELS])
def test_posterior_matches_textbook(kid, make_kernel, np_gram, mean_kind, noise_kind):
    make_mean, np_mean = MEANS[mean_kind]
    noise = NOISES[noise_kind]
    post = GP(make_kernel(), mean=make_mean(), noise=noise).condition(X, Y)
    assert isinstance(post, Posterior)
    mean, cov = textbook(np_gram, np_mean, noise)
    dist = post(XT)
    assert isinstance(dist, gl.MultivariateNormal)
    assert dist.mean.shape == (M,) and dist.covariance().shape == (M, M)
    tol = dict(rtol=1e-9, atol=1e-11) if X64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dist.mean), mean, **tol)
    np.testing.assert_allclose(np.asarray(dist.covariance()), cov, **tol)
    np.testing.assert_allclose(np.asarray(dist.variance()), np.diag(cov), **tol)
    p_mean, p_var = post.predict(XT)
    np.testing.assert_allclose(np.asarray(p_mean), mean, **tol)
    np.testing.assert_allclose(np.asarray(p_var), np.diag(cov), **tol)
    # An array include_noise adds each test point's own noise variance.
    test_noise = np.linspace(0.01, 0.07, M)
    _, var_y = post.predict(XT, include_noise=test_noise)
    np.testing.assert_allclose(np.asarray(var_y), np.diag(cov) + test_noise, **tol)
    if noise_kind == "scalar":
        _, var_y = post.predict(XT, include_noise=True)
        np.testing.assert_allclose(np.asarray(var_y), np.diag(cov) + noise, **tol)
    else:
        with pytest.raises(ValueError, match="include_noise"):
            post.predict(XT, include_noise=True)


def test_posterior_stores_one_factorisation():
    gp = GP(gk.Matern32(variance=0.7, lengthscale=0.9), mean=Constant(0.7), noise=HETERO)
    post = gp.condition(X, Y)
    A = np_matern32(X, X, 0.7, 0.9) + np.diag(HETERO)
    L = np.asarray(post.cholesky_factor)
    np.testing.assert_allclose(
        L, np.linalg.cholesky(A), rtol=tol(1e-12, 1e-5), atol=tol(1e-14, 1e-6)
    )
    np.testing.assert_allclose(
        np.asarray(post.alpha), np.linalg.solve(A, Y - 0.7), rtol=tol(1e-10, 1e-4)
    )
    assert bool(post.is_valid())
    assert post.prior is gp
    # 1-D test inputs work for 1-D training inputs
    post1 = GP(gk.RBF()).condition(X[:, 0], Y)
    m1, v1 = post1.predict(XT[:, 0])
    m2, v2 = post1.predict(XT[:, :1])
    np.testing.assert_array_equal(np.asarray(m1), np.asarray(m2))
    np.testing.assert_array_equal(np.asarray(v1), np.asarray(v2))


def test_include_noise_argument_checks():
    post = GP(gk.RBF(), noise=0.1).condition(X, Y)
    with pytest.raises(ValueError, match="include_noise"):
        post.predict(XT, include_noise=np.full(M + 1, 0.1))
    with pytest.raises(ValueError, match="include_noise"):
        post.predict(XT, include_noise=-np.full(M, 0.1))
    # A NumPy bool is a flag, not a noise variance of 1.0.
    _, v_true = post.predict(XT, include_noise=True)
    _, v_np = post.predict(XT, include_noise=np.bool_(True))
    np.testing.assert_array_equal(np.asarray(v_np), np.asarray(v_true))
    _, v_false = post.predict(XT, include_noise=np.bool_(False))
    np.testing.assert_allclose(np.asarray(v_true) - np.asarray(v_false), 0.1, rtol=tol(1e-12, 1e-6))
    # A boolean array (or a traced bool under jit) is refused rather than read as 1.0.
    with pytest.raises(TypeError, match="include_noise"):
        post.predict(XT, include_noise=np.ones(M, dtype=bool))
    with pytest.raises(TypeError, match="include_noise"):
        jax.jit(post.predict)(XT, True)
    # Marked static, it works under jit.
    jitted = jax.jit(post.predict, static_argnames="include_noise")
    np.testing.assert_allclose(
        np.asarray(jitted(XT, include_noise=True)[1]), np.asarray(v_true), rtol=tol(1e-12, 1e-6)
    )


# ------------------------------------------------------------- interpolation
@pytest.mark.x64  # noise 1e-8 is below float32 resolution (eps32 ≈ 1.2e-7 of the variance 1)
@given(data=st.data())
def test_tiny_noise_interpolates(data):
    """Noise 1e-8 (float64): the mean reproduces y, the latent variance there is ≈ σ².

    Points sit on a grid of spacing ≥ 1 lengthscale, so λ_min(K) ≳ 0.03 and the
    residual y - mean = σ² (K + σ²I)⁻¹ (y - m) is ≲ 3e-7 ‖y - m‖. In exact
    arithmetic var_i = σ² - σ⁴ [(K + σ²I)⁻¹]_ii ∈ [σ²(1 - 1e-6), σ²].
    """
    n = 6  # fixed, so every example reuses one compiled program per kernel
    grid = data.draw(
        st.lists(st.integers(0, 40), min_size=n, max_size=n, unique=True), label="grid"
    )
    spacing = data.draw(st.floats(1.0, 2.0), label="spacing")
    y = np.array(data.draw(st.lists(st.floats(-5, 5), min_size=n, max_size=n), label="y"))
    c = data.draw(st.floats(-2, 2), label="mean")
    kernel = data.draw(st.sampled_from(["rbf", "matern52"]), label="kernel")
    x = np.asarray(grid, dtype=float) * spacing
    k = gk.RBF(variance=1.0) if kernel == "rbf" else gk.Matern52(variance=1.0)
    gp = GP(k, mean=Constant(c), noise=1e-8)
    mean, var = _fit_predict_at_train(gp, x, y)
    np.testing.assert_allclose(np.asarray(mean), y, rtol=0, atol=1e-5 * (1 + np.max(np.abs(y - c))))
    var = np.asarray(var)
    assert np.all(var <= 1e-8 * (1 + 1e-6) + 1e-13), var
    assert np.all(var >= 1e-8 * (1 - 1e-4)), var


@jax.jit
def _fit_predict_at_train(gp, x, y):
    return gp.condition(x, y).predict(x)


# ------------------------------------------------------- far from the data
@pytest.mark.parametrize("mean_kind", list(MEANS))
def test_far_from_data_returns_to_prior(mean_kind):
    make_mean, np_mean = MEANS[mean_kind]
    ls = 0.5
    gp = GP(gk.RBF(variance=1.3, lengthscale=ls), mean=make_mean(), noise=0.01)
    post = gp.condition(X, Y)
    # 100 lengthscales beyond the data in both columns: k(x, x*) = 1.3·exp(-10⁴) = 0.
    far = X.max(0) + 100 * ls + (XT - XT.min(0))  # (M, 2), like the other test inputs
    m, v = post.predict(far)
    close = tol(1e-14, 1e-6)
    np.testing.assert_allclose(np.asarray(m), np_mean(far), rtol=close, atol=close)
    np.testing.assert_allclose(np.asarray(v), 1.3, rtol=tol(1e-14, 1e-6))
    # (in float32 the inputs ~50 are rounded by ~4e-6: an absolute error ~1e-6 in k)
    np.testing.assert_allclose(
        np.asarray(post(far).covariance()),
        np_rbf(far, far, 1.3, ls),
        rtol=tol(1e-13, 1e-5),
        atol=tol(0, 1e-5),
    )
    # Contrast: near the data the posterior has moved away from the prior.
    m_near, v_near = post.predict(X[:M])
    assert np.all(np.asarray(v_near) < 0.1)
    assert not np.allclose(np.asarray(m_near), np_mean(X[:M]), atol=1e-3)


# ---------------------------------------------------------------- sampling
def test_posterior_sample_moments():
    """20 000 posterior draws at the M = 7 test points; 5 standard errors per entry.

    SE of the mean: sqrt(C_ii / N); of covariance entries: sqrt((C_ii C_jj + C_ij²) / N).
    The 1e-8 relative jitter used for sampling is far below these tolerances.
    """
    Xs = XT
    post = GP(
        gk.RBF(variance=1.3, lengthscale=jnp.array([0.6, 1.5])), mean=Constant(0.7), noise=0.1
    ).condition(X, Y)
    mean, cov = textbook(
        lambda A, B: np_rbf(A, B, 1.3, [0.6, 1.5]), lambda A: np.full(len(A), 0.7), 0.1, Xt=Xs
    )
    n_draws = 20_000
    s = np.asarray(post.sample(jax.random.key(1), Xs, n_draws))
    assert s.shape == (n_draws, M)
    assert post.sample(jax.random.key(1), Xs).shape == (1, M)
    var = np.diag(cov)
    assert np.all(np.abs(s.mean(0) - mean) <= 5 * np.sqrt(var / n_draws))
    se = np.sqrt((np.outer(var, var) + cov**2) / n_draws)
    assert np.all(np.abs(np.cov(s, rowvar=False) - cov) <= 5 * se)


def test_float32_posterior_sampling_on_a_dense_grid():
    """The classic plot: 10 observations, 50 test points, float32.

    The posterior covariance k** - VᵀV carries round-off ~eps32 · prior variance
    (1e-7) while its true small eigenvalues are ≪ that, so it needs jitter on the
    *prior* variance scale (default 1e-4 in float32); a jitter relative to the
    posterior variances (~1e-4 here) would be ~1e-8, too small.
    (Compiled once; under jit a failed factorisation shows up as NaN draws.)
    """
    x = np.linspace(0, 5, 10).astype(np.float32)
    y = np.sin(x)
    xt = np.linspace(-0.5, 5.5, 50).astype(np.float32)

    @jax.jit
    def run(gp, key):
        post = gp.condition(x, y)
        return post.predict(xt), post.sample(key, xt, 64), post(xt).sample(key, 64)

    gp = GP(gk.RBF(lengthscale=jnp.float32(1.0)), noise=jnp.float32(1e-4))
    (mean, var), *all_draws = run(gp, jax.random.key(0))
    for draws in all_draws:
        draws = np.asarray(draws)
        assert draws.shape == (64, 50) and draws.dtype == np.float32
        assert np.all(np.isfinite(draws))
        # within 6 sd of (variance + jitter 1e-4) of the posterior mean
        assert np.all(
            np.abs(draws - np.asarray(mean)) <= 6 * np.sqrt(np.asarray(var) + 1e-4) + 1e-3
        )
    _, *no_jitter = run(GP(gp.kernel, noise=gp.noise, jitter=0.0), jax.random.key(0))
    assert not np.all(np.isfinite(np.asarray(no_jitter[0])))


# --------------------------------------------------------- transformations
def test_vmapped_condition_predict_equals_loop():
    rng = np.random.default_rng(5)
    Xb = rng.uniform(-2, 2, size=(16, N, D))
    yb = rng.normal(size=(16, N))
    gp = GP(gk.Matern32(variance=0.7, lengthscale=0.9), mean=Constant(0.7), noise=0.1)
    single = jax.jit(lambda a, b: gp.condition(a, b).predict(XT))
    mb, vb = jax.jit(jax.vmap(single))(Xb, yb)
    assert mb.shape == vb.shape == (16, M)
    same = dict(rtol=1e-12, atol=1e-14) if X64 else dict(rtol=1e-5, atol=1e-6)
    for i in range(16):
        m, v = single(Xb[i], yb[i])
        np.testing.assert_allclose(np.asarray(mb[i]), np.asarray(m), **same)
        np.testing.assert_allclose(np.asarray(vb[i]), np.asarray(v), **same)
    ref_mean, ref_cov = textbook(
        lambda A, B: np_matern32(A, B, 0.7, 0.9), lambda A: np.full(len(A), 0.7), 0.1, Xb[3], yb[3]
    )
    ref = dict(rtol=1e-9, atol=1e-11) if X64 else dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(mb[3]), ref_mean, **ref)
    np.testing.assert_allclose(np.asarray(vb[3]), np.diag(ref_cov), **ref)


def test_posterior_through_jit_and_as_pytree():
    gp = GP(gk.RBF(variance=1.3, lengthscale=jnp.array([0.6, 1.5])), noise=0.1)
    post = gp.condition(X, Y)
    m, v = post.predict(XT)
    # jit of the bound method
    same = tol(1e-12, 1e-5)
    jm, jv = jax.jit(post.predict)(XT)
    np.testing.assert_allclose(np.asarray(jm), np.asarray(m), rtol=same)
    np.testing.assert_allclose(np.asarray(jv), np.asarray(v), rtol=same)
    # The posterior itself crosses a jit boundary (it is a pytree).
    post_j = jax.jit(lambda g: g.condition(X, Y))(gp)
    assert isinstance(post_j, Posterior)
    np.testing.assert_allclose(
        np.asarray(post_j(XT).covariance()),
        np.asarray(post(XT).covariance()),
        rtol=same,
        atol=tol(0, 1e-7),
    )


def test_predictive_variance_is_clamped_non_negative():
    # Noise 1e-20 on well-separated inputs: at the training inputs the exact latent
    # variance is ~1e-20, and k(x, x) - vᵀv rounds to ±a few eps (±2e-16 in float64).
    x = np.arange(20.0)
    post = GP(gk.RBF(), noise=1e-20).condition(x, np.sin(x))
    _, v = post.predict(x)
    v = np.asarray(v)
    assert np.all(v >= 0.0) and np.all(v <= tol(1e-14, 1e-6))
    raw = np.asarray(post(x).variance())  # the covariance's diagonal is not clamped
    if not np.any(raw < 0):
        pytest.skip("round-off happened to stay non-negative on this platform")
    np.testing.assert_allclose(v, np.maximum(raw, 0.0), atol=tol(1e-15, 1e-6))
