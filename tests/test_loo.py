"""GP.loo_log_predictive: the exact leave-one-out predictive log density.

The reference is the definition itself, in NumPy/SciPy: for each point ``i``,
a dense GP is conditioned on the other ``n - 1`` points (Gram matrices from the
API's closed forms) and ``y_i`` is scored under its noisy predictive
``N(m(x_i) + k_iᵀ(K₋ᵢ + Σ₋ᵢ)⁻¹r₋ᵢ, k_ii - k_iᵀ(K₋ᵢ + Σ₋ᵢ)⁻¹k_i + s_i)``:
``n`` refits, no shared factorisation. Gradients are checked against central
finite differences.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg
import scipy.stats
from hypothesis import given
from hypothesis import strategies as st

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite.means import Constant
from gpjax_lite.solvers import Cholesky, Solver

N, D = 15, 2
RNG = np.random.default_rng(515)
X = RNG.uniform(-2.0, 2.0, size=(N, D))
Y = np.sin(2 * X[:, 0]) + 0.5 * np.cos(X[:, 1]) + 1.5 + 0.1 * RNG.normal(size=N)
NOISE = RNG.uniform(0.02, 0.2, size=N)
LENGTHSCALE = np.array([0.7, 1.6])


def np_rbf_plus_matern32(A, B, ls=LENGTHSCALE, variance=1.3, matern_variance=0.4, matern_ls=0.9):
    """``RBF(variance, ARD ls) + Matern32(matern_variance, matern_ls)`` written from the API table."""
    diff = A[:, None, :] - B[None, :, :]
    r2 = np.sum((diff / ls) ** 2, axis=-1)
    s = math.sqrt(3) * np.sqrt(np.sum(diff**2, axis=-1)) / matern_ls
    return variance * np.exp(-0.5 * r2) + matern_variance * (1 + s) * np.exp(-s)


def model(noise=NOISE, mean=1.2, dtype=jnp.float64, solver=None):
    kernel = gk.RBF(variance=jnp.asarray(1.3, dtype), lengthscale=jnp.asarray(LENGTHSCALE, dtype))
    kernel = kernel + gk.Matern32(
        variance=jnp.asarray(0.4, dtype), lengthscale=jnp.asarray(0.9, dtype)
    )
    return gl.GP(
        kernel,
        mean=Constant(jnp.asarray(mean, dtype)),
        noise=jnp.asarray(noise, dtype),
        solver=Cholesky() if solver is None else solver,
    )


def brute_force_loo(X, y, noise, mean, kernel=np_rbf_plus_matern32):
    """``Σ_i log p(y_i | X, y₋ᵢ)`` by ``n`` separate dense GP fits (SciPy Cholesky solves)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    noise = np.broadcast_to(np.asarray(noise, float), y.shape)
    total = 0.0
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        K_rest = kernel(X[rest], X[rest]) + np.diag(noise[rest])
        k_i = kernel(X[rest], X[i : i + 1])[:, 0]
        factor = scipy.linalg.cho_factor(K_rest, lower=True)
        mu = mean + k_i @ scipy.linalg.cho_solve(factor, y[rest] - mean)
        var = kernel(X[i : i + 1], X[i : i + 1])[0, 0] - k_i @ scipy.linalg.cho_solve(factor, k_i)
        total += scipy.stats.norm.logpdf(y[i], loc=mu, scale=np.sqrt(var + noise[i]))
    return total


class GenericCholesky(Cholesky):
    """The dense solver with the base class's generic (site-removal) leave-one-out."""

    def loo_log_predictive(self, kernel, X, noise, residual):
        return Solver.loo_log_predictive(self, kernel, X, noise, residual)


# ---------------------------------------------------------------- the values
def test_matches_brute_force_loop_float64():
    value = model().loo_log_predictive(X, Y)
    assert value.dtype == jnp.float64 and value.shape == ()
    np.testing.assert_allclose(float(value), brute_force_loo(X, Y, NOISE, 1.2), rtol=1e-10)


def test_scalar_noise_and_zero_mean():
    value = model(noise=0.05, mean=0.0).loo_log_predictive(X, Y)
    np.testing.assert_allclose(float(value), brute_force_loo(X, Y, 0.05, 0.0), rtol=1e-10)


def test_the_mean_is_subtracted():
    """A non-zero mean changes the value; shifting data and mean together does not."""
    shifted = model(mean=1.2 + 3.0).loo_log_predictive(X, Y + 3.0)
    np.testing.assert_allclose(float(shifted), float(model().loo_log_predictive(X, Y)), rtol=1e-10)
    zero_mean = float(model(mean=0.0).loo_log_predictive(X, Y))
    np.testing.assert_allclose(zero_mean, brute_force_loo(X, Y, NOISE, 0.0), rtol=1e-10)
    assert abs(zero_mean - float(shifted)) > 0.1


def test_matches_brute_force_loop_float32():
    X32, Y32 = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    value = model(dtype=jnp.float32).loo_log_predictive(X32, Y32)
    assert value.dtype == jnp.float32
    reference = brute_force_loo(
        np.asarray(X32), np.asarray(Y32), np.float32(NOISE), np.float32(1.2)
    )
    np.testing.assert_allclose(float(value), reference, rtol=1e-4)


def test_generic_solver_form_matches_brute_force():
    """The base Solver's site-removal form (any solver with posterior marginals)."""
    value = model(solver=GenericCholesky()).loo_log_predictive(X, Y)
    np.testing.assert_allclose(float(value), brute_force_loo(X, Y, NOISE, 1.2), rtol=1e-8)


def test_generic_solver_form_float32():
    """Moderate signal-to-noise (k/s ≤ ~100): the documented float32 accuracy."""
    X32, Y32 = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    value = model(dtype=jnp.float32, solver=GenericCholesky()).loo_log_predictive(X32, Y32)
    reference = brute_force_loo(
        np.asarray(X32), np.asarray(Y32), np.float32(NOISE), np.float32(1.2)
    )
    np.testing.assert_allclose(float(value), reference, rtol=1e-3)


@given(
    log_ls=st.floats(-1.5, 1.5),
    log_var=st.floats(-2.0, 2.0),
    log_noise=st.floats(-4.0, 0.0),
)
def test_cholesky_and_generic_forms_agree(log_ls, log_var, log_noise):
    gp = gl.GP(
        gk.RBF(variance=math.exp(log_var), lengthscale=math.exp(log_ls)), noise=math.exp(log_noise)
    )
    dense = gp.loo_log_predictive(X, Y)
    generic = gl.GP(gp.kernel, noise=gp.noise, solver=GenericCholesky()).loo_log_predictive(X, Y)
    np.testing.assert_allclose(float(generic), float(dense), rtol=1e-7, atol=1e-9)


def test_single_point_is_the_prior_predictive():
    """With n = 1 nothing is left: the prior predictive N(m, k(x, x) + s)."""
    gp = gl.GP(gk.RBF(variance=2.0), mean=Constant(0.5), noise=0.3)
    value = gp.loo_log_predictive(jnp.array([[0.1]]), jnp.array([1.7]))
    np.testing.assert_allclose(
        float(value), scipy.stats.norm.logpdf(1.7, 0.5, math.sqrt(2.3)), rtol=1e-12
    )


def test_jit_matches_eager():
    gp = model()
    eager = gp.loo_log_predictive(X, Y)
    compiled = jax.jit(lambda gp, X, y: gp.loo_log_predictive(X, y))(gp, X, Y)
    np.testing.assert_allclose(float(compiled), float(eager), rtol=1e-12)


# ------------------------------------------------------------- the gradient
def _loo_of(theta):
    """LOO as a function of (log ℓ₁, log ℓ₂, log σ², log s_matern, mean, log noise scale)."""
    kernel = gk.RBF(variance=jnp.exp(theta[2]), lengthscale=jnp.exp(theta[0:2]))
    kernel = kernel + gk.Matern32(variance=jnp.exp(theta[3]), lengthscale=0.9)
    gp = gl.GP(kernel, mean=Constant(theta[4]), noise=jnp.exp(theta[5]) * jnp.asarray(NOISE))
    return gp.loo_log_predictive(X, Y)


@pytest.mark.parametrize("solver", ["cholesky", "generic"])
def test_gradient_matches_finite_differences(solver, monkeypatch):
    if solver == "generic":
        monkeypatch.setattr(Cholesky, "loo_log_predictive", Solver.loo_log_predictive)
    theta = jnp.array([np.log(0.7), np.log(1.6), np.log(1.3), np.log(0.4), 1.2, 0.0])
    grad = np.asarray(jax.grad(_loo_of)(theta))
    loo = jax.jit(_loo_of)
    h = 1e-5
    fd = np.array(
        [
            (float(loo(theta.at[j].add(h))) - float(loo(theta.at[j].add(-h)))) / (2 * h)
            for j in range(6)
        ]
    )
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-7)
    assert np.all(np.abs(grad) > 1e-4)  # every hyperparameter matters here


# ---------------------------------------------------------- as an objective
def loo_objective(model, X, y):
    return model.loo_log_predictive(X, y)


def test_fit_with_loo_objective_increases_it():
    gp = gl.GP(gk.RBF(variance=0.3, lengthscale=3.0), mean=Constant(0.0), noise=0.5)
    before = float(gp.loo_log_predictive(X, Y))
    result = gl.fit(gp, X, Y, objective=loo_objective, num_steps=50)
    after = float(result.model.loo_log_predictive(X, Y))
    assert after > before + 1.0
    np.testing.assert_allclose(-float(result.final_loss), after, rtol=1e-10)
    # Converged to a stationary point of the LOO (in log θ for the positive ones).
    assert int(result.steps_taken) < 50
    fitted = result.model
    grad = eqx.filter_grad(loo_objective)(fitted, X, Y)
    log_grads = [
        float(fitted.noise * grad.noise),
        float(fitted.kernel.variance * grad.kernel.variance),
        float(fitted.kernel.lengthscale * grad.kernel.lengthscale),
        float(grad.mean.value),
    ]
    np.testing.assert_allclose(log_grads, 0.0, atol=1e-4)


def test_fit_with_loo_objective_and_adam_float32():
    X32, Y32 = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    gp = gl.GP(gk.RBF(lengthscale=3.0), mean=Constant(jnp.float32(0.0)), noise=0.5)
    before = float(gp.loo_log_predictive(X32, Y32))
    result = gl.fit(
        gp, X32, Y32, objective=loo_objective, optimizer=optax.adam(0.05), num_steps=100
    )
    assert result.losses.dtype == jnp.float32
    assert float(result.model.loo_log_predictive(X32, Y32)) > before + 5.0


# ------------------------------------------------------------------- errors
def test_bad_targets_name_y():
    with pytest.raises(ValueError, match="`y`"):
        model().loo_log_predictive(X, Y[:-1])
    with pytest.raises(ValueError, match="`y`"):
        model().loo_log_predictive(X, np.where(np.arange(N) == 3, np.nan, Y))


def test_per_point_noise_must_match_n():
    with pytest.raises(ValueError, match="`noise`"):
        model().loo_log_predictive(X[:-1], Y[:-1])


def test_failed_factorisation_is_a_cholesky_error_eagerly_and_nan_under_jit():
    X_dup = jnp.zeros((6, 1), jnp.float32)  # identical inputs: K is rank one
    y_dup = jnp.arange(6, dtype=jnp.float32)
    gp = gl.GP(gk.RBF(variance=jnp.float32(1.0)), noise=jnp.float32(1e-30))
    with pytest.raises(gl.CholeskyError):
        gp.loo_log_predictive(X_dup, y_dup)
    assert not bool(jnp.isfinite(jax.jit(lambda gp: gp.loo_log_predictive(X_dup, y_dup))(gp)))


def test_state_space_solver_gets_the_generic_loo_equal_to_the_dense_one():
    # The generic Solver.loo_log_predictive (posterior marginals minus each
    # Gaussian site) through the O(n) solver, against the dense R&W 5.12 form.
    rng = np.random.default_rng(11)
    X = jnp.asarray(rng.uniform(0.0, 10.0, 60))
    y = jnp.asarray(np.sin(np.asarray(X)) + 0.2 * rng.normal(size=60))
    kernel = gl.kernels.Matern32(lengthscale=1.3) + gl.kernels.SHO(omega=2.0, quality=3.0)
    dense = gl.GP(kernel, noise=0.05)
    state_space = gl.GP(kernel, noise=0.05, solver=gl.solvers.StateSpace())
    np.testing.assert_allclose(
        float(state_space.loo_log_predictive(X, y)),
        float(dense.loo_log_predictive(X, y)),
        rtol=1e-9,
    )


def test_map_with_a_log_prior_works_for_laplace_and_state_space_models():
    rng = np.random.default_rng(12)
    X = jnp.asarray(np.sort(rng.uniform(0.0, 6.0, 40)))
    labels = jnp.asarray((np.sin(np.asarray(X)) > 0).astype(float))

    def log_prior(model):
        ell = model.kernel.lengthscale
        return jax.scipy.stats.norm.logpdf(jnp.log(ell), jnp.log(2.0), 0.3)

    laplace = gl.LaplaceGP(gl.kernels.Matern52(), gl.likelihoods.Bernoulli())
    result = gl.fit(laplace, X, labels, num_steps=30, log_prior=log_prior)
    expected = -(result.model.log_marginal_likelihood(X, labels) + log_prior(result.model))
    np.testing.assert_allclose(float(result.final_loss), float(expected), rtol=1e-8)
    assert float(result.final_loss) <= float(result.losses[0])

    y = jnp.asarray(np.sin(np.asarray(X)) + 0.1 * rng.normal(size=40))
    dense = gl.fit(gl.GP(gl.kernels.Matern52(), noise=0.1), X, y, num_steps=30, log_prior=log_prior)
    state_space = gl.fit(
        gl.GP(gl.kernels.Matern52(), noise=0.1, solver=gl.solvers.StateSpace()),
        X,
        y,
        num_steps=30,
        log_prior=log_prior,
    )
    np.testing.assert_allclose(float(state_space.final_loss), float(dense.final_loss), rtol=1e-6)
