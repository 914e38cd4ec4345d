"""examples/state_space.py, reduced: both solvers reach the same optimum on the weekly CO2 data."""

import importlib.util
from pathlib import Path

import jax
import numpy as np
import pytest

from gpjax_lite import solvers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "state_space.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("state_space_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_both_solvers_reach_the_same_optimum(example):
    X, y = example.load()
    X, y = X[:600], y[:600]  # the first ~12 years keep the dense fit quick
    state = example.fit_model(X, y, solvers.StateSpace(), num_steps=15)
    dense = example.fit_model(X, y, solvers.Cholesky(), num_steps=15)
    assert int(state.nonfinite_step) == -1 and int(dense.nonfinite_step) == -1
    np.testing.assert_allclose(state.losses, dense.losses, rtol=1e-6)
    initial = float(example.build_model(y).log_marginal_likelihood(X, y))
    assert -float(state.final_loss) > initial
    # The yearly SHO stays yearly.
    yearly = state.model.kernel.kernels[1]
    assert abs(2 * np.pi / float(yearly.omega) - 1.0) < 0.05
    mean, var = state.model.condition(X, y).predict(X[::50])
    assert np.sqrt(np.mean((np.asarray(mean) - y[::50]) ** 2)) < 1.0
    assert np.all(np.asarray(var) > 0)


@pytest.mark.slow
def test_main_runs_without_dense_or_plot(example, capsys):
    example.main(["--steps", "3", "--no-dense", "--no-plot"])
    out = capsys.readouterr().out
    assert "StateSpace fit" in out and "2225 weekly points" in out
    jax.clear_caches()
