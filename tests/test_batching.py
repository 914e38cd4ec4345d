"""The dense solver's marginal likelihood under ``jax.vmap``, run in chunks of the batch.

``Cholesky.log_marginal_likelihood`` maps a batch in chunks of
``BATCH_CHUNK_ENTRIES`` Gram entries (see ``gpjax_lite._batching``); these
tests shrink the chunks so that small batches split into several chunks and a
remainder, and check values and derivatives of every kind against SciPy and
against the unbatched function.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import rbf_nll_and_grad

import gpjax_lite as gl
from gpjax_lite.solvers import cholesky

FLOAT = jnp.result_type(float)
X64 = FLOAT == jnp.float64
B, N = 11, 12  # chunks of 4: two chunks and a remainder of 3


def tol(x64, x32):
    return x64 if X64 else x32


@pytest.fixture(autouse=True)
def chunks_of_four(monkeypatch):
    monkeypatch.setattr(cholesky, "BATCH_CHUNK_ENTRIES", 4 * N * N)


def datasets(dtype=FLOAT):
    rng = np.random.default_rng(3)
    X = rng.uniform(-3.0, 3.0, size=(B, N)).astype(dtype)
    y = (np.sin(X) + 0.1 * rng.standard_normal((B, N))).astype(dtype)
    return X, y


def rbf_gp(variance=1.3, lengthscale=0.8, noise=0.05, dtype=FLOAT):
    one = jnp.asarray(1.0, dtype)
    return gl.GP(
        gl.kernels.RBF(variance=variance * one, lengthscale=lengthscale * one), noise=noise * one
    )


def neg_lml(gp, X, y):
    return -gp.log_marginal_likelihood(X, y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_value_and_gradient_match_scipy(dtype):
    if dtype == np.float64 and not X64:
        pytest.skip("float64 needs JAX_ENABLE_X64")
    X, y = datasets(dtype)
    gp = rbf_gp(dtype=dtype)
    vg = jax.vmap(eqx.filter_value_and_grad(neg_lml), in_axes=(None, 0, 0))
    value, grad = eqx.filter_jit(lambda gp, X, y: vg(gp, X, y))(gp, jnp.asarray(X), jnp.asarray(y))
    assert value.shape == (B,) and value.dtype == dtype
    theta = np.log([1.3, 0.8, 0.05])
    for i in range(B):
        nll, grad_log = rbf_nll_and_grad(theta, X[i].astype(np.float64), y[i].astype(np.float64))
        expected = grad_log / np.exp(theta)  # ∂/∂θ for θ = (variance, lengthscale, noise)
        got = [grad.kernel.variance[i], grad.kernel.lengthscale[i], grad.noise[i]]
        rtol = 1e-9 if dtype == np.float64 else 2e-3
        np.testing.assert_allclose(float(value[i]), nll, rtol=rtol)
        np.testing.assert_allclose(np.asarray(got, np.float64), expected, rtol=rtol, atol=rtol)


def test_chunks_equal_the_unbatched_function():
    X, y = map(jnp.asarray, datasets())
    gp = rbf_gp()
    vg = eqx.filter_value_and_grad(neg_lml)
    batched = jax.vmap(vg, in_axes=(None, 0, 0))
    value, grad = eqx.filter_jit(lambda gp, X, y: batched(gp, X, y))(gp, X, y)
    assert "scan" in str(jax.make_jaxpr(lambda X, y: batched(gp, X, y))(X, y))  # in chunks
    for i in (0, 3, 4, 7, 8, 10):  # first and last of each chunk, the remainder
        v, g = vg(gp, X[i], y[i])
        np.testing.assert_allclose(float(value[i]), float(v), rtol=tol(1e-12, 1e-5))
        np.testing.assert_allclose(
            float(grad.kernel.lengthscale[i]), float(g.kernel.lengthscale), rtol=tol(1e-10, 1e-4)
        )


def test_shared_inputs_and_batched_models():
    X, y = map(jnp.asarray, datasets())
    gp = rbf_gp()
    # One X for every dataset (the covariance is unbatched, the residuals are).
    shared = jax.jit(jax.vmap(gp.log_marginal_likelihood, in_axes=(None, 0)))(X[0], y)
    np.testing.assert_allclose(
        float(shared[9]), float(gp.log_marginal_likelihood(X[0], y[9])), rtol=tol(1e-12, 1e-5)
    )
    # A batch of models on one dataset (the kernel's arrays are batched, X is not).
    lengthscales = jnp.linspace(0.3, 3.0, B, dtype=FLOAT)
    models = jax.vmap(lambda ls: rbf_gp(lengthscale=ls))(lengthscales)
    by_model = eqx.filter_jit(eqx.filter_vmap(lambda m: m.log_marginal_likelihood(X[0], y[0])))(
        models
    )
    np.testing.assert_allclose(
        float(by_model[6]),
        float(rbf_gp(lengthscale=float(lengthscales[6])).log_marginal_likelihood(X[0], y[0])),
        rtol=tol(1e-12, 1e-5),
    )


@pytest.mark.x64  # second derivatives are compared tightly
def test_derivatives_of_every_mode_under_vmap():
    X, y = map(jnp.asarray, datasets())

    def lml(ls, X, y):
        return rbf_gp(lengthscale=ls).log_marginal_likelihood(X, y)

    batched = jax.vmap
    grad = jax.grad(lml)(0.8, X[5], y[5])
    hessian = jax.hessian(lml)(0.8, X[5], y[5])
    np.testing.assert_allclose(batched(jax.grad(lml), (None, 0, 0))(0.8, X, y)[5], grad, rtol=1e-10)
    # forward over reverse, reverse over reverse, and forward mode
    for second in (jax.hessian(lml), jax.jacrev(jax.jacrev(lml))):
        np.testing.assert_allclose(batched(second, (None, 0, 0))(0.8, X, y)[5], hessian, rtol=1e-9)
    tangent = jax.jvp(lambda ls: batched(lml, (None, 0, 0))(ls, X, y), (0.8,), (1.0,))[1]
    np.testing.assert_allclose(tangent[5], grad, rtol=1e-10)
    # derivatives in the data, which a fit leaves alone
    grad_X = batched(jax.grad(lml, argnums=1), (None, 0, 0))(0.8, X, y)
    np.testing.assert_allclose(grad_X[5], jax.grad(lml, argnums=1)(0.8, X[5], y[5]), rtol=1e-10)
    assert np.all(np.abs(grad_X[5]) > 0)


def test_a_failed_factorisation_is_nan_for_its_problem_only():
    X, y = datasets()
    X[6] = X[6, 0]  # every input the same point: K is rank one, and with noise
    noises = np.full(B, 0.05, FLOAT)
    noises[6] = 1e-20  # far below round-off K + Σ is singular

    def lml(noise, X, y):
        return rbf_gp(noise=noise).log_marginal_likelihood(X, y)

    values = jax.jit(jax.vmap(lml))(jnp.asarray(noises), jnp.asarray(X), jnp.asarray(y))
    assert np.isnan(values[6])
    assert np.all(np.isfinite(np.delete(np.asarray(values), 6)))
    with pytest.raises(gl.CholeskyError):  # eagerly, the same problem raises
        lml(noises[6], X[6], y[6])


@pytest.mark.x64
def test_float32_data_with_float64_hyperparameters():
    """float32 data, float64 kernel and noise: the value is float32 (the Gram matrix is
    cast to the data's dtype), and the chunked rule's tangent must be too; a restarted
    ``fit`` with optax's L-BFGS used to stop on JAX's dtype check."""
    X, y = datasets(np.float32)
    gp = rbf_gp(dtype=np.float64)
    vg = jax.vmap(eqx.filter_value_and_grad(neg_lml), in_axes=(None, 0, 0))
    value, grad = vg(gp, jnp.asarray(X), jnp.asarray(y))
    loop = [eqx.filter_value_and_grad(neg_lml)(gp, X[i], y[i]) for i in range(B)]
    np.testing.assert_allclose(value, [v for v, _ in loop], rtol=1e-5)
    np.testing.assert_allclose(
        grad.kernel.lengthscale, [g.kernel.lengthscale for _, g in loop], rtol=1e-4
    )
