"""dtype is preserved, and every fast path is as accurate as the pointwise formula in its dtype.

References are the float64 NumPy closed forms of ``test_closed_forms.py``,
evaluated on the very inputs the kernel saw (float32 inputs cast up exactly),
so the error measured is the kernel's own round-off.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gpjax_lite.kernels as gk
from gpjax_lite.kernels import vmap_cross

from .test_closed_forms import np_matern12, np_matern52, np_periodic, np_rbf, np_rq

DTYPES = [np.float32, np.float64]
WIDE = 40  # beyond COLUMNWISE_MAX_DIM: the vmap core


def every_kernel(d):
    """One instance of every kernel (and combination) for ``d`` input columns, weak hyperparameters."""
    ls = 0.8 if d == 1 else np.linspace(0.5, 1.5, d).tolist()
    return {
        "RBF": gk.RBF(variance=1.3, lengthscale=ls),
        "Matern12": gk.Matern12(lengthscale=ls),
        "Matern32": gk.Matern32(lengthscale=ls),
        "Matern52": gk.Matern52(variance=0.7, lengthscale=ls),
        "RationalQuadratic": gk.RationalQuadratic(lengthscale=ls, alpha=0.6),
        "Periodic": gk.Periodic(lengthscale=ls, period=2.5),
        "Cosine": gk.Cosine(period=2.0, active_dims=(0,)),
        "Linear": gk.Linear(variance=0.3),
        "Polynomial": gk.Polynomial(bias=0.5, degree=3),
        "Constant": gk.Constant(variance=2.0),
        "White": gk.White(variance=0.1),
        "Sum": gk.RBF(lengthscale=ls) + gk.Periodic() + gk.White(),
        "Product": gk.Matern52() * gk.Linear(),
        "Scaled": 3 * gk.Periodic(lengthscale=ls),
        "ActiveDims": gk.RBF(active_dims=(0,)) * gk.Matern32(active_dims=(d - 1,)),
    }


def _points(n, d, dtype, seed=0):
    return np.random.default_rng(seed).uniform(-2.0, 2.0, (n, d)).astype(dtype)


@pytest.mark.parametrize("d", [1, 4, WIDE])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_every_kernel_keeps_the_input_dtype(dtype, d):
    X, Y = _points(5, d, dtype), _points(3, d, dtype, seed=1)
    for name, k in every_kernel(d).items():
        methods = {
            "gram": lambda: k.gram(X),
            "cross": lambda: k.cross(X, Y),
            "diag": lambda: k.diag(X),
        }
        if name not in ("White", "Sum"):  # White has no pointwise value
            methods["call"] = lambda: k(X[0], Y[0])
        for method, call in methods.items():
            # eval_shape runs every check and traces every path, without compiling
            out = jax.eval_shape(call)
            assert out.dtype == dtype, (
                f"{name}.{method}: {out.dtype} (path {k.matrix_path(d, dtype)})"
            )


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_hyperparameters_of_the_input_dtype_keep_it(dtype):
    one = jnp.asarray(1.0, dtype)
    k = gk.RBF(variance=one, lengthscale=jnp.ones(4, dtype)) + gk.Periodic(period=2 * one)
    assert k.gram(_points(6, 4, dtype)).dtype == dtype


def test_issue_example_periodic_float32_gram():
    # Before: float64 out of float32 in, so float64 jitter for a float32-accurate matrix.
    t = jnp.linspace(39, 65, 71, dtype=jnp.float32)
    K = gk.Periodic().gram(t)
    assert K.dtype == jnp.float32
    t64 = np.asarray(t, np.float64)[:, None]
    np.testing.assert_allclose(
        np.asarray(K, np.float64), np_periodic(t64, t64, 1.0, 1.0, 1.0), atol=1e-5
    )


def test_float64_hyperparameters_follow_float32_inputs_and_keep_their_gradients():
    # An ARD lengthscale given as a float64 NumPy array: the Gram is float32 like
    # the inputs, and the gradient comes back in the hyperparameter's own dtype.
    X = _points(6, 3, np.float32)
    k = gk.RBF(lengthscale=np.array([0.5, 1.0, 2.0]))
    assert k.lengthscale.dtype == jnp.float64
    assert k.gram(X).dtype == jnp.float32
    grad = jax.grad(lambda ls: jnp.sum(gk.RBF(lengthscale=ls).gram(X)))(k.lengthscale)
    assert grad.dtype == jnp.float64
    grad32 = jax.grad(lambda ls: jnp.sum(gk.RBF(lengthscale=ls).gram(X)))(
        k.lengthscale.astype(np.float32)
    )
    np.testing.assert_allclose(grad, grad32, rtol=1e-5)


# ------------------------------------------------------------------ accuracy
def spread_inputs(n, d, dtype):
    """The issue's data: a curve spanning ~60 lengthscales, then embedded in ``d`` columns."""
    t = np.linspace(0.0, 100.0, n)
    X3 = np.stack([0.6 * t, 0.5 * t + 3 * np.sin(t / 10), 0.3 * t + 2 * np.cos(t / 7)], axis=1)
    if d == 1:
        X = X3[:, :1]
    elif d == 3:
        X = X3
    else:
        X = X3 @ np.random.default_rng(2).normal(size=(3, d)) / np.sqrt(3.0)
    return X.astype(dtype)


ACCURACY = {
    "RBF": (lambda ls: gk.RBF(variance=1.3, lengthscale=ls), lambda X, ls: np_rbf(X, X, 1.3, ls)),
    "RationalQuadratic": (
        lambda ls: gk.RationalQuadratic(lengthscale=ls, alpha=0.6),
        lambda X, ls: np_rq(X, X, 1.0, ls, 0.6),
    ),
    "Matern12": (lambda ls: gk.Matern12(lengthscale=ls), lambda X, ls: np_matern12(X, X, 1.0, ls)),
    "Matern52": (
        lambda ls: gk.Matern52(variance=0.7, lengthscale=ls),
        lambda X, ls: np_matern52(X, X, 0.7, ls),
    ),
    "Periodic": (
        lambda ls: gk.Periodic(lengthscale=ls, period=7.0),
        lambda X, ls: np_periodic(X, X, 1.0, ls, 7.0),
    ),
}


def extra_error(path, X, ls, dtype):
    """The absolute Gram error each module docstring states for a fast path beyond the pointwise one."""
    eps = float(np.finfo(dtype).eps)
    if path == "matmul":  # about 4 eps · max |a|², a = (x - mean)/ℓ
        A = (X - X.mean(axis=0)) / ls
        return 4 * eps * X.shape[1] * float(np.max(np.sum(A**2, axis=1)))
    if path == "features":  # a few eps · Σ 1/ℓ²
        return 8 * eps * float(np.sum(np.broadcast_to(np.asarray(ls) ** -2.0, X.shape[1:])))
    return 0.0  # columns / vmap: the pointwise arithmetic


@pytest.mark.parametrize("d", [1, 3, WIDE])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("name", list(ACCURACY))
def test_gram_error_of_every_path_against_float64_reference(name, dtype, d):
    X = spread_inputs(300, d, dtype)
    ls = 1.0 if d == 1 else np.linspace(0.8, 1.2, d)
    make, reference = ACCURACY[name]
    k = make(ls if d == 1 else jnp.asarray(ls, dtype))
    path = k.matrix_path(d, dtype)
    ref = reference(X.astype(np.float64), ls)
    fast = np.asarray(jax.jit(lambda X: k.gram(X))(X), np.float64)
    core = np.asarray(jax.jit(lambda X: vmap_cross(k.evaluate, X, X))(X), np.float64)
    err_fast, err_core = np.max(np.abs(fast - ref)), np.max(np.abs(core - ref))
    eps = float(np.finfo(dtype).eps)
    bound = 2 * err_core + 4 * eps + extra_error(path, X.astype(np.float64), ls, dtype)
    assert err_fast <= bound, f"{path}: {err_fast:.2e} > {bound:.2e} (pointwise {err_core:.2e})"
    if dtype == np.float32:
        # float32 takes no path less accurate than the pointwise formula
        assert path in ("columns", "vmap"), path
        assert err_fast <= 2 * err_core + 4 * eps
    else:
        # float64: far below float32's pointwise round-off even on data spanning
        # ~60 lengthscales in 40 columns (the matrix product's worst case here)
        assert err_fast <= 1e-8


def test_issue_example_float32_gram_factorises():
    # Before: the float32 matrix-product path gave a Gram error of 2.4e-4 and
    # K + 1e-3 I failed to factorise; exact differences give ~1e-7.
    X = spread_inputs(1000, 3, np.float32)
    K = gk.RBF().gram(X)
    assert K.dtype == jnp.float32
    err = np.max(
        np.abs(
            np.asarray(K, np.float64) - np_rbf(X.astype(np.float64), X.astype(np.float64), 1.0, 1.0)
        )
    )
    assert err < 1e-6
    for noise in (1e-3, 1e-4):
        L = jnp.linalg.cholesky(K + noise * jnp.eye(1000, dtype=jnp.float32))
        assert bool(jnp.all(jnp.isfinite(L))), noise
