"""Sparse Gaussian processes for large ``n``, and data parallelism over devices.

* :class:`SGPR` — the collapsed bound of Titsias (2009): ``O(n m²)`` time,
  ``O(m² + chunk·m)`` memory, fitted with the ordinary
  ``gpjax_lite.fit(model, X, y, objective=sgpr_elbo)``; predictions through
  :meth:`SGPR.condition`.
* :class:`SVGP` — the stochastic variational GP of Hensman, Matthews &
  Ghahramani (2015) with a whitened ``q(u)``: ``O(b m² + m³)`` per minibatch
  step, whatever ``n``; fitted with :func:`fit_svgp` (the compiled loop of
  :func:`gpjax_lite.fit`, minibatches drawn on the device).
* :mod:`gpjax_lite.sparse.sharding` — run a batch of GPs, or the SVGP
  minibatch objective, data-parallel over a ``jax.sharding.Mesh``.

See ``docs/scaling.md`` for when to pick which, and the maths.
"""

from . import sharding
from ._common import LowerTriangular
from .inducing import inducing_kmeans, inducing_subset
from .sgpr import SGPR, SGPRPosterior, sgpr_elbo
from .svgp import SVGP, SVGPFitResult, fit_svgp, sample_minibatch, svgp_elbo

__all__ = [
    "SGPR",
    "SGPRPosterior",
    "sgpr_elbo",
    "SVGP",
    "SVGPFitResult",
    "svgp_elbo",
    "fit_svgp",
    "sample_minibatch",
    "inducing_subset",
    "inducing_kmeans",
    "LowerTriangular",
    "sharding",
]
