"""gpjax_lite.parameters: constraints, fixed hyperparameters and the unconstrained map."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import naming

import gpjax_lite.kernels as gk
from gpjax_lite import parameters as P


def _model():
    """Every kind of positive hyperparameter, nested in Sum / Product / Scaled."""
    return (
        gk.RBF(variance=1.5, lengthscale=jnp.array([0.3, 2.0]))
        + 0.7 * gk.Periodic(variance=0.4, lengthscale=1.1, period=3.0)
    ) * gk.RationalQuadratic(alpha=2.5, lengthscale=0.9) + gk.Polynomial(
        bias=0.2, degree=3
    ) * gk.Cosine(period=4.0, active_dims=(0,))


def _leaves_with_names(tree):
    return [
        (jax.tree_util.keystr(path), leaf)
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def test_natural_values_are_stored():
    k = gk.RBF(lengthscale=0.3)
    assert k.lengthscale == 0.3
    assert float(k.lengthscale) == 0.3
    assert gk.Periodic(period=7.25).period == 7.25
    assert float((0.1 * gk.RBF()).scale) == 0.1
    ard = np.array([0.3, 1e-3, 40.0])
    np.testing.assert_array_equal(gk.RBF(lengthscale=ard).lengthscale, ard)


def test_constraints_tag_every_positive_field():
    model = _model()
    tags = P.constraints(model)
    assert jax.tree_util.tree_structure(tags, is_leaf=lambda x: isinstance(x, type)) == (
        jax.tree_util.tree_structure(model)
    )
    named = _leaves_with_names(tags)
    assert len(named) == len(jax.tree_util.tree_leaves(model)) == 13
    for name, tag in named:
        assert tag is P.Positive, name
    # spot checks through the nesting
    sum_term, poly_term = model.kernels[0].kernels[0], model.kernels[1]
    assert P.constraints(sum_term).kernels[0].lengthscale is P.Positive
    assert P.constraints(sum_term).kernels[1].scale is P.Positive
    assert P.constraints(sum_term).kernels[1].kernel.period is P.Positive
    assert P.constraints(poly_term).kernels[0].bias is P.Positive
    assert P.constraints(model.kernels[0].kernels[1]).alpha is P.Positive


def test_real_field_is_identity():
    class Shifted(gk.Kernel):
        shift: jax.Array = P.real_field(0.0)
        variance: jax.Array = P.positive_field(1.0)

        def evaluate(self, x, y):
            return self.variance * jnp.exp(-jnp.sum((x - y - self.shift) ** 2))

    tags = P.constraints(Shifted(shift=-2.0))
    assert tags.shift is P.Identity and tags.variance is P.Positive
    m = Shifted(shift=-2.0, variance=3.0)
    mask = P.trainable_mask(m)
    u = P.to_unconstrained(m, mask)
    assert float(u.shift) == -2.0
    np.testing.assert_allclose(u.variance, np.log(3.0), rtol=1e-15)


def test_trainable_mask_default_is_all_true():
    model = _model()
    mask = P.trainable_mask(model)
    assert jax.tree_util.tree_structure(mask) == jax.tree_util.tree_structure(model)
    assert all(v is True for v in jax.tree_util.tree_leaves(mask))


def test_trainable_mask_fixes_exactly_the_selected_leaf():
    model = gk.RBF(lengthscale=0.5) + gk.Periodic() + gk.Linear()
    mask = P.trainable_mask(model, fixed=lambda k: k.kernels[0].lengthscale)
    assert mask.kernels[0].lengthscale is False
    named = dict(_leaves_with_names(mask))
    assert sum(v is False for v in named.values()) == 1
    assert sum(v is True for v in named.values()) == len(named) - 1 == 5
    # several at once, as a tuple
    mask2 = P.trainable_mask(model, fixed=lambda k: (k.kernels[0].variance, k.kernels[1].period))
    assert mask2.kernels[0].variance is False and mask2.kernels[1].period is False
    assert sum(v is False for v in jax.tree_util.tree_leaves(mask2)) == 2


def test_fixing_a_whole_sub_kernel():
    model = _model()
    mask = P.trainable_mask(
        model, fixed=lambda k: k.kernels[0].kernels[0].kernels[1]
    )  # 0.7 * Periodic
    fixed_leaves = jax.tree_util.tree_leaves(mask.kernels[0].kernels[0].kernels[1])
    assert len(fixed_leaves) == 4 and not any(fixed_leaves)
    others = len(jax.tree_util.tree_leaves(mask)) - 4
    assert sum(v is True for v in jax.tree_util.tree_leaves(mask)) == others


@pytest.mark.parametrize(
    "fixed, error",
    [
        (lambda k: k.kernels[5], ValueError),  # out of range
        (lambda k: k.nonexistent, ValueError),  # no such attribute
        (lambda k: 3.0, ValueError),  # not part of the model
        ("lengthscale", TypeError),  # not a function
    ],
    ids=["index", "attribute", "foreign", "string"],
)
def test_bad_fixed_raises_naming_fixed(fixed, error):
    model = gk.RBF() + gk.Linear()
    with pytest.raises(error, match=naming("fixed")):
        P.trainable_mask(model, fixed=fixed)


def test_unconstrained_round_trip():
    model = _model()
    mask = P.trainable_mask(model)
    u = P.to_unconstrained(model, mask)
    back = P.from_unconstrained(u, mask)
    assert jax.tree_util.tree_structure(back) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(back), jax.tree_util.tree_leaves(model)):
        np.testing.assert_allclose(a, b, rtol=1e-14)
    # a positive leaf maps to its log
    for (name, uu), (_, m) in zip(_leaves_with_names(u), _leaves_with_names(model)):
        np.testing.assert_allclose(uu, np.log(np.asarray(m)), rtol=1e-15, err_msg=name)
    # every unconstrained value maps to a valid (positive) model
    shifted = P.from_unconstrained(jax.tree_util.tree_map(lambda a: a - 50.0, u), mask)
    assert all(np.all(np.asarray(x) > 0) for x in jax.tree_util.tree_leaves(shifted))


def test_round_trip_under_jit_and_grad():
    model = gk.RBF(variance=2.0, lengthscale=0.5)
    mask = P.trainable_mask(model)
    X = jnp.linspace(0.0, 1.0, 4)

    @jax.jit
    def loss(u):
        return jnp.sum(P.from_unconstrained(u, mask).gram(X))

    u = P.to_unconstrained(model, mask)
    g = jax.jit(jax.grad(loss))(u)
    # chain rule through exp: d/du = theta * d/dtheta
    g_theta = jax.jit(jax.grad(lambda m: jnp.sum(m.gram(X))))(model)
    np.testing.assert_allclose(g.variance, 2.0 * g_theta.variance, rtol=1e-12)
    np.testing.assert_allclose(g.lengthscale, 0.5 * g_theta.lengthscale, rtol=1e-12)


def test_fixed_leaves_pass_through_bit_for_bit():
    model = _model()
    fixed = lambda k: (k.kernels[0].kernels[0].kernels[0].lengthscale, k.kernels[1].kernels[0])  # noqa: E731
    mask = P.trainable_mask(model, fixed=fixed)
    u = P.to_unconstrained(model, mask)
    back = P.from_unconstrained(u, mask)
    for tree in (u, back):
        rbf = tree.kernels[0].kernels[0].kernels[0]
        assert rbf.lengthscale is model.kernels[0].kernels[0].kernels[0].lengthscale
        assert tree.kernels[1].kernels[0].bias is model.kernels[1].kernels[0].bias
        assert tree.kernels[1].kernels[0].variance is model.kernels[1].kernels[0].variance
    # trainable leaves were transformed (not passed through)
    np.testing.assert_allclose(u.kernels[0].kernels[0].kernels[0].variance, np.log(1.5), rtol=1e-15)


def test_static_fields_untouched():
    model = gk.Polynomial(degree=3, active_dims=(1,)) + gk.RBF()
    mask = P.trainable_mask(model)
    u = P.to_unconstrained(model, mask)
    assert u.kernels[0].degree == 3 and u.kernels[0].active_dims == (1,)
    assert len(jax.tree_util.tree_leaves(mask)) == 4  # degree / active_dims are not leaves


def test_serialise_round_trip(tmp_path):
    model = _model()
    path = tmp_path / "kernel.eqx"
    eqx.tree_serialise_leaves(path, model)
    # load into a differently-valued model of the same structure
    like = jax.tree_util.tree_map(lambda a: a * 3.0, model)
    loaded = eqx.tree_deserialise_leaves(path, like)
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(model)):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype
    X = np.linspace(-1.0, 1.0, 8).reshape(4, 2)
    gram = jax.jit(lambda k: k.gram(X))
    np.testing.assert_array_equal(gram(loaded), gram(model))
    assert loaded.kernels[1].kernels[1].active_dims == (0,)
