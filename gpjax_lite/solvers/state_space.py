"""Exact ``O(n)`` Gaussian processes on one input column: the state-space solver.

A supported kernel (see :mod:`gpjax_lite.solvers._sde`) is the covariance of
``f(t) = h·x(t)`` for a linear SDE on a state ``x`` of ``s`` entries
(Hartikainen & Särkkä 2010; Särkkä & Solin 2019, ch. 12). On sorted inputs
the state is a Gauss–Markov chain, so every quantity the dense solver gets
from ``K + Σ`` comes from a Kalman filter and an RTS smoother in ``O(n s³)``
time and ``O(n s²)`` memory (Särkkä 2013, "Bayesian Filtering and Smoothing"):

* ``log_marginal_likelihood``: the filter's sum of innovation log densities
  (prediction error decomposition, Särkkä 2013, eq. 12.11) — the same number
  as ``log N(r | 0, K + Σ)``; with ``parallel=False`` the filter runs in about
  ``√n`` blocks at once and reverse mode is written by hand (modified
  Bryson–Frazier adjoints), see :mod:`gpjax_lite.solvers._blocked`;
* ``condition``: filtered and smoothed moments at the sorted training inputs;
  the posterior at a test input ``t*`` then needs only its two neighbours
  ``t_k ≤ t* < t_{k+1}``: predict the filtered state at ``t_k`` to ``t*``, then
  one RTS step back from the smoothed state at ``t_{k+1}`` (``O(m log n)``
  for ``m`` test inputs, no re-filtering);
* ``post(Xt)`` and posterior/prior draws: the test inputs are merged into the
  time grid as unobserved points, filtered and smoothed; draws are by
  forward-filtering backward-sampling (Carter & Kohn 1994), ``O(n + m)``.
  The dense ``(m, m)`` covariance is formed only when ``covariance()`` is
  asked for.

Inputs may come in any order (they are sorted inside, results return in the
caller's order) and may repeat (``Δt = 0``: ``A = I``, ``Q = 0``, exact).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int

from .._checks import all_finite
from ..distributions import MultivariateNormal, check_num_samples
from ..linalg import default_jitter, solve_small
from . import _blocked, _kalman
from ._sde import SDE, discretise, discretise_entries, to_sde
from .base import Solver, SolverState


def _dtype(kernel, *arrays):
    leaves = [leaf for leaf in jax.tree_util.tree_leaves(kernel) if eqx.is_inexact_array(leaf)]
    return jnp.result_type(*arrays, *leaves)


def _steps(times: Float[Array, " N"]) -> Float[Array, " N"]:
    """``Δt`` into each sorted point, ``0`` for the first (which starts at ``P∞``)."""
    return jnp.concatenate([jnp.zeros_like(times[:1]), jnp.diff(times)])


class _Grid(eqx.Module):
    """A sorted time grid: times, targets, noise and which points are observed."""

    times: Float[Array, " N"]
    residual: Float[Array, " N"]
    noise: Float[Array, " N"]
    observed: Array  # bool (N,)

    @classmethod
    def merge(cls, times, residual, noise, observed):
        """Sort the points (stably, so ties keep their order); return the grid and the order.

        Inputs already in order (the usual case for a time series) skip the sort: a
        comparison sort of ``n`` points costs more than the whole filter.
        """
        order = jax.lax.cond(
            jnp.all(times[1:] >= times[:-1]),
            lambda t: jnp.arange(t.shape[0]),
            lambda t: jnp.argsort(t, stable=True),
            times,
        )
        return cls(times[order], residual[order], noise[order], observed[order]), order

    def filter(self, sde: SDE, parallel: bool):
        A, Q = discretise(sde, _steps(self.times))
        h, P0 = sde.observation(), sde.stationary_covariance()
        m, P, log_lik = _kalman.filter_grid(
            h, P0, A, Q, self.residual, self.noise, self.observed, parallel
        )
        return A, Q, m, P, log_lik

    def log_likelihood(self, sde: SDE, parallel: bool):
        if parallel:
            A, Q = discretise(sde, _steps(self.times))
            h, P0 = sde.observation(), sde.stationary_covariance()
            return _kalman.log_likelihood(
                h, P0, A, Q, self.residual, self.noise, self.observed, parallel
            )
        # The blocked filter (see _blocked): every per-point array in the (T, B) layout,
        # the transitions formed there directly, entry by entry.
        n = self.times.shape[0]
        T = _blocked.block_length(n)
        dt = _blocked.to_blocks(_steps(self.times), T, 0.0)  # Δt = 0 pads: A = I, Q = 0
        pattern, A, Q = discretise_entries(sde, dt)
        with jax.ensure_compile_time_eval():  # h is a constant selector for every kernel
            h = tuple(float(x) for x in np.asarray(sde.observation()))
        return _blocked.log_likelihood_entries(
            h,
            pattern,
            sde.stationary_covariance(),
            A,
            Q,
            _blocked.to_blocks(self.residual, T, 0.0),
            _blocked.to_blocks(self.noise, T, 1.0),
            _blocked.to_blocks(self.observed, T, False),
        )


def _training_grid(kernel, X, noise, residual):
    dtype = _dtype(kernel, X, residual)
    n = X.shape[0]
    grid, _ = _Grid.merge(
        X[:, 0].astype(dtype),
        residual.astype(dtype),
        noise.astype(dtype),
        jnp.ones((n,), bool),
    )
    return grid, to_sde(kernel, dtype)


class StateSpace(Solver):
    """Exact inference for one input column in ``O(n)`` time and memory (see the module docs).

    ``GP(kernel, noise=..., solver=solvers.StateSpace())`` gives the same
    numbers as the dense :class:`~gpjax_lite.solvers.Cholesky` solver, to
    round-off, for ``Matern12/32/52``, ``Cosine``, ``SHO``, ``Constant`` and
    their sums, products and positive scalings; inputs ``(n,)`` or ``(n, 1)``
    in any order, with repeats and per-point noise.

    Attributes:
        parallel: ``False`` (default) runs the Kalman filter and RTS smoother as
            sequential ``lax.scan`` loops (best on CPU); ``True`` as associative
            scans (Särkkä & García-Fernández 2021), ``O(log n)`` depth for
            accelerators, with the same numbers. A static setting.

    Raises:
        TypeError: ``parallel`` that is not a bool (at construction).
        TypeError: (when used) for a kernel without a state-space form here,
            naming it and the supported set.
        ValueError: (when used) for inputs with more than one column, naming
            the argument (``X`` or ``Xt``).

    Cost: ``O(n s³)`` time and ``O(n s²)`` memory for a state of ``s`` entries
    (1 for ``Matern12``/``Constant``, 2 for ``Matern32``/``Cosine``/``SHO``, 3 for
    ``Matern52``; sums add, products multiply), reverse-mode gradients
    included. A failed filter (a non-positive innovation variance) gives a
    non-finite value: :class:`~gpjax_lite.CholeskyError` in eager code, a
    flag (``Posterior.is_valid()``) under ``jit``.
    """

    parallel: bool = eqx.field(default=False, static=True)

    def __check_init__(self):
        # A truthy string ("no") would otherwise silently select the parallel path.
        if not isinstance(self.parallel, bool):
            raise TypeError(
                f"`parallel` must be True or False, got {type(self.parallel).__name__} "
                f"{self.parallel!r}."
            )

    def check_inputs(self, kernel, X, name):
        to_sde(kernel)  # TypeError for an unsupported kernel, before any work
        if X.shape[1] != 1:
            raise ValueError(
                f"`{name}` must have one column, shape (n,) or (n, 1), for solvers.StateSpace; "
                f"got shape {X.shape}. Use solvers.Cholesky() for several input columns."
            )

    def log_marginal_likelihood(self, kernel, X, noise, residual):
        grid, sde = _training_grid(kernel, X, noise, residual)
        return grid.log_likelihood(sde, self.parallel)

    def condition(self, kernel, X, noise, residual):
        grid, sde = _training_grid(kernel, X, noise, residual)
        A, Q, m, P, log_lik = grid.filter(sde, self.parallel)
        E, g, L = _kalman.smoothing_elements(m, P, A, Q)
        m_s, P_s = _kalman.smooth(E, g, L, self.parallel)
        return StateSpaceState(
            grid=grid,
            log_likelihood=jnp.sum(log_lik),
            filtered_mean=m,
            filtered_cov=P,
            smoothed_mean=m_s,
            smoothed_cov=P_s,
            parallel=self.parallel,
        )

    def prior(self, kernel, X, mean, jitter):
        dtype = _dtype(kernel, X, mean)
        zeros = jnp.zeros((0,), dtype)
        empty = _Grid(zeros, zeros, zeros, jnp.zeros((0,), bool))
        return _grid_normal(
            kernel, empty, X[:, 0].astype(dtype), mean.astype(dtype), jitter, self.parallel
        )


class StateSpaceState(SolverState):
    """Filtered and smoothed state moments at the sorted training inputs, kept by :class:`StateSpace`.

    Attributes:
        grid: the sorted training times, residuals ``y - m(X)`` and noise, ``(n,)`` each.
        log_likelihood: ``log p(y)`` (nats), from the same filter pass; NaN when an
            innovation variance was not positive (a failed filter), which
            :meth:`is_valid` reports.
        filtered_mean, filtered_cov: ``E[x_k | y_{≤k}]`` ``(n, s)`` and its covariance ``(n, s, s)``.
        smoothed_mean, smoothed_cov: ``E[x_k | y]`` ``(n, s)`` and its covariance ``(n, s, s)``.
        parallel: whether later passes use associative scans (static).
    """

    grid: _Grid
    log_likelihood: Float[Array, ""]
    filtered_mean: Float[Array, "n s"]
    filtered_cov: Float[Array, "n s s"]
    smoothed_mean: Float[Array, "n s"]
    smoothed_cov: Float[Array, "n s s"]
    parallel: bool = eqx.field(static=True)

    def is_valid(self):
        leaves = (
            self.log_likelihood,
            self.filtered_mean,
            self.filtered_cov,
            self.smoothed_mean,
            self.smoothed_cov,
        )
        return all_finite(leaves)

    def predict(self, kernel, Xt):
        dtype = self.filtered_mean.dtype
        sde = to_sde(kernel, dtype)
        mean, cov = jax.vmap(lambda t: self._smoothed_state(sde, t))(Xt[:, 0].astype(dtype))
        h = sde.observation()
        return mean @ h, jnp.einsum("i,mij,j->m", h, cov, h)

    def _smoothed_state(self, sde: SDE, t):
        """``E[x(t*) | y]`` and its covariance from the two training neighbours of ``t*``."""
        times = self.grid.times
        n = times.shape[0]
        k = jnp.searchsorted(times, t, side="right") - 1  # last training time ≤ t*
        before, after = k < 0, k >= n - 1
        previous, following = jnp.clip(k, 0, n - 1), jnp.clip(k + 1, 0, n - 1)
        # Filtered state at t_k (the stationary prior before the first input), predicted to t*.
        m_prev = jnp.where(before, 0.0, self.filtered_mean[previous])
        P_prev = jnp.where(before, sde.stationary_covariance(), self.filtered_cov[previous])
        dt_prev = jnp.where(before, 0.0, t - times[previous])
        A1, Q1 = discretise(sde, dt_prev[None])
        m_pred = A1[0] @ m_prev
        P_pred = A1[0] @ P_prev @ A1[0].T + Q1[0]
        # One RTS step back from the smoothed state at t_{k+1} (none after the last input).
        dt_next = jnp.where(after, 0.0, times[following] - t)
        A2, Q2 = discretise(sde, dt_next[None])
        P_next = A2[0] @ P_pred @ A2[0].T + Q2[0]
        G = solve_small(P_next, A2[0] @ P_pred).T
        m_smooth = m_pred + G @ (self.smoothed_mean[following] - A2[0] @ m_pred)
        P_smooth = P_pred + G @ (self.smoothed_cov[following] - P_next) @ G.T
        return jnp.where(after, m_pred, m_smooth), jnp.where(after, P_pred, P_smooth)

    def distribution(self, kernel, Xt, prior_mean, jitter):
        dtype = self.filtered_mean.dtype
        return _grid_normal(
            kernel,
            self.grid,
            Xt[:, 0].astype(dtype),
            prior_mean.astype(dtype),
            jitter,
            self.parallel,
        )


def _grid_normal(kernel, training: _Grid, test_times, prior_mean, jitter, parallel):
    """The joint posterior (or prior, with no training points) of ``f`` at ``test_times``."""
    dtype = prior_mean.dtype
    sde = to_sde(kernel, dtype)
    n, m = training.times.shape[0], test_times.shape[0]
    grid, order = _Grid.merge(
        jnp.concatenate([training.times, test_times]),
        jnp.concatenate([training.residual, jnp.zeros((m,), dtype)]),
        jnp.concatenate([training.noise, jnp.ones((m,), dtype)]),
        jnp.concatenate([training.observed, jnp.zeros((m,), bool)]),
    )
    A, Q, mf, Pf, _ = grid.filter(sde, parallel)
    E, g, L = _kalman.smoothing_elements(mf, Pf, A, Q)
    m_s, P_s = _kalman.smooth(E, g, L, parallel)
    # Grid positions of the test points, in time order, and which caller index each is.
    is_test = order >= n
    positions = jnp.nonzero(is_test, size=m)[0]
    caller_index = order[positions] - n
    h = sde.observation()
    sorted_mean = m_s[positions] @ h
    mean = jnp.zeros((m,), dtype).at[caller_index].set(sorted_mean) + prior_mean
    return StateSpaceNormal(
        mean,
        None,
        jitter=jitter,
        jitter_scale=jnp.mean(kernel.diag(test_times[:, None])),
        observation=h,
        gains=E,
        offsets=g,
        conditional_covs=L,
        smoothed_covs=P_s[positions],
        positions=positions,
        caller_index=caller_index,
        prior_mean=prior_mean,
        parallel=parallel,
    )


class StateSpaceNormal(MultivariateNormal):
    """``N(mean, K)`` of ``f`` at ``m`` points, held as a Gauss–Markov chain on a time grid.

    The joint law of the states on the grid (training and test points, sorted)
    is the backward chain ``x_k | x_{k+1} ~ N(E_k x_{k+1} + g_k, L_k)``
    (RTS smoother in conditional form; Särkkä 2013, Thm 8.2). ``mean`` and
    :meth:`variance` cost ``O(m)``; :meth:`sample` draws by
    backward sampling in ``O(N)`` (Carter & Kohn 1994); only
    :meth:`covariance` forms the dense ``(m, m)`` matrix (``O(m² s + N s³)``).
    ``covariance_matrix`` is ``None``.

    Sampling adds the same white jitter as the dense solver
    (``jitter · mean(prior variance)``, see :mod:`gpjax_lite.linalg`), so the
    draws have the same distribution as the dense solver's.
    """

    observation: Float[Array, " s"] = eqx.field(kw_only=True)
    gains: Float[Array, "N s s"] = eqx.field(kw_only=True)
    offsets: Float[Array, "N s"] = eqx.field(kw_only=True)
    conditional_covs: Float[Array, "N s s"] = eqx.field(kw_only=True)
    smoothed_covs: Float[Array, "m s s"] = eqx.field(kw_only=True)
    positions: Int[Array, " m"] = eqx.field(kw_only=True)
    caller_index: Int[Array, " m"] = eqx.field(kw_only=True)
    prior_mean: Float[Array, " m"] = eqx.field(kw_only=True)
    parallel: bool = eqx.field(kw_only=True, static=True)

    def _to_caller(self, sorted_values, axis=-1):
        m = self.mean.shape[0]
        inverse = jnp.zeros((m,), self.caller_index.dtype).at[self.caller_index].set(jnp.arange(m))
        return jnp.take(sorted_values, inverse, axis=axis)

    def variance(self):
        h = self.observation
        return self._to_caller(jnp.einsum("i,mij,j->m", h, self.smoothed_covs, h))

    def covariance(self):
        """The dense ``(m, m)`` covariance: ``Cov(f_a, f_b) = h c_a ⋯ c_{b-1} P^s_b hᵀ`` for ``a ≤ b``."""
        h = self.observation
        is_test = jnp.zeros(self.gains.shape[:1], bool).at[self.positions].set(True)
        composite = _kalman.chain_gains(self.gains, is_test)[self.positions]  # (m, s, s)
        m = self.positions.shape[0]
        rows = jnp.arange(m)

        def column(V, inputs):
            b, c_b, P_b = inputs
            V = jnp.where((rows == b)[:, None], h, V)
            col = jnp.where(rows <= b, V @ (P_b @ h), 0.0)
            return V @ c_b, col

        V0 = jnp.zeros((m, h.shape[0]), h.dtype)
        _, columns = jax.lax.scan(column, V0, (rows, composite, self.smoothed_covs))
        upper = columns.T  # upper[a, b] = Cov(f_a, f_b) for a ≤ b (time order)
        K = jnp.where(rows[:, None] <= rows[None, :], upper, upper.T)
        return self._to_caller(self._to_caller(K, axis=0), axis=1)

    def sample(self, key, num_samples: int = 1):
        """``num_samples`` joint draws by backward sampling, shape ``(num_samples, m)``.

        Raises:
            TypeError: if ``num_samples`` is not an ``int``.
            ValueError: if it is not positive.
        """
        num_samples = check_num_samples(num_samples)
        N, s = self.offsets.shape
        m = self.mean.shape[0]
        state_key, jitter_key = jax.random.split(key)
        dtype = self.offsets.dtype
        xi = jax.random.normal(state_key, (num_samples, N, s), dtype)
        states = jax.vmap(
            lambda noise: _kalman.sample_backward(
                self.gains, self.offsets, self.conditional_covs, noise, self.parallel
            )
        )(xi)
        f = self._to_caller(states[:, self.positions] @ self.observation)
        jitter = default_jitter(dtype) if self.jitter is None else self.jitter
        white = jax.random.normal(jitter_key, (num_samples, m), dtype)
        return f + self.prior_mean + jnp.sqrt(jitter * self.jitter_scale) * white
