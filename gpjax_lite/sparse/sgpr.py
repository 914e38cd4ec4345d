"""SGPR: the collapsed variational bound of Titsias (2009) for the middle range of ``n``.

Model: the exact GP regression model ``y = f(X) + ε``, ``ε ~ N(0, σ² I)``,
summarised through ``m`` inducing inputs ``Z`` ``(m, d)``. With

    Kuu = k(Z, Z) + jitter·I        (m, m),   L Lᵀ = Kuu
    Kuf = k(Z, X)                   (m, n)
    Qff = Kufᵀ Kuu⁻¹ Kuf            (n, n)   (never formed)
    r   = y - m(X)                  (n,)

the collapsed bound (the ELBO maximised over q(u) in closed form) is

    F = log N(r | 0, Qff + σ² I) - tr(Kff - Qff) / (2σ²)  ≤  log p(y).

It is computed in ``O(n m²)`` time through two ``m × m`` Cholesky factors::

    A   = L⁻¹ Kuf / σ               (m, n)
    B   = I + A Aᵀ,   LB LBᵀ = B    (m, m)
    c   = LB⁻¹ A r / σ              (m,)
    F   = -n/2 log 2π - Σ log diag LB - n/2 log σ² - rᵀr / (2σ²) + cᵀc / 2
          - Σ diag(Kff) / (2σ²) + tr(A Aᵀ) / 2

``A`` only ever appears through ``A Aᵀ`` ``(m, m)``, ``A r`` ``(m,)`` and sums
over rows, so the rows are processed in chunks of ``chunk_size``: memory is
``O(m² + chunk_size · m)`` whatever ``n`` is. With ``Z = X`` (and no jitter)
``Qff = Kff`` and ``F`` is the exact log marginal likelihood.

Predictions use the optimal ``q(u)``; at test inputs ``X*`` with
``Kus = k(Z, X*)``::

    t1 = L⁻¹ Kus,  t2 = LB⁻¹ t1      (m, t)
    mean = m(X*) + t2ᵀ c
    var  = diag k(X*, X*) - Σ_rows t1² + Σ_rows t2²
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from .._checks import (
    as_float_array,
    as_inputs,
    as_targets,
    check_jitter,
    check_kernel_and_mean,
    evaluate_mean,
)
from .._module import Module
from ..distributions import MultivariateNormal
from ..kernels.base import Kernel
from ..linalg import cholesky, raise_if_not_finite, solve_lower
from ..means import Zero
from ..parameters import cast_weak_leaves, check_hyperparameters, positive_field
from ..posterior import AbstractPosterior
from ._common import (
    LOG_2PI,
    check_chunk_size,
    check_columns,
    check_inducing_inputs,
    check_scalar_noise,
    chunked_map,
    chunked_sum,
    inducing_cholesky,
)

#: Default number of rows per chunk when accumulating over the data.
DEFAULT_CHUNK_SIZE = 8192


class SGPR(Module):
    """Sparse GP regression with the collapsed bound of Titsias (2009).

    ``SGPR(kernel, inducing_inputs, mean=Zero(), noise=1e-2)``.

    Attributes:
        kernel: the covariance function.
        inducing_inputs: ``Z``, shape ``(m, d)`` (``(m,)`` is read as ``(m, 1)``);
            a real hyperparameter, optimised by :func:`gpjax_lite.fit` unless
            held ``fixed``.
        mean: the prior mean function (default ``Zero()``).
        noise: the observation-noise variance ``σ²`` (a positive scalar).
        jitter: relative jitter added to ``k(Z, Z)`` (``None``: 1e-8 in float64,
            1e-4 in float32; see :mod:`gpjax_lite.linalg`).
        chunk_size: rows per chunk when summing over the data (``None``: all
            rows at once, ``O(n m)`` memory).

    The bound is :meth:`elbo`; fit with
    ``gpjax_lite.fit(model, X, y, objective=gpjax_lite.sparse.sgpr_elbo)``.
    """

    kernel: Kernel
    inducing_inputs: Float[Array, "m d"]
    mean: eqx.Module = eqx.field(default_factory=Zero)
    noise: Float[Array, ""] = positive_field(1e-2)
    jitter: float | None = eqx.field(default=None, static=True, kw_only=True)
    chunk_size: int | None = eqx.field(default=DEFAULT_CHUNK_SIZE, static=True, kw_only=True)

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        Z = jnp.shape(self.inducing_inputs)
        if len(Z) != 2 or Z[0] < 1:
            raise ValueError(
                "`inducing_inputs` must have shape (m, d) with m >= 1, got shape "
                f"{jnp.shape(self.inducing_inputs)}."
            )
        check_scalar_noise(self.noise)
        check_jitter(self.jitter)
        check_chunk_size(self.chunk_size)

    def __init__(
        self,
        kernel,
        inducing_inputs,
        mean=None,
        noise=1e-2,
        *,
        jitter=None,
        chunk_size=DEFAULT_CHUNK_SIZE,
    ):
        Z = check_inducing_inputs(inducing_inputs)
        self.inducing_inputs = Z
        self.kernel, self.mean, self.noise = cast_weak_leaves(
            (kernel, Zero() if mean is None else mean, as_float_array(noise)), Z.dtype
        )
        self.jitter = jitter
        self.chunk_size = chunk_size

    @property
    def num_inducing(self) -> int:
        return self.inducing_inputs.shape[0]

    # ------------------------------------------------------------------ checks
    def _data(self, X, y):
        check_hyperparameters(self)
        X = as_inputs("X", X)
        y = as_targets("y", y, X.shape[0])
        check_columns("X", X, self.inducing_inputs)
        self.kernel.check_input_dim(X.shape[1])
        return X, y

    # -------------------------------------------------------------- statistics
    def _statistics(self, X, y):
        """``L``, ``LB``, ``c`` and the data terms of the bound (one pass over the rows)."""
        Z = self.inducing_inputs
        dtype = jnp.result_type(X, y, Z, self.noise)
        L = inducing_cholesky(self.kernel, Z, self.jitter)
        sigma = jnp.sqrt(self.noise)

        def pass_over(Xc, yc, w):
            r = (yc - evaluate_mean(self.mean, Xc)) * w
            A = solve_lower(L, self.kernel.cross(Z, Xc)) * (w / sigma)
            return {
                "AAT": A @ A.T,
                "Ar": A @ r,
                "rr": jnp.dot(r, r),
                "kff": jnp.sum(self.kernel.diag(Xc) * w),
            }

        stats = chunked_sum(pass_over, (X, y), self.chunk_size, dtype)
        m = Z.shape[0]
        B = stats["AAT"] + jnp.eye(m, dtype=stats["AAT"].dtype)
        LB = cholesky(B, what="I + A Aᵀ (SGPR)")
        c = solve_lower(LB, stats["Ar"]) / sigma
        return L, LB, c, stats

    def elbo(self, X, y) -> Float[Array, ""]:
        """The collapsed bound ``F ≤ log p(y)`` (nats), in ``O(n m²)`` time.

        Args:
            X: inputs ``(n,)`` or ``(n, d)`` with the columns of ``inducing_inputs``.
            y: targets ``(n,)``.

        Raises:
            ValueError: mis-shaped or non-finite ``X``/``y``, or ``X`` whose
                columns differ from ``inducing_inputs``.
            CholeskyError: (eager calls only) if a factorisation failed.
        """
        X, y = self._data(X, y)
        value = _bound(self, X, y)
        raise_if_not_finite(value, "k(Z, Z) + jitter·I or I + A Aᵀ (SGPR)")
        return value

    def condition(self, X, y) -> SGPRPosterior:
        """The approximate posterior under the optimal ``q(u)`` given ``y`` at ``X``."""
        X, y = self._data(X, y)
        L, LB, c = _condition(self, X, y)
        raise_if_not_finite(LB, "k(Z, Z) + jitter·I or I + A Aᵀ (SGPR)")
        return SGPRPosterior(model=self, cholesky_factor=L, cholesky_factor_b=LB, c=c)

    def predict(self, X, y, Xt, include_noise=False):
        """``self.condition(X, y).predict(Xt, include_noise)``: mean and variance ``(t,)``."""
        return self.condition(X, y).predict(Xt, include_noise=include_noise)


# Compiled cores: the public methods check their inputs eagerly, then call these
# (one compiled program per shape, instead of one dispatch per operation).
@eqx.filter_jit
def _bound(model, X, y):
    n = X.shape[0]
    _, LB, c, s = model._statistics(X, y)
    noise = model.noise
    return (
        -0.5 * n * LOG_2PI
        - jnp.sum(jnp.log(jnp.diagonal(LB)))
        - 0.5 * n * jnp.log(noise)
        - 0.5 * s["rr"] / noise
        + 0.5 * jnp.dot(c, c)
        - 0.5 * s["kff"] / noise
        + 0.5 * jnp.trace(s["AAT"])
    )


@eqx.filter_jit
def _condition(model, X, y):
    L, LB, c, _ = model._statistics(X, y)
    return L, LB, c


def sgpr_elbo(model: SGPR, X, y) -> Float[Array, ""]:
    """``model.elbo(X, y)``: the objective for ``gpjax_lite.fit(model, X, y, objective=sgpr_elbo)``."""
    return model.elbo(X, y)


class SGPRPosterior(AbstractPosterior):
    """The SGPR approximate posterior (Titsias' optimal ``q(u)``), built by :meth:`SGPR.condition`.

    ``predict`` (chunked over test points), ``sample`` and ``__call__`` are
    those of :class:`~gpjax_lite.posterior.AbstractPosterior`.

    Attributes:
        model: the conditioned :class:`SGPR`.
        cholesky_factor: ``L`` with ``L Lᵀ = k(Z, Z) + jitter``, ``(m, m)``.
        cholesky_factor_b: ``LB`` with ``LB LBᵀ = I + A Aᵀ``, ``(m, m)``.
        c: ``LB⁻¹ A r / σ``, ``(m,)``.
    """

    model: SGPR
    cholesky_factor: Float[Array, "m m"]
    cholesky_factor_b: Float[Array, "m m"]
    c: Float[Array, " m"]

    def is_valid(self) -> Float[Array, ""]:
        """Whether both factorisations succeeded (all finite); usable under ``jit``."""
        return jnp.all(jnp.isfinite(self.cholesky_factor)) & jnp.all(
            jnp.isfinite(self.cholesky_factor_b)
        )

    def _check_test_inputs(self, Xt):
        check_hyperparameters(self.model)
        Xt = as_inputs("Xt", Xt)
        check_columns("Xt", Xt, self.model.inducing_inputs)
        return Xt

    def _project(self, Xt):
        Z = self.model.inducing_inputs
        t1 = solve_lower(self.cholesky_factor, self.model.kernel.cross(Z, Xt))
        t2 = solve_lower(self.cholesky_factor_b, t1)
        mean = evaluate_mean(self.model.mean, Xt) + t2.T @ self.c
        return mean, t1, t2

    def _latent_moments(self, Xt):
        return _predict(self, Xt)

    def _latent_distribution(self, Xt):
        mean, cov = _joint(self, Xt)
        return MultivariateNormal(mean, cov, jitter=self.model.jitter)

    def _observation_noise(self):
        return self.model.noise


@eqx.filter_jit
def _predict(post, Xt):
    def one_chunk(Xc):
        mean, t1, t2 = post._project(Xc)
        var = post.model.kernel.diag(Xc) - jnp.sum(t1**2, axis=0) + jnp.sum(t2**2, axis=0)
        return mean, var

    return chunked_map(one_chunk, Xt, post.model.chunk_size)


@eqx.filter_jit
def _joint(post, Xt):
    mean, t1, t2 = post._project(Xt)
    return mean, post.model.kernel.gram(Xt) - t1.T @ t1 + t2.T @ t2
