"""Tests for ``gpjax_lite.fit``: optimum, compilation, restarts, fixing, vmap, NaN handling.

Reference optima come from SciPy's L-BFGS-B on an independent NumPy/SciPy
implementation of the RBF + Gaussian-noise negative log marginal likelihood
and its analytic gradient, in log-parameters ``θ = log(variance, lengthscale,
noise)``::

    NLL(θ)       = ½ yᵀK⁻¹y + ½ log|K| + n/2 log 2π,      K = K_f + noise·I
    ∂NLL/∂θ_j    = ½ tr((K⁻¹ - ααᵀ) ∂K/∂θ_j),              α = K⁻¹y

Compilation dominates the run time of this file (each distinct optimizer,
objective, model structure or shape is a new XLA program), so the tests share
data shapes and optimizer objects where they can.
"""

import math
import re
import time
import typing
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize
import scipy.stats
from conftest import naming
from oracle import rbf_nll_and_grad as np_rbf_nll

import gpjax_lite
from gpjax_lite import GP, fit, kernels, means
from gpjax_lite.gp import GP as GPClass

fit_module = __import__("gpjax_lite.fit", fromlist=["fit"])

# A deliberately unusual size, so that the first call in this file traces afresh.
N = 53
ADAM = optax.adam(0.05)
ADAM_BIG = optax.adam(1.0)


# --------------------------------------------------------------------------- reference
def scipy_optimum(X, y, starts, **options):
    """Best L-BFGS-B result over ``starts`` (natural-scale (variance, lengthscale, noise))."""
    results = [
        scipy.optimize.minimize(
            np_rbf_nll, np.log(start), args=(X, y), jac=True, method="L-BFGS-B", options=options
        )
        for start in starts
    ]
    return min(results, key=lambda r: r.fun)


def rbf_gp(variance=1.0, lengthscale=1.0, noise=0.1):
    return GP(kernels.RBF(variance=variance, lengthscale=lengthscale), noise=noise)


def hyperparameters(model):
    return np.array([model.kernel.variance, model.kernel.lengthscale, model.noise])


def make_data(seed, n=N):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3.0, 3.0, n)
    y = np.sin(2.0 * X) + 0.1 * rng.standard_normal(n)
    return X, y


def two_scale_sine(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(0.0, 10.0, n)
    y = np.sin(3 * X) + 0.3 * np.sin(13 * X) + 0.1 * rng.standard_normal(n)
    return X, y


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def data():
    return make_data(0)


@pytest.fixture(scope="module")
def lbfgs_run(data):
    """The default fit, called three times under a trace counter.

    ``GP.log_marginal_likelihood`` runs in Python only while ``fit`` traces its
    loop, so the number of calls counts traces.
    """
    X, y = data
    gp = rbf_gp()
    calls = []
    original = GPClass.log_marginal_likelihood

    def counting(self, X, y):
        calls.append(None)
        return original(self, X, y)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(GPClass, "log_marginal_likelihood", counting)
        first = fit(gp, X, y)
        traced_first = len(calls)
        start = time.perf_counter()
        second = fit(gp, X, y)
        jax.block_until_ready(second)
        seconds_second = time.perf_counter() - start
        traced_second = len(calls) - traced_first
        # New data and new initial values, same shapes: still no new trace.
        X2, y2 = make_data(1)
        third = fit(rbf_gp(2.0, 0.5, 0.3), X2, y2)
        traced_third = len(calls) - traced_first - traced_second
    return dict(
        gp=gp,
        first=first,
        second=second,
        third=third,
        X2=X2,
        y2=y2,
        traced=(traced_first, traced_second, traced_third),
        seconds_second=seconds_second,
    )


# ------------------------------------------------------------------ reference sanity
def test_reference_gradient_matches_finite_differences(data):
    X, y = data
    theta = np.log([0.7, 0.9, 0.05])
    _, grad = np_rbf_nll(theta, X, y)
    numeric = scipy.optimize.approx_fprime(theta, lambda t: np_rbf_nll(t, X, y)[0], 1e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-5)


def test_reference_nll_matches_library(data):
    X, y = data
    gp = rbf_gp(0.7, 0.9, 0.05)
    nll, _ = np_rbf_nll(np.log([0.7, 0.9, 0.05]), X, y)
    value = eqx.filter_jit(lambda gp: gp.log_marginal_likelihood(X, y))(gp)
    np.testing.assert_allclose(-float(value), nll, rtol=1e-12)


# ------------------------------------------------------------------------- optimum
def test_lbfgs_reaches_scipy_optimum(data, lbfgs_run):
    X, y = data
    ref = scipy_optimum(X, y, [(1.0, 1.0, 0.1)], ftol=1e-14, gtol=1e-9)
    result = lbfgs_run["first"]
    # Stated tolerance: 1e-6 nats on the NLL, 1e-3 relative on the hyperparameters.
    assert abs(float(result.final_loss) - ref.fun) < 1e-6
    np.testing.assert_allclose(hyperparameters(result.model), np.exp(ref.x), rtol=1e-3)
    # The reported loss is the NLL of the returned model, by the independent formula.
    nll, grad = np_rbf_nll(np.log(hyperparameters(result.model)), X, y)
    np.testing.assert_allclose(float(result.final_loss), nll, rtol=1e-10)
    assert np.max(np.abs(grad)) < 1e-3
    assert int(result.steps_taken) < 200  # stopped early: converged


class _ScriptedState(typing.NamedTuple):
    value: jax.Array  # the loss at the current parameters (inf before the first step)
    grad: jax.Array
    count: jax.Array


def _scripted_optimizer(moves):
    """An optax optimizer that adds ``moves[k]`` to every parameter at step ``k`` and,
    like a line search, stores the loss and gradient where it lands, so the fit loop
    applies its line-search convergence tests to a chosen sequence of decreases."""
    moves = jnp.asarray(moves)

    def init(params):
        return _ScriptedState(jnp.asarray(jnp.inf), optax.tree.zeros_like(params), jnp.asarray(0))

    def update(updates, state, params, *, value_fn, **extra_args):
        move = moves[jnp.minimum(state.count, moves.shape[0] - 1)]
        step = jax.tree.map(lambda p: jnp.full_like(p, move), params)
        value, grad = jax.value_and_grad(value_fn)(optax.apply_updates(params, step))
        return step, _ScriptedState(value, grad, state.count + 1)

    return optax.GradientTransformationExtraArgs(init, update)


@pytest.mark.x64
def test_small_decrease_must_repeat_to_stop():
    # Only the constant mean is trained (a quadratic loss); the moves take it
    # towards the data's level, with tiny moves (relative decrease ~1e-11, below
    # FTOL) at steps 1, 3 and 4. SciPy's test would stop after step 1; the loop
    # stops after the second small decrease in a row, step 4.
    X = jnp.linspace(0.0, 1.0, 20)
    y = 5.0 + 0.1 * jnp.sin(7.0 * X)
    gp = GP(kernels.RBF(), mean=means.Constant(0.0), noise=0.01)
    big, tiny = 0.5, 1e-12
    moves = [big, tiny, big, tiny, tiny, big, big]
    result = fit(
        gp,
        X,
        y,
        optimizer=_scripted_optimizer(moves),
        num_steps=len(moves),
        fixed=lambda gp: (gp.kernel, gp.noise),
    )
    assert int(result.steps_taken) == 5
    np.testing.assert_allclose(float(result.model.mean.value), 2 * big + 3 * tiny, rtol=1e-12)
    losses = np.asarray(result.losses)
    decreases = -np.diff(losses[:5]) / np.maximum(np.abs(losses[:4]), 1.0)
    assert np.all(decreases > 0)
    assert np.all(decreases[[1, 3]] <= fit_module.FTOL) and decreases[2] > fit_module.FTOL
    # The last step's decrease (to the returned model) is small too.
    last = (losses[4] - float(result.final_loss)) / abs(losses[4])
    assert 0 < last <= fit_module.FTOL


def test_adam_reaches_scipy_optimum(data):
    X, y = data
    ref = scipy_optimum(X, y, [(1.0, 1.0, 0.1)], ftol=1e-14, gtol=1e-9)
    result = fit(rbf_gp(), X, y, optimizer=ADAM, num_steps=1000)
    # Stated tolerance: 1e-3 nats (Adam at a fixed learning rate jitters near the optimum).
    assert abs(float(result.final_loss) - ref.fun) < 1e-3
    np.testing.assert_allclose(hyperparameters(result.model), np.exp(ref.x), rtol=5e-2)
    assert int(result.steps_taken) == 1000
    assert int(result.nonfinite_step) == -1


def test_losses_trace(data, lbfgs_run):
    X, y = data
    result = lbfgs_run["first"]
    losses = np.asarray(result.losses)
    assert losses.shape == (200,)
    assert np.all(np.isfinite(losses))
    initial = -float(lbfgs_run["gp"].log_marginal_likelihood(X, y))
    np.testing.assert_allclose(losses[0], initial, rtol=1e-12)
    # L-BFGS with its line search never increases the loss.
    assert np.all(np.diff(losses) <= 1e-12 * np.maximum(1.0, np.abs(losses[1:])))
    steps = int(result.steps_taken)
    np.testing.assert_array_equal(losses[steps:], float(result.final_loss))
    assert float(result.final_loss) < losses[0]


def test_default_optimizer_is_lbfgs():
    import inspect

    default = inspect.signature(fit).parameters["optimizer"].default
    assert default is fit_module._DEFAULT_OPTIMIZER
    state = default.init({"a": jnp.zeros(2)})
    assert any(type(part).__name__ == "ScaleByLBFGSState" for part in state)


def test_float32_data(data, lbfgs_run):
    # Python-float hyperparameters stay weakly typed: the computation runs in float32.
    X, y = data
    result = fit(rbf_gp(), jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32))
    assert int(result.nonfinite_step) == -1
    assert np.all(np.isfinite(np.asarray(result.losses)))
    assert abs(float(result.final_loss) - float(lbfgs_run["first"].final_loss)) < 1e-3
    np.testing.assert_allclose(
        hyperparameters(result.model), hyperparameters(lbfgs_run["first"].model), rtol=1e-2
    )


# ------------------------------------------------------------------------ compilation
def test_second_call_does_not_retrace(lbfgs_run):
    traced_first, traced_second, traced_third = lbfgs_run["traced"]
    assert traced_first > 0
    assert traced_second == 0
    assert traced_third == 0
    # And the second call is a compiled run, not a compile (generous bound for busy CI).
    assert lbfgs_run["seconds_second"] < 2.0


def test_same_shapes_new_data_gives_the_right_answer(lbfgs_run):
    X2, y2 = lbfgs_run["X2"], lbfgs_run["y2"]
    ref = scipy_optimum(X2, y2, [(2.0, 0.5, 0.3)], ftol=1e-14, gtol=1e-9)
    assert abs(float(lbfgs_run["third"].final_loss) - ref.fun) < 1e-6
    np.testing.assert_array_equal(
        hyperparameters(lbfgs_run["first"].model), hyperparameters(lbfgs_run["second"].model)
    )


def test_progress_prints_and_the_default_loop_has_no_host_callback(
    data, lbfgs_run, capsys, monkeypatch
):
    X, y = data
    capsys.readouterr()
    result = fit(lbfgs_run["gp"], X, y, progress=True)
    jax.effects_barrier()
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("fit: step")]
    assert lines, out
    assert re.match(r"fit: step +1/200 +-log p\(y\) = ", lines[0])
    last_step = int(re.match(r"fit: step +(\d+)/", lines[-1]).group(1))
    assert last_step == int(result.steps_taken)
    assert len(lines) <= fit_module.PROGRESS_LINES + 2
    np.testing.assert_array_equal(result.losses, lbfgs_run["first"].losses)
    # Off by default: nothing printed, and no callback traced into the loop (JAX's
    # persistent compilation cache never stores a program with a host callback).
    traced = []
    original = jax.debug.callback
    monkeypatch.setattr(
        jax.debug, "callback", lambda *a, **k: traced.append(1) or original(*a, **k)
    )
    fit(lbfgs_run["gp"], X, y, num_steps=37)  # a new program: traced afresh
    jax.effects_barrier()
    assert "fit: step" not in capsys.readouterr().out
    assert traced == []
    fit(lbfgs_run["gp"], X, y, num_steps=37, progress=True)
    assert traced  # the check above would have seen a callback


# -------------------------------------------------------------------- two-scale sine
@pytest.fixture(scope="module")
def sine_1000():
    X, y = two_scale_sine(1000)
    starts = [(1.0, 1.0, 0.1), (1.0, 0.3, 0.1), (1.0, 0.1, 0.01)]
    return X, y, scipy_optimum(X, y, starts)


@pytest.mark.slow
def test_default_fit_finds_good_optimum_of_two_scale_sine(sine_1000):
    X, y, ref = sine_1000
    best_mll = -ref.fun
    assert best_mll > 600  # the good optimum (the poor one is below 0)
    result = fit(rbf_gp(1.0, 1.0, 0.1), X, y)
    mll = -float(result.final_loss)
    assert mll >= best_mll - 1e-3 * abs(best_mll), (mll, best_mll)
    assert int(result.nonfinite_step) == -1
    assert float(result.model.kernel.lengthscale) < 0.5  # resolves the fast component


@pytest.mark.slow
def test_restarts_do_at_least_as_well_as_one_start():
    # n = 200 of the same process: eight restarts at n = 1000 would cost eight fits.
    # From lengthscale 1 one L-BFGS run stops in the poor optimum here. Which
    # starts reach the good one depends on the draws and on the line search's
    # trial steps: over keys 0-5 (48 starts), 5 did with the default optimizer
    # and 7 with optax.lbfgs(); key 1 draws two such starts for the default one.
    X, y = two_scale_sine(200)
    ref = scipy_optimum(X, y, [(1.0, 1.0, 0.1), (1.0, 0.3, 0.1), (1.0, 0.1, 0.01)])
    gp = rbf_gp(1.0, 1.0, 0.1)
    single = fit(gp, X, y)
    several = fit(gp, X, y, num_restarts=8, key=jax.random.key(1))
    restart_losses = np.asarray(several.restart_losses)
    assert restart_losses.shape == (8,)
    assert float(several.final_loss) == np.min(restart_losses)
    assert float(several.final_loss) <= float(single.final_loss) + 1e-8
    # The first start is the model as given.
    np.testing.assert_allclose(restart_losses[0], float(single.final_loss), rtol=1e-8)
    # The kept model is the best one and it is the global optimum SciPy finds.
    nll, _ = np_rbf_nll(np.log(hyperparameters(several.model)), X, y)
    np.testing.assert_allclose(float(several.final_loss), nll, rtol=1e-10)
    assert float(several.final_loss) <= ref.fun + 1e-3 * abs(ref.fun)
    assert several.losses.shape == (200,)


def test_restart_draws_are_documented_spread():
    params = {"a": jnp.asarray(0.5), "b": jnp.zeros(3)}
    starts = fit_module._starting_points(params, 4001, jax.random.key(1))
    assert starts["a"].shape == (4001,) and starts["b"].shape == (4001, 3)
    assert float(starts["a"][0]) == 0.5 and np.all(np.asarray(starts["b"][0]) == 0.0)
    np.testing.assert_allclose(np.std(starts["a"][1:]), fit_module.RESTART_SPREAD, rtol=0.05)
    np.testing.assert_allclose(np.mean(starts["b"][1:]), 0.0, atol=0.05)


# ------------------------------------------------------------------ fixed parameters
def test_fixed_leaf_and_whole_subkernel_are_kept_bit_for_bit():
    X, y = make_data(2)
    kernel = kernels.RBF(variance=1.0, lengthscale=1.0) + kernels.Periodic(
        variance=0.3, lengthscale=1.3, period=jnp.asarray(1.7)
    )
    gp = GP(kernel, mean=means.Constant(0.5), noise=0.05)
    result = fit(
        gp,
        X,
        y,
        num_steps=30,
        num_restarts=3,
        key=jax.random.key(3),
        fixed=lambda gp: (gp.noise, gp.kernel.kernels[1]),
    )
    model = result.model
    assert jax.tree_util.tree_structure(model) == jax.tree_util.tree_structure(gp)
    held = [(gp.noise, model.noise)] + list(
        zip(
            jax.tree_util.tree_leaves(gp.kernel.kernels[1]),
            jax.tree_util.tree_leaves(model.kernel.kernels[1]),
        )
    )
    for before, after in held:
        assert np.array_equal(np.asarray(before), np.asarray(after))
        assert jnp.asarray(before).dtype == jnp.asarray(after).dtype
    # The free hyperparameters did move, and the fit improved.
    assert float(model.kernel.kernels[0].lengthscale) != 1.0
    assert float(model.mean.value) != 0.5
    assert float(result.final_loss) < -float(gp.log_marginal_likelihood(X, y))


# ----------------------------------------------------------------------------- vmap
def test_fit_under_vmap_equals_fits_one_by_one(lbfgs_run):
    datasets = [make_data(seed) for seed in (10, 11, 12)]
    Xs = jnp.stack([X for X, _ in datasets])
    ys = jnp.stack([y for _, y in datasets])
    gp = rbf_gp()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no eager-only warning may fire on tracers
        models = jax.vmap(lambda X, y: fit(gp, X, y).model)(Xs, ys)
    assert isinstance(models, GP)
    assert models.kernel.lengthscale.shape == (3,)
    for i, (X, y) in enumerate(datasets):
        one = fit(gp, X, y)  # the compiled program of `lbfgs_run`
        np.testing.assert_allclose(
            [models.kernel.variance[i], models.kernel.lengthscale[i], models.noise[i]],
            hyperparameters(one.model),
            rtol=1e-6,
        )
        model_i = jax.tree_util.tree_map(lambda leaf: leaf[i], models)
        np.testing.assert_allclose(
            -float(model_i.log_marginal_likelihood(X, y)), float(one.final_loss), rtol=1e-9
        )


# -------------------------------------------------------------- positivity and NaN
def test_big_steps_keep_every_hyperparameter_positive(data):
    X, y = data
    seen = []

    def recording_objective(model, X, y):
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), hyperparameters_jnp(model))
        return model.log_marginal_likelihood(X, y)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # big steps may well hit a bad region
        result = fit(
            rbf_gp(), X, y, optimizer=ADAM_BIG, num_steps=100, objective=recording_objective
        )
    jax.effects_barrier()
    seen = np.stack(seen)
    assert seen.shape[0] >= 2
    assert np.all(seen > 0)
    # They went far (factors of e per step), yet the result is positive, finite and scored.
    assert np.max(np.abs(np.log(seen))) > 1
    final = hyperparameters(result.model)
    assert np.all(final > 0) and np.all(np.isfinite(final))
    assert np.isfinite(float(result.final_loss))


def hyperparameters_jnp(model):
    return jnp.stack([model.kernel.variance, model.kernel.lengthscale, model.noise])


LENGTHSCALE_LIMIT = 2.0


def nan_past_lengthscale_limit(model, X, y):
    """The marginal likelihood, but NaN once the lengthscale passes ``LENGTHSCALE_LIMIT``."""
    value = model.log_marginal_likelihood(X, y)
    return jnp.where(model.kernel.lengthscale > LENGTHSCALE_LIMIT, jnp.nan, value)


def test_nonfinite_loss_is_reported_and_last_finite_model_returned():
    rng = np.random.default_rng(4)
    X = rng.uniform(-3.0, 3.0, N)
    y = np.sin(0.4 * X) + 0.05 * rng.standard_normal(N)  # optimum lengthscale > LENGTHSCALE_LIMIT
    gp = rbf_gp(1.0, 0.5, 0.1)
    with pytest.warns(RuntimeWarning, match=r"non-finite at step (\d+)") as record:
        result = fit(gp, X, y, optimizer=ADAM, num_steps=300, objective=nan_past_lengthscale_limit)
    k = int(result.nonfinite_step)
    assert 1 <= k < 300
    assert f"step {k}" in str(record[0].message)
    losses = np.asarray(result.losses)
    assert np.all(np.isfinite(losses[:k]))
    assert np.all(np.isnan(losses[k:]))
    assert int(result.steps_taken) == k + 1
    # The model is the one of step k - 1: finite, inside the region, and scored as such.
    assert float(result.model.kernel.lengthscale) <= LENGTHSCALE_LIMIT
    np.testing.assert_allclose(float(result.final_loss), losses[k - 1], rtol=1e-10)
    assert np.all(np.isfinite(hyperparameters(result.model)))

    # Non-finite from the start: the initial model comes back unchanged.
    bad_start = rbf_gp(1.0, 3.0, 0.1)
    with pytest.warns(RuntimeWarning, match="non-finite at step 0"):
        result = fit(
            bad_start, X, y, optimizer=ADAM, num_steps=300, objective=nan_past_lengthscale_limit
        )
    assert int(result.nonfinite_step) == 0
    assert np.all(np.isnan(np.asarray(result.losses)))
    np.testing.assert_array_equal(hyperparameters(result.model), hyperparameters(bad_start))


# --------------------------------------------------------------------- serialisation
def test_fitted_model_round_trips_through_serialisation(data, lbfgs_run, tmp_path):
    X, y = data
    model = lbfgs_run["first"].model
    path = tmp_path / "gp.eqx"
    eqx.tree_serialise_leaves(path, model)
    loaded = eqx.tree_deserialise_leaves(path, lbfgs_run["gp"])  # the initial model as template
    assert jax.tree_util.tree_structure(loaded) == jax.tree_util.tree_structure(model)
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
        assert jnp.asarray(a).dtype == jnp.asarray(b).dtype
    assert float(loaded.log_marginal_likelihood(X, y)) == float(model.log_marginal_likelihood(X, y))


# ----------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(num_steps=0), ValueError, "num_steps"),
        (dict(num_steps=-3), ValueError, "num_steps"),
        (dict(num_steps=2.5), TypeError, "num_steps"),
        (dict(num_steps=True), TypeError, "num_steps"),
        (dict(num_restarts=0), ValueError, "num_restarts"),
        (dict(num_restarts=3), ValueError, "key"),
        (dict(optimizer="adam"), TypeError, "optimizer"),
        (dict(optimizer=lambda grads: grads), TypeError, "optimizer"),
        (dict(fixed=lambda gp: gp.no_such_field), ValueError, "fixed"),
        (dict(fixed=lambda gp: jnp.ones(3)), ValueError, "fixed"),
        (dict(fixed=lambda gp: gp), ValueError, "fixed"),
        (dict(objective=3), TypeError, "objective"),
        (dict(progress="yes"), TypeError, "progress"),
    ],
)
def test_bad_arguments_raise_naming_the_argument(data, kwargs, error, name):
    X, y = data
    with pytest.raises(error, match=naming(name)):
        fit(rbf_gp(), X, y, **kwargs)


def test_bad_data_raises_naming_the_argument(data):
    X, y = data
    with pytest.raises(ValueError, match="`y`"):
        fit(rbf_gp(), X, y[:-1])
    with pytest.raises(ValueError, match="`X`"):
        fit(rbf_gp(), X[:, None, None], y)
    with pytest.raises(ValueError, match="`y`"):
        fit(rbf_gp(), X, np.where(np.arange(N) == 3, np.nan, y))
    # Per-point noise of the wrong length: raised while tracing, before any compiled work.
    with pytest.raises(ValueError, match="`noise`"):
        fit(GP(kernels.RBF(), noise=jnp.full((N + 1,), 0.1)), X, y)


def test_result_is_a_module_with_documented_fields(lbfgs_run):
    result = lbfgs_run["first"]
    assert isinstance(result, gpjax_lite.FitResult)
    assert isinstance(result.model, GP)
    assert result.final_loss.shape == ()
    assert result.restart_losses.shape == (1,)
    assert int(result.nonfinite_step) == -1


# ----------------------------------------------------------------------- best iterate
ADAM_HUGE = optax.adam(100.0)


def test_diverging_optimizer_returns_the_best_iterate_and_warns():
    # Issue 12.6: a learning rate of 100 in log-space throws the hyperparameters far away.
    rng = np.random.default_rng(0)
    X = np.linspace(0.0, 10.0, 60)
    y = np.sin(X) + 0.1 * rng.standard_normal(60)
    gp = rbf_gp()
    with pytest.warns(RuntimeWarning, match="diverged") as record:
        result = fit(gp, X, y, optimizer=ADAM_HUGE, num_steps=50)
    losses = np.asarray(result.losses)
    assert int(result.nonfinite_step) == -1 and np.all(np.isfinite(losses))
    # The optimiser ended far above where it started ...
    assert float(result.last_loss) > losses[0] + 100.0
    assert f"{float(result.last_loss):.6g}" in str(record[0].message)
    # ... but `fit` returns the best iterate seen, scored by the independent formula.
    assert float(result.final_loss) == min(np.min(losses), float(result.last_loss))
    assert float(result.final_loss) <= losses[0]
    nll, _ = np_rbf_nll(np.log(hyperparameters(result.model)), X, y)
    np.testing.assert_allclose(float(result.final_loss), nll, rtol=1e-10)
    # Here every step made things worse: the best is the initial model, returned bit-for-bit.
    assert float(result.final_loss) == losses[0]
    np.testing.assert_array_equal(hyperparameters(result.model), hyperparameters(gp))


def test_adam_returns_the_lowest_loss_seen(data):
    # The same compiled program as test_adam_reaches_scipy_optimum (same optimizer, shapes).
    X, y = data
    result = fit(rbf_gp(), X, y, optimizer=ADAM, num_steps=1000)
    losses = np.asarray(result.losses)
    best = min(np.min(losses), float(result.last_loss))
    assert float(result.final_loss) == best
    nll, _ = np_rbf_nll(np.log(hyperparameters(result.model)), X, y)
    np.testing.assert_allclose(float(result.final_loss), nll, rtol=1e-10)


# ---------------------------------------------------------------------------- MAP
PRIOR_MU, PRIOR_SIGMA = math.log(2.0), 0.25


def lognormal_lengthscale_prior(gp):
    """log LogNormal(ℓ; μ, σ) of the natural lengthscale: log N(log ℓ; μ, σ) - log ℓ."""
    lengthscale = gp.kernel.lengthscale
    return jax.scipy.stats.norm.logpdf(jnp.log(lengthscale), PRIOR_MU, PRIOR_SIGMA) - jnp.log(
        lengthscale
    )


def np_negative_log_posterior(theta, X, y):
    """``NLL(θ) - log p(ℓ)`` in log-parameters, with SciPy's log-normal, and its gradient."""
    nll, grad = np_rbf_nll(theta, X, y)
    lengthscale = math.exp(theta[1])
    log_prior = scipy.stats.lognorm.logpdf(lengthscale, PRIOR_SIGMA, scale=math.exp(PRIOR_MU))
    grad = grad.copy()
    # -log p(ℓ = e^u) = u + (u - μ)² / (2σ²) + const, so its u-derivative is 1 + (u - μ) / σ².
    grad[1] += 1.0 + (theta[1] - PRIOR_MU) / PRIOR_SIGMA**2
    return nll - log_prior, grad


@pytest.fixture(scope="module")
def map_reference(data):
    X, y = data
    theta = np.log([0.7, 1.3, 0.05])
    assert (
        scipy.optimize.check_grad(
            lambda t: np_negative_log_posterior(t, X, y)[0],
            lambda t: np_negative_log_posterior(t, X, y)[1],
            theta,
        )
        < 1e-4
    )
    return scipy.optimize.minimize(
        np_negative_log_posterior,
        np.log([1.0, 1.0, 0.1]),
        args=(X, y),
        jac=True,
        method="L-BFGS-B",
        options=dict(ftol=1e-15, gtol=1e-10),
    )


def test_map_matches_scipy_lbfgsb_on_lml_plus_log_prior(data, map_reference):
    X, y = data
    ref = map_reference
    result = fit(rbf_gp(), X, y, log_prior=lognormal_lengthscale_prior)
    # The prior moves the optimum far from the maximum-likelihood one.
    ml = scipy_optimum(X, y, [(1.0, 1.0, 0.1)], ftol=1e-14, gtol=1e-9)
    assert np.exp(ref.x[1]) > 1.3 * np.exp(ml.x[1])
    assert abs(float(result.final_loss) - ref.fun) < 1e-8
    # Both optimizers stop on the relative-decrease test (FTOL = 2.2e-9 of a loss
    # of ~22 nats; ours asks for it twice in a row): anywhere in a band of ~5e-8
    # nats around the optimum, which this flat loss allows ~1e-4 relative in the
    # signal variance.
    np.testing.assert_allclose(hyperparameters(result.model), np.exp(ref.x), rtol=1e-4)
    # losses are -(lml + log_prior), from the initial model on.
    value, _ = np_negative_log_posterior(np.log([1.0, 1.0, 0.1]), X, y)
    np.testing.assert_allclose(float(result.losses[0]), value, rtol=1e-12)
    value, _ = np_negative_log_posterior(np.log(hyperparameters(result.model)), X, y)
    np.testing.assert_allclose(float(result.final_loss), value, rtol=1e-10)


def test_map_with_restarts_fixed_adam_and_vmap(data, map_reference):
    X, y = data
    gp = rbf_gp()
    # Restarts and a fixed noise: the noise comes back bit-for-bit, the others are MAP.
    result = fit(
        gp,
        X,
        y,
        num_restarts=3,
        key=jax.random.key(5),
        fixed=lambda gp: gp.noise,
        log_prior=lognormal_lengthscale_prior,
    )
    assert result.model.noise == gp.noise
    assert float(result.final_loss) == np.min(np.asarray(result.restart_losses))
    theta = np.log(hyperparameters(result.model))
    value, grad = np_negative_log_posterior(theta, X, y)
    np.testing.assert_allclose(float(result.final_loss), value, rtol=1e-10)
    assert np.max(np.abs(grad[:2])) < 1e-3  # stationary in the free hyperparameters
    # Any optimizer: Adam from the same start lowers -(lml + log_prior) towards SciPy's optimum.
    adam = fit(gp, X, y, optimizer=ADAM, num_steps=1000, log_prior=lognormal_lengthscale_prior)
    value, _ = np_negative_log_posterior(np.log(hyperparameters(adam.model)), X, y)
    np.testing.assert_allclose(float(adam.final_loss), value, rtol=1e-10)
    assert abs(float(adam.final_loss) - map_reference.fun) < 1e-3
    # vmap over datasets equals fitting them one by one.
    datasets = [make_data(seed) for seed in (20, 21)]
    models = jax.vmap(lambda X, y: fit(gp, X, y, log_prior=lognormal_lengthscale_prior).model)(
        jnp.stack([d[0] for d in datasets]), jnp.stack([d[1] for d in datasets])
    )
    for i, (Xi, yi) in enumerate(datasets):
        one = fit(gp, Xi, yi, log_prior=lognormal_lengthscale_prior)
        np.testing.assert_allclose(
            [models.kernel.variance[i], models.kernel.lengthscale[i], models.noise[i]],
            hyperparameters(one.model),
            rtol=1e-6,
        )


def vector_prior(gp):
    return jnp.stack([gp.kernel.lengthscale, gp.kernel.variance])


def vector_objective(model, X, y):
    return jnp.stack([model.log_marginal_likelihood(X, y)] * 2)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        (dict(log_prior=3.0), TypeError, "log_prior"),
        (dict(log_prior=vector_prior), ValueError, "log_prior"),
        (dict(objective=vector_objective), ValueError, "objective"),
        (dict(log_prior=lambda gp: "flat"), TypeError, "log_prior"),
        (dict(log_prior=lambda gp: None), TypeError, "log_prior"),
        (dict(log_prior=lambda gp: 1j * gp.kernel.variance), TypeError, "log_prior"),
        (dict(objective=lambda gp, X, y: {"lml": 0.0}), TypeError, "objective"),
    ],
)
def test_bad_log_prior_or_objective(data, kwargs, error, name):
    X, y = data
    with pytest.raises(error, match=naming(name)):
        fit(rbf_gp(), X, y, **kwargs)


def test_float32_fit_keeps_the_initial_structure_and_dtypes(tmp_path):
    # Issue 12.8: a model fitted on float32 data (float64 enabled) loads back into
    # the initial model as template, and its predictions stay float32.
    rng = np.random.default_rng(3)
    X = jnp.asarray(np.sort(rng.uniform(0.0, 5.0, 30)), jnp.float32)
    y = jnp.asarray(np.sin(np.asarray(X)) + 0.1 * rng.normal(size=30), jnp.float32)
    gp = GP(kernels.Periodic() + kernels.RBF(lengthscale=jnp.float32(1.0)), noise=0.1)
    result = fit(gp, X, y, num_steps=20)
    for before, after in zip(
        jax.tree_util.tree_leaves(gp), jax.tree_util.tree_leaves(result.model)
    ):
        assert after.dtype == before.dtype
        assert getattr(after, "weak_type", False) == getattr(before, "weak_type", False)
    path = tmp_path / "fitted.eqx"
    eqx.tree_serialise_leaves(path, result.model)
    loaded = eqx.tree_deserialise_leaves(path, gp)
    mean, variance = loaded.condition(X, y).predict(X)
    assert mean.dtype == variance.dtype == jnp.float32
    assert loaded.log_marginal_likelihood(X, y).dtype == jnp.float32
    np.testing.assert_allclose(
        float(loaded.log_marginal_likelihood(X, y)), -float(result.final_loss), rtol=1e-4
    )
