"""Mauna Loa CO2: the classic composite-kernel Gaussian process.

Rasmussen & Williams (2006), §5.4.3, and the scikit-learn example "Forecasting
of CO2 level on Mona Loa dataset using Gaussian process regression": monthly
mean CO2 at Mauna Loa, 1958–2001, modelled as a sum of

* a long-term, smooth rising trend: ``RBF`` (lengthscale tens of years);
* a seasonal component: a yearly ``Periodic`` kernel times an ``RBF`` decay, so
  the shape of the yearly cycle can drift slowly;
* medium-term irregularities: ``RationalQuadratic``;
* short-term correlated noise: a small ``RBF``;
* white measurement noise: the GP's ``noise``;

with a ``Constant`` mean initialised at the data mean. Every positive
hyperparameter is fitted by maximising the log marginal likelihood with the
default L-BFGS in one compiled loop; the periodic kernel's own variance is
held fixed at 1 (the seasonal amplitude is the decay RBF's variance, and the
product of the two would not be identifiable).

Run from the repository root::

    python examples/mauna_loa.py                 # fit, print, write mauna_loa.png
    python examples/mauna_loa.py --steps 50 --out /tmp/co2.png
    python examples/mauna_loa.py --no-plot

Units: time in decimal years, CO2 in ppm; log marginal likelihoods in nats.
"""

from __future__ import annotations

import argparse
import functools
import sys
import textwrap
import time

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import gpjax_lite as gl  # noqa: E402
from gpjax_lite import kernels, means  # noqa: E402
from gpjax_lite.datasets import load_co2  # noqa: E402

#: How far past the data the plot extrapolates.
FORECAST_UNTIL = 2022.0


def build_model(y) -> gl.GP:
    """The R&W / scikit-learn composite kernel with its usual initial values (ppm, years)."""
    trend = kernels.RBF(variance=50.0**2, lengthscale=50.0)
    seasonal = kernels.RBF(variance=2.0**2, lengthscale=100.0) * kernels.Periodic(
        variance=1.0, lengthscale=1.0, period=1.0
    )
    irregular = kernels.RationalQuadratic(variance=0.5**2, lengthscale=1.0, alpha=1.0)
    short_term = kernels.RBF(variance=0.1**2, lengthscale=0.1)
    kernel = trend + seasonal + irregular + short_term
    return gl.GP(kernel, mean=means.Constant(jnp.mean(jnp.asarray(y))), noise=0.1**2)


def fixed(gp):
    """Hyperparameters held at their initial values: the periodic kernel's variance."""
    return gp.kernel.kernels[1].kernels[1].variance


def fit_model(X, y, num_steps: int = 1000):
    """Fit :func:`build_model` to ``(X, y)``; returns the :class:`~gpjax_lite.FitResult`.

    L-BFGS stops by itself once converged (about 500 steps on the full data,
    within about 0.01 nats of the optimum). The likelihood is very flat near
    its optimum (the rational-quadratic ``alpha`` and the constant mean move
    along a ridge), so round-off steers the path and the step count and final
    digits vary with the machine.
    """
    return gl.fit(build_model(y), X, y, num_steps=num_steps, fixed=fixed)


def compile_and_fit(X, y, num_steps: int):
    """Ahead-of-time compile the whole fit, then run it: returns (result, compile s, run s).

    ``jax.jit(...).lower(X, y).compile()`` traces the fit (building the model
    and the optimisation loop) and compiles it with XLA without running it;
    calling the compiled function then only runs the optimisation. Inside a
    ``jax.jit`` of our own, ``fit``'s compiler options are this ``jit``'s to
    set, so it passes the ones ``fit`` uses by itself.
    """
    start = time.perf_counter()
    fit_jit = jax.jit(
        functools.partial(fit_model, num_steps=num_steps),
        compiler_options=gl.default_compiler_options(),
    )
    compiled = fit_jit.lower(X, y).compile()
    compile_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(X, y))
    run_seconds = time.perf_counter() - start
    return result, compile_seconds, run_seconds


def describe(model) -> list[str]:
    """Which part of the model each term is: one line per term, with its path in ``summary``.

    The values themselves are printed by :func:`gpjax_lite.summary` (variances
    in ppm², lengthscales and the period in years).
    """
    trend, seasonal, irregular, short_term = (type(k).__name__ for k in model.kernel.kernels)
    decay, periodic = (type(k).__name__ for k in model.kernel.kernels[1].kernels)
    return [
        f"long-term trend    kernel.kernels[0]   {trend}",
        f"seasonal           kernel.kernels[1]   {decay} * {periodic} (period in years)",
        f"medium-term        kernel.kernels[2]   {irregular}",
        f"short-term         kernel.kernels[3]   {short_term}",
        "white noise        noise               variance, ppm²",
        "constant mean      mean.value          ppm",
    ]


def predict(model, X, y, Xt):
    """Posterior predictive mean and standard deviation of new observations at ``Xt``."""
    mean, variance = model.condition(X, y).predict(Xt, include_noise=True)
    return np.asarray(mean), np.sqrt(np.asarray(variance))


def plot(model, X, y, out: str) -> None:
    """Data, posterior mean and ±2σ band from 1958 to :data:`FORECAST_UNTIL`, written to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Xt = np.linspace(X.min(), FORECAST_UNTIL, 1000)
    mean, std = predict(model, X, y, Xt)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=120)
    ax.scatter(X, y, s=3, color="black", label="monthly mean CO$_2$ (Mauna Loa)", zorder=3)
    ax.plot(Xt, mean, color="tab:blue", lw=1, label="posterior mean")
    ax.fill_between(
        Xt,
        mean - 2 * std,
        mean + 2 * std,
        color="tab:blue",
        alpha=0.3,
        lw=0,
        label="±2σ (new observation)",
    )
    ax.axvline(X.max(), color="grey", lw=0.8, ls="--")
    ax.set_xlabel("year")
    ax.set_ylabel("CO$_2$ (ppm)")
    ax.set_title("Mauna Loa CO$_2$: GP fit 1958–2001, forecast to 2022")
    ax.legend(loc="upper left", frameon=False)
    ax.set_xlim(X.min() - 1, FORECAST_UNTIL + 1)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="most L-BFGS steps (default 1000; it stops when converged)",
    )
    parser.add_argument("--out", default="mauna_loa.png", help="where to write the plot (PNG)")
    parser.add_argument("--no-plot", action="store_true", help="skip the plot (and matplotlib)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    X, y = load_co2()
    X, y = jnp.asarray(X), jnp.asarray(y)
    initial = build_model(y)
    initial_mll = float(initial.log_marginal_likelihood(X, y))

    result, compile_seconds, run_seconds = compile_and_fit(X, y, args.steps)
    model = result.model
    mll = -float(result.final_loss)

    print(
        f"Mauna Loa CO2: n = {X.shape[0]} monthly means, {float(X.min()):.2f}–{float(X.max()):.2f}"
    )
    print(f"backend: {jax.default_backend()}, float64: {jax.config.jax_enable_x64}")
    print("fitted hyperparameters:")
    print(textwrap.indent(gl.summary(model, fixed=fixed), "  "))
    print("terms:")
    for line in describe(model):
        print("  " + line)
    print(f"log marginal likelihood: {initial_mll:.3f} (initial) -> {mll:.3f} (fitted) nats")
    print(
        f"L-BFGS steps: {int(result.steps_taken)} of at most {args.steps}"
        + (
            f"; non-finite at step {int(result.nonfinite_step)}"
            if int(result.nonfinite_step) >= 0
            else ""
        )
    )
    print(
        f"wall time: compile {compile_seconds:.2f} s (jax.jit(fit).lower().compile(): tracing + XLA), "
        f"run {run_seconds:.2f} s (the compiled fit: {int(result.steps_taken)} L-BFGS steps, "
        f"{1e3 * run_seconds / max(int(result.steps_taken), 1):.0f} ms per step)"
    )
    if not args.no_plot:
        plot(model, np.asarray(X), np.asarray(y), args.out)
        print(f"plot written to {args.out}")
    return dict(result=result, X=X, y=y, compile_seconds=compile_seconds, run_seconds=run_seconds)


if __name__ == "__main__":
    main()
