"""Synthetic data and one common (NumPy/SciPy, float64) marginal likelihood.

Hyperparameters are passed around as plain dicts for an RBF + noise model::

    {"variance": σ_f², "lengthscale": ℓ, "noise": σ_n²}
    k(x, y) = σ_f² exp(-|x - y|² / (2 ℓ²)),   y_i = f(x_i) + N(0, σ_n²)

Every fitted model, whoever fitted it, is scored by :func:`mll_float64`.
"""

from __future__ import annotations

import numpy as np

#: Hyperparameters the regression data are drawn with (roughly what a fit finds).
TRUE_HYPERS = {"variance": 1.0, "lengthscale": 0.8, "noise": 0.01}
#: The common starting point of every fit (scikit-learn's defaults: all ones).
INIT_HYPERS = {"variance": 1.0, "lengthscale": 1.0, "noise": 1.0}
#: Hyperparameters of the kernels timed in the Gram case.
GRAM_HYPERS = {"variance": 1.0, "lengthscale": 1.3, "period": 2.0}


def inputs(n: int, d: int, seed: int = 0, dtype="float64") -> np.ndarray:
    """``(n, d)`` inputs uniform on ``[0, 10]^d``."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 10.0, size=(n, d)).astype(dtype)


def target(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """A smooth function of the first column plus noise of variance ``TRUE_HYPERS['noise']``."""
    rng = np.random.default_rng(seed + 1000)
    x = X[:, 0]
    f = np.sin(x) + 0.5 * np.sin(3.1 * x + 0.3) + 0.2 * np.cos(0.7 * x)
    return (f + np.sqrt(TRUE_HYPERS["noise"]) * rng.standard_normal(x.shape)).astype(X.dtype)


def regression(n: int, d: int = 1, seed: int = 0, dtype="float64"):
    X = inputs(n, d, seed, dtype)
    return X, target(X, seed)


def batch(batch_size: int, n: int, seed: int = 0, dtype="float64"):
    """``batch_size`` independent 1-D datasets: ``X`` ``(B, n, 1)``, ``y`` ``(B, n)``."""
    Xs, ys = zip(*(regression(n, 1, seed + i, dtype) for i in range(batch_size)))
    return np.stack(Xs), np.stack(ys)


def mll_float64(X, y, hypers: dict) -> float:
    """Log marginal likelihood of an RBF + noise GP, float64 NumPy/SciPy (the common judge)."""
    import scipy.linalg

    X = np.asarray(X, np.float64).reshape(len(y), -1)
    y = np.asarray(y, np.float64)
    ls = float(hypers["lengthscale"])
    sq = np.sum(X**2, 1)
    r2 = np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0) / ls**2
    K = float(hypers["variance"]) * np.exp(-0.5 * r2) + float(hypers["noise"]) * np.eye(len(y))
    try:
        c, lower = scipy.linalg.cho_factor(K, lower=True)
    except np.linalg.LinAlgError:
        return float("nan")
    alpha = scipy.linalg.cho_solve((c, lower), y)
    return float(-0.5 * y @ alpha - np.sum(np.log(np.diag(c))) - 0.5 * len(y) * np.log(2 * np.pi))
