"""The one base class of the library's modules."""

from __future__ import annotations

import equinox as eqx
import jax

from .parameters import check_declared_fields


class Module(eqx.Module):
    """An ``equinox.Module`` that checks its hyperparameters and can be passed to ``jax.jit``.

    Checks: every field declared with :func:`~gpjax_lite.parameters.positive_field`
    or :func:`~gpjax_lite.parameters.real_field` is checked at construction
    (type, declared shape, and value when concrete), with errors naming the
    field, so a subclass writes no ``__check_init__`` for them. Equinox runs
    ``__check_init__`` from the subclass up, so a subclass's own checks run
    before these.

    Hashing: ``jax.jit(gp.log_marginal_likelihood)`` hashes the bound method,
    and so the module; equinox's default hash hashes the array leaves, which
    fails. The hash here uses the tree structure only, which is consistent with
    equinox's leaf-wise ``==`` (equal modules have equal structures), so two
    models of the same structure but different values never share a result.
    """

    def __check_init__(self):
        check_declared_fields(self)

    def __hash__(self):
        return hash(jax.tree_util.tree_structure(self))
