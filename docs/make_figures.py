"""Draw the documentation's figures with gpjax_lite itself.

Usage (from the repository root)::

    python docs/make_figures.py                 # all figures into docs/images/
    python docs/make_figures.py --out /tmp/fig  # somewhere else
    python docs/make_figures.py --quick         # coarse grids, few steps (CI)

Writes PNGs only; every figure is deterministic (fixed PRNG keys). The
Mauna Loa figure (``images/mauna_loa.png``) comes from
``examples/mauna_loa.py`` and the benchmark plots from ``python -m
benchmarks``, not from this script.

Figures
-------
* ``kernels_grid.png`` -- prior samples of every kernel, one panel each;
* ``kernel_<name>.png`` -- one kernel: its Gram matrix and prior samples;
* ``kernel_lengthscales.png`` -- RBF samples for three lengthscales;
* ``kernel_algebra.png`` -- samples from sums and products of kernels;
* ``kernel_ard.png`` -- 2-D samples, isotropic versus ARD lengthscales;
* ``posterior.png`` -- posterior mean ± 2σ on toy data after ``fit``;
* ``marginal_likelihood.png`` -- data-fit and complexity terms against the lengthscale;
* ``loss_curve.png`` -- the loss of ``fit`` per step, L-BFGS against Adam.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import jax  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import gpjax_lite as gl  # noqa: E402
from gpjax_lite import kernels as gk  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "images"

SAMPLE_COLOURS = ["#3f51b5", "#e91e63", "#009688", "#ff9800", "#795548"]
DATA_COLOUR = "#222222"

#: Every kernel of the library with its name in the docs (the file is
#: ``kernel_<slug>.png``) and the input range its samples are drawn on.
KERNELS = [
    ("rbf", "RBF()", gk.RBF(), (-3.0, 3.0)),
    ("matern12", "Matern12()", gk.Matern12(), (-3.0, 3.0)),
    ("matern32", "Matern32()", gk.Matern32(), (-3.0, 3.0)),
    ("matern52", "Matern52()", gk.Matern52(), (-3.0, 3.0)),
    (
        "rational_quadratic",
        "RationalQuadratic(alpha=0.5)",
        gk.RationalQuadratic(alpha=0.5),
        (-3.0, 3.0),
    ),
    ("periodic", "Periodic(period=2.0)", gk.Periodic(period=2.0), (-3.0, 3.0)),
    ("cosine", "Cosine(period=2.0)", gk.Cosine(period=2.0), (-3.0, 3.0)),
    ("linear", "Linear()", gk.Linear(), (-3.0, 3.0)),
    ("polynomial", "Polynomial(degree=3)", gk.Polynomial(degree=3), (-1.5, 1.5)),
    ("constant", "Constant()", gk.Constant(), (-3.0, 3.0)),
    ("white", "White()", gk.White(), (-3.0, 3.0)),
]


def _style(ax, title=None):
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(labelsize=8)
    if title:
        ax.set_title(title, fontsize=9, family="monospace")


def _save(fig, out: Path, name: str, dpi: int) -> Path:
    path = out / name
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def prior_samples(kernel, x, key, num_samples):
    """``num_samples`` draws from ``GP(kernel).prior(x)``, shape ``(num_samples, n)``."""
    return gl.GP(kernel).sample(key, x, num_samples=num_samples)


# --------------------------------------------------------------------- kernels
def kernel_figures(out: Path, quick: bool, dpi: int) -> list[Path]:
    n = 60 if quick else 300
    num_samples = 2 if quick else 3
    paths = []

    # The grid: prior samples of every kernel, plus one product.
    panels = KERNELS + [
        (
            "",
            "RBF() * Periodic(period=2.0)",
            gk.RBF(lengthscale=2.0) * gk.Periodic(period=2.0),
            (-3.0, 3.0),
        )
    ]
    fig, axes = plt.subplots(3, 4, figsize=(11, 6.6), sharex=False)
    for i, (ax, (_, title, kernel, (lo, hi))) in enumerate(zip(axes.flat, panels)):
        x = jnp.linspace(lo, hi, n)
        f = prior_samples(kernel, x, jax.random.key(i), num_samples)
        for j in range(num_samples):
            ax.plot(x, f[j], color=SAMPLE_COLOURS[j], lw=1.2)
        _style(ax, title.replace("RBF() * Periodic(period=2.0)", "RBF(2) * Periodic(2)"))
    fig.suptitle("Prior samples f ~ GP(0, k)", fontsize=11)
    fig.tight_layout()
    paths.append(_save(fig, out, "kernels_grid.png", dpi))

    # One figure per kernel: the Gram matrix and prior samples. (Quick mode
    # draws two of them: the code path is the same for every kernel.)
    for i, (slug, title, kernel, (lo, hi)) in enumerate(KERNELS[:2] if quick else KERNELS):
        x = jnp.linspace(lo, hi, n)
        K = kernel.gram(x)
        f = prior_samples(kernel, x, jax.random.key(100 + i), num_samples)
        fig, (ax0, ax1) = plt.subplots(
            1, 2, figsize=(7.5, 2.6), gridspec_kw={"width_ratios": [1, 1.9]}
        )
        image = ax0.imshow(K, extent=(lo, hi, hi, lo), cmap="viridis")
        fig.colorbar(image, ax=ax0, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
        ax0.set_title("k(x, x')", fontsize=9)
        ax0.set_xlabel("x'", fontsize=8)
        ax0.set_ylabel("x", fontsize=8)
        ax0.tick_params(labelsize=7)
        for j in range(num_samples):
            ax1.plot(x, f[j], color=SAMPLE_COLOURS[j], lw=1.2)
        _style(ax1, f"prior samples, {title}")
        ax1.set_xlabel("x", fontsize=8)
        fig.tight_layout()
        paths.append(_save(fig, out, f"kernel_{slug}.png", dpi))

    # Lengthscales: the same RBF samples (same key) at three lengthscales.
    x = jnp.linspace(-5.0, 5.0, n)
    fig, axes = plt.subplots(1, 3, figsize=(10, 2.6), sharey=True)
    for ax, ell in zip(axes, (0.3, 1.0, 3.0)):
        f = prior_samples(gk.RBF(lengthscale=ell), x, jax.random.key(7), num_samples)
        for j in range(num_samples):
            ax.plot(x, f[j], color=SAMPLE_COLOURS[j], lw=1.2)
        _style(ax, f"RBF(lengthscale={ell})")
    fig.tight_layout()
    paths.append(_save(fig, out, "kernel_lengthscales.png", dpi))

    # Algebra: sums and products.
    combos = [
        (
            "Linear(variance=0.3) + Periodic(period=2.0)",
            gk.Linear(variance=0.3) + gk.Periodic(period=2.0),
        ),
        (
            "RBF(lengthscale=3.0) * Periodic(period=1.0)",
            gk.RBF(lengthscale=3.0) * gk.Periodic(period=1.0),
        ),
        ("Linear() * Linear()", gk.Linear() * gk.Linear()),
        (
            "RBF(lengthscale=2.0) + 0.1 * Matern12(lengthscale=0.3)",
            gk.RBF(lengthscale=2.0) + 0.1 * gk.Matern12(lengthscale=0.3),
        ),
    ]
    x = jnp.linspace(-4.0, 4.0, n)
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.6))
    for i, (ax, (title, kernel)) in enumerate(zip(axes, combos)):
        f = prior_samples(kernel, x, jax.random.key(200 + i), num_samples)
        for j in range(num_samples):
            ax.plot(x, f[j], color=SAMPLE_COLOURS[j], lw=1.2)
        _style(ax, title)
        ax.title.set_fontsize(8)
    fig.tight_layout()
    paths.append(_save(fig, out, "kernel_algebra.png", dpi))

    # ARD: one 2-D sample, isotropic versus one lengthscale per column.
    g = 16 if quick else 40
    grid = jnp.linspace(-3.0, 3.0, g)
    X2 = jnp.stack(jnp.meshgrid(grid, grid), axis=-1).reshape(-1, 2)
    fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
    for ax, (title, kernel) in zip(
        axes,
        [
            ("RBF(lengthscale=1.0)", gk.RBF(lengthscale=1.0)),
            ("RBF(lengthscale=jnp.array([0.5, 3.0]))", gk.RBF(lengthscale=jnp.array([0.5, 3.0]))),
        ],
    ):
        f = prior_samples(kernel, X2, jax.random.key(3), 1)[0].reshape(g, g)
        ax.imshow(f, extent=(-3, 3, -3, 3), origin="lower", cmap="RdBu_r", interpolation="bilinear")
        ax.set_xlabel("x[0]", fontsize=8)
        ax.set_ylabel("x[1]", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title(title, fontsize=8, family="monospace")
    fig.tight_layout()
    paths.append(_save(fig, out, "kernel_ard.png", dpi))
    return paths


# ------------------------------------------------------------ toy regression
def toy_data(n: int = 40):
    """Noisy samples of a two-scale sine on [0, 10], with a gap in (4, 6)."""
    # The same data as the snippets in getting-started.md, conditioning.md and fitting.md.
    key_x, key_noise = jax.random.split(jax.random.key(0))
    x = jax.random.uniform(key_x, (n,), minval=0.0, maxval=10.0)
    x = jnp.sort(jnp.where((x > 4.0) & (x < 6.0), x - 2.0, x))
    f = jnp.sin(x) + 0.3 * jnp.sin(3.0 * x)
    y = f + 0.15 * jax.random.normal(key_noise, (n,))
    return x, y


@eqx.filter_jit
def posterior_summary(gp, x, y, xt, key):
    """Posterior mean, latent and predictive variances, and 3 joint samples at ``xt``.

    One compiled program: cheaper to build than the many small ones that the
    same calls compile one by one in eager mode.
    """
    post = gp.condition(x, y)
    mean, var = post.predict(xt)
    _, var_y = post.predict(xt, include_noise=True)
    return mean, var, var_y, post.sample(key, xt, num_samples=3)


def regression_figures(out: Path, quick: bool, dpi: int) -> list[Path]:
    paths = []
    x, y = toy_data()
    gp0 = gl.GP(gk.RBF(), noise=0.1)
    steps_lbfgs = 30 if quick else 100
    steps_adam = 60 if quick else 300

    fitted = gl.fit(gp0, x, y, num_steps=steps_lbfgs)
    adam = gl.fit(gp0, x, y, optimizer=optax.adam(0.05), num_steps=steps_adam)
    gp = fitted.model

    # Posterior mean ± 2σ, latent and predictive, and joint samples.
    xt = jnp.linspace(-1.0, 11.0, 80 if quick else 400)
    mean, var, var_y, samples = posterior_summary(gp, x, y, xt, jax.random.key(5))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.fill_between(
        xt,
        mean - 2 * jnp.sqrt(var_y),
        mean + 2 * jnp.sqrt(var_y),
        color="#3f51b5",
        alpha=0.12,
        lw=0,
        label="±2σ, new observation y*",
    )
    ax.fill_between(
        xt,
        mean - 2 * jnp.sqrt(var),
        mean + 2 * jnp.sqrt(var),
        color="#3f51b5",
        alpha=0.28,
        lw=0,
        label="±2σ, latent f*",
    )
    for j in range(3):
        ax.plot(
            xt,
            samples[j],
            color="#3f51b5",
            lw=0.7,
            alpha=0.6,
            label="posterior samples" if j == 0 else None,
        )
    ax.plot(xt, mean, color="#1a237e", lw=1.8, label="posterior mean")
    ax.plot(x, y, "o", ms=3.5, color=DATA_COLOUR, label="data")
    _style(ax)
    ax.set_xlabel("x")
    ax.legend(fontsize=7, ncol=3, loc="lower left", frameon=False)
    k = gp.kernel
    ax.set_title(
        f"after fit: lengthscale={float(k.lengthscale):.2f}, variance={float(k.variance):.2f}, "
        f"noise={float(gp.noise):.3f}",
        fontsize=9,
    )
    fig.tight_layout()
    paths.append(_save(fig, out, "posterior.png", dpi))

    # The two terms of the log marginal likelihood against the lengthscale.
    ells = jnp.logspace(-1.3, 0.8, 25 if quick else 120)
    n = x.shape[0]

    def terms(ell):
        model = gl.GP(gk.RBF(lengthscale=ell, variance=k.variance), noise=gp.noise)
        total = model.log_marginal_likelihood(x, y)
        K = model.kernel.gram(x) + gp.noise * jnp.eye(n)
        complexity = -jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(K))))
        data_fit = total - complexity + 0.5 * n * math.log(2 * math.pi)
        return total, data_fit, complexity

    total, data_fit, complexity = jax.jit(jax.vmap(terms))(ells)
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    ax.plot(ells, data_fit, color="#e91e63", label="data fit  -½ rᵀ(K+σ²I)⁻¹r")
    ax.plot(ells, complexity, color="#009688", label="complexity  -½ log|K+σ²I|")
    ax.plot(ells, total, color="#1a237e", lw=2, label="log p(y)")
    ax.axvline(float(k.lengthscale), color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_ylim(float(jnp.max(total)) - 90, float(jnp.max(complexity)) + 10)
    ax.set_xlabel("lengthscale (variance and noise at their fitted values)")
    ax.set_ylabel("nats")
    _style(ax)
    ax.legend(fontsize=7, frameon=False, loc="lower left")
    fig.tight_layout()
    paths.append(_save(fig, out, "marginal_likelihood.png", dpi))

    # Loss curves: L-BFGS (default) against Adam from the same start.
    fig, ax = plt.subplots(figsize=(6.5, 3.0))
    ax.plot(jnp.arange(1, steps_adam + 1), adam.losses, color="#ff9800", label="optax.adam(0.05)")
    taken = int(fitted.steps_taken)
    ax.plot(
        jnp.arange(1, taken + 1),
        fitted.losses[:taken],
        color="#1a237e",
        lw=2,
        marker="o",
        ms=3,
        label=f"optax.lbfgs() (default; converged after {taken} steps)",
    )
    ax.set_xscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("-log p(y)  (nats)")
    _style(ax)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    paths.append(_save(fig, out, "loss_curve.png", dpi))
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs (default: docs/images)"
    )
    parser.add_argument("--quick", action="store_true", help="coarse grids and few steps, for CI")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    dpi = 60 if args.quick else 110
    start = time.perf_counter()
    paths = kernel_figures(args.out, args.quick, dpi) + regression_figures(
        args.out, args.quick, dpi
    )
    for path in paths:
        print(path)
    print(f"{len(paths)} figures in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
