"""gpjax_lite.lbfgs: L-BFGS with a strong-Wolfe line search and one evaluation site.

Checked against SciPy's L-BFGS-B on Rosenbrock's function, the strong Wolfe
conditions (Nocedal & Wright 2006, eqs. 3.7) at every accepted step, recovery
from non-finite trial points, the give-up rule, argument errors, and the
structural promise: a compiled ``fit`` holds one copy of the objective where
``optax.lbfgs()`` compiles three.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.optimize

import gpjax_lite as gl
from gpjax_lite import kernels
from gpjax_lite.lbfgs import CURVATURE, SUFFICIENT_DECREASE, lbfgs


def rosenbrock(params):
    x = params["x"]
    return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)


X0 = np.array([-1.2, 1.0, -0.5, 0.3, 2.0])


def run(f, x0, optimizer, num_steps):
    """``num_steps`` L-BFGS steps; returns every iterate and state (stacked)."""

    @jax.jit
    def go(params):
        def body(carry, _):
            params, state = carry
            updates, state = optimizer.update(None, state, params, value_fn=f)
            params = optax.apply_updates(params, updates)
            return (params, state), (params, state)

        return jax.lax.scan(body, (params, optimizer.init(params)), None, length=num_steps)[1]

    return go(x0)


@pytest.mark.x64
def test_reaches_the_rosenbrock_minimum_like_scipy():
    iterates, states = run(rosenbrock, {"x": jnp.asarray(X0)}, lbfgs(), 80)
    ref = scipy.optimize.minimize(
        lambda x: float(rosenbrock({"x": jnp.asarray(x)})),
        X0,
        jac=lambda x: np.asarray(jax.grad(rosenbrock)({"x": jnp.asarray(x)})["x"]),
        method="L-BFGS-B",
        options=dict(ftol=1e-15, gtol=1e-12),
    )
    np.testing.assert_allclose(iterates["x"][-1], ref.x, atol=1e-6)
    np.testing.assert_allclose(iterates["x"][-1], np.ones(5), atol=1e-8)
    # The state's value and gradient are those at the returned parameters.
    value, grad = jax.value_and_grad(rosenbrock)({"x": iterates["x"][-1]})
    np.testing.assert_allclose(float(states.value[-1]), float(value), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(states.grad["x"][-1], grad["x"], atol=1e-12)


@pytest.mark.x64
def test_every_step_satisfies_the_strong_wolfe_conditions():
    x0 = {"x": jnp.asarray(X0)}
    iterates, states = run(rosenbrock, x0, lbfgs(), 25)
    previous = jnp.concatenate([x0["x"][None], iterates["x"][:-1]])
    for k in range(25):
        x, x_new = previous[k], iterates["x"][k]
        f0, g0 = jax.value_and_grad(rosenbrock)({"x": x})
        f1, g1 = jax.value_and_grad(rosenbrock)({"x": x_new})
        step = x_new - x
        assert float(states.start_value[k]) == pytest.approx(float(f0), rel=1e-12)
        s0, s1 = float(jnp.dot(g0["x"], step)), float(jnp.dot(g1["x"], step))
        assert s0 < 0, k  # a descent direction
        assert float(f1) <= float(f0) + SUFFICIENT_DECREASE * s0, k
        assert abs(s1) <= CURVATURE * abs(s0) + 1e-12, k
        assert 1 <= int(states.num_evaluations[k]) <= 30


def test_a_non_finite_trial_point_shrinks_the_step():
    # log(2 - x) is NaN beyond x = 2; the first trial from x = 1.9 along the
    # steepest-descent direction (length 1) lands there, and the search backs off.
    def f(params):
        x = params["x"]
        return jnp.sum((x - 1.99) ** 2) - 1e-3 * jnp.sum(jnp.log(2.0 - x))

    iterates, states = run(f, {"x": jnp.asarray([1.9])}, lbfgs(), 10)
    assert np.all(np.isfinite(np.asarray(states.value)))
    assert float(states.value[0]) < float(states.start_value[0])
    assert float(iterates["x"][-1][0]) < 2.0
    x = float(iterates["x"][-1][0])
    assert abs(2 * (x - 1.99) + 1e-3 / (2.0 - x)) < 1e-6  # f'(x) = 0


def test_a_step_that_cannot_decrease_stays_put():
    # The first trial step (length 1 from x = 1, to x = 0) is far too high and the
    # step may make no further evaluation: it gives up and stays at the start.
    def f(params):
        return jnp.sum(1e6 * (params["x"] - 0.999) ** 2)

    x0 = {"x": jnp.asarray([1.0])}
    iterates, states = run(f, x0, lbfgs(max_evaluations=2), 1)
    assert int(states.num_evaluations[0]) == 2  # the start and one trial
    assert float(states.value[0]) == float(states.start_value[0]) == pytest.approx(1.0)
    np.testing.assert_array_equal(iterates["x"][0], x0["x"])
    # With more evaluations the same step zooms in and decreases f.
    iterates, states = run(f, x0, lbfgs(), 1)
    assert float(states.value[0]) < 1e-3 * float(states.start_value[0])


def test_a_non_finite_start_takes_no_step():
    x0 = {"x": jnp.asarray([jnp.nan, 1.0])}
    iterates, states = run(rosenbrock, x0, lbfgs(), 2)
    assert np.isnan(float(states.start_value[0]))
    assert np.all(np.asarray(iterates["x"][0])[1:] == 1.0)


def test_float32():
    x0 = {"x": jnp.asarray([-1.2, 1.0], jnp.float32)}
    iterates, states = run(rosenbrock, x0, lbfgs(), 60)
    assert iterates["x"].dtype == jnp.float32
    assert states.value.dtype == jnp.float32
    np.testing.assert_allclose(iterates["x"][-1], [1.0, 1.0], atol=2e-3)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        (dict(memory_size=0), ValueError),
        (dict(memory_size=2.0), TypeError),
        (dict(max_evaluations=True), TypeError),
        (dict(max_evaluations=0), ValueError),
    ],
)
def test_bad_arguments(kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        lbfgs(**kwargs)


def _cholesky_calls(optimizer):
    """Cholesky factorisations in the lowered program of a default-shaped fit."""
    X = jnp.linspace(0.0, 1.0, 20)
    y = jnp.sin(3.0 * X)
    gp = gl.GP(kernels.RBF(), noise=0.1)
    lowered = jax.jit(lambda X, y: gl.fit(gp, X, y, optimizer=optimizer).final_loss).lower(X, y)
    return lowered.as_text().count("potrf")


def test_the_compiled_fit_holds_one_copy_of_the_objective():
    # The objective (one Cholesky factorisation per evaluation, with its custom
    # derivative) appears once with the default optimizer, three times with
    # optax's L-BFGS (the start point and both branches of its zoom search).
    ours, theirs = _cholesky_calls(gl.lbfgs()), _cholesky_calls(optax.lbfgs())
    assert ours >= 1
    assert theirs == 3 * ours
