"""L-BFGS whose compiled program holds the objective once: ``lbfgs()``, the default of ``fit``.

A quasi-Newton step (Nocedal & Wright 2006, *Numerical Optimization*, 2nd ed.)
moves from ``x`` along the L-BFGS direction ``d = -P ∇f(x)`` (Alg. 7.4, the
two-loop recursion; here :func:`optax.scale_by_lbfgs`) by a step ``α`` that
satisfies the strong Wolfe conditions (eqs. 3.7)::

    f(x + α d) ≤ f(x) + c₁ α ∇f(x)ᵀd          (sufficient decrease)
    |∇f(x + α d)ᵀd| ≤ c₂ |∇f(x)ᵀd|            (curvature)

found by bracketing and zooming (Alg. 3.5 and 3.6, with the safeguarded
cubic interpolation of eq. 3.59).

Why not ``optax.lbfgs()`` itself: its zoom line search evaluates the
objective in both branches of a ``lax.cond``, and the first step evaluates it
once more, so a compiled fit holds three copies of the objective and its
gradient, and XLA compiles each (the ``compile`` case of ``python -m
benchmarks``). Here every evaluation, the one at the starting point included,
happens at one place: the body of a ``lax.while_loop`` whose state says where
to evaluate next and what to do with the value. The algorithm is the same
family (the same direction, a strong-Wolfe step), so a fit reaches the same
optimum; the iterates differ from optax's in round-off and in the choice of
trial steps.

``update(updates, state, params, *, value_fn)`` takes one L-BFGS step from
``params``: ``updates`` (the gradient an ordinary optax loop would pass) is
ignored, because the state already holds the value and gradient at
``params`` (every step's line search ends at the next ``params``), and the
first call evaluates them itself. Use it like any optax optimizer that takes
``value_fn``::

    opt = gpjax_lite.lbfgs()
    state = opt.init(params)
    for _ in range(100):
        updates, state = opt.update(None, state, params, value_fn=f)
        params = optax.apply_updates(params, updates)

``state.value`` and ``state.grad`` are then ``f`` and its gradient at
``params``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from ._checks import all_finite

#: Strong Wolfe constants (Nocedal & Wright 2006, §3.1: ``c₁ = 1e-4`` and, for
#: quasi-Newton methods, ``c₂ = 0.9``).
SUFFICIENT_DECREASE = 1e-4
CURVATURE = 0.9
#: Each bracketing step that neither decreases enough nor turns the slope
#: multiplies the trial step by this factor.
EXPANSION = 2.0
#: A zoom trial stays at least this fraction of the bracket away from its ends
#: (otherwise it bisects): the safeguard of the cubic interpolation.
SAFEGUARD = 0.1


class LBFGSState(NamedTuple):
    """The state of :func:`lbfgs` at ``params`` (the point after the last step).

    ``value`` and ``grad`` are the objective and its gradient there (``inf``
    and zeros before the first step); ``start_value`` and ``start_grad`` at
    the point the last step started from; ``num_evaluations`` is the number of
    objective evaluations the last step made (its line search included).
    """

    value: jax.Array
    grad: Any
    start_value: jax.Array
    start_grad: Any
    num_evaluations: jax.Array
    memory: optax.OptState  # optax.scale_by_lbfgs's memory of (Δx, Δ∇f) pairs


class _Search(NamedTuple):
    """The line search along ``d`` from ``x`` (``α = 0``), one evaluation per iteration."""

    count: jax.Array  # evaluations made
    phase: jax.Array  # _START, _DIRECTION, _BRACKET, _ZOOM or _DONE
    alpha: jax.Array  # where to evaluate next
    f0: jax.Array  # f, ∇f, the direction and the slope ∇fᵀd at x
    g0: Any
    d: Any
    s0: jax.Array
    memory: optax.OptState
    prev: jax.Array  # the previous bracketing trial: (α, f, slope), and ∇f there
    g_prev: Any
    lo: jax.Array  # the bracket's end with the lower value: (α, f, slope), and ∇f there
    g_lo: Any
    hi: jax.Array  # its other end: (α, f, slope)
    accepted: jax.Array  # (α, f) of the accepted step
    g_accepted: Any


_START, _DIRECTION, _BRACKET, _ZOOM, _DONE = range(5)


def lbfgs(
    memory_size: int = 10, max_evaluations: int = 30
) -> optax.GradientTransformationExtraArgs:
    """L-BFGS with a strong-Wolfe line search, evaluating the objective at one place in the program.

    Args:
        memory_size: the number of ``(Δx, Δ∇f)`` pairs kept for the inverse
            Hessian approximation (as in :func:`optax.lbfgs`).
        max_evaluations: the most evaluations of the objective per step. A
            step that runs out takes the lowest point it found if that
            decreased the objective, and otherwise stays put (``value`` equals
            ``start_value``: the run has converged as far as this step can
            tell).

    Returns:
        An ``optax.GradientTransformationExtraArgs`` whose ``update`` needs the
        keyword argument ``value_fn`` (the objective, ``params -> scalar``).

    Raises:
        TypeError / ValueError: for a ``memory_size`` or ``max_evaluations``
            that is not a positive int.
    """
    for name, value in (("memory_size", memory_size), ("max_evaluations", max_evaluations)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"`{name}` must be an int, got {type(value).__name__}.")
        if value < 1:
            raise ValueError(f"`{name}` must be at least 1, got {value}.")
    direction_of = optax.scale_by_lbfgs(memory_size)

    def init(params) -> LBFGSState:
        zeros = optax.tree.zeros_like(params)
        inf = jnp.asarray(jnp.inf, _dtype(params))
        count = jnp.asarray(0, jnp.int32)
        return LBFGSState(inf, zeros, inf, zeros, count, direction_of.init(params))

    def update(updates, state: LBFGSState, params, *, value_fn, **extra_args):
        del updates, extra_args
        value_and_grad = jax.value_and_grad(value_fn)
        dtype = _dtype(params)

        def descent_direction(g, memory):
            """``-P g`` from the L-BFGS memory, or ``-g`` (scaled to length ≤ 1) if that is
            no descent direction (a pair with Δxᵀ Δ∇f ≤ 0 entered the memory)."""
            p, memory = direction_of.update(g, memory, params)
            d, s = optax.tree.scale(-1.0, p), optax.tree.vdot(g, p)
            norm = optax.tree.norm(g)
            fallback = optax.tree.scale(-jnp.minimum(1.0, 1.0 / norm), g)
            ok = s > 0
            d = jax.tree.map(lambda a, b: jnp.where(ok, a, b), d, fallback)
            return d, optax.tree.vdot(g, d).astype(dtype), memory

        def body(search: _Search) -> _Search:
            # A new direction, then an evaluation, in the same iteration: under `vmap`
            # (restarts on an accelerator) a `cond` runs both branches, and an
            # iteration of its own for the direction would cost an evaluation.
            search = jax.lax.cond(search.phase == _DIRECTION, set_direction, lambda s: s, search)
            return evaluate(search)

        def evaluate(search: _Search) -> _Search:
            # The only evaluation of the objective in the program: at `params`
            # itself on the first step (α = 0), then at each trial step.
            trial = optax.tree.add_scale(params, search.alpha, search.d)
            f, g = value_and_grad(trial)
            f = f.astype(dtype)
            slope = optax.tree.vdot(g, search.d).astype(dtype)
            search = search._replace(count=search.count + 1)
            return jax.lax.cond(
                search.phase == _START, record_start, line_search_step, search, f, g, slope
            )

        def record_start(search: _Search, f, g, slope) -> _Search:
            finite = jnp.isfinite(f) & all_finite(g)
            return search._replace(
                phase=_phase(jnp.where(finite, _DIRECTION, _DONE)),
                f0=f,
                g0=g,
                accepted=jnp.stack([jnp.zeros((), dtype), f]),
                g_accepted=g,
            )

        def set_direction(search: _Search) -> _Search:
            """The L-BFGS direction at ``params``; the line search starts at ``α = 1``."""
            d, s0, memory = descent_direction(search.g0, search.memory)
            origin = jnp.stack([jnp.zeros((), dtype), search.f0, s0])
            return search._replace(
                phase=_phase(_BRACKET),
                alpha=jnp.asarray(1.0, dtype),
                d=d,
                s0=s0,
                memory=memory,
                prev=origin,
                g_prev=search.g0,
                lo=origin,
                g_lo=search.g0,
                hi=origin,
            )

        def line_search_step(search: _Search, f, g, slope) -> _Search:
            alpha, f0, s0 = search.alpha, search.f0, search.s0
            finite = jnp.isfinite(f) & jnp.isfinite(slope) & all_finite(g)
            too_high = ~finite | (f > f0 + SUFFICIENT_DECREASE * alpha * s0)
            flat_enough = finite & (jnp.abs(slope) <= -CURVATURE * s0)
            here = jnp.stack([alpha, f, slope])
            lo, hi = search.lo, search.hi
            bracketing = search.phase == _BRACKET
            # Bracketing (Alg. 3.5): a trial too high, or no lower than the previous
            # one, brackets a minimiser with the previous trial; an uphill slope
            # brackets one with this trial as the low end.
            too_high_b = too_high | ((search.prev[0] > 0) & (f >= search.prev[1]))
            uphill = finite & (slope >= 0)
            # Zoom (Alg. 3.6): a trial too high (or no lower than the low end)
            # becomes the high end; otherwise the low end, and the old low end
            # becomes the high end if the slope points back at it.
            too_high_z = too_high | (f >= lo[1])
            flips = slope * (hi[0] - lo[0]) >= 0
            accept = jnp.where(bracketing, ~too_high_b & flat_enough, ~too_high_z & flat_enough)
            new_lo = jnp.where(
                bracketing,
                jnp.where(too_high_b, search.prev, here),
                jnp.where(too_high_z, lo, here),
            )
            g_lo = jax.tree.map(
                lambda here_g, prev_g, lo_g: jnp.where(
                    bracketing,
                    jnp.where(too_high_b, prev_g, here_g),
                    jnp.where(too_high_z, lo_g, here_g),
                ),
                g,
                search.g_prev,
                search.g_lo,
            )
            new_hi = jnp.where(
                bracketing,
                jnp.where(too_high_b, here, search.prev),
                jnp.where(too_high_z, here, jnp.where(flips, lo, hi)),
            )
            zoom = jnp.where(bracketing, too_high_b | uphill, True)
            next_alpha = jnp.where(zoom, _cubic_step(new_lo, new_hi), EXPANSION * alpha)
            width = jnp.abs(new_hi[0] - new_lo[0])
            interval_gone = zoom & (
                width <= jnp.finfo(dtype).eps * jnp.maximum(new_lo[0], new_hi[0])
            )
            out_of_evaluations = search.count >= max_evaluations
            give_up = ~accept & (interval_gone | out_of_evaluations)
            # Giving up takes the bracket's low end if it decreased f, else stays at x.
            accepted = jnp.where(accept, jnp.stack([alpha, f]), new_lo[:2])
            g_accepted = jax.tree.map(lambda a, b: jnp.where(accept, a, b), g, g_lo)
            return search._replace(
                phase=_phase(jnp.where(accept | give_up, _DONE, jnp.where(zoom, _ZOOM, _BRACKET))),
                alpha=next_alpha,
                prev=jnp.where(zoom, search.prev, here),
                g_prev=jax.tree.map(lambda a, b: jnp.where(zoom, a, b), search.g_prev, g),
                lo=jnp.where(zoom, new_lo, search.lo),
                g_lo=jax.tree.map(lambda a, b: jnp.where(zoom, a, b), g_lo, search.g_lo),
                hi=jnp.where(zoom, new_hi, search.hi),
                accepted=accepted,
                g_accepted=g_accepted,
            )

        # A known value and gradient at `params` (every step after the first):
        # straight to the direction; otherwise evaluate them first.
        known = jnp.isfinite(state.value)
        zero = jnp.zeros((), dtype)
        nowhere = jnp.stack([zero, state.value, zero])
        search = _Search(
            count=jnp.asarray(0, jnp.int32),
            phase=_phase(jnp.where(known, _DIRECTION, _START)),
            alpha=zero,
            f0=state.value,
            g0=state.grad,
            d=optax.tree.zeros_like(state.grad),
            s0=zero,
            memory=state.memory,
            prev=nowhere,
            g_prev=state.grad,
            lo=nowhere,
            g_lo=state.grad,
            hi=nowhere,
            accepted=jnp.stack([zero, state.value]),
            g_accepted=state.grad,
        )
        search = jax.lax.while_loop(lambda s: s.phase != _DONE, body, search)
        step = search.accepted[0]
        new_state = LBFGSState(
            value=search.accepted[1],
            grad=search.g_accepted,
            start_value=search.f0,
            start_grad=search.g0,
            num_evaluations=search.count,
            memory=search.memory,
        )
        # `where`, not a product: a start with a non-finite gradient has a NaN direction.
        updates = jax.tree.map(lambda d: jnp.where(step == 0, 0.0, step * d), search.d)
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init, update)


def _cubic_step(lo, hi):
    """The minimiser of the cubic through ``(α, f, f')`` at both ends of the bracket
    (Nocedal & Wright 2006, eq. 3.59), kept :data:`SAFEGUARD` of the bracket away
    from its ends; the midpoint where that fails."""
    a, fa, sa = lo[0], lo[1], lo[2]
    b, fb, sb = hi[0], hi[1], hi[2]
    d1 = sa + sb - 3.0 * (fa - fb) / (a - b)
    d2 = jnp.sign(b - a) * jnp.sqrt(jnp.maximum(d1**2 - sa * sb, 0.0))
    cubic = b - (b - a) * (sb + d2 - d1) / (sb - sa + 2.0 * d2)
    midpoint = 0.5 * (a + b)
    left, right = jnp.minimum(a, b), jnp.maximum(a, b)
    margin = SAFEGUARD * (right - left)
    inside = (cubic >= left + margin) & (cubic <= right - margin)
    ok = jnp.isfinite(cubic) & inside & (d1**2 - sa * sb >= 0)
    return jnp.where(ok, cubic, midpoint)


def _phase(value) -> jax.Array:
    return jnp.asarray(value, jnp.int32)


def _dtype(params):
    leaves = jax.tree_util.tree_leaves(params)
    return jnp.result_type(*leaves) if leaves else jnp.float32
