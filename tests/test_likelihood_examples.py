"""The classification and count examples, run in a reduced form.

The examples are imported from ``examples/`` (not a package) and their ``main``
functions called directly; each compiles one LaplaceGP fit loop.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_classification_matches_sklearn(capsys):
    pytest.importorskip("sklearn")
    summary = _load("classification").main(["--steps", "60"])
    ours, theirs = summary["ours"], summary["sklearn"]
    # The same Laplace approximation and kernel: the same optimum.
    np.testing.assert_allclose(ours["lml"], theirs["lml"], rtol=1e-5)
    assert ours["accuracy"] >= 0.85 and abs(ours["accuracy"] - theirs["accuracy"]) <= 1 / 30
    np.testing.assert_allclose(ours["log_loss"], theirs["log_loss"], rtol=1e-2)
    printed = capsys.readouterr().out
    for expected in ("gpjax_lite LaplaceGP", "sklearn GPC", "accuracy", "wall time"):
        assert expected in printed


@pytest.mark.slow
def test_counts_rate_falls_after_the_1880s(tmp_path):
    counts = _load("counts")
    out = tmp_path / "coal.png"
    plot = pytest.importorskip("matplotlib") is not None
    summary = counts.main(["--steps", "40", "--out", str(out)] + ([] if plot else ["--no-plot"]))
    grid, median = summary["grid"], summary["median"]
    lower, upper, mean = summary["lower"], summary["upper"], summary["mean"]
    assert np.all(lower < median) and np.all(median < upper) and np.all(median < mean)
    early = median[(grid > 1855) & (grid < 1885)].mean()
    late = median[(grid > 1900) & (grid < 1960)].mean()
    assert early > 2.0 * late
    # Fitting improved on the initial hyperparameters.
    years, y = counts.load_coal_mining_disasters()
    initial = float(counts.build_model(y).log_marginal_likelihood(years, y))
    assert -float(summary["result"].final_loss) > initial
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
