"""Fit hyperparameters with optax: ``fit``, and the one optimisation loop every model runs on.

``fit`` minimises the negative log marginal likelihood ``-log p(y | X, θ)``
(in nats) over every trainable hyperparameter ``θ`` of a model, or, given a
``log_prior``, the negative log posterior ``-log p(y | X, θ) - log p(θ)``
(maximum a posteriori, MAP):

* positive hyperparameters (kernel variances, lengthscales, periods, the
  noise, …) are optimised as ``u = log θ``, with ``u`` held in a dtype-aware
  box so that every fitted value is positive and representable (see
  :mod:`gpjax_lite.parameters`); real ones (a ``Constant`` mean) as they are;
* ``fixed=`` holds hyperparameters at their initial values, bit-for-bit;
* the loop is one ``jax.lax.while_loop`` inside one ``jax.jit``: no Python
  runs per step, and a second call with the same shapes, model structure and
  optimizer object reuses the compiled program; on the CPU that ``jit`` uses
  XLA's classic fusion emitters, which compile it faster
  (:func:`default_compiler_options`, ``compiler_options=``);
* ``num_restarts > 1`` optimises that many starting points together in the
  same compiled loop and keeps the best;
* the returned model is the best iterate seen (lowest finite loss), never a
  worse one than the start; a ``RuntimeWarning`` says when the optimiser
  itself ended above its starting loss (it diverged);
* ``fit`` is itself vmappable: ``jax.vmap(lambda X, y: fit(gp, X, y).model)``
  fits a batch of datasets in one compiled call (the eager-only parts, data
  finiteness checks and warnings, are skipped on tracers).

The loop
--------
:func:`fit` and :func:`gpjax_lite.sparse.fit_svgp` both run :func:`minimise`.
Its state is a named :class:`_LoopState`, advanced by :class:`_Loop`'s
``init`` / ``step`` / ``done`` and closed by ``finish``, in the spirit of the
iterative solvers of optimistix. A model plugs in with a loss
``loss(model, data, key) -> scalar``; the ``key`` is a fresh PRNG key per
step for *stochastic* losses (an SVGP draws its minibatch from it) and
``None`` for deterministic ones. The policies are written once, in the loop:

* **convergence** (deterministic losses, line-search optimizers): the tests of
  SciPy's L-BFGS-B, :data:`FTOL` and :data:`GTOL`;
* **non-finite values**: the first step whose loss or gradient is NaN/inf is
  reported in ``nonfinite_step`` (and, in eager code, by a
  ``RuntimeWarning``), and that start stops there;
* **which iterate comes back**: the lowest finite loss seen for
  deterministic losses; for stochastic ones, whose losses are noisy estimates
  that cannot rank iterates, the last finite one;
* **restarts**, **progress** printing and **``fixed=``**.

Batches, of restarts or of datasets, are vectorised with ``vmap`` on
accelerators and run as loops on the CPU (:func:`_sequential_batches` says
why).

The default optimizer is L-BFGS: :func:`gpjax_lite.lbfgs`, the direction of
``optax.scale_by_lbfgs`` with a strong-Wolfe line search that evaluates the
loss at a single place in the program, so the compiled loop holds one copy
of the loss and its gradient (``optax.lbfgs()`` holds three; it works as
``optimizer=`` too). The loop hands the optimizer its parameters as one flat
vector, so each update is a few array operations whatever the number of
hyperparameters. Marginal likelihoods have few parameters and are smooth, which is
where quasi-Newton methods shine: on a two-scale sine, 500 Adam steps from a
unit lengthscale stop in a poor local optimum that L-BFGS leaves behind in a
few dozen evaluations.
"""

from __future__ import annotations

import functools
import numbers
import os
import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax._src.lax.lax import _convert_element_type  # weak-typed casts (no public API)
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray, PyTree

from ._checks import all_finite, as_inputs, as_targets, check_key, is_concrete
from .lbfgs import LBFGSState, lbfgs
from .parameters import (
    cast_weak_leaves,
    check_hyperparameters,
    flat_from_unconstrained,
    from_unconstrained,
    to_unconstrained,
    trainable_mask,
)

#: Standard deviation, in the unconstrained space, of the restart draws:
#: positive hyperparameters are multiplied by ``exp(N(0, 1))`` (a factor
#: within [0.37, 2.7] two times in three); real ones are shifted by ``N(0, 1)``.
RESTART_SPREAD = 1.0

#: Convergence tests for line-search optimizers (L-BFGS), SciPy's L-BFGS-B's
#: tolerances: stop when the relative decrease of the loss is at most ``FTOL``
#: in two consecutive steps, or the largest gradient entry is at most ``GTOL``,
#: or the line search could not decrease the loss at all (a step that would
#: raise it is not taken). SciPy stops after one such step; on a flat
#: likelihood one short line-search step passes that test far from the optimum
#: (the CO₂ main job stopped 0.08 nats short of it, at a very different
#: rational-quadratic ``alpha``). First-order optimizers (Adam, …) and
#: stochastic losses always run ``num_steps`` steps.
FTOL = 2.220446049250313e-09
GTOL = 1e-5

#: Number of loss lines ``progress=True`` prints (plus the last step).
PROGRESS_LINES = 10

_DEFAULT_OPTIMIZER = lbfgs()

#: The XLA:CPU option ``fit`` and ``fit_svgp`` compile their loop with by
#: default, where the installed XLA knows it (see :func:`default_compiler_options`).
_CPU_COMPILER_OPTIONS = {"xla_cpu_use_fusion_emitters": False}


def default_compiler_options() -> dict[str, Any]:
    """The XLA compiler options :func:`fit` and ``fit_svgp`` compile their loop with by default.

    When JAX's default backend is the CPU, ``{"xla_cpu_use_fusion_emitters": False}``:
    XLA:CPU's classic fusion emitters, which generate each fused kernel's LLVM
    IR directly instead of through XLA's newer MLIR pipeline. A fit's program
    is mostly many small kernels (the optimizer's scalar bookkeeping, the line
    search, the objective's vector updates), and the MLIR pipeline costs a
    roughly fixed time per kernel: with the classic emitters XLA compiled the
    loops of five kinds of fit in a half to four fifths of the time, and every
    first call was faster, while the runs themselves moved between −19 % and
    +30 % (``benchmarks/results/cpu-2026-12-01-compile-options``). In float64
    the results agree to round-off; in float32 the optimizer may take a
    different path to the same optimum, within its tolerances.

    ``{}`` (no options) on other backends; where the installed XLA does not
    know the option (it is absent from jaxlib 0.11, whose XLA has only the
    newer emitters; probed once per process by compiling a trivial program
    with it); and where the ``XLA_FLAGS`` environment variable already sets
    ``xla_cpu_use_fusion_emitters``, which is then yours to decide.

    Options passed to ``fit`` replace these rather than add to them (merge with
    ``{**default_compiler_options(), ...}``). Compiler options apply to one
    top-level ``jax.jit`` and take precedence over the same flag in
    ``XLA_FLAGS``. When ``fit`` is traced inside your own ``jax.jit``, that
    ``jit``'s options apply to the whole program: pass these to it (its
    ``compiler_options=``) to get the same program.
    """
    if jax.default_backend() != "cpu":
        return {}
    flags = os.environ.get("XLA_FLAGS", "").split()
    if any(flag.lstrip("-").split("=")[0] in _CPU_COMPILER_OPTIONS for flag in flags):
        return {}
    if _xla_rejection(_options_key(_CPU_COMPILER_OPTIONS)) is not None:
        return {}
    return dict(_CPU_COMPILER_OPTIONS)


def _options_key(options: dict[str, Any]) -> tuple:
    """A hashable, order-free key for ``options`` that tells ``False`` from ``0`` and
    ``True`` from ``1.0`` (equal in Python, different to XLA)."""
    return tuple(sorted((name, type(value).__name__, value) for name, value in options.items()))


@functools.cache
def _xla_rejection(key: tuple) -> str | None:
    """XLA's message if it rejects the options of ``key`` (an unknown name, a value of
    the wrong type), else ``None``: a trivial program compiled once per new set of
    options, so that a typo is caught before a fit is traced.

    Any other failure (no backend, out of memory) is raised, and then not cached.
    """
    options = {name: value for name, _, value in key}
    try:
        jax.jit(lambda x: x, compiler_options=options).lower(0.0).compile()
    except RuntimeError as error:  # jax.errors.JaxRuntimeError
        if "INVALID_ARGUMENT" not in str(error):
            raise
        return str(error)
    return None


def check_compiler_options(compiler_options) -> None:
    """Check ``compiler_options`` before any tracing: ``None``, or options XLA accepts.

    Raises:
        TypeError: not a dict of option names (str) to str, bool (Python's),
            int or float values.
        ValueError: XLA rejects them (an unknown option, a value of the wrong type).
    """
    if compiler_options is None:
        return
    if not (
        isinstance(compiler_options, dict)
        and all(
            isinstance(k, str) and isinstance(v, (str, bool, int, float, np.integer, np.floating))
            for k, v in compiler_options.items()
        )
    ):
        raise TypeError(
            "`compiler_options` must be a dict of XLA option names to str, bool, int or float "
            "values (Python bools: XLA reads a NumPy bool as a number), or None for the "
            f"default, got {compiler_options!r}."
        )
    rejection = _xla_rejection(_options_key(compiler_options)) if compiler_options else None
    if rejection:
        raise ValueError(f"XLA rejects `compiler_options` {compiler_options!r}: {rejection}")


class FitResult(eqx.Module):
    """What :func:`fit` returns.

    Attributes:
        model: the fitted model, with the same structure as the input model:
            the iterate with the lowest finite loss seen by the kept restart.
        losses: ``(num_steps,)`` loss (nats) at the start of each step
            (``losses[0]`` is the initial model's) of the restart that was
            kept: ``-objective`` (default the negative log marginal
            likelihood), or ``-(objective + log_prior)`` with a prior. After
            an early stop (L-BFGS converged) the remaining entries hold the
            loss of the last iterate; from a non-finite step on they are NaN.
        final_loss: the loss of ``model`` (NaN if no finite loss was seen).
        nonfinite_step: the first step whose loss or gradient was NaN/inf, or
            -1 if none was. The run stops there and ``model`` is the best
            iterate before it (the initial model if step 0 was already
            non-finite).
        restart_losses: ``(num_restarts,)`` final loss of every start.
        steps_taken: the number of steps the kept run took (fewer than
            ``num_steps`` when L-BFGS converged early).
        last_loss: the loss of the optimiser's last iterate (NaN after a
            non-finite step). Above ``losses[0]``, the optimiser diverged and
            ``model`` is an earlier, better iterate.
    """

    model: Any
    losses: Float[Array, " num_steps"]
    final_loss: Float[Array, ""]
    nonfinite_step: Int[Array, ""]
    restart_losses: Float[Array, " num_restarts"]
    steps_taken: Int[Array, ""]
    last_loss: Float[Array, ""]


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
    log_prior: Callable[[Any], Any] | None = None,
    compiler_options: dict[str, Any] | None = None,
) -> FitResult:
    """Maximise ``model.log_marginal_likelihood(X, y)`` (plus a log prior) over its hyperparameters.

    Args:
        model: a :class:`~gpjax_lite.GP` (or any module with a
            ``log_marginal_likelihood(X, y)`` method).
        X: inputs ``(n,)`` or ``(n, d)``.
        y: targets ``(n,)``.
        optimizer: any optax ``GradientTransformation``; default
            :func:`gpjax_lite.lbfgs` (L-BFGS, compiled with one copy of the
            objective; ``optax.lbfgs()`` also works, compiling three). Reuse the same object across calls to reuse the
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
        progress: print the lowest loss so far (over the starts) about
            :data:`PROGRESS_LINES` times during the run and at its last step,
            through ``jax.debug.callback`` inside the compiled loop. A static
            setting: switching it compiles the loop again, and a loop that
            prints is never stored by JAX's persistent compilation cache.
            Meant for eager calls: under a user's ``vmap`` each dataset prints
            its own lines.
        objective: the function to maximise, ``objective(model, X, y) -> scalar``;
            default :func:`log_marginal_likelihood`. Sparse models pass their
            bound here. Use a module-level function (not a fresh lambda per
            call) so the compiled loop is reused.
        log_prior: ``log_prior(model) -> scalar``, the log density of a prior
            on the hyperparameters in their natural (constrained) values,
            e.g. ``lambda gp: jax.scipy.stats.norm.logpdf(jnp.log(gp.kernel.lengthscale))
            - jnp.log(gp.kernel.lengthscale)`` (a standard log-normal on the
            lengthscale). It is added to the objective, so ``fit`` returns the
            maximum a posteriori (MAP) estimate and ``losses`` are
            ``-(objective + log_prior)``. The density is of ``θ`` itself, not
            of the optimiser's ``log θ``: no Jacobian term is added, so the
            MAP point is the mode of ``p(θ | X, y) ∝ p(y | X, θ) p(θ)``
            (Rasmussen & Williams 2006, eq. 5.7). As for ``objective``, a
            module-level function reuses the compiled loop. Default ``None``:
            no prior (type-II maximum likelihood).
        compiler_options: XLA compiler options for the compiled loop, as
            ``jax.jit``'s ``compiler_options`` (they take precedence over
            ``XLA_FLAGS``). Default ``None``: :func:`default_compiler_options`
            (on the CPU, XLA:CPU's classic fusion emitters, which compile the
            loop markedly faster); ``{}``: none (XLA's defaults, or your
            ``XLA_FLAGS``). A dict replaces the default rather than adding to
            it: ``{**gl.default_compiler_options(), "xla_...": ...}`` adds.
            Ignored, with a ``UserWarning`` when non-empty, when ``fit`` is
            traced into a larger program (inside your own ``jax.jit``, a
            ``lax.map`` or ``lax.scan``; that program's ``jit`` options apply);
            an eager ``jax.vmap`` keeps them.

    Returns:
        A :class:`FitResult` whose model is the best iterate seen. If a loss or
        gradient became non-finite, ``nonfinite_step`` says where and (in eager
        code) a ``RuntimeWarning`` is issued; a ``RuntimeWarning`` is also
        issued when the optimiser's last iterate is worse than the initial
        model (it diverged: try a smaller learning rate).

    Raises:
        ValueError: for bad shapes or non-finite data, ``num_steps < 1``,
            ``num_restarts < 1``, ``num_restarts > 1`` without a ``key``, a
            ``fixed`` that does not select parts of the model (or selects all
            of it), an ``objective`` / ``log_prior`` that does not return a
            scalar, or ``compiler_options`` that XLA rejects (an unknown
            option, a value of the wrong type; checked before the loop is
            traced).
        TypeError: for a ``num_steps`` or ``num_restarts`` that is not an int,
            an ``optimizer`` that is not an optax
            ``GradientTransformation``, an ``objective`` or ``log_prior`` that
            is not callable, a ``progress`` that is not a bool, or
            ``compiler_options`` that are not a dict of option names to
            scalar values.
    """
    # A model edited around its constructor (equinox.tree_at, deserialisation)
    # must not start an optimisation from a negative noise or lengthscale.
    if objective is None and not callable(getattr(model, "log_marginal_likelihood", None)):
        raise TypeError(
            "`model` must be a model with a `log_marginal_likelihood(X, y)` method (a GP, "
            f"LaplaceGP, ...) or come with an `objective=`, got {type(model).__name__}."
        )
    if key is not None:
        check_key(key)
    check_hyperparameters(model)
    X = as_inputs("X", X)
    y = as_targets("y", y, X.shape[0])
    likelihood = getattr(model, "likelihood", None)
    if likelihood is not None:
        # Inside the compiled loop `y` is a tracer: a count of -1 or a label of 2
        # would give a finite, wrong loss. Check its support here, eagerly.
        y = likelihood.check_targets(y)
    num_steps = check_loop_arguments(
        optimizer=optimizer,
        num_steps=num_steps,
        progress=progress,
        objective=objective,
        log_prior=log_prior,
        compiler_options=compiler_options,
    )
    num_restarts = _positive_int("num_restarts", num_restarts)
    if num_restarts > 1 and key is None:
        raise ValueError(
            "`key` is required when `num_restarts > 1` (it draws the starting points)."
        )

    params, static, initial, mask = split_trainable(model, fixed, X.dtype)
    starts = _starting_points(params, num_restarts, key)
    loss = NegativeLogPosterior(
        log_marginal_likelihood if objective is None else objective, log_prior
    )
    # Shape errors in the objective (e.g. per-point noise of the wrong length)
    # are raised while this call is traced, before anything is compiled; a
    # second call with the same shapes reuses the program without tracing.
    result = minimise(
        loss,
        starts,
        initial,
        static,
        mask,
        (X, y),
        None,
        optimizer,
        num_steps,
        progress,
        stochastic=False,
        name="fit",
        label=_loss_label(objective, log_prior),
        compiler_options=compiler_options,
    )
    warn_about_run("fit", result, stochastic=False)
    return result


def log_marginal_likelihood(model, X, y):
    """The default objective of :func:`fit`: ``model.log_marginal_likelihood(X, y)``."""
    return model.log_marginal_likelihood(X, y)


class NegativeLogPosterior(eqx.Module):
    """The loss :func:`fit` minimises: ``-(objective(model, X, y) + log_prior(model))``.

    Without a prior (``log_prior=None``) this is ``-objective``. Both functions
    are fields, so two losses built from the same functions compare equal and
    share one compiled loop.
    """

    objective: Callable[[Any, Any, Any], Any]
    log_prior: Callable[[Any], Any] | None = None

    def __call__(self, model, data, key=None) -> Float[Array, ""]:
        X, y = data
        value = _scalar("objective", self.objective(model, X, y))
        if self.log_prior is not None:
            value = value + _scalar("log_prior", self.log_prior(model))
        return -value


def _scalar(name: str, value):
    """``value`` as an array, checked to be a real scalar (shapes and dtypes are static: this
    holds under jit)."""
    # A string, None or a dict fails here with JAX's own message, which names no argument.
    try:
        value = jnp.asarray(value)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"`{name}` must return a real scalar, got {type(value).__name__}."
        ) from error
    if not (jnp.issubdtype(value.dtype, jnp.floating) or jnp.issubdtype(value.dtype, jnp.integer)):
        raise TypeError(f"`{name}` must return a real scalar, got dtype {value.dtype}.")
    if value.shape != ():
        raise ValueError(f"`{name}` must return a scalar, got an array of shape {value.shape}.")
    return value


def _loss_label(objective, log_prior) -> str:
    what = "log p(y)" if objective is None else "objective"
    return f"-{what} =" if log_prior is None else f"-({what} + log_prior) ="


# --------------------------------------------------------------------------- arguments
def check_loop_arguments(
    *, optimizer, num_steps, progress, objective=None, log_prior=None, compiler_options=None
) -> int:
    """The checks of every argument the fit loop takes, shared by ``fit`` and ``fit_svgp``.

    Returns ``num_steps`` as an int.

    Raises:
        ValueError: ``num_steps < 1``.
        TypeError: ``num_steps`` is not an int, ``optimizer`` is not an optax
            ``GradientTransformation``,
            ``progress`` is not a bool, ``objective`` or ``log_prior`` (when
            given) is not callable, ``compiler_options`` (when given) is not a
            dict of option names to scalar values.
    """
    num_steps = _positive_int("num_steps", num_steps)
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(
            "`optimizer` must be an optax GradientTransformation (e.g. `optax.lbfgs()` or "
            f"`optax.adam(0.05)`), got {type(optimizer).__name__}."
        )
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True or False, got {progress!r}.")
    for name, function, signature in (
        ("objective", objective, "objective(model, X, y) -> scalar"),
        ("log_prior", log_prior, "log_prior(model) -> scalar"),
    ):
        if function is not None and not callable(function):
            raise TypeError(
                f"`{name}` must be a function `{signature}`, got {type(function).__name__}."
            )
    check_compiler_options(compiler_options)
    return num_steps


def split_trainable(model, fixed, dtype):
    """Split ``model`` into what the loop optimises and what it holds (``fixed=``, written once).

    Returns ``(params, static, initial, mask)``: the trainable leaves in the
    unconstrained space, everything else, the trainable leaves as given (to
    return an unmoved model bit-for-bit), and the trainable mask.

    Raises:
        ValueError: ``fixed`` does not select parts of ``model``, or leaves
            nothing to fit.
    """
    mask = trainable_mask(model, fixed)
    if not any(jax.tree_util.tree_leaves(mask)):
        raise ValueError(
            "Nothing to fit: the model has no floating-point hyperparameters left to optimise"
            + (" once `fixed` is applied." if fixed is not None else ".")
        )
    params, static = eqx.partition(to_unconstrained(model, mask), mask)
    # Weakly typed hyperparameters (Python-float defaults) take the data's dtype,
    # so a float32 problem stays float32 even when float64 is enabled.
    params = cast_weak_leaves(params, dtype)
    return params, static, eqx.filter(model, mask), mask


def _positive_int(name: str, value) -> int:
    """``value`` as an int: ``TypeError`` for a wrong type (a float, a bool),
    ``ValueError`` for a wrong value (``< 1``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be a positive int, got {value!r}.")
    if value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
    return int(value)


def _like_initial(leaf, initial):
    """``leaf`` in the dtype *and weak type* of the model's initial leaf.

    The loop works in the data's dtype (see :func:`split_trainable`), but the
    fitted model keeps the structure of the model it came from: a weakly typed
    Python-float default comes back weakly typed, so the fitted model still
    follows the data's dtype and deserialises into the initial model
    (``equinox.tree_deserialise_leaves``) with float32 data and float64 enabled.
    """
    weak = getattr(getattr(initial, "aval", initial), "weak_type", False)
    return _convert_element_type(leaf, jnp.result_type(initial), weak_type=weak)


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


def warn_about_run(name: str, result, *, stochastic: bool) -> None:
    """The eager half of the non-finite policy: warn about a run that went wrong.

    Skipped on tracers (inside a user's ``jit`` or ``vmap``), where
    ``nonfinite_step`` and ``last_loss`` carry the same information.
    """
    step = result.nonfinite_step
    if is_concrete(step) and int(step) >= 0:
        warnings.warn(
            f"{name}: the loss or its gradient became non-finite at step {int(step)}; returning "
            "the best model before it. Try float64 or a smaller learning rate; for a GP, a "
            "larger noise; for a LaplaceGP, a mean and kernel variance on the latent "
            "function's scale (for Poisson, the log rate).",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    if stochastic or not (is_concrete(result.last_loss) and is_concrete(result.losses)):
        return
    # Read on the host: indexing the device array would compile a small XLA program
    # (a slice) in every fresh process, a cost on every cold fit.
    initial, last = float(np.asarray(result.losses)[0]), float(result.last_loss)
    if last > initial:
        warnings.warn(
            f"{name}: the optimiser diverged: its last iterate has loss {last:.6g}, above the "
            f"initial {initial:.6g}; returning the best iterate seen (loss "
            f"{float(result.final_loss):.6g}). Try a smaller learning rate or L-BFGS.",
            RuntimeWarning,
            stacklevel=3,
        )


# ------------------------------------------------------------------------------ the loop
def _sequential_batches() -> bool:
    """Whether batches (restarts, a user's ``vmap`` over a fit) run as loops rather than ``vmap``.

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


class _LoopState(eqx.Module):
    """Everything the loop carries from one step to the next; every field has a leading
    ``starts`` axis except ``step``."""

    step: Int[Array, ""]  # the step about to be taken
    params: PyTree  # each start's current iterate (unconstrained)
    opt_state: PyTree  # the optimizer's state at ``params``
    best_params: PyTree  # the iterate to return if the run ended now (see `_Loop.step`)
    best_loss: Float[Array, " starts"]  # its loss (inf before any finite one)
    losses: Float[Array, "starts num_steps"]  # loss at the start of each step (NaN: not taken)
    nonfinite_step: Int[Array, " starts"]  # first step with a NaN/inf loss or gradient, or -1
    steps_taken: Int[Array, " starts"]
    stopped: Bool[Array, " starts"]  # converged, or met a non-finite value


class _Proposal(eqx.Module):
    """What one optimizer update proposes for one start (or, stacked, for every start)."""

    loss: Float[Array, ""]  # at the current iterate
    finite: Bool[Array, ""]  # loss and gradient are finite
    worse: Bool[Array, ""]  # the line search could not decrease the loss: reject the step
    converged: Bool[Array, ""]  # the gradient is small, or the loss did not decrease
    small_decrease: Bool[Array, ""]  # the loss decreased by at most FTOL (relative)
    params: PyTree
    opt_state: PyTree


class _Loop(eqx.Module):
    """The optimisation loop: ``init``, then ``step`` until ``done``, then ``finish``.

    ``loss(params, key)`` is one start's loss at unconstrained ``params``;
    ``key`` is that step's PRNG key for a stochastic loss and ``None``
    otherwise.
    """

    loss: Callable[[Any, Any], Any]
    optimizer: optax.GradientTransformationExtraArgs
    num_steps: int
    stochastic: bool
    sequential: bool
    has_linesearch: bool
    evaluates_itself: bool
    dtype: Any
    report: Callable[..., None]

    def __init__(self, loss, optimizer, first, key, *, num_steps, stochastic, sequential, report):
        """``first``: one start's parameters and ``key``: one step's key (``None`` for a
        deterministic loss), to read the optimizer's state and the loss's dtype."""
        tx = optax.with_extra_args_support(optimizer)
        # L-BFGS's line search stores the value and gradient at the accepted point.
        initial_state = jax.eval_shape(tx.init, first)
        stored = optax.tree_utils.tree_get(initial_state, "value")
        self.has_linesearch = stored is not None
        # gpjax_lite's own L-BFGS also evaluates the loss at the start point itself.
        self.evaluates_itself = isinstance(initial_state, LBFGSState)
        if self.has_linesearch:
            # The line search stores the value in the dtype of the parameters, which
            # may differ from the loss's (float32 data, float64 hyperparameters).
            self.loss = lambda params, key: loss(params, key).astype(stored.dtype)
            self.dtype = stored.dtype
        else:
            self.loss = loss
            # (Traces the loss once more; with a line search its dtype is known.)
            self.dtype = jax.eval_shape(self.loss, first, key).dtype
        self.optimizer = tx
        self.num_steps = num_steps
        self.stochastic = stochastic
        self.sequential = sequential
        self.report = report

    # ------------------------------------------------------------------ one start
    def _value_and_grad(self, params, opt_state, key):
        if self.has_linesearch and not self.stochastic:
            # Reuse the value and gradient the line search computed at this point
            # instead of evaluating the loss twice per step. (A stochastic loss
            # has a new minibatch each step, so nothing can be reused.)
            loss = lambda p: self.loss(p, None)  # noqa: E731
            return optax.value_and_grad_from_state(loss)(params, state=opt_state)
        return jax.value_and_grad(self.loss)(params, key)

    def _update(self, params, opt_state, key) -> _Proposal:
        """One optimizer update of one start."""
        value_fn = lambda p: self.loss(p, key)  # noqa: E731
        if self.evaluates_itself:
            # The value and gradient at `params` come out of the update (stored from
            # the last step's line search, or evaluated in the same place as every
            # trial point), so the program holds one copy of the loss.
            if self.stochastic:  # a new minibatch: the stored value is another loss's
                opt_state = opt_state._replace(value=jnp.full_like(opt_state.value, jnp.inf))
            updates, new_state = self.optimizer.update(None, opt_state, params, value_fn=value_fn)
            value, grad = new_state.start_value, new_state.start_grad
        else:
            value, grad = self._value_and_grad(params, opt_state, key)
            updates, new_state = self.optimizer.update(
                grad, opt_state, params, value=value, grad=grad, value_fn=value_fn
            )
        finite = jnp.isfinite(value) & all_finite(grad)
        new_params = optax.apply_updates(params, updates)
        worse = converged = small_decrease = jnp.asarray(False)
        if self.has_linesearch and not self.stochastic:
            new_value = optax.tree_utils.tree_get(new_state, "value")
            # A failed line search may return a point that is no better: reject it.
            worse = ~(new_value <= value)
            decrease = _relative_decrease(value, new_value)
            converged = (_max_abs(grad) <= GTOL) | (decrease <= 0)
            small_decrease = decrease <= FTOL
        return _Proposal(
            value.astype(self.dtype),
            finite,
            worse,
            converged,
            small_decrease,
            new_params,
            new_state,
        )

    def _skip(self, params, opt_state, key) -> _Proposal:
        """What a stopped start proposes when starts are stepped one by one (computes nothing)."""
        false = jnp.asarray(False)
        nan = jnp.full((), jnp.nan, self.dtype)
        return _Proposal(nan, false, false, false, false, params, opt_state)

    def _propose(self, state: _LoopState, key) -> _Proposal:
        """One update of every start still running (the others propose to stay)."""
        num_starts = state.stopped.shape[0]
        if num_starts > 1 and self.sequential:

            def per_start(args):
                params, opt_state, running = args
                return jax.lax.cond(running, self._update, self._skip, params, opt_state, key)

            return jax.lax.map(per_start, (state.params, state.opt_state, ~state.stopped))
        update = lambda params, opt_state: self._update(params, opt_state, key)  # noqa: E731
        return _map_starts(update, num_starts, sequential=False)(state.params, state.opt_state)

    # ------------------------------------------------------------------ the loop
    def init(self, starts) -> _LoopState:
        num_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
        return _LoopState(
            step=jnp.asarray(0, jnp.int32),
            params=starts,
            opt_state=_map_starts(self.optimizer.init, num_starts, sequential=False)(starts),
            best_params=starts,
            best_loss=jnp.full((num_starts,), jnp.inf, self.dtype),
            losses=jnp.full((num_starts, self.num_steps), jnp.nan, self.dtype),
            nonfinite_step=jnp.full((num_starts,), -1, jnp.int32),
            steps_taken=jnp.zeros((num_starts,), jnp.int32),
            stopped=jnp.zeros((num_starts,), bool),
        )

    def step(self, state: _LoopState, key, progress) -> _LoopState:
        """Step every running start once.

        A proposal with a finite loss and gradient is taken unless the line
        search rejected it; a non-finite one stops its start. The iterate to
        return is updated with the current one when that has a finite loss no
        higher than the best so far (deterministic losses), or whenever its loss
        is finite (stochastic losses: the latest finite iterate).
        """
        t, running = state.step, ~state.stopped
        proposal = self._propose(state, key)
        bad = running & ~proposal.finite
        take = running & proposal.finite & ~proposal.worse
        keep = running & proposal.finite
        if not self.stochastic:
            keep = keep & (proposal.loss <= state.best_loss)
        # The previous step's decrease: from its start (column t - 1 of the trace)
        # to this step's start, where it ended.
        previous_loss = state.losses[:, jnp.maximum(t - 1, 0)]
        previous_small = (t > 0) & (_relative_decrease(previous_loss, proposal.loss) <= FTOL)
        converged = proposal.converged | (proposal.small_decrease & previous_small)
        state = _LoopState(
            step=t + 1,
            params=_where(take, proposal.params, state.params),
            opt_state=self._next_opt_state(take, proposal.opt_state, state.opt_state),
            best_params=_where(keep, state.params, state.best_params),
            best_loss=jnp.where(keep, proposal.loss, state.best_loss),
            losses=_set_column(state.losses, t, jnp.where(running, proposal.loss, jnp.nan)),
            nonfinite_step=jnp.where(bad, t, state.nonfinite_step),
            steps_taken=state.steps_taken + running.astype(jnp.int32),
            stopped=state.stopped | bad | (running & (proposal.worse | converged)),
        )
        self._report_progress(state, progress)
        return state

    def _next_opt_state(self, take, new, old):
        """The optimizer state to carry: ``new`` where ``take`` holds, else enough of ``old``.

        A proposal that is not taken stops its start (non-finite, or a failed line
        search), and a stopped start's state is then only read by ``finish``, for
        its stored loss (``value``, with a line search). Where stopped starts
        are stepped no further (one start, or starts stepped one by one, which
        skip them), selecting that one leaf is enough, and the compiled loop
        holds one select instead of one per leaf of the optimizer's state (the
        L-BFGS memory, gradients, counts). Vectorised starts keep updating a
        stopped start, so there the whole state is held.
        """
        if take.shape[0] > 1 and not self.sequential:
            return _where(take, new, old)
        if not self.has_linesearch:
            return new
        value = _where(take, *(optax.tree_utils.tree_get(s, "value") for s in (new, old)))
        return optax.tree_utils.tree_set(new, value=value)

    def done(self, state: _LoopState) -> Bool[Array, ""]:
        return (state.step >= self.num_steps) | jnp.all(state.stopped)

    def finish(self, state: _LoopState):
        """Choose each start's iterate to return, and fill its trace after a stop.

        The last iterate (after the last update) was never scored in the loop.
        With a line search its loss is the one the search computed there (and
        the search guarantees it is no higher than the best), and it is taken if
        finite; another optimizer on a deterministic loss scores it now and
        takes it if its loss is finite and no higher than the best; a stochastic
        loss takes it whenever no step was non-finite.

        Returns ``(params, loss, last_loss, losses)`` per start.
        """
        healthy = state.nonfinite_step < 0
        num_starts = healthy.shape[0]
        if self.stochastic:
            last_loss = jnp.full((num_starts,), jnp.nan, self.dtype)
            take_last = healthy
        elif self.has_linesearch:
            # The line search evaluated the loss at the point it accepted: the last
            # iterate. Its state holds that value (inf while no step has been taken;
            # the last iterate is then the start, whose loss is the best one seen), so
            # the compiled program needs no extra copy of the loss to score it.
            stored = optax.tree_utils.tree_get(state.opt_state, "value").astype(self.dtype)
            last_loss = jnp.where(jnp.isfinite(stored), stored, state.best_loss)
            last_loss = jnp.where(healthy, last_loss, jnp.nan)
            take_last = healthy & jnp.isfinite(last_loss)
        else:
            score = lambda params: self.loss(params, None)  # noqa: E731
            last_loss = _map_starts(score, num_starts, self.sequential)(state.params)
            last_loss = jnp.where(healthy, last_loss, jnp.nan)
            take_last = healthy & jnp.isfinite(last_loss) & (last_loss <= state.best_loss)
        params = _where(take_last, state.params, state.best_params)
        loss = jnp.where(take_last, last_loss, state.best_loss)
        loss = jnp.where(jnp.isfinite(loss), loss, jnp.nan)
        # After an early stop the trace repeats the last iterate's loss; after a
        # non-finite step it is NaN.
        untaken = jnp.arange(self.num_steps)[None, :] >= state.steps_taken[:, None]
        losses = jnp.where(untaken, last_loss[:, None].astype(self.dtype), state.losses)
        return params, loss, last_loss, losses

    def _report_progress(self, state: _LoopState, progress):
        report_every = max(self.num_steps // PROGRESS_LINES, 1)
        t = state.step - 1

        def report():
            due = (t % report_every == 0) | (t == self.num_steps - 1) | jnp.all(state.stopped)
            # Under a user's vmap on an accelerator this inner `cond` becomes a
            # select that runs the callback at every step: `due` travels along
            # so that only the due lines print.
            jax.lax.cond(
                due,
                lambda: jax.debug.callback(
                    self.report, t, jnp.min(state.best_loss), jnp.sum(~state.stopped), due
                ),
                lambda: None,
            )

        # `progress` is static: without it the compiled loop holds no host
        # callback, and JAX's persistent compilation cache only stores programs
        # without one (docs/performance.md, "Compile once, run many times").
        if progress:
            report()

    def run(self, starts, keys, progress):
        """``init``, ``step`` until ``done`` (one ``lax.while_loop``), ``finish``."""

        def body(state):
            key = None if keys is None else keys[state.step]
            return self.step(state, key, progress)

        state = jax.lax.while_loop(lambda s: ~self.done(s), body, self.init(starts))
        return state, self.finish(state)


def minimise(
    loss,
    starts,
    initial,
    static,
    mask,
    data,
    key,
    optimizer,
    num_steps,
    progress,
    *,
    stochastic: bool,
    name: str,
    label: str,
    compiler_options: dict[str, Any] | None = None,
) -> FitResult:
    """Minimise ``loss(model, data, key)`` from every start; return a :class:`FitResult`.

    Args:
        loss: ``loss(model, data, key) -> scalar`` (nats); ``key`` is a PRNG key
            per step when ``stochastic``, else ``None``.
        starts: the trainable leaves in the unconstrained space, with a leading
            ``starts`` axis (the first start is the model as given).
        initial: the trainable leaves as given, returned bit-for-bit when the
            model never moved.
        static: everything that is not trained.
        mask: the trainable mask.
        data: a pytree of arrays passed to ``loss`` (``(X, y)``).
        key: for a stochastic loss, split into one key per step.
        optimizer: as in :func:`fit`.
        num_steps: as in :func:`fit`.
        progress: a Python bool (static): print progress lines.
        stochastic: the loss is a noisy estimate (no convergence tests, no
            ranking of iterates: the last finite iterate is returned).
        name: how progress lines start.
        label: how progress lines name the loss.
        compiler_options: XLA options for the compiled loop (``None``:
            :func:`default_compiler_options`). None are passed when this call
            is traced into a user's ``jit`` (that ``jit``'s own apply; JAX
            refuses options on a nested one); options given explicitly are
            then still checked, and a ``UserWarning`` says they are ignored.

    Raises:
        TypeError: ``compiler_options`` is not a dict of names to scalars.
        ValueError: XLA rejects ``compiler_options`` (an unknown option, a
            value of the wrong type), checked before the loop is traced.
    """
    check_compiler_options(compiler_options)
    arguments = (loss, starts, initial, static, mask, data, key, optimizer, num_steps, progress)
    requested = compiler_options
    if compiler_options is None:
        compiler_options = default_compiler_options()
    if compiler_options and _staged():
        if requested:
            warnings.warn(
                f"{name}: `compiler_options` {requested!r} are ignored when {name} is traced "
                "into a larger program (inside `jax.jit`, `lax.map`, `lax.scan`, ...): pass "
                "them to the outermost `jax.jit` instead.",
                UserWarning,
                stacklevel=3,
            )
        compiler_options = {}

    def run(options):
        return _compiled_minimise(_options_key(options))(
            *arguments, stochastic=stochastic, name=name, label=label
        )

    try:
        return run(compiler_options)
    except ValueError as error:
        # Under `jax.ensure_compile_time_eval` inside a jit, new arrays are concrete and
        # `_staged` cannot tell; JAX then refuses the options at the nested jit.
        if not compiler_options or "top-level" not in str(error):
            raise
        return run({})


def _staged() -> bool:
    """Whether this call is being traced into a larger program (a user's ``jit``).

    Under a tracing ``jit`` every new array is a tracer, even a constant. Under
    an eager ``vmap`` or ``jvp`` it is not, and there the loop's own ``jit``
    keeps its options (JAX refuses options only on a ``jit`` that is staged
    into another).
    """
    return isinstance(jnp.asarray(0.0), jax.core.Tracer)


@functools.cache
def _compiled_minimise(options_key: tuple):
    """The loop's ``equinox.filter_jit``, one per set of options (``{}``: none).

    equinox keys its own cache of ``jax.jit`` objects on the option values, in
    which ``0`` equals ``False``: what keeps a rejected ``{k: 0}`` from sharing
    the default ``{k: False}``'s program is :func:`check_compiler_options`,
    which runs first.
    """
    options = {name: value for name, _, value in options_key}
    return eqx.filter_jit(_minimise, compiler_options=options or None)


def _minimise(
    loss,
    starts,
    initial,
    static,
    mask,
    data,
    key,
    optimizer,
    num_steps,
    progress,
    *,
    stochastic: bool,
    name: str,
    label: str,
) -> FitResult:
    """:func:`minimise`'s loop, compiled by :func:`_compiled_minimise` (same arguments)."""
    static_arrays, static_rest = eqx.partition(static, eqx.is_array)
    sequential = _sequential_batches()
    num_starts = jax.tree_util.tree_leaves(starts)[0].shape[0]
    report = functools.partial(
        _print_progress, name=name, label=label, num_steps=num_steps, num_starts=num_starts
    )

    def run(tree_starts, initial, static_arrays, data, key):
        # The optimizer sees the trainable leaves as one flat vector: every update
        # (a where, a dot product, the L-BFGS memory) is then one array operation
        # instead of one per leaf, which keeps the compiled loop small.
        first = jax.tree_util.tree_map(lambda leaf: leaf[0], tree_starts)
        _, unravel = ravel_pytree(first)
        starts = jax.vmap(lambda tree: ravel_pytree(tree)[0])(tree_starts)
        # The map back to natural values, too, is one array operation on the flat
        # vector (exp of the positive entries), not one per leaf.
        inverse, rest = flat_from_unconstrained(
            eqx.combine(first, static_arrays, static_rest), mask
        )

        def to_model(params):
            tree = unravel(inverse(params))
            return from_unconstrained(eqx.combine(tree, static_arrays, static_rest), rest)

        keys = None if key is None else jax.random.split(key, num_steps)
        loop = _Loop(
            lambda params, step_key: loss(to_model(params), data, step_key),
            optimizer,
            starts[0],
            None if keys is None else keys[0],
            num_steps=num_steps,
            stochastic=stochastic,
            sequential=sequential,
            report=report,
        )
        state, (params, final_losses, last_losses, losses) = loop.run(starts, keys, progress)
        # NaN never wins: rank non-finite final losses last.
        best = jnp.argmin(jnp.where(jnp.isfinite(final_losses), final_losses, jnp.inf))
        pick = lambda tree: jax.tree_util.tree_map(lambda leaf: leaf[best], tree)  # noqa: E731
        # A model that never moved (e.g. non-finite from step 0) comes back as it
        # was given, without the round trip exp(log θ) through the unconstrained space.
        unchanged = (best == 0) & _all_equal(pick(params), pick(starts))
        trainable = eqx.filter(to_model(pick(params)), mask)
        trainable = jax.tree_util.tree_map(
            lambda new, old: _like_initial(jnp.where(unchanged, old, new), old), trainable, initial
        )
        return (
            trainable,
            losses[best],
            final_losses[best],
            state.nonfinite_step[best],
            final_losses,
            state.steps_taken[best],
            last_losses[best],
        )

    if sequential:
        # Under a user's `vmap` (a batch of datasets), fit them one after the
        # other inside the compiled program instead of batching the LAPACK calls.
        run = jax.custom_batching.sequential_vmap(run)
    trainable, losses, final_loss, nonfinite_step, restart_losses, steps_taken, last_loss = run(
        starts, initial, static_arrays, data, key
    )
    return FitResult(
        model=eqx.combine(trainable, static),
        losses=losses,
        final_loss=final_loss,
        nonfinite_step=nonfinite_step,
        restart_losses=restart_losses,
        steps_taken=steps_taken,
        last_loss=last_loss,
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


def _set_column(losses, t, column):
    """``losses`` with column ``t`` set to ``column``.

    Column ``t`` is still NaN when step ``t`` writes it (each step writes its
    own column once), so nothing is read back, and a ``dynamic_update_slice``
    with scalar indices compiles to one kernel where ``.at[:, t].set`` builds
    an index vector first.
    """
    return jax.lax.dynamic_update_slice(losses, column[:, None], (jnp.zeros_like(t), t))


def _relative_decrease(old, new) -> jax.Array:
    """``(old - new) / max(|old|, |new|, 1)``: SciPy L-BFGS-B's measure of a step's progress."""
    return (old - new) / jnp.maximum(jnp.maximum(jnp.abs(old), jnp.abs(new)), 1.0)


def _max_abs(tree) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.max(jnp.asarray([jnp.max(jnp.abs(leaf)) for leaf in leaves] or [0.0]))


def _all_equal(a, b) -> jax.Array:
    pairs = zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b))
    return jnp.all(jnp.asarray([jnp.all(x == y) for x, y in pairs] or [True]))


def _print_progress(t, value, num_running, due, *, name, label, num_steps, num_starts):
    if not bool(due):
        return
    starts = (
        f"  (best of {num_starts} starts, {int(num_running)} running)" if num_starts > 1 else ""
    )
    line = f"{name}: step {int(t) + 1:>5}/{num_steps}  {label} {float(value):.6g}{starts}"
    print(line, flush=True)
