"""A user-defined kernel writes only `evaluate`; the base class supplies the rest."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from oracle import rbf as np_rbf

import gpjax_lite.kernels as gk
from gpjax_lite import parameters


class MyRBF(gk.Kernel):
    """A hand-written squared-exponential kernel with plain equinox fields."""

    variance: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)
    lengthscale: jax.Array = eqx.field(default=1.0, converter=jnp.asarray)

    def evaluate(self, x, y):
        return self.variance * jnp.exp(-0.5 * jnp.sum(((x - y) / self.lengthscale) ** 2))


class Brownian(gk.Kernel):
    """``k(x, y) = Σ_i min(x_i, y_i)``: no hyperparameters at all (PSD for x, y >= 0)."""

    def evaluate(self, x, y):
        return jnp.sum(jnp.minimum(x, y))


class PositiveRBF(MyRBF):
    """The same kernel, declaring its hyperparameters positive for `fit`."""

    variance: jax.Array = parameters.positive_field(1.0)
    lengthscale: jax.Array = parameters.positive_field(1.0)


def np_brownian(X, Y):
    X, Y = np.atleast_2d(X.T).T, np.atleast_2d(Y.T).T
    return np.sum(np.minimum(X[:, None, :], Y[None, :, :]), axis=-1)


@jax.jit
def _mats(k, X, Y):
    return k.gram(X), k.cross(X, Y), k.diag(X)


RNG = np.random.default_rng(0)
X = RNG.uniform(0.0, 3.0, size=(8, 2))
Y = RNG.uniform(0.0, 3.0, size=(5, 2))


def test_cannot_instantiate_without_evaluate():
    class Incomplete(gk.Kernel):
        pass

    with pytest.raises(TypeError):
        Incomplete()


def test_matrices_from_evaluate():
    k = MyRBF(variance=1.7, lengthscale=jnp.array([0.6, 1.3]))
    b = Brownian()
    for kern, ref in ((k, lambda A, B: np_rbf(A, B, 1.7, np.array([0.6, 1.3]))), (b, np_brownian)):
        gram, cross, diag = _mats(kern, X, Y)
        assert gram.shape == (8, 8) and cross.shape == (8, 5) and diag.shape == (8,)
        np.testing.assert_allclose(gram, ref(X, X), rtol=1e-13)
        np.testing.assert_allclose(cross, ref(X, Y), rtol=1e-13)
        np.testing.assert_allclose(diag, np.diagonal(ref(X, X)), rtol=1e-13)
        np.testing.assert_allclose(kern(X[0], Y[1]), ref(X[:1], Y[1:2])[0, 0], rtol=1e-13)
        assert np.linalg.eigvalsh(np.asarray(gram)).min() > -1e-10 * np.trace(gram)


def test_eager_one_dimensional_inputs_and_scalars():
    k = Brownian()
    x, y = np.linspace(0.1, 2.0, 6), np.array([0.3, 5.0])
    np.testing.assert_allclose(k.gram(x), np.minimum(x[:, None], x[None, :]), rtol=1e-15)
    np.testing.assert_allclose(k.cross(x, y), np.minimum(x[:, None], y[None, :]), rtol=1e-15)
    np.testing.assert_allclose(k.diag(x), x, rtol=1e-15)
    np.testing.assert_allclose(k(0.5, 1.5), 0.5)


def test_agrees_with_builtin_rbf():
    mine, builtin = MyRBF(variance=0.8, lengthscale=0.4), gk.RBF(variance=0.8, lengthscale=0.4)
    for a, b in zip(_mats(mine, X, Y), _mats(builtin, X, Y)):
        np.testing.assert_allclose(a, b, rtol=1e-13)


def test_active_dims():
    k = Brownian(active_dims=(1,))
    gram, cross, diag = _mats(k, X, Y)
    np.testing.assert_allclose(gram, np_brownian(X[:, 1], X[:, 1]), rtol=1e-15)
    np.testing.assert_allclose(cross, np_brownian(X[:, 1], Y[:, 1]), rtol=1e-15)
    np.testing.assert_allclose(diag, X[:, 1], rtol=1e-15)
    np.testing.assert_allclose(k(X[0], X[1]), min(X[0, 1], X[1, 1]))
    with pytest.raises(ValueError, match="`active_dims`"):
        Brownian(active_dims=(2,)).gram(X)
    with pytest.raises(TypeError, match="`active_dims`"):
        Brownian(active_dims=[0])


def test_algebra_with_builtin_kernels():
    mine = MyRBF(variance=1.2, lengthscale=0.9)
    b = Brownian()
    k = (mine + gk.Linear(variance=0.3)) * b + 2.0 * gk.Periodic(period=1.5)
    assert isinstance(k, gk.Sum)
    got = _mats(k, X, Y)
    parts = [_mats(t, X, Y) for t in (mine, gk.Linear(variance=0.3), b, gk.Periodic(period=1.5))]
    for which in range(3):
        g1, g2, g3, g4 = (np.asarray(p[which]) for p in parts)
        np.testing.assert_allclose(got[which], (g1 + g2) * g3 + 2.0 * g4, rtol=1e-13)
    s = mine + b + gk.RBF()
    assert isinstance(s, gk.Sum) and len(s.kernels) == 3
    assert isinstance(sum([mine, b]), gk.Sum)


def test_grad_matches_finite_differences_and_builtin():
    def loss(k, X):
        return jnp.sum(jnp.sin(k.gram(X)))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    value = jax.jit(loss)
    k = MyRBF(variance=1.3, lengthscale=0.7)
    g_k, g_X = grad(k, X)
    assert isinstance(g_k, MyRBF)
    # the same numbers as the built-in RBF
    g_ref, g_X_ref = grad(gk.RBF(variance=1.3, lengthscale=0.7), X)
    np.testing.assert_allclose(g_k.variance, g_ref.variance, rtol=1e-12)
    np.testing.assert_allclose(g_k.lengthscale, g_ref.lengthscale, rtol=1e-12)
    np.testing.assert_allclose(g_X, g_X_ref, rtol=1e-12, atol=1e-14)
    # and central finite differences
    h = 1e-6
    for name in ("variance", "lengthscale"):
        theta = float(getattr(k, name))

        def at(t, name=name):
            return float(value(MyRBF(**{**{"variance": 1.3, "lengthscale": 0.7}, name: t}), X))

        fd = (at(theta + h) - at(theta - h)) / (2 * h)
        np.testing.assert_allclose(getattr(g_k, name), fd, rtol=1e-6)
    # a kernel with no parameters still differentiates w.r.t. its inputs
    g_b = jax.jit(jax.grad(lambda X: jnp.sum(Brownian().gram(X))))(X)
    assert g_b.shape == X.shape and np.all(np.isfinite(g_b))


def test_vmap_over_a_batch_of_custom_kernels():
    ls = jnp.array([0.5, 1.0, 2.0])
    kb = jax.vmap(lambda l: MyRBF(lengthscale=l))(ls)
    grams = jax.jit(jax.vmap(lambda k: k.gram(X)))(kb)
    for b in range(3):
        np.testing.assert_allclose(grams[b], np_rbf(X, X, 1.0, float(ls[b])), rtol=1e-13)


def test_constraints_of_custom_fields():
    # Plain fields are real-valued to `fit`; `positive_field` makes them positive.
    assert set(jax.tree_util.tree_leaves(parameters.constraints(MyRBF()))) == {parameters.Identity}
    tags = parameters.constraints(PositiveRBF(lengthscale=0.5) + gk.RBF())
    assert tags.kernels[0].variance is parameters.Positive
    assert tags.kernels[0].lengthscale is parameters.Positive
    assert parameters.constraints(Brownian()) == Brownian()  # no leaves at all
    assert jax.tree_util.tree_leaves(Brownian()) == []
