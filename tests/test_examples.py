"""The Mauna Loa CO2 example, run in a reduced form (few L-BFGS steps).

The example is imported from ``examples/mauna_loa.py`` (not a package) and its
functions are called directly. Each test compiles one fit of the composite
kernel, which dominates its run time.
"""

import importlib.util
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "mauna_loa.py"


@pytest.fixture(scope="module")
def mauna_loa():
    spec = importlib.util.spec_from_file_location("mauna_loa_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rmse(a, b):
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


@pytest.mark.slow
def test_fitted_model_forecasts_held_out_years(mauna_loa):
    X, y = mauna_loa.load_co2()
    train = X < 1998.0
    X_train, y_train = jnp.asarray(X[train]), jnp.asarray(y[train])
    X_test, y_test = X[~train], y[~train]
    assert X_test.min() >= 1998.0 and X_test.max() < 2002.0 and len(X_test) >= 40

    result = mauna_loa.fit_model(X_train, y_train, num_steps=20)
    assert int(result.nonfinite_step) == -1
    initial_mll = float(mauna_loa.build_model(y_train).log_marginal_likelihood(X_train, y_train))
    assert -float(result.final_loss) > initial_mll

    mean, std = mauna_loa.predict(result.model, X_train, y_train, X_test)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    model_rmse = rmse(mean, y_test)
    prior_mean_rmse = rmse(np.full_like(y_test, float(np.mean(y_train))), y_test)
    assert model_rmse < prior_mean_rmse
    # Not just better than a constant: within a couple of ppm four years ahead
    # (the seasonal swing alone is about ±3 ppm, the rise about 1.5 ppm a year).
    assert model_rmse < 2.0, model_rmse
    # The fixed hyperparameter (the periodic kernel's variance) did not move.
    periodic = result.model.kernel.kernels[1].kernels[1]
    assert float(periodic.variance) == 1.0


@pytest.mark.slow
def test_main_writes_a_png(mauna_loa, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "co2.png"
    summary = mauna_loa.main(["--steps", "5", "--out", str(out)])
    assert out.exists() and out.stat().st_size > 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    for expected in (
        "long-term trend",
        "seasonal",
        "medium-term",
        "short-term",
        "white noise",
        "log marginal likelihood",
        "wall time",
        "plot written to",
    ):
        assert expected in printed
    assert summary["result"].losses.shape == (5,)


def test_no_plot_does_not_need_matplotlib(mauna_loa):
    args = mauna_loa.parse_args(["--no-plot", "--steps", "3"])
    assert args.no_plot and args.steps == 3 and args.out == "mauna_loa.png"


def test_model_structure_and_initial_values(mauna_loa):
    y = np.array([300.0, 310.0, 320.0])
    gp = mauna_loa.build_model(y)
    trend, seasonal, irregular, short_term = gp.kernel.kernels
    assert float(trend.lengthscale) == 50.0
    assert float(seasonal.kernels[1].period) == 1.0
    assert float(gp.mean.value) == pytest.approx(310.0)
    assert mauna_loa.fixed(gp) is seasonal.kernels[1].variance
    assert len(mauna_loa.describe(gp)) == 6
    assert jax.config.jax_enable_x64  # the example enables float64 on import
