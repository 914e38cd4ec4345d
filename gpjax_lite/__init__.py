"""gpjax_lite: Gaussian processes in pure JAX.

Kernels are pointwise functions turned into matrices by one ``jax.vmap`` core;
the :class:`GP` conditions through one Cholesky factor; :func:`fit` maximises
the log marginal likelihood with optax in one compiled loop.
"""

from . import datasets, kernels, likelihoods, linalg, means, parameters, posterior, solvers, sparse
from .distributions import MultivariateNormal
from .fit import FitResult, default_compiler_options, fit
from .gp import GP, Posterior
from .laplace import LaplaceGP, LaplacePosterior
from .lbfgs import lbfgs
from .linalg import CholeskyError
from .summary import summary

__version__ = "0.2.0.dev0"

__all__ = [
    "GP",
    "Posterior",
    "LaplaceGP",
    "LaplacePosterior",
    "likelihoods",
    "MultivariateNormal",
    "CholeskyError",
    "fit",
    "FitResult",
    "default_compiler_options",
    "lbfgs",
    "summary",
    "kernels",
    "means",
    "datasets",
    "linalg",
    "parameters",
    "sparse",
    "solvers",
    "posterior",
    "__version__",
]
