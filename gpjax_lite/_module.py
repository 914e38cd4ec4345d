"""The one base class of the library's modules."""

from __future__ import annotations

import equinox as eqx
import jax


class Module(eqx.Module):
    """An ``equinox.Module`` whose bound methods can be passed to ``jax.jit``.

    ``jax.jit(gp.log_marginal_likelihood)`` hashes the bound method, and so the
    module; equinox's default hash hashes the array leaves, which fails. The
    hash here uses the tree structure only, which is consistent with
    equinox's leaf-wise ``==`` (equal modules have equal structures), so two
    models of the same structure but different values never share a result.
    """

    def __hash__(self):
        return hash(jax.tree_util.tree_structure(self))
