"""Likelihoods: log densities against scipy.stats, derivatives against finite differences,
predictive moments and expected log densities against adaptive quadrature (scipy.integrate.quad)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special, stats

from gpjax_lite import likelihoods as lk

DTYPES = [np.float64, np.float32]
RTOL = {np.float64: 1e-12, np.float32: 2e-6}


def _latent(rng, n=40, scale=3.0):
    return scale * rng.standard_normal(n)


def _cases(rng):
    """(likelihood, y, scipy log density of (f, y)) for every built-in likelihood."""
    f = _latent(rng)
    binary = rng.integers(0, 2, f.shape).astype(float)
    counts = rng.poisson(2.0, f.shape).astype(float)
    real = f + rng.standard_normal(f.shape)
    return f, [
        (lk.Bernoulli("probit"), binary, lambda f, y: stats.bernoulli.logpmf(y, stats.norm.cdf(f))),
        (lk.Bernoulli("logit"), binary, lambda f, y: stats.bernoulli.logpmf(y, special.expit(f))),
        (lk.Poisson(), counts, lambda f, y: stats.poisson.logpmf(y, np.exp(f))),
        (
            lk.StudentT(df=3.5, scale=0.7),
            real,
            lambda f, y: stats.t.logpdf(y, 3.5, loc=f, scale=0.7),
        ),
        (lk.Gaussian(noise=0.3), real, lambda f, y: stats.norm.logpdf(y, f, np.sqrt(0.3))),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
def test_log_prob_matches_scipy_stats(dtype):
    f, cases = _cases(np.random.default_rng(0))
    for likelihood, y, reference in cases:
        value = likelihood.log_prob(f.astype(dtype), y.astype(dtype))
        assert value.shape == f.shape and value.dtype == dtype, type(likelihood).__name__
        # float32: the density is evaluated from float32-rounded f and y.
        f_in, y_in = f.astype(dtype).astype(float), y.astype(dtype).astype(float)
        np.testing.assert_allclose(
            value,
            reference(f_in, y_in),
            rtol=RTOL[dtype],
            atol=10 * RTOL[dtype],
            err_msg=type(likelihood).__name__,
        )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("link", ["probit", "logit"])
def test_bernoulli_log_prob_is_accurate_at_extreme_latent_values(dtype, link):
    f = np.array([-40.0, -40.0, 40.0, 40.0, -8.0, 8.0])
    y = np.array([0.0, 1.0, 0.0, 1.0, 1.0, 0.0])
    z = (2 * y - 1) * f
    # Both references are accurate in the far tails (no 1 - Φ cancellation).
    reference = special.log_ndtr(z) if link == "probit" else special.log_expit(z)
    value = lk.Bernoulli(link).log_prob(f.astype(dtype), y.astype(dtype))
    assert np.all(np.isfinite(value))
    np.testing.assert_allclose(value, reference, rtol=RTOL[dtype], atol=1e-300)


def test_poisson_log_prob_is_finite_for_large_latent_values():
    f = np.array([-50.0, 30.0, 300.0])
    y = np.array([0.0, 5.0, 1e3])
    np.testing.assert_allclose(
        lk.Poisson().log_prob(f, y), stats.poisson.logpmf(y, np.exp(f)), rtol=1e-12
    )


@pytest.mark.parametrize("likelihood_index", range(5))
def test_derivatives_match_finite_differences(likelihood_index):
    rng = np.random.default_rng(1)
    f, cases = _cases(rng)
    likelihood, y, _ = cases[likelihood_index]
    f = np.concatenate([f, [-12.0, 12.0]])
    y = np.concatenate([y, y[:2]])
    first, second = likelihood.log_prob_derivatives(jnp.asarray(f), jnp.asarray(y))
    h = 1e-5
    value = lambda g: np.asarray(likelihood.log_prob(g, y))
    fd_first = (value(f + h) - value(f - h)) / (2 * h)
    # The second derivative as the central difference of the (just checked) first one:
    # a second difference of log p itself loses too many digits where |log p| is large.
    slope = lambda g: np.asarray(likelihood.log_prob_derivatives(g, y)[0])
    fd_second = (slope(f + h) - slope(f - h)) / (2 * h)
    np.testing.assert_allclose(first, fd_first, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(second, fd_second, rtol=1e-6, atol=1e-8)
    # The closed forms agree with the base class's automatic differentiation.
    auto_first, auto_second = lk.Likelihood.log_prob_derivatives(
        likelihood, jnp.asarray(f), jnp.asarray(y)
    )
    np.testing.assert_allclose(first, auto_first, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(second, auto_second, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_bernoulli_derivatives_are_finite_in_the_far_tails(link):
    f = jnp.array([-40.0, -40.0, 40.0, 40.0])
    y = jnp.array([0.0, 1.0, 0.0, 1.0])
    first, second = lk.Bernoulli(link).log_prob_derivatives(f, y)
    assert np.all(np.isfinite(first)) and np.all(np.isfinite(second))
    # Where y disagrees with the sign of f, the slope is about |f| (probit) or 1 (logit).
    expected = 40.0 if link == "probit" else 1.0
    np.testing.assert_allclose(np.abs(np.asarray(first)[[1, 2]]), expected, rtol=1e-2)


def _gauss_expectation(fn, mean, variance):
    """E[fn(f)], f ~ N(mean, variance), by adaptive quadrature over ±14 standard deviations."""
    sd = np.sqrt(variance)
    value, _ = integrate.quad(
        lambda f: fn(f) * stats.norm.pdf(f, mean, sd),
        mean - 14 * sd,
        mean + 14 * sd,
        epsabs=1e-13,
        epsrel=1e-12,
        limit=400,
    )
    return value


MEANS = np.array([-6.0, -2.0, -0.3, 0.0, 1.0, 4.0])
VARIANCES = np.array([1e-3, 0.5, 2.0, 6.0, 12.0, 16.0])


@pytest.mark.parametrize("link", ["probit", "logit"])
def test_bernoulli_predict_matches_adaptive_quadrature_up_to_variance_16(link):
    mean, variance = np.meshgrid(MEANS, VARIANCES)
    mean, variance = mean.ravel(), variance.ravel()
    cdf = stats.norm.cdf if link == "probit" else special.expit
    reference = np.array([_gauss_expectation(cdf, m, v) for m, v in zip(mean, variance)])
    p, var_y = lk.Bernoulli(link).predict(mean, variance)
    np.testing.assert_allclose(p, reference, rtol=0, atol=1e-6)
    np.testing.assert_allclose(var_y, reference * (1 - reference), rtol=0, atol=2e-6)


def test_logit_predict_node_count_is_what_makes_it_accurate():
    """The documented constant matters: a 20-node rule misses the 1e-6 target at variance 16."""
    reference = _gauss_expectation(special.expit, 1.0, 16.0)
    coarse = lk.gauss_hermite_expectation(jax.nn.sigmoid, jnp.array([1.0]), jnp.array([16.0]), 20)
    fine = lk.gauss_hermite_expectation(
        jax.nn.sigmoid, jnp.array([1.0]), jnp.array([16.0]), lk.NUM_PREDICT_NODES
    )
    assert abs(float(coarse[0]) - reference) > 1e-6
    assert abs(float(fine[0]) - reference) < 1e-7


def test_poisson_predict_matches_quadrature_moments():
    mean = np.array([-1.0, 0.0, 1.5, 2.0])
    variance = np.array([0.1, 1.0, 0.5, 2.0])
    rate, var_y = lk.Poisson().predict(mean, variance)
    for m, v, r, vy in zip(mean, variance, rate, var_y):
        first = _gauss_expectation(np.exp, m, v)
        second = _gauss_expectation(lambda f: np.exp(f) + np.exp(2 * f), m, v)  # E[y²|f] = λ + λ²
        np.testing.assert_allclose(r, first, rtol=1e-9)
        np.testing.assert_allclose(vy, second - first**2, rtol=1e-8)


def test_student_t_and_gaussian_predict():
    mean, variance = np.array([0.5, -1.0]), np.array([0.2, 3.0])
    m, v = lk.StudentT(df=5.0, scale=0.5).predict(mean, variance)
    np.testing.assert_allclose(m, mean)
    np.testing.assert_allclose(v, variance + stats.t.var(5.0, scale=0.5), rtol=1e-12)
    _, v_heavy = lk.StudentT(df=2.0).predict(mean, variance)
    assert np.all(np.isinf(v_heavy))
    m, v = lk.Gaussian(noise=0.25).predict(mean, variance)
    np.testing.assert_allclose(m, mean)
    np.testing.assert_allclose(v, variance + 0.25, rtol=1e-15)


@pytest.mark.parametrize("likelihood_index", range(5))
def test_expected_log_prob_matches_adaptive_quadrature(likelihood_index):
    rng = np.random.default_rng(2)
    _, cases = _cases(rng)
    likelihood, y, reference_log_prob = cases[likelihood_index]
    y = y[:8]
    if isinstance(likelihood, lk.Bernoulli):
        # scipy.stats' Bernoulli log pmf underflows to -inf far out in the tails the
        # quadrature reaches; these forms do not.
        tail = special.log_ndtr if likelihood.link == "probit" else special.log_expit
        reference_log_prob = lambda f, y: tail((2 * y - 1) * f)
    mean = rng.normal(0.0, 1.5, y.shape)
    variance = rng.uniform(0.05, 4.0, y.shape)
    value = likelihood.expected_log_prob(jnp.asarray(y), jnp.asarray(mean), jnp.asarray(variance))
    reference = [
        _gauss_expectation(lambda f, yi=yi: reference_log_prob(f, yi), m, v)
        for yi, m, v in zip(y, mean, variance)
    ]
    # Gaussian and Poisson are closed forms; the others use NUM_QUADRATURE_NODES nodes.
    # The Student-t log density has complex singularities at y - f = ±i·scale·√df, close
    # to the real axis when the latent spread is several times `scale`: the rule is
    # slower there (documented).
    rtol = 1e-4 if isinstance(likelihood, lk.StudentT) else 1e-8
    np.testing.assert_allclose(value, reference, rtol=rtol, atol=1e-9)


@pytest.mark.parametrize(
    "likelihood, bad",
    [
        (lk.Bernoulli(), [0.0, 0.5]),
        (lk.Bernoulli("logit"), [1.0, -1.0]),
        (lk.Bernoulli(), [1.0, np.nan]),
        (lk.Poisson(), [1.0, 2.5]),
        (lk.Poisson(), [-1.0, 0.0]),
        (lk.Poisson(), [np.inf, 0.0]),
        (lk.StudentT(), [0.0, np.nan]),
        (lk.Gaussian(), [np.inf, 1.0]),
    ],
)
def test_targets_outside_the_support_are_a_value_error_naming_y(likelihood, bad):
    with pytest.raises(ValueError, match="`y`"):
        likelihood.log_prob(jnp.zeros(2), jnp.asarray(bad))


def test_bad_settings_are_errors():
    with pytest.raises(ValueError, match="`link`"):
        lk.Bernoulli("tanh")
    with pytest.raises(ValueError, match="`df`"):
        lk.StudentT(df=-1.0)
    with pytest.raises(ValueError, match="`scale`"):
        lk.StudentT(scale=0.0)
    with pytest.raises(ValueError, match="`noise`"):
        lk.Gaussian(noise=np.nan)
    with pytest.raises(ValueError, match="`f`"):
        lk.Poisson().log_prob(jnp.zeros(3), jnp.zeros(2))


def test_integer_and_boolean_targets_are_accepted():
    f = jnp.array([0.3, -0.2])
    np.testing.assert_allclose(
        lk.Bernoulli().log_prob(f, np.array([True, False])),
        lk.Bernoulli().log_prob(f, jnp.array([1.0, 0.0])),
    )
    np.testing.assert_allclose(
        lk.Poisson().log_prob(f, np.array([3, 0])), lk.Poisson().log_prob(f, jnp.array([3.0, 0.0]))
    )


def test_likelihoods_are_pytrees_under_jit_and_grad():
    y = jnp.array([0.5, -1.0, 2.0])
    f = jnp.array([0.0, 0.1, 1.5])

    @jax.jit
    def total(likelihood):
        return jnp.sum(likelihood.log_prob(f, y))

    grad = jax.grad(total)(lk.StudentT(df=4.0, scale=1.2))
    h = 1e-6
    for name in ("df", "scale"):
        plus = lk.StudentT(**{"df": 4.0, "scale": 1.2, name: {"df": 4.0, "scale": 1.2}[name] + h})
        minus = lk.StudentT(**{"df": 4.0, "scale": 1.2, name: {"df": 4.0, "scale": 1.2}[name] - h})
        fd = (float(total(plus)) - float(total(minus))) / (2 * h)
        np.testing.assert_allclose(getattr(grad, name), fd, rtol=1e-6)
    # `link` is static: the two links are different pytree structures.
    assert jax.tree_util.tree_structure(lk.Bernoulli("probit")) != jax.tree_util.tree_structure(
        lk.Bernoulli("logit")
    )


def test_float32_stays_float32():
    f = jnp.asarray([0.2, -3.0], jnp.float32)
    y = jnp.asarray([1.0, 0.0], jnp.float32)
    for likelihood in (
        lk.Bernoulli("logit"),
        lk.Bernoulli(),
        lk.Poisson(),
        lk.StudentT(),
        lk.Gaussian(),
    ):
        assert likelihood.log_prob(f, y).dtype == jnp.float32
        mean, var = likelihood.predict(f, jnp.asarray([0.5, 2.0], jnp.float32))
        assert mean.dtype == jnp.float32 and var.dtype == jnp.float32
        ell = likelihood.expected_log_prob(y, f, jnp.asarray([0.5, 2.0], jnp.float32))
        assert ell.dtype == jnp.float32 and np.all(np.isfinite(ell))
