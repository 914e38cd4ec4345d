"""Solvers: how a :class:`~gpjax_lite.GP` factorises ``K + Σ``.

``GP(kernel, mean, noise, solver=solvers.Cholesky())``; every ``GP`` method
gives the same numbers, to round-off, whichever solver is used.

* :class:`Cholesky` — the default: one dense Cholesky factor, ``O(n³)``.
* :class:`StateSpace` — one input column, ``O(n)``: Kalman filtering and
  smoothing of the kernel's SDE form (``Matern12/32/52``, ``Cosine``, ``SHO``,
  ``Constant``, sums, products, scalings).

A new solver subclasses :class:`Solver` and :class:`SolverState` (see
``gpjax_lite/solvers/base.py`` and the "Solvers" guide page).
"""

from .base import Solver, SolverState
from .cholesky import Cholesky, CholeskyState
from .state_space import StateSpace, StateSpaceNormal, StateSpaceState

__all__ = [
    "Solver",
    "SolverState",
    "Cholesky",
    "CholeskyState",
    "StateSpace",
    "StateSpaceState",
    "StateSpaceNormal",
]
