"""Kernels under jax.jit, jax.grad and jax.vmap.

Gradients are checked against central finite differences in float64 for every
hyperparameter of every kernel, with coincident input points in the data (the
Matérn kernels must not give NaN gradients on the Gram diagonal).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gpjax_lite.kernels as gk
from gpjax_lite.kernels.stationary import FAST_PATH_MIN_DIM

D_WIDE = max(6, FAST_PATH_MIN_DIM)
N, M = 6, 4


def _ls(d):
    return 0.9 if d == 1 else np.linspace(0.8, 1.6, d)


BUILDERS = {
    "RBF": lambda d: gk.RBF(variance=1.3, lengthscale=_ls(d)),
    "Matern12": lambda d: gk.Matern12(variance=0.7, lengthscale=_ls(d)),
    "Matern32": lambda d: gk.Matern32(variance=1.9, lengthscale=_ls(d)),
    "Matern52": lambda d: gk.Matern52(variance=1.1, lengthscale=_ls(d)),
    "RationalQuadratic": lambda d: gk.RationalQuadratic(
        variance=1.2, lengthscale=_ls(d), alpha=1.7
    ),
    "Periodic": lambda d: gk.Periodic(variance=0.8, lengthscale=_ls(d), period=1.4),
    "Cosine": lambda d: gk.Cosine(variance=1.5, period=2.3),
    "Linear": lambda d: gk.Linear(variance=0.6),
    "Polynomial": lambda d: gk.Polynomial(variance=0.4, bias=0.9, degree=3),
    "Constant": lambda d: gk.Constant(variance=2.2),
    "White": lambda d: gk.White(variance=0.3),
    "Sum*Product": lambda d: (
        0.5
        * (gk.RBF(lengthscale=_ls(d)) + gk.Linear(variance=0.2))
        * gk.Periodic(period=0.9, variance=1.1)
    ),
}
# (kernel, d): every kernel in 1-D; the fast-path kernels also wide, with ARD.
GRAD_CASES = [(name, 1) for name in BUILDERS] + [
    (name, D_WIDE) for name in ("RBF", "RationalQuadratic")
]
# Input gradients are checked against finite differences for these.
INPUT_FD = {"RBF", "Matern32", "RationalQuadratic", "Periodic", "Cosine", "Polynomial"}


def _data(d, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.5, 1.5, size=(N, d))
    Y = rng.uniform(-1.5, 1.5, size=(M, d))
    W = rng.normal(size=(N, N))
    return X, Y, W


def _loss(k, X, W):
    """A scalar touching every entry of gram(X), with arbitrary weights."""
    return jnp.sum(W * k.gram(X))


# One compiled program per kernel serves both the gradients and (its value) the
# finite differences.
_value_and_grad = jax.jit(jax.value_and_grad(_loss, argnums=(0, 1)))


def _loss_jit(k, X, W):
    return _value_and_grad(k, X, W)[0]


def _grad_jit(k, X, W):
    return _value_and_grad(k, X, W)[1]


def _fd_leaves(f, tree, h=1e-6):
    """Central finite differences of scalar ``f`` w.r.t. every entry of every leaf of ``tree``."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    grads = []
    for li, leaf in enumerate(leaves):
        leaf = np.asarray(leaf, dtype=np.float64)
        g = np.zeros_like(leaf)
        for idx in np.ndindex(leaf.shape):
            step = h * max(1.0, abs(leaf[idx]))
            plus, minus = leaf.copy(), leaf.copy()
            plus[idx] += step
            minus[idx] -= step

            def at(value, original=leaves[li]):
                new = list(leaves)
                # Keep weakly typed scalars weak: a changed type would recompile `f`.
                weak = getattr(original, "weak_type", False)
                new[li] = jnp.asarray(float(value) if weak else value)
                return float(f(jax.tree_util.tree_unflatten(treedef, new)))

            g[idx] = (at(plus) - at(minus)) / (2 * step)
        grads.append(g)
    return grads


def _assert_fd(analytic, numeric):
    numeric = np.asarray(numeric)
    np.testing.assert_allclose(
        analytic, numeric, rtol=1e-6, atol=1e-7 * max(1.0, float(np.max(np.abs(numeric))))
    )


@pytest.mark.parametrize("name, d", GRAD_CASES, ids=[f"{n}-d{d}" for n, d in GRAD_CASES])
def test_gradients_match_finite_differences(name, d):
    k = BUILDERS[name](d)
    X, _, W = _data(d, seed=0)
    X[3] = X[1]  # coincident points off the diagonal too

    g_k, g_X = _grad_jit(k, X, W)
    assert type(g_k) is type(k)
    assert np.all(np.isfinite(g_X))

    # w.r.t. hyperparameters, with coincident points in the data
    analytic = [np.asarray(a) for a in jax.tree_util.tree_leaves(g_k)]
    assert analytic, "kernel has no hyperparameters?"
    for a in analytic:
        assert np.all(np.isfinite(a)), analytic
    numeric = _fd_leaves(lambda kk: _loss_jit(kk, X, W), k)
    assert len(numeric) == len(analytic)
    for a, n in zip(analytic, numeric):
        _assert_fd(a, n)

    # w.r.t. inputs, at distinct points (Matérn-1/2 has a kink at r = 0)
    if name in INPUT_FD:
        X2, _, _ = _data(d, seed=1)
        _, g_X2 = _grad_jit(k, X2, W)
        (num_X,) = _fd_leaves(lambda x: _loss_jit(k, x, W), X2)
        _assert_fd(g_X2, num_X)


@pytest.mark.parametrize("cls", [gk.Matern12, gk.Matern32, gk.Matern52])
def test_no_nan_gradients_on_the_gram_diagonal(cls):
    X = np.array([[0.0], [0.0], [0.5]])  # identical rows, and the diagonal itself
    k = cls()

    def diag_of_gram(k, X):
        return jnp.sum(jnp.diagonal(k.gram(X))) + k.gram(X)[0, 1]

    g_k = jax.jit(jax.grad(diag_of_gram))(k, X)
    # Every entry summed is k(x, x) = variance (three diagonal entries, and [0, 1]
    # at r = 0): d/dvariance = 4 and d/dlengthscale = 0 -- not NaN.
    np.testing.assert_allclose(g_k.variance, 4.0, rtol=1e-12)
    np.testing.assert_allclose(g_k.lengthscale, 0.0, atol=1e-12)


def test_filter_grad_and_filter_jit():
    k = BUILDERS["RBF"](1)
    X, _, W = _data(1, seed=2)

    @eqx.filter_jit
    def loss(k):
        return _loss(k, X, W)

    g = eqx.filter_jit(eqx.filter_grad(loss))(k)
    value, (g_ref, _) = _value_and_grad(k, X, W)
    assert isinstance(g, gk.RBF)
    np.testing.assert_allclose(g.variance, g_ref.variance, rtol=1e-12)
    np.testing.assert_allclose(g.lengthscale, g_ref.lengthscale, rtol=1e-12)
    np.testing.assert_allclose(loss(k), value, rtol=1e-12)


# ----------------------------------------------------------------- jit vs eager
def test_jit_matches_eager():
    k = BUILDERS["RBF"](1)
    X, Y, _ = _data(1, seed=3)

    def mats(k, X, Y):
        return k.gram(X), k.cross(X, Y), k.diag(X)

    for a, b in zip(jax.jit(mats)(k, X, Y), mats(k, X, Y)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
    # a kernel closed over (constants) compiles the same values
    for a, b in zip(jax.jit(lambda X, Y: mats(k, X, Y))(X, Y), mats(k, X, Y)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)


# ----------------------------------------------------------------------- vmap
def _stack(kernels):
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *kernels)


def _mats(k, X, Y):
    return k.gram(X), k.cross(X, Y), k.diag(X)


_mats_jit = jax.jit(_mats)


@jax.jit
def _batched(kb, Xb, k, X, Y):
    over_kernels = jax.vmap(_mats, in_axes=(0, None, None))(kb, X, Y)
    over_inputs = jax.vmap(_mats, in_axes=(None, 0, None))(k, Xb, Y)
    return over_kernels, over_inputs


VMAP_CASES = [("RBF", D_WIDE), ("Periodic", 2), ("Polynomial", 1), ("White", 1), ("Sum*Product", 1)]


@pytest.mark.parametrize("name, d", VMAP_CASES, ids=[f"{n}-d{d}" for n, d in VMAP_CASES])
def test_vmap_over_kernels_and_inputs(name, d):
    base = BUILDERS[name](d)
    # three kernels with different hyperparameters, same structure
    members = [jax.tree_util.tree_map(lambda a, s=s: a * s, base) for s in (0.5, 1.0, 2.0)]
    kb = _stack(members)
    rng = np.random.default_rng(4)
    Xb = rng.uniform(-1.5, 1.5, size=(3, N, d))
    Y = rng.uniform(-1.5, 1.5, size=(M, d))
    over_kernels, over_inputs = _batched(kb, Xb, base, Xb[0], Y)
    for b in range(3):
        for got, want in zip(over_kernels, _mats_jit(members[b], Xb[0], Y)):
            assert got.shape[0] == 3
            np.testing.assert_allclose(got[b], want, rtol=1e-13, atol=1e-14)
        for got, want in zip(over_inputs, _mats_jit(base, Xb[b], Y)):
            np.testing.assert_allclose(got[b], want, rtol=1e-13, atol=1e-14)


def test_kernels_built_under_vmap():
    lengthscales = jnp.array([0.3, 1.0, 3.0])
    variances = jnp.array([0.5, 1.0, 2.0])
    kb = jax.vmap(lambda l, v: gk.RBF(lengthscale=l, variance=v))(lengthscales, variances)
    assert isinstance(kb, gk.RBF) and kb.lengthscale.shape == (3,)
    X = np.linspace(-1.0, 1.0, 5)
    grams = jax.jit(jax.vmap(lambda k: k.gram(X)))(kb)
    assert grams.shape == (3, 5, 5)
    for b in range(3):
        want = variances[b] * np.exp(-0.5 * ((X[:, None] - X[None, :]) / lengthscales[b]) ** 2)
        np.testing.assert_allclose(grams[b], want, rtol=1e-13)
    # eqx.filter_vmap does the same
    kb2 = eqx.filter_vmap(lambda l: gk.Periodic(lengthscale=l, period=1.5))(lengthscales)
    grams2 = eqx.filter_jit(eqx.filter_vmap(lambda k: k.gram(X)))(kb2)
    for b in range(3):
        s2 = np.sin(np.pi * (X[:, None] - X[None, :]) / 1.5) ** 2 / float(lengthscales[b]) ** 2
        np.testing.assert_allclose(grams2[b], np.exp(-2 * s2), rtol=1e-13)


def test_per_kernel_gradients_under_vmap():
    """vmap(grad) over a batch of kernels equals the gradients one at a time."""
    base = BUILDERS["Matern52"](1)
    members = [jax.tree_util.tree_map(lambda a, s=s: a * s, base) for s in (0.5, 1.0, 2.0)]
    X, _, W = _data(1, seed=5)
    batched = jax.jit(jax.vmap(jax.grad(_loss), in_axes=(0, None, None)))(_stack(members), X, W)
    for b, member in enumerate(members):
        single = _grad_jit(member, X, W)[0]
        for got, want in zip(jax.tree_util.tree_leaves(batched), jax.tree_util.tree_leaves(single)):
            np.testing.assert_allclose(got[b], want, rtol=1e-12)


def test_float32_under_jit_stays_float32():
    # Python ints and floats as hyperparameters are weakly typed: no promotion.
    k = 2 * gk.RBF(lengthscale=2) + gk.Polynomial(bias=1, degree=2)
    X = np.linspace(-1.0, 1.0, 5, dtype=np.float32)
    g, c, dg = jax.jit(_mats)(k, X, X[:3])
    assert g.dtype == c.dtype == dg.dtype == jnp.float32
    grad = jax.jit(jax.grad(lambda k: jnp.sum(k.gram(X))))(k)
    assert np.all(
        np.isfinite(np.concatenate([np.ravel(a) for a in jax.tree_util.tree_leaves(grad)]))
    )


@pytest.mark.gpu
def test_accelerator_matches_cpu():
    """The same compiled kernel code on the accelerator (skipped on CPU-only machines)."""
    k = BUILDERS["RBF"](D_WIDE) + BUILDERS["Matern32"](D_WIDE) * BUILDERS["Linear"](D_WIDE)
    X, Y, _ = _data(D_WIDE, seed=7)
    accelerator = jax.devices()[0]
    assert accelerator.platform != "cpu"
    got = _mats_jit(k, jax.device_put(X, accelerator), jax.device_put(Y, accelerator))
    assert got[0].devices() == {accelerator}
    with jax.default_device(jax.devices("cpu")[0]):
        want = _mats_jit(k, X, Y)
    for a, b in zip(got, want):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-12)
