"""The kernel base class: one pointwise function in, Gram and cross matrices out.

A kernel ``k`` is a positive semi-definite function of two input points. A
subclass writes only :meth:`Kernel.evaluate` on two single points ``x, y`` of
shape ``(d,)``; the base class turns it into matrices with one ``jax.vmap``
core::

    cross(X, Y)[i, j] = k(X[i], Y[j])        (n, m)
    gram(X)          = cross(X, X)           (n, n)
    diag(X)[i]       = k(X[i], X[i])         (n,)

Each thing is done once, here. The public methods check the inputs and the
hyperparameters (:func:`~gpjax_lite.parameters.check_hyperparameters`), then
select the ``active_dims`` columns (the only place that selects: see
:meth:`Kernel._gram_on` and friends) and hand the selected columns to the
hooks ``evaluate``, ``_cross``, ``_gram`` and ``_diag``. Subclasses may
override the private hooks with faster formulas that agree with the vmap core
to round-off (see ``stationary.py``); composite kernels (sums, products) call
each term's ``_gram_on``/``_cross_on``/``_diag_on``/``_pointwise``, so every
term selects its own columns and keeps its own fast path. The vmap core checks
that ``evaluate`` returns one scalar per pair, at trace time.
"""

from __future__ import annotations

import abc
import numbers

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .._checks import as_inputs, as_point
from .._module import Module
from ..parameters import check_hyperparameters


def vmap_cross(
    pointwise, X: Float[Array | np.ndarray, "n d"], Y: Float[Array | np.ndarray, "m d"]
) -> Float[Array, "n m"]:
    """The one vmap core: ``pointwise(x, y)`` on every pair of rows of ``X`` and ``Y``.

    Args:
        pointwise: a function of two points of shape ``(d,)`` returning a scalar.
        X: ``(n, d)`` array of points (a JAX or NumPy array).
        Y: ``(m, d)`` array of points (a JAX or NumPy array).

    Returns:
        The ``(n, m)`` matrix ``[pointwise(X[i], Y[j])]``.
    """
    over_y = jax.vmap(pointwise, in_axes=(None, 0))
    return jax.vmap(over_y, in_axes=(0, None))(X, Y)


def _as_dims(dims):
    """Store a tuple of integer indices (NumPy integers included) as Python ints.

    Anything else is kept as given, for ``Kernel.__check_init__`` to reject.
    (A NumPy integer in a static field would also make equinox warn.)
    """
    if isinstance(dims, tuple) and all(isinstance(i, numbers.Integral) for i in dims):
        return tuple(int(i) for i in dims)
    return dims


class Kernel(Module):
    """Base class of every covariance function.

    Write :meth:`evaluate` for two points of shape ``(d,)`` and get
    ``k(x, y)``, :meth:`gram`, :meth:`cross`, :meth:`diag`, ``active_dims``
    and the algebra ``k1 + k2``, ``k1 * k2``, ``c * k`` for free.

    Attributes:
        active_dims: column indices of the inputs this kernel looks at, or
            ``None`` for all of them. ``RBF(active_dims=(0, 2))`` acts on
            ``X[:, (0, 2)]``.
    """

    active_dims: tuple[int, ...] | None = eqx.field(
        default=None, static=True, kw_only=True, converter=_as_dims
    )

    def __check_init__(self):
        if self.active_dims is not None:
            dims = self.active_dims
            if not (
                isinstance(dims, tuple)
                and len(dims) > 0
                and all(isinstance(i, numbers.Integral) and i >= 0 for i in dims)
            ):
                raise TypeError(
                    "`active_dims` must be a non-empty tuple of non-negative column indices, "
                    f"got {dims!r}."
                )
            if len(set(dims)) != len(dims):
                # A repeated column would silently count that input twice (RBF on
                # X[:, (0, 0)] is RBF on X[:, 0] with its lengthscale divided by √2).
                raise ValueError(f"`active_dims` repeats a column: {dims!r}.")

    # ----------------------------------------------------------------- to write
    @abc.abstractmethod
    def evaluate(self, x: Float[Array, " d"], y: Float[Array, " d"]) -> Float[Array, ""]:
        """The kernel's value ``k(x, y)`` on two single points of shape ``(d,)``.

        ``x`` and ``y`` arrive with ``active_dims`` already selected.
        """

    # -------------------------------------------------------------- public API
    def __call__(self, x, y) -> Float[Array, ""]:
        """``k(x, y)`` for two points of shape ``(d,)`` (scalars read as ``(1,)``).

        Args:
            x: one point, shape ``(d,)`` or a scalar.
            y: one point of the same shape as ``x``.

        Returns:
            The scalar ``k(x, y)``, in the dtype of the inputs (see :meth:`gram`).

        Raises:
            ValueError: if ``x`` or ``y`` has more than one dimension, their
                shapes differ, or ``d`` does not suit the kernel (``active_dims``
                or an ARD ``lengthscale`` of another length); if a
                hyperparameter is invalid (see :meth:`check_before_use`); if
                ``evaluate`` does not return a scalar.
        """
        x, y = as_point("x", x), as_point("y", y)
        if x.shape != y.shape:
            raise ValueError(f"`x` and `y` must have the same shape, got {x.shape} and {y.shape}.")
        self.check_before_use(x.shape[0])
        return self._in_dtype(jnp.result_type(x, y))._pointwise(x, y)

    def gram(self, X) -> Float[Array, "n n"]:
        """The Gram matrix ``K[i, j] = k(X[i], X[j])`` of shape ``(n, n)``.

        Args:
            X: inputs of shape ``(n,)`` (read as ``(n, 1)``) or ``(n, d)``.

        Returns:
            The symmetric positive semi-definite ``(n, n)`` matrix ``K``, in the
            dtype of ``X``: hyperparameters are cast to it, so float32 inputs
            give float32 matrices even with float64 enabled.

        Raises:
            ValueError: if ``X`` is not 1-D or 2-D, holds NaN/inf, or has a
                number of columns the kernel cannot act on; if a
                hyperparameter is invalid (see :meth:`check_before_use`).
        """
        X = as_inputs("X", X)
        self.check_before_use(X.shape[1])
        return self._in_dtype(X.dtype)._gram_on(X)

    def cross(self, X, Y) -> Float[Array, "n m"]:
        """The cross-covariance ``K[i, j] = k(X[i], Y[j])`` of shape ``(n, m)``.

        Args:
            X: inputs of shape ``(n,)`` or ``(n, d)``.
            Y: inputs of shape ``(m,)`` or ``(m, d)``, with the same ``d``.

        Returns:
            The ``(n, m)`` matrix ``[k(X[i], Y[j])]``.

        Raises:
            ValueError: if ``X`` and ``Y`` have different numbers of columns,
                or as for :meth:`gram`.
        """
        X, Y = as_inputs("X", X), as_inputs("Y", Y)
        if X.shape[1] != Y.shape[1]:
            raise ValueError(
                f"`X` and `Y` must have the same number of columns, got shapes {X.shape} and {Y.shape}."
            )
        self.check_before_use(X.shape[1])
        return self._in_dtype(jnp.result_type(X, Y))._cross_on(X, Y)

    def diag(self, X) -> Float[Array, " n"]:
        """The diagonal ``k(X[i], X[i])`` of the Gram matrix, shape ``(n,)``, without forming it.

        Args:
            X: inputs of shape ``(n,)`` or ``(n, d)``.

        Raises:
            ValueError: as for :meth:`gram`.
        """
        X = as_inputs("X", X)
        self.check_before_use(X.shape[1])
        return self._in_dtype(X.dtype)._diag_on(X)

    def check_before_use(self, d: int) -> None:
        """The checks every public method runs: input width and hyperparameters.

        Args:
            d: the number of input columns (before ``active_dims`` selection).

        Raises:
            ValueError: as for :meth:`check_input_dim`, or naming the leaf (e.g.
                ``kernels[0].lengthscale``) if a hyperparameter set around the
                constructor (``equinox.tree_at``, deserialisation) is invalid;
                see :func:`gpjax_lite.parameters.check_hyperparameters`.
            TypeError: if such a hyperparameter is not a real number or array.
        """
        check_hyperparameters(self)
        self.check_input_dim(d)

    def _in_dtype(self, dtype) -> Kernel:
        """This kernel with its floating-point hyperparameters cast to ``dtype``.

        Outputs have the dtype of the inputs: float32 inputs give float32
        matrices even with float64 enabled and float64 hyperparameters (an
        ARD lengthscale given as a NumPy array, say), so that downstream
        choices made by dtype (jitter, tolerances) match the accuracy of the
        inputs. Gradients flow back to each hyperparameter in its own dtype.
        """

        def cast(leaf):
            if eqx.is_inexact_array(leaf) and leaf.dtype != dtype:
                return leaf.astype(dtype)
            return leaf

        return jax.tree_util.tree_map(cast, self)

    def check_input_dim(self, d: int) -> None:
        """Raise ``ValueError`` if this kernel cannot act on inputs with ``d`` columns."""
        if self.active_dims is not None and max(self.active_dims) >= d:
            raise ValueError(
                f"`active_dims` {self.active_dims} refers to column {max(self.active_dims)}, "
                f"but the inputs have only d = {d} columns."
            )
        self._check_active_input_dim(d if self.active_dims is None else len(self.active_dims))

    def _check_active_input_dim(self, d: int) -> None:
        """Hook: check hyperparameter shapes against the number ``d`` of active columns."""

    def matrix_path(self, d: int, dtype) -> str:
        """The code path ``gram``/``cross`` take on ``d`` input columns of ``dtype``.

        ``"vmap"`` is the vmap core over :meth:`evaluate`; kernels with faster
        formulas return their own names (``"columns"``, ``"matmul"``,
        ``"features"``; sums and products join their terms' paths with ``+``).
        The choice depends only on static information (``d``, ``dtype``), so it
        is the same inside and outside ``jit``; benchmarks report it.

        Args:
            d: the number of input columns (before ``active_dims`` selection).
            dtype: the floating-point dtype of the computation.
        """
        return "vmap"

    def _active_dim(self, d: int) -> int:
        """The number of columns left after ``active_dims`` selection from ``d``."""
        return d if self.active_dims is None else len(self.active_dims)

    # ------------------------------------------- selection: the one place it happens
    def _select(self, X):
        """Keep the ``active_dims`` columns of ``X`` (a point ``(d,)`` or a matrix ``(n, d)``)."""
        if self.active_dims is None:
            return X
        return X[..., jnp.asarray(self.active_dims)]

    def _pointwise(self, x, y):
        """``k(x, y)`` on points with all columns: select, then the scalar-checked ``evaluate``."""
        return self._evaluate_scalar(self._select(x), self._select(y))

    def _cross_on(self, X, Y):
        """``cross`` on inputs with all columns: select, then the ``_cross`` hook."""
        return self._cross(self._select(X), self._select(Y))

    def _gram_on(self, X):
        """``gram`` on inputs with all columns: select, then the ``_gram`` hook."""
        return self._gram(self._select(X))

    def _diag_on(self, X):
        """``diag`` on inputs with all columns: select, then the ``_diag`` hook."""
        return self._diag(self._select(X))

    # ------------------------------------- hooks: they receive the selected columns
    def _evaluate_scalar(self, x, y):
        """``evaluate(x, y)``, checked to be one scalar per pair of points.

        Shapes are static, so a user's ``evaluate`` returning, say, shape
        ``(d,)`` is caught while tracing: eagerly and under ``jit`` alike.
        """
        value = self.evaluate(x, y)
        if jnp.shape(value) != ():
            raise ValueError(
                f"`{type(self).__name__}.evaluate` must return a scalar for two points of "
                f"shape {jnp.shape(x)}, got an array of shape {jnp.shape(value)}."
            )
        return value

    def _cross(self, X, Y):
        return vmap_cross(self._evaluate_scalar, X, Y)

    def _gram(self, X):
        return self._cross(X, X)

    def _diag(self, X):
        return jax.vmap(lambda x: self._evaluate_scalar(x, x))(X)

    # ------------------------------------------------------------------ algebra
    # NumPy would otherwise broadcast `np.ones(3) * k` into an object array of kernels.
    __array_ufunc__ = None

    def __add__(self, other):
        from .combinations import Sum

        if not isinstance(other, Kernel):
            return NotImplemented
        return Sum.of(self, other)

    def __radd__(self, other):
        # `sum([k1, k2])` starts from the integer 0.
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return NotImplemented

    def __mul__(self, other):
        from .combinations import Product, Scaled

        if isinstance(other, Kernel):
            return Product.of(self, other)
        if _is_scalar(other):
            return Scaled(self, other)
        return NotImplemented

    def __rmul__(self, other):
        from .combinations import Scaled

        if _is_scalar(other):
            return Scaled(self, other)
        return NotImplemented


def _is_scalar(value) -> bool:
    if isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)):
        return True
    return isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 0
