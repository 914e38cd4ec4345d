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
* **Positivity floor (and ceiling).** ``exp(u)`` alone is positive only in
  exact arithmetic: it underflows to 0 for ``u < -745`` in float64 (and
  overflows to inf above 709), which an optimiser reaches whenever the
  likelihood keeps improving as ``θ → 0`` (constant targets drive a variance
  and the noise there) or ``θ → ∞``. So, as scikit-learn bounds ``θ`` for its
  L-BFGS-B (``GaussianProcessRegressor``, default bounds ``(1e-5, 1e5)``),
  ``u`` is clipped to a box before the map::

      θ = exp(clip(u, -b, b)),   b = -½ log(tiny) - log 2,   i.e.  2√tiny ≤ θ ≤ 1/(2√tiny)

  where ``tiny`` is the smallest normal number of the dtype:
  ``θ ∈ [3.0e-154, 3.4e153]`` in float64 and ``[2.2e-19, 4.6e18]`` in
  float32 (:meth:`Positive.bounds`). These are (within a factor 2) the widest
  bounds for which ``θ``, ``θ²``, ``1/θ`` and ``1/θ²`` (a lengthscale enters
  kernels as ``1/ℓ²``, a noise is already a variance) are all finite normal
  numbers; the factor 2 keeps the rounding of ``exp`` from pushing ``θ²``
  below ``tiny``, where XLA on CPU flushes subnormals to zero. So
  every fitted value is accepted by the model's constructor and a refit
  starts from a finite loss. Unlike scikit-learn's bounds they are not a
  prior belief about scales: use ``log_prior=`` in ``fit`` for that. Inside
  the box the map and its gradient are exactly ``exp``; outside it the
  gradient is 0, so a hyperparameter driven to a bound stays there (as it
  would at an active L-BFGS-B bound).
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
import math
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
    """A positive hyperparameter ``θ``, optimised as ``u = log θ`` with ``u`` held in a box.

    ``θ = exp(clip(u, -b, b))`` with ``b = -½ log(tiny) - log 2``, ``tiny`` the
    smallest normal number of ``u``'s dtype, so ``θ ∈ [2√tiny, 1/(2√tiny)]``:
    ``[3.0e-154, 3.4e153]`` in float64, ``[2.2e-19, 4.6e18]`` in float32 (see the
    module docstring for why).
    """

    name = "positive"

    @staticmethod
    def bounds(dtype) -> tuple[float, float]:
        """``(lower, upper)`` on ``u = log θ`` for ``dtype``: ``∓(-½ log tiny - log 2)``."""
        bound = -0.5 * math.log(float(jnp.finfo(dtype).tiny)) - math.log(2.0)
        return -bound, bound

    @staticmethod
    def to_unconstrained(value):
        return jnp.log(value)

    @staticmethod
    def from_unconstrained(u):
        lower, upper = Positive.bounds(jnp.result_type(u))
        return jnp.exp(jnp.clip(u, lower, upper))


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
