"""SVGP with non-Gaussian likelihoods: the Gaussian path against its closed form, quadrature
expected log-likelihoods against adaptive quadrature, predict_y, errors and a trained classifier."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import integrate, special, stats

from gpjax_lite import likelihoods, sparse
from gpjax_lite.kernels import RBF
from gpjax_lite.parameters import trainable_mask


def _problem(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, (n, 2))
    latent = np.sin(1.3 * X[:, 0]) + 0.5 * X[:, 1]
    return X, latent, rng


def _q(m, seed=1):
    rng = np.random.default_rng(seed)
    q_sqrt = np.tril(0.2 * rng.standard_normal((m, m)), -1) + np.diag(rng.uniform(0.3, 1.0, m))
    return rng.standard_normal(m), q_sqrt


def _numpy_marginals(model, X):
    """``q(f(x))`` moments written out in NumPy (whitened SVGP, Hensman et al. 2015)."""
    Z = np.asarray(model.inducing_inputs)
    variance, ell = float(model.kernel.variance), float(model.kernel.lengthscale)

    def k(A, B):
        return variance * np.exp(-0.5 * np.sum((A[:, None] - B[None]) ** 2, -1) / ell**2)

    Kzz = k(Z, Z)
    L = np.linalg.cholesky(Kzz + 1e-8 * np.mean(np.diag(Kzz)) * np.eye(len(Z)))
    A = np.linalg.solve(L, k(Z, X))
    S = np.asarray(model.q_sqrt) @ np.asarray(model.q_sqrt).T
    mean = A.T @ np.asarray(model.q_mu)
    var = variance - np.sum(A**2, 0) + np.sum(A * (S @ A), 0)
    return mean, var


def test_gaussian_default_equals_the_closed_form_and_an_explicit_gaussian_likelihood():
    X, latent, rng = _problem()
    y = latent + 0.3 * rng.standard_normal(len(latent))
    q_mu, q_sqrt = _q(6)
    default = sparse.SVGP(
        RBF(variance=1.2, lengthscale=0.8), X[:6], noise=0.1, q_mu=q_mu, q_sqrt=q_sqrt
    )
    explicit = sparse.SVGP(
        RBF(variance=1.2, lengthscale=0.8),
        X[:6],
        likelihood=likelihoods.Gaussian(0.1),
        q_mu=q_mu,
        q_sqrt=q_sqrt,
    )
    mean, var = _numpy_marginals(default, X)
    closed_form = np.sum(-0.5 * np.log(2 * np.pi * 0.1) - 0.5 * ((y - mean) ** 2 + var) / 0.1)
    np.testing.assert_allclose(default.expected_log_likelihood(X, y), closed_form, rtol=1e-12)
    assert float(explicit.elbo(X, y)) == float(default.elbo(X, y))
    assert float(default.noise) == 0.1
    assert isinstance(sparse.SVGP(RBF(), X[:3]).likelihood, likelihoods.Gaussian)
    np.testing.assert_allclose(sparse.SVGP(RBF(), X[:3]).noise, 1e-2)
    # `fixed=lambda m: m.noise` still selects the noise, now the Gaussian likelihood's leaf.
    mask = trainable_mask(default, fixed=lambda m: m.noise)
    assert not mask.likelihood.noise and mask.kernel.lengthscale
    # include_noise and predict_y agree for Gaussian observations.
    np.testing.assert_allclose(
        default.predict(X[:5], include_noise=True), default.predict_y(X[:5]), rtol=1e-14
    )


def _quad_expectation(log_p, mean, var):
    sd = np.sqrt(var)
    return integrate.quad(
        lambda f: log_p(f) * stats.norm.pdf(f, mean, sd),
        mean - 14 * sd,
        mean + 14 * sd,
        epsabs=1e-13,
        epsrel=1e-12,
        limit=400,
    )[0]


@pytest.mark.parametrize("case", ["probit", "logit", "poisson", "student"])
def test_expected_log_likelihood_matches_adaptive_quadrature(case):
    X, latent, rng = _problem(n=12)
    if case in ("probit", "logit"):
        likelihood = likelihoods.Bernoulli(case)
        y = (latent > 0).astype(float)
        cdf_log = special.log_ndtr if case == "probit" else special.log_expit
        log_p = lambda f, yi: cdf_log((2 * yi - 1) * f)
        rtol = 1e-8
    elif case == "poisson":
        likelihood = likelihoods.Poisson()
        y = rng.poisson(np.exp(latent)).astype(float)
        log_p = lambda f, yi: stats.poisson.logpmf(yi, np.exp(f))
        rtol = 1e-9
    else:
        likelihood = likelihoods.StudentT(df=5.0, scale=0.8)
        y = latent + rng.standard_t(5.0, len(latent))
        log_p = lambda f, yi: stats.t.logpdf(yi, 5.0, loc=f, scale=0.8)
        rtol = 1e-5
    q_mu, q_sqrt = _q(5)
    model = sparse.SVGP(
        RBF(variance=1.5, lengthscale=1.1),
        X[:5] + 0.1,
        likelihood=likelihood,
        q_mu=q_mu,
        q_sqrt=q_sqrt,
    )
    mean, var = _numpy_marginals(model, X)
    np.testing.assert_allclose(model.predict(X), (mean, var), rtol=1e-9, atol=1e-12)
    reference = sum(
        _quad_expectation(lambda f, yi=yi: log_p(f, yi), m, v) for yi, m, v in zip(y, mean, var)
    )
    np.testing.assert_allclose(model.expected_log_likelihood(X, y), reference, rtol=rtol)
    kl = float(model.kl())
    np.testing.assert_allclose(model.elbo(X, y), reference - kl, rtol=rtol)
    # Minibatch scaling is unchanged: (n / b) Σ_batch - KL.
    np.testing.assert_allclose(
        model.elbo(X[:4], y[:4], num_data=12),
        3.0 * float(model.expected_log_likelihood(X[:4], y[:4])) - kl,
        rtol=1e-12,
    )


@pytest.mark.parametrize("case", ["logit", "student"])
def test_elbo_gradient_matches_finite_differences(case):
    X, latent, rng = _problem(n=20)
    q_mu, q_sqrt = _q(4)
    if case == "logit":
        y = (latent > 0).astype(float)
    else:
        y = latent + 0.3 * rng.standard_normal(20)

    def elbo(ell=0.9, q0=q_mu[0], df=4.0):
        likelihood = (
            likelihoods.Bernoulli("logit")
            if case == "logit"
            else likelihoods.StudentT(df=df, scale=0.5)
        )
        model = sparse.SVGP(
            RBF(variance=1.0, lengthscale=ell),
            X[:4],
            likelihood=likelihood,
            q_mu=np.concatenate([[q0], q_mu[1:]]),
            q_sqrt=q_sqrt,
        )
        return model, float(model.elbo(X, y))

    grad = jax.grad(lambda m: m.elbo(X, y))(elbo()[0])
    h = 1e-6
    fd = {
        "ell": (elbo(ell=0.9 + h)[1] - elbo(ell=0.9 - h)[1]) / (2 * h),
        "q0": (elbo(q0=q_mu[0] + h)[1] - elbo(q0=q_mu[0] - h)[1]) / (2 * h),
    }
    np.testing.assert_allclose(grad.kernel.lengthscale, fd["ell"], rtol=1e-6)
    np.testing.assert_allclose(grad.q_mu[0], fd["q0"], rtol=1e-6)
    if case == "student":
        fd_df = (elbo(df=4.0 + h)[1] - elbo(df=4.0 - h)[1]) / (2 * h)
        np.testing.assert_allclose(grad.likelihood.df, fd_df, rtol=1e-6)


def test_predict_stays_latent_and_predict_y_applies_the_likelihood():
    X, _, _ = _problem()
    q_mu, q_sqrt = _q(6)
    model = sparse.SVGP(RBF(), X[:6], likelihood=likelihoods.Bernoulli(), q_mu=q_mu, q_sqrt=q_sqrt)
    mean, var = model.predict(X)
    p, var_y = model.predict_y(X)
    np.testing.assert_allclose(p, stats.norm.cdf(mean / np.sqrt(1 + var)), rtol=1e-12)
    np.testing.assert_allclose(var_y, p * (1 - p), rtol=1e-12)
    counts = sparse.SVGP(RBF(), X[:6], likelihood=likelihoods.Poisson(), q_mu=q_mu, q_sqrt=q_sqrt)
    np.testing.assert_allclose(counts.predict_y(X)[0], np.exp(mean + var / 2), rtol=1e-12)
    with pytest.raises(ValueError, match="include_noise"):
        model.predict(X, include_noise=True)


def test_errors():
    X, latent, _ = _problem(n=10)
    with pytest.raises(ValueError, match="`noise`.*`likelihood`"):
        sparse.SVGP(RBF(), X[:3], noise=0.1, likelihood=likelihoods.Poisson())
    with pytest.raises(TypeError, match="`likelihood`"):
        sparse.SVGP(RBF(), X[:3], likelihood="bernoulli")
    with pytest.raises(ValueError, match="`noise`"):
        sparse.SVGP(RBF(), X[:3], likelihood=likelihoods.Gaussian(np.ones(3)))
    model = sparse.SVGP(RBF(), X[:3], likelihood=likelihoods.Bernoulli())
    y_bad = latent  # real values are not in {0, 1}
    for call in (
        lambda: model.elbo(X, y_bad),
        lambda: model.expected_log_likelihood(X, y_bad),
        lambda: sparse.fit_svgp(model, X, y_bad, batch_size=4, num_steps=1, key=jax.random.key(0)),
    ):
        with pytest.raises(ValueError, match="`y`"):
            call()
    with pytest.raises(TypeError, match="Gaussian"):
        model.with_optimal_variational(X, (latent > 0).astype(float))
    with pytest.raises(AttributeError, match="noise"):
        model.noise  # noqa: B018


def test_bernoulli_svgp_trained_with_fit_svgp_classifies_a_toy_set():
    rng = np.random.default_rng(5)
    X = rng.uniform(-3.0, 3.0, (600, 2))
    y = (np.sin(1.3 * X[:, 0]) + 0.5 * X[:, 1] > 0).astype(float)
    train, test = slice(0, 400), slice(400, None)
    Z = X[:16]
    model = sparse.SVGP(
        RBF(variance=1.0, lengthscale=1.0), Z, likelihood=likelihoods.Bernoulli("logit")
    )
    before = float(model.elbo(X[train], y[train]))
    result = sparse.fit_svgp(
        model,
        X[train],
        y[train],
        batch_size=64,
        num_steps=600,
        optimizer=optax.adam(0.03),
        key=jax.random.key(1),
    )
    assert int(result.nonfinite_step) == -1
    assert float(result.model.elbo(X[train], y[train])) > before + 50.0
    p, _ = result.model.predict_y(X[test])
    accuracy = np.mean((np.asarray(p) > 0.5) == (y[test] == 1))
    assert accuracy > 0.9, accuracy


def test_float32_bernoulli_elbo():
    X, latent, _ = _problem()
    X32 = X.astype(np.float32)
    y32 = (latent > 0).astype(np.float32)
    model = sparse.SVGP(RBF(), X32[:5], likelihood=likelihoods.Bernoulli("logit"))
    value = model.elbo(X32, y32)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(
        value,
        sparse.SVGP(RBF(), X[:5], likelihood=likelihoods.Bernoulli("logit")).elbo(X, latent > 0),
        rtol=1e-5,
    )
