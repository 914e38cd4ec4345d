"""gpjax_lite: Gaussian processes in pure JAX."""

from . import kernels, parameters

__version__ = "0.1.0"

__all__ = ["kernels", "parameters", "__version__"]
