"""Observation models ``p(y | f)`` for a latent Gaussian-process value ``f``.

Each likelihood is an ``equinox.Module`` (a pytree: its hyperparameters are
leaves that :func:`gpjax_lite.fit` optimises) with

* ``log_prob(f, y)`` → ``(n,)``, the elementwise ``log p(y_i | f_i)``, written
  to stay finite wherever the true value is (``log Φ`` through
  ``jax.scipy.special.log_ndtr``, ``log σ`` through ``softplus``);
* ``predict(mean, variance)`` → ``(mean_y, variance_y)``, the moments of ``y``
  when ``f ~ N(mean, variance)``: in closed form where one exists, else by
  Gauss–Hermite quadrature with :data:`NUM_PREDICT_NODES` nodes;
* ``expected_log_prob(y, mean, variance)`` → ``(n,)``,
  ``E_{f ~ N(mean, variance)}[log p(y | f)]`` (the SVGP data term): closed form
  for :class:`Gaussian` and :class:`Poisson`, else Gauss–Hermite with
  :data:`NUM_QUADRATURE_NODES` nodes;
* ``log_prob_derivatives(f, y)`` → ``(∂ log p/∂f, ∂² log p/∂f²)``, each
  ``(n,)``, in closed form (what the Laplace approximation's Newton steps need);
* ``check_targets(y)``: the observations as a float array, or a
  ``ValueError`` naming ``y`` if one lies outside the support (NaN included).
  It runs on concrete arrays only (values of tracers cannot be inspected).

Gauss–Hermite quadrature (Abramowitz & Stegun 1964, 25.4.46) with nodes ``x_k``
and weights ``w_k`` of ``∫ e^{-x²} g(x) dx``::

    E[g(f)] ≈ π^{-1/2} Σ_k w_k g(mean + √(2 variance) x_k),     f ~ N(mean, variance)

It is exact for polynomials of degree ``2K - 1``; for the logistic function,
whose poles at ``±iπ`` limit the rate, 128 nodes reach ~3e-8 for latent
variances up to 16 (checked against adaptive quadrature in the tests).
"""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, log_ndtr, ndtr
from jaxtyping import Array, Float

from ._checks import check_positive, is_concrete
from ._module import Module
from .parameters import positive_field

__all__ = [
    "NUM_PREDICT_NODES",
    "NUM_QUADRATURE_NODES",
    "Bernoulli",
    "Gaussian",
    "Likelihood",
    "Poisson",
    "StudentT",
    "gauss_hermite_expectation",
]

#: Gauss–Hermite nodes for ``predict`` by quadrature (the logit ``P(y = 1)``):
#: accurate to ~3e-8 for latent variances up to 16 (the contract asks 1e-6).
NUM_PREDICT_NODES = 128

#: Gauss–Hermite nodes for ``expected_log_prob`` by quadrature (the SVGP data
#: term of ``Bernoulli`` and ``StudentT``): for the logit, relative error
#: ~3e-10 for latent variances up to 4 and ~6e-6 up to 16 (GPflow's 20 nodes
#: give 5e-4 there); for the Student-t, whose log density has singularities at
#: ``y - f = ±i·scale·√df``, ~2e-5 when the latent standard deviation is a few
#: times ``scale``.
NUM_QUADRATURE_NODES = 50

_LOG_2PI = math.log(2.0 * math.pi)


def _hermite_rule(num_nodes: int):
    """Nodes and weights of the probabilists' form ``E[g(z)], z ~ N(0, 1)``: ``(√2 x_k, w_k/√π)``."""
    x, w = np.polynomial.hermite.hermgauss(num_nodes)
    return np.sqrt(2.0) * x, w / np.sqrt(np.pi)


_RULES = {num: _hermite_rule(num) for num in (NUM_PREDICT_NODES, NUM_QUADRATURE_NODES)}


def gauss_hermite_expectation(fn, mean, variance, num_nodes: int = NUM_QUADRATURE_NODES):
    """``E[fn(f)]`` for ``f ~ N(mean, variance)`` elementwise, by Gauss–Hermite quadrature.

    Args:
        fn: an elementwise function of a latent array ``(n, K)`` → ``(n, K)``.
        mean: latent means ``(n,)``.
        variance: latent variances ``(n,)`` (non-negative).
        num_nodes: quadrature nodes ``K``.

    Returns:
        ``(n,)``: ``Σ_k (w_k/√π) fn(mean + √(2 variance) x_k)``.
    """
    nodes, weights = _RULES.get(num_nodes) or _hermite_rule(num_nodes)
    dtype = jnp.result_type(mean, variance)
    # Outer weights underflow to 0 in float32; drop those nodes, so that an
    # infinite fn value far out (a log-probability) cannot turn 0·inf into NaN.
    keep = weights > np.finfo(dtype).tiny
    nodes = jnp.asarray(nodes[keep], dtype)
    weights = jnp.asarray(weights[keep], dtype)
    f = mean[..., None] + jnp.sqrt(jnp.maximum(variance, 0.0))[..., None] * nodes
    return jnp.sum(fn(f) * weights, axis=-1)


class Likelihood(Module):
    """Base class of the observation models ``p(y | f)``; see the module docs."""

    @abc.abstractmethod
    def _log_prob(self, f, y):
        """``log p(y | f)`` elementwise, broadcasting ``f`` against ``y``; no checks."""

    @abc.abstractmethod
    def _in_support(self, y: np.ndarray) -> np.ndarray:
        """Which concrete observations lie in the support (NaN never does)."""

    @abc.abstractmethod
    def _support(self) -> str:
        """The support in words, for error messages."""

    @abc.abstractmethod
    def predict(self, mean, variance):
        """``(mean_y, variance_y)``, each ``(m,)``: the moments of ``y`` for ``f ~ N(mean, variance)``."""

    def log_prob_derivatives(self, f, y):
        """``(∂/∂f, ∂²/∂f²)`` of ``log p(y | f)`` elementwise, each ``(n,)``.

        The default differentiates :meth:`log_prob` with ``jax.grad``; the
        built-in likelihoods override it with closed forms.
        """
        first = jax.vmap(jax.grad(lambda fi, yi: self._log_prob(fi, yi)))
        second = jax.vmap(jax.grad(jax.grad(lambda fi, yi: self._log_prob(fi, yi))))
        return first(f, y), second(f, y)

    def check_targets(self, y, name: str = "y") -> jax.Array:
        """``y`` as a floating-point array; ``ValueError`` naming ``name`` if a concrete entry
        lies outside the support (NaN included). Tracers pass unchecked."""
        y = jnp.asarray(y)
        if not jnp.issubdtype(y.dtype, jnp.inexact):
            y = y.astype(jnp.result_type(float))
        if is_concrete(y):
            values = np.asarray(y)
            ok = self._in_support(values)
            if not np.all(ok):
                bad = values[~ok].ravel()[:3]
                raise ValueError(
                    f"`{name}` must lie in the support of {type(self).__name__} "
                    f"({self._support()}), but {int(np.size(ok) - np.count_nonzero(ok))} of "
                    f"its entries do not, e.g. {bad.tolist()}."
                )
        return y

    def log_prob(self, f, y) -> Float[Array, " n"]:
        """``log p(y_i | f_i)`` for each ``i`` (nats).

        Args:
            f: latent values ``(n,)`` (or a scalar, broadcast against ``y``).
            y: observations ``(n,)`` in the likelihood's support.

        Returns:
            ``(n,)`` log densities (log probabilities for discrete ``y``).

        Raises:
            ValueError: (concrete arrays) if an entry of ``y`` is outside the
                support or NaN, or if ``f`` and ``y`` have different shapes.
        """
        y = self.check_targets(y)
        f = jnp.asarray(f)
        if f.ndim != 0 and f.shape != y.shape:
            raise ValueError(
                f"`f` has shape {f.shape} but `y` has shape {y.shape}: they must agree."
            )
        return self._log_prob(f, y)

    def expected_log_prob(self, y, mean, variance) -> Float[Array, " n"]:
        """``E[log p(y_i | f_i)]`` for ``f_i ~ N(mean_i, variance_i)``, ``(n,)`` (nats).

        Gauss–Hermite quadrature with :data:`NUM_QUADRATURE_NODES` nodes unless a
        subclass has a closed form. ``y`` is not checked here (models check it once).
        """
        return gauss_hermite_expectation(lambda f: self._log_prob(f, y[..., None]), mean, variance)

    def _observation_noise(self):
        """The Gaussian noise variance, or ``None`` for a non-Gaussian likelihood."""
        return


# --------------------------------------------------------------------- Bernoulli
class Bernoulli(Likelihood):
    """Binary observations, ``p(y = 1 | f) = Φ(f)`` (probit) or ``σ(f) = 1/(1 + e^{-f})`` (logit).

    With ``s = 2y - 1`` (``±1``), ``log p(y | f) = log Φ(s f)`` or
    ``log σ(s f) = -softplus(-s f)``, finite for every finite ``f``
    (Rasmussen & Williams 2006, §3.3 and Table 3.1).

    Attributes:
        link: ``"probit"`` (default) or ``"logit"``, a static setting.

    Raises:
        ValueError: for any other ``link``; for ``y`` not in ``{0, 1}``.
    """

    link: str = eqx.field(default="probit", static=True)

    def __check_init__(self):
        if self.link not in ("probit", "logit"):
            raise ValueError(f"`link` must be 'probit' or 'logit', got {self.link!r}.")

    def _in_support(self, y):
        return (y == 0) | (y == 1)

    def _support(self):
        return "0 or 1"

    def _log_prob(self, f, y):
        z = (2.0 * y - 1.0) * f
        if self.link == "probit":
            return log_ndtr(z)
        return -jax.nn.softplus(-z)

    def log_prob_derivatives(self, f, y):
        """Closed forms (R&W 2006, eqs. 3.15–3.16), stable for large ``|f|``.

        logit: ``y - σ(f)`` and ``-σ(f)(1 - σ(f))``; probit, with ``s = 2y - 1`` and
        ``r = N(f)/Φ(s f)`` (formed as ``exp(log N(f) - log Φ(s f))``): ``s r`` and
        ``-r² - s f r``.
        """
        s = 2.0 * y - 1.0
        if self.link == "logit":
            p = jax.nn.sigmoid(f)
            return y - p, -p * (1.0 - p)
        r = jnp.exp(-0.5 * f**2 - 0.5 * _LOG_2PI - log_ndtr(s * f))
        return s * r, -r * (r + s * f)

    def predict(self, mean, variance):
        """``P(y = 1)`` and ``P(1 - P)``, each ``(m,)``.

        probit: ``Φ(mean / √(1 + variance))`` exactly (R&W eq. 3.82); logit: by
        Gauss–Hermite quadrature with :data:`NUM_PREDICT_NODES` nodes.
        """
        mean, variance = jnp.asarray(mean), jnp.asarray(variance)
        if self.link == "probit":
            p = ndtr(mean / jnp.sqrt(1.0 + variance))
        else:
            p = gauss_hermite_expectation(jax.nn.sigmoid, mean, variance, NUM_PREDICT_NODES)
        return p, p * (1.0 - p)


# ---------------------------------------------------------------------- Poisson
class Poisson(Likelihood):
    """Counts, ``y ~ Poisson(λ)`` with rate ``λ = exp(f)`` (the log link).

    ``log p(y | f) = y f - e^f - log y!``. ``y`` holds non-negative integers
    (as floats).
    """

    def _in_support(self, y):
        return np.isfinite(y) & (y >= 0) & (np.floor(y) == y)

    def _support(self):
        return "non-negative integers"

    def _log_prob(self, f, y):
        return y * f - jnp.exp(f) - gammaln(y + 1.0)

    def log_prob_derivatives(self, f, y):
        """``y - e^f`` and ``-e^f`` (so the Laplace ``W`` is ``e^f̂``, the fitted rate)."""
        rate = jnp.exp(f)
        return y - rate, -rate

    def expected_log_prob(self, y, mean, variance):
        """Closed form: ``y·mean - exp(mean + variance/2) - log y!`` (the log-normal mean)."""
        return y * mean - jnp.exp(mean + 0.5 * variance) - gammaln(y + 1.0)

    def predict(self, mean, variance):
        """``E[y] = exp(mean + variance/2)``; ``Var[y] = E[y] + (e^variance - 1) E[y]²``.

        The law of total variance: ``E[Var(y|f)] = E[λ]`` and ``Var(E[y|f]) =
        Var(λ)`` for the log-normal ``λ = e^f``.
        """
        mean, variance = jnp.asarray(mean), jnp.asarray(variance)
        rate = jnp.exp(mean + 0.5 * variance)
        return rate, rate + jnp.expm1(variance) * rate**2


# --------------------------------------------------------------------- Student-t
class StudentT(Likelihood):
    """Heavy-tailed real observations, ``y = f + scale · t_df``.

    ``log p(y | f) = log Γ((ν+1)/2) - log Γ(ν/2) - ½ log(νπ) - log scale
    - (ν+1)/2 · log(1 + ((y - f)/scale)²/ν)`` with ``ν = df``.

    Not log-concave in ``f``, so the Laplace approximation's ``W`` may be
    negative: :class:`~gpjax_lite.LaplaceGP` does not accept it (use SVGP).

    Attributes:
        df: degrees of freedom ``ν`` (positive; default 4.0).
        scale: scale of the noise (positive; default 1.0).
    """

    df: Float[Array, ""] = positive_field(4.0)
    scale: Float[Array, ""] = positive_field(1.0)

    def __check_init__(self):
        check_positive("df", self.df)
        check_positive("scale", self.scale)

    def _in_support(self, y):
        return np.isfinite(y)

    def _support(self):
        return "finite reals"

    def _log_prob(self, f, y):
        nu = self.df
        z = (y - f) / self.scale
        return (
            gammaln(0.5 * (nu + 1.0))
            - gammaln(0.5 * nu)
            - 0.5 * jnp.log(nu * jnp.pi)
            - jnp.log(self.scale)
            - 0.5 * (nu + 1.0) * jnp.log1p(z**2 / nu)
        )

    def log_prob_derivatives(self, f, y):
        """With ``r = y - f`` and ``c = ν scale²``: ``(ν+1) r/(c + r²)`` and
        ``(ν+1)(r² - c)/(c + r²)²`` (R&W 2006, Table 3.1 footnote; positive for ``r² > c``)."""
        r = y - f
        c = self.df * self.scale**2
        denominator = c + r**2
        return (self.df + 1.0) * r / denominator, (self.df + 1.0) * (r**2 - c) / denominator**2

    def predict(self, mean, variance):
        """``mean`` and ``variance + scale²·ν/(ν - 2)``; infinite variance for ``ν ≤ 2``."""
        mean, variance = jnp.asarray(mean), jnp.asarray(variance)
        nu = self.df
        noise = jnp.where(
            nu > 2.0, self.scale**2 * nu / jnp.where(nu > 2.0, nu - 2.0, 1.0), jnp.inf
        )
        return mean, variance + noise


# --------------------------------------------------------------------- Gaussian
class Gaussian(Likelihood):
    """Gaussian observations, ``y = f + N(0, noise)``.

    ``log p(y | f) = -½ log(2π noise) - (y - f)²/(2 noise)``.

    Attributes:
        noise: the noise *variance* (positive): a scalar, or ``(n,)`` per point.
    """

    noise: Float[Array, "*n"] = positive_field(1e-2)

    def __check_init__(self):
        if jnp.ndim(self.noise) > 1:
            raise ValueError(
                f"`noise` must be a scalar or have shape (n,), got shape {jnp.shape(self.noise)}."
            )
        check_positive("noise", self.noise)

    def _in_support(self, y):
        return np.isfinite(y)

    def _support(self):
        return "finite reals"

    def _log_prob(self, f, y):
        return -0.5 * (_LOG_2PI + jnp.log(self.noise)) - 0.5 * (y - f) ** 2 / self.noise

    def log_prob_derivatives(self, f, y):
        """``(y - f)/noise`` and ``-1/noise``."""
        return (y - f) / self.noise, jnp.broadcast_to(-1.0 / self.noise, jnp.shape(y - f))

    def expected_log_prob(self, y, mean, variance):
        """Closed form: ``-½ log(2π noise) - ((y - mean)² + variance)/(2 noise)``."""
        return (
            -0.5 * (_LOG_2PI + jnp.log(self.noise))
            - 0.5 * ((y - mean) ** 2 + variance) / self.noise
        )

    def predict(self, mean, variance):
        """``mean`` and ``variance + noise``."""
        mean, variance = jnp.asarray(mean), jnp.asarray(variance)
        return mean, variance + self.noise

    def _observation_noise(self):
        return self.noise
