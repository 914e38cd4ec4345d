"""British coal-mining disasters, 1851–1962: a smoothly varying Poisson rate.

Yearly counts of explosions that killed ten or more miners (Jarrett 1979; 191
disasters in 112 years) are modelled as ``y_t ~ Poisson(exp f(t))`` with a
Gaussian-process log rate ``f ~ GP(c, Matern52)``. The Laplace approximation
(:class:`gpjax_lite.LaplaceGP`) gives the approximate posterior of ``f``;
its hyperparameters (the kernel's variance and lengthscale, the constant ``c``)
are fitted by maximising the approximate log marginal likelihood with
``gpjax_lite.fit``. The classic finding, a drop in the rate around 1890
(Raftery & Akman 1986 put a change point there), shows up as a smooth
decline rather than a step.

Run from the repository root::

    python examples/counts.py                    # fit, print, write coal_rate.png
    python examples/counts.py --no-plot

Units: time in calendar years; rates in disasters per year; log marginal
likelihoods in nats.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

import gpjax_lite as gl
from gpjax_lite import kernels, likelihoods, means
from gpjax_lite.datasets import load_coal_mining_disasters

#: Two-sided 95 % standard-normal quantile, for the band of the rate.
Z95 = 1.959963984540054


def build_model(counts) -> gl.LaplaceGP:
    """A Poisson model whose log rate starts at the log of the mean count, smooth over decades."""
    return gl.LaplaceGP(
        kernels.Matern52(variance=1.0, lengthscale=20.0),
        likelihoods.Poisson(),
        means.Constant(float(np.log(np.mean(counts)))),
    )


def fit_model(years, counts, num_steps: int = 100) -> gl.FitResult:
    return gl.fit(build_model(counts), years, counts, num_steps=num_steps)


def posterior_rate(model: gl.LaplaceGP, years, counts, grid):
    """The rate ``exp f`` on ``grid``: median ``exp(mean)``, a 95 % band and the mean.

    With ``f ~ N(mean, var)`` under the Laplace posterior, ``exp f`` is
    log-normal: its quantiles are ``exp(mean ± 1.96 sd)`` and its mean is
    ``exp(mean + var/2)`` (what ``predict_y`` returns).
    """
    post = model.condition(years, counts)
    mean, var = post.predict(grid)
    sd = np.sqrt(np.asarray(var))
    rate_mean, _ = post.predict_y(grid)
    return (
        np.exp(np.asarray(mean)),
        np.exp(np.asarray(mean) - Z95 * sd),
        np.exp(np.asarray(mean) + Z95 * sd),
        np.asarray(rate_mean),
    )


def plot(years, counts, grid, median, lower, upper, out: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(years, counts, width=0.8, color="0.8", label="disasters per year")
    ax.fill_between(grid, lower, upper, color="C0", alpha=0.25, label="95 % band of the rate")
    ax.plot(grid, median, color="C0", label="posterior median rate")
    ax.set_xlabel("year")
    ax.set_ylabel("disasters per year")
    ax.set_title("British coal-mining disasters: Poisson rate under a GP (Laplace)")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="most L-BFGS steps")
    parser.add_argument("--out", default="coal_rate.png", help="where to write the plot")
    parser.add_argument("--no-plot", action="store_true", help="do not plot (no matplotlib)")
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    years, counts = load_coal_mining_disasters()
    start = time.perf_counter()
    result = fit_model(years, counts, args.steps)
    jax.block_until_ready(result.final_loss)
    wall = time.perf_counter() - start
    model = result.model
    grid = np.linspace(years[0], years[-1], 400)
    median, lower, upper, mean = posterior_rate(model, years, counts, grid)
    print(
        f"log marginal likelihood (Laplace): {-float(result.final_loss):.3f} nats "
        f"(initial {float(build_model(counts).log_marginal_likelihood(years, counts)):.3f})"
    )
    print(
        f"kernel variance {float(model.kernel.variance):.3f}, lengthscale "
        f"{float(model.kernel.lengthscale):.1f} years, mean log rate {float(model.mean.value):.3f}"
    )
    for year in (1860, 1890, 1920, 1950):
        i = int(np.argmin(np.abs(grid - year)))
        print(f"rate in {year}: {median[i]:.2f} per year (95 % band {lower[i]:.2f}–{upper[i]:.2f})")
    print(f"wall time (fit, compile included): {wall:.2f} s")
    if not args.no_plot:
        plot(years, counts, grid, median, lower, upper, args.out)
        print(f"plot written to {args.out}")
    return {
        "result": result,
        "grid": grid,
        "median": median,
        "lower": lower,
        "upper": upper,
        "mean": mean,
    }


if __name__ == "__main__":
    main()
