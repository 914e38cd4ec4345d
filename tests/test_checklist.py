"""Items of scikit-learn's Gaussian-process test checklist not covered elsewhere.

Each test compares with the shared NumPy/SciPy references of ``tests/oracle.py``
or with an exact property of the model:

* **shift invariance** of every stationary kernel: moving all inputs by one
  constant leaves the Gram matrix and the log marginal likelihood unchanged,
  on every code path (column by column, matrix product, vmap core), also at
  an offset of 1e4 (see "Tolerances" below);
* **exact duplicate inputs**: repeated rows give the oracle's log marginal
  likelihood and posterior, and noise-free prior draws at repeated inputs work
  through the documented jitter;
* **constant targets**: a finite log marginal likelihood equal to the oracle's,
  and ``fit`` returns finite, positive hyperparameters that the constructors
  accept;
* **ARD relevance**: on data that depend on one input column only, ``fit``
  makes the irrelevant column's lengthscale much longer than the relevant one.

Tolerances. The shift-invariance tests use inputs on a dyadic grid (multiples
of 2⁻¹⁰ in [-2, 2]) and shifts that keep them exactly representable in both
dtypes (|x + c| < 2¹⁴ with ten fractional bits fits float32's 24-bit
significand), so the shifted inputs are the same points and any change comes
from the library's arithmetic alone. The bound (:func:`shift_bound`) is then
independent of the offset: ``4 u (1 + S) · variance`` for a dtype with machine
epsilon ``u``, where ``S`` is the largest squared scaled norm of a centred input
(the matrix-product fast paths round ``r²`` relative to it); below 1e-12 in
float64 here, up to 1e-4 in float32 at 33 columns. For inputs that a shift does
round (random inputs plus 1e4), the library must match the oracle evaluated on
the same rounded inputs, within twice that bound: the fast paths may lose no
digits beyond those the inputs themselves lost.
"""

import jax
import jax.numpy as jnp
import numpy as np
import oracle
import pytest

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite.kernels.stationary import COLUMNWISE_MAX_DIM, FAST_PATH_MIN_DIM

#: Input widths reaching every code path: column by column (1, 2); the
#: matrix-product squared distance of RBF and RQ (from FAST_PATH_MIN_DIM); the
#: vmap core of the Matérn kernels (beyond COLUMNWISE_MAX_DIM). Periodic always
#: takes its phase-feature product.
DIMS = [1, 2, max(FAST_PATH_MIN_DIM, 4), COLUMNWISE_MAX_DIM + 1]
#: float64 cases skip themselves in a run with 64-bit JAX off (`JAX_ENABLE_X64=0`).
needs_x64 = pytest.mark.skipif(
    not jax.config.read("jax_enable_x64"), reason="needs float64: 64-bit JAX is off"
)
DTYPES = [
    pytest.param(np.float64, id="float64", marks=needs_x64),
    pytest.param(np.float32, id="float32"),
]
VARIANCE = 1.3
NOISE = 0.1


def _lengthscale(d):
    return 0.8 if d == 1 else np.linspace(0.6, 1.7, d)


def stationary_kernels(d, dtype=np.float64):
    """``name -> (library kernel, oracle Gram function)`` for inputs with ``d`` columns.

    ARD lengthscales are arrays of ``dtype`` (scalars stay Python floats, weakly
    typed), so that float32 inputs are not promoted to float64.
    """
    ls = _lengthscale(d)
    ls_lib = ls if np.ndim(ls) == 0 else jnp.asarray(ls, dtype)
    return {
        "RBF": (
            gk.RBF(variance=VARIANCE, lengthscale=ls_lib),
            lambda A, B: oracle.rbf(A, B, VARIANCE, ls),
        ),
        "Matern12": (
            gk.Matern12(variance=VARIANCE, lengthscale=ls_lib),
            lambda A, B: oracle.matern12(A, B, VARIANCE, ls),
        ),
        "Matern32": (
            gk.Matern32(variance=VARIANCE, lengthscale=ls_lib),
            lambda A, B: oracle.matern32(A, B, VARIANCE, ls),
        ),
        "Matern52": (
            gk.Matern52(variance=VARIANCE, lengthscale=ls_lib),
            lambda A, B: oracle.matern52(A, B, VARIANCE, ls),
        ),
        "RationalQuadratic": (
            gk.RationalQuadratic(variance=VARIANCE, lengthscale=ls_lib, alpha=2.5),
            lambda A, B: oracle.rational_quadratic(A, B, VARIANCE, ls, 2.5),
        ),
        "Periodic": (
            gk.Periodic(variance=VARIANCE, lengthscale=ls_lib, period=1.3),
            lambda A, B: oracle.periodic(A, B, VARIANCE, ls, 1.3),
        ),
        # A covariance on one column only: the first, through active_dims.
        "Cosine": (
            gk.Cosine(variance=VARIANCE, period=2.1, active_dims=(0,)),
            lambda A, B: oracle.cosine(first_column(A), first_column(B), VARIANCE, 2.1),
        ),
    }


def first_column(A):
    return oracle.as_2d(A)[:, :1]


KERNEL_NAMES = list(stationary_kernels(1))


def dyadic_inputs(n, d, seed):
    """``n × d`` points of the grid 2⁻¹⁰ ℤ in [-2, 2): exact in float32 even when shifted by 1e4."""
    return np.random.default_rng(seed).integers(-2048, 2048, size=(n, d)) / 1024.0


def targets(X):
    return np.sin(2.0 * X[:, 0]) + 0.3 * np.cos(X[:, -1])


def shift_bound(X, lengthscale, dtype):
    """Kernel-value round-off allowed between the Grams of shifted and unshifted inputs.

    Relative to the variance: ``4 u (1 + S)``, with ``u`` the dtype's machine
    epsilon and ``S`` the largest squared scaled norm ``||(x_i - x̄)/ℓ||²`` of a
    centred input: the matrix-product paths (RBF and RQ from FAST_PATH_MIN_DIM
    columns, Periodic's phase features) round ``r²`` relative to ``S`` rather than
    to ``r²`` itself, and a shift changes the centre's round-off. In float64 this
    stays below 1e-12 for the inputs here.
    """
    scaled = (X - X.mean(axis=0)) / np.asarray(lengthscale)
    S = float(np.max(np.sum(scaled**2, axis=1)))
    return 4 * float(np.finfo(dtype).eps) * (1 + S)


def _max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


# ----------------------------------------------------------------- shift invariance
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("name", KERNEL_NAMES)
@pytest.mark.parametrize("shift", [0.375, 1e4])
def test_stationary_gram_and_lml_are_shift_invariant(name, d, dtype, shift):
    kernel, _ = stationary_kernels(d, dtype)[name]
    X, Y = dyadic_inputs(24, d, seed=d), dyadic_inputs(7, d, seed=d + 100)
    assert np.all((X + shift) - shift == X)  # the shift is exact in float64 ...
    assert np.all(((X + shift).astype(dtype) - shift).astype(np.float64) == X)  # ... and in dtype
    as_dtype = lambda A: jnp.asarray(A, dtype)  # noqa: E731
    gram, gram_shifted = kernel.gram(as_dtype(X)), kernel.gram(as_dtype(X + shift))
    cross = kernel.cross(as_dtype(X), as_dtype(Y))
    cross_shifted = kernel.cross(as_dtype(X + shift), as_dtype(Y + shift))
    if name == "Cosine":  # one active column, no lengthscale
        bound = shift_bound(X[:, :1], 1.0, dtype)
    else:
        bound = shift_bound(X, _lengthscale(d), dtype)
    assert dtype == np.float32 or bound < 1e-12
    assert _max_abs(gram_shifted, gram) <= bound * VARIANCE
    assert _max_abs(cross_shifted, cross) <= bound * VARIANCE
    gp = gl.GP(kernel, noise=NOISE)
    y = as_dtype(targets(X))
    lml = gp.log_marginal_likelihood(as_dtype(X), y)
    lml_shifted = gp.log_marginal_likelihood(as_dtype(X + shift), y)
    # The same bound, relative to the log marginal likelihood's magnitude.
    assert abs(float(lml_shifted) - float(lml)) <= bound * abs(float(lml))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_large_offset_loses_no_digits_beyond_the_inputs(name, d, dtype):
    kernel, reference = stationary_kernels(d, dtype)[name]
    rng = np.random.default_rng(d)
    # Random (not dyadic) inputs: adding 1e4 rounds them; the oracle sees the rounded values.
    X = (rng.uniform(-2.0, 2.0, size=(24, d)) + 1e4).astype(dtype)
    X64 = X.astype(np.float64)
    K = kernel.gram(jnp.asarray(X))
    K_ref = reference(X64, X64)
    # Twice the shift test's bound: the oracle rounds nothing, the library rounds in `dtype`.
    if name == "Cosine":
        bound = 2 * shift_bound(X64[:, :1], 1.0, dtype)
    else:
        bound = 2 * shift_bound(X64, _lengthscale(d), dtype)
    assert dtype == np.float32 or bound < 1e-12
    assert _max_abs(K, K_ref) <= bound * VARIANCE
    y = targets(X64 - 1e4)
    lml = gl.GP(kernel, noise=NOISE).log_marginal_likelihood(jnp.asarray(X), jnp.asarray(y, dtype))
    lml_ref = oracle.log_marginal_likelihood(K_ref, y.astype(dtype).astype(np.float64), NOISE)
    assert abs(float(lml) - lml_ref) <= 5 * bound * abs(lml_ref)


# ------------------------------------------------------------------ duplicate inputs
def inputs_with_duplicates():
    """Eight distinct 2-D points, five of them repeated (one three times): 14 rows."""
    base = np.random.default_rng(3).uniform(-2.0, 2.0, size=(8, 2))
    X = base[[0, 1, 2, 3, 4, 5, 6, 7, 0, 2, 2, 5, 6, 7]]
    # Repeated inputs get different targets.
    y = np.sin(2.0 * X[:, 0]) + 0.2 * np.random.default_rng(4).normal(size=len(X))
    return X, y


DUPLICATE_TOL = {np.float64: 1e-10, np.float32: 1e-4}


@pytest.mark.parametrize("dtype", DTYPES)
def test_duplicate_inputs_lml_and_posterior_match_the_oracle(dtype):
    X, y = inputs_with_duplicates()
    Xt = np.concatenate([X[:3], np.random.default_rng(5).uniform(-2.5, 2.5, size=(4, 2))])
    ls = np.array([0.7, 1.4])
    gp = gl.GP(gk.Matern52(variance=VARIANCE, lengthscale=jnp.asarray(ls, dtype)), noise=0.05)
    ref = lambda A, B: oracle.matern52(A, B, VARIANCE, ls)  # noqa: E731
    Xd, yd, Xtd = (jnp.asarray(a, dtype) for a in (X, y, Xt))
    tol = DUPLICATE_TOL[dtype]

    lml = gp.log_marginal_likelihood(Xd, yd)
    expected = oracle.log_marginal_likelihood(ref(X, X), y, 0.05)
    assert abs(float(lml) - expected) <= tol * abs(expected)

    mean, var = gp.condition(Xd, yd).predict(Xtd)
    mean_ref, cov_ref = oracle.posterior(ref(X, X), ref(X, Xt), ref(Xt, Xt), y, 0.05)
    assert _max_abs(mean, mean_ref) <= tol * np.max(np.abs(mean_ref))
    assert _max_abs(var, np.diag(cov_ref)) <= tol * VARIANCE


@pytest.mark.parametrize("dtype", DTYPES)
def test_noise_free_prior_draws_at_duplicate_inputs_work_through_jitter(dtype):
    """``K`` at repeated inputs is singular; the documented jitter (``default_jitter`` of
    the dtype, relative to the variance) makes it factorise, and repeated inputs
    then get draws that differ by at most that jitter's standard deviation."""
    X, _ = inputs_with_duplicates()
    ls = np.array([0.7, 1.4])
    gp = gl.GP(gk.RBF(variance=VARIANCE, lengthscale=jnp.asarray(ls, dtype)))
    Xd = jnp.asarray(X, dtype)
    num = 4000
    draws = np.asarray(gp.prior(Xd).sample(jax.random.key(0), num))
    assert draws.shape == (num, len(X)) and np.all(np.isfinite(draws))
    # Repeats differ only by the jitter: each draw adds independent N(0, jitter · variance).
    jitter_sd = np.sqrt(gl.linalg.default_jitter(dtype) * VARIANCE)
    for i, j in [(0, 8), (2, 9), (2, 10), (5, 11), (6, 12), (7, 13)]:
        assert np.max(np.abs(draws[:, i] - draws[:, j])) <= 7 * np.sqrt(2) * jitter_sd
    # The draws have the oracle's covariance (a 4000-draw estimate: ±5 standard errors).
    K = oracle.rbf(X, X, VARIANCE, ls)
    empirical = np.cov(draws.astype(np.float64), rowvar=False)
    assert _max_abs(empirical, K) <= 5 * np.sqrt(2.0 / num) * VARIANCE
    # GP.sample goes the same way.
    samples = gp.sample(jax.random.key(1), Xd, num_samples=3)
    assert samples.shape == (3, len(X)) and np.all(np.isfinite(np.asarray(samples)))


# ------------------------------------------------------------------ constant targets
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("value", [0.0, 3.0])
def test_constant_targets_lml_matches_the_oracle(value, dtype):
    X = np.random.default_rng(6).uniform(-2.0, 2.0, size=(20, 2))
    y = np.full(20, value)
    ls = np.array([0.9, 1.2])
    K = oracle.matern52(X, X, VARIANCE, ls)
    tol = DUPLICATE_TOL[dtype]
    for mean, mean_value in [(gl.means.Zero(), 0.0), (gl.means.Constant(value), value)]:
        kernel = gk.Matern52(variance=VARIANCE, lengthscale=jnp.asarray(ls, dtype))
        gp = gl.GP(kernel, mean=mean, noise=NOISE)
        lml = float(gp.log_marginal_likelihood(jnp.asarray(X, dtype), jnp.asarray(y, dtype)))
        expected = oracle.log_marginal_likelihood(K, y, NOISE, mean_value)
        assert np.isfinite(lml) and abs(lml - expected) <= tol * abs(expected)
    # With the mean equal to the targets the residual vanishes: -½ log|A| - n/2 log 2π is left.
    A = K + NOISE * np.eye(20)
    zero_residual = -0.5 * np.linalg.slogdet(A)[1] - 10 * np.log(2 * np.pi)
    assert expected == pytest.approx(zero_residual, rel=1e-12)


def _positive_hyperparameters(model):
    return {
        "variance": model.kernel.variance,
        "lengthscale": model.kernel.lengthscale,
        "noise": model.noise,
    }


CONSTANT_FITS = [
    pytest.param(
        np.array([[1.0, 2.0], [2.0, 2.0]]),
        np.array([0.0, 0.0]),
        id="issue-12.6-two-points-zero",
    ),
    pytest.param(
        np.random.default_rng(7).uniform(-2.0, 2.0, size=(20, 2)),
        np.full(20, 3.0),
        id="twenty-points-three",
    ),
]


@pytest.mark.parametrize("X, y", CONSTANT_FITS)
def test_fit_on_constant_targets_returns_hyperparameters_the_constructors_accept(X, y):
    result = gl.fit(gl.GP(gk.Matern52(), noise=0.1), X, y)
    values = _positive_hyperparameters(result.model)
    for name, value in values.items():
        value = np.asarray(value)
        assert np.all(np.isfinite(value)) and np.all(value > 0), (name, value)
    # The constructors accept them (they reject non-positive or non-finite values) ...
    kernel = gk.Matern52(variance=values["variance"], lengthscale=values["lengthscale"])
    rebuilt = gl.GP(kernel, noise=values["noise"])
    assert np.isfinite(float(rebuilt.log_marginal_likelihood(X, y)))
    # ... and a refit starts from a finite loss.
    refit = gl.fit(rebuilt, X, y, num_steps=5)
    assert np.isfinite(float(refit.losses[0]))


# --------------------------------------------------------------------- ARD relevance
def test_ard_lengthscale_of_an_irrelevant_column_grows():
    rng = np.random.default_rng(8)
    X = rng.uniform(-3.0, 3.0, size=(80, 2))
    y = np.sin(1.5 * X[:, 0]) + 0.05 * rng.normal(size=80)  # column 1 is irrelevant
    gp = gl.GP(gk.RBF(lengthscale=jnp.ones(2)), noise=0.1)
    result = gl.fit(gp, X, y)
    relevant, irrelevant = np.asarray(result.model.kernel.lengthscale)
    assert irrelevant > 10 * relevant, (relevant, irrelevant)
    # The relevant column's lengthscale matches the data's scale (sin(1.5 x): about 1/1.5).
    assert 0.3 < relevant < 3.0
    assert float(result.losses[-1]) < float(result.losses[0])
    assert jax.tree.structure(result.model) == jax.tree.structure(gp)
