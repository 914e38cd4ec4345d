"""SVGP (Hensman et al. 2015): ELBO, optimal q(u), minibatches, gradients and fit_svgp."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from gpjax_lite import sparse
from gpjax_lite.parameters import from_unconstrained, to_unconstrained, trainable_mask

from . import problems


def test_elbo_at_optimal_q_equals_exact_mll_when_inducing_inputs_are_the_data(z_is_x):
    np.testing.assert_allclose(z_is_x["svgp_elbo"], z_is_x["exact_mll"], rtol=0, atol=1e-8)


def test_predictions_at_optimal_q_equal_exact_posterior(z_is_x):
    mean0, var0 = z_is_x["exact_pred"]
    mean, var = z_is_x["svgp_pred"]
    # k(X, X) has a condition number ~1e8 here: 1e-6 on the mean is that times round-off.
    np.testing.assert_allclose(mean, mean0, rtol=0, atol=1e-6)
    np.testing.assert_allclose(var, var0, rtol=0, atol=1e-8)
    np.testing.assert_allclose(z_is_x["svgp_cov"], z_is_x["exact_cov"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(
        z_is_x["svgp_pred_noisy"][1], z_is_x["exact_pred_noisy"][1], atol=1e-8
    )


def _random_q_model(seed=3, m=8):
    X, y = problems.regression_2d()
    rng = np.random.default_rng(seed)
    q_sqrt = np.tril(0.2 * rng.standard_normal((m, m)), -1) + np.diag(rng.uniform(0.2, 1.0, m))
    model = problems.svgp(X[:m] + 0.05, q_mu=rng.standard_normal(m), q_sqrt=q_sqrt)
    return model, X, y


NUM_BATCHES = 4000


@jax.jit
def _full_and_minibatch_elbos(model, X, y, key):
    def one(k):
        Xb, yb = sparse.sample_minibatch(k, X, y, 8)
        return model.elbo(Xb, yb, num_data=X.shape[0])

    return model.elbo(X, y), jax.vmap(one)(jax.random.split(key, NUM_BATCHES))


def test_minibatch_elbo_is_an_unbiased_estimate_of_the_full_elbo():
    """The mean of 4000 minibatch estimates (b = 8 of n = 64) is within 4 standard errors of the
    full-batch ELBO (a two-sided test at the 6e-5 level; the key is fixed, so it is deterministic)."""
    model, X, y = _random_q_model()
    full, estimates = _full_and_minibatch_elbos(model, X, y, jax.random.key(1))
    standard_error = np.std(estimates) / np.sqrt(NUM_BATCHES)
    assert standard_error > 0
    assert abs(np.mean(estimates) - float(full)) < 4 * standard_error


@eqx.filter_jit
def _gradients(model, X, y):
    grad = eqx.filter_grad(lambda m: m.elbo(X, y))(model)
    mask = trainable_mask(model)
    params, static = eqx.partition(to_unconstrained(model, mask), mask)
    unconstrained = jax.grad(lambda p: from_unconstrained(eqx.combine(p, static), mask).elbo(X, y))(
        params
    )
    return grad, unconstrained


def test_gradients_reach_inducing_inputs_kernel_noise_and_q():
    model, X, y = _random_q_model()
    grad, unconstrained = _gradients(model, X, y)
    for g in (
        grad.inducing_inputs,
        grad.kernel.variance,
        grad.kernel.lengthscale,
        grad.noise,
        grad.q_mu,
        np.tril(grad.q_sqrt),
    ):
        assert np.all(np.isfinite(g)) and np.any(np.asarray(g) != 0)
    # Only the lower triangle of q_sqrt is a parameter.
    assert np.all(np.triu(grad.q_sqrt, 1) == 0)
    for g in jax.tree_util.tree_leaves(unconstrained):
        assert np.all(np.isfinite(g)) and np.any(np.asarray(g) != 0)
    # the log-diagonal chain rule: d/du = θ · d/dθ on the diagonal
    np.testing.assert_allclose(
        np.diagonal(unconstrained.q_sqrt),
        np.diagonal(grad.q_sqrt) * np.diagonal(model.q_sqrt),
        rtol=1e-10,
    )


def test_q_sqrt_constraint_round_trip():
    L = np.array([[0.5, 0.0], [-1.2, 2.0]])
    U = sparse.LowerTriangular.to_unconstrained(L)
    np.testing.assert_allclose(U, [[np.log(0.5), 0.0], [-1.2, np.log(2.0)]])
    np.testing.assert_allclose(sparse.LowerTriangular.from_unconstrained(U), L)
    # any unconstrained matrix maps to a valid factor (upper entries ignored)
    L2 = sparse.LowerTriangular.from_unconstrained(np.array([[-30.0, 7.0], [3.0, 40.0]]))
    assert L2[0, 1] == 0 and np.all(np.diagonal(L2) > 0)


def test_fit_svgp_increases_the_elbo_and_holds_fixed_leaves(shared_fit):
    model0, X, y = problems.svgp(problems.regression_2d()[0][:8]), *problems.regression_2d()
    result = shared_fit
    assert isinstance(result.model, sparse.SVGP)
    assert result.losses.shape == (problems.SVGP_STEPS,)
    assert np.all(np.isfinite(result.losses)) and int(result.nonfinite_step) == -1
    full_before, full_after = float(model0.elbo(X, y)), float(result.model.elbo(X, y))
    assert full_after > full_before + 100.0
    # the minibatch losses estimate the negative ELBO: they fall too
    assert np.mean(result.losses[-10:]) < np.mean(result.losses[:10])
    # fixed=lambda m: m.kernel.variance held it bit for bit; the rest moved
    assert result.model.kernel.variance == model0.kernel.variance
    for before, after in [
        (model0.inducing_inputs, result.model.inducing_inputs),
        (model0.q_mu, result.model.q_mu),
        (model0.q_sqrt, result.model.q_sqrt),
        (model0.noise, result.model.noise),
        (model0.kernel.lengthscale, result.model.kernel.lengthscale),
    ]:
        assert not np.allclose(before, after)
    # q_sqrt stays a valid factor
    assert np.all(np.triu(result.model.q_sqrt, 1) == 0) and np.all(
        np.diagonal(result.model.q_sqrt) > 0
    )


def _intermediate_shapes(jaxpr):
    """Shapes of every value produced inside ``jaxpr`` and its sub-jaxprs (scan bodies, jits, …)."""
    shapes = []
    for eqn in jaxpr.eqns:
        shapes += [tuple(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape")]
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    shapes += _intermediate_shapes(inner)
    return shapes


def test_fit_svgp_on_a_million_rows_in_float32_never_forms_n_by_m():
    n, m, batch = 1_000_000, 16, 256
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (n, 3)).astype(np.float32)
    y = (np.sin(X[:, 0]) * np.cos(X[:, 1]) + 0.1 * X[:, 2] + 0.1 * rng.standard_normal(n)).astype(
        np.float32
    )
    model = sparse.SVGP(problems.kernel(), X[:m], noise=0.1)

    def run():
        return sparse.fit_svgp(model, X, y, batch_size=batch, num_steps=5, key=jax.random.key(0))

    # Nothing of n rows is formed except the data itself.
    shapes = _intermediate_shapes(jax.make_jaxpr(run)().jaxpr)
    assert max(int(np.prod(s)) for s in shapes) <= n * 3
    assert all(s in ((n, 3), (n,)) for s in shapes if n in s)
    assert max(int(np.prod(s)) for s in shapes if n not in s) <= batch * m * 4

    result = run()
    assert result.losses.dtype == jnp.float32 and np.all(np.isfinite(result.losses))
    # a float32 model stays float32 (weak Python-float defaults take the dtype of Z)
    for leaf in jax.tree_util.tree_leaves(result.model):
        assert leaf.dtype == jnp.float32
