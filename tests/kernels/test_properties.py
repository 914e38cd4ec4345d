"""Properties every kernel must have, over inputs and hyperparameters drawn by hypothesis.

Shapes are fixed per test and every check runs through one jitted function per
kernel structure, so hypothesis examples reuse the compiled programs (the
hyperparameters are pytree leaves, not static).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gpjax_lite.kernels as gk
from gpjax_lite.kernels.stationary import FAST_PATH_MIN_DIM

D_WIDE = max(6, FAST_PATH_MIN_DIM + 2)
N = 7

POS = st.floats(0.1, 10.0, allow_nan=False, allow_infinity=False)
COORD = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)


def inputs(n, d):
    return hnp.arrays(np.float64, (n, d), elements=COORD)


def ard(d):
    """A scalar lengthscale in 1-D, a (d,) ARD array otherwise."""
    return POS if d == 1 else hnp.arrays(np.float64, (d,), elements=POS)


@st.composite
def kernels(draw, name, d):
    """A kernel of type ``name`` acting on ``d`` columns, with drawn hyperparameters."""
    v = draw(POS)
    if name in ("RBF", "Matern12", "Matern32", "Matern52"):
        return getattr(gk, name)(variance=v, lengthscale=draw(ard(d)))
    if name == "RationalQuadratic":
        return gk.RationalQuadratic(variance=v, lengthscale=draw(ard(d)), alpha=draw(POS))
    if name == "Periodic":
        return gk.Periodic(variance=v, lengthscale=draw(ard(d)), period=draw(POS))
    if name == "Cosine":  # PSD on one column only
        return gk.Cosine(variance=v, period=draw(POS), active_dims=None if d == 1 else (d - 2,))
    if name == "Linear":
        return gk.Linear(variance=v)
    if name.startswith("Polynomial"):
        return gk.Polynomial(variance=v, bias=draw(POS), degree=int(name[-1]))
    if name == "Constant":
        return gk.Constant(variance=v)
    if name == "White":
        return gk.White(variance=v)
    raise ValueError(name)


STATIONARY = ["RBF", "Matern12", "Matern32", "Matern52", "RationalQuadratic"]
ALL = STATIONARY + [
    "Periodic",
    "Cosine",
    "Linear",
    "Polynomial1",
    "Polynomial2",
    "Polynomial3",
    "Constant",
    "White",
]
# The fast-path kernels are checked on both sides of FAST_PATH_MIN_DIM.
CASES = [(name, D_WIDE) for name in ALL if name != "Polynomial1"] + [
    ("RBF", 2),
    ("RationalQuadratic", 2),
]


def scale_of(K):
    return max(1.0, float(np.max(np.abs(K))))


def roundoff(k, X):
    """Absolute round-off allowed against the vmap core, relative to ``scale_of``.

    The stationary fast path forms ``r² = |a|² + |b|² - 2 a·b`` with centred,
    scaled inputs ``a``: its error is ~eps·|a|², not eps·r². ``Periodic``'s
    forms its exponent as ``Σ 1/ℓ_i² - F(x)·G(y)``.
    """
    if isinstance(k, gk.Stationary) and k.matrix_path(X.shape[1], X.dtype) == "matmul":
        A = (X - X.mean(axis=0)) / np.asarray(k.lengthscale)
        return 1e-13 * (1.0 + float(np.max(np.sum(A**2, axis=1))))
    if isinstance(k, gk.Periodic):
        # Its feature-product path: exponent error ~eps·Σ 1/ℓ_i².
        weights = np.broadcast_to(np.asarray(k.lengthscale) ** -2.0, X.shape[1:])
        return 1e-13 * (1.0 + float(np.sum(weights)))
    return 1e-12


@jax.jit
def _summary(k, X):
    return k.gram(X), k.diag(X), k.cross(X, X)


@jax.jit
def _summary_and_row(k, X, i):
    """As ``_summary``, plus row ``i`` through the public pointwise call ``k(x, y)``."""
    row = jax.vmap(lambda y: k(X[i], y))(X)
    return k.gram(X), k.diag(X), k.cross(X, X), row


# ------------------------------------------------------- one kernel at a time
@pytest.mark.parametrize("name, d", CASES, ids=[f"{n}-d{d}" for n, d in CASES])
@given(data=st.data())
def test_gram_diag_cross_and_pointwise_agree(name, d, data):
    k = data.draw(kernels(name, d), label="kernel")
    X = data.draw(inputs(N, d), label="X")
    i = data.draw(st.integers(0, N - 1), label="row")
    if name == "White":  # no pointwise value
        K, diag, cross = (np.asarray(a) for a in _summary(k, X))
    else:
        K, diag, cross, row = (np.asarray(a) for a in _summary_and_row(k, X, i))
    assert K.shape == (N, N) and diag.shape == (N,) and cross.shape == (N, N)
    atol = roundoff(k, X) * scale_of(K)

    # symmetric
    np.testing.assert_allclose(K, K.T, rtol=0, atol=atol)
    # positive semi-definite
    eigs = np.linalg.eigvalsh((K + K.T) / 2)
    assert eigs.min() >= -1e-10 * max(np.trace(K), 1e-300), (eigs.min(), np.trace(K))
    # diag is the Gram diagonal
    np.testing.assert_allclose(diag, np.diagonal(K), rtol=0, atol=atol)

    if name == "White":
        np.testing.assert_allclose(K, float(k.variance) * np.eye(N), rtol=1e-15)
        assert not np.any(cross)
        return
    # cross(X, X) is the Gram matrix
    np.testing.assert_allclose(cross, K, rtol=0, atol=atol)
    # gram(X)[i, j] == k(X[i], X[j]) through the public pointwise call
    np.testing.assert_allclose(row, K[i], rtol=0, atol=atol)


ARD_KERNELS = STATIONARY + ["Periodic"]


@jax.jit
def _grams2(k1, k2, X):
    return k1.gram(X), k2.gram(X)


@pytest.mark.parametrize("name", ARD_KERNELS)
@given(data=st.data())
def test_ard_with_equal_entries_is_isotropic(name, data):
    iso = data.draw(kernels(name, 1), label="isotropic kernel")  # scalar lengthscale
    X = data.draw(inputs(N, D_WIDE), label="X")
    ls = np.full(D_WIDE, float(iso.lengthscale))
    ard = type(iso)(**{**_hyper(iso), "lengthscale": ls})
    K_iso, K_ard = _grams2(iso, ard, X)
    np.testing.assert_allclose(K_ard, K_iso, rtol=1e-12, atol=roundoff(iso, X) * scale_of(K_iso))


def _hyper(k):
    names = ("variance", "lengthscale", "period", "alpha")
    return {n: float(getattr(k, n)) for n in names if hasattr(k, n)}


# Unsorted, skipping a column, and as many columns as the stationary fast path needs.
ACTIVE = (D_WIDE - 1, 0) + tuple(range(2, FAST_PATH_MIN_DIM))
assert len(set(ACTIVE)) == len(ACTIVE) == max(FAST_PATH_MIN_DIM, 2)


@jax.jit
def _active_vs_sliced(k_active, k_plain, X, Y):
    cols = jnp.asarray(ACTIVE)
    Xs, Ys = X[:, cols], Y[:, cols]
    return (
        (k_active.gram(X), k_active.cross(X, Y), k_active.diag(X)),
        (k_plain.gram(Xs), k_plain.cross(Xs, Ys), k_plain.diag(Xs)),
    )


# One kernel per implementation of the matrix hooks (vmap core, stationary fast
# path, matrix-product dot-product kernels, White's overrides).
ACTIVE_CASES = [
    "RBF",
    "Matern32",
    "Periodic",
    "Cosine",
    "Linear",
    "Polynomial3",
    "Constant",
    "White",
]


@pytest.mark.parametrize("name", ACTIVE_CASES)
@given(data=st.data())
def test_active_dims_equals_slicing_columns(name, data):
    plain = data.draw(kernels(name, len(ACTIVE)), label="kernel")
    if name == "Cosine":  # the formula, not its PSD-ness, is what's checked here
        plain = gk.Cosine(variance=float(plain.variance), period=float(plain.period))
    active = with_active_dims(plain, ACTIVE)
    if name == "RBF":
        assert active.matrix_path(D_WIDE, np.float64) == "matmul"
    X = data.draw(inputs(N, D_WIDE), label="X")
    Y = data.draw(inputs(N - 2, D_WIDE), label="Y")
    got, expected = _active_vs_sliced(active, plain, X, Y)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * scale_of(np.asarray(b)))


def with_active_dims(k, dims):
    """The same kernel (same hyperparameter leaves) with ``active_dims=dims``."""
    kwargs = {
        f: getattr(k, f)
        for f in ("variance", "lengthscale", "period", "alpha", "bias", "degree")
        if hasattr(k, f)
    }
    return type(k)(**kwargs, active_dims=dims)


def test_active_dims_kernel_sees_only_its_columns():
    k = gk.RBF(lengthscale=np.array([0.5, 2.0]), active_dims=(3, 1))
    X = np.random.default_rng(0).normal(size=(5, 4))
    X2 = X.copy()
    X2[:, [0, 2]] += 100.0  # the inactive columns do not matter
    np.testing.assert_array_equal(_summary(k, X)[0], _summary(k, X2)[0])
    np.testing.assert_allclose(
        k(X[0], X[1]),
        np.exp(-0.5 * (((X[0, 3] - X[1, 3]) / 0.5) ** 2 + ((X[0, 1] - X[1, 1]) / 2.0) ** 2)),
    )


# -------------------------------------------------------------------- algebra
PAIRS = [("RBF", "Periodic"), ("Matern32", "Polynomial2"), ("Constant", "White")]


@jax.jit
def _algebra(k1, k2, c, X, Y):
    def mats(k):
        return k.gram(X), k.cross(X, Y), k.diag(X)

    return mats(k1), mats(k2), mats(k1 + k2), mats(k1 * k2), mats(c * k1), mats(k2 * c)


@pytest.mark.parametrize("n1, n2", PAIRS, ids=[f"{a}-{b}" for a, b in PAIRS])
@given(data=st.data())
def test_sum_product_scale_are_elementwise(n1, n2, data):
    k1 = data.draw(kernels(n1, D_WIDE), label="k1")
    k2 = data.draw(kernels(n2, D_WIDE), label="k2")
    c = data.draw(POS, label="c")
    X = data.draw(inputs(N, D_WIDE), label="X")
    Y = data.draw(inputs(N - 3, D_WIDE), label="Y")
    m1, m2, msum, mprod, mc1, m2c = (
        tuple(np.asarray(a) for a in m) for m in _algebra(k1, k2, c, X, Y)
    )
    for a, b, s, p, s1, s2 in zip(m1, m2, msum, mprod, mc1, m2c):
        np.testing.assert_allclose(s, a + b, rtol=1e-13, atol=1e-13 * scale_of(a + b))
        np.testing.assert_allclose(p, a * b, rtol=1e-13, atol=1e-13 * scale_of(a * b))
        np.testing.assert_allclose(s1, c * a, rtol=1e-13, atol=1e-13 * scale_of(c * a))
        np.testing.assert_allclose(s2, c * b, rtol=1e-13, atol=1e-13 * scale_of(c * b))


@jax.jit
def _nested(k1, k2, k3, k4, X, Y):
    k = (k1 + k2) * k3 + 2.0 * k4
    parts = [(t.gram(X), t.cross(X, Y), t.diag(X)) for t in (k1, k2, k3, k4)]
    return (k.gram(X), k.cross(X, Y), k.diag(X)), parts


@given(data=st.data())
def test_nested_algebra(data):
    ks = [
        data.draw(kernels(n, D_WIDE), label=n)
        for n in ("RBF", "Periodic", "Matern52", "Polynomial1")
    ]
    X = data.draw(inputs(N, D_WIDE), label="X")
    Y = data.draw(inputs(N - 1, D_WIDE), label="Y")
    combined, parts = _nested(*ks, X, Y)
    for which in range(3):  # gram, cross, diag
        g1, g2, g3, g4 = (np.asarray(p[which]) for p in parts)
        expected = (g1 + g2) * g3 + 2.0 * g4
        np.testing.assert_allclose(
            combined[which], expected, rtol=1e-12, atol=1e-12 * scale_of(expected)
        )


def test_nested_algebra_structure():
    k1, k2, k3, k4 = gk.RBF(), gk.Periodic(), gk.Matern52(), gk.Linear()
    k = (k1 + k2) * k3 + 2.0 * k4
    assert isinstance(k, gk.Sum) and len(k.kernels) == 2
    prod, scaled = k.kernels
    assert isinstance(prod, gk.Product) and prod.kernels[1] is k3
    assert isinstance(prod.kernels[0], gk.Sum) and prod.kernels[0].kernels == (k1, k2)
    assert isinstance(scaled, gk.Scaled) and scaled.kernel is k4 and float(scaled.scale) == 2.0


def test_sums_and_products_flatten():
    k1, k2, k3, k4 = gk.RBF(), gk.Matern12(), gk.Linear(), gk.Constant()
    s = k1 + k2 + k3
    assert type(s) is gk.Sum and s.kernels == (k1, k2, k3)
    s4 = (k1 + k2) + (k3 + k4)
    assert type(s4) is gk.Sum and s4.kernels == (k1, k2, k3, k4)
    s4r = k1 + (k2 + k3)
    assert s4r.kernels == (k1, k2, k3)
    p = k1 * k2 * k3
    assert type(p) is gk.Product and p.kernels == (k1, k2, k3)
    p4 = (k1 * k2) * (k3 * k4)
    assert type(p4) is gk.Product and p4.kernels == (k1, k2, k3, k4)
    # different kinds do not merge
    mixed = (k1 + k2) * k3
    assert type(mixed) is gk.Product and len(mixed.kernels) == 2
    # a combination restricted to some columns is a term of its own
    restricted = gk.Sum((k1, k2), active_dims=(0,))
    assert len((restricted + k3).kernels) == 2


def test_python_sum_of_kernels():
    k1, k2, k3 = gk.RBF(), gk.Periodic(period=2.0), gk.Linear()
    s = sum([k1, k2, k3])
    assert type(s) is gk.Sum and s.kernels == (k1, k2, k3)
    assert sum([k1]) is k1
    X = np.linspace(-1.0, 1.0, 6)
    g = _summary(s, X)[0]
    expected = sum(np.asarray(_summary(k, X)[0]) for k in (k1, k2, k3))
    np.testing.assert_allclose(g, expected, rtol=1e-13)


def test_scaling_by_jax_and_numpy_scalars():
    k = gk.RBF()
    for c in (2.0, 2, np.float64(2.0), jnp.asarray(2.0)):
        for scaled in (c * k, k * c):
            assert isinstance(scaled, gk.Scaled), type(scaled)
            assert float(scaled.scale) == 2.0


def test_white_in_a_sum_adds_only_to_the_gram_diagonal():
    k = gk.RBF() + gk.White(variance=0.5)
    X = np.linspace(0.0, 1.0, 5)
    K, diag, cross = _summary(k, X)
    K_rbf = np.asarray(_summary(gk.RBF(), X)[0])
    np.testing.assert_allclose(K, K_rbf + 0.5 * np.eye(5), rtol=1e-14)
    np.testing.assert_allclose(diag, 1.5, rtol=1e-14)
    np.testing.assert_allclose(cross, K_rbf, rtol=1e-14)
