"""Solvers: how a :class:`~gpjax_lite.GP` factorises ``K + Σ``.

``GP(kernel, mean, noise, solver=solvers.Cholesky())``; every ``GP`` method
gives the same numbers, to round-off, whichever solver is used.

* :class:`Cholesky` — the default: one dense Cholesky factor, ``O(n³)``.

A new solver subclasses :class:`Solver` and :class:`SolverState` (see
``gpjax_lite/solvers/base.py`` and the "Solvers" guide page).
"""

from .base import Solver, SolverState
from .cholesky import Cholesky, CholeskyState

__all__ = ["Solver", "SolverState", "Cholesky", "CholeskyState"]
