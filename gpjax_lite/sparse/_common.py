"""Pieces shared by the sparse models: checks, the ``q_sqrt`` constraint and row chunking."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._checks import as_float_array, as_inputs, is_concrete
from ..linalg import add_jitter, cholesky
from ..parameters import CONSTRAINT

LOG_2PI = math.log(2.0 * math.pi)


class LowerTriangular:
    """A lower-triangular matrix ``L`` with a positive diagonal (a Cholesky factor).

    The model stores ``L`` itself (its natural value). Optimisers see the
    unconstrained matrix ``U`` with ``U = tril(L, -1) + diag(log diag L)``;
    the inverse map is ``L = tril(U, -1) + diag(exp(diag U))``, so every
    optimiser step gives a valid factor. Entries above the diagonal of ``U``
    are ignored (their gradient is zero).
    """

    name = "lower-triangular"

    @staticmethod
    def to_unconstrained(value):
        diag = jnp.diagonal(value, axis1=-2, axis2=-1)
        return jnp.tril(value, -1) + _diag_embed(jnp.log(diag))

    @staticmethod
    def from_unconstrained(u):
        diag = jnp.diagonal(u, axis1=-2, axis2=-1)
        return jnp.tril(u, -1) + _diag_embed(jnp.exp(diag))


def _diag_embed(d):
    return d[..., :, None] * jnp.eye(d.shape[-1], dtype=d.dtype)


def lower_triangular_field(default: Any = dataclasses.MISSING, **kwargs) -> Any:
    """A module field holding a Cholesky factor (see :class:`LowerTriangular`)."""
    return eqx.field(
        default=default, converter=as_float_array, metadata={CONSTRAINT: LowerTriangular}, **kwargs
    )


def check_inducing_inputs(Z) -> jax.Array:
    """Inducing inputs as ``(m, d)`` (``(m,)`` read as ``(m, 1)``), finite, with ``m >= 1``."""
    Z = as_inputs("inducing_inputs", Z)
    if Z.shape[0] < 1:
        raise ValueError(f"`inducing_inputs` must hold at least one point, got shape {Z.shape}.")
    return Z


def check_columns(name: str, X, Z) -> None:
    """``X`` must have as many columns as the inducing inputs."""
    if X.shape[1] != Z.shape[1]:
        raise ValueError(
            f"`{name}` has d = {X.shape[1]} columns but `inducing_inputs` has shape {Z.shape} "
            f"(d = {Z.shape[1]}): they must have the same number of columns."
        )


def check_scalar_noise(noise) -> None:
    if jnp.ndim(noise) != 0:
        raise ValueError(
            f"`noise` must be a scalar for sparse models, got shape {jnp.shape(noise)}."
        )


def check_chunk_size(chunk_size) -> None:
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"`chunk_size` must be a positive int or None, got {chunk_size!r}.")


def inducing_cholesky(kernel, Z, jitter):
    """Lower factor of ``k(Z, Z) + jitter · mean(diag) · I`` ``(m, m)``.

    ``Kzz`` has no noise, so it always gets the relative jitter of
    :func:`gpjax_lite.linalg.add_jitter` (``None``: 1e-8 in float64, 1e-4 in
    float32).
    """
    return cholesky(
        add_jitter(kernel.gram(Z), jitter), what="k(Z, Z) + jitter·I (the inducing inputs)"
    )


# --------------------------------------------------------------------- chunking
def _pad_rows(a, num_chunks, chunk_size):
    n = a.shape[0]
    pad = num_chunks * chunk_size - n
    if pad:
        # Repeat the last row: padded rows stay finite and get weight 0.
        a = jnp.concatenate([a, jnp.broadcast_to(a[-1:], (pad, *a.shape[1:]))], axis=0)
    return a.reshape(num_chunks, chunk_size, *a.shape[1:])


def chunked_sum(fn, arrays, chunk_size, dtype):
    """``Σ_chunks fn(*chunk_arrays, weights)`` over row chunks of ``arrays``.

    ``fn`` must weight each row's contribution by ``weights`` (1 for real
    rows, 0 for padding). With ``chunk_size=None`` or ``n <= chunk_size``
    this is one call on all rows; otherwise a ``lax.scan`` over chunks whose
    body is rematerialised (``jax.checkpoint``), so neither the forward nor
    the backward pass holds more than one ``(chunk_size, m)`` block.
    """
    n = arrays[0].shape[0]
    if chunk_size is None or n <= chunk_size:
        return fn(*arrays, jnp.ones((n,), dtype))
    num_chunks = -(-n // chunk_size)
    chunks = [_pad_rows(a, num_chunks, chunk_size) for a in arrays]
    weights = (
        (jnp.arange(num_chunks * chunk_size) < n).astype(dtype).reshape(num_chunks, chunk_size)
    )

    body_fn = jax.checkpoint(fn)
    first = jax.eval_shape(fn, *[c[0] for c in chunks], weights[0])
    init = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), first)

    def body(total, xs):
        part = body_fn(*xs)
        return jax.tree_util.tree_map(jnp.add, total, part), None

    total, _ = jax.lax.scan(body, init, (*chunks, weights))
    return total


def chunked_map(fn, X, chunk_size):
    """``fn(X)`` row-wise over chunks of ``X`` (``lax.map``); outputs are ``(n, ...)`` pytrees."""
    n = X.shape[0]
    if chunk_size is None or n <= chunk_size:
        return fn(X)
    num_chunks = -(-n // chunk_size)
    out = jax.lax.map(fn, _pad_rows(X, num_chunks, chunk_size))
    return jax.tree_util.tree_map(lambda a: a.reshape(-1, *a.shape[2:])[:n], out)


def as_int(name: str, value, *, minimum: int = 1, maximum: int | None = None) -> int:
    """A Python/NumPy integer in ``[minimum, maximum]``: ``TypeError`` naming ``name`` for
    another type (a float, a bool), ``ValueError`` for a value outside the range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"`{name}` must be an int, got {value!r}.")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"`{name}` must be {bound}, got {value}.")
    return value


def check_lower_triangular(q_sqrt, m: int) -> None:
    if jnp.shape(q_sqrt) != (m, m):
        raise ValueError(
            f"`q_sqrt` must have shape (m, m) = ({m}, {m}) for m inducing inputs, "
            f"got {jnp.shape(q_sqrt)}."
        )
    if not is_concrete(q_sqrt):
        return
    L = np.asarray(q_sqrt)
    if not np.all(np.isfinite(L)):
        raise ValueError("`q_sqrt` must be finite.")
    if np.any(np.triu(L, 1) != 0):
        raise ValueError("`q_sqrt` must be lower triangular (the Cholesky factor of S).")
    if not np.all(np.diagonal(L) > 0):
        raise ValueError("`q_sqrt` must have a positive diagonal.")
