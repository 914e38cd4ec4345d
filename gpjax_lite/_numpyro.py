"""The numpyro bridge: a GP's marginal distribution of ``y`` as a numpyro distribution.

numpyro is an optional dependency (``pip install 'gpjax_lite[numpyro]'``): this
module is imported by :meth:`gpjax_lite.GP.numpyro_dist` on first use, never
by ``import gpjax_lite``.

With the latent function integrated out, the observations of a
:class:`~gpjax_lite.GP` are Gaussian (Rasmussen & Williams 2006, eq. 2.30)::

    y ~ N(m(X), K + Σ),    K = k(X, X) (n, n),   Σ = diag(noise)

:class:`GPMarginal` is that distribution, with its ``log_prob`` computed by the
model's solver (:meth:`~gpjax_lite.GP.log_marginal_likelihood`), so in a
numpyro model the hyperparameters can carry priors and be sampled with NUTS::

    def model(X, y):
        ell = numpyro.sample("ell", dist.LogNormal(0.0, 1.0))
        gp = gl.GP(gl.kernels.RBF(lengthscale=ell), noise=0.1)
        numpyro.sample("y", gp.numpyro_dist(X), obs=y)
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

try:
    import numpyro.distributions as dist
    from numpyro.distributions import constraints
except ImportError as error:  # pragma: no cover - exercised by hiding numpyro
    raise ImportError(
        "`GP.numpyro_dist` needs numpyro, an optional dependency: pip install 'gpjax_lite[numpyro]'"
    ) from error


class GPMarginal(dist.Distribution):
    """``N(m(X), K + Σ)`` over the ``n`` noisy observations of a GP at fixed inputs ``X``.

    Event shape ``(n,)``, batch shape ``()``. Build it with
    :meth:`gpjax_lite.GP.numpyro_dist`.

    * ``log_prob(y)`` is ``gp.log_marginal_likelihood(X, y)`` (nats), through the
      model's solver, with its gradient; ``y`` of shape ``(..., n)`` gives
      ``(...)`` values.
    * ``sample(key, (N,))`` draws ``(N, n)`` noisy observations: latent draws
      from ``gp.prior(X)`` (through the solver, with the prior's small sampling
      jitter, see :mod:`gpjax_lite.linalg`) plus independent ``N(0, noise)``.
    * ``mean`` is ``m(X)`` and ``variance`` is ``diag k(X, X) + noise``, each ``(n,)``.

    Attributes:
        model: the :class:`~gpjax_lite.GP`.
        X: its inputs ``(n, d)``, validated.
    """

    arg_constraints = {}
    support = constraints.real_vector
    # A pytree (as every numpyro distribution): the model's hyperparameters and
    # the inputs are its data, so it passes through jit and vmap.
    pytree_data_fields = ("model", "X")

    def __init__(self, model, X, *, validate_args=None):
        self.model = model
        self.X = X
        super().__init__(batch_shape=(), event_shape=(X.shape[0],), validate_args=validate_args)

    def log_prob(self, value):
        value = jnp.asarray(value)
        if value.ndim <= 1:
            return self.model.log_marginal_likelihood(self.X, value)
        flat = value.reshape(-1, value.shape[-1])
        log_probs = jax.vmap(lambda y: self.model.log_marginal_likelihood(self.X, y))(flat)
        return log_probs.reshape(value.shape[:-1])

    def sample(self, key, sample_shape=()):
        sample_shape = tuple(sample_shape)
        num_samples = math.prod(sample_shape)
        n = self.event_shape[0]
        if num_samples == 0:
            return jnp.zeros(sample_shape + (n,), self.X.dtype)
        latent_key, noise_key = jax.random.split(key)
        latent = self.model.sample(latent_key, self.X, num_samples)
        noise = jnp.broadcast_to(self.model.noise, (n,)).astype(latent.dtype)
        eps = jax.random.normal(noise_key, latent.shape, latent.dtype)
        return (latent + jnp.sqrt(noise) * eps).reshape(sample_shape + (n,))

    @property
    def mean(self):
        return self.model.mean_vector(self.X)

    @property
    def variance(self):
        noise = jnp.broadcast_to(self.model.noise, (self.X.shape[0],))
        diag = self.model.kernel.diag(self.X)
        return diag + noise.astype(diag.dtype)
