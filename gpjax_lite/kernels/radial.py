"""Even functions of a distance ``r``, written as functions of ``q = r²`` with correct derivatives.

Kernels compute the squared distance ``q = r²`` (no square root: it is
smooth in the inputs) and apply a profile to it. A profile that involves ``r``
itself (Matérn, cosine) needs ``sqrt(q)``, whose derivative is infinite at
``q = 0``; written naively, automatic differentiation then gets the
derivatives at coincident inputs (``x = y``) wrong. For Matérn-5/2, say,
``(1 + √5 r + 5 r²/3) exp(-√5 r)`` differentiated through a ``sqrt`` with a
zero-guarded gradient gives ``∂²k/∂x∂y = -10 v/(3ℓ²)`` at ``x = y`` instead of
``5 v/(3ℓ²)``.

:func:`even_profile` builds ``g(q) = f(√q)`` from ``f`` and the closed forms
of its first two derivatives *with respect to q*, ``g'(q) = f'(r)/(2r)`` and
``g''(q)``, as nested ``jax.custom_jvp`` rules. For the Matérn-3/2 and -5/2
and cosine profiles ``g'`` is finite at ``q = 0``, so every first and second
input-derivative of the kernel is right at coincident points, on every code
path. Where ``g''(0)`` (or, for Matérn-1/2, ``g'(0)``) is infinite, the rule
returns 0 at ``q = 0`` exactly: there the tangent of ``q`` is always exactly
zero (``q = Σ Δ_i²/ℓ_i²`` has a minimum at ``Δ = 0``, in the inputs and the
lengthscales alike), so the value only has to be finite, and 0 keeps
hyperparameter gradients at ``r = 0`` finite and right.

Derivation of each ``g'`` and ``g''``: differentiate ``f`` in ``r`` and use
``dr/dq = 1/(2r)``; the Matérn forms are in Rasmussen & Williams (2006),
eq. 4.17.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp


def safe_sqrt(q):
    """``sqrt(q)`` whose gradient at ``q = 0`` is 0 instead of NaN.

    Only for values, or where the tangent of ``q`` vanishes at 0; the profiles
    below do not differentiate through it (see :func:`even_profile`).
    """
    positive = q > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, q, 1.0)), 0.0)


def _where_positive(s, value_fn):
    """``value_fn(s)`` where ``s > 0`` and 0 at ``s = 0``, without evaluating at 0."""
    positive = s > 0
    return jnp.where(positive, value_fn(jnp.where(positive, s, 1.0)), 0.0)


def even_profile(f: Callable, df: Callable, d2f: Callable) -> Callable:
    """``g(q) = f(√q)`` with derivatives given in closed form, right at ``q = 0``.

    Args:
        f: ``f(s)``, the profile as a function of ``s = √q ≥ 0``.
        df: ``s ↦ g'(s²)``, the first derivative with respect to ``q``.
        d2f: ``s ↦ g''(s²)``, the second derivative with respect to ``q``
            (any finite value at ``s = 0``: the tangent of ``q`` vanishes there).

    Returns:
        An elementwise function of ``q``, differentiable to any order by JAX
        (beyond the second, through ``safe_sqrt`` inside ``d2f``).
    """

    @jax.custom_jvp
    def first(q):
        return df(safe_sqrt(q))

    @first.defjvp
    def _first_jvp(primals, tangents):
        (q,), (dq,) = primals, tangents
        s = safe_sqrt(q)
        return df(s), d2f(s) * dq

    @jax.custom_jvp
    def value(q):
        return f(safe_sqrt(q))

    @value.defjvp
    def _value_jvp(primals, tangents):
        (q,), (dq,) = primals, tangents
        return value(q), first(q) * dq

    return value


# Matérn-1/2 in q = r²: f = exp(-s). Not differentiable at r = 0 (a kink):
# g'(0) is infinite and is returned as 0, so first input-derivatives at x = y
# are 0 (the average of the one-sided derivatives ∓v/ℓ) and so are the second.
matern12_profile = even_profile(
    lambda s: jnp.exp(-s),
    lambda s: _where_positive(s, lambda s: -jnp.exp(-s) / (2.0 * s)),
    lambda s: _where_positive(s, lambda s: jnp.exp(-s) * (1.0 + s) / (4.0 * s**3)),
)

# Matérn-3/2 in q = 3 r²: f = (1 + s) exp(-s), g' = -exp(-s)/2, g'' = exp(-s)/(4s).
matern32_profile = even_profile(
    lambda s: (1.0 + s) * jnp.exp(-s),
    lambda s: -0.5 * jnp.exp(-s),
    lambda s: _where_positive(s, lambda s: jnp.exp(-s) / (4.0 * s)),
)

# Matérn-5/2 in q = 5 r²: f = (1 + s + s²/3) exp(-s), g' = -(1 + s) exp(-s)/6,
# g'' = exp(-s)/12.
matern52_profile = even_profile(
    lambda s: (1.0 + s + s**2 / 3.0) * jnp.exp(-s),
    lambda s: -(1.0 + s) * jnp.exp(-s) / 6.0,
    lambda s: jnp.exp(-s) / 12.0,
)


def _cosine_second(s):
    # g''(q) = -π (2πs cos 2πs - sin 2πs) / (2 s³), which tends to 4π⁴/3 at s = 0.
    w = 2.0 * math.pi * s
    return -math.pi * (w * jnp.cos(w) - jnp.sin(w)) / (2.0 * s**3)


# Cosine in q = r²/p²: f = cos(2πs), g' = -2π² sinc(2s) (jnp.sinc(x) = sin(πx)/(πx)).
cosine_profile = even_profile(
    lambda s: jnp.cos(2.0 * math.pi * s),
    lambda s: -2.0 * math.pi**2 * jnp.sinc(2.0 * s),
    lambda s: jnp.where(s > 0, _cosine_second(jnp.where(s > 0, s, 1.0)), 4.0 * math.pi**4 / 3.0),
)
