"""The library on an accelerator computes what it computes on the CPU.

Every test runs one computation twice — on JAX's default device (the GPU or
TPU) and on the CPU — and compares the numbers. They are skipped where JAX sees
only a CPU (the ``gpu`` marker, ``tests/conftest.py``); a session with a GPU
machine runs them with ``python -m pytest -m gpu``.

Tolerances: the two devices run different LAPACK-like libraries (cuSOLVER
against LAPACK) and different reduction orders, so float64 results agree to
round-off amplified by the condition number, not bit for bit.
"""

import equinox as eqx
import jax
import numpy as np
import pytest

import gpjax_lite as gl
from gpjax_lite import kernels as K
from gpjax_lite import likelihoods

pytestmark = [pytest.mark.gpu, pytest.mark.x64]


def _accelerator():
    return jax.devices()[0]


def on_both(fn, *args):
    """``fn(*args)`` compiled for the accelerator and for the CPU, as NumPy trees.

    The accelerator's result is checked to live on the accelerator, so a test
    cannot pass by computing twice on the CPU.
    """
    accelerator, cpu = _accelerator(), jax.devices("cpu")[0]
    compiled = jax.jit(fn)
    got = compiled(*jax.device_put(args, accelerator))
    for leaf in jax.tree_util.tree_leaves(got):
        assert leaf.devices() == {accelerator}
    with jax.default_device(cpu):
        want = compiled(*jax.device_put(args, cpu))
    return jax.tree_util.tree_map(np.asarray, (got, want))


def assert_trees_close(got, want, rtol, atol=0.0):
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


def _series(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, 20.0, n))
    y = np.sin(1.3 * t) + 0.3 * np.cos(0.4 * t) + 0.1 * rng.standard_normal(n)
    return t, y


def _lml_and_grad(model, X, y):
    return eqx.filter_value_and_grad(lambda m: -m.log_marginal_likelihood(X, y))(model)


def test_exact_gp_lml_gradient_and_prediction():
    X, y = _series(400)
    Xt = np.linspace(-1.0, 21.0, 57)
    gp = gl.GP(K.Matern52(lengthscale=1.5) + K.RBF(variance=0.5, lengthscale=4.0), noise=0.05)

    def run(gp, X, y, Xt):
        value, grad = _lml_and_grad(gp, X, y)
        mean, variance = gp.condition(X, y).predict(Xt)
        return value, grad, mean, variance

    (value, grad, mean, var), (value0, grad0, mean0, var0) = on_both(run, gp, X, y, Xt)
    np.testing.assert_allclose(value, value0, rtol=1e-10)
    assert_trees_close(grad, grad0, rtol=1e-8)
    np.testing.assert_allclose(mean, mean0, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(var, var0, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize("parallel", [False, True])
def test_state_space_matches_dense_on_the_cpu(parallel):
    """Both state-space paths on the accelerator equal the dense Cholesky solver on the CPU."""
    t, y = _series(1000, seed=1)
    kernel = K.SHO(variance=1.0, omega=1.3, quality=3.0) + K.Matern32(lengthscale=2.0)
    state = gl.GP(kernel, noise=0.01, solver=gl.solvers.StateSpace(parallel=parallel))
    dense = gl.GP(kernel, noise=0.01)
    (value, grad), _ = on_both(_lml_and_grad, state, t, y)
    with jax.default_device(jax.devices("cpu")[0]):
        value0, grad0 = jax.jit(_lml_and_grad)(dense, t, y)
    np.testing.assert_allclose(value, value0, rtol=1e-9)
    assert_trees_close(grad, grad0, rtol=1e-6, atol=1e-9)


def test_laplace_gp_lml_and_gradient():
    rng = np.random.default_rng(2)
    X = rng.uniform(-3.0, 3.0, (300, 2))
    y = (np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.3 * rng.standard_normal(300) > 0).astype(float)
    model = gl.LaplaceGP(K.RBF(variance=2.0, lengthscale=1.2), likelihoods.Bernoulli("logit"))
    (value, grad), (value0, grad0) = on_both(_lml_and_grad, model, X, y)
    np.testing.assert_allclose(value, value0, rtol=1e-9)
    assert_trees_close(grad, grad0, rtol=1e-7, atol=1e-10)


def test_fit_reaches_the_cpu_optimum():
    X, y = _series(300, seed=3)
    gp = gl.GP(K.Matern52(lengthscale=1.0), noise=0.3)
    accelerator, cpu = _accelerator(), jax.devices("cpu")[0]
    result = gl.fit(gp, jax.device_put(X, accelerator), jax.device_put(y, accelerator))
    with jax.default_device(cpu):
        result0 = gl.fit(gp, jax.device_put(X, cpu), jax.device_put(y, cpu))
    assert np.isfinite(result.final_loss) and np.isfinite(result0.final_loss)
    # Both stop on the same relative tolerance from the same start; the optima agree
    # to well under the stopping tolerance's play in the loss.
    np.testing.assert_allclose(result.final_loss, result0.final_loss, rtol=1e-7)
