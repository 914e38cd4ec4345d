"""Bad input raises a clear ValueError/TypeError naming the argument, before any compiled work."""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import naming

import gpjax_lite.kernels as gk

# (class, positive hyperparameter) for every positive hyperparameter of every kernel
POSITIVE = [
    (cls, name)
    for cls in (gk.RBF, gk.Matern12, gk.Matern32, gk.Matern52)
    for name in ("variance", "lengthscale")
] + [
    (gk.RationalQuadratic, "variance"),
    (gk.RationalQuadratic, "lengthscale"),
    (gk.RationalQuadratic, "alpha"),
    (gk.Periodic, "variance"),
    (gk.Periodic, "lengthscale"),
    (gk.Periodic, "period"),
    (gk.Cosine, "variance"),
    (gk.Cosine, "period"),
    (gk.Linear, "variance"),
    (gk.Polynomial, "variance"),
    (gk.Polynomial, "bias"),
    (gk.Constant, "variance"),
    (gk.White, "variance"),
]
BAD_VALUES = [0.0, -1.0, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("bad", BAD_VALUES, ids=["zero", "negative", "nan", "inf", "-inf"])
@pytest.mark.parametrize("cls, name", POSITIVE, ids=[f"{c.__name__}.{n}" for c, n in POSITIVE])
def test_non_positive_or_non_finite_hyperparameter(cls, name, bad):
    with pytest.raises(ValueError, match=f"`{name}`"):
        cls(**{name: bad})


@pytest.mark.parametrize("cls", [gk.RBF, gk.Matern52, gk.Periodic])
def test_one_bad_ard_entry(cls):
    with pytest.raises(ValueError, match="`lengthscale`"):
        cls(lengthscale=np.array([1.0, 0.0, 2.0]))
    with pytest.raises(ValueError, match="`lengthscale`"):
        cls(lengthscale=jnp.array([1.0, -2.0]))
    with pytest.raises(ValueError, match="`lengthscale`"):
        cls(lengthscale=[1.0, math.nan])


@pytest.mark.parametrize("bad", [0.0, -1.0, -0.5, math.nan, math.inf])
def test_non_positive_scale(bad):
    k = gk.RBF()
    with pytest.raises(ValueError, match="`scale`"):
        bad * k
    with pytest.raises(ValueError, match="`scale`"):
        k * bad
    with pytest.raises(ValueError, match="`scale`"):
        jnp.asarray(bad) * k


def test_non_positive_int_scale():
    with pytest.raises(ValueError, match="`scale`"):
        -1 * gk.RBF()
    with pytest.raises(ValueError, match="`scale`"):
        gk.Matern32() * 0


def test_valid_hyperparameters_are_accepted():
    # The error tests above would pass vacuously if construction always failed.
    for cls, name in POSITIVE:
        k = cls(**{name: 0.25})
        assert float(getattr(k, name)) == 0.25


# ------------------------------------------------------------ shape mismatches
@pytest.mark.parametrize("cls", [gk.RBF, gk.Matern12, gk.RationalQuadratic, gk.Periodic])
def test_ard_lengthscale_length_must_match_d(cls):
    k = cls(lengthscale=np.ones(3))
    X = np.zeros((4, 6))
    message = re.escape("(3,)") + ".*" + re.escape("d = 6") + ".*" + re.escape("(6,)")
    for call in (
        lambda: k.gram(X),
        lambda: k.cross(X, X),
        lambda: k.diag(X),
        lambda: k(X[0], X[1]),
    ):
        with pytest.raises(ValueError, match="`lengthscale`") as info:
            call()
        assert re.search(message, str(info.value)), str(info.value)
    # against the number of *active* columns
    k2 = cls(lengthscale=np.ones(3), active_dims=(0, 2))
    with pytest.raises(ValueError, match=r"`lengthscale`.*\(3,\).*d = 2"):
        k2.gram(X)
    # also inside jit (shapes are static) and inside combinations
    with pytest.raises(ValueError, match="`lengthscale`"):
        jax.jit(lambda X: k.gram(X))(X)
    with pytest.raises(ValueError, match="`lengthscale`"):
        (gk.Linear() + 2.0 * k).gram(X)
    # a 2-D lengthscale is never right
    with pytest.raises(ValueError, match="`lengthscale`"):
        cls(lengthscale=np.ones((2, 2))).gram(np.zeros((3, 2)))


def _shape_of_gram(k, X):
    """Run the checks and trace, without compiling anything."""
    return jax.eval_shape(lambda X: k.gram(X), X).shape


def test_matching_ard_lengthscale_is_accepted():
    # The mismatch tests above would pass vacuously if every lengthscale were rejected.
    X = np.zeros((4, 6))
    assert _shape_of_gram(gk.RBF(lengthscale=np.ones(6)), X) == (4, 4)
    assert _shape_of_gram(gk.RBF(lengthscale=np.ones(1)), X) == (4, 4)
    assert _shape_of_gram(gk.Periodic(lengthscale=np.ones(2), active_dims=(1, 5)), X) == (4, 4)


@pytest.mark.parametrize("method", ["gram", "diag"])
def test_inputs_of_rank_above_two(method):
    k = gk.RBF()
    with pytest.raises(ValueError, match=r"`X`.*\(n,\) or \(n, d\).*\(2, 3, 4\)"):
        getattr(k, method)(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="`X`"):
        getattr(k, method)(np.float64(1.0))  # rank 0 is no set of inputs either


def test_cross_inputs_of_rank_above_two():
    k = gk.Matern32()
    with pytest.raises(ValueError, match="`X`"):
        k.cross(np.zeros((2, 3, 1)), np.zeros((2, 1)))
    with pytest.raises(ValueError, match="`Y`"):
        k.cross(np.zeros((2, 1)), np.zeros((2, 3, 1)))


def test_cross_with_different_d():
    k = gk.RBF()
    with pytest.raises(ValueError, match=r"`X` and `Y`.*\(5, 2\).*\(4, 3\)"):
        k.cross(np.zeros((5, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="`X` and `Y`"):
        jax.jit(lambda X, Y: k.cross(X, Y))(np.zeros((5, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="`X` and `Y`"):
        (k + gk.Linear()).cross(np.zeros(5), np.zeros((4, 3)))


def test_pointwise_call_with_different_shapes():
    k = gk.RBF()
    with pytest.raises(ValueError, match=r"`x` and `y`.*\(2,\).*\(3,\)"):
        k(jnp.zeros(2), jnp.zeros(3))
    with pytest.raises(ValueError, match="`x` and `y`"):
        k(0.0, jnp.zeros(2))
    with pytest.raises(ValueError, match="`x`"):
        k(jnp.zeros((2, 2)), jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="`y`"):
        k(jnp.zeros(2), jnp.zeros((1, 2)))


# ---------------------------------------------------------------- active_dims
@pytest.mark.parametrize(
    "k",
    [
        gk.RBF(active_dims=(0, 3)),
        gk.Linear(active_dims=(3,)),
        gk.White(active_dims=(5,)),
        gk.Sum((gk.RBF(), gk.Linear()), active_dims=(1, 3)),
        gk.RBF() + gk.Cosine(active_dims=(3,)),
    ],
    ids=["RBF", "Linear", "White", "Sum-with-dims", "term-with-dims"],
)
def test_active_dims_out_of_range(k):
    X = np.zeros((4, 3))
    for call in (lambda: k.gram(X), lambda: k.cross(X, X), lambda: k.diag(X)):
        with pytest.raises(ValueError, match=r"`active_dims`.*d = 3"):
            call()


def test_active_dims_inside_a_combination_is_checked_against_the_selected_columns():
    inner = gk.RBF(active_dims=(1,))  # column 1 of the columns its parent selects
    outer = gk.Sum((inner, gk.Linear()), active_dims=(2,))  # only 1 column selected
    with pytest.raises(ValueError, match="`active_dims`.*d = 1"):
        outer.gram(np.zeros((3, 4)))


@pytest.mark.parametrize(
    "dims",
    [[0, 1], 0, (0.0,), (-1,), (), "0", (0, "1"), np.array([0, 1])],
    ids=["list", "int", "float", "negative", "empty", "str", "mixed", "ndarray"],
)
@pytest.mark.filterwarnings("ignore:A JAX array is being set as static")
def test_active_dims_must_be_a_tuple_of_ints(dims):
    with pytest.raises(TypeError, match="`active_dims`"):
        gk.RBF(active_dims=dims)
    with pytest.raises(TypeError, match="`active_dims`"):
        gk.Linear(active_dims=dims)


@pytest.mark.parametrize("dims", [(0, 0), (1, 2, 1)])
def test_active_dims_must_not_repeat_a_column(dims):
    for cls in (gk.RBF, gk.Linear, gk.Matern52):
        with pytest.raises(ValueError, match=r"`active_dims` repeats a column"):
            cls(active_dims=dims)


def test_active_dims_accepts_numpy_ints():
    k = gk.RBF(active_dims=(np.int64(1), 0))
    assert k.active_dims == (1, 0) and all(type(i) is int for i in k.active_dims)
    assert _shape_of_gram(k, np.zeros((2, 2))) == (2, 2)


# ----------------------------------------------------------------- Polynomial
@pytest.mark.parametrize(
    "degree, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (2.0, TypeError),
        (1.5, TypeError),
        ("2", TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_polynomial_degree_must_be_a_positive_int(degree, error):
    with pytest.raises(error, match=naming("degree")):
        gk.Polynomial(degree=degree)


# ---------------------------------------------------------- non-finite inputs
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_inputs(bad):
    k = gk.RBF()
    X = np.zeros((4, 2))
    X[2, 1] = bad
    good = np.zeros((3, 2))
    with pytest.raises(ValueError, match="`X`.*finite"):
        k.gram(X)
    with pytest.raises(ValueError, match="`X`.*finite"):
        k.diag(X)
    with pytest.raises(ValueError, match="`X`.*finite"):
        k.cross(X, good)
    with pytest.raises(ValueError, match="`Y`.*finite"):
        k.cross(good, X)
    with pytest.raises(ValueError, match="`X`.*finite"):
        (k * gk.Linear()).gram(X[:, 1])


# -------------------------------------------------------------------- others
def test_white_has_no_pointwise_value():
    with pytest.raises(TypeError, match="White"):
        gk.White()(jnp.zeros(2), jnp.zeros(2))
    with pytest.raises(TypeError):
        gk.White()(0.0, 1.0)


@pytest.mark.parametrize("other", [1.0, "a", None, np.ones(3)])
def test_adding_a_non_kernel(other):
    with pytest.raises(TypeError):
        gk.RBF() + other
    with pytest.raises(TypeError):
        other + gk.RBF()


def test_multiplying_by_a_non_scalar():
    with pytest.raises(TypeError):
        gk.RBF() * "a"
    with pytest.raises(TypeError):
        gk.RBF() * None


def test_combinations_hold_kernels_only():
    # beartype checks one random item of a `tuple[Kernel, ...]`: for a mixed tuple either the
    # library rejects it or the checker does, and the checker's re-check (also one random
    # item) may then not name the parameter, only the function.
    with pytest.raises(TypeError, match=rf"{naming('kernels')}|Sum\.__init__"):
        gk.Sum((gk.RBF(), 3.0))
    with pytest.raises(TypeError, match=naming("kernels")):
        gk.Product(())
    with pytest.raises(TypeError, match=naming("kernels")):
        gk.Product([gk.RBF()])
    with pytest.raises(TypeError, match=naming("kernel")):
        gk.Scaled(3.0, 2.0)
