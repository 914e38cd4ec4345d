"""Binary classification with the Laplace approximation, against scikit-learn's GPC.

Fisher's iris measurements (four lengths in cm per flower), *Iris versicolor*
against *Iris virginica*: two species that overlap, so the class
probabilities matter. The model is a GP latent function with a logit link,
``p(y = 1 | f) = σ(f)``, ``f ~ GP(0, variance · RBF(lengthscale))`` on
standardised inputs; scikit-learn's ``GaussianProcessClassifier`` makes the
same Laplace approximation with the same kernel (``ConstantKernel * RBF``),
so both fits should reach the same log marginal likelihood. The script fits
both on a fixed 70/30 split and prints the test accuracy, the test log loss,
the fitted log marginal likelihood and the wall time of each.

Run from the repository root::

    python examples/classification.py

Log marginal likelihoods and log losses in nats.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np

import gpjax_lite as gl
from gpjax_lite import kernels, likelihoods
from gpjax_lite.datasets import load_iris_binary


def split(X, y, test_fraction=0.3, seed=0):
    """A fixed stratified split; inputs standardised with the training statistics."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for label in (0.0, 1.0):
        members = np.flatnonzero(y == label)
        test[rng.choice(members, round(test_fraction * len(members)), replace=False)] = True
    centre, scale = X[~test].mean(0), X[~test].std(0)
    X = (X - centre) / scale
    return X[~test], y[~test], X[test], y[test]


def build_model() -> gl.LaplaceGP:
    return gl.LaplaceGP(kernels.RBF(variance=1.0, lengthscale=1.0), likelihoods.Bernoulli("logit"))


def fit_ours(X, y, num_steps: int = 100):
    start = time.perf_counter()
    result = gl.fit(build_model(), X, y, num_steps=num_steps)
    jax.block_until_ready(result.final_loss)
    return result.model, -float(result.final_loss), time.perf_counter() - start


def fit_sklearn(X, y):
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    start = time.perf_counter()
    gpc = GaussianProcessClassifier(ConstantKernel(1.0) * RBF(1.0)).fit(X, y)
    return gpc, float(gpc.log_marginal_likelihood_value_), time.perf_counter() - start


def scores(p, y):
    """Accuracy (threshold ½) and mean log loss (nats) of predicted ``P(y = 1)``."""
    p = np.clip(np.asarray(p), 1e-15, 1 - 1e-15)
    return float(np.mean((p > 0.5) == (y == 1))), float(
        -np.mean(y * np.log(p) + (1 - y) * np.log1p(-p))
    )


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100, help="most L-BFGS steps")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    X_train, y_train, X_test, y_test = split(*load_iris_binary())

    model, lml, wall = fit_ours(X_train, y_train, args.steps)
    _, _, wall_compiled = fit_ours(X_train, y_train, args.steps)  # reuses the compiled loop
    p_ours, _ = model.condition(X_train, y_train).predict_y(X_test)
    accuracy, log_loss = scores(p_ours, y_test)
    summary = {
        "ours": {
            "lml": lml,
            "accuracy": accuracy,
            "log_loss": log_loss,
            "wall_s": wall,
            "wall_compiled_s": wall_compiled,
        }
    }

    try:
        gpc, lml_sk, wall_sk = fit_sklearn(X_train, y_train)
    except ImportError:
        gpc = None
        print("scikit-learn is not installed: printing gpjax_lite's results only")
    if gpc is not None:
        accuracy_sk, log_loss_sk = scores(gpc.predict_proba(X_test)[:, 1], y_test)
        summary["sklearn"] = {
            "lml": lml_sk,
            "accuracy": accuracy_sk,
            "log_loss": log_loss_sk,
            "wall_s": wall_sk,
        }

    print(f"iris, versicolor vs virginica: {len(y_train)} training and {len(y_test)} test flowers")
    print(f"{'':<22}{'lml (nats)':>12}{'accuracy':>10}{'log loss':>10}{'wall time (s)':>15}")
    for name, row in summary.items():
        label = "gpjax_lite LaplaceGP" if name == "ours" else "sklearn GPC"
        print(
            f"{label:<22}{row['lml']:>12.4f}{row['accuracy']:>10.3f}{row['log_loss']:>10.4f}"
            f"{row['wall_s']:>15.3f}"
        )
    print(
        f"fitted variance {float(model.kernel.variance):.4f}, "
        f"lengthscale {float(model.kernel.lengthscale):.4f} (standardised inputs)"
    )
    print(
        f"gpjax_lite's wall time includes compiling the fit loop; a second fit with the same "
        f"shapes reuses it and takes {wall_compiled:.3f} s."
    )
    return summary


if __name__ == "__main__":
    main()
