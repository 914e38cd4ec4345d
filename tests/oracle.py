"""Independent NumPy/SciPy references for the test suite, written once.

Every function here is plain float64 NumPy/SciPy on explicit pairwise
differences, written from the formulas of ``shared/API.md`` and the textbook,
never from the library's code. Tests import them as ``from oracle import ...``
(pytest puts ``tests/`` on ``sys.path`` through its root ``conftest.py``).

Kernels take ``(X, Y, hyperparameters...)`` with ``X`` of shape ``(n,)``
(read as ``(n, 1)``) or ``(n, d)`` and ``Y`` of shape ``(m,)`` or ``(m, d)``,
and return the ``(n, m)`` matrix ``k(X, Y)``. Hyperparameters are positional
or keyword, in the API's order and with its defaults; ``lengthscale`` is a
scalar or a ``(d,)`` sequence (ARD). With ``r = ||(x - y) / lengthscale||``:

=====================  ==================================================
``rbf``                ``variance · exp(-r²/2)``
``matern12``           ``variance · exp(-r)``
``matern32``           ``variance · (1 + √3 r) exp(-√3 r)``
``matern52``           ``variance · (1 + √5 r + 5r²/3) exp(-√5 r)``
``rational_quadratic`` ``variance · (1 + r²/(2α))^(-α)``
``periodic``           ``variance · exp(-2 Σ_i sin²(π (x_i - y_i)/period) / ℓ_i²)``
``cosine``             ``variance · cos(2π ||x - y|| / period)``
``linear``             ``variance · x·y``
``polynomial``         ``variance · (x·y + bias)^degree``
``constant``           ``variance``
``white``              ``variance · I`` for the Gram (``Y=None``), zeros for a cross matrix
=====================  ==================================================

(Rasmussen & Williams 2006, ch. 4; the Matérn forms are their eqs. 4.17.)

The Gaussian-process references follow Rasmussen & Williams 2006, Algorithm
2.1, through ``scipy.linalg.cho_factor``:

* :func:`log_marginal_likelihood` — eq. 2.30 with a mean: ``-½ rᵀA⁻¹r - ½ log|A|
  - n/2 log 2π``, ``A = K + diag(noise)``, ``r = y - mean``;
* :func:`posterior` — eqs. 2.23-2.24: predictive mean and covariance of the
  latent function;
* :func:`rbf_nll_and_grad` — the negative of eq. 2.30 for an RBF + noise GP on
  1-D inputs and its gradient (eq. 5.9) in log-parameters, for SciPy's optimisers.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

__all__ = [
    "as_2d",
    "differences",
    "scaled_distance",
    "rbf",
    "matern12",
    "matern32",
    "matern52",
    "rational_quadratic",
    "periodic",
    "cosine",
    "linear",
    "polynomial",
    "constant",
    "white",
    "log_marginal_likelihood",
    "posterior",
    "rbf_nll_and_grad",
]


# ------------------------------------------------------------------- inputs
def as_2d(X) -> np.ndarray:
    """``X`` as a float64 ``(n, d)`` array (a ``(n,)`` vector becomes one column)."""
    X = np.asarray(X, dtype=np.float64)
    return X[:, None] if X.ndim == 1 else X


def differences(X, Y) -> np.ndarray:
    """All pairwise differences ``x_i - y_j``, shape ``(n, m, d)``."""
    return as_2d(X)[:, None, :] - as_2d(Y)[None, :, :]


def scaled_distance(X, Y, lengthscale) -> np.ndarray:
    """``r[i, j] = ||(x_i - y_j) / lengthscale||``, shape ``(n, m)``."""
    scaled = differences(X, Y) / np.asarray(lengthscale, dtype=np.float64)
    return np.sqrt(np.sum(scaled**2, axis=-1))


# ------------------------------------------------------------------ kernels
def rbf(X, Y, variance=1.0, lengthscale=1.0):
    r = scaled_distance(X, Y, lengthscale)
    return variance * np.exp(-0.5 * r**2)


def matern12(X, Y, variance=1.0, lengthscale=1.0):
    return variance * np.exp(-scaled_distance(X, Y, lengthscale))


def matern32(X, Y, variance=1.0, lengthscale=1.0):
    s = math.sqrt(3.0) * scaled_distance(X, Y, lengthscale)
    return variance * (1.0 + s) * np.exp(-s)


def matern52(X, Y, variance=1.0, lengthscale=1.0):
    r = scaled_distance(X, Y, lengthscale)
    s = math.sqrt(5.0) * r
    return variance * (1.0 + s + 5.0 * r**2 / 3.0) * np.exp(-s)


def rational_quadratic(X, Y, variance=1.0, lengthscale=1.0, alpha=1.0):
    r = scaled_distance(X, Y, lengthscale)
    return variance * (1.0 + r**2 / (2.0 * alpha)) ** (-alpha)


def periodic(X, Y, variance=1.0, lengthscale=1.0, period=1.0):
    s = np.sin(math.pi * differences(X, Y) / period) / np.asarray(lengthscale, dtype=np.float64)
    return variance * np.exp(-2.0 * np.sum(s**2, axis=-1))


def cosine(X, Y, variance=1.0, period=1.0):
    distance = np.sqrt(np.sum(differences(X, Y) ** 2, axis=-1))
    return variance * np.cos(2.0 * math.pi * distance / period)


def linear(X, Y, variance=1.0):
    return variance * (as_2d(X) @ as_2d(Y).T)


def polynomial(X, Y, variance=1.0, bias=1.0, degree=2):
    return variance * (as_2d(X) @ as_2d(Y).T + bias) ** degree


def constant(X, Y, variance=1.0):
    return np.full((as_2d(X).shape[0], as_2d(Y).shape[0]), float(variance))


def white(X, Y=None, variance=1.0):
    """``variance · I`` for the Gram of ``X`` (``Y=None``); zeros for any cross matrix."""
    n = as_2d(X).shape[0]
    if Y is None:
        return float(variance) * np.eye(n)
    return np.zeros((n, as_2d(Y).shape[0]))


# ----------------------------------------------------- Gaussian processes
def _noisy(K, noise) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    return K + np.diag(np.broadcast_to(np.asarray(noise, dtype=np.float64), K.shape[:1]))


def log_marginal_likelihood(K, y, noise=0.0, mean=0.0) -> float:
    """``log N(y | mean, K + diag(noise))`` through one Cholesky factor (R&W eq. 2.30).

    Args:
        K: ``(n, n)`` prior covariance of the latent function at the inputs.
        y: ``(n,)`` targets.
        noise: scalar or ``(n,)`` observation-noise variance.
        mean: scalar or ``(n,)`` prior mean at the inputs.

    Raises:
        numpy.linalg.LinAlgError: if ``K + diag(noise)`` is not positive definite.
    """
    r = np.asarray(y, dtype=np.float64) - mean
    factor = scipy.linalg.cho_factor(_noisy(K, noise), lower=True)
    alpha = scipy.linalg.cho_solve(factor, r)
    half_log_det = np.sum(np.log(np.diag(factor[0])))
    return float(-0.5 * r @ alpha - half_log_det - 0.5 * len(r) * math.log(2.0 * math.pi))


def posterior(K, K_cross, K_test, y, noise=0.0, mean=0.0, mean_test=0.0):
    """Latent posterior mean ``(m,)`` and covariance ``(m, m)`` at test points (R&W eqs. 2.23-2.24).

    ``mean_test + K_crossᵀ A⁻¹ (y - mean)`` and ``K_test - K_crossᵀ A⁻¹ K_cross`` with
    ``A = K + diag(noise)``; ``K_cross`` is ``k(X, X*)`` of shape ``(n, m)`` and
    ``K_test`` is ``k(X*, X*)``.
    """
    r = np.asarray(y, dtype=np.float64) - mean
    factor = scipy.linalg.cho_factor(_noisy(K, noise), lower=True)
    K_cross = np.asarray(K_cross, dtype=np.float64)
    mean_out = mean_test + K_cross.T @ scipy.linalg.cho_solve(factor, r)
    V = scipy.linalg.solve_triangular(factor[0], K_cross, lower=True)
    return mean_out, np.asarray(K_test, dtype=np.float64) - V.T @ V


def rbf_nll_and_grad(theta, X, y):
    """Negative log marginal likelihood of an RBF + noise GP on 1-D inputs, and its gradient.

    ``theta = log(variance, lengthscale, noise)``. The gradient is R&W eq. 5.9,
    ``∂NLL/∂θ_j = ½ tr((A⁻¹ - ααᵀ) ∂A/∂θ_j)`` with ``α = A⁻¹y``. Returns
    ``(inf, zeros)`` where ``A`` does not factorise, so SciPy's line searches back off.
    """
    variance, lengthscale, noise = np.exp(theta)
    n = X.shape[0]
    D2 = (X[:, None] - X[None, :]) ** 2
    Kf = variance * np.exp(-0.5 * D2 / lengthscale**2)
    A = Kf + noise * np.eye(n)
    try:
        c, lower = scipy.linalg.cho_factor(A, lower=True)
    except np.linalg.LinAlgError:
        return np.inf, np.zeros(3)
    alpha = scipy.linalg.cho_solve((c, lower), y)
    nll = 0.5 * y @ alpha + np.sum(np.log(np.diag(c))) + 0.5 * n * math.log(2 * math.pi)
    A_inv, info = scipy.linalg.lapack.dpotri(c, lower=1)
    assert info == 0
    A_inv = np.tril(A_inv) + np.tril(A_inv, -1).T
    W = A_inv - np.outer(alpha, alpha)
    grad = 0.5 * np.array(
        [np.sum(W * Kf), np.sum(W * Kf * D2) / lengthscale**2, noise * np.trace(W)]
    )
    return nll, grad
