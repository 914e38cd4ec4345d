"""Weekly Mauna Loa CO2 in O(n): the state-space solver on real data.

The weekly series (2225 points, 1958–2001, ``gpjax_lite.datasets.load_co2_weekly``)
modelled with kernels that all have a state-space form, so
``solvers.StateSpace()`` runs Kalman filtering and smoothing instead of a
dense Cholesky factor:

* a smooth long-term rise: ``Matern52`` (lengthscale tens of years);
* the yearly cycle and its first harmonic: two ``SHO`` terms with angular
  frequencies near ``2π`` and ``4π`` per year and a high quality factor, i.e.
  oscillations whose amplitude and phase drift slowly (quasi-periodic);
* medium-term irregularities: ``Matern32`` (lengthscale about a year);
* white measurement noise: the GP's ``noise``;

with a ``Constant`` mean at the data mean. The same model is fitted by
``gpjax_lite.fit`` (L-BFGS) with both solvers: the objective is the same to
round-off, so the two runs follow the same path until round-off differences
grow over many steps (after 50 steps the log marginal likelihoods, about
-1060 nats, agreed to 0.05 nats and every hyperparameter to a few percent;
``tests/solvers/test_example.py`` checks equal losses over 15 steps). The
wall-clock time of each fit is printed (compile included).

Run from the repository root::

    python examples/state_space.py                  # fit with both solvers, write state_space.png
    python examples/state_space.py --steps 30 --no-dense --no-plot

Units: time in years since 1958, CO2 in ppm; log marginal likelihoods in nats.
"""

from __future__ import annotations

import argparse
import math
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gpjax_lite as gl  # noqa: E402
from gpjax_lite import kernels, means, solvers  # noqa: E402
from gpjax_lite.datasets import load_co2_weekly  # noqa: E402

#: Years are counted from here, so the inputs are O(10), not O(2000).
ORIGIN = 1958.0


def load():
    """Weekly CO2: ``X`` years since 1958 ``(n,)``, ``y`` ppm ``(n,)``."""
    X, y = load_co2_weekly()
    return X - ORIGIN, y


def build_model(y, solver=None) -> gl.GP:
    """The initial model: trend + yearly cycle + harmonic + irregularities + noise."""
    kernel = (
        kernels.Matern52(variance=100.0, lengthscale=30.0)
        + kernels.SHO(variance=4.0, omega=2 * math.pi, quality=50.0)
        + kernels.SHO(variance=0.5, omega=4 * math.pi, quality=50.0)
        + kernels.Matern32(variance=0.5, lengthscale=1.0)
    )
    return gl.GP(
        kernel,
        mean=means.Constant(float(np.mean(y))),
        noise=0.1,
        solver=solvers.StateSpace() if solver is None else solver,
    )


def fit_model(X, y, solver=None, num_steps: int = 100) -> gl.FitResult:
    """Maximise the log marginal likelihood (L-BFGS, one compiled loop)."""
    return gl.fit(build_model(y, solver), jnp.asarray(X), jnp.asarray(y), num_steps=num_steps)


def timed_fit(X, y, solver, num_steps):
    start = time.perf_counter()
    result = fit_model(X, y, solver, num_steps)
    jax.block_until_ready(result.losses)
    return result, time.perf_counter() - start


def describe(model: gl.GP) -> str:
    trend, yearly, harmonic, irregular = model.kernel.kernels
    return (
        f"trend ℓ = {float(trend.lengthscale):.3g} y, σ = {math.sqrt(float(trend.variance)):.3g} ppm; "
        f"yearly period = {2 * math.pi / float(yearly.omega):.4f} y, Q = {float(yearly.quality):.3g}, "
        f"amplitude {math.sqrt(float(yearly.variance)):.3g} ppm; "
        f"harmonic Q = {float(harmonic.quality):.3g}; "
        f"irregular ℓ = {float(irregular.lengthscale):.3g} y; noise σ = {math.sqrt(float(model.noise)):.3g} ppm"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description="Weekly Mauna Loa CO2 with solvers.StateSpace.")
    parser.add_argument("--steps", type=int, default=100, help="L-BFGS steps (default 100)")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense Cholesky fit")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", default="state_space.png")
    args = parser.parse_args(argv)

    X, y = load()
    print(f"{X.shape[0]} weekly points, {ORIGIN + X[0]:.2f}–{ORIGIN + X[-1]:.2f}")
    result, seconds = timed_fit(X, y, solvers.StateSpace(), args.steps)
    print(
        f"StateSpace fit: {seconds:6.1f} s, log marginal likelihood {-float(result.final_loss):.6f} nats"
    )
    print("  " + describe(result.model))
    if not args.no_dense:
        dense, dense_seconds = timed_fit(X, y, solvers.Cholesky(), args.steps)
        print(
            f"Cholesky fit:   {dense_seconds:6.1f} s, log marginal likelihood {-float(dense.final_loss):.6f} nats"
        )
        print("  " + describe(dense.model))
        # Same objective, same optimiser: the two optima agree to the optimiser's tolerance.
        print(
            f"  |Δ log marginal likelihood| = {abs(float(result.final_loss - dense.final_loss)):.2e} nats"
        )

    model = result.model
    posterior = model.condition(X, y)
    Xt = np.linspace(X[0] - 1.0, X[-1] + 8.0, 20_000)  # 20 000 test points: O(n + m)
    mean, var = posterior.predict(Xt)
    print(
        f"predicted at {Xt.shape[0]} points; forecast for 2005.0: "
        f"{float(np.interp(2005.0 - ORIGIN, Xt, mean)):.1f} ppm"
    )
    if args.no_plot:
        return result
    import matplotlib.pyplot as plt

    draws = posterior.sample(jax.random.key(0), Xt[::10], num_samples=3)
    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5))
    for ax, window in zip(axes, [(X[0] - 1, X[-1] + 8), (X[-1] - 4, X[-1] + 4)]):
        std = np.sqrt(np.asarray(var))
        ax.fill_between(
            ORIGIN + Xt, mean - 2 * std, mean + 2 * std, color="C0", alpha=0.25, label="±2σ"
        )
        ax.plot(ORIGIN + Xt, mean, color="C0", lw=1, label="posterior mean")
        for draw in np.asarray(draws):
            ax.plot(ORIGIN + Xt[::10], draw, color="C1", lw=0.5, alpha=0.7)
        ax.plot(ORIGIN + X, y, ".", color="k", ms=1.5, label="weekly data")
        ax.set_xlim(ORIGIN + window[0], ORIGIN + window[1])
        visible = (Xt > window[0]) & (Xt < window[1])
        ax.set_ylim(
            float(np.min(mean[visible] - 3 * std[visible])),
            float(np.max(mean[visible] + 3 * std[visible])),
        )
        ax.set_ylabel("CO₂ (ppm)")
    axes[0].legend(loc="upper left")
    axes[0].set_title("Weekly Mauna Loa CO₂, fitted and forecast with solvers.StateSpace (O(n))")
    axes[1].set_xlabel("year")
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
