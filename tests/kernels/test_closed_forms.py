"""Every kernel's matrices against a NumPy closed form written from the API table.

The reference implementations (``tests/oracle.py``) are deliberately independent
of the library: plain NumPy on explicit pairwise differences, in float64.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import constant as np_constant
from oracle import cosine as np_cosine
from oracle import linear as np_linear
from oracle import matern12 as np_matern12
from oracle import matern32 as np_matern32
from oracle import matern52 as np_matern52
from oracle import periodic as np_periodic
from oracle import polynomial as np_polynomial
from oracle import rational_quadratic as np_rq
from oracle import rbf as np_rbf

import gpjax_lite.kernels as gk
from gpjax_lite.kernels.stationary import COLUMNWISE_MAX_DIM, FAST_PATH_MIN_DIM

D_WIDE = max(6, FAST_PATH_MIN_DIM)  # wide enough for the stationary fast path
N, M = 9, 7


# ----------------------------------------------------------------- references
def _ls(d):
    """A scalar lengthscale in 1-D, distinct ARD lengthscales otherwise."""
    return 0.7 if d == 1 else np.linspace(0.6, 2.2, d)


# name -> (build kernel for input dim d, reference cross(X, Y) for that kernel)
CASES = {
    "RBF": (
        lambda d: gk.RBF(variance=1.7, lengthscale=_ls(d)),
        lambda X, Y, d: np_rbf(X, Y, 1.7, _ls(d)),
    ),
    "Matern12": (
        lambda d: gk.Matern12(variance=0.8, lengthscale=_ls(d)),
        lambda X, Y, d: np_matern12(X, Y, 0.8, _ls(d)),
    ),
    "Matern32": (
        lambda d: gk.Matern32(variance=2.3, lengthscale=_ls(d)),
        lambda X, Y, d: np_matern32(X, Y, 2.3, _ls(d)),
    ),
    "Matern52": (
        lambda d: gk.Matern52(variance=1.1, lengthscale=_ls(d)),
        lambda X, Y, d: np_matern52(X, Y, 1.1, _ls(d)),
    ),
    "RationalQuadratic": (
        lambda d: gk.RationalQuadratic(variance=1.3, lengthscale=_ls(d), alpha=2.5),
        lambda X, Y, d: np_rq(X, Y, 1.3, _ls(d), 2.5),
    ),
    "Periodic": (
        lambda d: gk.Periodic(variance=0.9, lengthscale=_ls(d), period=1.3),
        lambda X, Y, d: np_periodic(X, Y, 0.9, _ls(d), 1.3),
    ),
    "Cosine": (
        lambda d: gk.Cosine(variance=1.4, period=2.1),
        lambda X, Y, d: np_cosine(X, Y, 1.4, 2.1),
    ),
    "Linear": (
        lambda d: gk.Linear(variance=0.6),
        lambda X, Y, d: np_linear(X, Y, 0.6),
    ),
    "Polynomial1": (
        lambda d: gk.Polynomial(variance=0.5, bias=0.6, degree=1),
        lambda X, Y, d: np_polynomial(X, Y, 0.5, 0.6, 1),
    ),
    "Polynomial2": (
        lambda d: gk.Polynomial(variance=0.5, bias=0.6, degree=2),
        lambda X, Y, d: np_polynomial(X, Y, 0.5, 0.6, 2),
    ),
    "Polynomial3": (
        lambda d: gk.Polynomial(variance=0.5, bias=0.6, degree=3),
        lambda X, Y, d: np_polynomial(X, Y, 0.5, 0.6, 3),
    ),
    "Constant": (
        lambda d: gk.Constant(variance=2.7),
        lambda X, Y, d: np_constant(X, Y, 2.7),
    ),
}


def _inputs(d, n, seed, dtype=np.float64, flat=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, size=(n, d)).astype(dtype)
    return X[:, 0] if flat else X


@jax.jit
def _matrices(k1, kw, X1, Y1, Xw, Yw):
    """gram / cross / diag of a 1-D kernel on (n,) inputs and of an ARD kernel on wide inputs.

    One compiled program per kernel and dtype keeps the suite fast; the public
    methods do the same work (and the same shape checks) under jit as eagerly.
    """
    wide = (kw.gram(Xw), kw.cross(Xw, Yw), kw.diag(Xw))
    if k1 is None:
        return None, wide
    return (k1.gram(X1), k1.cross(X1, Y1), k1.diag(X1)), wide


def _assert_close(actual, expected, dtype):
    actual = np.asarray(actual)
    assert actual.dtype == dtype
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected))))
    if dtype == np.float64:
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12 * scale)
    else:
        np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-5 * scale)


def _to_float32(k):
    # ARD arrays built by NumPy are strongly typed float64: store them in float32.
    # (Python-float scalars are weakly typed and follow the inputs' dtype.)
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32) if a.ndim else a, k)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("name", list(CASES))
def test_gram_cross_diag_match_closed_form(name, dtype):
    build, ref = CASES[name]
    # d = 1 passed as (n,) (float64 only); d = D_WIDE with ARD lengthscales
    # (the stationary fast path).
    k1, kw = (
        (build(1), build(D_WIDE)) if dtype == np.float64 else (None, _to_float32(build(D_WIDE)))
    )
    X1, Y1 = _inputs(1, N, 0, dtype, flat=True), _inputs(1, M, 1, dtype, flat=True)
    Xw, Yw = _inputs(D_WIDE, N, 2, dtype), _inputs(D_WIDE, M, 3, dtype)
    narrow, (gw, cw, dw) = _matrices(k1, kw, X1, Y1, Xw, Yw)
    if narrow is not None:
        g1, c1, d1 = narrow
        _assert_close(g1, ref(X1, X1, 1), dtype)
        _assert_close(c1, ref(X1, Y1, 1), dtype)
        _assert_close(d1, np.diagonal(ref(X1, X1, 1)), dtype)
    _assert_close(gw, ref(Xw, Xw, D_WIDE), dtype)
    _assert_close(cw, ref(Xw, Yw, D_WIDE), dtype)
    _assert_close(dw, np.diagonal(ref(Xw, Xw, D_WIDE)), dtype)


@pytest.mark.parametrize("name", ["RBF", "Polynomial3"])
def test_eager_public_path_and_flat_inputs(name):
    """Outside jit, and with X given as (n,) or (n, 1): the same closed form."""
    build, ref = CASES[name]
    k = build(1)
    X, Y = _inputs(1, N, 4), _inputs(1, M, 5)
    expected_gram, expected_cross = ref(X, X, 1), ref(X, Y, 1)
    for A, B in ((X, Y), (X[:, 0], Y[:, 0]), (X[:, 0], Y)):
        _assert_close(k.gram(A), expected_gram, np.float64)
        _assert_close(k.cross(A, B), expected_cross, np.float64)
        _assert_close(k.diag(A), np.diagonal(expected_gram), np.float64)


@pytest.mark.parametrize("name", list(CASES))
def test_pointwise_call_matches_closed_form(name):
    build, ref = CASES[name]
    X = _inputs(D_WIDE, 3, seed=6)
    k = build(D_WIDE)
    expected = ref(X, X, D_WIDE)
    for i, j in ((0, 2), (1, 1)):
        value = k(X[i], X[j])
        assert jnp.shape(value) == ()
        np.testing.assert_allclose(value, expected[i, j], rtol=1e-10, atol=1e-12)
    # Scalars are points of shape (1,).
    expected_1d = ref(np.array([0.3]), np.array([-1.1]), 1)[0, 0]
    np.testing.assert_allclose(build(1)(0.3, -1.1), expected_1d, rtol=1e-10)


def test_rbf_closed_form_by_hand():
    # One entry computed by hand, as a guard against a shared mistake in the references.
    k = gk.RBF(variance=2.0, lengthscale=np.array([1.0, 2.0]))
    value = k(jnp.array([0.0, 0.0]), jnp.array([1.0, 2.0]))  # r^2 = 1 + 1 = 2
    np.testing.assert_allclose(value, 2.0 * math.exp(-1.0), rtol=1e-14)


def test_matern_values_at_r_equal_one():
    x, y = jnp.array([0.0]), jnp.array([2.0])  # r = 1 with lengthscale 2
    np.testing.assert_allclose(gk.Matern12(lengthscale=2.0)(x, y), math.exp(-1), rtol=1e-14)
    s3, s5 = math.sqrt(3), math.sqrt(5)
    np.testing.assert_allclose(
        gk.Matern32(lengthscale=2.0)(x, y), (1 + s3) * math.exp(-s3), rtol=1e-14
    )
    np.testing.assert_allclose(
        gk.Matern52(lengthscale=2.0)(x, y), (1 + s5 + 5 / 3) * math.exp(-s5), rtol=1e-14
    )
    np.testing.assert_allclose(
        gk.RationalQuadratic(alpha=0.5, lengthscale=2.0)(x, y), 2**-0.5, rtol=1e-14
    )


def test_periodic_is_periodic_in_each_column():
    k = gk.Periodic(lengthscale=np.array([0.5, 1.5]), period=1.3)
    x = jnp.array([0.2, -0.4])
    for shift in ([1.3, 0.0], [0.0, -2.6], [3.9, 1.3]):
        np.testing.assert_allclose(k(x, x + jnp.array(shift)), 1.0, rtol=1e-12)


def test_default_hyperparameters():
    X = _inputs(1, 5, 11, flat=True)
    kernels = (gk.RBF(), gk.RationalQuadratic(), gk.Periodic(), gk.Polynomial(), gk.Cosine())
    refs = (
        np_rbf(X, X, 1.0, 1.0),
        np_rq(X, X, 1.0, 1.0, 1.0),
        np_periodic(X, X, 1.0, 1.0, 1.0),
        np_polynomial(X, X, 1.0, 1.0, 2),
        np_cosine(X, X, 1.0, 1.0),
    )
    grams = jax.jit(lambda ks, X: [k.gram(X) for k in ks])(kernels, X)
    for gram, ref in zip(grams, refs):
        np.testing.assert_allclose(gram, ref, rtol=1e-12)
    assert gk.Polynomial().degree == 2
    for k in kernels:
        for name in ("variance", "lengthscale", "period", "alpha", "bias"):
            if hasattr(k, name):
                assert float(getattr(k, name)) == 1.0


def test_aliases_are_the_same_classes():
    assert gk.SquaredExponential is gk.RBF
    assert gk.Exponential is gk.Matern12


# ------------------------------------------------------------------- White
@pytest.mark.parametrize(
    "d, flat, dtype",
    [(1, True, np.float64), (D_WIDE, False, np.float32)],
    ids=["n-f64", "wide-f32"],
)
def test_white(d, flat, dtype):
    k = gk.White(variance=0.3)
    X = _inputs(d, N, 7, dtype, flat)
    Y = _inputs(d, M, 8, dtype, flat)
    gram, diag, cross_xx, cross_xy = k.gram(X), k.diag(X), k.cross(X, X), k.cross(X, Y)
    for out in (gram, diag, cross_xx, cross_xy):
        assert out.dtype == dtype
    np.testing.assert_allclose(gram, 0.3 * np.eye(N), rtol=1e-6, atol=0)
    np.testing.assert_allclose(diag, np.full(N, 0.3), rtol=1e-6)
    assert cross_xx.shape == (N, N) and not np.any(np.asarray(cross_xx))
    assert cross_xy.shape == (N, M) and not np.any(np.asarray(cross_xy))


# ---------------------------------------------------- fast path vs vmap core
@pytest.mark.parametrize("offset", [0.0, 1e3, -3e4])
@pytest.mark.parametrize(
    "k",
    [
        gk.RBF(variance=2.5, lengthscale=np.linspace(0.5, 1.5, D_WIDE)),
        gk.RBF(variance=0.4, lengthscale=0.8),
        gk.RationalQuadratic(variance=1.5, lengthscale=np.linspace(0.7, 1.9, D_WIDE), alpha=0.7),
    ],
    ids=["RBF-ARD", "RBF-iso", "RQ-ARD"],
)
def test_fast_path_matches_vmap_core(k, offset):
    X = _inputs(D_WIDE, 12, 9) + offset
    Y = _inputs(D_WIDE, 10, 10) + offset
    Y[0] = X[3]  # one coincident pair: r^2 = 0 must come out as (almost) exactly 0
    assert k.matrix_path(D_WIDE, np.float64) == "matmul"  # the path under test is really taken
    fast, core, gram = _fast_and_core(k, X, Y)
    atol = 1e-12 * float(k.variance)
    for f, c in zip(fast, core):
        np.testing.assert_allclose(f, c, rtol=0, atol=atol)
    np.testing.assert_allclose(np.diagonal(gram), float(k.variance), rtol=0, atol=atol)
    np.testing.assert_allclose(fast[0][3, 0], float(k.variance), rtol=0, atol=atol)
    # and both agree with the independent reference
    if isinstance(k, gk.RBF):
        ref = np_rbf(X, Y, float(k.variance), np.asarray(k.lengthscale))
    else:
        ref = np_rq(X, Y, float(k.variance), np.asarray(k.lengthscale), float(k.alpha))
    np.testing.assert_allclose(fast[0], ref, rtol=0, atol=atol)


@jax.jit
def _fast_and_core(k, X, Y):
    pairs = ((X, Y), (X, X), (Y, X))
    fast = tuple(k.cross(A, B) for A, B in pairs)
    core = tuple(gk.vmap_cross(k.evaluate, A, B) for A, B in pairs)
    return fast, core, k.gram(X)


@pytest.mark.parametrize("offset", [0.0, 1e3, -3e4])
@pytest.mark.parametrize("d", [1, D_WIDE])
@pytest.mark.parametrize("lengthscale", ["iso", "ard"])
def test_periodic_feature_path_matches_vmap_core(d, offset, lengthscale):
    """Periodic's cos/sin feature product against the pointwise sines, in float64."""
    ls = 0.6 if lengthscale == "iso" else np.linspace(0.4, 1.3, d)
    k = gk.Periodic(variance=1.7, lengthscale=ls, period=0.9)
    X = _inputs(d, 12, 11) * 3.0 + offset
    Y = _inputs(d, 10, 12) * 3.0 + offset
    Y[0] = X[3]  # a coincident pair
    Y[1] = X[4] + 0.9 * np.arange(1, d + 1)  # whole periods apart: also k = variance
    fast, core, gram = _fast_and_core(k, X, Y)
    weights = np.sum(np.broadcast_to(np.asarray(ls) ** -2.0, (d,)))
    # Inputs ~|offset| lose |offset|·eps in x - y, in either path.
    atol = 1.7 * (1e-13 * weights + 1e-14 * (1.0 + abs(offset)) * weights)
    for f, c in zip(fast, core):
        np.testing.assert_allclose(f, c, rtol=0, atol=atol)
    np.testing.assert_allclose(np.diagonal(gram), 1.7, rtol=0, atol=atol)
    np.testing.assert_allclose(fast[0][3, 0], 1.7, rtol=0, atol=atol)
    np.testing.assert_allclose(fast[0][4, 1], 1.7, rtol=0, atol=atol)
    ref = np_periodic(X, Y, 1.7, np.asarray(ls), 0.9)
    np.testing.assert_allclose(fast[0], ref, rtol=0, atol=atol)


def test_periodic_feature_path_gradients_match_vmap_core():
    """d/d(variance, lengthscale, period) of a Gram-matrix functional, both paths."""
    X = jnp.asarray(_inputs(3, 15, 13) * 2.0 + 50.0)
    W = jnp.asarray(np.random.default_rng(14).normal(size=(15, 15)))

    def loss(k, core):
        K = gk.vmap_cross(k.evaluate, X, X) if core else k.gram(X)
        return jnp.sum(W * K)

    k = gk.Periodic(variance=1.3, lengthscale=jnp.array([0.5, 0.9, 1.4]), period=1.1)
    g_fast = jax.grad(loss)(k, False)
    g_core = jax.grad(loss)(k, True)
    for name in ("variance", "lengthscale", "period"):
        np.testing.assert_allclose(
            getattr(g_fast, name), getattr(g_core, name), rtol=1e-9, atol=1e-10
        )


def test_periodic_feature_path_float32():
    """In float32 the centred, period-reduced phases keep the error at float32 round-off."""
    X = jnp.asarray(_inputs(2, 20, 15) * 3.0 + 1990.0, dtype=jnp.float32)
    k = jax.tree_util.tree_map(
        lambda a: jnp.asarray(a, jnp.float32),
        gk.Periodic(variance=1.0, lengthscale=0.8, period=1.0),
    )
    K = k.gram(X)
    assert K.dtype == jnp.float32
    fast = np.asarray(K, dtype=np.float64)
    # The reference sees the float32 inputs exactly; their spacing (~1e-4 at
    # 2000) bounds what either path can resolve.
    ref = np_periodic(np.asarray(X, np.float64), np.asarray(X, np.float64), 1.0, 0.8, 1.0)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=2e-5)


@pytest.mark.parametrize("d", [1, 2, COLUMNWISE_MAX_DIM, COLUMNWISE_MAX_DIM + 1])
@pytest.mark.parametrize("offset", [0.0, 1e3])
def test_matern_every_path_matches_closed_form_and_core(d, offset):
    """Column-by-column (d ≤ COLUMNWISE_MAX_DIM) and vmap-core (above) Matérn Gram
    matrices, and their lengthscale gradients, against NumPy and the vmap core."""
    ls = np.linspace(0.6, 1.6, d)
    k = gk.Matern52(variance=1.3, lengthscale=ls)
    X = _inputs(d, 11, 20) + offset
    Y = _inputs(d, 8, 21) + offset
    Y[0] = X[2]
    fast, core, gram = _fast_and_core(k, X, Y)
    atol = 1e-12 * (1.0 + abs(offset))
    for f, c in zip(fast, core):
        np.testing.assert_allclose(f, c, rtol=0, atol=atol)
    np.testing.assert_allclose(fast[0], np_matern52(X, Y, 1.3, ls), rtol=0, atol=atol)
    np.testing.assert_allclose(np.diagonal(gram), 1.3, rtol=0, atol=atol)

    W = np.random.default_rng(22).normal(size=(11, 8))

    def loss(lengthscale, core):
        kk = gk.Matern52(variance=1.3, lengthscale=lengthscale)
        K = gk.vmap_cross(kk.evaluate, X, Y) if core else kk.cross(X, Y)
        return jnp.sum(W * K)

    g_path = jax.grad(loss)(jnp.asarray(ls), False)
    g_core = jax.grad(loss)(jnp.asarray(ls), True)
    np.testing.assert_allclose(g_path, g_core, rtol=1e-9, atol=1e-12)


def test_fast_path_not_used_below_threshold_or_for_matern_or_in_float32():
    assert gk.RBF().matrix_path(FAST_PATH_MIN_DIM - 1, np.float64) == "columns"
    assert gk.RBF().matrix_path(FAST_PATH_MIN_DIM, np.float64) == "matmul"
    assert gk.RBF().matrix_path(FAST_PATH_MIN_DIM, np.float32) == "columns"
    for cls in (gk.Matern12, gk.Matern32, gk.Matern52):
        assert cls().matrix_path(64, np.float64) == "vmap"
        assert cls().matrix_path(8, np.float64) == "columns"
