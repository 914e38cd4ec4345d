"""The one optimisation loop behind ``fit`` and ``fit_svgp``, and the positivity floor.

* The loop is checked against a plain Python loop of the same optax updates
  (written here): the per-step losses, which iterate comes back (the lowest
  loss for a deterministic loss, the last one for a stochastic loss) and the
  minibatch keys of ``fit_svgp``.
* The positivity floor of :class:`gpjax_lite.parameters.Positive` is checked
  against its documented bounds ``θ ∈ [2√tiny, 1/(2√tiny)]`` and on the
  constant-target problem of issue 12.6, whose loss is checked against a
  NumPy Matérn-5/2 marginal likelihood (Rasmussen & Williams 2006, eq. 2.30
  and 4.17).
* ``fit`` and ``fit_svgp`` reject bad loop arguments with the same messages.
* Compiler options: the default (XLA:CPU's classic emitters where XLA has
  them, unless ``XLA_FLAGS`` chooses), that options reach XLA, that XLA's
  rejections come before the loop is built, and that inside a user's ``jit``
  none are passed.
"""

import math
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import jaxtyping
import numpy as np
import optax
import pytest
from conftest import naming

import gpjax_lite
from gpjax_lite import GP, fit, kernels, sparse
from gpjax_lite.parameters import Positive, from_unconstrained, to_unconstrained, trainable_mask

ADAM = optax.adam(0.3)
STEPS = 40


def regression_data(n=29, seed=7):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, n)
    return X, np.sin(1.7 * X) + 0.1 * rng.standard_normal(n)


def assert_trees_close(got, want, **tolerances):
    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for a, b in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        np.testing.assert_allclose(a, b, **tolerances)


# ------------------------------------------------------------- against a Python loop
def python_loop(loss, params, optimizer, keys):
    """The optax loop written out: the loss at the start of each step, and the last iterate."""
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    state = optimizer.init(params)
    losses = []
    iterates = []
    for key in keys:
        value, grad = value_and_grad(params, key)
        losses.append(float(value))
        iterates.append(params)
        updates, state = optimizer.update(grad, state, params)
        params = optax.apply_updates(params, updates)
    return np.array(losses), iterates, params


@pytest.mark.x64  # compared at float64 tolerances
def test_deterministic_loop_matches_python_loop_and_returns_the_lowest_loss():
    X, y = regression_data()
    gp = GP(kernels.RBF(variance=1.0, lengthscale=0.3), noise=0.2)
    mask = trainable_mask(gp)
    params, static = eqx.partition(to_unconstrained(gp, mask), mask)

    def loss(params, key):
        return -from_unconstrained(eqx.combine(params, static), mask).log_marginal_likelihood(X, y)

    losses, iterates, last = python_loop(loss, params, ADAM, [None] * STEPS)
    result = fit(gp, X, y, optimizer=ADAM, num_steps=STEPS)
    np.testing.assert_allclose(result.losses, losses, rtol=1e-9)
    last_loss = float(loss(last, None))
    np.testing.assert_allclose(float(result.last_loss), last_loss, rtol=1e-9)
    # Adam at this rate oscillates: the last iterate is worse than the best one seen.
    best = int(np.argmin(losses))
    assert losses[best] < last_loss
    np.testing.assert_allclose(float(result.final_loss), losses[best], rtol=1e-9)
    expected = from_unconstrained(eqx.combine(iterates[best], static), mask)
    assert_trees_close(result.model, expected, rtol=1e-9)


@pytest.mark.x64  # compared at float64 tolerances
def test_stochastic_loop_matches_python_loop_and_returns_the_last_iterate(capsys):
    X, y = regression_data(n=20)
    X2 = np.stack([X, np.cos(X)], axis=1)
    model = sparse.SVGP(kernels.RBF(), X2[:4] + 0.1, noise=0.1)
    mask = trainable_mask(model)
    params, static = eqx.partition(to_unconstrained(model, mask), mask)
    batch = 5

    def loss(params, key):
        Xb, yb = sparse.sample_minibatch(key, jnp.asarray(X2), jnp.asarray(y), batch)
        svgp = from_unconstrained(eqx.combine(params, static), mask)
        return -svgp.elbo(Xb, yb, num_data=X.shape[0])

    key = jax.random.key(3)
    steps = 15
    losses, _, last = python_loop(loss, params, ADAM, jax.random.split(key, steps))
    result = sparse.fit_svgp(
        model, X2, y, batch_size=batch, num_steps=steps, optimizer=ADAM, key=key
    )
    np.testing.assert_allclose(result.losses, losses, rtol=1e-9)
    # Minibatch losses are noisy: the last iterate comes back, whatever its minibatch loss.
    expected = from_unconstrained(eqx.combine(last, static), mask)
    assert_trees_close(result.model, expected, rtol=1e-9, atol=1e-12)
    # Progress goes through the same printer as `fit`'s: the minibatch loss of due steps.
    capsys.readouterr()
    again = sparse.fit_svgp(
        model, X2, y, batch_size=batch, num_steps=steps, optimizer=ADAM, key=key, progress=True
    )
    jax.effects_barrier()
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("fit_svgp")]
    assert lines[0].startswith("fit_svgp: step     1/15  -ELBO ≈ ")
    assert float(lines[0].split()[-1]) == pytest.approx(losses[0], rel=1e-5)
    assert lines[-1].startswith("fit_svgp: step    15/15")
    np.testing.assert_array_equal(again.losses, result.losses)


def test_fit_svgp_non_finite_from_the_start_returns_the_model_and_warns():
    # Duplicate inducing inputs without jitter: k(Z, Z) is singular, every ELBO is NaN.
    X, y = regression_data(n=20)
    model = sparse.SVGP(kernels.RBF(), np.array([0.5, 0.5, 1.0]), noise=0.1, jitter=0.0)
    with pytest.warns(RuntimeWarning, match="fit_svgp: .*non-finite at step 0"):
        result = sparse.fit_svgp(model, X, y, batch_size=5, num_steps=4, key=jax.random.key(0))
    assert int(result.nonfinite_step) == 0
    assert np.all(np.isnan(result.losses))
    assert_trees_close(result.model, model, rtol=0)


# ------------------------------------------------------------------ positivity floor
@pytest.mark.parametrize("dtype", [jnp.float32, pytest.param(jnp.float64, marks=pytest.mark.x64)])
def test_positive_bounds_keep_theta_and_its_square_representable(dtype):
    tiny = float(jnp.finfo(dtype).tiny)
    lower, upper = Positive.bounds(dtype)
    np.testing.assert_allclose(
        [math.exp(lower), math.exp(upper)], [2 * math.sqrt(tiny), 0.5 / math.sqrt(tiny)], rtol=1e-12
    )
    u = jnp.asarray([-jnp.inf, -1e4, lower, -10.0, 0.0, 1.5, 10.0, upper, 1e4, jnp.inf], dtype)
    theta = np.asarray(Positive.from_unconstrained(u))
    assert theta.dtype == dtype
    for value in (theta, theta**2, 1 / theta, 1 / theta**2):
        assert np.all(np.isfinite(value)) and np.all(value >= tiny)
    # Inside the box the map is exactly exp, and so is its gradient; outside, the gradient is 0.
    inside = u[3:7]
    np.testing.assert_array_equal(theta[3:7], jnp.exp(inside))  # XLA's exp, bit for bit
    grad = jax.vmap(jax.grad(Positive.from_unconstrained))(u[1:-1])
    np.testing.assert_array_equal(grad[2:6], jnp.exp(inside))
    assert grad[0] == 0 and grad[-1] == 0
    # A value inside the box survives the round trip.
    value = jnp.asarray(0.37, dtype)
    np.testing.assert_allclose(
        Positive.from_unconstrained(Positive.to_unconstrained(value)), value, rtol=1e-6
    )


def np_matern52_nll(variance, lengthscale, noise, X, y):
    """R&W eq. 2.30 with the Matérn-5/2 kernel of eq. 4.17, in float64 NumPy."""
    r = np.sqrt(np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)) / lengthscale
    K = variance * (1 + math.sqrt(5) * r + 5 * r**2 / 3) * np.exp(-math.sqrt(5) * r)
    K = K + noise * np.eye(X.shape[0])
    L = np.linalg.cholesky(K)
    alpha = np.linalg.solve(L, y)
    return 0.5 * alpha @ alpha + np.sum(np.log(np.diag(L))) + 0.5 * len(y) * math.log(2 * math.pi)


@pytest.mark.parametrize("dtype", [np.float32, pytest.param(np.float64, marks=pytest.mark.x64)])
def test_constant_targets_fit_to_the_floor_and_refit(dtype):
    # Issue 12.6: the likelihood grows without bound as the variance and the noise go to 0.
    X = np.array([[1.0, 2.0], [2.0, 2.0]], dtype)
    y = np.zeros(2, dtype)
    gp = GP(kernels.Matern52(), noise=0.1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = fit(gp, X, y)
    model = result.model
    floor = math.exp(Positive.bounds(dtype)[0])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose([model.kernel.variance, model.noise], [floor, floor], rtol=rtol)
    # Each leaf comes back in the initial model's dtype and weak type (so the fitted model
    # loads back into its template); the model still computes in the data's dtype.
    assert model.noise.dtype == jnp.asarray(gp.noise).dtype
    assert model.noise.weak_type == jnp.asarray(gp.noise).weak_type
    assert model.log_marginal_likelihood(X, y).dtype == dtype
    # The constructors accept every fitted value.
    kernel = kernels.Matern52(variance=model.kernel.variance, lengthscale=model.kernel.lengthscale)
    GP(kernel, noise=model.noise)
    leaves = [float(leaf) for leaf in jax.tree_util.tree_leaves(model)]
    nll = np_matern52_nll(*leaves, X.astype(np.float64), y.astype(np.float64))
    np.testing.assert_allclose(
        float(result.final_loss), nll, rtol=1e-5 if dtype == np.float32 else 1e-10
    )
    # A refit starts from a finite loss and stays there.
    again = fit(model, X, y)
    assert int(again.nonfinite_step) == -1
    np.testing.assert_allclose(float(again.losses[0]), float(result.final_loss), rtol=rtol)
    assert float(again.final_loss) <= float(again.losses[0])


# ------------------------------------------------------------- shared argument checks
def _svgp_fit(**kwargs):
    X, y = regression_data(n=20)
    model = sparse.SVGP(kernels.RBF(), X[:3], noise=0.1)
    args = dict(batch_size=4, num_steps=3, key=jax.random.key(0))
    args.update(kwargs)
    return sparse.fit_svgp(model, X, y, **args)


def _exact_fit(**kwargs):
    X, y = regression_data(n=20)
    return fit(GP(kernels.RBF(), noise=0.1), X, y, **kwargs)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(progress="yes"), TypeError, "progress"),
        (dict(progress=1), TypeError, "progress"),
        (dict(optimizer="adam"), TypeError, "optimizer"),
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(num_steps=True), TypeError, "num_steps"),
        (dict(fixed=lambda model: model), ValueError, "fixed"),
        (dict(fixed=lambda model: model.no_such_field), ValueError, "fixed"),
        (dict(compiler_options="fast"), TypeError, "compiler_options"),
        (dict(compiler_options={1: True}), TypeError, "compiler_options"),
        (
            dict(compiler_options={"xla_cpu_use_fusion_emitters": [False]}),
            TypeError,
            "compiler_options",
        ),
        # Types jaxtyping's dict[str, Any] lets through, which the library's own check refuses.
        (
            dict(compiler_options={"xla_cpu_use_fusion_emitters": None}),
            TypeError,
            "compiler_options",
        ),
        (
            dict(compiler_options={"xla_cpu_use_fusion_emitters": np.bool_(False)}),
            TypeError,
            "compiler_options",
        ),
    ],
)
def test_fit_and_fit_svgp_reject_bad_loop_arguments_alike(kwargs, error, name):
    messages = []
    for run in (_exact_fit, _svgp_fit):
        with pytest.raises(error, match=naming(name)) as info:
            run(**kwargs)
        # The runtime checker's message names the function it checked: compare only the library's.
        if not isinstance(info.value, jaxtyping.TypeCheckError):
            messages.append(str(info.value))
    if name != "fixed" and len(messages) == 2:  # the `fixed` messages name each model's own field
        assert messages[0] == messages[1]


# ------------------------------------------------------------------- compiler options
fit_module = __import__("gpjax_lite.fit", fromlist=["fit"])
CLASSIC = {"xla_cpu_use_fusion_emitters": False}
NEWER = {"xla_cpu_use_fusion_emitters": True}


def _known_to_xla(options) -> bool:
    """An oracle independent of the library's probe: does XLA compile with ``options``?"""
    try:
        jax.jit(lambda x: x, compiler_options=options).lower(0.0).compile()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def compiled_with(monkeypatch):
    """The option sets the loop is compiled with, recorded as ``fit`` hands them over."""
    seen = []
    original = fit_module._compiled_minimise

    def recording(options_key):
        seen.append({name: value for name, _, value in options_key})
        return original(options_key)

    monkeypatch.setattr(fit_module, "_compiled_minimise", recording)
    return seen


@pytest.mark.parametrize("flags", ["", "--xla_cpu_multi_thread_eigen=false"])
def test_default_compiler_options_are_the_classic_cpu_emitters_where_xla_has_them(
    flags, monkeypatch
):
    monkeypatch.setenv("XLA_FLAGS", flags)  # read at each call
    expected = CLASSIC if jax.default_backend() == "cpu" and _known_to_xla(CLASSIC) else {}
    assert gpjax_lite.default_compiler_options() == expected
    assert gpjax_lite.default_compiler_options() is not gpjax_lite.default_compiler_options()


@pytest.mark.parametrize("value", ["true", "false"])
def test_xla_flags_that_choose_the_emitters_are_left_in_charge(value, monkeypatch):
    monkeypatch.setenv(
        "XLA_FLAGS", f"--xla_cpu_multi_thread_eigen=false --xla_cpu_use_fusion_emitters={value}"
    )
    assert gpjax_lite.default_compiler_options() == {}


def test_the_options_reach_xla(tmp_path):
    # A dump directory is an option XLA acts on: files appear only if it got there.
    # (A NumPy integer is accepted, as jax.jit accepts it.)
    _exact_fit(
        compiler_options={"xla_dump_to": str(tmp_path), "xla_dump_max_hlo_modules": np.int64(50)}
    )
    assert any("minimise" in path.name for path in tmp_path.iterdir())


@pytest.mark.parametrize("run", [_exact_fit, _svgp_fit], ids=["fit", "fit_svgp"])
@pytest.mark.parametrize(
    "options, message",
    [
        ({"xla_no_such_option": True}, "xla_no_such_option"),
        ({"xla_backend_optimization_level": "high"}, "xla_backend_optimization_level"),
    ],
)
def test_options_xla_rejects_are_a_value_error_before_the_loop_is_built(
    run, options, message, compiled_with
):
    with pytest.raises(ValueError, match=f"compiler_options.*{message}"):
        run(compiler_options=options)
    assert compiled_with == []  # XLA's answer came from a trivial program, not from the fit's


@pytest.mark.skipif(not _known_to_xla(NEWER), reason="this XLA has no classic emitters")
@pytest.mark.parametrize("rejected_first", [True, False])
def test_a_rejected_value_does_not_poison_the_default(rejected_first):
    # 0 == False in Python, but XLA wants a bool: {k: 0} must not share a verdict or a
    # compiled loop with {k: False}, whichever comes first in the process.
    fit_module._xla_rejection.cache_clear()
    fit_module._compiled_minimise.cache_clear()
    if rejected_first:
        with pytest.raises(ValueError, match="compiler_options"):
            _exact_fit(compiler_options={"xla_cpu_use_fusion_emitters": 0})
    classic = _exact_fit(compiler_options=CLASSIC)
    with pytest.raises(ValueError, match="compiler_options"):
        _exact_fit(compiler_options={"xla_cpu_use_fusion_emitters": 0})
    with pytest.raises(ValueError, match="compiler_options"):
        _exact_fit(compiler_options={"xla_cpu_use_fusion_emitters": 1})
    np.testing.assert_array_equal(
        _exact_fit(compiler_options=CLASSIC).final_loss, classic.final_loss
    )


@pytest.mark.x64
@pytest.mark.skipif(not _known_to_xla(NEWER), reason="this XLA has no classic emitters")
def test_the_newer_and_the_classic_emitters_reach_the_same_fit():
    # Explicit options win over XLA_FLAGS (the test configuration asks for the classic
    # emitters there), so this compares two code generators whatever the environment.
    classic = _exact_fit(compiler_options=CLASSIC)
    newer = _exact_fit(compiler_options=NEWER)
    np.testing.assert_allclose(newer.final_loss, classic.final_loss, rtol=1e-12)
    assert_trees_close(newer.model, classic.model, rtol=1e-7)
    assert int(newer.steps_taken) == int(classic.steps_taken)


@pytest.mark.x64
def test_fit_inside_a_users_jit_leaves_compiler_options_to_that_jit(compiled_with):
    # JAX refuses options on a nested jit: fit passes none there.
    X, y = regression_data(n=20)
    gp = GP(kernels.RBF(), noise=0.1)
    expected = fit(gp, X, y, compiler_options=CLASSIC).final_loss
    del compiled_with[:]
    traced = jax.jit(lambda X, y: fit(gp, X, y).final_loss)
    np.testing.assert_allclose(traced(X, y), expected, rtol=1e-10)
    # With the data closed over, no argument of fit is a tracer; it is still staged.
    closed = jax.jit(lambda: fit(gp, X, y).final_loss)
    np.testing.assert_allclose(closed(), expected, rtol=1e-10)
    assert compiled_with == [{}, {}]
    # Options given explicitly are still checked, and said to be ignored.
    with pytest.raises(ValueError, match="xla_no_such_option"):
        jax.jit(lambda X, y: fit(gp, X, y, compiler_options={"xla_no_such_option": 1}).final_loss)(
            X, y
        )
    with pytest.warns(UserWarning, match="ignored when fit is traced into a larger program"):
        jax.jit(lambda X, y: fit(gp, X, y, compiler_options=CLASSIC).final_loss)(X, y)

    # Under ensure_compile_time_eval new arrays are concrete even inside a jit: JAX's
    # refusal of the nested options is caught and the loop is built without them.
    @jax.jit
    def folded(X, y):
        with jax.ensure_compile_time_eval():
            return fit(gp, X, y).final_loss

    np.testing.assert_allclose(folded(X, y), expected, rtol=1e-10)


@pytest.mark.x64
def test_an_eager_vmap_keeps_the_options(compiled_with):
    X, y = regression_data(n=20)
    gp = GP(kernels.RBF(), noise=0.1)
    ys = np.stack([y, 0.5 * y])
    losses = jax.vmap(lambda y: fit(gp, X, y).final_loss)(ys)
    assert compiled_with == [gpjax_lite.default_compiler_options()]
    np.testing.assert_allclose(losses[1], fit(gp, X, 0.5 * y).final_loss, rtol=1e-8)
