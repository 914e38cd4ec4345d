"""gpjax_lite.GP: prior, log marginal likelihood, its derivatives, transformations and errors.

The references are independent of the library: Gram matrices are written in
NumPy from the API's closed forms, and the marginal likelihood is SciPy's
``multivariate_normal.logpdf`` of ``y`` under ``N(m, K + Σ)``.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import pytest
import scipy.stats
from jax.flatten_util import ravel_pytree
from oracle import linear as np_linear
from oracle import matern12 as np_matern12
from oracle import matern32 as np_matern32
from oracle import matern52 as np_matern52
from oracle import periodic as np_periodic
from oracle import rational_quadratic as np_rq
from oracle import rbf as np_rbf

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite import GP
from gpjax_lite.means import Constant, Zero

N, D = 12, 2
RNG = np.random.default_rng(20240601)
X = RNG.uniform(-2.0, 2.0, size=(N, D))
Y = np.sin(X[:, 0]) + 0.5 * np.cos(2 * X[:, 1]) + 0.1 * RNG.normal(size=N)
HETERO = RNG.uniform(0.05, 0.3, size=N)

#: The session's float dtype: float64, or float32 when 64-bit JAX is off
#: (``JAX_ENABLE_X64=0``, see conftest.py). NumPy inputs are converted to it.
FLOAT = jnp.result_type(float)
X64 = FLOAT == jnp.float64


def tol(x64, x32):
    """A tolerance: ``x64`` in float64; ``x32`` in float32 mode, set by round-off
    (eps32 ≈ 1.2e-7 times the conditioning of these small, well-posed problems)."""
    return x64 if X64 else x32


def type_checked(request) -> bool:
    """Whether jaxtyping's runtime checker instruments gpjax_lite (the CI pass with
    ``--jaxtyping-packages=gpjax_lite,beartype.beartype``). An argument of the wrong
    *type* is then rejected by its annotation, with a ``jaxtyping.TypeCheckError``
    (a ``TypeError``) naming the parameter, before the library's own check runs."""
    return bool(request.config.getoption("jaxtyping_packages", None))


class LinearMean(eqx.Module):
    """A user-defined mean (not a MeanFunction subclass): ``m(x) = w·x + b``."""

    w: jax.Array
    b: jax.Array

    def __call__(self, x):
        return jnp.dot(self.w, x) + self.b


W, B0 = np.array([0.5, -1.0]), 0.3

# (id, library kernel, NumPy Gram on (A, B))
KERNELS = [
    ("rbf", lambda: gk.RBF(variance=1.3, lengthscale=0.8), lambda A, B: np_rbf(A, B, 1.3, 0.8)),
    (
        "rbf-ard",
        lambda: gk.RBF(variance=0.9, lengthscale=jnp.array([0.5, 2.0])),
        lambda A, B: np_rbf(A, B, 0.9, [0.5, 2.0]),
    ),
    (
        "matern12",
        lambda: gk.Matern12(variance=1.1, lengthscale=1.2),
        lambda A, B: np_matern12(A, B, 1.1, 1.2),
    ),
    (
        "matern32-ard",
        lambda: gk.Matern32(lengthscale=jnp.array([0.7, 1.5])),
        lambda A, B: np_matern32(A, B, 1.0, [0.7, 1.5]),
    ),
    (
        "matern52",
        lambda: gk.Matern52(variance=0.6, lengthscale=0.9),
        lambda A, B: np_matern52(A, B, 0.6, 0.9),
    ),
    (
        "rq",
        lambda: gk.RationalQuadratic(variance=1.0, lengthscale=1.1, alpha=0.7),
        lambda A, B: np_rq(A, B, 1.0, 1.1, 0.7),
    ),
    (
        "periodic-ard",
        lambda: gk.Periodic(variance=0.8, lengthscale=jnp.array([1.0, 0.6]), period=2.5),
        lambda A, B: np_periodic(A, B, 0.8, [1.0, 0.6], 2.5),
    ),
    (
        "sum",
        lambda: gk.RBF(lengthscale=2.0) + gk.Linear(variance=0.3),
        lambda A, B: np_rbf(A, B, 1.0, 2.0) + np_linear(A, B, 0.3),
    ),
    (
        "product",
        lambda: gk.Matern52(lengthscale=1.5) * gk.Periodic(period=3.0),
        lambda A, B: np_matern52(A, B, 1.0, 1.5) * np_periodic(A, B, 1.0, 1.0, 3.0),
    ),
    (
        "scaled-active-dims",
        lambda: 2.0 * gk.RBF(active_dims=(1,)) + gk.Matern12(lengthscale=0.5, active_dims=(0,)),
        lambda A, B: 2.0 * np_rbf(A[:, 1:], B[:, 1:]) + np_matern12(A[:, :1], B[:, :1], 1.0, 0.5),
    ),
]
KERNEL_IDS = [k[0] for k in KERNELS]

MEANS = [
    ("zero", Zero, lambda A: np.zeros(len(A))),
    ("constant", lambda: Constant(0.7), lambda A: np.full(len(A), 0.7)),
    ("user-linear", lambda: LinearMean(jnp.asarray(W), jnp.asarray(B0)), lambda A: A @ W + B0),
]
NOISES = {"scalar": 0.1, "per-point": HETERO}


def scipy_lml(K, m, noise, y=Y):
    cov = K + np.diag(np.broadcast_to(noise, (len(y),)))
    return scipy.stats.multivariate_normal(mean=m, cov=cov).logpdf(y)


# ----------------------------------------------------- marginal likelihood
@pytest.mark.parametrize("noise_kind", list(NOISES))
@pytest.mark.parametrize("kid, make_kernel, np_gram", KERNELS, ids=KERNEL_IDS)
def test_lml_matches_scipy_per_kernel(kid, make_kernel, np_gram, noise_kind):
    noise = NOISES[noise_kind]
    gp = GP(make_kernel(), mean=Constant(0.7), noise=noise)
    expected = scipy_lml(np_gram(X, X), np.full(N, 0.7), noise)
    value = gp.log_marginal_likelihood(X, Y)
    assert value.shape == () and value.dtype == FLOAT
    np.testing.assert_allclose(float(value), expected, rtol=tol(1e-10, 1e-5))


@pytest.mark.parametrize("noise_kind", list(NOISES))
@pytest.mark.parametrize("mid, make_mean, np_mean", MEANS, ids=[m[0] for m in MEANS])
def test_lml_matches_scipy_per_mean(mid, make_mean, np_mean, noise_kind):
    noise = NOISES[noise_kind]
    gp = GP(gk.RBF(variance=0.9, lengthscale=jnp.array([0.5, 2.0])), mean=make_mean(), noise=noise)
    expected = scipy_lml(np_rbf(X, X, 0.9, [0.5, 2.0]), np_mean(X), noise)
    value = gp.log_marginal_likelihood(X, Y)
    np.testing.assert_allclose(float(value), expected, rtol=tol(1e-10, 1e-5))


def test_lml_default_model_and_1d_inputs():
    x = X[:, 0]
    gp = GP(gk.Matern32())  # Zero mean, noise 1e-2 by default
    assert float(gp.noise) == float(jnp.asarray(1e-2)) and isinstance(gp.mean, Zero)
    expected = scipy_lml(np_matern32(x[:, None], x[:, None]), np.zeros(N), 1e-2)
    value = gp.log_marginal_likelihood(x, Y)
    np.testing.assert_allclose(float(value), expected, rtol=tol(1e-10, 1e-5))
    # (n,) is read as (n, 1)
    assert float(gp.log_marginal_likelihood(x, Y)) == float(
        gp.log_marginal_likelihood(x[:, None], Y)
    )


def test_prior_moments():
    gp = GP(gk.Matern52(variance=0.6, lengthscale=0.9), mean=Constant(0.7))
    prior = gp.prior(X)
    assert isinstance(prior, gl.MultivariateNormal)
    np.testing.assert_allclose(np.asarray(prior.mean), np.full(N, 0.7))
    # The prior covariance is the Gram matrix itself: no jitter, no noise.
    np.testing.assert_allclose(
        np.asarray(prior.covariance()), np_matern52(X, X, 0.6, 0.9), rtol=tol(1e-13, 1e-5)
    )


# ------------------------------------------------------------------ gradients
def _grad_models():
    return [
        (
            "rbf-ard+constant",
            GP(
                gk.RBF(variance=1.3, lengthscale=jnp.array([0.7, 1.6])),
                mean=Constant(0.4),
                noise=0.15,
            ),
            5,  # variance, 2 lengthscales, mean value, noise
        ),
        (
            "periodic+per-point-noise",
            GP(gk.Periodic(variance=0.9, lengthscale=0.8, period=2.2), noise=HETERO),
            3 + N,
        ),
        (
            "rq+matern52-ard",
            GP(
                gk.RationalQuadratic(alpha=0.8, lengthscale=1.2)
                + gk.Matern52(variance=0.5, lengthscale=jnp.array([1.0, 0.5])),
                noise=0.2,
            ),
            3 + 3 + 1,
        ),
    ]


GRAD_MODELS = _grad_models()


def _flat_objective(gp):
    params, static = eqx.partition(gp, eqx.is_inexact_array)
    flat, unravel = ravel_pytree(params)

    def f(v):
        return eqx.combine(unravel(v), static).log_marginal_likelihood(X, Y)

    return f, flat


@eqx.filter_jit
def grad_bundle(gp, points):
    """One compiled program per model structure: reverse mode with ``equinox.filter_grad``
    on the module, forward mode (``jax.jacfwd``, through the custom JVP) on the flat
    hyperparameter vector, and the objective at the finite-difference ``points``."""
    f, flat = _flat_objective(gp)
    grads = eqx.filter_grad(lambda g: g.log_marginal_likelihood(X, Y))(gp)
    return grads, jax.jacfwd(f)(flat), jax.vmap(f)(points)


def fd_points(v, rel_step=1e-5):
    """Evaluation points for central differences: ``v ± h_i e_i``, stacked, and the steps.

    ``h_i = rel_step · max(|v_i|, 1e-2)``: truncation error O(h²) and round-off
    O(eps·|f| / h) are both ≲ 1e-9 relative here.
    """
    v = np.asarray(v, dtype=float)
    h = rel_step * np.maximum(np.abs(v), 1e-2)
    E = np.diag(h)
    return jnp.asarray(np.concatenate([v + E, v - E])), h


def fd_from_values(values, h):
    values = np.asarray(values)
    return (values[: h.size] - values[h.size :]) / (2 * h)


@pytest.mark.x64  # central differences, steps ~1e-5: float32 round-off (eps32/h ~ 1e-2) swamps them
@pytest.mark.parametrize("mid, gp, n_params", GRAD_MODELS, ids=[m[0] for m in GRAD_MODELS])
def test_hyperparameter_gradients_match_finite_differences(mid, gp, n_params):
    _, flat = _flat_objective(gp)
    assert flat.size == n_params  # every hyperparameter is covered
    points, h = fd_points(flat)
    grads, forward, values = grad_bundle(gp, points)
    g_flat = ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))[0]
    np.testing.assert_allclose(np.asarray(g_flat), fd_from_values(values, h), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(forward), np.asarray(g_flat), rtol=1e-10)


@pytest.mark.parametrize("mid, gp, n_params", GRAD_MODELS, ids=[m[0] for m in GRAD_MODELS])
def test_forward_and_reverse_mode_gradients_agree(mid, gp, n_params):
    """Both modes go through the custom JVP; in either dtype they agree to round-off
    (the float64 finite-difference check above is the accuracy test)."""
    grads, forward, _ = grad_bundle(gp, fd_points(_flat_objective(gp)[1])[0])  # cached program
    g_flat = np.asarray(ravel_pytree(eqx.filter(grads, eqx.is_inexact_array))[0])
    assert g_flat.dtype == FLOAT and np.all(np.isfinite(g_flat))
    scale = np.max(np.abs(g_flat))
    np.testing.assert_allclose(
        np.asarray(forward), g_flat, rtol=tol(1e-10, 1e-4), atol=tol(0, 1e-5) * scale
    )


def test_gradient_wrt_targets_closed_form():
    """``d/dy log N(y | m, A) = -A⁻¹ (y - m)``, ``A = K + σ²I``, in either dtype
    (the finite-difference test of the input gradient needs float64)."""
    kernel = gk.RBF(lengthscale=jnp.array([0.7, 1.6]))
    gp = GP(kernel, mean=Constant(0.2), noise=0.1)
    g_X, g_y = jax.jit(jax.grad(gp.log_marginal_likelihood, argnums=(0, 1)))(X, Y)
    assert g_X.shape == (N, D) and g_y.shape == (N,) and g_y.dtype == FLOAT
    assert np.all(np.isfinite(np.asarray(g_X)))
    A = np_rbf(X, X, 1.0, [0.7, 1.6]) + 0.1 * np.eye(N)
    expected = -np.linalg.solve(A, Y - 0.2)
    np.testing.assert_allclose(np.asarray(g_y), expected, rtol=tol(1e-10, 1e-4), atol=tol(0, 1e-5))


def test_gradient_names_each_hyperparameter():
    """Per-field gradients against central differences of the SciPy reference
    (independent of the library's own forward pass)."""
    gp = GRAD_MODELS[0][1]  # RBF(1.3, [0.7, 1.6]), Constant(0.4), noise 0.15
    grads = grad_bundle(gp, fd_points(_flat_objective(gp)[1])[0])[0]  # reuses the compiled program

    def lml(variance=1.3, ls=(0.7, 1.6), c=0.4, noise=0.15):
        return scipy_lml(np_rbf(X, X, variance, list(ls)), np.full(N, c), noise)

    h = 1e-6
    checks = {
        "variance": (
            grads.kernel.variance,
            (lml(variance=1.3 + h) - lml(variance=1.3 - h)) / (2 * h),
        ),
        "lengthscale[1]": (
            grads.kernel.lengthscale[1],
            (lml(ls=(0.7, 1.6 + h)) - lml(ls=(0.7, 1.6 - h))) / (2 * h),
        ),
        "mean": (grads.mean.value, (lml(c=0.4 + h) - lml(c=0.4 - h)) / (2 * h)),
        "noise": (grads.noise, (lml(noise=0.15 + h) - lml(noise=0.15 - h)) / (2 * h)),
    }
    for name, (got, want) in checks.items():
        np.testing.assert_allclose(float(got), want, rtol=1e-5, err_msg=name)


@pytest.mark.x64  # central differences of the gradient with h = 1e-5: float32 round-off swamps them
@pytest.mark.parametrize("per_point", [False, True], ids=["scalar-noise", "per-point-noise"])
def test_noise_hessian_matches_finite_difference_of_gradient(per_point):
    kernel = gk.RBF(lengthscale=0.8)

    def f(noise):
        return GP(kernel, noise=noise).log_marginal_likelihood(X, Y)

    h = 1e-5
    s = HETERO if per_point else np.array(0.1)
    E = h * np.eye(s.size).reshape((s.size,) + s.shape)
    points = jnp.asarray(np.concatenate([s + E, s - E]))  # (2k, *s.shape)

    @jax.jit
    def run(s, points):
        return jax.hessian(f)(s), jax.vmap(jax.grad(f))(points)

    H, g = run(jnp.asarray(s), points)
    H, g = np.asarray(H), np.asarray(g).reshape(2 * s.size, -1)
    H_fd = ((g[: s.size] - g[s.size :]).T / (2 * h)).reshape(
        H.shape
    )  # column j: d grad / d noise_j
    np.testing.assert_allclose(H, H_fd, rtol=1e-6, atol=1e-6)
    if per_point:
        np.testing.assert_allclose(H, H.T, rtol=1e-10, atol=1e-12)


@pytest.mark.x64  # central differences with steps ~1e-5: float32 round-off swamps them
@pytest.mark.parametrize(
    "kernel",
    [gk.RBF(lengthscale=jnp.array([0.7, 1.6])), gk.Matern52(lengthscale=0.9)],
    ids=["rbf-ard", "matern52"],
)
def test_gradient_wrt_inputs_and_targets(kernel):
    gp = GP(kernel, mean=Constant(0.2), noise=0.1)

    def f(v):  # v = (X.ravel(), y)
        return gp.log_marginal_likelihood(v[: N * D].reshape(N, D), v[N * D :])

    v = np.concatenate([X.ravel(), Y])
    points, h = fd_points(v)

    @jax.jit
    def run(v, points, X_, y_):
        g_X = jax.grad(gp.log_marginal_likelihood)(X_, y_)  # w.r.t. an (n, d) array
        return jax.grad(f)(v), jax.vmap(f)(points), g_X

    g, values, g_X = run(jnp.asarray(v), points, jnp.asarray(X), jnp.asarray(Y))
    g = np.asarray(g)
    np.testing.assert_allclose(g, fd_from_values(values, h), rtol=1e-6, atol=1e-8)
    # d/dy log N(y | m, A) = -A⁻¹ (y - m), in closed form
    A = np.asarray(kernel.gram(X)) + 0.1 * np.eye(N)
    np.testing.assert_allclose(g[N * D :], -np.linalg.solve(A, Y - 0.2), rtol=1e-10)
    assert g_X.shape == (N, D)
    np.testing.assert_allclose(np.asarray(g_X).ravel(), g[: N * D], rtol=1e-12)


# --------------------------------------------------------- transformations
def test_jit_of_bound_method_and_of_module_argument():
    gp = GP(gk.RBF(lengthscale=0.8), mean=Constant(0.7), noise=0.1)
    eager = float(gp.log_marginal_likelihood(X, Y))
    same, ref = tol(1e-12, 1e-6), tol(1e-10, 1e-5)  # jit vs eager; vs the SciPy reference
    np.testing.assert_allclose(float(jax.jit(gp.log_marginal_likelihood)(X, Y)), eager, rtol=same)
    # A second model of the same structure with other values gets its own result
    # (no stale cache entry keyed on the model's structure).
    gp2 = GP(gk.RBF(lengthscale=1.7), mean=Constant(-0.2), noise=0.3)
    expected2 = scipy_lml(np_rbf(X, X, 1.0, 1.7), np.full(N, -0.2), 0.3)
    jitted2 = jax.jit(gp2.log_marginal_likelihood)(X, Y)
    np.testing.assert_allclose(float(jitted2), expected2, rtol=ref)
    # The module as a traced argument: one trace for two models of the same structure.
    traces = []

    @jax.jit
    def lml(model, X_, y_):
        traces.append(None)
        return model.log_marginal_likelihood(X_, y_)

    np.testing.assert_allclose(float(lml(gp, X, Y)), eager, rtol=same)
    np.testing.assert_allclose(float(lml(gp2, X, Y)), expected2, rtol=ref)
    assert len(traces) == 1


def test_vmap_of_a_cond_with_a_batched_predicate():
    # optax's L-BFGS evaluates the loss inside a `lax.cond`; under `vmap` (restarts
    # or datasets on an accelerator) the predicate is batched, and JAX then batches
    # every value the marginal likelihood's custom batching rule captures. It
    # raised an AssertionError while the noise was added at NumPy indices.
    rng = np.random.default_rng(3)
    X = rng.uniform(-2, 2, size=(12, D))
    ys = rng.normal(size=(2, 12))
    gp = GP(gk.RBF(), noise=0.1)

    def lml_if(flag, y):
        zero = lambda y: jnp.zeros((), jnp.result_type(y))  # noqa: E731
        return jax.lax.cond(flag, lambda y: gp.log_marginal_likelihood(X, y), zero, y)

    flags = jnp.array([True, False])
    out = jax.vmap(lml_if)(flags, ys)
    np.testing.assert_allclose(
        np.asarray(out), [float(gp.log_marginal_likelihood(X, ys[0])), 0.0], rtol=tol(1e-12, 1e-6)
    )
    grads = jax.vmap(jax.grad(lml_if, argnums=1))(flags, ys)
    np.testing.assert_allclose(
        np.asarray(grads[0]),
        np.asarray(jax.grad(gp.log_marginal_likelihood, argnums=1)(X, ys[0])),
        rtol=tol(1e-12, 1e-5),
    )
    np.testing.assert_array_equal(np.asarray(grads[1]), 0.0)


def test_vmap_over_datasets_equals_loop():
    rng = np.random.default_rng(7)
    Xb = rng.uniform(-2, 2, size=(32, N, D))
    yb = rng.normal(size=(32, N))
    gp = GP(gk.Matern32(lengthscale=jnp.array([0.7, 1.5])), mean=Constant(0.1), noise=0.2)
    batched = jax.jit(jax.vmap(gp.log_marginal_likelihood))(Xb, yb)
    assert batched.shape == (32,)
    loop = [float(gp.log_marginal_likelihood(Xb[i], yb[i])) for i in range(32)]
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=tol(1e-12, 1e-6))
    # and the loop itself is right
    np.testing.assert_allclose(
        loop[5],
        scipy_lml(np_matern32(Xb[5], Xb[5], 1.0, [0.7, 1.5]), np.full(N, 0.1), 0.2, yb[5]),
        rtol=tol(1e-10, 1e-5),
    )


def test_vmap_over_models_equals_loop():
    lengthscales = jnp.array([0.3, 0.6, 1.0, 1.7, 2.5, 4.0])
    noises = jnp.array([0.05, 0.1, 0.1, 0.2, 0.3, 0.5])
    gps = eqx.filter_vmap(lambda ls, s: GP(gk.RBF(lengthscale=ls), noise=s))(lengthscales, noises)
    assert gps.kernel.lengthscale.shape == (6,)  # a batch of models
    batched = eqx.filter_jit(eqx.filter_vmap(lambda g: g.log_marginal_likelihood(X, Y)))(gps)
    loop = [
        float(GP(gk.RBF(lengthscale=float(ls)), noise=float(s)).log_marginal_likelihood(X, Y))
        for ls, s in zip(lengthscales, noises)
    ]
    np.testing.assert_allclose(np.asarray(batched), loop, rtol=tol(1e-12, 1e-6))
    assert len(set(np.round(loop, 6))) == len(loop)  # the models really differ


@pytest.mark.x64  # compares a float32 model with a float64 one
def test_float32_agrees_with_float64():
    """Well-conditioned problem: n = 50, noise 0.1, signal variance 1.

    cond(K + σ²I) ≤ (n·1 + 0.1) / 0.1 ≈ 500, so the float32 Cholesky's relative
    error is at most about n · eps32 · cond ≈ 50 · 6e-8 · 500 ≈ 1.5e-3 in the
    worst case and ~1e-6 typically; we assert rtol 1e-4.
    """
    rng = np.random.default_rng(3)
    X50 = rng.uniform(0, 5, size=(50, 2))
    y50 = np.sin(X50).sum(1) + 0.3 * rng.normal(size=50)
    f32 = lambda a: jnp.asarray(a, jnp.float32)
    gp32 = GP(
        gk.RBF(variance=f32(1.0), lengthscale=f32([1.0, 1.5])),
        mean=Constant(f32(0.2)),
        noise=f32(0.1),
    )
    gp64 = GP(
        gk.RBF(variance=1.0, lengthscale=jnp.array([1.0, 1.5])), mean=Constant(0.2), noise=0.1
    )
    lml = jax.jit(lambda g, a, b: g.log_marginal_likelihood(a, b))
    v32 = lml(gp32, f32(X50), f32(y50))
    v64 = lml(gp64, X50, y50)
    assert v32.dtype == jnp.float32 and v64.dtype == jnp.float64
    np.testing.assert_allclose(float(v32), float(v64), rtol=1e-4)
    # Python-float hyperparameters are weakly typed: they keep float32 inputs float32.
    weak = lml(GP(gk.RBF(lengthscale=1.5), noise=0.1), f32(X50), f32(y50))
    assert weak.dtype == jnp.float32


def test_serialisation_round_trip(tmp_path):
    gp = GP(
        gk.RBF(variance=1.3, lengthscale=jnp.array([0.7, 1.6])) + gk.Periodic(period=2.2),
        mean=LinearMean(jnp.asarray(W), jnp.asarray(B0)),
        noise=jnp.asarray(HETERO),
        jitter=1e-7,
    )
    path = tmp_path / "gp.eqx"
    eqx.tree_serialise_leaves(path, gp)
    like = jax.tree_util.tree_map(lambda x: x * 0 + 1 if eqx.is_array(x) else x, gp)
    assert not eqx.tree_equal(like, gp)
    loaded = eqx.tree_deserialise_leaves(path, like)
    assert type(loaded) is GP and loaded.jitter == 1e-7
    for a, b in zip(jax.tree_util.tree_leaves(gp), jax.tree_util.tree_leaves(loaded)):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert float(loaded.log_marginal_likelihood(X, Y)) == float(gp.log_marginal_likelihood(X, Y))


# -------------------------------------------------------------------- sampling
def test_prior_sample_shape_and_covariance():
    """20 000 draws at n = 7 points; mean/covariance within 5 standard errors.

    Standard errors: sqrt(K_ii / N) for the mean, sqrt((K_ii K_jj + K_ij²) / N)
    for covariance entries (Gaussian fourth moments).
    """
    X7 = X[:7]
    gp = GP(gk.Matern52(variance=1.5, lengthscale=0.9), mean=Constant(0.7))
    n_draws = 20_000
    s = np.asarray(gp.sample(jax.random.key(0), X7, n_draws))
    assert s.shape == (n_draws, 7)
    assert gp.sample(jax.random.key(0), X7).shape == (1, 7)
    K = np_matern52(X7, X7, 1.5, 0.9)
    var = np.diag(K)
    assert np.all(np.abs(s.mean(0) - 0.7) <= 5 * np.sqrt(var / n_draws))
    se = np.sqrt((np.outer(var, var) + K**2) / n_draws)
    assert np.all(np.abs(np.cov(s, rowvar=False) - K) <= 5 * se)


def test_prior_sampling_of_singular_gram_needs_the_jitter():
    # Linear kernel on integer points: K = x xᵀ has rank 1, and every product is
    # exact (in float32 too), so the second Cholesky pivot is exactly 0 without jitter.
    x = np.arange(1.0, 13.0)
    gp = GP(gk.Linear())
    s = gp.sample(jax.random.key(0), x, 5)
    assert s.shape == (5, 12) and bool(jnp.all(jnp.isfinite(s)))
    # Draws are multiples of x up to the jitter, j · mean(diag K) on the diagonal (the
    # dtype default j: 1e-8 in float64, 1e-4 in float32): the part orthogonal to x has
    # std sqrt(j · mean(x²)) per entry (7.4e-4 in float64).
    s = np.asarray(s)
    jitter_sd = np.sqrt(gl.linalg.default_jitter(FLOAT) * np.mean(x**2))
    resid = s - np.outer(s @ x / (x @ x), x)
    assert np.max(np.abs(resid)) < 6 * jitter_sd
    assert np.max(np.abs(s)) > 100 * jitter_sd  # the draws are not ~0
    with pytest.raises(gl.CholeskyError, match="jitter"):
        GP(gk.Linear(), jitter=0.0).sample(jax.random.key(0), x, 5)


# ------------------------------------------------------------------ bad inputs
_EVALUATIONS = []


class CountingRBF(gk.Kernel):
    """An RBF that records every trace of its pointwise formula: a sensor for kernel work."""

    def evaluate(self, x, y):
        _EVALUATIONS.append(None)
        return jnp.exp(-0.5 * jnp.sum((x - y) ** 2))


def _with_nan(a, value=np.nan, index=3):
    a = np.array(a, dtype=float)
    a.flat[index] = value
    return a


BAD_DATA = [
    ("y-short", X, Y[:-1], "`y`"),
    ("y-long", X, np.append(Y, 0.0), "`y`"),
    ("y-2d", X, Y[:, None], "`y`"),
    ("y-scalar", X, np.float64(1.0), "`y`"),
    ("X-3d", X[None], Y, "`X`"),
    ("X-nan", _with_nan(X), Y, "`X`"),
    ("X-inf", _with_nan(X, np.inf), Y, "`X`"),
    ("X--inf", _with_nan(X, -np.inf), Y, "`X`"),
    ("y-nan", X, _with_nan(Y), "`y`"),
    ("y-inf", X, _with_nan(Y, np.inf), "`y`"),
]


@pytest.mark.parametrize("method", ["log_marginal_likelihood", "condition"])
@pytest.mark.parametrize("bid, X_, y_, name", BAD_DATA, ids=[b[0] for b in BAD_DATA])
def test_bad_data_raises_before_kernel_work(bid, X_, y_, name, method):
    gp = GP(CountingRBF(), noise=0.1)
    _EVALUATIONS.clear()
    with pytest.raises(ValueError, match=name):
        getattr(gp, method)(X_, y_)
    assert _EVALUATIONS == []


@pytest.mark.parametrize("bid, X_, y_, name", BAD_DATA[:5], ids=[b[0] for b in BAD_DATA[:5]])
def test_shape_errors_are_raised_under_jit_too(bid, X_, y_, name):
    gp = GP(gk.RBF(), noise=0.1)
    with pytest.raises(ValueError, match=name):
        jax.jit(gp.log_marginal_likelihood)(X_, y_)


@pytest.mark.parametrize(
    "noise",
    [
        0.0,
        -0.1,
        np.nan,
        np.inf,
        np.array([0.1] * (N - 1) + [0.0]),
        np.array([0.1] * (N - 1) + [np.nan]),
    ],
    ids=["zero", "negative", "nan", "inf", "per-point-zero", "per-point-nan"],
)
def test_bad_noise_value_raises_at_construction(noise):
    with pytest.raises(ValueError, match="`noise`"):
        GP(gk.RBF(), noise=noise)


def test_noise_of_rank_2_raises():
    with pytest.raises(
        ValueError, match=rf"`noise` must be a scalar or a 1-D array, got shape \({N}, 1\)"
    ):
        GP(gk.RBF(), noise=np.full((N, 1), 0.1))


@pytest.mark.parametrize("m", [N - 1, N + 1, 1])
@pytest.mark.parametrize("method", ["log_marginal_likelihood", "condition"])
def test_per_point_noise_of_wrong_length_raises(m, method):
    gp = GP(CountingRBF(), noise=np.full(m, 0.1))
    _EVALUATIONS.clear()
    with pytest.raises(ValueError, match="`noise`"):
        getattr(gp, method)(X, Y)
    assert _EVALUATIONS == []


def test_xt_with_other_number_of_columns_raises():
    post = GP(CountingRBF(), noise=0.1).condition(X, Y)
    _EVALUATIONS.clear()
    for Xt in (np.zeros((3, 3)), np.zeros(3), np.zeros((3, 1))):
        with pytest.raises(ValueError, match="`Xt`"):
            post.predict(Xt)
        with pytest.raises(ValueError, match="`Xt`"):
            post(Xt)
        with pytest.raises(ValueError, match="`Xt`"):
            post.sample(jax.random.key(0), Xt)
    assert _EVALUATIONS == []


@pytest.mark.parametrize(
    "kernel", [lambda x, y: 1.0, "rbf", None, gk.RBF], ids=["lambda", "str", "None", "class"]
)
def test_kernel_not_a_kernel_raises_type_error(kernel, request):
    if type_checked(request):  # the annotation `kernel: Kernel` rejects it first
        with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'kernel'"):
            GP(kernel)
        return
    with pytest.raises(TypeError, match="`kernel`"):
        GP(kernel)


def test_mean_not_callable_raises_type_error(request):
    if type_checked(request):  # the annotation `mean: Callable[...]` rejects it first
        with pytest.raises(jaxtyping.TypeCheckError, match="parameter 'mean'"):
            GP(gk.RBF(), mean=0.5)
        return
    with pytest.raises(TypeError, match="`mean`"):
        GP(gk.RBF(), mean=0.5)


def test_lengthscale_not_matching_d_raises():
    with pytest.raises(ValueError, match="`lengthscale`"):
        GP(gk.RBF(lengthscale=jnp.ones(3))).log_marginal_likelihood(X, Y)


# --------------------------------------------------------- non-PD matrices
def _near_duplicates_f32():
    """20 float32 inputs spread over 2e-5 with an RBF lengthscale of 10.

    Every scaled squared distance is below 4e-12, so every kernel entry rounds
    to exactly 1.0 in float32, and 1 + 1e-9 rounds to 1: K + σ²I is the all-ones
    matrix (rank 1), whose Cholesky fails deterministically (a zero pivot).
    """
    x = (1.0 + 1e-6 * np.arange(20)).astype(np.float32)
    y = np.random.default_rng(0).normal(size=20).astype(np.float32)
    gp = GP(gk.RBF(lengthscale=jnp.float32(10.0)), noise=jnp.float32(1e-9))
    return gp, x, y


@pytest.mark.parametrize("method", ["log_marginal_likelihood", "condition"])
def test_non_positive_definite_raises_cholesky_error_eagerly(method):
    gp, x, y = _near_duplicates_f32()
    with pytest.raises(gl.CholeskyError) as info:
        getattr(gp, method)(x, y)
    assert isinstance(info.value, np.linalg.LinAlgError) and isinstance(info.value, ValueError)
    message = str(info.value)
    for hint in ("noise", "jitter", "float64"):
        assert hint in message
    # The documented remedy works: a larger noise factorises fine.
    fixed = eqx.tree_at(lambda g: g.noise, gp, jnp.float32(1e-2))
    assert np.isfinite(float(fixed.log_marginal_likelihood(x, y)))


def test_non_positive_definite_under_jit_gives_nan_and_invalid_posterior():
    gp, x, y = _near_duplicates_f32()
    assert math.isnan(float(jax.jit(gp.log_marginal_likelihood)(x, y)))
    post = jax.jit(lambda g, a, b: g.condition(a, b))(gp, x, y)
    assert isinstance(post, gl.Posterior)
    assert not bool(post.is_valid())
    assert not bool(jax.jit(lambda g, a, b: g.condition(a, b).is_valid())(gp, x, y))
    ok = eqx.tree_at(lambda g: g.noise, gp, jnp.float32(1e-2))
    assert bool(jax.jit(lambda g, a, b: g.condition(a, b).is_valid())(ok, x, y))
