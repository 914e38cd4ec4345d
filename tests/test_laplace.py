"""LaplaceGP against scikit-learn's GaussianProcessClassifier, a NumPy transcription of
Rasmussen & Williams (2006) Algorithms 3.1/3.2, the exact GP (Gaussian likelihood) and
finite differences for every gradient.

The oracle comparisons are float64 (tolerances of 1e-8 to 1e-12) and carry the
``x64`` marker, so a float32 session skips them; ``test_float32`` checks the
float32 path against float64 (in the float64 session; in a float32 session
both of its sides are float32).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import naming
from scipy import special, stats

import gpjax_lite as gl
from gpjax_lite import kernels, likelihoods, means
from gpjax_lite.laplace import posterior_mode


# ------------------------------------------------------------------ problems
def binary_problem(n=40, d=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, (n, d))
    latent = np.sin(1.5 * X[:, 0]) + (0.5 * X[:, 1] if d > 1 else 0.0)
    y = (latent + 0.4 * rng.standard_normal(n) > 0).astype(float)
    return X, y


def count_problem(n=35, seed=1, scale=1.0):
    rng = np.random.default_rng(seed)
    X = np.sort(rng.uniform(0.0, 10.0, n))[:, None]
    rate = scale * np.exp(1.0 + np.sin(X[:, 0]))
    return X, rng.poisson(rate).astype(float)


def rbf_matrix(A, B, variance, lengthscale):
    sq = np.sum((A[:, None, :] - B[None, :, :]) ** 2, axis=-1)
    return variance * np.exp(-0.5 * sq / lengthscale**2)


# ------------------------------------------------- NumPy reference (R&W 3.1, 3.2)
def numpy_derivatives(kind, f, y):
    """log p(y|f) and its first two derivatives in f, written out for NumPy."""
    if kind == "probit":
        s = 2 * y - 1
        log_p = special.log_ndtr(s * f)
        r = np.exp(stats.norm.logpdf(f) - log_p)
        return log_p, s * r, -(r**2) - s * f * r
    if kind == "logit":
        p = special.expit(f)
        return special.log_expit((2 * y - 1) * f), y - p, -p * (1 - p)
    if kind == "poisson":
        return y * f - np.exp(f) - special.gammaln(y + 1), y - np.exp(f), -np.exp(f)
    raise ValueError(kind)


def numpy_laplace(K, y, kind, mean=0.0, tol=1e-12, max_iter=200):
    """R&W Algorithm 3.1 (with halving of a step that clearly lowers Ψ, as R&W §3.4.3
    advise), iterated until the step in f is below ``tol``; returns the mode, the
    approximate log marginal likelihood and what Algorithm 3.2 needs."""
    n = len(y)
    a = np.zeros(n)
    f = np.full(n, mean)

    def objective(a):
        f = K @ a + mean
        return -0.5 * a @ (f - mean) + np.sum(numpy_derivatives(kind, f, y)[0]), f

    psi, _ = objective(a)
    halvings = 0
    for _ in range(max_iter):
        _, d1, d2 = numpy_derivatives(kind, f, y)
        W = -d2
        sW = np.sqrt(W)
        L = np.linalg.cholesky(np.eye(n) + sW[:, None] * K * sW[None, :])
        b = W * (f - mean) + d1
        c = np.linalg.solve(L.T, np.linalg.solve(L, sW * (K @ b)))
        a_new = b - sW * c
        psi_new, f_new = objective(a_new)
        while not psi_new >= psi - 1e-9 * (1 + abs(psi)):
            a_new = 0.5 * (a + a_new)
            psi_new, f_new = objective(a_new)
            halvings += 1
        converged = np.max(np.abs(f_new - f)) < tol * (1 + np.max(np.abs(f_new)))
        a, f, psi = a_new, f_new, psi_new
        if converged:
            break
    log_p, d1, d2 = numpy_derivatives(kind, f, y)
    sW = np.sqrt(-d2)
    L = np.linalg.cholesky(np.eye(n) + sW[:, None] * K * sW[None, :])
    lml = -0.5 * a @ (f - mean) + np.sum(log_p) - np.sum(np.log(np.diag(L)))
    return {"f": f, "lml": lml, "d1": d1, "sW": sW, "L": L, "halvings": halvings}


def numpy_predict(state, Ks, kss_diag, Kss, mean_star=0.0):
    """R&W Algorithm 3.2: latent predictive mean, marginal variances and joint covariance."""
    mean = mean_star + Ks.T @ state["d1"]
    V = np.linalg.solve(state["L"], state["sW"][:, None] * Ks)
    return mean, kss_diag - np.sum(V**2, axis=0), Kss - V.T @ V


# ----------------------------------------------------------- against sklearn
@pytest.mark.x64
@pytest.mark.parametrize("theta", [(1.0, 1.0), (2.0, 0.7), (9.0, 2.5), (0.3, 0.2)])
def test_binary_lml_and_gradient_match_sklearn_gpc(theta):
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    X, y = binary_problem(n=50, d=2)
    variance, lengthscale = theta
    gpc = GaussianProcessClassifier(ConstantKernel(1.0) * RBF(1.0), optimizer=None).fit(X, y)
    log_theta = np.log([variance, lengthscale])
    ref, ref_grad = gpc.log_marginal_likelihood(log_theta, eval_gradient=True)

    model = gl.LaplaceGP(
        kernels.RBF(variance=variance, lengthscale=lengthscale), likelihoods.Bernoulli("logit")
    )
    value, grad = jax.value_and_grad(lambda m: m.log_marginal_likelihood(X, y))(model)
    np.testing.assert_allclose(value, ref, rtol=1e-8)
    # sklearn differentiates in log θ: ∂/∂ log θ = θ ∂/∂θ.
    ours = np.array([grad.kernel.variance * variance, grad.kernel.lengthscale * lengthscale])
    np.testing.assert_allclose(ours, ref_grad, rtol=1e-6, atol=1e-9)


# ------------------------------------------- against R&W Algorithms 3.1 and 3.2
@pytest.mark.x64
@pytest.mark.parametrize("kind", ["probit", "logit", "poisson"])
def test_mode_lml_and_latent_predictions_match_numpy_algorithms_3_1_and_3_2(kind):
    if kind == "poisson":
        X, y = count_problem()
        likelihood, variance, lengthscale, c = likelihoods.Poisson(), 1.5, 1.3, 0.8
    else:
        X, y = binary_problem()
        likelihood, variance, lengthscale, c = likelihoods.Bernoulli(kind), 2.0, 0.8, -0.3
    K = rbf_matrix(X, X, variance, lengthscale)
    ref = numpy_laplace(K, y, kind, mean=c)
    Xt = np.linspace(X.min() - 1, X.max() + 1, 17)[:, None]
    Ks = rbf_matrix(X, Xt, variance, lengthscale)
    Kss = rbf_matrix(Xt, Xt, variance, lengthscale)
    ref_mean, ref_var, ref_cov = numpy_predict(ref, Ks, np.diag(Kss), Kss, c)

    model = gl.LaplaceGP(
        kernels.RBF(variance=variance, lengthscale=lengthscale), likelihood, means.Constant(c)
    )
    np.testing.assert_allclose(model.log_marginal_likelihood(X, y), ref["lml"], rtol=1e-10)
    post = model.condition(X, y)
    np.testing.assert_allclose(post.mode, ref["f"], rtol=1e-8, atol=1e-9)
    mean, var = post.predict(Xt)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(var, ref_var, rtol=1e-8, atol=1e-10)
    dist = post(Xt)
    np.testing.assert_allclose(dist.mean, ref_mean, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(dist.covariance(), ref_cov, rtol=1e-8, atol=1e-10)
    # predict_y is the likelihood's predictive of those latent moments.
    mean_y, var_y = post.predict_y(Xt)
    if kind == "probit":
        np.testing.assert_allclose(
            mean_y, stats.norm.cdf(ref_mean / np.sqrt(1 + ref_var)), rtol=1e-8
        )
    elif kind == "poisson":
        np.testing.assert_allclose(mean_y, np.exp(ref_mean + ref_var / 2), rtol=1e-8)
    else:
        expected = likelihood.predict(jnp.asarray(ref_mean), jnp.asarray(ref_var))
        np.testing.assert_allclose(mean_y, expected[0], rtol=1e-8)
    assert np.all((mean_y > 0) & np.isfinite(var_y))


@pytest.mark.x64
def test_poisson_with_large_counts_needs_and_survives_step_halving():
    """Counts in the thousands: the first full Newton step from f = 0 overshoots (Ψ falls or
    overflows); halving recovers the mode the NumPy reference finds."""
    X, y = count_problem(n=25, seed=3, scale=400.0)
    K = rbf_matrix(X, X, 4.0, 1.5)
    with np.errstate(over="ignore"):
        ref = numpy_laplace(K, y, "poisson")
    assert ref["halvings"] > 0  # plain Newton steps would not have increased Ψ
    model = gl.LaplaceGP(kernels.RBF(variance=4.0, lengthscale=1.5), likelihoods.Poisson())
    np.testing.assert_allclose(model.log_marginal_likelihood(X, y), ref["lml"], rtol=1e-10)
    np.testing.assert_allclose(model.condition(X, y).mode, ref["f"], rtol=1e-9)
    # The same mode satisfies the stationarity condition f̂ = K ∇log p(y | f̂).
    f = ref["f"]
    np.testing.assert_allclose(f, K @ (y - np.exp(f)), rtol=1e-6, atol=1e-6)


@pytest.mark.x64
def test_an_ill_conditioned_kernel_still_finds_the_mode():
    """cond(K) ≈ 5e17: near the mode, round-off in K a hides Ψ's last gains and every halving
    of a tiny step can be rejected ("stuck"). That is the mode, not a failure: the value
    must be finite and agree with a neighbouring variance where Newton converged outright."""
    X = np.linspace(0, 10, 40)
    y = np.random.default_rng(0).poisson(np.exp(np.sin(X))).astype(float)

    def lml(variance):
        kernel = kernels.RBF(lengthscale=1.0, variance=variance)
        model = gl.LaplaceGP(kernel, likelihoods.Poisson(), means.Constant(0.5))
        return model.log_marginal_likelihood(X, y)

    np.testing.assert_allclose(lml(10000.100000500006), lml(10000.1000005), rtol=1e-6)


@pytest.mark.x64
def test_no_mode_is_an_error_eagerly_and_nan_under_jit():
    """A Poisson prior mean tens above the log rate (the mean count given as the mean of
    the *log* rate): W = e^m beyond 1/ε, Newton's step is lost to cancellation and every
    halving is rejected. That must not come back as a finite value at the prior mean."""
    X = np.linspace(0.0, 10.0, 40)
    y = np.random.default_rng(5).poisson(np.exp(np.sin(X) + 1.0)).astype(float)

    def model(c):
        return gl.LaplaceGP(
            kernels.Matern52(lengthscale=2.0), likelihoods.Poisson(), means.Constant(c)
        )

    assert np.isfinite(model(30.0).log_marginal_likelihood(X, y))  # still found
    with pytest.raises(gl.CholeskyError, match="Newton's method found no posterior mode"):
        model(40.0).log_marginal_likelihood(X, y)
    with pytest.raises(gl.CholeskyError, match="log rate"):
        model(40.0).condition(X, y)
    assert np.isnan(jax.jit(lambda m: m.log_marginal_likelihood(X, y))(model(40.0)))
    # fit flags the step, with advice that fits a LaplaceGP (not only "a larger noise").
    with pytest.warns(RuntimeWarning, match="non-finite at step 0.*LaplaceGP.*log rate"):
        result = gl.fit(model(40.0), X, y, num_steps=5)
    assert int(result.nonfinite_step) == 0


# ------------------------------------------------- Gaussian: equals the exact GP
@pytest.mark.x64
def test_gaussian_likelihood_equals_the_exact_gp():
    rng = np.random.default_rng(4)
    X = rng.uniform(-2, 2, (30, 2))
    y = np.sin(X[:, 0]) * X[:, 1] + 0.2 * rng.standard_normal(30)
    kernel = kernels.Matern52(variance=1.3, lengthscale=0.9)
    mean = means.Constant(0.2)
    laplace = gl.LaplaceGP(kernel, likelihoods.Gaussian(noise=0.05), mean)
    exact = gl.GP(kernel, mean, noise=0.05)
    Xt = rng.uniform(-2, 2, (9, 2))

    lml = lambda m: m.log_marginal_likelihood(X, y)
    np.testing.assert_allclose(lml(laplace), lml(exact), rtol=1e-12)
    g_laplace, g_exact = jax.grad(lml)(laplace), jax.grad(lml)(exact)
    for a, b in [
        (g_laplace.kernel.variance, g_exact.kernel.variance),
        (g_laplace.kernel.lengthscale, g_exact.kernel.lengthscale),
        (g_laplace.mean.value, g_exact.mean.value),
        (g_laplace.likelihood.noise, g_exact.noise),
    ]:
        np.testing.assert_allclose(a, b, rtol=1e-9)
    for include_noise in (False, True):
        ours = laplace.condition(X, y).predict(Xt, include_noise=include_noise)
        theirs = exact.condition(X, y).predict(Xt, include_noise=include_noise)
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        laplace.condition(X, y).predict_y(Xt),
        exact.condition(X, y).predict(Xt, True),
        rtol=1e-9,
    )


# ------------------------------------------------------------- gradients
def _model(kind, variance=1.4, lengthscale=0.9, c=0.3, noise=0.2):
    likelihood = {
        "probit": likelihoods.Bernoulli("probit"),
        "logit": likelihoods.Bernoulli("logit"),
        "poisson": likelihoods.Poisson(),
        "gaussian": likelihoods.Gaussian(noise=noise),
    }[kind]
    return gl.LaplaceGP(
        kernels.Matern32(variance=variance, lengthscale=lengthscale), likelihood, means.Constant(c)
    )


def _data(kind):
    if kind == "poisson":
        return count_problem()
    X, y = binary_problem(n=30, d=2, seed=5)
    if kind == "gaussian":
        y = y + 0.3 * np.random.default_rng(6).standard_normal(len(y))
    return X, y


def _finite_differences(kind, X, y, h=1e-5):
    base = {"variance": 1.4, "lengthscale": 0.9, "c": 0.3, "noise": 0.2}
    names = ["variance", "lengthscale", "c"] + (["noise"] if kind == "gaussian" else [])
    out = {}
    for name in names:
        up, down = dict(base), dict(base)
        up[name] += h
        down[name] -= h
        out[name] = (
            float(_model(kind, **up).log_marginal_likelihood(X, y))
            - float(_model(kind, **down).log_marginal_likelihood(X, y))
        ) / (2 * h)
    return out


def _as_dict(grad, kind):
    out = {
        "variance": grad.kernel.variance,
        "lengthscale": grad.kernel.lengthscale,
        "c": grad.mean.value,
    }
    if kind == "gaussian":
        out["noise"] = grad.likelihood.noise
    return {k: float(v) for k, v in out.items()}


def _explicit_only_gradient(model, X, y):
    """The gradient a naive implementation gets by holding the mode fixed (ignoring ∂f̂/∂θ)
    in ``-½ (f̂-m)ᵀK⁻¹(f̂-m) + Σ log p(y|f̂) - ½ log|B|``: R&W's explicit term only."""
    f_hat = jax.lax.stop_gradient(model.condition(X, y).mode)

    def value(m):
        K = m.kernel.gram(X)
        mu = jax.vmap(m.mean)(jnp.asarray(X))
        r = f_hat - mu
        _, second = m.likelihood.log_prob_derivatives(f_hat, y)
        sW = jnp.sqrt(-second)
        B = jnp.eye(len(y)) + sW[:, None] * K * sW[None, :]
        return (
            -0.5 * r @ jnp.linalg.solve(K, r)
            + jnp.sum(m.likelihood.log_prob(f_hat, y))
            - 0.5 * jnp.linalg.slogdet(B)[1]
        )

    return jax.grad(value)(model)


@pytest.mark.x64
@pytest.mark.parametrize("kind", ["probit", "logit", "poisson", "gaussian"])
def test_gradient_matches_finite_differences_and_needs_the_implicit_term(kind):
    X, y = _data(kind)
    model = _model(kind)
    grad = _as_dict(jax.grad(lambda m: m.log_marginal_likelihood(X, y))(model), kind)
    fd = _finite_differences(kind, X, y)
    for name in fd:
        np.testing.assert_allclose(grad[name], fd[name], rtol=1e-6, atol=1e-7, err_msg=name)
    if kind == "gaussian":
        return  # W does not depend on f: the implicit term vanishes (R&W eq. 5.23).
    wrong = _as_dict(_explicit_only_gradient(model, X, y), kind)
    # The fixed-mode gradient is what R&W call the explicit part; it misses ∂f̂/∂θ and
    # fails the same finite-difference test by far more than its tolerance.
    errors = [abs(wrong[k] - fd[k]) / max(abs(fd[k]), 1e-7) for k in fd]
    assert max(errors) > 1e-3, errors


@pytest.mark.x64
def test_forward_mode_equals_reverse_mode():
    X, y = _data("poisson")
    model = _model("poisson")
    forward = eqx.filter_jacfwd(lambda m: m.log_marginal_likelihood(X, y))(model)
    reverse = jax.grad(lambda m: m.log_marginal_likelihood(X, y))(model)
    for a, b in zip(jax.tree_util.tree_leaves(forward), jax.tree_util.tree_leaves(reverse)):
        np.testing.assert_allclose(a, b, rtol=1e-9)


@pytest.mark.x64
def test_mode_derivative_matches_finite_differences_in_K_and_m():
    X, y = _data("logit")
    likelihood = likelihoods.Bernoulli("logit")
    K = rbf_matrix(X, X, 1.0, 1.0)
    m = 0.1 * np.arange(len(y)) / len(y)
    rng = np.random.default_rng(7)
    dA = rng.standard_normal(K.shape)
    dK, dm = dA @ dA.T / len(y), rng.standard_normal(len(y))
    _, df = jax.jvp(
        lambda K, m: posterior_mode(K, m, jnp.asarray(y), likelihood),
        (jnp.asarray(K), jnp.asarray(m)),
        (jnp.asarray(dK), jnp.asarray(dm)),
    )
    h = 1e-6
    up = posterior_mode(
        jnp.asarray(K + h * dK), jnp.asarray(m + h * dm), jnp.asarray(y), likelihood
    )
    down = posterior_mode(
        jnp.asarray(K - h * dK), jnp.asarray(m - h * dm), jnp.asarray(y), likelihood
    )
    np.testing.assert_allclose(df, (up - down) / (2 * h), rtol=1e-6, atol=1e-8)


# ---------------------------------------------------- transformations and fit
@pytest.mark.x64
def test_jit_vmap_and_pytree():
    X, y = binary_problem(n=25)
    model = gl.LaplaceGP(kernels.RBF(), likelihoods.Bernoulli())
    eager = model.log_marginal_likelihood(X, y)
    np.testing.assert_allclose(jax.jit(model.log_marginal_likelihood)(X, y), eager, rtol=1e-12)
    # vmap over a batch of lengthscales equals the loop.
    lengthscales = jnp.array([0.5, 1.0, 2.0])
    batched = jax.vmap(
        lambda ell: gl.LaplaceGP(
            kernels.RBF(lengthscale=ell), likelihoods.Bernoulli()
        ).log_marginal_likelihood(X, y)
    )(lengthscales)
    looped = [
        gl.LaplaceGP(
            kernels.RBF(lengthscale=float(ell)), likelihoods.Bernoulli()
        ).log_marginal_likelihood(X, y)
        for ell in lengthscales
    ]
    np.testing.assert_allclose(batched, looped, rtol=1e-11)
    # vmap over datasets, and the posterior through jit.
    ys = jnp.stack([y, 1.0 - y])
    per_data = jax.vmap(lambda yy: model.log_marginal_likelihood(X, yy))(ys)
    np.testing.assert_allclose(per_data[1], model.log_marginal_likelihood(X, 1.0 - y), rtol=1e-11)
    mean, _ = jax.jit(lambda m: m.condition(X, y).predict(X[:5]))(model)
    np.testing.assert_allclose(mean, model.condition(X, y).predict(X[:5])[0], rtol=1e-11)


def test_fit_unchanged_with_restarts_and_fixed():
    X, y = binary_problem(n=60, seed=8)
    model = gl.LaplaceGP(
        kernels.RBF(variance=1.0, lengthscale=3.0),
        likelihoods.Bernoulli("logit"),
        means.Constant(0.0),
    )
    result = gl.fit(
        model,
        X,
        y,
        num_steps=50,
        num_restarts=3,
        key=jax.random.key(0),
        fixed=lambda m: m.mean.value,
    )
    assert int(result.nonfinite_step) == -1
    assert float(result.model.mean.value) == 0.0
    before = float(model.log_marginal_likelihood(X, y))
    after = float(result.model.log_marginal_likelihood(X, y))
    np.testing.assert_allclose(-float(result.final_loss), after, rtol=1e-10)
    assert after > before + 1.0
    # At the optimum the (exact) gradient in the trainable hyperparameters is ~0.
    grad = jax.grad(lambda m: m.log_marginal_likelihood(X, y))(result.model)
    scaled = [
        float(grad.kernel.variance * result.model.kernel.variance),
        float(grad.kernel.lengthscale * result.model.kernel.lengthscale),
    ]
    assert max(abs(g) for g in scaled) < 1e-3, scaled


def test_fit_with_adam_on_counts():
    X, y = count_problem()
    model = gl.LaplaceGP(kernels.RBF(), likelihoods.Poisson())
    result = gl.fit(model, X, y, optimizer=optax.adam(0.05), num_steps=60)
    losses = np.asarray(result.losses)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] - 1.0


# ------------------------------------------------- posterior interface, errors
def test_sample_and_joint_posterior():
    X, y = binary_problem(n=30)
    post = gl.LaplaceGP(kernels.RBF(), likelihoods.Bernoulli()).condition(X, y)
    Xt = np.linspace(-2, 2, 6)
    draws = post.sample(jax.random.key(1), Xt, num_samples=4000)
    assert draws.shape == (4000, 6)
    mean, var = post.predict(Xt)
    np.testing.assert_allclose(np.mean(draws, axis=0), mean, atol=5 * np.sqrt(var.max() / 4000))
    np.testing.assert_allclose(np.var(draws, axis=0), var, rtol=0.15)
    assert post.sample(jax.random.key(2), Xt).shape == (1, 6)
    # The joint covariance's diagonal and predict's variance are two computations
    # of the same numbers: equal to round-off of the session's float.
    rtol = 1e-10 if var.dtype == np.float64 else 1e-5
    np.testing.assert_allclose(post(Xt).variance(), var, rtol=rtol, atol=1e-14)


def test_errors():
    X, y = binary_problem(n=10)
    model = gl.LaplaceGP(kernels.RBF(), likelihoods.Bernoulli())
    for bad in (y + 0.5, np.where(np.arange(10) == 3, np.nan, y), 2 * y - 1):
        with pytest.raises(ValueError, match="`y`"):
            model.log_marginal_likelihood(X, bad)
        with pytest.raises(ValueError, match="`y`"):
            model.condition(X, bad)
    with pytest.raises(ValueError, match="`y`"):
        gl.LaplaceGP(kernels.RBF(), likelihoods.Poisson()).log_marginal_likelihood(X, y - 0.5)
    with pytest.raises(ValueError, match="`y`"):
        model.log_marginal_likelihood(X, y[:5])
    with pytest.raises(ValueError, match="`X`"):
        model.log_marginal_likelihood(X[:, :, None], y)
    with pytest.raises(TypeError, match="`likelihood`"):
        gl.LaplaceGP(kernels.RBF(), likelihoods.StudentT())
    with pytest.raises(TypeError, match=naming("likelihood")):
        gl.LaplaceGP(kernels.RBF(), "bernoulli")
    with pytest.raises(TypeError, match=naming("kernel")):
        gl.LaplaceGP(None, likelihoods.Bernoulli())
    post = model.condition(X, y)
    with pytest.raises(ValueError, match="include_noise"):
        post.predict(X, include_noise=True)
    with pytest.raises(ValueError, match="`Xt`"):
        post.predict(np.zeros((3, 2)))
    with pytest.raises(TypeError, match=naming("key")):
        post.sample(0, X)


def test_float32():
    X, y = binary_problem(n=30)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    model = gl.LaplaceGP(kernels.RBF(variance=2.0), likelihoods.Bernoulli("logit"))
    value = model.log_marginal_likelihood(X32, y32)
    assert value.dtype == jnp.float32
    np.testing.assert_allclose(value, model.log_marginal_likelihood(X, y), rtol=1e-5)
    grad = jax.grad(lambda m: m.log_marginal_likelihood(X32, y32))(model)
    grad64 = jax.grad(lambda m: m.log_marginal_likelihood(X, y))(model)
    np.testing.assert_allclose(grad.kernel.lengthscale, grad64.kernel.lengthscale, rtol=1e-3)
    mean, _ = model.condition(X32, y32).predict_y(X32[:4])
    assert mean.dtype == jnp.float32 and np.all((mean > 0) & (mean < 1))
    counts = gl.LaplaceGP(kernels.RBF(), likelihoods.Poisson())
    Xc, yc = count_problem()
    np.testing.assert_allclose(
        counts.log_marginal_likelihood(Xc.astype(np.float32), yc.astype(np.float32)),
        counts.log_marginal_likelihood(Xc, yc),
        rtol=1e-5,
    )
