"""gpjax_lite.MultivariateNormal: moments, log density and sampling statistics.

Sampling tolerances. For ``N`` i.i.d. draws of ``N(μ, C)``:

* the sample mean's entry ``i`` has standard error ``sqrt(C_ii / N)``;
* the sample covariance's entry ``(i, j)`` has variance
  ``(C_ii C_jj + C_ij²) / N`` (Isserlis' theorem, to O(1/N²)).

Each check allows 5 standard errors. With a fixed key the tests are
deterministic; for a random key each entry would fail with probability
about 6e-7, so the 35 entries checked per test (n = 7) fail with probability < 3e-5.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
import scipy.stats

import gpjax_lite as gl
from gpjax_lite import MultivariateNormal
from gpjax_lite.linalg import default_jitter

N_DRAWS = 20_000
N_SE = 5.0

#: The session's float dtype: float64, or float32 when 64-bit JAX is off
#: (``JAX_ENABLE_X64=0``, see conftest.py). NumPy inputs are converted to it.
FLOAT = jnp.result_type(float)
X64 = FLOAT == jnp.float64


def tol(x64, x32):
    """A tolerance: ``x64`` in float64; ``x32`` in float32 mode, set by round-off."""
    return x64 if X64 else x32


def type_checked(request) -> bool:
    """Whether jaxtyping's runtime checker instruments gpjax_lite (the CI pass with
    ``--jaxtyping-packages=gpjax_lite,beartype.beartype``). An argument of the wrong
    *type* is then rejected by its annotation, with a ``jaxtyping.TypeCheckError``
    (a ``TypeError``) naming the parameter, before the library's own check runs."""
    return bool(request.config.getoption("jaxtyping_packages", None))


NDIM = 7  # the same n as the GP sampling tests, so the compiled random kernels are shared


def make_cov():
    A = np.random.default_rng(42).normal(size=(NDIM, NDIM))
    return A @ A.T / NDIM + 0.1 * np.eye(NDIM)


MEAN = np.linspace(-1.0, 2.0, NDIM)


def assert_moments(samples, mean, cov, n_se=N_SE):
    """Empirical mean/covariance of ``samples`` (N, n) within ``n_se`` standard errors."""
    samples = np.asarray(samples)
    N = samples.shape[0]
    var = np.diag(cov)
    se_mean = np.sqrt(var / N)
    err_mean = np.abs(samples.mean(0) - mean)
    assert np.all(err_mean <= n_se * se_mean), (err_mean / se_mean).max()
    se_cov = np.sqrt((np.outer(var, var) + cov**2) / N)
    err_cov = np.abs(np.cov(samples, rowvar=False) - cov)
    assert np.all(err_cov <= n_se * se_cov), (err_cov / se_cov).max()


def test_moments_accessors():
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    stored = lambda a: np.asarray(a, dtype=FLOAT)  # the inputs as held, in the session's dtype
    np.testing.assert_array_equal(np.asarray(d.mean), stored(MEAN))
    np.testing.assert_array_equal(np.asarray(d.covariance()), stored(make_cov()))
    np.testing.assert_array_equal(np.asarray(d.variance()), stored(np.diag(make_cov())))
    sd = np.sqrt(np.diag(make_cov()))
    np.testing.assert_allclose(np.asarray(d.stddev()), sd, rtol=tol(1e-15, 2e-7))


def test_sample_shape_and_moments():
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    samples = d.sample(jax.random.key(0), N_DRAWS)
    assert samples.shape == (N_DRAWS, NDIM)
    assert samples.dtype == FLOAT
    assert_moments(samples, MEAN, make_cov())
    # The tolerance is tight enough to catch a wrong factor (e.g. L instead of Lᵀ
    # would give L^T L ≠ C; a missing mean shift would miss by ≫ 5 SE).
    with pytest.raises(AssertionError):
        assert_moments(samples, MEAN + 0.1, make_cov())
    with pytest.raises(AssertionError):
        assert_moments(samples, MEAN, 1.1 * make_cov())


def test_sample_is_deterministic_in_key_and_one_sample_default():
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    a, b = d.sample(jax.random.key(3), 5), d.sample(jax.random.key(3), 5)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(np.asarray(a), np.asarray(d.sample(jax.random.key(4), 5)))
    assert d.sample(jax.random.key(0)).shape == (1, NDIM)
    # numpy integers are integers too
    assert d.sample(jax.random.key(0), np.int64(5)).shape == (5, NDIM)


@pytest.mark.parametrize("bad", [0, -2, 2.5, "3", None, True])
def test_bad_num_samples_raises(bad, request):
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    if type_checked(request) and not isinstance(bad, int):
        # not an int: the annotation `num_samples: int | np.integer` rejects it first
        with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'num_samples'"):
            d.sample(jax.random.key(0), bad)
        return
    # A value of the wrong type is a TypeError, a non-positive int a ValueError.
    error = ValueError if isinstance(bad, int) and not isinstance(bad, bool) else TypeError
    with pytest.raises(error, match="num_samples"):
        d.sample(jax.random.key(0), bad)


def test_log_prob_matches_scipy_and_adds_no_jitter():
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    ref = scipy.stats.multivariate_normal(MEAN, make_cov())
    for y in np.random.default_rng(0).normal(size=(3, NDIM)):
        value = d.log_prob(jnp.asarray(y))
        np.testing.assert_allclose(float(value), ref.logpdf(y), rtol=tol(1e-12, 1e-5))
    # A tiny covariance: any jitter of 1e-8 relative size would change this noticeably.
    tiny = 1e-10 * make_cov()
    d_tiny = MultivariateNormal(jnp.zeros(NDIM), jnp.asarray(tiny))
    y = 1e-5 * np.arange(float(NDIM))
    np.testing.assert_allclose(
        float(d_tiny.log_prob(jnp.asarray(y))),
        scipy.stats.multivariate_normal(np.zeros(NDIM), tiny).logpdf(y),
        rtol=tol(1e-10, 1e-5),
    )
    # jit works on the bound method, and on the module as an argument
    rtol = tol(1e-12, 1e-5)
    jitted = jax.jit(d.log_prob)(jnp.asarray(MEAN))
    np.testing.assert_allclose(float(jitted), ref.logpdf(MEAN), rtol=rtol)
    via_arg = jax.jit(lambda dist, y: dist.log_prob(y))(d, jnp.asarray(MEAN))
    np.testing.assert_allclose(float(via_arg), ref.logpdf(MEAN), rtol=rtol)


@pytest.mark.parametrize("shape", [(NDIM - 1,), (NDIM + 1,), (NDIM, 1), (1, NDIM), ()])
def test_log_prob_wrong_shape_raises(shape):
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    with pytest.raises(ValueError, match="`y`"):
        d.log_prob(jnp.zeros(shape))


def test_log_prob_non_finite_y_raises():
    d = MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    for bad in (np.nan, np.inf):
        y = MEAN.copy()
        y[2] = bad
        with pytest.raises(ValueError, match="`y`"):
            d.log_prob(jnp.asarray(y))


def test_log_prob_of_non_pd_covariance_raises_cholesky_error():
    C = make_cov()
    C[0, 1] = C[1, 0] = 10.0  # indefinite
    d = MultivariateNormal(jnp.zeros(NDIM), jnp.asarray(C))
    with pytest.raises(gl.CholeskyError, match="covariance"):
        d.log_prob(jnp.zeros(NDIM))


@pytest.mark.parametrize(
    "mean_shape, cov_shape", [((4,), (3, 3)), ((4, 1), (4, 4)), ((), (1, 1)), ((4,), (4,))]
)
def test_mismatched_construction_raises(mean_shape, cov_shape):
    with pytest.raises(ValueError, match="covariance_matrix"):
        MultivariateNormal(jnp.zeros(mean_shape), jnp.ones(cov_shape))


def test_singular_covariance_sampling_uses_jitter():
    # Rank-1 covariance on integer-valued points: the products are exact (in float32
    # too), so without jitter the second Cholesky pivot is exactly zero.
    x = np.arange(1.0, 13.0)
    C = np.outer(x, x)
    d = MultivariateNormal(jnp.zeros(12), jnp.asarray(C))
    samples = np.asarray(d.sample(jax.random.key(0), 5))
    assert samples.shape == (5, 12) and np.all(np.isfinite(samples))
    # The draws lie (almost exactly) on the line spanned by x: the jitter is
    # j · mean(diag C) (the dtype default j: 1e-8 in float64, 1e-4 in float32), so
    # the orthogonal part has std ~ sqrt(j · mean(x²)).
    jitter_sd = np.sqrt(default_jitter(FLOAT) * np.mean(x**2))
    proj = np.outer(samples @ x / (x @ x), x)
    assert np.max(np.abs(samples - proj)) < 6 * jitter_sd
    assert np.max(np.abs(samples)) > 100 * jitter_sd
    with pytest.raises(gl.CholeskyError, match="jitter"):
        MultivariateNormal(jnp.zeros(12), jnp.asarray(C), jitter=0.0).sample(jax.random.key(0), 1)


def test_jitter_scale_sets_the_absolute_jitter():
    # A zero covariance: a jitter relative to its own diagonal is zero and cannot help,
    # an explicit variance scale can (the GP posterior passes its prior's scale).
    zero = jnp.zeros((NDIM, NDIM))
    with pytest.raises(gl.CholeskyError):
        MultivariateNormal(jnp.zeros(NDIM), zero, jitter=1e-2).sample(jax.random.key(0), 5)
    d = MultivariateNormal(jnp.zeros(NDIM), zero, jitter=1e-2, jitter_scale=jnp.asarray(4.0))
    s = np.asarray(d.sample(jax.random.key(0), N_DRAWS))
    # sd sqrt(1e-2 · 4) = 0.2; the sample variance of N draws has SE var·sqrt(2/N)
    np.testing.assert_allclose(s.var(0), 0.04, rtol=5 * np.sqrt(2 / N_DRAWS))
    # log_prob ignores the jitter entirely
    d_ok = MultivariateNormal(
        jnp.asarray(MEAN), jnp.asarray(make_cov()), jitter=1e-2, jitter_scale=jnp.asarray(4.0)
    )
    np.testing.assert_allclose(
        float(d_ok.log_prob(jnp.asarray(MEAN))),
        scipy.stats.multivariate_normal(MEAN, make_cov()).logpdf(MEAN),
        rtol=tol(1e-12, 1e-5),
    )


def test_float32_sampling_dtype():
    d = MultivariateNormal(jnp.asarray(MEAN, jnp.float32), jnp.asarray(make_cov(), jnp.float32))
    s = d.sample(jax.random.key(1), 5)
    assert s.dtype == jnp.float32 and s.shape == (5, NDIM)


def test_is_a_pytree_through_vmap():
    means = jnp.stack([jnp.asarray(MEAN) + i for i in range(3)])
    covs = jnp.stack([jnp.asarray(make_cov()) * (i + 1) for i in range(3)])
    ys = jnp.zeros((3, NDIM))
    batched = jax.jit(jax.vmap(lambda m, c, y: MultivariateNormal(m, c).log_prob(y)))(
        means, covs, ys
    )
    expected = [
        scipy.stats.multivariate_normal(np.asarray(m), np.asarray(c)).logpdf(np.zeros(NDIM))
        for m, c in zip(means, covs)
    ]
    np.testing.assert_allclose(np.asarray(batched), expected, rtol=tol(1e-12, 1e-5))
    leaves = jax.tree_util.tree_leaves(
        MultivariateNormal(jnp.asarray(MEAN), jnp.asarray(make_cov()))
    )
    assert len(leaves) == 2 and all(eqx.is_array(x) for x in leaves)
