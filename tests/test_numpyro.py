"""GP.numpyro_dist: the marginal of y as a numpyro distribution (numpyro is optional).

* ``log_prob`` is compared with ``GP.log_marginal_likelihood`` and with SciPy's
  ``multivariate_normal.logpdf`` under ``N(m(X), K + Σ)`` (Gram matrix written
  in NumPy);
* ``sample`` is compared with ``N(m(X), K + Σ)`` by its sample mean and
  covariance over ``S = 20000`` draws, each entry within 5 standard errors
  (mean: ``sqrt(C_ii / S)``; covariance: ``sqrt((C_ii C_jj + C_ij²) / S)``, the
  Gaussian fourth-moment formula), a false alarm about 1e-6 per entry;
* a tiny NUTS run with priors on the hyperparameters gives finite draws, and
  numpyro's joint log density is the priors' plus the log marginal likelihood.

Tests that need numpyro skip without it; the import-error tests run always.
"""

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import gpjax_lite as gl
import gpjax_lite.kernels as gk
from gpjax_lite.means import Constant

RNG = np.random.default_rng(77)
X = np.sort(RNG.uniform(0.0, 5.0, size=12))
NOISE = RNG.uniform(0.05, 0.2, size=12)
Y = np.sin(X) + 0.4 + 0.2 * RNG.normal(size=12)


def np_gram(A, B, variance=1.4, ls=0.8, period=2.5, matern_variance=0.3):
    """``RBF(1.4, 0.8) + 0.3 · Periodic(lengthscale 1, period 2.5)`` on one column, from the API table."""
    d = A[:, None] - B[None, :]
    periodic = np.exp(-2 * np.sin(math.pi * d / period) ** 2)
    return variance * np.exp(-0.5 * (d / ls) ** 2) + matern_variance * periodic


def make_gp(dtype=jnp.float64):
    kernel = gk.RBF(variance=jnp.asarray(1.4, dtype), lengthscale=jnp.asarray(0.8, dtype))
    periodic = gk.Periodic(
        variance=jnp.asarray(0.3, dtype),
        lengthscale=jnp.asarray(1.0, dtype),
        period=jnp.asarray(2.5, dtype),
    )
    kernel = kernel + periodic
    return gl.GP(kernel, mean=Constant(jnp.asarray(0.4, dtype)), noise=jnp.asarray(NOISE, dtype))


@pytest.fixture(scope="module")
def numpyro():
    return pytest.importorskip("numpyro")


# --------------------------------------------------------------- log_prob
def test_is_a_numpyro_distribution_over_y(numpyro):
    d = make_gp().numpyro_dist(X)
    assert isinstance(d, numpyro.distributions.Distribution)
    assert d.batch_shape == () and d.event_shape == (12,)
    np.testing.assert_allclose(np.asarray(d.mean), 0.4)
    np.testing.assert_allclose(np.asarray(d.variance), np.diag(np_gram(X, X)) + NOISE, rtol=1e-12)


def test_log_prob_is_the_log_marginal_likelihood(numpyro):
    gp = make_gp()
    value = gp.numpyro_dist(X).log_prob(Y)
    assert value.shape == ()
    np.testing.assert_allclose(float(value), float(gp.log_marginal_likelihood(X, Y)), rtol=1e-12)
    reference = scipy.stats.multivariate_normal.logpdf(
        Y, np.full(12, 0.4), np_gram(X, X) + np.diag(NOISE)
    )
    np.testing.assert_allclose(float(value), reference, rtol=1e-10)


def test_log_prob_of_a_batch_of_observations(numpyro):
    gp = make_gp()
    batch = Y + 0.1 * RNG.normal(size=(2, 3, 12))
    values = gp.numpyro_dist(X).log_prob(batch)
    assert values.shape == (2, 3)
    loop = [[float(gp.log_marginal_likelihood(X, batch[i, j])) for j in range(3)] for i in range(2)]
    np.testing.assert_allclose(np.asarray(values), loop, rtol=1e-12)


def test_log_prob_float32(numpyro):
    X32, Y32 = jnp.asarray(X, jnp.float32), jnp.asarray(Y, jnp.float32)
    gp = make_gp(jnp.float32)
    value = gp.numpyro_dist(X32).log_prob(Y32)
    assert value.dtype == jnp.float32
    reference = scipy.stats.multivariate_normal.logpdf(
        np.float64(Y32),
        np.full(12, 0.4),
        np_gram(np.float64(X32), np.float64(X32)) + np.diag(NOISE),
    )
    np.testing.assert_allclose(float(value), reference, rtol=1e-4)


def test_passes_through_jit_grad_and_vmap(numpyro):
    gp = make_gp()
    d = gp.numpyro_dist(X)
    np.testing.assert_allclose(
        float(jax.jit(lambda d, y: d.log_prob(y))(d, Y)), float(d.log_prob(Y)), rtol=1e-12
    )
    grad_dist = jax.grad(lambda d: d.log_prob(Y))(d)
    grad_gp = jax.grad(lambda gp: gp.log_marginal_likelihood(X, Y))(gp)
    np.testing.assert_allclose(
        float(grad_dist.model.kernel.kernels[0].lengthscale),
        float(grad_gp.kernel.kernels[0].lengthscale),
        rtol=1e-12,
    )
    lengthscales = jnp.array([0.5, 0.8, 1.3])

    def log_prob(ls):
        kernel = gk.RBF(variance=1.4, lengthscale=ls)
        return gl.GP(kernel, noise=jnp.asarray(NOISE)).numpyro_dist(X).log_prob(Y)

    batched = jax.vmap(log_prob)(lengthscales)
    np.testing.assert_allclose(
        np.asarray(batched), [float(log_prob(ls)) for ls in lengthscales], rtol=1e-12
    )


# ----------------------------------------------------------------- sample
def test_sample_shapes(numpyro):
    d = make_gp().numpyro_dist(X)
    key = jax.random.key(0)
    assert d.sample(key).shape == (12,)
    assert d.sample(key, (5,)).shape == (5, 12)
    assert d.sample(key, (2, 3)).shape == (2, 3, 12)
    assert d.sample(jax.random.PRNGKey(0), (4,)).shape == (4, 12)  # numpyro's raw keys too
    draws = d.sample(key, (2, 3))
    assert np.all(np.isfinite(np.asarray(draws))) and not np.allclose(draws[0, 0], draws[1, 2])


def test_samples_are_noisy_observations_with_covariance_k_plus_noise(numpyro):
    S = 20000
    Xs = X[:5]
    noise = NOISE[:5]
    gp = gl.GP(make_gp().kernel, mean=Constant(0.4), noise=jnp.asarray(noise))
    draws = np.asarray(gp.numpyro_dist(Xs).sample(jax.random.key(11), (S,)))
    C = np_gram(Xs, Xs) + np.diag(noise)
    mean_se = np.sqrt(np.diag(C) / S)
    assert np.all(np.abs(draws.mean(axis=0) - 0.4) < 5 * mean_se)
    cov = np.cov(draws, rowvar=False)
    cov_se = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C**2) / S)
    assert np.all(np.abs(cov - C) < 5 * cov_se), np.max(np.abs(cov - C) / cov_se)
    # The noise is in there: the latent prior alone has a visibly smaller variance.
    assert np.all(np.diag(cov) - np.diag(np_gram(Xs, Xs)) > noise - 5 * np.diag(cov_se))


# ------------------------------------------------------------- inside numpyro
def numpyro_model(X, y=None):
    import numpyro
    import numpyro.distributions as dist

    lengthscale = numpyro.sample("lengthscale", dist.LogNormal(0.0, 1.0))
    variance = numpyro.sample("variance", dist.HalfNormal(2.0))
    gp = gl.GP(gk.RBF(variance=variance, lengthscale=lengthscale), noise=jnp.asarray(NOISE))
    numpyro.sample("y", gp.numpyro_dist(X), obs=y)


def test_joint_log_density_is_priors_plus_marginal_likelihood(numpyro):
    from numpyro.infer.util import log_density

    params = {"lengthscale": jnp.array(0.7), "variance": jnp.array(1.3)}
    joint, _ = log_density(numpyro_model, (X, Y), {}, params)
    gp = gl.GP(gk.RBF(variance=1.3, lengthscale=0.7), noise=jnp.asarray(NOISE))
    expected = (
        scipy.stats.lognorm.logpdf(0.7, s=1.0)
        + scipy.stats.halfnorm.logpdf(1.3, scale=2.0)
        + float(gp.log_marginal_likelihood(X, Y))
    )
    np.testing.assert_allclose(float(joint), expected, rtol=1e-12)


@pytest.mark.slow
def test_tiny_nuts_run_gives_finite_draws(numpyro):
    from numpyro.infer import MCMC, NUTS

    mcmc = MCMC(NUTS(numpyro_model), num_warmup=60, num_samples=60, progress_bar=False)
    mcmc.run(jax.random.key(3), X, Y)
    draws = mcmc.get_samples()
    assert draws["lengthscale"].shape == (60,) and draws["variance"].shape == (60,)
    for values in draws.values():
        assert np.all(np.isfinite(np.asarray(values))) and np.all(np.asarray(values) > 0)
    assert float(jnp.std(draws["lengthscale"])) > 0  # the chain moved
    # Prior predictive draws of y through numpyro's own machinery.
    from numpyro.infer import Predictive

    predictive = Predictive(numpyro_model, num_samples=7)(jax.random.key(4), X)
    assert predictive["y"].shape == (7, 12) and np.all(np.isfinite(np.asarray(predictive["y"])))


# ------------------------------------------------------------------ errors
def test_bad_inputs_name_the_argument(numpyro):
    with pytest.raises(ValueError, match="`X`"):
        make_gp().numpyro_dist(np.zeros((2, 3, 4)))
    with pytest.raises(ValueError, match="`noise`"):
        make_gp().numpyro_dist(X[:5])


def test_import_gpjax_lite_does_not_import_numpyro():
    code = "import sys, gpjax_lite; assert 'numpyro' not in sys.modules, 'numpyro was imported'"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


def test_missing_numpyro_is_an_import_error_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "numpyro", None)  # makes `import numpyro` fail
    monkeypatch.setitem(sys.modules, "numpyro.distributions", None)
    monkeypatch.delitem(sys.modules, "gpjax_lite._numpyro", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'gpjax_lite\[numpyro\]'"):
        make_gp().numpyro_dist(X)


# ------------------------------------------------------------- the example
@pytest.mark.slow
def test_bayesian_example_runs_small(numpyro, tmp_path, capsys):
    """``examples/bayesian.py`` end to end at a tiny size: diagnostics, scores and the plot."""
    import importlib.util
    from pathlib import Path

    pytest.importorskip("matplotlib")
    path = Path(__file__).resolve().parents[1] / "examples" / "bayesian.py"
    spec = importlib.util.spec_from_file_location("bayesian_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    out = tmp_path / "bayes.png"
    args = ["--n", "40", "--warmup", "30", "--samples", "30", "--chains", "1", "--draws", "10"]
    result = example.main(args + ["--out", str(out)])
    printed = capsys.readouterr().out
    for expected in (
        "r_hat",
        "n_eff",
        "type-II ML",
        "full Bayes",
        "trend_lengthscale",
        "plot written to",
    ):
        assert expected in printed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for score in result["scores"].values():
        assert all(np.isfinite(list(score.values())))
        assert 0.0 <= score["coverage"] <= 1.0
    # The ML model's summary row for the fixed period says so.
    rows = gl.summary(result["ml_model"], fixed=example.fixed_period).split("\n")
    assert [row.split()[3] for row in rows if row.startswith("kernel.kernels[2].period")] == [
        "fixed"
    ]
    assert float(result["ml_model"].kernel.kernels[2].period) == 1.0
