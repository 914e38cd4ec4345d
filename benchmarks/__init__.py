"""Benchmarks of gpjax_lite against its peers and against the machine's own limits.

Run ``python -m benchmarks --help``. This package imports nothing heavy on
import: ``python -m benchmarks`` pins the BLAS/XLA thread counts (on CPU)
before NumPy or JAX is loaded, see :mod:`benchmarks._env`.
"""
