"""Many small problems under ``jax.vmap``: run them a cache-sized chunk at a time on the CPU.

``jax.vmap`` of a marginal likelihood over, say, 512 datasets of 64 points
vectorises every step over the whole batch: each intermediate is a stack of
512 matrices (16 MiB in float64), far beyond the caches, and XLA:CPU's scratch
memory for them is fresh, page-faulted memory on every call. The same
vectorised code run on chunks of a few dozen problems keeps its intermediates
in cache and its scratch memory small (see benchmarks case ``batched``).

:func:`vmap_in_chunks` makes a scalar function do that under ``jax.vmap``,
with the same numbers and any derivative: its value and the gradients its
derivatives need are computed in chunks by ``jax.lax.map`` (a loop over
chunks, each one vectorised). On accelerators the whole batch at once is what
keeps the device busy, so there it is a plain ``vmap``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero


def vmap_in_chunks(f, chunk_size: int):
    """``f`` (a scalar function of arrays), run by ``jax.vmap`` ``chunk_size`` problems at a time.

    Unbatched, the result is ``f`` itself. Batched on the CPU, ``f`` and its
    gradient run in a loop over chunks of the batch. Derivatives of every
    order and mode work: the derivative is written as the gradient, computed
    in chunks, dotted with the tangents (``df = Σ ∂f/∂aᵢ daᵢ``), and only the
    arguments that are differentiated get a gradient.

    Args:
        f: a function of JAX arrays (positional) returning a scalar.
        chunk_size: problems per chunk; ``1`` runs them one at a time.
    """

    @jax.custom_jvp
    def chunked(*args):
        return _map_in_chunks(f, chunk_size)(*args)

    def chunked_jvp(primals, tangents):
        # Gradients only for the arguments with a tangent: the others (say the
        # inputs X when fitting hyperparameters) would cost a pass of their own.
        moving = [not isinstance(t, SymbolicZero) for t in tangents]

        def value_and_gradient(*args):
            def of_moving(*moving_args):
                return f(*_replace(args, moving, moving_args))

            argnums = tuple(range(sum(moving)))
            return jax.value_and_grad(of_moving, argnums=argnums)(*_pick(args, moving))

        value, grads = _map_in_chunks(value_and_gradient, chunk_size)(*primals)
        products = (jnp.sum(g * t) for g, t in zip(grads, _pick(tangents, moving)))
        # In the value's dtype, as JAX's own rules give it: a float64 argument (a
        # hyperparameter) of a float32 computation has float64 gradients and tangents.
        return value, sum(products, jnp.zeros_like(value)).astype(value.dtype)

    chunked.defjvp(chunked_jvp, symbolic_zeros=True)
    return chunked


def _map_in_chunks(f, chunk_size: int):
    """``f``, whose ``jax.vmap`` is a ``jax.lax.map`` over chunks of ``chunk_size`` on the CPU.

    Differentiable through ``f`` itself (``custom_vmap`` alone is not
    differentiable in reverse mode).
    """
    batched = custom_vmap(f)

    @batched.def_vmap
    def rule(axis_size, in_batched, *args):
        in_axes = tuple(0 if b else None for b in in_batched)
        if jax.default_backend() != "cpu" or chunk_size >= axis_size:
            out = jax.vmap(f, in_axes=in_axes)(*args)
        else:
            # Unbatched arguments are shared by every chunk, not mapped over.
            def on_chunk(mapped):
                return f(*_replace(args, in_batched, mapped))

            out = jax.lax.map(on_chunk, _pick(args, in_batched), batch_size=chunk_size)
        return out, jax.tree_util.tree_map(lambda _: True, out)

    @jax.custom_jvp
    def differentiable(*args):
        return batched(*args)

    differentiable.defjvp(lambda primals, tangents: jax.jvp(f, primals, tangents))
    return differentiable


def _pick(args, mask):
    """The entries of ``args`` where ``mask`` is true, as a tuple."""
    return tuple(a for a, m in zip(args, mask) if m)


def _replace(args, mask, values):
    """``args`` with the entries where ``mask`` is true replaced, in order, by ``values``."""
    values = iter(values)
    return tuple(next(values) if m else a for a, m in zip(args, mask))
