"""How hyperparameters are stored, constrained and held fixed.

Design
------
* A module's field holds the **natural value** of a hyperparameter:
  ``RBF(lengthscale=2.0).lengthscale`` is ``2.0``, exactly what was passed.
* The field's *constraint* lives in its dataclass metadata. Positive
  hyperparameters are declared with :func:`positive_field`, unconstrained real
  ones with :func:`real_field`.
* :func:`fit <gpjax_lite.fit>` optimises in an unconstrained space. For a
  positive hyperparameter ``θ`` it works on ``u = log θ`` and maps back with
  ``θ = exp(u)``, so no optimiser step can leave the valid region. The log
  map is scale-invariant (a step changes ``θ`` by a factor), which suits
  lengthscales and variances that may range over orders of magnitude.
* To hold hyperparameters fixed, pass ``fixed=`` a function that picks them
  out of the model (the same ``where`` convention as ``equinox.tree_at``)::

      fit(gp, X, y, fixed=lambda gp: (gp.noise, gp.kernel.kernels[1].period))

  A selected sub-module (say a whole kernel) fixes all of its leaves. Fixed
  leaves are never transformed, so they come back bit-for-bit.

Only floating-point array leaves are hyperparameters; static fields (such as
``active_dims`` or a polynomial ``degree``) are never touched.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp

from ._checks import as_float_array

CONSTRAINT = "gpjax_lite.constraint"


class Identity:
    """A real hyperparameter, optimised as it is."""

    name = "real"

    @staticmethod
    def to_unconstrained(value):
        return value

    @staticmethod
    def from_unconstrained(u):
        return u


class Positive:
    """A positive hyperparameter ``θ``, optimised as ``u = log θ``."""

    name = "positive"

    @staticmethod
    def to_unconstrained(value):
        return jnp.log(value)

    @staticmethod
    def from_unconstrained(u):
        return jnp.exp(u)


def positive_field(default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A module field holding a positive hyperparameter (log-transformed by ``fit``).

    Use it in an ``equinox.Module`` (a custom kernel, say) as
    ``variance: jax.Array = positive_field(1.0, kw_only=True)``. The value is
    converted to a floating-point array (Python numbers stay weakly typed, so
    they do not promote float32 inputs); checking positivity is left to the
    module's ``__check_init__``.

    Args:
        default: the default value (none: a required field).
        **kwargs: passed on to ``equinox.field`` (e.g. ``kw_only=True``).
    """
    return eqx.field(
        default=default, converter=as_float_array, metadata={CONSTRAINT: Positive}, **kwargs
    )


def real_field(default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A module field holding an unconstrained real hyperparameter (optimised as it is).

    Args:
        default: the default value (none: a required field).
        **kwargs: passed on to ``equinox.field``.
    """
    return eqx.field(
        default=default, converter=as_float_array, metadata={CONSTRAINT: Identity}, **kwargs
    )


def _constraint_of_leaf(model, path) -> type:
    """Walk ``path`` from ``model``; the innermost field that declares a constraint wins."""
    constraint = Identity
    node = model
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            if dataclasses.is_dataclass(node):
                for field in dataclasses.fields(node):
                    if field.name == key.name and CONSTRAINT in field.metadata:
                        constraint = field.metadata[CONSTRAINT]
            node = getattr(node, key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            node = node[key.idx]
        elif isinstance(key, jax.tree_util.DictKey):
            node = node[key.key]
        else:  # FlattenedIndexKey and friends: no field metadata below here.
            break
    return constraint


def constraints(model):
    """A pytree like ``model`` whose leaves are the constraint class of each leaf."""
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(model)
    tags = [_constraint_of_leaf(model, path) for path, _ in leaves_with_paths]
    return jax.tree_util.tree_unflatten(treedef, tags)


def trainable_mask(model, fixed: Callable[[Any], Any] | None = None):
    """A pytree of bools like ``model``: True for every leaf that ``fit`` optimises.

    Trainable leaves are the floating-point arrays not selected by ``fixed``.

    Args:
        model: any pytree of hyperparameters (a ``GP``, a kernel, …).
        fixed: ``None``, or a function selecting leaves or sub-modules of
            ``model`` to hold fixed, as for ``equinox.tree_at``.

    Raises:
        ValueError: if ``fixed`` does not select parts of ``model``.
    """
    mask = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    if fixed is None:
        return mask
    try:
        return eqx.tree_at(
            fixed, mask, replace_fn=lambda node: jax.tree_util.tree_map(lambda _: False, node)
        )
    except Exception as error:  # noqa: BLE001 - re-raised with the argument's name
        raise ValueError(
            "`fixed` must be a function that selects hyperparameters of the model, "
            f"e.g. `lambda gp: gp.noise`; applying it failed with: {error}"
        ) from error


def to_unconstrained(model, mask):
    """Map every trainable leaf of ``model`` to the unconstrained space."""
    return jax.tree_util.tree_map(
        lambda c, x, t: c.to_unconstrained(x) if t else x, constraints(model), model, mask
    )


def from_unconstrained(model, mask):
    """Inverse of :func:`to_unconstrained`."""
    return jax.tree_util.tree_map(
        lambda c, x, t: c.from_unconstrained(x) if t else x, constraints(model), model, mask
    )
