"""SVGP: stochastic variational GPs (Hensman, Matthews & Ghahramani 2015) for very large ``n``.

Whitened parameterisation. With ``m`` inducing inputs ``Z`` ``(m, d)``,
``Kuu = k(Z, Z) + jitter·I = L Lᵀ`` and inducing values ``u = L v``, the
variational distribution is over ``v``::

    q(v) = N(μ, S),   S = Lₛ Lₛᵀ,   p(v) = N(0, I)
    μ: ``q_mu`` (m,),   Lₛ: ``q_sqrt`` (m, m), lower triangular, positive diagonal

At one input ``x`` with ``a = L⁻¹ k(Z, x)`` ``(m,)`` the marginal ``q(f(x))``
is Gaussian with::

    mean  μ_f = m(x) + aᵀ μ
    var   v_f = k(x, x) - aᵀ a + |Lₛᵀ a|²

For Gaussian observations the expected log likelihood is closed form::

    E_q[log N(y | f, σ²)] = -½ log 2πσ² - ((y - μ_f)² + v_f) / (2σ²)

and so it is for Poisson counts, ``E_q[y f - e^f - log y!] = y μ_f - e^{μ_f + v_f/2} - log y!``;
any other likelihood (``Bernoulli``, ``StudentT``) integrates ``log p(y | f)``
against ``N(μ_f, v_f)`` by Gauss–Hermite quadrature
(:meth:`gpjax_lite.likelihoods.Likelihood.expected_log_prob`).

and the ELBO on a minibatch ``B`` of ``b`` out of ``n`` points is the
unbiased estimate::

    ELBO ≈ (n / b) Σ_{i ∈ B} E_q[log p(y_i | f_i)] - KL[q(v) ‖ p(v)]
    KL   = ½ (tr S + μᵀμ - m - log|S|),   log|S| = 2 Σ log diag Lₛ

A step costs ``O(b m² + m³)`` time and ``O(b m + m²)`` memory, independent
of ``n``. :func:`fit_svgp` runs the whole optimisation in the one compiled
loop of :func:`gpjax_lite.fit` with minibatches drawn by ``jax.random``
inside the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray

from .._checks import (
    as_inputs,
    as_targets,
    check_kernel_and_mean,
    evaluate_mean,
)
from ..distributions import MultivariateNormal
from ..fit import check_loop_arguments, minimise, split_trainable, warn_about_run
from ..kernels.base import Kernel
from ..likelihoods import Gaussian, Likelihood
from ..linalg import cho_solve, cholesky, raise_if_not_finite, solve_lower
from ..means import Zero
from ..parameters import cast_weak_leaves, check_hyperparameters, real_field
from ..posterior import AbstractPosterior
from ._common import (
    as_int,
    check_chunk_size,
    check_columns,
    check_inducing_inputs,
    check_lower_triangular,
    check_scalar_noise,
    chunked_map,
    chunked_sum,
    inducing_cholesky,
    lower_triangular_field,
)
from .sgpr import DEFAULT_CHUNK_SIZE, SGPR


class SVGP(AbstractPosterior):
    """Stochastic variational GP with a whitened Gaussian ``q(u)`` and any likelihood.

    ``SVGP(kernel, inducing_inputs, mean=Zero(), noise=None, *, likelihood=None, q_mu=None,
    q_sqrt=None)``

    Attributes:
        kernel: the covariance function.
        inducing_inputs: ``Z`` ``(m, d)`` (``(m,)`` is read as ``(m, 1)``), trainable.
        mean: the prior mean function (default ``Zero()``).
        likelihood: the observation model, a
            :class:`~gpjax_lite.likelihoods.Likelihood`. ``None`` (the default)
            means ``Gaussian(noise)`` with ``noise`` (default 1e-2), a positive
            scalar variance; pass either ``noise`` or ``likelihood``, not both.
            ``model.noise`` reads the Gaussian likelihood's noise.
        q_mu: whitened variational mean ``μ`` ``(m,)`` (default zeros).
        q_sqrt: lower-triangular ``Lₛ`` with positive diagonal, ``S = Lₛ Lₛᵀ``,
            ``(m, m)`` (default the identity, i.e. ``q(v) = p(v)``). Stored as
            the factor itself; optimisers see its strictly lower part as it is
            and its diagonal through a log (see
            :class:`gpjax_lite.sparse.LowerTriangular`).
        jitter: relative jitter added to ``k(Z, Z)`` (``None``: 1e-8 in float64,
            1e-4 in float32).
        chunk_size: rows per chunk for full-data ELBOs and predictions
            (``None``: all at once).
    """

    kernel: Kernel
    inducing_inputs: Float[Array, "m d"]
    mean: eqx.Module
    likelihood: Likelihood
    q_mu: Float[Array, " m"] = real_field()
    q_sqrt: Float[Array, "m m"] = lower_triangular_field()
    jitter: float | None = eqx.field(default=None, static=True, kw_only=True)
    chunk_size: int | None = eqx.field(default=DEFAULT_CHUNK_SIZE, static=True, kw_only=True)

    def __init__(
        self,
        kernel,
        inducing_inputs,
        mean=None,
        noise=None,
        *,
        likelihood=None,
        q_mu=None,
        q_sqrt=None,
        jitter=None,
        chunk_size=DEFAULT_CHUNK_SIZE,
    ):
        Z = check_inducing_inputs(inducing_inputs)
        m = Z.shape[0]
        self.inducing_inputs = Z
        if likelihood is None:
            likelihood = Gaussian(1e-2 if noise is None else noise)
        elif noise is not None:
            raise ValueError(
                "Pass either `noise` (for Gaussian observations) or `likelihood`, not both: "
                "use `likelihood=likelihoods.Gaussian(noise)` to set the noise with a likelihood."
            )
        if not isinstance(likelihood, Likelihood):
            raise TypeError(
                "`likelihood` must be a gpjax_lite.likelihoods.Likelihood (e.g. "
                f"`likelihoods.Bernoulli()`), got {type(likelihood).__name__}."
            )
        self.kernel, self.mean, self.likelihood = cast_weak_leaves(
            (kernel, Zero() if mean is None else mean, likelihood), Z.dtype
        )
        self.q_mu = jnp.zeros((m,), Z.dtype) if q_mu is None else q_mu
        self.q_sqrt = jnp.eye(m, dtype=Z.dtype) if q_sqrt is None else q_sqrt
        self.jitter = jitter
        self.chunk_size = chunk_size

    def __check_init__(self):
        check_kernel_and_mean(self.kernel, self.mean)
        m = self.inducing_inputs.shape[0]
        if jnp.shape(self.q_mu) != (m,):
            raise ValueError(
                f"`q_mu` must have shape (m,) = ({m},) for m inducing inputs, got {jnp.shape(self.q_mu)}."
            )
        check_lower_triangular(self.q_sqrt, m)
        if isinstance(self.likelihood, Gaussian):
            check_scalar_noise(self.likelihood.noise)
        check_chunk_size(self.chunk_size)

    @property
    def num_inducing(self) -> int:
        return self.inducing_inputs.shape[0]

    @property
    def noise(self):
        """The Gaussian likelihood's noise variance ``σ²`` (``AttributeError`` for other likelihoods)."""
        # Not annotated ``Float[Array, ""]``: selectors such as ``fixed=lambda m: m.noise`` also
        # read it on a mask tree of the model's shape, where the leaf is a bool.
        if not isinstance(self.likelihood, Gaussian):
            # AttributeError, not TypeError: `hasattr(model, "noise")` must answer False.
            raise AttributeError(  # noqa: TRY004
                f"this SVGP has a {type(self.likelihood).__name__} likelihood, which has no `noise`."
            )
        return self.likelihood.noise

    # ------------------------------------------------------------------ checks
    def _inputs(self, name, X):
        check_hyperparameters(self)
        X = as_inputs(name, X)
        check_columns(name, X, self.inducing_inputs)
        self.kernel.check_input_dim(X.shape[1])
        return X

    def _data(self, X, y):
        X = self._inputs("X", X)
        return X, self.likelihood.check_targets(as_targets("y", y, X.shape[0]))

    # --------------------------------------------------------------- marginals
    def _marginals(self, L, Xb):
        """``μ_f`` and ``v_f`` of ``q(f)`` at the rows of ``Xb`` (no clamping)."""
        A = solve_lower(L, self.kernel.cross(self.inducing_inputs, Xb))  # (m, b)
        LsT_A = jnp.tril(self.q_sqrt).T @ A
        mean = evaluate_mean(self.mean, Xb) + A.T @ self.q_mu
        var = self.kernel.diag(Xb) - jnp.sum(A**2, axis=0) + jnp.sum(LsT_A**2, axis=0)
        return mean, var

    def kl(self) -> Float[Array, ""]:
        """``KL[q(v) ‖ N(0, I)] = ½ (tr S + μᵀμ - m - log|S|)`` (nats)."""
        Ls = jnp.tril(self.q_sqrt)
        m = self.q_mu.shape[0]
        return 0.5 * (
            jnp.sum(Ls**2)
            + jnp.dot(self.q_mu, self.q_mu)
            - m
            - 2.0 * jnp.sum(jnp.log(jnp.diagonal(Ls)))
        )

    def expected_log_likelihood(self, X, y) -> Float[Array, ""]:
        """``Σ_i E_q[log p(y_i | f(x_i))]`` over the given rows (nats), chunked.

        Closed form for ``Gaussian`` and ``Poisson``; Gauss–Hermite quadrature with
        :data:`gpjax_lite.likelihoods.NUM_QUADRATURE_NODES` nodes otherwise.

        Raises:
            ValueError: for mis-shaped or non-finite ``X``/``y``, or ``y`` outside
                the likelihood's support.
        """
        X, y = self._data(X, y)
        return _expected_log_likelihood(self, X, y)

    def _expected_log_likelihood(self, L, X, y):
        dtype = jnp.result_type(X, y, self.inducing_inputs)

        def rows(Xc, yc, w):
            mean, var = self._marginals(L, Xc)
            # Round-off can make v_f slightly negative; quadrature takes its square root.
            terms = self.likelihood.expected_log_prob(yc, mean, jnp.maximum(var, 0.0))
            return jnp.sum(terms * w)

        return chunked_sum(rows, (X, y), self.chunk_size, dtype)

    def elbo(self, X, y, *, num_data=None) -> Float[Array, ""]:
        """The ELBO ``(n / b) Σ_i E_q[log p(y_i | f_i)] - KL`` (nats) ``≤ log p(y)``.

        Args:
            X: inputs ``(b,)`` or ``(b, d)``: all the data, or a minibatch.
            y: targets ``(b,)``.
            num_data: ``n``, the size of the full data set when ``X`` is a
                minibatch (the sum is then scaled by ``n / b``, an unbiased
                estimate for uniformly drawn rows); default ``b``.
        """
        X, y = self._data(X, y)
        b = X.shape[0]
        if num_data is None:
            num_data = b
        elif not isinstance(num_data, jax.core.Tracer):
            if isinstance(num_data, (bool, np.bool_)) or not isinstance(
                num_data, (int, np.integer)
            ):
                raise TypeError(
                    f"`num_data` must be an int (the data set's size), got {num_data!r}."
                )
            if num_data < b:
                raise ValueError(f"`num_data` ({num_data}) must be at least the batch size {b}.")
        value = _elbo(self, X, y, jnp.asarray(num_data / b, dtype=jnp.result_type(X, y)))
        raise_if_not_finite(value, "k(Z, Z) + jitter·I (SVGP)")
        return value

    # ------------------------------------------------------------- predictions
    # ``predict(Xt, include_noise=False)`` (chunked; no ``(t, t)`` matrix),
    # ``sample`` and ``__call__`` (the joint ``q(f)``,
    # ``N(μ_f, k(X*, X*) - AᵀA + AᵀSA)``) come from AbstractPosterior.
    def _check_test_inputs(self, Xt):
        return self._inputs("Xt", Xt)

    def _latent_moments(self, Xt):
        return _predict(self, Xt)

    def _latent_distribution(self, Xt):
        mean, cov = _joint(self, Xt)
        return MultivariateNormal(mean, cov, jitter=self.jitter)

    def _observation_noise(self):
        return self.likelihood._observation_noise()

    def predict_y(self, Xt):
        """Moments of a new observation ``y*`` at ``Xt``: ``likelihood.predict`` of the latent
        ``q(f(X*))`` moments, each ``(m,)`` (for ``Bernoulli``, ``P(y* = 1)`` and ``P(1 - P)``).

        Raises:
            ValueError: for mis-shaped or non-finite ``Xt``.
        """
        mean, variance = self.predict(Xt)
        return self.likelihood.predict(mean, variance)

    # ------------------------------------------------------ closed-form q(v)
    def with_optimal_variational(self, X, y) -> SVGP:
        """This model with ``q_mu``, ``q_sqrt`` replaced by the optimal ``q(v)`` for ``(X, y)``.

        For Gaussian noise the ELBO is maximised over ``q(v)`` in closed form
        (then it equals the SGPR bound)::

            S = (I + A Aᵀ)⁻¹,   μ = S A r / σ,     A = L⁻¹ k(Z, X) / σ,  r = y - m(X)

        ``O(n m²)`` time in chunks of ``chunk_size`` rows. Useful as a
        starting point (on a subset) and to check the bound.

        Raises:
            TypeError: for a non-``Gaussian`` likelihood (no closed form).
        """
        if not isinstance(self.likelihood, Gaussian):
            raise TypeError(
                "`with_optimal_variational` needs a Gaussian likelihood (the optimal q(v) is "
                f"closed form only then), this model has {type(self.likelihood).__name__}."
            )
        X, y = self._data(X, y)
        q_mu, q_sqrt = _optimal_variational(self, X, y)
        raise_if_not_finite(q_sqrt, "k(Z, Z) + jitter·I or the optimal S (SVGP)")
        return eqx.tree_at(lambda mdl: (mdl.q_mu, mdl.q_sqrt), self, (q_mu, q_sqrt))


# Compiled cores: the public methods check their inputs eagerly, then call these.
@eqx.filter_jit
def _elbo(model, X, y, scale):
    L = inducing_cholesky(model.kernel, model.inducing_inputs, model.jitter)
    return scale * model._expected_log_likelihood(L, X, y) - model.kl()


@eqx.filter_jit
def _expected_log_likelihood(model, X, y):
    L = inducing_cholesky(model.kernel, model.inducing_inputs, model.jitter)
    return model._expected_log_likelihood(L, X, y)


@eqx.filter_jit
def _predict(model, Xt):
    L = inducing_cholesky(model.kernel, model.inducing_inputs, model.jitter)

    return chunked_map(lambda Xc: model._marginals(L, Xc), Xt, model.chunk_size)


@eqx.filter_jit
def _joint(model, Xt):
    L = inducing_cholesky(model.kernel, model.inducing_inputs, model.jitter)
    A = solve_lower(L, model.kernel.cross(model.inducing_inputs, Xt))
    LsT_A = jnp.tril(model.q_sqrt).T @ A
    mean = evaluate_mean(model.mean, Xt) + A.T @ model.q_mu
    return mean, model.kernel.gram(Xt) - A.T @ A + LsT_A.T @ LsT_A


@eqx.filter_jit
def _optimal_variational(model, X, y):
    sgpr = SGPR(
        model.kernel,
        model.inducing_inputs,
        model.mean,
        model.noise,
        jitter=model.jitter,
        chunk_size=model.chunk_size,
    )
    _, LB, c, _ = sgpr._statistics(X, y)
    m = LB.shape[0]
    q_mu = jax.scipy.linalg.solve_triangular(LB, c, lower=True, trans=1)  # LB⁻ᵀ c
    S = cho_solve(LB, jnp.eye(m, dtype=LB.dtype))
    return q_mu, cholesky(0.5 * (S + S.T), what="the optimal S = (I + A Aᵀ)⁻¹")


def svgp_elbo(model: SVGP, X, y) -> Float[Array, ""]:
    """``model.elbo(X, y)`` on all of the data: an objective for ``gpjax_lite.fit(..., objective=svgp_elbo)``."""
    return model.elbo(X, y)


# ---------------------------------------------------------------- minibatches
def sample_minibatch(key: PRNGKeyArray, X, y, batch_size: int):
    """``batch_size`` rows of ``(X, y)`` drawn uniformly *with replacement* by ``jax.random``.

    With replacement, each row of the batch is an independent uniform draw,
    so ``(n / b) Σ_batch`` is an unbiased estimate of the full-data sum, and
    the draw costs ``O(b)`` whatever ``n`` is (no permutation of ``n`` rows).
    """
    idx = jax.random.randint(key, (batch_size,), 0, X.shape[0])
    return X[idx], y[idx]


class SVGPFitResult(eqx.Module):
    """What :func:`fit_svgp` returns.

    Attributes:
        model: the fitted :class:`SVGP` (same structure as the input): the last
            iterate, or the last one before a non-finite step.
        losses: ``(num_steps,)`` negative minibatch ELBO (nats, scaled to all ``n``
            points) at the start of each step: a noisy, unbiased estimate of
            the negative full ELBO. From a non-finite step on they are NaN.
        nonfinite_step: first step whose loss or gradient was NaN/inf (-1 if
            none); the run stops there.
    """

    model: Any
    losses: Float[Array, " num_steps"]
    nonfinite_step: Int[Array, ""]


class NegativeMinibatchELBO(eqx.Module):
    """The loss :func:`fit_svgp` minimises at each step: ``-ELBO`` on a fresh minibatch.

    ``loss(model, (X, y), key)`` draws ``batch_size`` rows with
    :func:`sample_minibatch` from ``key`` and returns
    ``-(n / b) Σ_batch E_q[log p(y|f)] + KL`` (nats). With a ``mesh`` the
    minibatch is split across the mesh's batch axis.
    """

    batch_size: int = eqx.field(static=True)
    mesh: Any = eqx.field(default=None, static=True)

    def __call__(self, model: SVGP, data, key) -> Float[Array, ""]:
        X, y = data
        Xb, yb = sample_minibatch(key, X, y, self.batch_size)
        if self.mesh is not None:
            from jax.sharding import NamedSharding, PartitionSpec

            from .sharding import batch_axis

            split = NamedSharding(self.mesh, PartitionSpec(batch_axis(self.mesh)))
            Xb = jax.lax.with_sharding_constraint(Xb, split)
            yb = jax.lax.with_sharding_constraint(yb, split)
        return -model.elbo(Xb, yb, num_data=X.shape[0])


_DEFAULT_OPTIMIZER = optax.adam(1e-2)


def fit_svgp(
    model: SVGP,
    X,
    y,
    *,
    batch_size: int,
    num_steps: int,
    optimizer: optax.GradientTransformation = _DEFAULT_OPTIMIZER,
    key: PRNGKeyArray,
    fixed: Callable[[Any], Any] | None = None,
    mesh=None,
    progress: bool = False,
    compiler_options: dict[str, Any] | None = None,
) -> SVGPFitResult:
    """Maximise the SVGP ELBO by minibatch stochastic optimisation, in one compiled loop.

    Every step draws ``batch_size`` rows uniformly with replacement
    (:func:`sample_minibatch`, inside the loop, from data held on the device)
    and takes one optax step on ``-(n / b) Σ_batch E_q[log p(y|f)] + KL``
    (Hensman, Matthews & Ghahramani 2015). Trainable leaves (kernel, noise,
    ``Z``, ``q_mu``, ``q_sqrt``, minus ``fixed``) are optimised in the
    unconstrained space of :mod:`gpjax_lite.parameters` (log for positive
    ones, log-diagonal for ``q_sqrt``).

    It runs the same loop as :func:`gpjax_lite.fit` (``gpjax_lite.fit.minimise``)
    with a stochastic loss: minibatch losses are noisy estimates, so there are
    no convergence tests (all ``num_steps`` steps run) and the last iterate is
    returned rather than the one with the lowest minibatch loss. A non-finite
    loss or gradient stops the run, returns the last finite iterate and, in
    eager code, warns.

    Args:
        model: an :class:`SVGP`.
        X: inputs ``(n,)`` or ``(n, d)``; ``y``: targets ``(n,)``.
        batch_size: rows per step, ``1 <= batch_size <= n``.
        num_steps: number of optimisation steps (>= 1).
        optimizer: an optax ``GradientTransformation`` (default ``optax.adam(1e-2)``).
            Reuse one object across calls to reuse the compiled loop.
        key: PRNG key for the minibatch draws (required).
        fixed: ``lambda model: leaves`` to hold fixed, as in :func:`gpjax_lite.fit`.
        mesh: a ``jax.sharding.Mesh`` (e.g. :func:`gpjax_lite.sparse.sharding.data_mesh`)
            to run each step data-parallel: the data and parameters are
            replicated on every device, each minibatch is split across the
            mesh's first axis, and XLA sums the partial ELBOs. ``batch_size``
            must then be a multiple of the number of devices on that axis.
            ``None``: default placement (one device).
        progress: print the minibatch loss about 10 times (``jax.debug.callback``;
            a static setting: switching it compiles the loop again).
        compiler_options: XLA compiler options for the compiled loop, as in
            :func:`gpjax_lite.fit` (``None``: its default, XLA:CPU's classic
            fusion emitters on the CPU; ``{}``: none, XLA's defaults or your
            ``XLA_FLAGS``); a dict replaces the default. Ignored, with a
            ``UserWarning`` when non-empty, when ``fit_svgp`` is traced into a
            larger program (inside your own ``jax.jit``, ``lax.map``, ...).

    Returns:
        An :class:`SVGPFitResult` with ``.model``, ``.losses`` and ``.nonfinite_step``.

    Raises:
        ValueError: bad shapes or non-finite data, ``X`` whose columns differ
            from ``inducing_inputs``, ``batch_size`` outside ``[1, n]`` (or not
            divisible by the mesh), ``num_steps < 1``, a ``fixed`` that does
            not select parts of the model (or selects all of it),
            ``compiler_options`` that XLA rejects.
        TypeError: a ``model`` that is not an :class:`SVGP`, a ``batch_size``
            or ``num_steps`` that is not an int, a missing ``key``, an ``optimizer``
            that is not an optax ``GradientTransformation``, a ``progress``
            that is not a bool, ``compiler_options`` that are not a dict of
            option names to scalar values.
    """
    if not isinstance(model, SVGP):
        raise TypeError(f"`model` must be a gpjax_lite.sparse.SVGP, got {type(model).__name__}.")
    X, y = model._data(X, y)
    n = X.shape[0]
    batch_size = as_int("batch_size", batch_size, minimum=1, maximum=n)
    num_steps = check_loop_arguments(
        optimizer=optimizer,
        num_steps=num_steps,
        progress=progress,
        compiler_options=compiler_options,
    )
    if key is None:
        raise TypeError("`key` is required: it draws the minibatches.")

    params, static, initial, mask = split_trainable(model, fixed, X.dtype)
    starts = jax.tree_util.tree_map(lambda p: p[None], params)
    if mesh is not None:
        from .sharding import auto_mesh, batch_axis, replicate

        mesh = auto_mesh(mesh)
        num_shards = mesh.shape[batch_axis(mesh)]
        if batch_size % num_shards:
            raise ValueError(
                f"`batch_size` ({batch_size}) must be a multiple of the {num_shards} devices "
                f"on the mesh axis {batch_axis(mesh)!r}."
            )
        starts, initial, static, X, y = replicate((starts, initial, static, X, y), mesh)

    result = minimise(
        NegativeMinibatchELBO(batch_size, mesh),
        starts,
        initial,
        static,
        mask,
        (X, y),
        key,
        optimizer,
        num_steps,
        progress,
        stochastic=True,
        name="fit_svgp",
        label="-ELBO ≈",
        compiler_options=compiler_options,
    )
    warn_about_run("fit_svgp", result, stochastic=True)
    return SVGPFitResult(
        model=result.model, losses=result.losses, nonfinite_step=result.nonfinite_step
    )
