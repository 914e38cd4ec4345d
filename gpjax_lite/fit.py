"""Fit hyperparameters by maximising the log marginal likelihood with optax.

``fit`` minimises the negative log marginal likelihood ``-log p(y | X, θ)``
(in nats) over every trainable hyperparameter ``θ`` of a model:

* positive hyperparameters (kernel variances, lengthscales, periods, the
  noise, …) are optimised as ``u = log θ`` (see :mod:`gpjax_lite.parameters`),
  so no step can leave the valid region; real ones (a ``Constant`` mean) as
  they are;
* ``fixed=`` holds hyperparameters at their initial values, bit-for-bit;
* the loop is one ``jax.lax.while_loop`` inside one ``jax.jit``: no Python
  runs per step, and a second call with the same shapes, model structure and
  optimizer object reuses the compiled program;
* ``num_restarts > 1`` optimises that many starting points together in the
  same compiled loop and keeps the best;
* ``fit`` is itself vmappable: ``jax.vmap(lambda X, y: fit(gp, X, y).model)``
  fits a batch of datasets in one compiled call (the eager-only parts, data
  finiteness checks and the non-finite warning, are skipped on tracers).

Batches, of restarts or of datasets, are vectorised with ``vmap`` on
accelerators. On the CPU backend they run as a loop inside the compiled
program instead (:func:`_sequential_batches`): XLA executes a batched
Cholesky as a loop on CPU anyway, jaxlib 0.10's batched CPU LAPACK kernels can
deadlock when two run at once on a small machine, and a loop lets every
start stop as soon as it has converged.

The default optimizer is L-BFGS (``optax.lbfgs()``, with its zoom line
search). Marginal likelihoods have few parameters and are smooth, which is
where quasi-Newton methods shine: on a two-scale sine, 500 Adam steps from a
unit lengthscale stop in a poor local optimum that L-BFGS leaves behind in a
few dozen evaluations.

Non-finite values never pass silently: the first step whose loss or gradient
is NaN/inf is reported in ``FitResult.nonfinite_step`` (and, in eager code,
by a ``RuntimeWarning``), the run stops there, and the model of the last step
whose loss and gradient were finite is returned.
"""

from __future__ import annotations

import functools
import numbers
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

#: Convergence tests for line-search optimizers (L-BFGS), as in SciPy's L-BFGS-B:
#: stop when the relative decrease of the loss falls below ``FTOL`` or the
#: largest gradient entry below ``GTOL``, or when the line search could not
#: decrease the loss at all (that step is then not taken). First-order
#: optimizers (Adam, …) always run ``num_steps`` steps.
FTOL = 2.220446049250313e-09
GTOL = 1e-5

#: Number of loss lines ``progress=True`` prints (plus the last step).
PROGRESS_LINES = 10

_DEFAULT_OPTIMIZER = optax.lbfgs()


class FitResult(eqx.Module):
    """What :func:`fit` returns.

    Attributes:
        model: the fitted model, with the same structure as the input model.
        losses: ``(num_steps,)`` negative log marginal likelihood (nats) at the
            start of each step (``losses[0]`` is the initial model's) of the
            restart that was kept. After an early stop (L-BFGS converged) the
            remaining entries hold ``final_loss``; from a non-finite step on
            they are NaN.
        final_loss: negative log marginal likelihood of ``model``.
        nonfinite_step: the first step whose loss or gradient was NaN/inf, or
            -1 if none was. The run stops there and ``model`` holds the
            parameters of the last finite step (the initial model if step 0
            was already non-finite).
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
            with standard deviation :data:`RESTART_SPREAD` (positive
            hyperparameters are multiplied by ``exp(N(0, 1))``, real ones
            shifted by ``N(0, 1)``; fixed ones are never moved). All run in
            one compiled loop until every start has stopped (vectorised with
            ``vmap`` on accelerators, one after the other on CPU); the best
            final loss wins.
        key: PRNG key for the restart draws; required when ``num_restarts > 1``.
        fixed: ``lambda model: leaf_or_tuple_of_leaves`` selecting
            hyperparameters (or whole sub-modules) to hold fixed; they come
            back bit-for-bit. E.g. ``fixed=lambda gp: (gp.noise, gp.kernel.kernels[1])``.
        progress: print the loss (the best over the starts) about
            :data:`PROGRESS_LINES` times during the run and at its last step,
            through ``jax.debug.callback`` inside the compiled loop (no
            measurable cost; switching it does not recompile). Meant for eager
            calls: under a user's ``vmap`` each dataset prints its own lines.
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
            ``num_restarts < 1``, ``num_restarts > 1`` without a ``key``, or a
            ``fixed`` that does not select parts of the model (or selects all
            of it).
        TypeError: for an ``optimizer`` that is not an optax
            ``GradientTransformation`` or an ``objective`` that is not callable.
    """
    X = as_inputs("X", X)
    y = as_targets("y", y, X.shape[0])
    num_steps = _positive_int("num_steps", num_steps)
    num_restarts = _positive_int("num_restarts", num_restarts)
    if num_restarts > 1 and key is None:
        raise ValueError("`key` is required when `num_restarts > 1` (it draws the starting points).")
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "`optimizer` must be an optax GradientTransformation (e.g. `optax.lbfgs()` or "
            f"`optax.adam(0.05)`), got {type(optimizer).__name__}."
        )
    if objective is None:
        objective = log_marginal_likelihood
    elif not callable(objective):
        raise TypeError(
            f"`objective` must be a function `objective(model, X, y) -> scalar`, "
            f"got {type(objective).__name__}."
        )
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True or False, got {progress!r}.")

    mask = trainable_mask(model, fixed)
    if not any(jax.tree_util.tree_leaves(mask)):
        raise ValueError(
            "Nothing to fit: the model has no floating-point hyperparameters left to optimise"
            + (" once `fixed` is applied." if fixed is not None else ".")
        )
    params, static = eqx.partition(to_unconstrained(model, mask), mask)
    # Weakly typed hyperparameters (Python-float defaults) take the data's dtype,
    # so a float32 problem stays float32 even when float64 is enabled.
    params = jax.tree_util.tree_map(lambda p: _like_data(p, X), params)
    initial = eqx.filter(model, mask)
    starts = _starting_points(params, num_restarts, key)
    # Shape errors in the objective (e.g. per-point noise of the wrong length)
    # are raised while this call is traced, before anything is compiled; a
    # second call with the same shapes reuses the program without tracing.
    result = _fit_compiled(
        starts, initial, static, mask, X, y, optimizer, num_steps, jnp.asarray(progress), objective
    )

    if is_concrete(result.nonfinite_step) and int(result.nonfinite_step) >= 0:
        warnings.warn(
            f"fit: the loss or its gradient became non-finite at step {int(result.nonfinite_step)}; "
            "returning the model from the last finite step. Try a larger noise, float64, "
            "or a smaller learning rate.",
            RuntimeWarning,
            stacklevel=2,
        )
    elif is_concrete(result.final_loss) and not bool(jnp.isfinite(result.final_loss)):
        # Every step was finite, but re-evaluating the fitted model is not: the
        # problem sits on the edge of what the dtype can factorise (typically a
        # noise driven towards 0 in float32).
        warnings.warn(
            "fit: the fitted model's loss is not finite although every step was; its "
            "covariance is on the edge of positive definiteness in "
            f"{jnp.result_type(result.final_loss)}. Use float64, or bound the noise from below "
            "(e.g. hold it fixed with `fixed=`).",
            RuntimeWarning,
            stacklevel=2,
        )
    return result


def log_marginal_likelihood(model, X, y):
    """The default objective of :func:`fit`: ``model.log_marginal_likelihood(X, y)``."""
    return model.log_marginal_likelihood(X, y)


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def _like_data(leaf, X):
    weak = getattr(leaf, "weak_type", False)
    return leaf.astype(X.dtype) if weak and leaf.dtype != X.dtype else leaf


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


def _sequential_batches() -> bool:
    """Whether batches (restarts, a user's ``vmap`` over ``fit``) run as loops rather than ``vmap``.

    True on the CPU backend. There a batched LAPACK call (the Cholesky
    factorisation and triangular solves of every marginal likelihood) is a
    loop over the batch anyway, and jaxlib 0.10's CPU kernels spread that loop
    over XLA's intra-op thread pool and block on it: two such calls running
    at once can take every thread of a small pool and deadlock (seen on a
    2-core machine with 8 restarts). A loop of unbatched calls cannot, and
    lets every start stop as soon as it has converged. On accelerators
    batches are vectorised with ``vmap``.
    """
    return jax.default_backend() == "cpu"


@eqx.filter_jit
def _fit_compiled(starts, initial, static, mask, X, y, optimizer, num_steps, progress, objective):
    static_arrays, static_rest = eqx.partition(static, eqx.is_array)
    sequential = _sequential_batches()

    def to_model(params, static_arrays):
        return from_unconstrained(eqx.combine(params, static_arrays, static_rest), mask)

    def run(starts, initial, static_arrays, X, y, progress):
        def loss_fn(params):
            return -objective(to_model(params, static_arrays), X, y)

        num_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
        final_params, losses, nonfinite_step, steps_taken = _optimise(
            loss_fn, starts, optimizer, num_steps, progress, sequential
        )
        final_losses = _map_starts(loss_fn, num_starts, sequential)(final_params)
        # After an early stop the trace repeats the final loss; after a
        # non-finite step it is NaN.
        fill = jnp.where(nonfinite_step >= 0, jnp.nan, final_losses).astype(losses.dtype)
        stopped = jnp.arange(num_steps)[None, :] >= steps_taken[:, None]
        losses = jnp.where(stopped, fill[:, None], losses)
        # NaN never wins: rank non-finite final losses last.
        best = jnp.argmin(jnp.where(jnp.isfinite(final_losses), final_losses, jnp.inf))
        pick = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[best], tree)  # noqa: E731
        # A model that never moved (e.g. non-finite from step 0) comes back as it
        # was given, without the round trip exp(log θ) through the unconstrained space.
        unchanged = (best == 0) & _all_equal(pick(final_params), pick(starts))
        trainable = eqx.filter(to_model(pick(final_params), static_arrays), mask)
        trainable = jax.tree_util.tree_map(
            lambda new, old: jnp.where(unchanged, old, new).astype(jnp.result_type(new)),
            trainable,
            initial,
        )
        return (
            trainable,
            losses[best],
            final_losses[best],
            nonfinite_step[best],
            final_losses,
            steps_taken[best],
        )

    if sequential:
        # Under a user's `vmap` (a batch of datasets), fit them one after the
        # other inside the compiled program instead of batching the LAPACK calls.
        run = jax.custom_batching.sequential_vmap(run)
    trainable, losses, final_loss, nonfinite_step, restart_losses, steps_taken = run(
        starts, initial, static_arrays, X, y, progress
    )
    return FitResult(
        model=eqx.combine(trainable, static),
        losses=losses,
        final_loss=final_loss,
        nonfinite_step=nonfinite_step,
        restart_losses=restart_losses,
        steps_taken=steps_taken,
    )


def _map_starts(fn, num_starts: int, sequential: bool):
    """Map ``fn`` over the leading (starts) axis: a plain call for one start, else
    ``lax.map`` (``sequential``) or ``vmap``."""
    if num_starts == 1:

        def single(*args):
            out = fn(*jax.tree_util.tree_map(lambda a: a[0], args))
            return jax.tree_util.tree_map(lambda a: a[None], out)

        return single
    if sequential:
        return lambda *args: jax.lax.map(lambda a: fn(*a), args)
    return jax.vmap(fn)


def _where(flag, new, old):
    """Per start: ``new`` where ``flag`` (shape ``(starts,)``) holds, else ``old``; keeps dtypes."""

    def pick(a, b):
        f = jnp.reshape(flag, flag.shape + (1,) * (jnp.ndim(b) - 1))
        return jnp.where(f, a, b).astype(jnp.result_type(b))

    return jax.tree_util.tree_map(pick, new, old)


def _optimise(loss_fn, starts, optimizer, num_steps, progress, sequential):
    """Optimise every start (leading axis) for at most ``num_steps`` optax updates.

    One ``lax.while_loop`` whose body steps all running starts (under ``vmap``,
    or one after the other when ``sequential``, skipping those that stopped);
    it ends when every start has stopped (converged, non-finite) or after
    ``num_steps`` steps. Returns, per start, the final parameters, the loss at
    the start of each step (NaN where no step was taken), the first step with
    a non-finite loss or gradient (-1 if none) and the number of steps taken.
    """
    num_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
    tx = optax.with_extra_args_support(optimizer)
    state = _map_starts(tx.init, num_starts, sequential=False)(starts)
    # L-BFGS's line search stores the value and gradient at the accepted point:
    # reuse them instead of evaluating the objective twice per step.
    stored_value = optax.tree_utils.tree_get(state, "value")
    has_linesearch = stored_value is not None
    if has_linesearch:
        # The line search stores the value in the dtype of the parameters, which
        # may differ from the objective's (float32 data, float64 hyperparameters).
        objective_loss = loss_fn
        loss_fn = lambda params: objective_loss(params).astype(stored_value.dtype)  # noqa: E731
        value_and_grad = optax.value_and_grad_from_state(loss_fn)
    else:
        plain_value_and_grad = jax.value_and_grad(loss_fn)
        value_and_grad = lambda p, state: plain_value_and_grad(p)  # noqa: E731
    report_every = max(num_steps // PROGRESS_LINES, 1)
    print_progress = functools.partial(_print_progress, num_steps=num_steps, num_starts=num_starts)
    first = jax.tree_util.tree_map(lambda leaf: leaf[0], starts)
    dtype = jax.eval_shape(loss_fn, first).dtype

    def one_step(params, state):
        """One update of one start."""
        value, grad = value_and_grad(params, state=state)
        finite = jnp.isfinite(value) & _all_finite(grad)
        updates, new_state = tx.update(grad, state, params, value=value, grad=grad, value_fn=loss_fn)
        new_params = optax.apply_updates(params, updates)
        if has_linesearch:
            new_value = optax.tree_utils.tree_get(new_state, "value")
            # A failed line search may return a point that is no better: reject it.
            worse = ~(new_value <= value)
            decrease = (value - new_value) / jnp.maximum(
                jnp.maximum(jnp.abs(value), jnp.abs(new_value)), 1.0
            )
            converged = (_max_abs(grad) <= GTOL) | (decrease <= FTOL)
        else:
            worse = converged = jnp.asarray(False)
        return value.astype(dtype), finite, worse, converged, new_params, new_state

    def skip_step(params, state):
        """What a stopped start returns when starts are stepped one by one (nothing is computed)."""
        false = jnp.asarray(False)
        return jnp.full((), jnp.nan, dtype), false, false, false, params, state

    if num_starts > 1 and sequential:

        def batched_step(params, state, active):
            def per_start(args):
                p, s, a = args
                return jax.lax.cond(a, one_step, skip_step, p, s)

            return jax.lax.map(per_start, (params, state, active))

    else:
        stepped = _map_starts(one_step, num_starts, sequential=False)
        batched_step = lambda params, state, active: stepped(params, state)  # noqa: E731

    def keep_going(carry):
        t, _, _, _, _, _, _, _, stopped = carry
        return (t < num_steps) & ~jnp.all(stopped)

    def step(carry):
        t, params, last_finite, state, losses, current, nonfinite_step, steps_taken, stopped = carry
        active = ~stopped
        value, finite, worse, converged, new_params, new_state = batched_step(params, state, active)
        bad = active & ~finite
        accept = active & finite & ~worse
        # Accepted: move on, remembering the current (finite) point. Non-finite:
        # go back to the last finite point. Otherwise (stopped, or a rejected
        # line-search step) stay.
        next_params = _where(accept, new_params, _where(bad, last_finite, params))
        last_finite = _where(accept, params, last_finite)
        state = _where(accept, new_state, state)
        losses = losses.at[:, t].set(jnp.where(active, value, losses[:, t]))
        current = jnp.where(active & finite, value, current)
        nonfinite_step = jnp.where(bad, t, nonfinite_step)
        steps_taken = steps_taken + active.astype(steps_taken.dtype)
        stopped = stopped | bad | (active & (worse | converged))

        def report_progress():
            report = (t % report_every == 0) | (t == num_steps - 1) | jnp.all(stopped)
            # Under a user's vmap on an accelerator this inner `cond` becomes a
            # select that runs the callback at every step: `report` travels
            # along so that only the due lines print.
            jax.lax.cond(
                report,
                lambda: jax.debug.callback(
                    print_progress, t, jnp.min(current), jnp.sum(~stopped), report
                ),
                lambda: None,
            )

        # `progress` is a traced flag that is never batched: when it is off this
        # is one scalar branch per step and no callback runs, and switching it
        # does not recompile the loop.
        jax.lax.cond(progress, report_progress, lambda: None)
        return (
            t + 1, next_params, last_finite, state, losses, current, nonfinite_step, steps_taken,
            stopped,
        )

    init = (
        jnp.asarray(0, jnp.int32),
        starts,
        starts,
        state,
        jnp.full((num_starts, num_steps), jnp.nan, dtype=dtype),
        jnp.full((num_starts,), jnp.inf, dtype=dtype),
        jnp.full((num_starts,), -1, jnp.int32),
        jnp.zeros((num_starts,), jnp.int32),
        jnp.zeros((num_starts,), bool),
    )
    _, params, _, _, losses, _, nonfinite_step, steps_taken, _ = jax.lax.while_loop(
        keep_going, step, init
    )
    return params, losses, nonfinite_step, steps_taken


def _max_abs(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.max(jnp.asarray([jnp.max(jnp.abs(leaf)) for leaf in leaves] or [0.0]))


def _all_equal(a, b) -> jax.Array:
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    return jnp.all(jnp.asarray([jnp.all(x == y) for x, y in pairs] or [True]))


def _all_finite(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.asarray([jnp.all(jnp.isfinite(leaf)) for leaf in leaves] or [True]))


def _print_progress(t, value, num_active, report, num_steps, num_starts):
    if not bool(report):
        return
    starts = f"  (best of {num_starts} starts, {int(num_active)} running)" if num_starts > 1 else ""
    print(f"fit: step {int(t) + 1:>5}/{num_steps}  -log p(y) = {float(value):.6g}{starts}", flush=True)
