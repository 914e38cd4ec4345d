"""One validation layer: every public entry point rejects each kind of bad input the same way.

Convention (docs/errors.md): a wrong type is a ``TypeError``, a wrong value or
shape a ``ValueError``, naming the argument as the user wrote it, raised before
any compiled work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import naming

import gpjax_lite as gl
from gpjax_lite import kernels, sparse

#: Round-off tolerance of this run's default float (the suite also runs in float32 mode).
EPS = float(jnp.finfo(jnp.result_type(float)).eps)

N = 12
X = jnp.linspace(0.0, 3.0, N)
Y = jnp.sin(X)
Z = jnp.linspace(0.0, 3.0, 4)
KEY = jax.random.key(0)
GP = gl.GP(kernels.Matern52(), noise=0.1)
POST = GP.condition(X, Y)
SGPR = sparse.SGPR(kernels.RBF(), Z, noise=0.1)
STATE_SPACE = gl.GP(kernels.Matern32(), noise=0.1, solver=gl.solvers.StateSpace())
LABELS = (Y > 0.5).astype(Y.dtype)
LAPLACE = gl.LaplaceGP(kernels.RBF(), gl.likelihoods.Bernoulli())
SVGP = sparse.SVGP(kernels.RBF(), Z, noise=0.1)


def _inputs_entry_points():
    """``(label, call(X_like))`` for every entry point taking training or test inputs."""
    return [
        ("gram", "X", lambda A: kernels.RBF().gram(A)),
        ("cross", "X", lambda A: kernels.RBF().cross(A, X)),
        ("diag", "X", lambda A: kernels.RBF().diag(A)),
        ("GP.prior", "X", lambda A: GP.prior(A)),
        ("GP.sample", "X", lambda A: GP.sample(KEY, A)),
        ("GP.lml", "X", lambda A: GP.log_marginal_likelihood(A, Y)),
        ("GP.condition", "X", lambda A: GP.condition(A, Y)),
        ("Posterior.predict", "Xt", lambda A: POST.predict(A)),
        ("Posterior.__call__", "Xt", lambda A: POST(A)),
        ("Posterior.sample", "Xt", lambda A: POST.sample(KEY, A)),
        ("fit", "X", lambda A: gl.fit(GP, A, Y, num_steps=2)),
        ("SGPR.elbo", "X", lambda A: SGPR.elbo(A, Y)),
        ("SVGP.elbo", "X", lambda A: SVGP.elbo(A, Y)),
        ("SVGP.predict", "Xt", lambda A: SVGP.predict(A)),
        ("inducing_kmeans", "X", lambda A: sparse.inducing_kmeans(KEY, A, 2)),
        ("StateSpace.lml", "X", lambda A: STATE_SPACE.log_marginal_likelihood(A, Y)),
        ("StateSpace.predict", "Xt", lambda A: STATE_SPACE.condition(X, Y).predict(A)),
        ("LaplaceGP.lml", "X", lambda A: LAPLACE.log_marginal_likelihood(A, LABELS)),
        ("LaplacePosterior.predict", "Xt", lambda A: LAPLACE.condition(X, LABELS).predict(A)),
    ]


ENTRY_POINTS = _inputs_entry_points()
IDS = [label for label, _, _ in ENTRY_POINTS]

BAD_TYPES = {
    "complex": X + 0j,
    "str": "abc",
    "none": None,
    "ragged": [[1.0, 2.0], [3.0]],
    "object": np.array([1.0, "a"], dtype=object),
}
BAD_VALUES = {
    "no-columns": jnp.zeros((N, 0)),
    "no-rows": jnp.zeros((0, 1)),
    "rank-3": jnp.zeros((N, 1, 1)),
    "nan": X.at[3].set(jnp.nan),
}


@pytest.mark.parametrize("kind", list(BAD_TYPES))
@pytest.mark.parametrize("label,name,call", ENTRY_POINTS, ids=IDS)
def test_inputs_of_a_wrong_type_are_a_type_error_naming_them(label, name, call, kind):
    with pytest.raises(TypeError, match=f"`{name}`"):
        call(BAD_TYPES[kind])


@pytest.mark.parametrize("kind", list(BAD_VALUES))
@pytest.mark.parametrize("label,name,call", ENTRY_POINTS, ids=IDS)
def test_inputs_of_a_wrong_value_are_a_value_error_naming_them(label, name, call, kind):
    with pytest.raises(ValueError, match=f"`{name}`"):
        call(BAD_VALUES[kind])


TARGET_ENTRY_POINTS = [
    ("GP.lml", lambda b: GP.log_marginal_likelihood(X, b)),
    ("GP.condition", lambda b: GP.condition(X, b)),
    ("fit", lambda b: gl.fit(GP, X, b, num_steps=2)),
    ("SGPR.elbo", lambda b: SGPR.elbo(X, b)),
    ("SVGP.elbo", lambda b: SVGP.elbo(X, b)),
    (
        "batched_lml",
        lambda b: sparse.sharding.batched_log_marginal_likelihood(GP, X[None], b[None]),
    ),
    ("StateSpace.lml", lambda b: STATE_SPACE.log_marginal_likelihood(X, b)),
    ("LaplaceGP.lml", lambda b: LAPLACE.log_marginal_likelihood(X, b)),
]


@pytest.mark.parametrize("label,call", TARGET_ENTRY_POINTS, ids=[t[0] for t in TARGET_ENTRY_POINTS])
def test_targets_complex_is_a_type_error_and_nan_a_value_error(label, call):
    with pytest.raises(TypeError, match="`y`"):
        call(Y + 0j)
    with pytest.raises(ValueError, match="`y`"):
        call(Y.at[0].set(jnp.nan))


def test_batched_log_marginal_likelihood_rejects_nan_inputs():
    with pytest.raises(ValueError, match="`X`"):
        sparse.sharding.batched_log_marginal_likelihood(GP, X.at[2].set(jnp.nan)[None], Y[None])


BAD_KEYS = {
    "int": 0,
    "none": None,
    "float-array": jnp.zeros(2),
    "batch-of-keys": jax.random.split(KEY, 3),
    "raw-batch": jax.random.split(jax.random.PRNGKey(0), 3),
}
KEY_ENTRY_POINTS = [
    ("GP.sample", lambda k: GP.sample(k, X)),
    ("Posterior.sample", lambda k: POST.sample(k, X)),
    ("SGPRPosterior.sample", lambda k: SGPR.condition(X, Y).sample(k, X)),
    ("SVGP.sample", lambda k: SVGP.sample(k, X)),
    ("inducing_subset", lambda k: sparse.inducing_subset(k, X, 3)),
    ("inducing_kmeans", lambda k: sparse.inducing_kmeans(k, X, 3)),
]


@pytest.mark.parametrize("kind", list(BAD_KEYS))
@pytest.mark.parametrize("label,call", KEY_ENTRY_POINTS, ids=[k[0] for k in KEY_ENTRY_POINTS])
def test_a_key_that_is_not_one_prng_key_is_a_type_error(label, call, kind):
    with pytest.raises(TypeError, match=naming("key")):
        call(BAD_KEYS[kind])


@pytest.mark.parametrize("label,call", KEY_ENTRY_POINTS, ids=[k[0] for k in KEY_ENTRY_POINTS])
def test_both_kinds_of_prng_key_are_accepted(label, call):
    assert np.all(np.isfinite(np.asarray(call(jax.random.key(1)))))
    assert np.all(np.isfinite(np.asarray(call(jax.random.PRNGKey(1)))))


def test_key_is_checked_before_any_factorisation():
    # An indefinite prior covariance would raise CholeskyError if sampling got that far.
    gp = gl.GP(kernels.RBF(lengthscale=1e6), jitter=0.0)
    with pytest.raises(TypeError, match=naming("key")):
        gp.sample(None, jnp.linspace(0.0, 1.0, 50))


class VectorMean(gl.means.MeanFunction):
    def __call__(self, x):
        return jnp.zeros((1,), x.dtype)


MEAN_ENTRY_POINTS = [
    ("GP.lml", lambda: gl.GP(kernels.RBF(), VectorMean()).log_marginal_likelihood(X, Y)),
    ("GP.prior", lambda: gl.GP(kernels.RBF(), VectorMean()).prior(X)),
    (
        "GP.lml-jit",
        lambda: jax.jit(gl.GP(kernels.RBF(), VectorMean()).log_marginal_likelihood)(X, Y),
    ),
    ("SGPR.elbo", lambda: sparse.SGPR(kernels.RBF(), Z, VectorMean()).elbo(X, Y)),
    ("SVGP.elbo", lambda: sparse.SVGP(kernels.RBF(), Z, VectorMean()).elbo(X, Y)),
]


@pytest.mark.parametrize("label,call", MEAN_ENTRY_POINTS, ids=[m[0] for m in MEAN_ENTRY_POINTS])
def test_a_mean_returning_a_vector_is_a_value_error_naming_mean(label, call):
    # Shapes are static, so this holds under jit too.
    with pytest.raises(ValueError, match="`mean`"):
        call()


class TestMultivariateNormal:
    def test_lists_and_integers_are_converted_to_floats(self):
        d = gl.MultivariateNormal([0, 1], [[2, 0], [0, 3]])
        assert jnp.issubdtype(d.mean.dtype, jnp.floating)
        np.testing.assert_allclose(np.asarray(d.variance()), [2.0, 3.0])
        expected = -0.5 * (1 / 2 + 0 / 3) - 0.5 * np.log(6.0) - np.log(2 * np.pi)
        np.testing.assert_allclose(
            float(d.log_prob(jnp.array([1.0, 1.0]))), expected, rtol=100 * EPS
        )

    @pytest.mark.parametrize(
        "mean,cov,error,name",
        [
            (1.0, [[1.0]], ValueError, "`mean`"),
            (["a", "b"], jnp.eye(2), TypeError, "`mean`"),
            (jnp.zeros(2) + 0j, jnp.eye(2), TypeError, "`mean`"),
            (jnp.zeros(2), jnp.eye(2) + 0j, TypeError, "`covariance_matrix`"),
            (jnp.array([jnp.nan, 0.0]), jnp.eye(2), ValueError, "`mean`"),
            (jnp.zeros(2), jnp.eye(2).at[0, 1].set(jnp.nan), ValueError, "`covariance_matrix`"),
        ],
    )
    def test_bad_inputs(self, mean, cov, error, name):
        with pytest.raises(error, match=name):
            gl.MultivariateNormal(mean, cov)


@pytest.mark.parametrize(
    "jitter,error",
    [
        (-1.0, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        ("big", TypeError),
        (True, TypeError),
        (jnp.ones(2), TypeError),
    ],
)
@pytest.mark.parametrize(
    "make",
    [
        lambda j: gl.GP(kernels.RBF(), jitter=j),
        lambda j: gl.MultivariateNormal(jnp.zeros(2), jnp.eye(2), jitter=j),
    ],
    ids=["GP", "MultivariateNormal"],
)
def test_jitter_must_be_a_non_negative_number(make, jitter, error):
    with pytest.raises(error, match=naming("jitter")):
        make(jitter)


def test_chunked_prediction_equals_one_block(monkeypatch):
    from gpjax_lite.solvers import cholesky

    Xt = jnp.linspace(-1.0, 4.0, 23)
    whole = POST.predict(Xt)
    monkeypatch.setattr(cholesky, "PREDICT_CHUNK_SIZE", 5)  # 5 blocks, the last one padded
    chunked = POST.predict(Xt)
    for a, b in zip(whole, chunked):
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1000 * EPS, atol=10 * EPS)
    assert chunked[0].shape == (23,)


@pytest.mark.parametrize("post", [POST, SGPR.condition(X, Y), SVGP], ids=["GP", "SGPR", "SVGP"])
def test_include_noise_is_written_once_for_every_posterior(post):
    Xt = jnp.linspace(0.0, 3.0, 7)
    mean, var = post.predict(Xt)
    _, with_noise = post.predict(Xt, include_noise=True)
    np.testing.assert_allclose(np.asarray(with_noise - var), 0.1, rtol=1e4 * EPS)
    per_point = jnp.linspace(0.01, 0.07, 7)
    _, with_own = post.predict(Xt, include_noise=per_point)
    np.testing.assert_allclose(np.asarray(with_own - var), np.asarray(per_point), rtol=1e5 * EPS)
    with pytest.raises(TypeError, match="`include_noise`"):
        post.predict(Xt, include_noise=jnp.asarray(True))
    with pytest.raises(ValueError, match="`include_noise`"):
        post.predict(Xt, include_noise=jnp.ones(3))
    with pytest.raises(ValueError, match="`include_noise`"):
        post.predict(Xt, include_noise=-jnp.ones(7))


# ------------------------------------------------- values that bypass the constructor
BYPASS_ENTRY_POINTS = [
    ("GP.lml", lambda m: m.log_marginal_likelihood(X, Y)),
    ("GP.condition", lambda m: m.condition(X, Y)),
    ("GP.prior", lambda m: m.prior(X)),
    ("GP.sample", lambda m: m.sample(KEY, X)),
    ("fit", lambda m: gl.fit(m, X, Y, num_steps=2)),
    ("fit-fixed", lambda m: gl.fit(m, X, Y, num_steps=2, fixed=lambda g: g.noise)),
]


@pytest.mark.parametrize("value", [-0.05, 0.0, float("nan")])
@pytest.mark.parametrize("label,call", BYPASS_ENTRY_POINTS, ids=[b[0] for b in BYPASS_ENTRY_POINTS])
def test_a_noise_set_around_the_constructor_is_rejected_when_used(label, call, value):
    import equinox as eqx

    bad = eqx.tree_at(lambda g: g.noise, GP, value)
    with pytest.raises(ValueError, match="`noise`"):
        call(bad)


@pytest.mark.parametrize("label,call", BYPASS_ENTRY_POINTS, ids=[b[0] for b in BYPASS_ENTRY_POINTS])
def test_a_negative_lengthscale_never_acts_like_its_absolute_value(label, call):
    import equinox as eqx

    bad = eqx.tree_at(lambda g: g.kernel.lengthscale, GP, -1.0)
    with pytest.raises(ValueError, match="`kernel.lengthscale`"):
        call(bad)


def test_a_posterior_edited_around_the_constructor_is_rejected():
    import equinox as eqx

    bad = eqx.tree_at(lambda p: p.model.kernel.variance, POST, -2.0)
    with pytest.raises(ValueError, match="`kernel.variance`"):
        bad.predict(X)


def test_a_deserialised_model_is_checked_when_used(tmp_path):
    import equinox as eqx

    path = tmp_path / "gp.eqx"
    eqx.tree_serialise_leaves(path, eqx.tree_at(lambda g: g.noise, GP, jnp.asarray(-0.05)))
    loaded = eqx.tree_deserialise_leaves(path, GP)
    with pytest.raises(ValueError, match="`noise`"):
        loaded.log_marginal_likelihood(X, Y)
    with pytest.raises(ValueError, match="`noise`"):
        gl.fit(loaded, X, Y, num_steps=2)


def test_sgpr_checks_values_set_around_the_constructor():
    import equinox as eqx

    with pytest.raises(ValueError, match="`noise`"):
        eqx.tree_at(lambda m: m.noise, SGPR, -1.0).elbo(X, Y)
    with pytest.raises(ValueError, match="`noise`"):
        sparse.SGPR(kernels.RBF(), Z, noise=-1.0)


# ------------------------------------------------------------ dtype is preserved
def _float32_models():
    from gpjax_lite import likelihoods

    Z32 = Z.astype(jnp.float32)
    return [
        ("GP", gl.GP(kernels.Periodic() + kernels.Matern32(), noise=0.1)),
        ("SGPR", sparse.SGPR(kernels.RBF(), Z32, noise=0.1)),
        ("SVGP", sparse.SVGP(kernels.RBF(), Z32, noise=0.1)),
        ("LaplaceGP", gl.LaplaceGP(kernels.RBF(), likelihoods.Bernoulli())),
    ]


@pytest.mark.parametrize("label,model", _float32_models(), ids=[m[0] for m in _float32_models()])
def test_float32_data_give_float32_results_with_float64_enabled(label, model):
    X32 = X.astype(jnp.float32)
    y32 = (Y > 0.5).astype(jnp.float32) if label == "LaplaceGP" else Y.astype(jnp.float32)
    objective = (lambda m, X, y: m.elbo(X, y)) if label in ("SGPR", "SVGP") else None
    value = model.elbo(X32, y32) if objective else model.log_marginal_likelihood(X32, y32)
    assert value.dtype == jnp.float32
    post = model if label == "SVGP" else model.condition(X32, y32)
    mean, variance = post.predict(X32)
    assert mean.dtype == variance.dtype == jnp.float32
    assert post.sample(KEY, X32[:5], num_samples=2).dtype == jnp.float32
    assert post(X32[:5]).covariance().dtype == jnp.float32
    if label != "SVGP":
        fitted = gl.fit(model, X32, y32, num_steps=3, objective=objective).model
        refit_post = fitted if label == "SVGP" else fitted.condition(X32, y32)
        assert refit_post.predict(X32)[1].dtype == jnp.float32


def test_boolean_data_are_read_as_zeros_and_ones():
    labels = Y > 0.5
    from gpjax_lite import likelihoods

    model = gl.LaplaceGP(kernels.RBF(), likelihoods.Bernoulli())
    np.testing.assert_allclose(
        float(model.log_marginal_likelihood(X, labels)),
        float(model.log_marginal_likelihood(X, labels.astype(float))),
        rtol=100 * EPS,
    )


@pytest.mark.parametrize("model", [kernels.RBF(), "gp", None, {"a": jnp.ones(())}])
def test_fit_names_a_model_that_is_not_a_model(model):
    with pytest.raises(TypeError, match=naming("model")):
        gl.fit(model, X, Y, num_steps=2)


@pytest.mark.parametrize("num_restarts", [1, 3])
@pytest.mark.parametrize("key", [0, "k", jnp.zeros(2)])
def test_fit_checks_its_key_whatever_the_number_of_restarts(key, num_restarts):
    with pytest.raises(TypeError, match=naming("key")):
        gl.fit(GP, X, Y, num_steps=2, num_restarts=num_restarts, key=key)


def test_include_noise_none_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=naming("include_noise")):
        POST.predict(X, include_noise=None)
