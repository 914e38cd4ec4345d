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
import numbers
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._checks import as_float_array, check_finite, check_positive

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


#: Dataclass-metadata key for the shape a hyperparameter field allows.
SHAPE = "gpjax_lite.shape"

#: The shapes a field may declare, and what each allows (``None``: any shape).
SHAPES = {
    "scalar": "a scalar",
    "vector": "a 1-D array",
    "scalar_or_vector": "a scalar or a 1-D array",
}


def _keep_or_convert(value):
    """The field converter: a real number becomes a floating-point array, anything else stays.

    A value of the wrong type (bool, complex, string, ``None``, an object) is
    kept as it is, so that the module's ``__check_init__`` can reject it with a
    ``TypeError`` naming the field (a converter does not know the field's name).
    """
    if isinstance(value, jax.core.Tracer):
        return value
    if not _is_real_number_like(value):
        return value
    return as_float_array(value)


def _is_real_number_like(value) -> bool:
    """True for a real (non-bool) number, or an array of real integers or floats."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        return False
    if isinstance(value, numbers.Real):
        return True
    if isinstance(value, (jax.Array, np.ndarray, np.generic)):
        return np.dtype(value.dtype).kind in "iuf"
    if isinstance(value, (list, tuple)):
        try:
            array = np.asarray(value)
        except ValueError:  # ragged
            return False
        return array.dtype.kind in "iuf"
    return False


def _field(constraint, default, shape, kwargs) -> Any:
    if shape is not None and shape not in SHAPES:
        raise ValueError(f"`shape` must be None or one of {sorted(SHAPES)}, got {shape!r}.")
    metadata = {CONSTRAINT: constraint, SHAPE: shape}
    return eqx.field(default=default, converter=_keep_or_convert, metadata=metadata, **kwargs)


def positive_field(
    default: Any = dataclasses.MISSING, *, shape: str | None = None, **kwargs
) -> Any:
    """A module field holding a positive hyperparameter (log-transformed by ``fit``).

    Use it in a :class:`gpjax_lite.kernels.Kernel` (or any subclass of the
    library's ``Module``) as
    ``variance: jax.Array = positive_field(1.0, shape="scalar", kw_only=True)``.
    The field checks itself at construction (no ``__check_init__`` to write):

    * type: a real number or an array of real numbers (ints are promoted to
      floats); a bool, complex, string or other object is a ``TypeError``
      naming the field;
    * shape: as declared by ``shape``, else a ``ValueError`` naming the field;
    * value (concrete arrays only, not tracers): every entry positive and
      finite, else a ``ValueError`` naming the field.

    Values that bypass the constructor (``equinox.tree_at``, deserialisation)
    are checked when used, by :func:`check_hyperparameters`. Python numbers
    stay weakly typed, so they do not promote float32 inputs.

    Args:
        default: the default value (none: a required field).
        shape: ``"scalar"``, ``"vector"`` (1-D), ``"scalar_or_vector"`` (for
            example an ARD lengthscale), or ``None`` for any shape.
        **kwargs: passed on to ``equinox.field`` (e.g. ``kw_only=True``).
    """
    return _field(Positive, default, shape, kwargs)


def real_field(default: Any = dataclasses.MISSING, *, shape: str | None = None, **kwargs) -> Any:
    """A module field holding an unconstrained real hyperparameter (optimised as it is).

    Checked like :func:`positive_field`, except that the value need only be
    finite.

    Args:
        default: the default value (none: a required field).
        shape: as for :func:`positive_field`.
        **kwargs: passed on to ``equinox.field``.
    """
    return _field(Identity, default, shape, kwargs)


def check_hyperparameter(name: str, value, constraint, shape: str | None) -> None:
    """Check one hyperparameter value against its declared constraint and shape.

    Type and shape are checked on every value (shapes are static, so this holds
    under ``jit`` too); the value (positive and finite, or finite) only on
    concrete arrays.

    Args:
        name: how to name the value in an error (a field name or a leaf path).
        value: the value: a number, a NumPy or JAX array, or a tracer.
        constraint: :class:`Positive`, :class:`Identity`, or another constraint
            class (then only type and shape are checked).
        shape: a key of :data:`SHAPES`, or ``None`` (any shape).

    Raises:
        TypeError: if ``value`` is not a real number or an array of real numbers.
        ValueError: if its shape is not ``shape``, or (concrete values) a
            positive one is not positive and finite, or a real one not finite.
    """
    _check_type_and_shape(name, value, shape)
    if isinstance(value, jax.core.Tracer):
        return
    if constraint is Positive:
        check_positive(name, value)
    elif constraint is Identity:
        check_finite(name, value)


_NDIMS = {"scalar": (0,), "vector": (1,), "scalar_or_vector": (0, 1)}


def _check_type_and_shape(name: str, value, shape: str | None) -> None:
    if isinstance(value, jax.core.Tracer):
        real = np.dtype(value.dtype).kind in "iuf"
    else:
        real = _is_real_number_like(value)
    if not real:
        got = value.dtype if hasattr(value, "dtype") else type(value).__name__
        raise TypeError(f"`{name}` must be a real number or an array of real numbers, got {got}.")
    allowed = _NDIMS.get(shape)
    if allowed is not None and np.ndim(value) not in allowed:
        raise ValueError(f"`{name}` must be {SHAPES[shape]}, got shape {np.shape(value)}.")


def check_declared_fields(module) -> None:
    """Check every field of ``module`` declared with :func:`positive_field`/:func:`real_field`.

    Run by the library's base ``Module.__check_init__``, so every module
    (kernels, means, models, and a user's own kernel) checks its declared
    hyperparameters at construction. Errors name the field.
    """
    for field in dataclasses.fields(module):
        if CONSTRAINT in field.metadata:
            check_hyperparameter(
                field.name,
                getattr(module, field.name),
                field.metadata[CONSTRAINT],
                field.metadata.get(SHAPE),
            )


def _declaring_field(model, path) -> dataclasses.Field | None:
    """Walk ``path`` from ``model``; return the innermost field that declares a constraint."""
    declared = None
    node = model
    for key in path:
        if isinstance(key, jax.tree_util.GetAttrKey):
            if dataclasses.is_dataclass(node):
                for field in dataclasses.fields(node):
                    if field.name == key.name and CONSTRAINT in field.metadata:
                        declared = field
            node = getattr(node, key.name)
        elif isinstance(key, jax.tree_util.SequenceKey):
            node = node[key.idx]
        elif isinstance(key, jax.tree_util.DictKey):
            node = node[key.key]
        else:  # FlattenedIndexKey and friends: no field metadata below here.
            break
    return declared


def _constraint_of_leaf(model, path) -> type:
    """The constraint of the leaf at ``path``: its innermost declaring field's, else ``Identity``."""
    field = _declaring_field(model, path)
    return Identity if field is None else field.metadata[CONSTRAINT]


def constraints(model):
    """A pytree like ``model`` whose leaves are the constraint class of each leaf."""
    leaves_with_paths, treedef = jax.tree_util.tree_flatten_with_path(model)
    tags = [_constraint_of_leaf(model, path) for path, _ in leaves_with_paths]
    return jax.tree_util.tree_unflatten(treedef, tags)


def _path_name(path) -> str:
    """``kernel.kernels[0].lengthscale``: a leaf path as the user would write it."""
    name = jax.tree_util.keystr(path)
    return name[1:] if name.startswith(".") else name


#: Leaf declarations by tree structure, filled by `_declared_leaves` (bounded below).
_DECLARED_BY_STRUCTURE: dict = {}


def _declared_leaves(model, treedef) -> tuple:
    """For each leaf of ``model``: ``(path name, constraint, shape)``, or ``None`` if undeclared.

    Cached by tree structure (declarations are class-level, so equal structures
    have equal declarations): :func:`check_hyperparameters` runs on every
    eager call of a kernel or model and must stay cheap. The cache holds no
    arrays.
    """
    try:
        return _DECLARED_BY_STRUCTURE[treedef]
    except KeyError:
        pass
    except TypeError:  # a structure holding an unhashable static field: no caching
        return _declared_leaves_uncached(model)
    if len(_DECLARED_BY_STRUCTURE) >= 1024:
        _DECLARED_BY_STRUCTURE.clear()
    declared = _DECLARED_BY_STRUCTURE[treedef] = _declared_leaves_uncached(model)
    return declared


def _declared_leaves_uncached(model) -> tuple:
    result = []
    for path, _ in jax.tree_util.tree_flatten_with_path(model)[0]:
        field = _declaring_field(model, path)
        if field is None:
            result.append(None)
        else:
            result.append((_path_name(path), field.metadata[CONSTRAINT], field.metadata.get(SHAPE)))
    return tuple(result)


def check_hyperparameters(model, name: str | None = None) -> None:
    """Check every declared hyperparameter of ``model``, wherever its value came from.

    The constructor checks each field as it is set (see :func:`positive_field`),
    but values can bypass it: ``equinox.tree_at``, ``equinox.tree_deserialise_leaves``,
    a ``jax.tree_util.tree_map``. This walks every leaf of ``model`` that sits
    under a field declared with :func:`positive_field` or :func:`real_field`
    and checks its type, shape and (if concrete) value, so that, for example, a
    negative lengthscale never acts like its absolute value. Tracers (inside
    ``jit``, ``grad``, ``vmap``) get the type and shape checks only; nothing is
    compiled. Kernels run it in ``k(x, y)``, ``gram``, ``cross`` and ``diag``;
    models run it in their entry points.

    Cost: one flatten of ``model`` and one host read of each concrete leaf (the
    walk over field declarations is cached per tree structure).

    Args:
        model: any pytree: a kernel, mean, model, or a tuple of them.
        name: how the user refers to ``model`` (e.g. ``"kernel"``), prefixed to
            the leaf paths in errors; ``None`` names the leaves from ``model``.

    Raises:
        TypeError: if a declared leaf is not a real number or real array.
        ValueError: naming the leaf path (e.g. ``kernel.kernels[0].lengthscale``)
            if its shape is not the declared one, or a positive leaf is not
            positive and finite, or a real leaf is not finite.
    """
    leaves, treedef = jax.tree_util.tree_flatten(model)
    concrete = []
    for leaf, declared in zip(leaves, _declared_leaves(model, treedef)):
        if declared is None:
            continue
        _check_type_and_shape(_leaf_name(name, declared[0]), leaf, declared[2])
        if not isinstance(leaf, jax.core.Tracer):
            concrete.append((declared, leaf))
    if not concrete:
        return
    # One host transfer per leaf and one vectorised test for all of them; the
    # slow, per-leaf path runs only to name the culprit.
    values = np.concatenate([np.asarray(leaf, dtype=np.float64).ravel() for _, leaf in concrete])
    positive = [np.asarray(leaf).ravel() for (_, c, _), leaf in concrete if c is Positive]
    if np.isfinite(values).all() and (not positive or (np.concatenate(positive) > 0).all()):
        return
    for (path, constraint, shape), leaf in concrete:
        check_hyperparameter(_leaf_name(name, path), leaf, constraint, shape)


def _leaf_name(prefix: str | None, path: str) -> str:
    """``kernel`` + ``kernels[0].lengthscale`` → ``kernel.kernels[0].lengthscale``."""
    if not prefix:
        return path
    return f"{prefix}{path}" if path.startswith("[") or not path else f"{prefix}.{path}"


def cast_weak_leaves(tree, dtype):
    """Give every weakly typed float leaf of ``tree`` (a Python-float default such as
    ``variance=1.0``) the given ``dtype``; leaves with an explicit dtype are kept.

    A model then has one floating dtype: optimiser updates cannot promote a
    float32 model to float64 (they would turn weak float64 leaves into strong
    ones under ``jax_enable_x64``). Used by ``fit`` (the data's dtype) and the
    sparse models (the inducing inputs' dtype).
    """

    def cast(leaf):
        if eqx.is_inexact_array(leaf) and getattr(getattr(leaf, "aval", None), "weak_type", False):
            return leaf.astype(dtype)
        return leaf

    return jax.tree_util.tree_map(cast, tree)


def trainable_mask(model, fixed: Callable[[Any], Any] | None = None):
    """A pytree of bools like ``model``: True for every leaf that ``fit`` optimises.

    Trainable leaves are the floating-point arrays not selected by ``fixed``.

    Args:
        model: any pytree of hyperparameters (a ``GP``, a kernel, …).
        fixed: ``None``, or a function selecting leaves or sub-modules of
            ``model`` to hold fixed, as for ``equinox.tree_at``.

    Raises:
        TypeError: if ``fixed`` is neither ``None`` nor a function.
        ValueError: if ``fixed`` does not select parts of ``model``.
    """
    mask = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    if fixed is None:
        return mask
    if not callable(fixed):
        raise TypeError(
            f"`fixed` must be None or a function selecting hyperparameters, got {type(fixed).__name__}."
        )
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


def flat_from_unconstrained(model, mask):
    """:func:`from_unconstrained` for the trainable leaves flattened into one vector.

    For a ``model`` whose trainable leaves (``mask``) would be flattened by
    ``jax.flatten_util.ravel_pytree``, returns ``(inverse, rest)``:

    * ``inverse(u)``, the elementwise inverse map on that flat vector:
      ``exp(clip(u, -b, b))`` at the entries of :class:`Positive` leaves (with
      each leaf's own dtype bound ``b``, :meth:`Positive.bounds`), ``u``
      itself elsewhere. The same numbers as :class:`Positive`'s map leaf by
      leaf, as one array operation (and one in the gradient) instead of one
      per leaf, which keeps a compiled fit small.
    * ``rest``: the mask of the trainable leaves whose constraint is not
      elementwise (e.g. a Cholesky factor): apply :func:`from_unconstrained`
      with it after unflattening.
    """
    tags = jax.tree_util.tree_leaves(eqx.filter(constraints(model), mask))
    leaves = jax.tree_util.tree_leaves(eqx.filter(model, mask))
    positive, lower, upper = [], [], []
    for tag, leaf in zip(tags, leaves):
        size = int(np.size(leaf))
        low, high = Positive.bounds(jnp.result_type(leaf)) if tag is Positive else (0.0, 0.0)
        positive.append(np.full(size, tag is Positive))
        lower.append(np.full(size, low))
        upper.append(np.full(size, high))
    positive = np.concatenate(positive) if positive else np.zeros(0, bool)
    lower = np.concatenate(lower) if lower else np.zeros(0)
    upper = np.concatenate(upper) if upper else np.zeros(0)

    def inverse(u):
        if not positive.any():
            return u
        dtype = jnp.result_type(u)
        bounded = jnp.clip(u, lower.astype(dtype), upper.astype(dtype))
        return jnp.where(positive, jnp.exp(bounded), u)

    elementwise = (Positive, Identity)
    rest = jax.tree_util.tree_map(
        lambda tag, trainable: trainable and tag not in elementwise, constraints(model), mask
    )
    return inverse, rest
