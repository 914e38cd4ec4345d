"""The shared references of ``tests/oracle.py`` against second, differently written forms.

An oracle that is wrong makes every test that uses it wrong in the same way,
so each function is checked here against another route to the same number:

* the Matérn kernels against the general Matérn form with SciPy's modified
  Bessel function (Rasmussen & Williams 2006, eq. 4.14);
* RBF as the ``alpha → ∞`` limit of the rational quadratic (R&W eq. 4.19), and
  the periodic kernel against a scalar loop;
* the log marginal likelihood against ``scipy.stats.multivariate_normal``;
* the posterior against ``numpy.linalg.solve`` on the textbook formulas;
* the RBF negative log marginal likelihood gradient against finite differences.
"""

import math

import numpy as np
import oracle
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

RNG = np.random.default_rng(7)
X = RNG.uniform(-2.0, 2.0, size=(9, 3))
Y = RNG.uniform(-2.0, 2.0, size=(6, 3))
LS = np.array([0.7, 1.3, 2.1])


def general_matern(r, nu, variance):
    """``variance · 2^(1-ν)/Γ(ν) · s^ν K_ν(s)`` with ``s = √(2ν) r``; ``variance`` at r = 0."""
    s = np.sqrt(2 * nu) * r
    safe = np.where(s > 0, s, 1.0)
    scale = variance * 2 ** (1 - nu) / scipy.special.gamma(nu)
    value = scale * safe**nu * scipy.special.kv(nu, safe)
    return np.where(s > 0, value, variance)


@pytest.mark.parametrize("name, nu", [("matern12", 0.5), ("matern32", 1.5), ("matern52", 2.5)])
def test_matern_against_bessel_form(name, nu):
    got = getattr(oracle, name)(X, Y, 1.7, LS)
    r = np.sqrt(np.sum(((X[:, None, :] - Y[None, :, :]) / LS) ** 2, axis=-1))
    np.testing.assert_allclose(got, general_matern(r, nu, 1.7), rtol=1e-12)
    np.testing.assert_allclose(np.diag(getattr(oracle, name)(X, X, 1.7, LS)), 1.7, rtol=1e-15)


def test_rbf_is_the_rational_quadratic_limit():
    # (1 + x/α)^(-α) = exp(-x + x²/(2α) - ...) with x = r²/2: relative gap below x²/α,
    # plus round-off in log(1 + x/α) amplified by α.
    alpha = 1e6
    r2 = oracle.scaled_distance(X, Y, LS) ** 2
    gap = np.abs(oracle.rational_quadratic(X, Y, 0.9, LS, alpha) / oracle.rbf(X, Y, 0.9, LS) - 1)
    assert np.all(gap <= (r2 / 2) ** 2 / alpha + 1e-9)
    assert np.max(gap) > 0  # the bound is not vacuous: the two forms differ
    # alpha = 1: the Cauchy form 1 / (1 + r²/2).
    cauchy = oracle.rational_quadratic(X, Y, 1.0, LS, 1.0)
    np.testing.assert_allclose(cauchy, 1 / (1 + r2 / 2), rtol=1e-14)


def test_periodic_cosine_and_dot_products_against_scalar_loops():
    period, variance = 1.3, 0.8
    P = oracle.periodic(X, Y, variance, LS, period)
    C = oracle.cosine(X[:, :1], Y[:, :1], variance, period)
    Q = oracle.polynomial(X, Y, variance, 0.5, 3)
    for i in range(len(X)):
        for j in range(len(Y)):
            s = sum(
                math.sin(math.pi * (X[i, k] - Y[j, k]) / period) ** 2 / LS[k] ** 2 for k in range(3)
            )
            assert P[i, j] == pytest.approx(variance * math.exp(-2 * s), rel=1e-13)
            c = variance * math.cos(2 * math.pi * abs(X[i, 0] - Y[j, 0]) / period)
            assert C[i, j] == pytest.approx(c, rel=1e-12, abs=1e-14)
            dot = sum(X[i, k] * Y[j, k] for k in range(3))
            assert Q[i, j] == pytest.approx(variance * (dot + 0.5) ** 3, rel=1e-12)
    np.testing.assert_allclose(oracle.linear(X, Y, 2.0), 2.0 * X @ Y.T, rtol=1e-15)
    assert np.all(oracle.constant(X, Y, 1.4) == 1.4) and oracle.constant(X, Y).shape == (9, 6)
    np.testing.assert_array_equal(oracle.white(X, variance=0.3), 0.3 * np.eye(9))
    np.testing.assert_array_equal(oracle.white(X, X, variance=0.3), np.zeros((9, 9)))


def test_one_dimensional_inputs_are_one_column():
    x, z = X[:, 0], Y[:, 0]
    as_columns = oracle.rbf(x[:, None], z[:, None], 1.1, 0.6)
    np.testing.assert_array_equal(oracle.rbf(x, z, 1.1, 0.6), as_columns)
    assert oracle.matern52(x, z).shape == (9, 6)


@pytest.mark.parametrize("noise", [0.1, "hetero"])
def test_log_marginal_likelihood_against_scipy(noise):
    K = oracle.matern52(X, X, 1.2, LS)
    y = RNG.normal(size=9)
    noise = RNG.uniform(0.05, 0.3, 9) if noise == "hetero" else noise
    mean = np.linspace(-0.5, 0.5, 9)
    cov = K + np.diag(np.broadcast_to(noise, (9,)))
    expected = scipy.stats.multivariate_normal(mean, cov).logpdf(y)
    got = oracle.log_marginal_likelihood(K, y, noise, mean)
    assert got == pytest.approx(expected, rel=1e-13)
    with pytest.raises(np.linalg.LinAlgError):
        oracle.log_marginal_likelihood(-np.eye(3), np.zeros(3))


def test_posterior_against_textbook_solves():
    y = RNG.normal(size=9)
    K, Ks, Kss = oracle.rbf(X, X, 1.3, LS), oracle.rbf(X, Y, 1.3, LS), oracle.rbf(Y, Y, 1.3, LS)
    A = K + 0.05 * np.eye(9)
    mean, cov = oracle.posterior(K, Ks, Kss, y, 0.05, mean=0.4, mean_test=0.4)
    np.testing.assert_allclose(mean, 0.4 + Ks.T @ np.linalg.solve(A, y - 0.4), rtol=1e-10)
    np.testing.assert_allclose(cov, Kss - Ks.T @ np.linalg.solve(A, Ks), rtol=1e-9, atol=1e-12)
    assert cov.shape == (6, 6) and np.all(np.diag(cov) > 0)


def test_rbf_nll_gradient_against_finite_differences():
    x = RNG.uniform(-3.0, 3.0, 20)
    y = np.sin(2 * x) + 0.1 * RNG.normal(size=20)
    theta = np.log([0.8, 0.7, 0.05])
    nll, grad = oracle.rbf_nll_and_grad(theta, x, y)
    nll_only = lambda t: oracle.rbf_nll_and_grad(t, x, y)[0]  # noqa: E731
    numeric = scipy.optimize.approx_fprime(theta, nll_only, 1e-7)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-6)
    K = oracle.rbf(x, x, 0.8, 0.7)
    assert nll == pytest.approx(-oracle.log_marginal_likelihood(K, y, 0.05), rel=1e-13)
