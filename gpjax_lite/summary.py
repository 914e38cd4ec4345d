"""A model at a glance: one table row per hyperparameter.

:func:`summary` lists every floating-point array leaf of a model (a ``GP``, a
kernel, an ``SVGP``, …), the same leaves :func:`~gpjax_lite.fit` optimises,
with its path in the model, its natural (constrained) value, its constraint,
whether ``fit`` would train it (``fixed=`` as in ``fit``), its shape and dtype.
``summary(GP(RBF(variance=1.5, lengthscale=[0.5, 2.0]) + Periodic(), noise=0.01),
fixed=lambda gp: gp.noise)`` prints::

    path                           value     constraint  status     shape  dtype
    -----------------------------  --------  ----------  ---------  -----  -------
    kernel.kernels[0].variance     1.5       positive    trainable  ()     float64
    kernel.kernels[0].lengthscale  [0.5, 2]  positive    trainable  (2,)   float64
    kernel.kernels[1].variance     1         positive    trainable  ()     float64
    kernel.kernels[1].lengthscale  1         positive    trainable  ()     float64
    kernel.kernels[1].period       1         positive    trainable  ()     float64
    noise                          0.01      positive    fixed      ()     float64

Plain text, no dependency beyond NumPy.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import numpy as np

from .parameters import constraints, trainable_mask

#: Significant digits of a scalar value, and of each entry of an array value.
SCALAR_DIGITS = 6
ARRAY_DIGITS = 4
#: Vectors with more entries than this show their first and last ``ARRAY_EDGE_ITEMS``
#: (matrices: their first and last row and column).
ARRAY_THRESHOLD = 6
ARRAY_EDGE_ITEMS = 2

COLUMNS = ("path", "value", "constraint", "status", "shape", "dtype")


def summary(model: Any, fixed: Callable[[Any], Any] | None = None) -> str:
    """A plain-text table of the hyperparameters of ``model``, one line per leaf.

    Columns:

    * ``path`` — where the leaf sits, as you would write it in Python after
      ``model.`` (``kernel.kernels[0].lengthscale``);
    * ``value`` — the natural value, as stored (a scalar to 6 significant
      digits; an array on one line, 4 significant digits per entry, the middle
      elided past 6 entries as ``...``);
    * ``constraint`` — ``positive`` (optimised as ``log θ``), ``real``
      (optimised as it is), or another constraint's name (e.g. the sparse
      ``lower-triangular`` ``q_sqrt``);
    * ``status`` — ``trainable``, or ``fixed`` when ``fixed`` selects it (as in
      :func:`~gpjax_lite.fit`, through :func:`~gpjax_lite.parameters.trainable_mask`);
    * ``shape`` and ``dtype`` of the stored array.

    Args:
        model: any pytree of hyperparameters, typically an ``equinox.Module``
            (a :class:`~gpjax_lite.GP`, a kernel, an
            :class:`~gpjax_lite.sparse.SVGP`, …). Its values must be concrete
            (call it outside ``jit``).
        fixed: ``None``, or a function selecting leaves or sub-modules to hold
            fixed, as for :func:`~gpjax_lite.fit` (``lambda gp: gp.noise``).

    Returns:
        The table as one string (header, a rule, then one line per
        hyperparameter; no trailing newline). Print it.

    Raises:
        TypeError: if ``model`` is not an ``equinox.Module`` or ``fixed`` is not
            callable.
        ValueError: if ``fixed`` does not select parts of ``model``, or a value
            is a tracer (inside ``jit``).
    """
    if not isinstance(model, eqx.Module):
        raise TypeError(
            f"`model` must be an equinox.Module (a GP, a kernel, …), got {type(model).__name__}."
        )
    if fixed is not None and not callable(fixed):
        raise TypeError(
            f"`fixed` must be None or a function selecting hyperparameters, got {type(fixed).__name__}."
        )
    rows = [COLUMNS] + [_row(*leaf) for leaf in _hyperparameters(model, fixed)]
    return _format_table(rows)


def _hyperparameters(model, fixed):
    """``(path, value, constraint, trainable)`` for every floating-point array leaf."""
    paths_and_values = jax.tree_util.tree_flatten_with_path(model)[0]
    constraint_leaves = jax.tree_util.tree_leaves(constraints(model))
    trainable_leaves = jax.tree_util.tree_leaves(trainable_mask(model, fixed))
    for (path, value), constraint, trainable in zip(
        paths_and_values, constraint_leaves, trainable_leaves, strict=True
    ):
        if eqx.is_inexact_array(value):
            yield path, value, constraint, trainable


def _row(path, value, constraint, trainable) -> tuple[str, ...]:
    if isinstance(value, jax.core.Tracer):
        raise ValueError("`model` holds traced values: call `summary` outside `jax.jit`/`vmap`.")
    return (
        jax.tree_util.keystr(path).lstrip("."),
        format_value(np.asarray(value)),
        getattr(constraint, "name", constraint.__name__),
        "trainable" if trainable else "fixed",
        str(tuple(value.shape)),
        str(value.dtype),
    )


def format_value(value: np.ndarray) -> str:
    """A hyperparameter's value on one line: ``1.23457``, ``[0.5, 2, 3.142]`` or ``[[1, ..., 0], ..., [0, ..., 1]]``."""
    if value.ndim == 0:
        return f"{value.item():.{SCALAR_DIGITS}g}"
    text = np.array2string(
        value,
        separator=", ",
        threshold=ARRAY_THRESHOLD,
        # A matrix keeps one row and one column at each edge: it stays one short line.
        edgeitems=ARRAY_EDGE_ITEMS if value.ndim == 1 else 1,
        max_line_width=10**6,
        formatter={"float_kind": lambda x: f"{x:.{ARRAY_DIGITS}g}"},
    )
    return " ".join(text.split())  # matrices print one row per line: join them


def _format_table(rows) -> str:
    widths = [max(len(row[j]) for row in rows) for j in range(len(COLUMNS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
