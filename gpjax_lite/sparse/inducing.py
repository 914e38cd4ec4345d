"""Choosing initial inducing inputs ``Z``: a random subset of the data, or k-means centres."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from .._checks import as_inputs, check_key
from ._common import as_int


def inducing_subset(key: PRNGKeyArray, X, num_inducing: int) -> Float[Array, "m d"]:
    """``num_inducing`` distinct rows of ``X`` drawn uniformly at random, ``(m, d)``."""
    check_key(key)
    X = as_inputs("X", X)
    m = as_int("num_inducing", num_inducing, minimum=1, maximum=X.shape[0])
    idx = jax.random.choice(key, X.shape[0], (m,), replace=False)
    return X[idx]


def inducing_kmeans(
    key: PRNGKeyArray, X, num_inducing: int, *, num_iters: int = 20, max_points: int = 20_000
) -> Float[Array, "m d"]:
    """k-means centres of ``X`` (or of ``max_points`` rows drawn from it), ``(m, d)``.

    Lloyd's algorithm, ``num_iters`` iterations in one compiled
    ``lax.fori_loop``, started from ``m`` distinct random rows; an empty
    cluster keeps its previous centre. When ``n > max_points`` the rows are
    first subsampled (uniformly, with replacement, ``O(max_points)``). Cost
    ``O(num_iters · max_points · m · d)``. Usually a better start than
    :func:`inducing_subset`: the centres spread over where the data are.

    Raises:
        TypeError: if ``key`` is not a PRNG key, or ``X`` is not real numeric.
        ValueError: for mis-shaped or non-finite ``X``, or integer arguments
            out of range.
    """
    check_key(key)
    X = as_inputs("X", X)
    m = as_int("num_inducing", num_inducing, minimum=1, maximum=X.shape[0])
    num_iters = as_int("num_iters", num_iters, minimum=0)
    max_points = as_int("max_points", max_points, minimum=m)
    k_sub, k_init = jax.random.split(key)
    if X.shape[0] > max_points:
        # With replacement: O(max_points) (a permutation of all n rows would sort them);
        # a repeated row only weighs a little more in its cluster's mean.
        X = X[jax.random.randint(k_sub, (max_points,), 0, X.shape[0])]
    init = X[jax.random.choice(k_init, X.shape[0], (m,), replace=False)]
    return _lloyd(X, init, num_iters)


@functools.partial(jax.jit, static_argnums=2)
def _lloyd(X, centres, num_iters):
    def step(_, centres):
        d2 = jnp.sum(centres**2, axis=1)[None, :] - 2.0 * X @ centres.T  # + |x|², same argmin
        labels = jnp.argmin(d2, axis=1)
        m = centres.shape[0]
        counts = jax.ops.segment_sum(jnp.ones(X.shape[0], X.dtype), labels, num_segments=m)
        sums = jax.ops.segment_sum(X, labels, num_segments=m)
        # an empty cluster keeps its centre
        return jnp.where(counts[:, None] > 0, sums / jnp.maximum(counts, 1.0)[:, None], centres)

    return jax.lax.fori_loop(0, num_iters, step, centres)
