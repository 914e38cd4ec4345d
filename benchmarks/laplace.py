"""LaplaceGP against scikit-learn's GaussianProcessClassifier (the same Laplace approximation).

Run from the repository root::

    python -m benchmarks.laplace --quick        # n = 200, 500: about a minute on one core
    python -m benchmarks.laplace                # n = 500, 1000, 2000 (the issue's grid)

Self-contained (no other module of ``benchmarks/`` is imported): ``run(cfg)``
returns a list of row dicts, ``main`` prints them as a Markdown table and
writes ``--json`` if asked. To add it to the shared runner, call
``benchmarks.laplace.run(benchmarks.laplace.Config(...))`` and keep its rows.

What is measured (float64, one thread, binary labels from
``sign(sin(2 x₀) + cos(x₁) + ε)`` on ``[-2, 2]²``; logit link; kernel
``variance · RBF(lengthscale)``, sklearn's ``ConstantKernel * RBF``):

* **lml + gradient**: ``jax.jit(jax.value_and_grad(lml))`` for gpjax_lite (the
  first call includes tracing and compiling, reported as ``first_s``; then the
  median of ``repeats`` calls), against sklearn's
  ``log_marginal_likelihood(theta, eval_gradient=True)`` (median of ``repeats``);
  both at the same ``θ``, and the two values' difference is reported as a check.
* **fit**: sklearn's ``GaussianProcessClassifier(...).fit`` with its default
  L-BFGS-B (no restarts) against ``gpjax_lite.fit`` (L-BFGS) from the same
  starting point, wall time including compilation, and the log marginal
  likelihood each reaches.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

import gpjax_lite as gl
from gpjax_lite import kernels, likelihoods

START = (1.0, 1.0)  # (variance, lengthscale) where both fits start and the lml is timed


@dataclasses.dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (500, 1000, 2000)
    repeats: int = 5
    fit: bool = True
    seed: int = 0


def make_data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 2))
    y = (np.sin(2.0 * X[:, 0]) + np.cos(X[:, 1]) + 0.5 * rng.standard_normal(n) > 0.5)
    return X, y.astype(np.float64)


def _block(tree):
    for leaf in jax.tree_util.tree_leaves(tree):
        if hasattr(leaf, "block_until_ready"):
            leaf.block_until_ready()
    return tree


def _timed(fn):
    start = time.perf_counter()
    out = _block(fn())
    return time.perf_counter() - start, out


def _median_time(fn, repeats: int) -> float:
    return statistics.median(_timed(fn)[0] for _ in range(repeats))


def _model(variance, lengthscale):
    return gl.LaplaceGP(kernels.RBF(variance=variance, lengthscale=lengthscale),
                        likelihoods.Bernoulli("logit"))


def _sklearn_gpc(optimizer):
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    kernel = ConstantKernel(START[0], (1e-5, 1e5)) * RBF(START[1], (1e-5, 1e5))
    return GaussianProcessClassifier(kernel, optimizer=optimizer)


def bench_lml(n: int, cfg: Config) -> dict:
    X, y = make_data(n, cfg.seed)
    value_and_grad = jax.jit(jax.value_and_grad(lambda m: m.log_marginal_likelihood(X, y)))
    model = _model(*START)
    first_s, (ours, _) = _timed(lambda: value_and_grad(model))
    ours_s = _median_time(lambda: value_and_grad(model), cfg.repeats)

    gpc = _sklearn_gpc(None).fit(X, y)
    theta = np.log(START)
    theirs, _ = gpc.log_marginal_likelihood(theta, eval_gradient=True)
    sklearn_s = _median_time(lambda: gpc.log_marginal_likelihood(theta, eval_gradient=True),
                             cfg.repeats)
    return {
        "case": "lml+grad", "n": n, "ours_first_s": first_s, "ours_s": ours_s,
        "sklearn_s": sklearn_s, "speedup": sklearn_s / ours_s,
        "speedup_with_compile": sklearn_s / first_s,
        "lml_abs_diff": abs(float(ours) - float(theirs)),
    }


def bench_fit(n: int, cfg: Config) -> dict:
    X, y = make_data(n, cfg.seed)
    sklearn_s, gpc = _timed(lambda: _sklearn_gpc("fmin_l_bfgs_b").fit(X, y))
    sklearn_lml = float(gpc.log_marginal_likelihood_value_)
    ours_s, result = _timed(lambda: gl.fit(_model(*START), X, y))
    ours_lml = -float(result.final_loss)
    return {
        "case": "fit", "n": n, "ours_first_s": ours_s, "ours_s": ours_s, "sklearn_s": sklearn_s,
        "speedup": sklearn_s / ours_s, "speedup_with_compile": sklearn_s / ours_s,
        "lml_ours": ours_lml, "lml_sklearn": sklearn_lml,
        "steps": int(result.steps_taken),
    }


def run(cfg: Config = Config()) -> list[dict]:
    """Every measurement of the module, one dict per (case, n)."""
    rows = [bench_lml(n, cfg) for n in cfg.sizes]
    if cfg.fit:
        rows += [bench_fit(n, cfg) for n in cfg.sizes]
    return rows


def markdown(rows: list[dict]) -> str:
    lines = [
        (
            "| case | n | gpjax_lite first call (s) | gpjax_lite (s) | sklearn (s) | speed-up "
            "| speed-up incl. compile | check |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in rows:
        if r["case"] == "fit":
            check = f"lml {r['lml_ours']:.6f} vs sklearn {r['lml_sklearn']:.6f}"
        else:
            check = f"|Δ lml| = {r['lml_abs_diff']:.1e}"
        lines.append(
            f"| {r['case']} | {r['n']} | {r['ours_first_s']:.3f} | {r['ours_s']:.4f} | "
            f"{r['sklearn_s']:.4f} | {r['speedup']:.2f}× | {r['speedup_with_compile']:.2f}× | "
            f"{check} |"
        )
    return "\n".join(lines)


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 200, 500 and 3 repeats")
    parser.add_argument("--no-fit", action="store_true", help="skip the fits")
    parser.add_argument("--json", help="write the rows to this JSON file")
    args = parser.parse_args(argv)
    cfg = Config(sizes=(200, 500), repeats=3) if args.quick else Config()
    cfg = dataclasses.replace(cfg, fit=not args.no_fit)
    rows = run(cfg)
    print(markdown(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
