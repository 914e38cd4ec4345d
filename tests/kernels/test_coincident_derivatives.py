"""First and second input-derivatives of every kernel at coincident inputs ``x = y``.

Closed forms: for a stationary kernel ``k = v · g(r²)``, ``r² = Σ_i Δ_i²/ℓ_i²``
and ``Δ = x - y``, at ``Δ = 0`` the gradients vanish and

    ∂²k/∂x_i∂x_j = 2 v g'(0) δ_ij / ℓ_i²,     ∂²k/∂x_i∂y_j = -2 v g'(0) δ_ij / ℓ_i²,

with ``g'(0) = -1/2`` (RBF, rational quadratic), ``-3/2`` (Matérn-3/2) and
``-5/6`` (Matérn-5/2) from the series of each profile (Rasmussen & Williams
2006, eq. 4.14-4.19). Matérn-1/2 has a kink at ``r = 0``: the library
documents 0 for its derivatives there. Periodic: ``2 sin²(πΔ/p)/ℓ² ≈
2π²Δ²/(p²ℓ²)``; cosine: ``cos(2πΔ/p)``; dot-product kernels by direct
differentiation. Every code path is exercised: the pointwise ``k(x, y)``, and
``cross``/``gram`` entries whose path (columns, matrix product, features,
vmap core) depends on ``d`` and the dtype; in float64 and float32.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gpjax_lite.kernels as gk

V = 1.5
WIDE = 33  # beyond COLUMNWISE_MAX_DIM: the vmap core
G0 = {
    "RBF": -0.5,
    "RationalQuadratic": -0.5,
    "Matern12": 0.0,
    "Matern32": -1.5,
    "Matern52": -5.0 / 6.0,
}


def lengthscales(d):
    return 0.7 if d == 1 else np.linspace(0.7, 1.3, d)


def build(name, d, dtype):
    ls = jnp.asarray(lengthscales(d), dtype)
    v = jnp.asarray(V, dtype)
    if name == "RationalQuadratic":
        return gk.RationalQuadratic(variance=v, lengthscale=ls, alpha=jnp.asarray(0.8, dtype))
    if name in G0:
        return getattr(gk, name)(variance=v, lengthscale=ls)
    if name == "Periodic":
        return gk.Periodic(variance=v, lengthscale=ls, period=jnp.asarray(1.9, dtype))
    if name == "Cosine":
        return gk.Cosine(variance=v, period=jnp.asarray(1.9, dtype), active_dims=(d - 1,))
    if name == "Linear":
        return gk.Linear(variance=v)
    if name == "Polynomial":
        return gk.Polynomial(variance=v, bias=jnp.asarray(0.6, dtype), degree=3)
    if name == "Constant":
        return gk.Constant(variance=v)
    if name == "Sum":
        return build("Matern52", d, dtype) + build("Periodic", d, dtype)
    if name == "Product":
        return build("Matern32", d, dtype) * build("RBF", d, dtype)
    if name == "Scaled":
        return 0.5 * build("RationalQuadratic", d, dtype)
    raise ValueError(name)


def closed_form(name, d, p):
    """``(grad_x, hess_xx, mixed_xy)`` of ``k(x, y)`` at ``x = y = p``, in float64."""
    p = np.asarray(p, np.float64)
    eye = np.eye(d)
    zero = np.zeros(d)
    if name in G0:
        w = np.broadcast_to(np.asarray(lengthscales(d)) ** -2.0, (d,))
        h = 2.0 * V * G0[name] * np.diag(w)
        return zero, h, -h
    if name == "Periodic":
        w = np.broadcast_to(np.asarray(lengthscales(d)) ** -2.0, (d,))
        h = -V * 4.0 * math.pi**2 / 1.9**2 * np.diag(w)
        return zero, h, -h
    if name == "Cosine":
        h = np.zeros((d, d))
        h[d - 1, d - 1] = -V * (2.0 * math.pi / 1.9) ** 2
        return zero, h, -h
    if name == "Linear":
        return V * p, np.zeros((d, d)), V * eye
    if name == "Polynomial":
        s, m = p @ p + 0.6, 3
        outer = np.outer(p, p)
        return (
            V * m * s ** (m - 1) * p,
            V * m * (m - 1) * s ** (m - 2) * outer,
            V * m * s ** (m - 1) * eye + V * m * (m - 1) * s ** (m - 2) * outer,
        )
    if name == "Constant":
        return zero, np.zeros((d, d)), np.zeros((d, d))
    if name == "Sum":
        a, b = closed_form("Matern52", d, p), closed_form("Periodic", d, p)
        return tuple(x + y for x, y in zip(a, b))
    if name == "Product":  # first derivatives vanish at x = y, so only k1'' k2 + k1 k2'' remain
        a, b = closed_form("Matern32", d, p), closed_form("RBF", d, p)
        return zero, V * a[1] + V * b[1], V * a[2] + V * b[2]
    if name == "Scaled":
        return tuple(0.5 * x for x in closed_form("RationalQuadratic", d, p))
    raise ValueError(name)


NAMES = list(G0) + [
    "Periodic",
    "Cosine",
    "Linear",
    "Polynomial",
    "Constant",
    "Sum",
    "Product",
    "Scaled",
]
# d = 3 everywhere; scalar lengthscales at d = 1; the vmap core beyond COLUMNWISE_MAX_DIM.
CASES = (
    [(n, 3) for n in NAMES]
    + [(n, 1) for n in ("RBF", "Matern32", "Periodic", "Cosine")]
    + [pytest.param(n, WIDE, marks=pytest.mark.slow) for n in ("RBF", "Matern52", "Periodic")]
)
PLAIN_CASES = [tuple(c.values) if hasattr(c, "values") else c for c in CASES]
CASE_IDS = [f"{n}-d{d}" for n, d in PLAIN_CASES]
DTYPES = [np.float64, np.float32]
HOWS = ("call", "gram")  # `cross` takes the same path as `gram` (checked on its own below)


def entry(k, how):
    """``k(x, y)`` through one public method: the pointwise call, a cross or a gram entry."""
    if how == "call":
        return lambda x, y: k(x, y)
    if how == "cross":
        return lambda x, y: k.cross(x[None], y[None])[0, 0]
    # gram of [x, y, z]: x and y are separate rows that happen to coincide, and z
    # moves the centre used by the matrix-product and feature paths
    return lambda x, y: k.gram(jnp.stack([x, y, x + 0.37]))[0, 1]


@eqx.filter_jit
def derivatives(k, p):
    """Every first and second input-derivative at ``x = y = p``, through every public method."""
    out = {}
    for how in HOWS:
        f = entry(k, how)
        out[how] = {
            "jacrev x": jax.jacrev(f, 0)(p, p),
            "jacfwd y": jax.jacfwd(f, 1)(p, p),
            "hessian x": jax.hessian(f, 0)(p, p),
            "fwd-over-rev xy": jax.jacfwd(jax.jacrev(f, 0), 1)(p, p),
            "rev-over-rev xy": jax.jacrev(jax.jacrev(f, 0), 1)(p, p),
        }
    return out


def tolerance(dtype, scale):
    return (1e-9, 1e-9 * scale) if dtype == np.float64 else (2e-3, 2e-3 * scale)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name, d", CASES, ids=CASE_IDS)
def test_first_and_second_input_derivatives_at_coincident_points(name, d, dtype):
    k = build(name, d, dtype)
    p = jnp.asarray(np.linspace(0.3, 0.9, d), dtype)
    grad_x, hess_xx, mixed = closed_form(name, d, p)
    scale = 1.0 + float(np.max(np.abs(hess_xx))) + float(np.max(np.abs(mixed)))
    rtol, atol = tolerance(dtype, scale)
    # k(x, y) = k(y, x): the y-gradient at x = y is the x-gradient
    want = {
        "jacrev x": grad_x,
        "jacfwd y": grad_x,
        "hessian x": hess_xx,
        "fwd-over-rev xy": mixed,
        "rev-over-rev xy": mixed,
    }
    got = derivatives(k, p)
    for how in HOWS:
        for key, value in got[how].items():
            assert value.dtype == dtype, (how, key)
            np.testing.assert_allclose(
                np.asarray(value, np.float64),
                want[key],
                rtol=rtol,
                atol=atol,
                err_msg=f"{how}: {key}",
            )


@pytest.mark.parametrize("name", ["RBF", "Periodic", "Matern52"])
def test_cross_entry_mixed_derivative(name):
    # `cross(x[None], y[None])` with x = y: the same hooks as `gram`, with a centre taken from x alone.
    k = build(name, 3, np.float64)
    p = jnp.asarray([0.3, 0.6, 0.9])
    f = lambda x, y: k.cross(x[None], y[None])[0, 0]  # noqa: E731
    mixed = jax.jit(jax.jacfwd(jax.jacrev(f, 0), 1))(p, p)
    np.testing.assert_allclose(mixed, closed_form(name, 3, p)[2], rtol=1e-9, atol=1e-9)


def test_paths_exercised_above():
    # The cases above cover every path in each dtype.
    paths = {
        (n, d, np.dtype(t).name): build(n, d, t).matrix_path(d, t)
        for n, d in PLAIN_CASES
        for t in DTYPES
    }
    assert paths[("RBF", 1, "float64")] == "columns"
    assert paths[("RBF", 3, "float64")] == "matmul"
    assert paths[("RBF", 3, "float32")] == "columns"
    assert paths[("RBF", WIDE, "float32")] == "vmap"
    assert paths[("Matern52", WIDE, "float64")] == "vmap"
    assert paths[("Periodic", 3, "float64")] == "features"
    assert paths[("Periodic", 3, "float32")] == "columns"
    assert paths[("Periodic", WIDE, "float32")] == "vmap"
    assert paths[("Scaled", 3, "float64")] == "matmul"


@pytest.mark.parametrize(
    "cls, mixed",
    [(gk.Matern52, 5 * 1.5 / (3 * 0.7**2)), (gk.Matern32, 3 * 1.5 / 0.7**2)],
    ids=["Matern52", "Matern32"],
)
def test_issue_values_and_finite_differences(cls, mixed):
    # The values reported in the issue (gpjax_lite gave -10.2 and 0), and central
    # differences of the NumPy formula in float64.
    k = cls(variance=1.5, lengthscale=0.7)
    got = jax.grad(jax.grad(lambda x, y: k(x, y), 0), 1)(0.3, 0.3)
    np.testing.assert_allclose(got, mixed, rtol=1e-12)

    def np_k(tau):
        r = abs(tau) / 0.7
        if cls is gk.Matern52:
            return 1.5 * (1 + math.sqrt(5) * r + 5 * r**2 / 3) * math.exp(-math.sqrt(5) * r)
        return 1.5 * (1 + math.sqrt(3) * r) * math.exp(-math.sqrt(3) * r)

    h = 1e-4  # d²k/dxdy = -k''(τ) at τ = x - y = 0
    fd = -(np_k(h) - 2 * np_k(0.0) + np_k(-h)) / h**2
    np.testing.assert_allclose(got, fd, rtol=1e-3)


STATIONARY_LIKE = list(G0) + ["Periodic", "Cosine"]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
@pytest.mark.parametrize("name", STATIONARY_LIKE)
def test_hyperparameter_derivatives_at_coincident_points(name, dtype):
    d = 3
    # k(p, p) = variance whatever the other hyperparameters: gradient 1 for the
    # variance, 0 for the rest, and finite (zero) second derivatives.
    k = build(name, d, dtype)
    X = jnp.asarray(np.stack([np.linspace(0.3, 0.9, d)] * 2 + [np.linspace(1.0, 2.0, d)]), dtype)
    grads, second = hyperparameter_derivatives(k, X)
    atol = 1e-12 if dtype == np.float64 else 1e-5  # round-off of the matmul/feature paths
    for field in ("lengthscale", "period", "alpha"):
        if hasattr(k, field):
            np.testing.assert_allclose(np.asarray(getattr(grads, field)), 0.0, atol=atol)
    np.testing.assert_allclose(np.asarray(grads.variance), 1.0, rtol=1e-6)
    if second is not None:
        assert np.all(np.isfinite(np.asarray(second)))
        np.testing.assert_allclose(np.asarray(second, np.float64), 0.0, atol=1e-6)


@eqx.filter_jit
def hyperparameter_derivatives(k, X):
    """Gradient of the coincident entry ``K[0, 1]`` over all hyperparameters; its lengthscale Hessian."""

    def value(k):
        return k.gram(X)[0, 1]

    second = None
    if hasattr(k, "lengthscale"):
        second = jax.hessian(lambda ls: value(eqx.tree_at(lambda k: k.lengthscale, k, ls)))(
            k.lengthscale
        )
    return eqx.filter_grad(value)(k), second


def test_matern12_documented_values_at_the_kink():
    k = gk.Matern12(variance=1.5, lengthscale=0.7)
    f = lambda x, y: k(x, y)  # noqa: E731
    assert float(jax.grad(f, 0)(0.3, 0.3)) == 0.0
    assert float(jax.grad(jax.grad(f, 0), 1)(0.3, 0.3)) == 0.0
    # and off the kink, the ordinary derivative -v/ℓ · sign(x - y) · exp(-|x - y|/ℓ)
    np.testing.assert_allclose(
        jax.grad(f, 0)(0.5, 0.3), -1.5 / 0.7 * math.exp(-0.2 / 0.7), rtol=1e-12
    )
