"""The stochastically driven damped simple harmonic oscillator (SHO) kernel.

A quasi-periodic kernel on one input column, the covariance of the solution of

    f''(t) + (ω / Q) f'(t) + ω² f(t) = white noise

(Foreman-Mackey et al. 2017, "Fast and scalable Gaussian process modeling
with applications to astronomical time series", eq. 20; Anderson et al.
1990). With ``τ = |x - y|``, ``ω = omega``, ``Q = quality`` and the damping
rate ``a = ω / (2Q)``::

    k(τ) = variance · exp(-a τ) · [cos(η ω τ) + sin(η ω τ) / (2 η Q)],  η = sqrt(1 - 1/(4Q²))

for ``Q > ½`` (under-damped: a decaying oscillation), ``variance · exp(-ωτ)(1 + ωτ)``
at ``Q = ½`` (critically damped: the Matérn-3/2 kernel with lengthscale
``√3 / ω``), and the same formula with ``cosh``/``sinh`` and
``η = sqrt(1/(4Q²) - 1)`` for ``Q < ½`` (over-damped).

The three cases are one entire function. Writing ``z = (η ω τ)²`` (negative
below ``Q = ½``)::

    k(τ) = variance · exp(-a τ) · [C(z) + a τ S(z)],   C(z) = cos √z,   S(z) = sin √z / √z,

where ``C`` and ``S`` are power series in ``z`` (``cosh √-z`` and
``sinh √-z / √-z`` for ``z < 0``). :func:`damped_cos_sinc` evaluates them with
a Taylor series near ``z = 0``, so the value and every derivative in
``quality`` are continuous and finite through ``Q = ½``. The same functions
give the SHO's state-space transition matrix (see
``gpjax_lite/solvers/_sde.py``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from ..parameters import positive_field
from .base import Kernel
from .radial import safe_sqrt
from .stationary import constant_diagonal

#: Below this ``|z|`` the Taylor series (six terms) is used: its truncation
#: error, ``|z|⁶ / 12!`` relative, is under 4e-17 there.
SERIES_RADIUS = 0.05

# Taylor coefficients of C(z) = Σ (-z)^k / (2k)! and S(z) = Σ (-z)^k / (2k + 1)!.
_COS_COEFFICIENTS = tuple((-1) ** k / math.factorial(2 * k) for k in range(6))
_SINC_COEFFICIENTS = tuple((-1) ** k / math.factorial(2 * k + 1) for k in range(6))


def _horner(coefficients, z):
    value = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        value = value * z + c
    return value


def _series(z, damping, near):
    """The Taylor branch of :func:`damped_cos_sinc` where ``near``, zeros elsewhere."""
    decay = jnp.exp(-damping)
    z_series = jnp.where(near, z, 0.0)
    return decay * _horner(_COS_COEFFICIENTS, z_series), decay * _horner(
        _SINC_COEFFICIENTS, z_series
    )


def _oscillating(z, damping):
    """:func:`damped_cos_sinc` for ``z > -SERIES_RADIUS`` (series below the radius, cos/sin above)."""
    small = z < SERIES_RADIUS
    cos_series, sinc_series = _series(z, damping, small)
    decay = jnp.exp(-damping)
    root = jnp.sqrt(jnp.where(small, 1.0, z))
    cos = jnp.where(small, cos_series, decay * jnp.cos(root))
    sinc = jnp.where(small, sinc_series, decay * jnp.sin(root) / root)
    return cos, sinc


def _growing(z, damping):
    """:func:`damped_cos_sinc` for ``z < SERIES_RADIUS`` (series above ``-SERIES_RADIUS``).

    ``exp(√-z - d)`` stays finite when ``d ≥ √-z`` (true for every damped
    oscillator: the decay ``a τ`` always exceeds ``√-z``), where ``cosh`` alone
    would overflow.
    """
    small = z > -SERIES_RADIUS
    cos_series, sinc_series = _series(z, damping, small)
    u = jnp.sqrt(jnp.where(small, 1.0, -z))
    scale = jnp.exp(u - damping)
    gap = -jnp.expm1(-2.0 * u)  # 1 - e^{-2u}
    cos = jnp.where(small, cos_series, scale * 0.5 * (2.0 - gap))
    sinc = jnp.where(small, sinc_series, scale * gap / (2.0 * u))
    return cos, sinc


def damped_cos_sinc(z, damping):
    """``(exp(-d) C(z), exp(-d) S(z))`` with ``C(z) = cos √z`` and ``S(z) = sin √z / √z``.

    Both are entire functions of ``z`` (``cosh √-z`` and ``sinh √-z / √-z`` for
    ``z < 0``), evaluated by a Taylor series for ``|z| <`` :data:`SERIES_RADIUS`,
    so values and gradients are smooth through ``z = 0``. For ``z < 0`` the
    exponentials are combined as ``exp(√-z - d)``, which stays finite when
    ``d ≥ √-z`` (true for every damped oscillator: the decay ``a τ`` always
    exceeds ``√-z``), where ``cosh`` alone would overflow.

    Every branch is evaluated for every element (``z`` of both signs may
    occur); :func:`damped_cos_sinc_one_sign` evaluates only one.

    Args:
        z: real array, any shape (``(η ω τ)²`` for the SHO).
        damping: ``d``, an array broadcastable with ``z`` (``a τ`` for the SHO).

    Returns:
        Two arrays of the broadcast shape.
    """
    z, damping = jnp.broadcast_arrays(z, damping)
    cos_osc, sinc_osc = _oscillating(z, damping)
    cos_grow, sinc_grow = _growing(z, damping)
    growing = z <= -SERIES_RADIUS
    return jnp.where(growing, cos_grow, cos_osc), jnp.where(growing, sinc_grow, sinc_osc)


def damped_cos_sinc_one_sign(z, damping, oscillating):
    """:func:`damped_cos_sinc` where every ``z`` has the sign of ``oscillating`` (a scalar bool).

    For the SHO, ``z = (ωτ)² (1 - 1/(4Q²))`` has the sign of ``Q - ½`` for every
    ``τ``, so one branch (series and ``cos``/``sin``, or series and the
    exponentials) serves all ``τ``: half the transcendental functions of
    :func:`damped_cos_sinc`, with the same values. ``oscillating`` may be traced
    (a ``lax.cond``; under ``vmap`` over it, both branches run, still finite).
    """
    z, damping = jnp.broadcast_arrays(z, damping)
    return jax.lax.cond(oscillating, _oscillating, _growing, z, damping)


def sho_damping_and_z(omega, quality, tau):
    """The SHO's damping rate ``a = ω/(2Q)`` and ``z = (ω τ)² (1 - 1/(4Q²))`` (``z = (η ω τ)²``)."""
    a = omega / (2.0 * quality)
    z = (omega * tau) ** 2 * (1.0 - 0.25 / quality**2)
    return a, z


class SHO(Kernel):
    """Stochastically driven damped harmonic oscillator kernel (one input column).

    ``k(x, y) = variance · exp(-ωτ/(2Q)) · [cos(ηωτ) + sin(ηωτ)/(2ηQ)]``, ``τ = |x - y|``,
    ``η = sqrt(1 - 1/(4Q²))``, continued through ``Q = ½`` (``exp(-ωτ)(1 + ωτ)``)
    to ``cosh``/``sinh`` for ``Q < ½`` (Foreman-Mackey et al. 2017, eq. 20; see
    the module docs for the one formula used for all ``Q``).

    ``Q ≫1`` gives a long-lived oscillation at angular frequency ``≈ ω`` (units of
    radians per unit of ``x``), ``Q = 1/√2`` (the default) a non-oscillating
    process with a sharp spectral cut-off above ``ω``, ``Q < ½`` a smooth
    over-damped one. Its state-space form has two states, so
    :class:`~gpjax_lite.solvers.StateSpace` handles it in ``O(n)``.

    Attributes:
        variance: ``k(x, x)``, positive (default 1.0).
        omega: the undamped angular frequency ``ω`` (radians per unit of ``x``),
            positive (default 1.0).
        quality: the quality factor ``Q``, positive (default ``1/√2``).

    Raises:
        ValueError: at construction, if a hyperparameter is not positive and
            finite or not a scalar; when evaluated, on inputs with more than one
            active column (select one with ``active_dims=(j,)``).
    """

    variance: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    omega: Float[Array, ""] = positive_field(1.0, shape="scalar", kw_only=True)
    quality: Float[Array, ""] = positive_field(1 / math.sqrt(2.0), shape="scalar", kw_only=True)

    def _check_active_input_dim(self, d):
        if d != 1:
            raise ValueError(
                f"`SHO` acts on one input column, but the inputs have d = {d} active columns: "
                "select one with `active_dims=(j,)`."
            )

    def evaluate(self, x, y):
        tau = safe_sqrt(jnp.sum((x - y) ** 2))
        a, z = sho_damping_and_z(self.omega, self.quality, tau)
        cos, sinc = damped_cos_sinc(z, a * tau)
        return self.variance * (cos + a * tau * sinc)

    def _cross(self, X, Y):
        tau = jnp.abs(X[:, 0, None] - Y[None, :, 0])
        a, z = sho_damping_and_z(self.omega, self.quality, tau)
        cos, sinc = damped_cos_sinc(z, a * tau)
        return self.variance * (cos + a * tau * sinc)

    def _diag(self, X):
        return constant_diagonal(self.variance, X)
