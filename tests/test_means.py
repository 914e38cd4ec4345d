"""gpjax_lite.means: Zero, Constant and user-defined mean modules inside the GP."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gpjax_lite.kernels as gk
from gpjax_lite import GP
from gpjax_lite.means import Constant, MeanFunction, Zero

X = np.random.default_rng(0).uniform(-2, 2, size=(12, 2))
Y = np.random.default_rng(1).normal(size=12)

#: float64, or float32 when 64-bit JAX is off (``JAX_ENABLE_X64=0``, see conftest.py).
X64 = jnp.result_type(float) == jnp.float64


def tol(x64, x32):
    """A tolerance: ``x64`` in float64; ``x32`` in float32 mode, set by round-off."""
    return x64 if X64 else x32


#: Both float dtypes; float64 arrays need 64-bit JAX (in float32 mode they are float32).
DTYPES = [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.x64)]


#: Compiled reverse-mode gradient of the marginal likelihood w.r.t. the whole model.
LML_GRAD = eqx.filter_jit(eqx.filter_grad(lambda g: g.log_marginal_likelihood(X, Y)))


class LinearMean(eqx.Module):
    """A user mean that does not subclass MeanFunction: m(x) = w·x + b."""

    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return jnp.dot(self.w, x) + self.b


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero(dtype):
    out = Zero()(jnp.ones(3, dtype))
    assert out.shape == () and out.dtype == dtype and float(out) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_value_shape_and_dtype(dtype):
    out = Constant(1.25)(jnp.ones(3, dtype))
    assert out.shape == () and float(out) == 1.25
    # A Python float is weakly typed: it follows the inputs' dtype.
    assert out.dtype == dtype
    assert float(Constant()(jnp.ones(2))) == 0.0  # default 0.0
    assert float(Constant(3)(jnp.ones(2))) == 3.0  # an int is promoted to float
    assert jnp.issubdtype(Constant(3).value.dtype, jnp.floating)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_constant_non_finite_raises(bad):
    with pytest.raises(ValueError, match="`value`"):
        Constant(bad)


def test_constant_non_scalar_raises():
    with pytest.raises(ValueError, match="`value`"):
        Constant(jnp.array([1.0, 2.0]))


def test_mean_function_is_abstract():
    with pytest.raises(TypeError):
        MeanFunction()


@pytest.mark.parametrize(
    "mean, expected",
    [
        (Zero(), np.zeros(12)),
        (Constant(-0.7), np.full(12, -0.7)),
        (LinearMean(jnp.array([0.5, -1.5]), jnp.array(0.3)), X @ np.array([0.5, -1.5]) + 0.3),
    ],
    ids=["zero", "constant", "user-linear"],
)
def test_mean_vector_and_prior_mean(mean, expected):
    gp = GP(gk.RBF(), mean=mean)
    close = dict(rtol=1e-14, atol=1e-15) if X64 else dict(rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.asarray(gp.mean_vector(X)), expected, **close)
    np.testing.assert_allclose(np.asarray(gp.prior(X).mean), expected, **close)


def test_1d_inputs_reach_the_mean_as_points_of_shape_1():
    seen = []

    class Recording(eqx.Module):
        def __call__(self, x):
            seen.append(x.shape)
            return 2.0 * x[0]

    gp = GP(gk.RBF(), mean=Recording())
    x = np.linspace(0, 1, 5)
    np.testing.assert_allclose(np.asarray(gp.mean_vector(x)), 2 * x, rtol=1e-15)
    assert seen and all(shape == (1,) for shape in seen)


def test_constant_mean_gradient_closed_form():
    # d/dc log N(y | c·1, A) = 1ᵀ A⁻¹ (y - c·1), with A = K + σ²I: an independent check.
    c, noise = 0.4, 0.2
    gp = GP(gk.RBF(lengthscale=0.9), mean=Constant(c), noise=noise)
    grads = LML_GRAD(gp)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    A = np.exp(-0.5 * d2 / 0.9**2) + noise * np.eye(12)
    expected = np.ones(12) @ np.linalg.solve(A, Y - c)
    np.testing.assert_allclose(float(grads.mean.value), expected, rtol=tol(1e-10, 1e-4))


def test_user_mean_parameters_get_gradients():
    w, b, noise = np.array([0.5, -1.5]), 0.3, 0.2
    gp = GP(gk.RBF(lengthscale=0.9), mean=LinearMean(jnp.asarray(w), jnp.asarray(b)), noise=noise)
    grads = LML_GRAD(gp)
    d2 = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    A = np.exp(-0.5 * d2 / 0.9**2) + noise * np.eye(12)
    alpha = np.linalg.solve(A, Y - X @ w - b)
    # d/dw = Xᵀ α, d/db = 1ᵀ α
    np.testing.assert_allclose(np.asarray(grads.mean.w), X.T @ alpha, rtol=tol(1e-10, 1e-4))
    np.testing.assert_allclose(float(grads.mean.b), alpha.sum(), rtol=tol(1e-10, 1e-4))


@pytest.mark.parametrize("method", ["log_marginal_likelihood", "condition"])
def test_non_finite_user_mean_raises_value_error_naming_the_mean(method):
    class LogMean(eqx.Module):
        def __call__(self, x):
            return jnp.log(x[0])  # NaN for x < 0

    gp = GP(gk.RBF(), mean=LogMean())
    # A ValueError about the mean, not a CholeskyError (nor a silently NaN posterior).
    with pytest.raises(ValueError, match="`mean`") as info:
        getattr(gp, method)(X, Y)
    assert not isinstance(info.value, np.linalg.LinAlgError)


def test_constant_mean_under_vmap_of_models():
    values = jnp.array([-1.0, 0.0, 2.5])
    gps = eqx.filter_vmap(lambda v: GP(gk.RBF(), mean=Constant(v)))(values)
    out = eqx.filter_vmap(lambda g: g.mean_vector(X))(gps)
    np.testing.assert_allclose(np.asarray(out), np.repeat(np.asarray(values)[:, None], 12, axis=1))
