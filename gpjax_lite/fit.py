"""Fit hyperparameters by maximising the log marginal likelihood with optax.

``fit`` minimises the negative log marginal likelihood ``-log p(y | X, θ)``
(in nats) over every trainable hyperparameter ``θ`` of a model:

* positive hyperparameters (kernel variances, lengthscales, periods, the
  noise, …) are optimised as ``u = log θ`` (see :mod:`gpjax_lite.parameters`),
  so no step can leave the valid region; real ones (a ``Constant`` mean) as
  they are;
* ``fixed=`` holds hyperparameters at their initial values, bit-for-bit;
* the loop is one ``jax.lax.scan`` inside one ``jax.jit``: no Python runs
  per step, and a second call with the same shapes, model structure and
  optimizer object reuses the compiled program;
* ``num_restarts > 1`` optimises that many starting points in parallel under
  one ``vmap`` and keeps the best.

The default optimizer is L-BFGS (``optax.lbfgs()``, with its zoom line
search). Marginal likelihoods have few parameters and are smooth, which is
where quasi-Newton methods shine: on a two-scale sine, 500 Adam steps from a
unit lengthscale stop in a poor local optimum that L-BFGS leaves behind in a
few dozen evaluations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._checks import as_inputs, as_targets, is_concrete
from .parameters import from_unconstrained, to_unconstrained, trainable_mask

#: Standard deviation, in the unconstrained space, of the restart draws:
#: positive hyperparameters are multiplied by ``exp(N(0, 1))`` (a factor
#: within [0.37, 2.7] two times in three); real ones are shifted by ``N(0, 1)``.
RESTART_SPREAD = 1.0

_DEFAULT_OPTIMIZER = optax.lbfgs()


class FitResult(eqx.Module):
    """What :func:`fit` returns.

    Attributes:
        model: the fitted model, with the same structure as the input model.
        losses: ``(num_steps,)`` negative log marginal likelihood (nats) at the
            start of each step (``losses[0]`` is the initial model's) of the
            restart that was kept.
        final_loss: negative log marginal likelihood of ``model``.
        nonfinite_step: the first step whose loss or gradient was NaN/inf, or
            -1 if none was. From that step on the parameters are frozen, so
            ``model`` holds the last finite parameters.
        restart_losses: ``(num_restarts,)`` final loss of every start.
        steps_taken: the number of steps the kept run took (fewer than
            ``num_steps`` when L-BFGS converged early).
    """

    model: Any
    losses: Float[Array, " num_steps"]
    final_loss: Float[Array, ""]
    nonfinite_step: Int[Array, ""]
    restart_losses: Float[Array, " num_restarts"]
    steps_taken: Int[Array, ""]


def fit(
    model,
    X,
    y,
    *,
    optimizer: optax.GradientTransformation = _DEFAULT_OPTIMIZER,
    num_steps: int = 200,
    num_restarts: int = 1,
    key: PRNGKeyArray | None = None,
    fixed: Callable[[Any], Any] | None = None,
    progress: bool = False,
    objective: Callable[[Any, Any, Any], Any] | None = None,
) -> FitResult:
    """Maximise ``model.log_marginal_likelihood(X, y)`` over its hyperparameters.

    Args:
        model: a :class:`~gpjax_lite.GP` (or any module with a
            ``log_marginal_likelihood(X, y)`` method).
        X: inputs ``(n,)`` or ``(n, d)``.
        y: targets ``(n,)``.
        optimizer: any optax ``GradientTransformation``; default
            ``optax.lbfgs()``. Reuse the same object across calls to reuse the
            compiled loop (optax builds new closures for each call of
            ``optax.adam(...)``, and a new optimizer means a new program).
        num_steps: the most optimisation steps (an L-BFGS step includes its line
            search). Line-search optimizers stop early once converged (see
            :data:`FTOL`, :data:`GTOL`); others always take ``num_steps`` steps.
        num_restarts: number of starting points. The first is the model as
            given; the others are drawn around it in the unconstrained space
            with standard deviation :data:`RESTART_SPREAD`. All run in
            parallel under ``vmap``; the best final loss wins.
        key: PRNG key for the restart draws; required when ``num_restarts > 1``.
        fixed: ``lambda model: leaf_or_tuple_of_leaves`` selecting
            hyperparameters (or whole sub-modules) to hold fixed.
        progress: print the loss about 10 times during the run (through
            ``jax.debug.callback``; meant for eager calls, not under ``vmap``).
        objective: the function to maximise, ``objective(model, X, y) -> scalar``;
            default :func:`log_marginal_likelihood`. Sparse models pass their
            bound here. Use a module-level function (not a fresh lambda per
            call) so the compiled loop is reused.

    Returns:
        A :class:`FitResult`. If a loss or gradient became non-finite, the
        model from the last finite step is returned, ``nonfinite_step`` says
        where, and (in eager code) a ``RuntimeWarning`` is issued.

    Raises:
        ValueError: for bad shapes or non-finite data, ``num_steps < 1``,
            ``num_restarts < 1``, or ``num_restarts > 1`` without a ``key``.
    """
    X = as_inputs("X", X)
    y = as_targets("y", y, X.shape[0])
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"`num_steps` must be a positive int, got {num_steps!r}.")
    if not isinstance(num_restarts, int) or num_restarts < 1:
        raise ValueError(f"`num_restarts` must be a positive int, got {num_restarts!r}.")
    if num_restarts > 1 and key is None:
        raise ValueError("`key` is required when `num_restarts > 1` (it draws the starting points).")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            f"`optimizer` must be an optax GradientTransformation, got {type(optimizer).__name__}."
        )
    if objective is None:
        objective = log_marginal_likelihood
    # Shape errors (e.g. per-point noise of the wrong length) surface here, eagerly.
    jax.eval_shape(lambda m: objective(m, X, y), model)

    mask = trainable_mask(model, fixed)
    params, static = eqx.partition(to_unconstrained(model, mask), mask)
    starts = _starting_points(params, num_restarts, key)
    result = _fit_compiled(starts, static, mask, X, y, optimizer, num_steps, progress, objective)

    if is_concrete(result.nonfinite_step) and int(result.nonfinite_step) >= 0:
        warnings.warn(
            f"fit: the loss or its gradient became non-finite at step {int(result.nonfinite_step)}; "
            "returning the model from the last finite step. Try a larger noise, float64, "
            "or a smaller learning rate.",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def log_marginal_likelihood(model, X, y):
    """The default objective of :func:`fit`: ``model.log_marginal_likelihood(X, y)``."""
    return model.log_marginal_likelihood(X, y)


def _starting_points(params, num_restarts: int, key):
    """Stack ``num_restarts`` starting points: the given one first, then random draws."""
    if num_restarts == 1:
        return jax.tree_util.tree_map(lambda p: p[None], params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    keys = jax.random.split(key, len(leaves))
    stacked = []
    for leaf, leaf_key in zip(leaves, keys):
        noise = RESTART_SPREAD * jax.random.normal(
            leaf_key, (num_restarts - 1, *leaf.shape), dtype=leaf.dtype
        )
        stacked.append(jnp.concatenate([leaf[None], leaf[None] + noise]))
    return jax.tree_util.tree_unflatten(treedef, stacked)


@eqx.filter_jit
def _fit_compiled(starts, static, mask, X, y, optimizer, num_steps, progress, objective):
    def to_model(params):
        return from_unconstrained(eqx.combine(params, static), mask)

    def loss_fn(params):
        return -objective(to_model(params), X, y)

    def optimise(params):
        return _optimise(loss_fn, params, optimizer, num_steps, progress)

    num_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
    if num_starts == 1:
        # No vmap for one start: the loop can then stop as soon as it converges.
        first = jax.tree_util.tree_map(lambda leaf: leaf[0], starts)
        final_params, losses, nonfinite_step, steps_taken = jax.tree_util.tree_map(
            lambda leaf: leaf[None], optimise(first)
        )
    else:
        final_params, losses, nonfinite_step, steps_taken = jax.vmap(optimise)(starts)
    final_losses = jax.vmap(loss_fn)(final_params)
    # NaN never wins: rank non-finite final losses last.
    best = jnp.argmin(jnp.where(jnp.isfinite(final_losses), final_losses, jnp.inf))
    pick = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[best], tree)  # noqa: E731
    return FitResult(
        model=to_model(pick(final_params)),
        losses=losses[best],
        final_loss=final_losses[best],
        nonfinite_step=nonfinite_step[best],
        restart_losses=final_losses,
        steps_taken=steps_taken[best],
    )


#: Convergence tests for line-search optimizers (L-BFGS), as in SciPy's L-BFGS-B:
#: stop when the relative decrease of the loss falls below ``FTOL`` or the
#: largest gradient entry below ``GTOL``. First-order optimizers (Adam, …)
#: always run ``num_steps`` steps.
FTOL = 2.220446049250313e-09
GTOL = 1e-5


def _optimise(loss_fn, params, optimizer, num_steps, progress):
    """One optimisation run of at most ``num_steps`` optax updates, in a ``lax.while_loop``.

    Returns the final parameters, the loss at the start of each step (after
    an early stop, the rest repeats the final value), and the first step
    with a non-finite loss or gradient (-1 if none). After such a step the
    parameters stay at their last finite values.
    """
    tx = optax.with_extra_args_support(optimizer)
    state = tx.init(params)
    # L-BFGS's line search stores the value and gradient at the accepted point:
    # reuse them instead of evaluating the objective twice per step.
    has_linesearch = optax.tree_utils.tree_get(state, "value") is not None
    if has_linesearch:
        value_and_grad = optax.value_and_grad_from_state(loss_fn)
    else:
        plain_value_and_grad = jax.value_and_grad(loss_fn)
        value_and_grad = lambda p, state: plain_value_and_grad(p)  # noqa: E731
    report_every = max(num_steps // 10, 1)

    def keep_going(carry):
        t, _, _, _, _, converged = carry
        return (t < num_steps) & ~converged

    def step(carry):
        t, params, state, losses, nonfinite_step, _ = carry
        value, grad = value_and_grad(params, state=state)
        finite = jnp.isfinite(value) & _all_finite(grad)
        nonfinite_step = jnp.where((nonfinite_step < 0) & ~finite, t, nonfinite_step)
        healthy = nonfinite_step < 0

        updates, new_state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
        new_params = optax.apply_updates(params, updates)
        # Freeze at the last finite point once anything went non-finite.
        keep = lambda new, old: jnp.where(healthy, new, old)  # noqa: E731
        params = jax.tree_util.tree_map(keep, new_params, params)
        state = jax.tree_util.tree_map(keep, new_state, state)

        converged = ~healthy
        if has_linesearch:
            new_value = optax.tree_utils.tree_get(new_state, "value")
            decrease = (value - new_value) / jnp.maximum(
                jnp.maximum(jnp.abs(value), jnp.abs(new_value)), 1.0
            )
            small_grad = _max_abs(grad) <= GTOL
            converged = converged | small_grad | (healthy & (decrease <= FTOL))

        if progress:
            jax.lax.cond(
                (t % report_every == 0) | (t == num_steps - 1) | converged,
                lambda: jax.debug.callback(_print_progress, t, value, num_steps),
                lambda: None,
            )
        losses = losses.at[t].set(value)
        return t + 1, params, state, losses, nonfinite_step, converged

    dtype = jnp.result_type(*jax.tree_util.tree_leaves(params)) if jax.tree_util.tree_leaves(params) else float
    losses = jnp.full((num_steps,), jnp.nan, dtype=dtype)
    init = (jnp.asarray(0, jnp.int32), params, state, losses, jnp.asarray(-1, jnp.int32), jnp.asarray(False))
    t, params, _, losses, nonfinite_step, _ = jax.lax.while_loop(keep_going, step, init)
    # After an early stop, repeat the last recorded loss to fill the trace.
    steps = jnp.arange(num_steps)
    losses = jnp.where(steps < t, losses, losses[jnp.maximum(t - 1, 0)])
    return params, losses, nonfinite_step, t


def _max_abs(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.max(jnp.asarray([jnp.max(jnp.abs(leaf)) for leaf in leaves] or [0.0]))


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in leaves] or [True]))


def _print_progress(t, value, num_steps):
    print(f"fit: step {int(t) + 1:>5}/{num_steps}  -log p(y) = {float(value):.6g}", flush=True)
