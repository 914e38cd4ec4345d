"""Full Bayes over GP hyperparameters with NUTS, against the type-II maximum-likelihood fit.

Mauna Loa CO2 (monthly means, ``gpjax_lite.datasets.load_co2``): a random
subsample of the months before :data:`HOLD_OUT_FROM` is the training set, the
months after it are held out. The model, on standardised CO2 and years since
:data:`ORIGIN`, is a linear rise, a smooth deviation from it and a yearly cycle::

    k = Linear(slope_variance) + RBF(trend_variance, trend_lengthscale)
        + Periodic(seasonal_variance, seasonal_lengthscale, period=1)

with Gaussian noise. Two ways to choose the six hyperparameters ``θ``:

* **type-II maximum likelihood**: ``fit`` maximises ``log p(y | X, θ)`` and
  predicts with that single ``θ̂``;
* **full Bayes**: log-normal priors ``p(θ)`` (:data:`PRIORS`, in natural units),
  NUTS (numpyro) draws ``θ ~ p(θ | y) ∝ p(y | X, θ) p(θ)`` with
  ``gp.numpyro_dist(X)`` as the likelihood, and the predictive averages the
  GP predictive over the draws: a mixture of Gaussians, whose mean and
  variance (law of total variance) give the band.

It prints numpyro's diagnostics (``r_hat``, ``n_eff``), the ML fit's
``summary``, the held-out log predictive density, error and ±2σ coverage of
both, and plots both bands. Run from the repository root (about a minute on
a laptop CPU; needs ``pip install 'gpjax_lite[numpyro,examples]'``)::

    python examples/bayesian.py                       # writes bayesian.png
    python examples/bayesian.py --samples 200 --no-plot

Units: time in years, CO2 in ppm (the model works on standardised values),
log densities in nats.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import numpyro  # noqa: E402
import numpyro.distributions as dist  # noqa: E402
from jax.scipy.special import logsumexp  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402

import gpjax_lite as gl  # noqa: E402
from gpjax_lite import kernels  # noqa: E402
from gpjax_lite.datasets import load_co2  # noqa: E402

#: Months from this year on are held out (the forecast to check).
HOLD_OUT_FROM = 1995.0
#: Years are counted from here (about the middle of the training years: the
#: ``Linear`` kernel's line goes through 0 at this year).
ORIGIN = 1976.0

#: Priors on the hyperparameters, in natural units (standardised CO2, years):
#: weakly informative log-normals around plausible scales (a rise of ~0.1
#: standard deviations a year, deviations over decades, a yearly cycle of a few
#: ppm, measurement noise well below 1 ppm).
PRIORS = {
    "slope_variance": dist.LogNormal(jnp.log(0.01), 1.5),
    "trend_variance": dist.LogNormal(0.0, 1.0),
    "trend_lengthscale": dist.LogNormal(jnp.log(20.0), 1.0),
    "seasonal_variance": dist.LogNormal(jnp.log(0.01), 1.5),
    "seasonal_lengthscale": dist.LogNormal(0.0, 1.0),
    "noise": dist.LogNormal(jnp.log(1e-3), 1.5),
}


def build_gp(
    slope_variance,
    trend_variance,
    trend_lengthscale,
    seasonal_variance,
    seasonal_lengthscale,
    noise,
):
    """The rise + trend + yearly-cycle GP for given hyperparameters (the period is one year)."""
    rise = kernels.Linear(variance=slope_variance)
    trend = kernels.RBF(variance=trend_variance, lengthscale=trend_lengthscale)
    seasonal = kernels.Periodic(
        variance=seasonal_variance, lengthscale=seasonal_lengthscale, period=1.0
    )
    return gl.GP(rise + trend + seasonal, noise=noise)


def hyperparameters(gp) -> dict:
    """The inverse of :func:`build_gp`: the six hyperparameters of a fitted model."""
    rise, trend, seasonal = gp.kernel.kernels
    return dict(
        slope_variance=rise.variance,
        trend_variance=trend.variance,
        trend_lengthscale=trend.lengthscale,
        seasonal_variance=seasonal.variance,
        seasonal_lengthscale=seasonal.lengthscale,
        noise=gp.noise,
    )


def numpyro_model(X, y=None):
    """Priors on the hyperparameters; the GP's marginal ``N(0, K + σ²I)`` as the likelihood."""
    theta = {name: numpyro.sample(name, prior) for name, prior in PRIORS.items()}
    numpyro.sample("y", build_gp(**theta).numpyro_dist(X), obs=y)


def load_data(n_train: int, seed: int):
    """Standardised training subsample and held-out months: ``(X, y, X_test, y_test, scale)``.

    ``scale = (mean, std)`` of the training CO2 in ppm, to map back.
    """
    years, ppm = load_co2()
    before = np.flatnonzero(years < HOLD_OUT_FROM)
    rng = np.random.default_rng(seed)
    train = np.sort(rng.choice(before, size=min(n_train, before.size), replace=False))
    test = np.flatnonzero(years >= HOLD_OUT_FROM)
    mean, std = ppm[train].mean(), ppm[train].std()
    standardise = lambda values: jnp.asarray((values - mean) / std)  # noqa: E731
    X, X_test = jnp.asarray(years[train] - ORIGIN), jnp.asarray(years[test] - ORIGIN)
    return X, standardise(ppm[train]), X_test, standardise(ppm[test]), (mean, std)


def fit_type2_ml(X, y):
    """Type-II maximum likelihood from a plausible start (the period held at one year)."""
    initial = build_gp(0.01, 1.0, 20.0, 0.01, 1.0, 1e-3)
    return gl.fit(initial, X, y, fixed=fixed_period).model


def fixed_period(gp):
    """The hyperparameter held fixed: the period of the yearly cycle."""
    return gp.kernel.kernels[2].period


def run_nuts(X, y, num_warmup: int, num_samples: int, num_chains: int, seed: int) -> MCMC:
    """NUTS over the hyperparameters; chains one after the other (a CPU has few cores)."""
    mcmc = MCMC(
        NUTS(numpyro_model),
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.key(seed), X, y)
    return mcmc


@jax.jit
def predictive_moments(theta, X, y, Xt):
    """Predictive mean and variance of new observations at ``Xt`` for each draw: ``(S, m)`` each.

    ``theta`` maps each hyperparameter name to its ``(S,)`` draws.
    """

    def one_draw(theta):
        return build_gp(**theta).condition(X, y).predict(Xt, include_noise=True)

    return jax.vmap(one_draw)(theta)


def mixture_band(means, variances):
    """Mean and standard deviation of the equal-weight mixture of ``N(meansₛ, variancesₛ)``, ``(m,)``."""
    mean = means.mean(axis=0)
    variance = (variances + means**2).mean(axis=0) - mean**2  # law of total variance
    return mean, jnp.sqrt(variance)


def held_out_scores(means, variances, y_test) -> dict:
    """Log predictive density per point (nats), RMSE and ±2σ coverage of the mixture over draws."""
    log_densities = -0.5 * ((y_test - means) ** 2 / variances + jnp.log(2 * jnp.pi * variances))
    lpd = logsumexp(log_densities, axis=0) - jnp.log(means.shape[0])
    mean, sd = mixture_band(means, variances)
    return dict(
        log_predictive=float(jnp.mean(lpd)),
        rmse=float(jnp.sqrt(jnp.mean((mean - y_test) ** 2))),
        coverage=float(jnp.mean(jnp.abs(mean - y_test) <= 2 * sd)),
    )


def plot(X, y, X_test, y_test, Xt, ml_band, bayes_band, scale, out: str) -> None:
    """Both ±2σ bands (in ppm) on the whole series and on the held-out years, written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean_ppm, std_ppm = scale
    to_ppm = lambda v: mean_ppm + std_ppm * np.asarray(v)  # noqa: E731
    years = lambda x: ORIGIN + np.asarray(x)  # noqa: E731
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120, gridspec_kw={"width_ratios": [3, 2]})
    for ax, (start, stop) in zip(axes, [(1957.0, 2003.0), (HOLD_OUT_FROM - 3.0, 2002.5)]):
        for (mean, sd), color, label in [
            (bayes_band, "tab:blue", "full Bayes (NUTS) ±2σ"),
            (ml_band, "tab:orange", "type-II ML ±2σ"),
        ]:
            ax.fill_between(
                years(Xt),
                to_ppm(mean - 2 * sd),
                to_ppm(mean + 2 * sd),
                color=color,
                alpha=0.25,
                lw=0,
                label=label,
            )
            ax.plot(years(Xt), to_ppm(mean), color=color, lw=0.8)
        ax.scatter(years(X), to_ppm(y), s=4, color="black", label="training months", zorder=3)
        ax.scatter(
            years(X_test), to_ppm(y_test), s=4, color="tab:red", label="held-out months", zorder=3
        )
        ax.axvline(HOLD_OUT_FROM, color="grey", lw=0.8, ls="--")
        ax.set_xlim(start, stop)
        ax.set_xlabel("year")
    axes[0].set_ylabel("CO$_2$ (ppm)")
    axes[0].set_title("Mauna Loa CO$_2$: linear rise + smooth trend + yearly cycle")
    axes[1].set_title(f"forecast from {HOLD_OUT_FROM:.0f}")
    in_window = years(Xt) >= HOLD_OUT_FROM - 3.0
    lo = to_ppm(bayes_band[0] - 3 * bayes_band[1])[in_window].min()
    hi = to_ppm(bayes_band[0] + 3 * bayes_band[1])[in_window].max()
    axes[1].set_ylim(lo, hi)
    axes[0].legend(loc="upper left", frameon=False, fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--n", type=int, default=120, help="training months, drawn at random (default 120)"
    )
    parser.add_argument(
        "--warmup", type=int, default=300, help="NUTS warm-up steps per chain (default 300)"
    )
    parser.add_argument(
        "--samples", type=int, default=300, help="NUTS draws per chain (default 300)"
    )
    parser.add_argument(
        "--chains", type=int, default=2, help="NUTS chains, run in sequence (default 2)"
    )
    parser.add_argument(
        "--draws",
        type=int,
        default=200,
        help="posterior draws used for the predictive (default 200)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the subsample and of NUTS (default 0)"
    )
    parser.add_argument("--out", default="bayesian.png", help="where to write the plot (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot (and matplotlib)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    X, y, X_test, y_test, scale = load_data(args.n, args.seed)
    print(
        f"Mauna Loa CO2: {X.shape[0]} training months before {HOLD_OUT_FROM:.0f}, "
        f"{X_test.shape[0]} held out; CO2 standardised by {scale[0]:.2f} ± {scale[1]:.2f} ppm"
    )

    start = time.perf_counter()
    ml_model = fit_type2_ml(X, y)
    ml_seconds = time.perf_counter() - start
    print(
        f"\ntype-II maximum likelihood ({ml_seconds:.1f} s), "
        f"log p(y | θ̂) = {float(ml_model.log_marginal_likelihood(X, y)):.2f} nats:"
    )
    print(gl.summary(ml_model, fixed=fixed_period))

    start = time.perf_counter()
    mcmc = run_nuts(X, y, args.warmup, args.samples, args.chains, args.seed)
    nuts_seconds = time.perf_counter() - start
    print(
        f"\nNUTS: {args.chains} chain(s) × ({args.warmup} warm-up + {args.samples} draws), "
        f"{nuts_seconds:.1f} s (compilation included)"
    )
    mcmc.print_summary()
    draws = mcmc.get_samples()
    num_draws = next(iter(draws.values())).shape[0]
    thin = np.linspace(0, num_draws - 1, min(args.draws, num_draws)).astype(int)
    theta = {name: draws[name][thin] for name in PRIORS}

    ml_theta = {name: jnp.asarray(value)[None] for name, value in hyperparameters(ml_model).items()}
    scores = {
        "type-II ML": held_out_scores(*predictive_moments(ml_theta, X, y, X_test), y_test),
        "full Bayes": held_out_scores(*predictive_moments(theta, X, y, X_test), y_test),
    }
    print(f"\nheld-out months ({X_test.shape[0]}), standardised units:")
    print(f"  {'':12s}{'log pred. density / point':>28s}{'RMSE':>8s}{'±2σ coverage':>14s}")
    for name, score in scores.items():
        print(
            f"  {name:12s}{score['log_predictive']:28.3f}{score['rmse']:8.3f}{score['coverage']:14.2f}"
        )

    if not args.no_plot:
        Xt = jnp.linspace(float(X.min()), 2002.5 - ORIGIN, 600)
        ml_band = mixture_band(*predictive_moments(ml_theta, X, y, Xt))
        bayes_band = mixture_band(*predictive_moments(theta, X, y, Xt))
        plot(X, y, X_test, y_test, Xt, ml_band, bayes_band, scale, args.out)
        print(f"plot written to {args.out}")
    return dict(ml_model=ml_model, mcmc=mcmc, scores=scores, nuts_seconds=nuts_seconds)


if __name__ == "__main__":
    main()
