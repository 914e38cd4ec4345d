"""Mean functions ``m(x)`` of a Gaussian process.

A mean function is any ``equinox.Module`` whose ``__call__(x)`` returns a
scalar for one point ``x`` of shape ``(d,)``; the model vmaps it over the rows
of ``X``. Subclass :class:`MeanFunction` for the docstring and type, or use
any module with that call signature.
"""

from __future__ import annotations

import abc

import jax.numpy as jnp
from jaxtyping import Array, Float

from ._checks import check_finite
from ._module import Module
from .parameters import real_field


class MeanFunction(Module):
    """Base class: ``m(x)`` for one point ``x`` of shape ``(d,)``, a scalar."""

    @abc.abstractmethod
    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """The prior mean at one point."""


class Zero(MeanFunction):
    """``m(x) = 0``: the usual choice once the targets are centred."""

    def __call__(self, x):
        return jnp.zeros((), dtype=x.dtype)


class Constant(MeanFunction):
    """``m(x) = value``, a real hyperparameter (``fit`` optimises it unconstrained).

    Attributes:
        value: the constant prior mean (default 0.0).

    Raises:
        ValueError: if ``value`` is not a finite scalar.
    """

    value: Float[Array, ""] = real_field(0.0)

    def __check_init__(self):
        if jnp.ndim(self.value) != 0:
            raise ValueError(f"`value` must be a scalar, got shape {jnp.shape(self.value)}.")
        check_finite("value", self.value)

    def __call__(self, x):
        return jnp.broadcast_to(self.value, ()).astype(jnp.result_type(x, self.value))
