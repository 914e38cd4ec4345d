"""SGPR (Titsias 2009): the collapsed bound, its predictions, chunking and fitting with ``fit``."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import gpjax_lite as gl
from gpjax_lite import sparse

from . import problems


def test_bound_equals_exact_mll_when_inducing_inputs_are_the_data(z_is_x):
    # jitter=1e-12: with Z = X, the jitter on k(Z, Z) is the only gap between Qff and Kff.
    np.testing.assert_allclose(z_is_x["sgpr_bound"], z_is_x["exact_mll"], rtol=0, atol=1e-8)
    # The default jitter (1e-8 · variance in float64) lowers the bound by O(n · jitter / noise).
    default = float(z_is_x["sgpr_bound_default_jitter"])
    assert default <= float(z_is_x["exact_mll"]) + 1e-10
    np.testing.assert_allclose(default, z_is_x["exact_mll"], rtol=0, atol=1e-4)


def test_predictions_equal_exact_posterior_when_inducing_inputs_are_the_data(z_is_x):
    mean0, var0 = z_is_x["exact_pred"]
    # k(X, X) has a condition number ~1e8 here: 1e-6 on the mean is that times round-off.
    for key in ("sgpr_pred", "sgpr_pred_shortcut"):
        mean, var = z_is_x[key]
        np.testing.assert_allclose(mean, mean0, rtol=0, atol=1e-6)
        np.testing.assert_allclose(var, var0, rtol=0, atol=1e-8)
    np.testing.assert_allclose(z_is_x["sgpr_cov"], z_is_x["exact_cov"], rtol=0, atol=1e-8)
    # include_noise adds the observation noise, as for the exact posterior.
    np.testing.assert_allclose(
        z_is_x["sgpr_pred_noisy"][1], z_is_x["exact_pred_noisy"][1], atol=1e-8
    )


@eqx.filter_jit
def _bound_grad_and_predictions(model, X, y, Xt):
    value, grad = eqx.filter_value_and_grad(lambda m: m.elbo(X, y))(model)
    return value, grad, model.condition(X, y).predict(Xt)


def test_chunked_pass_equals_one_pass_and_gradients_flow():
    """Chunks of 7 rows (n = 30: the last chunk padded) give the same bound, gradients and
    predictions as one pass; the gradient reaches Z, the kernel and the noise."""
    X, y = problems.regression_1d()
    Xt = np.linspace(-5, 5, 17)
    Z = X[::4] + 0.1
    whole = sparse.SGPR(problems.kernel(), Z, noise=problems.NOISE, chunk_size=None)
    chunked = sparse.SGPR(problems.kernel(), Z, noise=problems.NOISE, chunk_size=7)
    v_whole, g_whole, p_whole = _bound_grad_and_predictions(whole, X, y, Xt)
    v_chunked, g_chunked, p_chunked = _bound_grad_and_predictions(chunked, X, y, Xt)
    np.testing.assert_allclose(v_chunked, v_whole, rtol=1e-12)
    for a, b in zip(jax.tree_util.tree_leaves(g_chunked), jax.tree_util.tree_leaves(g_whole)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10)
    for a, b in zip(p_chunked, p_whole):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    for g in (
        g_whole.inducing_inputs,
        g_whole.kernel.variance,
        g_whole.kernel.lengthscale,
        g_whole.noise,
    ):
        assert np.all(np.isfinite(g)) and np.any(np.asarray(g) != 0)


def test_fit_maximises_the_bound_through_the_objective_hook():
    X, y = problems.regression_1d()
    model = sparse.SGPR(problems.kernel(), X[::5] + 0.2, noise=0.5)
    result = gl.fit(model, X, y, objective=sparse.sgpr_elbo, optimizer=problems.ADAM, num_steps=60)
    assert isinstance(result.model, sparse.SGPR)
    np.testing.assert_allclose(-result.losses[0], model.elbo(X, y), rtol=1e-10)
    assert float(result.model.elbo(X, y)) > float(model.elbo(X, y)) + 5.0
    assert not np.allclose(result.model.inducing_inputs, model.inducing_inputs)
    assert float(result.model.noise) > 0


@jax.jit
def _bound_and_prediction(model, X, y):
    return model.elbo(X, y), model.condition(X, y).predict(X)


def test_float32():
    X, y = problems.regression_1d()
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    bound, (mean, var) = _bound_and_prediction(
        sparse.SGPR(problems.kernel(), X32[::3], noise=problems.NOISE), X32, y32
    )
    bound64, (mean64, _) = _bound_and_prediction(
        sparse.SGPR(problems.kernel(), X[::3], noise=problems.NOISE), X, y
    )
    assert bound.dtype == jnp.float32 and mean.dtype == jnp.float32 and var.dtype == jnp.float32
    # float32 puts a 1e-4 relative jitter on k(Z, Z) (1e-8 in float64): the bound is ~0.1% lower.
    np.testing.assert_allclose(bound, bound64, rtol=5e-3)
    np.testing.assert_allclose(mean, mean64, atol=1e-2)


# ----------------------------------------------------------------- lower bound
N_PROP, M_PROP = 12, 5


@jax.jit
def _four_values(gp, sgpr, svgp, X, y):
    optimal = svgp.with_optimal_variational(X, y)
    return gp.log_marginal_likelihood(X, y), sgpr.elbo(X, y), svgp.elbo(X, y), optimal.elbo(X, y)


@given(
    seed=st.integers(0, 2**31 - 1),
    lengthscale=st.floats(0.1, 5.0),
    variance=st.floats(0.1, 5.0),
    noise=st.floats(1e-3, 1.0),
)
def test_bounds_are_below_the_exact_marginal_likelihood(seed, lengthscale, variance, noise):
    """For random Z (anywhere, even clustered) and any q(u): SVGP ELBO <= SGPR bound <= log p(y),
    and the SVGP ELBO at its closed-form optimal q(u) equals the SGPR bound."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (N_PROP, 2))
    y = np.sin(X[:, 0]) + rng.standard_normal(N_PROP) * 0.3
    Z = rng.uniform(-4, 4, (M_PROP, 2))
    kernel = gl.kernels.RBF(variance=variance, lengthscale=lengthscale)
    q_sqrt = np.tril(rng.standard_normal((M_PROP, M_PROP)) * 0.3, -1) + np.diag(
        rng.uniform(0.1, 1.5, M_PROP)
    )
    svgp = sparse.SVGP(kernel, Z, noise=noise, q_mu=rng.standard_normal(M_PROP), q_sqrt=q_sqrt)
    exact, collapsed, elbo, optimal = _four_values(
        gl.GP(kernel, noise=noise), sparse.SGPR(kernel, Z, noise=noise), svgp, X, y
    )
    slack = 1e-9 * max(1.0, abs(float(exact)))
    assert float(collapsed) <= float(exact) + slack
    assert float(elbo) <= float(collapsed) + slack
    np.testing.assert_allclose(optimal, collapsed, rtol=1e-8, atol=1e-8)
