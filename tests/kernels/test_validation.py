"""Hyperparameters check themselves where declared, and again when used.

* Fields declared with ``positive_field``/``real_field`` check type, shape and
  value at construction, in library kernels and in a user's own kernel alike.
* Values that bypass the constructor (``equinox.tree_at``, deserialisation)
  are caught by ``check_hyperparameters`` when a kernel is used, naming the
  leaf path.
* The kernel base does each thing once: ``active_dims`` selection before the
  hooks, and a scalar-per-pair check on ``evaluate`` at trace time.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gpjax_lite.kernels as gk
from gpjax_lite import parameters
from gpjax_lite.parameters import check_hyperparameters, positive_field, real_field

# (class, scalar positive hyperparameter) for every kernel
SCALAR_FIELDS = [
    (cls, name)
    for cls in (gk.RBF, gk.Matern12, gk.Matern32, gk.Matern52, gk.RationalQuadratic, gk.Periodic)
    for name in ("variance",)
] + [
    (gk.RationalQuadratic, "alpha"),
    (gk.Periodic, "period"),
    (gk.Cosine, "variance"),
    (gk.Cosine, "period"),
    (gk.Linear, "variance"),
    (gk.Polynomial, "variance"),
    (gk.Polynomial, "bias"),
    (gk.Constant, "variance"),
    (gk.White, "variance"),
]
LENGTHSCALE_KERNELS = [
    gk.RBF,
    gk.Matern12,
    gk.Matern32,
    gk.Matern52,
    gk.RationalQuadratic,
    gk.Periodic,
]
ALL_FIELDS = SCALAR_FIELDS + [(cls, "lengthscale") for cls in LENGTHSCALE_KERNELS]
IDS = [f"{c.__name__}.{n}" for c, n in ALL_FIELDS]

BAD_TYPES = [
    1.0 + 2.0j,
    np.complex64(1.0),
    jnp.array(1.0 + 0.0j),
    True,
    np.bool_(False),
    jnp.array(True),
    "1.0",
    None,
    object(),
    np.array([1.0, "a"], dtype=object),
    [1.0, [2.0, 3.0]],  # ragged
]
BAD_TYPE_IDS = [
    "complex",
    "np-complex",
    "jnp-complex",
    "bool",
    "np-bool",
    "jnp-bool",
    "str",
    "None",
    "object",
    "object-array",
    "ragged",
]


# ------------------------------------------------------------ at construction
@pytest.mark.parametrize("bad", BAD_TYPES, ids=BAD_TYPE_IDS)
@pytest.mark.parametrize("cls, name", ALL_FIELDS, ids=IDS)
def test_wrong_type_is_a_type_error_naming_the_field(cls, name, bad):
    with pytest.raises(TypeError, match=f"`{name}`"):
        cls(**{name: bad})


@pytest.mark.parametrize(
    "cls, name", SCALAR_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in SCALAR_FIELDS]
)
def test_non_scalar_hyperparameter_is_a_value_error_naming_it(cls, name):
    for bad in (jnp.array([1.0, 2.0, 3.0]), [0.5], np.ones((2, 2))):
        with pytest.raises(ValueError, match=f"`{name}` must be a scalar"):
            cls(**{name: bad})


def test_issue_example_vector_variance():
    # Before: a non-symmetric "Gram" for X of shape (3, 2).
    with pytest.raises(ValueError, match="`variance`"):
        gk.RBF(variance=jnp.array([1.0, 2.0, 3.0])).gram(np.zeros((3, 2)))


@pytest.mark.parametrize("cls", LENGTHSCALE_KERNELS)
def test_lengthscale_of_rank_two_is_rejected_at_construction(cls):
    with pytest.raises(ValueError, match="`lengthscale` must be a scalar or a 1-D array"):
        cls(lengthscale=np.ones((2, 2)))


def test_scaled_scale_must_be_a_scalar():
    with pytest.raises(ValueError, match="`scale`"):
        gk.Scaled(gk.RBF(), jnp.array([1.0, 2.0]))
    with pytest.raises(TypeError, match="`scale`"):
        gk.Scaled(gk.RBF(), 1j)


@pytest.mark.parametrize("cls, name", ALL_FIELDS, ids=IDS)
def test_integers_are_accepted_and_act_like_floats(cls, name):
    X = np.linspace(-1.0, 2.0, 5)[:, None]
    as_int, as_float = cls(**{name: 2}), cls(**{name: 2.0})
    assert jnp.issubdtype(getattr(as_int, name).dtype, jnp.floating)
    np.testing.assert_array_equal(as_int.gram(X), as_float.gram(X))


def test_integer_ard_lengthscale_array():
    k = gk.RBF(lengthscale=np.arange(1, 4))
    assert k.lengthscale.dtype == jnp.result_type(float)
    np.testing.assert_allclose(k.lengthscale, [1.0, 2.0, 3.0])


# ------------------------------------------------ a user's kernel: no __check_init__
class Mine(gk.Kernel):
    """A user's kernel declared with the public field helpers only."""

    variance: jax.Array = positive_field(1.0, shape="scalar", kw_only=True)
    lengthscale: jax.Array = positive_field(1.0, shape="scalar_or_vector", kw_only=True)
    shift: jax.Array = real_field(0.0, kw_only=True)
    anything: jax.Array = positive_field(1.0, kw_only=True)  # no shape declared: any shape

    def evaluate(self, x, y):
        r2 = jnp.sum(((x - y) / self.lengthscale) ** 2)
        return self.variance * jnp.exp(-0.5 * r2) + self.shift * 0.0 + 0.0 * jnp.sum(self.anything)


@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, math.inf])
def test_user_kernel_positive_field_rejects_bad_values(bad):
    with pytest.raises(ValueError, match="`variance` must be positive"):
        Mine(variance=bad)
    with pytest.raises(ValueError, match="`lengthscale` must be positive"):
        Mine(lengthscale=[1.0, bad])
    with pytest.raises(ValueError, match="`anything` must be positive"):
        Mine(anything=np.full((2, 3), bad))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_user_kernel_real_field_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="`shift` must be finite"):
        Mine(shift=bad)


def test_user_kernel_fields_check_type_and_shape():
    with pytest.raises(TypeError, match="`shift`"):
        Mine(shift="0")
    with pytest.raises(ValueError, match="`variance` must be a scalar"):
        Mine(variance=[1.0, 2.0])
    # accepted: negative real field, any-shape positive field, ARD vector
    k = Mine(shift=-3.0, anything=np.ones((2, 3)), lengthscale=[1.0, 2.0])
    assert k.gram(np.zeros((4, 2))).shape == (4, 4)


def test_field_shape_must_be_a_known_name():
    with pytest.raises(ValueError, match="`shape`"):
        positive_field(1.0, shape="matrix")


def test_tracers_are_checked_for_shape_not_value():
    # Inside jit only shapes and dtypes are known: a negative value passes, a vector does not.
    out = jax.jit(lambda v: gk.RBF(variance=v).variance)(-1.0)
    assert float(out) == -1.0
    with pytest.raises(ValueError, match="`variance`"):
        jax.jit(lambda v: gk.RBF(variance=v))(jnp.ones(3))


# --------------------------------------------------------- bypassing the constructor
X = np.linspace(0.0, 1.0, 4)[:, None]


def _calls(k):
    return {
        "gram": lambda: k.gram(X),
        "cross": lambda: k.cross(X, X[:2]),
        "diag": lambda: k.diag(X),
        "call": lambda: k(X[0], X[1]),
    }


@pytest.mark.parametrize("call", ["gram", "cross", "diag", "call"])
@pytest.mark.parametrize("bad", [-1.0, 0.0, math.nan, -math.inf])
def test_tree_at_negative_lengthscale_raises_when_used(bad, call):
    k = eqx.tree_at(lambda k: k.lengthscale, gk.RBF(), bad)
    with pytest.raises(ValueError, match="`lengthscale` must be positive"):
        _calls(k)[call]()


def test_negative_lengthscale_never_acts_like_its_absolute_value():
    k = eqx.tree_at(lambda k: k.lengthscale, gk.Matern52(), jnp.asarray(-0.5))
    with pytest.raises(ValueError, match="`lengthscale`"):
        k.gram(X)


@pytest.mark.parametrize(
    "where, path",
    [
        (lambda k: k.kernels[0].lengthscale, "kernels[0].lengthscale"),
        (lambda k: k.kernels[1].kernel.period, "kernels[1].kernel.period"),
        (lambda k: k.kernels[1].scale, "kernels[1].scale"),
        (lambda k: k.kernels[2].kernels[1].variance, "kernels[2].kernels[1].variance"),
    ],
    ids=["term", "scaled-term", "scale", "product-factor"],
)
def test_path_of_a_bad_leaf_inside_combinations(where, path):
    k = gk.RBF() + 2.0 * gk.Periodic() + gk.Linear() * gk.Constant()
    bad = eqx.tree_at(where, k, -0.5)
    for call in _calls(bad).values():
        with pytest.raises(ValueError, match=f"`{__import__('re').escape(path)}` must be positive"):
            call()


def test_check_hyperparameters_prefix_and_any_pytree():
    k = eqx.tree_at(lambda k: k.kernels[0].lengthscale, gk.RBF() + gk.RBF(), -1.0)
    with pytest.raises(ValueError, match=r"`kernel\.kernels\[0\]\.lengthscale`"):
        check_hyperparameters(k, "kernel")
    with pytest.raises(ValueError, match=r"`\[1\]\.kernels\[0\]\.lengthscale`"):
        check_hyperparameters((gk.RBF(), k))
    check_hyperparameters(gk.RBF() + gk.Periodic(), "kernel")  # valid: no error


def test_tree_at_wrong_type_or_shape_raises_when_used():
    with pytest.raises(TypeError, match="`variance`"):
        eqx.tree_at(lambda k: k.variance, gk.RBF(), "big").gram(X)
    with pytest.raises(TypeError, match="`variance`"):
        eqx.tree_at(lambda k: k.variance, gk.RBF(), jnp.asarray(1.0 + 1.0j)).gram(X)
    with pytest.raises(ValueError, match="`variance` must be a scalar"):
        eqx.tree_at(lambda k: k.variance, gk.RBF(), jnp.ones(4)).gram(X)


def test_deserialised_bad_values_raise_when_used(tmp_path):
    template = gk.RBF(variance=1.0, lengthscale=jnp.ones(2)) + gk.Periodic()
    bad = eqx.tree_at(lambda k: k.kernels[0].lengthscale, template, jnp.array([1.0, -2.0]))
    eqx.tree_serialise_leaves(tmp_path / "k.eqx", bad)
    loaded = eqx.tree_deserialise_leaves(tmp_path / "k.eqx", template)
    with pytest.raises(ValueError, match=r"`kernels\[0\]\.lengthscale`"):
        loaded.gram(np.zeros((3, 2)))


def test_check_is_a_no_op_on_tracers():
    # Inside jit the values are unknown: the kernel computes (documented), eager code raises.
    bad = eqx.tree_at(lambda k: k.lengthscale, gk.RBF(), jnp.asarray(-1.0))
    K = eqx.filter_jit(lambda k, X: k.gram(X))(bad, X)
    np.testing.assert_allclose(np.diagonal(K), 1.0)


def test_check_hyperparameters_caches_by_structure_not_values():
    # The same structure with different values must still be checked on its values.
    good = gk.RBF(lengthscale=0.5) + gk.Matern32()
    check_hyperparameters(good)
    bad = eqx.tree_at(lambda k: k.kernels[1].variance, good, -2.0)
    with pytest.raises(ValueError, match=r"`kernels\[1\]\.variance`"):
        check_hyperparameters(bad)


def test_only_declared_leaves_are_checked():
    class Holder(eqx.Module):
        data: jax.Array  # undeclared: not a hyperparameter
        noise: jax.Array = positive_field(0.1)

    check_hyperparameters(Holder(data=jnp.array([-1.0, math.nan])))
    with pytest.raises(ValueError, match=r"`model\.noise`"):
        check_hyperparameters(Holder(data=jnp.zeros(1), noise=-1.0), "model")


def test_constraints_unchanged_for_fit():
    k = gk.RBF() + gk.Periodic()
    tags = jax.tree_util.tree_leaves(parameters.constraints(k))
    assert tags == [parameters.Positive] * 5


# ------------------------------------------------------------ the kernel base
class VectorValued(gk.Kernel):
    """A user mistake: ``evaluate`` returns one value per input column."""

    def evaluate(self, x, y):
        return x * y


@pytest.mark.parametrize("call", ["gram", "cross", "diag", "call"])
def test_evaluate_returning_a_vector_is_a_value_error_naming_the_class(call):
    k = VectorValued()
    Xd = np.ones((4, 3))
    calls = {
        "gram": lambda: k.gram(Xd),
        "cross": lambda: k.cross(Xd, Xd[:2]),
        "diag": lambda: k.diag(Xd),
        "call": lambda: k(Xd[0], Xd[1]),
    }
    with pytest.raises(ValueError, match=r"`VectorValued\.evaluate` must return a scalar.*\(3,\)"):
        calls[call]()


def test_evaluate_shape_check_holds_under_jit_and_in_combinations():
    Xd = np.ones((4, 3))
    with pytest.raises(ValueError, match="VectorValued"):
        jax.jit(lambda X: VectorValued().gram(X))(Xd)
    with pytest.raises(ValueError, match="VectorValued"):
        (gk.RBF() + VectorValued()).gram(Xd)
    with pytest.raises(ValueError, match="VectorValued"):
        (2.0 * VectorValued()).cross(Xd, Xd)


def test_stationary_profile_is_abstract():
    class NoProfile(gk.Stationary):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoProfile()

    class WithProfile(gk.Stationary):
        def profile(self, r2):
            return 1.0 / (1.0 + r2)

    K = WithProfile(lengthscale=2.0).gram(np.array([0.0, 2.0]))
    np.testing.assert_allclose(K, [[1.0, 0.5], [0.5, 1.0]])


class LinearByHook(gk.Kernel):
    """Overrides a matrix hook: it must receive the selected columns only."""

    def evaluate(self, x, y):
        return jnp.dot(x, y)

    def _cross(self, X, Y):
        assert X.shape[1] == (2 if self.active_dims is None else len(self.active_dims))
        return X @ Y.T


def test_hooks_receive_selected_columns():
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(5, 2)), rng.normal(size=(3, 2))
    k = LinearByHook(active_dims=(0, 2))
    Xw = np.stack([A[:, 0], rng.normal(size=5), A[:, 1]], axis=1)
    Yw = np.stack([B[:, 0], rng.normal(size=3), B[:, 1]], axis=1)
    np.testing.assert_allclose(k.cross(Xw, Yw), A @ B.T, rtol=1e-12)
    np.testing.assert_allclose(k.gram(Xw), A @ A.T, rtol=1e-12)
    # Inside a sum, each term selects from the sum's selection: here [x1, x0, x2].
    s = gk.Sum(
        (LinearByHook(active_dims=(0, 2)), gk.Linear(active_dims=(1,))), active_dims=(1, 0, 2)
    )
    first = Xw[:, [1, 2]]
    expected = first @ first.T + np.outer(Xw[:, 0], Xw[:, 0])
    np.testing.assert_allclose(s.gram(Xw), expected, rtol=1e-12)


def test_benchmarks_report_the_library_path_choice():
    ours = pytest.importorskip("benchmarks.ours")
    for d in (1, 3, 40):
        for dtype in (jnp.float32, jnp.float64):
            k = ours.kernel("sum3", {"variance": 1.0, "lengthscale": 1.0}, dtype)
            assert ours.gram_paths("sum3", d, dtype) == k.matrix_path(d, dtype)
    assert ours.gram_paths("rbf", 3, jnp.float64) == "matmul"
    assert ours.gram_paths("rbf", 3, jnp.float32) == "columns"


@pytest.mark.parametrize("bad", BAD_TYPES, ids=BAD_TYPE_IDS)
def test_shared_value_checks_raise_type_errors_for_non_real_values(bad):
    # The eager checks used by models (`noise`, `include_noise`, data) name the argument too.
    from gpjax_lite._checks import check_finite, check_positive

    with pytest.raises(TypeError, match="`noise`"):
        check_positive("noise", bad)
    with pytest.raises(TypeError, match="`value`"):
        check_finite("value", bad)
