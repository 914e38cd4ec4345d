"""Eager input checks shared by kernels, models and fitting.

Shapes are static in JAX, so shape errors are raised even inside ``jit``.
Values (finiteness, positivity) can only be inspected on concrete arrays; on
tracers these checks are skipped, which is why every public entry point runs
them *before* any compiled work starts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np


def is_concrete(x) -> bool:
    """True when ``x`` holds actual numbers (not a tracer inside jit/grad/vmap)."""
    return not isinstance(x, jax.core.Tracer)


def all_finite(tree) -> jax.Array:
    """Whether every entry of every array leaf of ``tree`` is finite (``True`` for no leaves);
    traceable, a boolean scalar."""
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in leaves] or [True]))


def as_float_array(value) -> jax.Array:
    """Convert a hyperparameter to a floating-point JAX array.

    Python floats stay weakly typed, so a default such as ``variance=1.0`` does
    not promote float32 inputs to float64 when ``jax_enable_x64`` is on.
    Integers are promoted to the default float type (gradients need floats).
    """
    if isinstance(value, jax.core.Tracer):
        return value
    array = jnp.asarray(value)
    if not jnp.issubdtype(array.dtype, jnp.inexact):
        if array.weak_type:
            # A Python int (e.g. `2 * k`, `lengthscale=2`) is as weak as a Python
            # float: adding a weak 0.0 gives a weakly typed float, so it cannot
            # promote float32 inputs to float64 either.
            array = array + 0.0
        else:
            array = array.astype(jnp.result_type(float))
    return array


def real_values(name: str, value) -> np.ndarray:
    """``value`` as a NumPy array of real numbers, or a ``TypeError`` naming ``name``.

    Integers and floats pass; bools, complex numbers, strings, ``None``,
    objects and ragged sequences are a ``TypeError`` (never a NumPy error).
    """
    try:
        values = np.asarray(value)
    except (TypeError, ValueError):  # ragged sequences, unconvertible objects
        values = None
    if values is None or values.dtype.kind not in "iuf":
        got = (
            values.dtype
            if values is not None and values.dtype.kind != "O"
            else type(value).__name__
        )
        raise TypeError(f"`{name}` must be a real number or an array of real numbers, got {got}.")
    return values


def check_positive(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` unless every entry is finite and > 0.

    Raises ``TypeError`` naming ``name`` if ``value`` is not real (see :func:`real_values`).
    """
    if not is_concrete(value):
        return
    values = real_values(name, value)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError(f"`{name}` must be positive and finite, got {_show(values)}.")


def _show(values: np.ndarray) -> str:
    """A short rendering of a value for an error message: the number, or a few entries."""
    if values.ndim == 0:
        return repr(values.item())
    return f"an array of shape {values.shape}: " + np.array2string(values, threshold=8, precision=4)


def check_finite(name: str, value) -> None:
    """Raise ``ValueError`` naming ``name`` if a concrete array holds NaN or inf.

    Raises ``TypeError`` naming ``name`` if ``value`` is not real (see :func:`real_values`).
    """
    if not is_concrete(value):
        return
    values = real_values(name, value)
    if not np.all(np.isfinite(values)):
        bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
        raise ValueError(f"`{name}` must be finite, but {bad} of its entries are NaN or inf.")


def as_inputs(name: str, X) -> jax.Array:
    """Return inputs as a 2-D ``(n, d)`` array; a 1-D ``(n,)`` array is read as ``(n, 1)``."""
    X = as_real_array(name, X)
    if X.ndim == 1:
        X = X[:, None]
    elif X.ndim != 2:
        raise ValueError(
            f"`{name}` must have shape (n,) or (n, d), got an array of shape {X.shape}."
        )
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(
            f"`{name}` must hold at least one point with at least one column, got shape {X.shape}."
        )
    check_finite(name, X)
    return X


def as_point(name: str, x) -> jax.Array:
    """Return a single input point as a 1-D ``(d,)`` array; a scalar is read as ``(1,)``."""
    x = as_real_array(name, x)
    if x.ndim == 0:
        x = x[None]
    elif x.ndim != 1 or x.shape[0] == 0:
        raise ValueError(
            f"`{name}` must be a scalar or a point of shape (d,), got shape {x.shape}."
        )
    return x


def as_targets(name: str, y, n: int) -> jax.Array:
    """Return observed targets as a 1-D ``(n,)`` array matching ``n`` inputs."""
    y = as_real_array(name, y)
    if y.ndim != 1:
        raise ValueError(f"`{name}` must be 1-D with shape (n,), got shape {y.shape}.")
    if y.shape[0] != n:
        raise ValueError(
            f"`{name}` has {y.shape[0]} entries but `X` has {n} rows: shapes must agree."
        )
    check_finite(name, y)
    return y


def check_kernel_and_mean(kernel, mean) -> None:
    """The two parts every GP-like model holds: a ``Kernel`` and a callable mean."""
    from .kernels.base import Kernel  # here, not at the top: kernels import this module

    if not isinstance(kernel, Kernel):
        raise TypeError(
            f"`kernel` must be a gpjax_lite.kernels.Kernel, got {type(kernel).__name__}."
        )
    if not callable(mean):
        raise TypeError(f"`mean` must be callable on one point, got {type(mean).__name__}.")


def check_key(key, name: str = "key") -> None:
    """Raise ``TypeError`` naming ``name`` unless ``key`` is one JAX PRNG key.

    Accepted: a typed key (``jax.random.key(0)``, shape ``()``) or a legacy raw
    key (``jax.random.PRNGKey(0)``, a ``uint32`` array of shape ``(2,)``).
    Checked before any factorisation, so a bad key never costs a Cholesky.
    """
    if isinstance(key, (jax.Array, np.ndarray)) or isinstance(key, jax.core.Tracer):
        dtype = key.dtype
        if jnp.issubdtype(dtype, jax.dtypes.prng_key):
            if key.shape == ():
                return
        elif dtype == jnp.uint32 and key.shape == (2,):
            return
    raise TypeError(
        f"`{name}` must be a single JAX PRNG key (`jax.random.key(0)`), got "
        f"{type(key).__name__}"
        + (f" of dtype {key.dtype} and shape {key.shape}" if hasattr(key, "shape") else "")
        + "."
    )


def evaluate_mean(mean, X) -> jax.Array:
    """``m(X)``: the mean function on every row of ``X`` ``(n, d)``, checked to be ``(n,)``.

    Shapes are static, so a mean whose ``__call__`` returns anything but a
    scalar per point is a ``ValueError`` naming ``mean``, under ``jit`` too.
    """
    values = jax.vmap(mean)(X)
    if values.shape != X.shape[:1]:
        raise ValueError(
            f"`mean` must return a scalar for one point of shape ({X.shape[1]},), but "
            f"{type(mean).__name__} returned shape {values.shape[1:]} per point."
        )
    if not jnp.issubdtype(values.dtype, jnp.floating):
        raise TypeError(
            f"`mean` must return a real floating-point scalar, got dtype {values.dtype}."
        )
    check_finite("mean", values)
    return values


def check_jitter(jitter) -> None:
    """``jitter`` must be ``None`` or a non-negative, finite real number (a static setting).

    Raises:
        TypeError: for a non-numeric jitter (a string, a bool, an array).
        ValueError: for a negative or non-finite jitter.
    """
    if jitter is None:
        return
    if isinstance(jitter, (bool, np.bool_)) or not isinstance(
        jitter, (int, float, np.floating, np.integer)
    ):
        raise TypeError(f"`jitter` must be None or a real number, got {jitter!r}.")
    if not (np.isfinite(jitter) and jitter >= 0):
        raise ValueError(f"`jitter` must be non-negative and finite, got {jitter!r}.")


def as_real_array(name: str, value) -> jax.Array:
    """``value`` as a real floating-point JAX array; ``TypeError`` naming ``name`` otherwise.

    Integers and booleans (class labels, say) become the default float type;
    complex, string and object values (and ragged lists) are rejected, so
    nothing non-numeric reaches JAX.
    """
    if isinstance(value, jax.core.Tracer):
        array = value
    else:
        try:
            array = jnp.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"`{name}` must be a real numeric array, got {type(value).__name__} ({error})."
            ) from error
    dtype = array.dtype
    if jnp.issubdtype(dtype, jnp.complexfloating):
        raise TypeError(f"`{name}` must be real-valued, got dtype {dtype}.")
    if not (jnp.issubdtype(dtype, jnp.number) or jnp.issubdtype(dtype, jnp.bool_)):
        raise TypeError(f"`{name}` must be a real numeric array, got dtype {dtype}.")
    if not jnp.issubdtype(dtype, jnp.floating):
        array = array.astype(jnp.result_type(float))
    return array


def model_inputs(model, X, name: str = "X") -> jax.Array:
    """The checks every model entry point runs on its inputs, in order, before any compiled work:

    the model's hyperparameters (values set around the constructor included,
    see :func:`gpjax_lite.parameters.check_hyperparameters`), then ``X`` as an
    ``(n, d)`` array (:func:`as_inputs`), then the model's solver, if it has
    one (its errors name ``X``: the state-space solver takes one column), then
    ``d`` against the kernel.
    """
    from .parameters import check_hyperparameters  # here: parameters imports this module

    check_hyperparameters(model)
    X = as_inputs(name, X)
    solver = getattr(model, "solver", None)
    if solver is not None:
        solver.check_inputs(model.kernel, X, name)
    model.kernel.check_input_dim(X.shape[1])
    return X


def as_test_inputs(model, Xt, num_columns: int) -> jax.Array:
    """Test inputs ``Xt`` for a posterior of ``model`` trained on ``num_columns`` columns."""
    Xt = model_inputs(model, Xt, "Xt")
    if Xt.shape[1] != num_columns:
        raise ValueError(
            f"`Xt` must have d = {num_columns} columns like the training inputs, "
            f"got shape {Xt.shape}."
        )
    return Xt
