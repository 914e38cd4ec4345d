"""Data parallelism over the devices of a ``jax.sharding.Mesh``, with JAX's own machinery.

Two patterns, both plain ``jit`` + ``NamedSharding`` (XLA's SPMD partitioner
inserts the communication):

1. **A batch of independent GPs** (many small data sets): stack them along a
   leading batch axis, split that axis over the devices with
   :func:`shard_batch`, and run a ``vmap``-ed function (a marginal
   likelihood, a whole :func:`gpjax_lite.fit`) under ``jit``
   (:func:`map_batch`). Each device works on its own data sets; nothing
   is communicated, and the results equal one device's bit for bit up to
   round-off.
2. **One large SVGP**: :func:`gpjax_lite.sparse.fit_svgp` with ``mesh=``
   replicates the data and parameters, splits each minibatch over the
   devices (``with_sharding_constraint``), and XLA all-reduces the partial
   ELBO sums and their gradients.

On a CPU, fake 8 devices with ``XLA_FLAGS=--xla_force_host_platform_device_count=8``
(set before JAX is imported). The same code runs on every GPU of a host,
and on several hosts after ``jax.distributed.initialize()``.

Meshes are used with ``Auto`` axis types (XLA propagates shardings); a mesh
with ``Explicit`` axes (the default of ``jax.make_mesh`` in recent JAX) is
converted to the same devices with ``Auto`` axes.
"""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from .._checks import as_real_array, check_finite

__all__ = [
    "data_mesh",
    "auto_mesh",
    "batch_axis",
    "shard_batch",
    "replicate",
    "map_batch",
    "batched_log_marginal_likelihood",
]


def data_mesh(devices=None, axis_name: str = "data") -> Mesh:
    """A 1-D mesh named ``axis_name`` over ``devices`` (default: every device, ``jax.devices()``)."""
    devices = jax.devices() if devices is None else list(devices)
    if len(devices) == 0:
        raise ValueError("`devices` must hold at least one device.")
    return auto_mesh(Mesh(np.asarray(devices), (axis_name,)))


def auto_mesh(mesh: Mesh) -> Mesh:
    """``mesh`` with every axis of type ``Auto`` (sharding propagated by XLA)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"`mesh` must be a jax.sharding.Mesh, got {type(mesh).__name__}.")
    try:
        from jax.sharding import AxisType
    except ImportError:  # older JAX: every axis is Auto already
        return mesh
    if all(t == AxisType.Auto for t in mesh.axis_types):
        return mesh
    return Mesh(mesh.devices, mesh.axis_names, axis_types=(AxisType.Auto,) * len(mesh.axis_names))


def batch_axis(mesh: Mesh) -> str:
    """The axis that data-parallel work is split over: the mesh's first axis."""
    return mesh.axis_names[0]


def shard_batch(tree, mesh: Mesh, axis_name: str | None = None):
    """Place every array of ``tree`` on ``mesh``, its leading axis split over ``axis_name``.

    Args:
        tree: an array, or a pytree of arrays sharing the leading (batch) axis.
        mesh: the device mesh (see :func:`data_mesh`).
        axis_name: mesh axis to split over (default: the first).

    Raises:
        ValueError: if a leading axis is not a multiple of the number of devices on that axis.
    """
    mesh = auto_mesh(mesh)
    axis_name = batch_axis(mesh) if axis_name is None else axis_name
    if axis_name not in mesh.axis_names:
        raise ValueError(f"`axis_name` {axis_name!r} is not an axis of the mesh {mesh.axis_names}.")
    count = mesh.shape[axis_name]
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))

    def place(leaf):
        if not eqx.is_array(leaf):
            return leaf
        if np.ndim(leaf) == 0 or leaf.shape[0] % count:
            raise ValueError(
                f"`array` with shape {np.shape(leaf)} cannot be split over {count} devices: its "
                f"leading (batch) axis must be a multiple of {count}."
            )
        return jax.device_put(leaf, sharding)

    return jax.tree_util.tree_map(place, tree)


def replicate(tree, mesh: Mesh):
    """Place a full copy of every array of ``tree`` on every device of ``mesh``."""
    sharding = NamedSharding(auto_mesh(mesh), PartitionSpec())
    return jax.tree_util.tree_map(
        lambda leaf: jax.device_put(leaf, sharding) if eqx.is_array(leaf) else leaf, tree
    )


@functools.lru_cache(maxsize=64)
def _compiled_map(fn, in_axes):
    return eqx.filter_jit(eqx.filter_vmap(fn, in_axes=in_axes))


def map_batch(fn, *args, mesh: Mesh | None = None, in_axes=0):
    """``jit(vmap(fn))(*args)``, with the batch axis split over ``mesh``.

    Args:
        fn: a function of one element of the batch (e.g. one data set). Pass
            the same function object on every call to reuse the compiled program.
        *args: arguments; those mapped over (``in_axes`` 0) share a leading
            batch axis, the others (``in_axes`` ``None``, e.g. a model) are
            broadcast to every element.
        mesh: a mesh to shard over (``None``: default placement, one device).
        in_axes: ``0``/``None`` for all arguments, or a tuple with one per argument.

    Returns:
        ``fn``'s outputs stacked along a leading batch axis (sharded over ``mesh``).
    """
    if not isinstance(in_axes, tuple):
        in_axes = (in_axes,) * len(args)
    if len(in_axes) != len(args):
        raise ValueError(f"`in_axes` has {len(in_axes)} entries for {len(args)} arguments.")
    if mesh is not None:
        args = tuple(
            shard_batch(a, mesh) if ax == 0 else replicate(a, mesh) for a, ax in zip(args, in_axes)
        )
    return _compiled_map(fn, in_axes)(*args)


def _log_marginal_likelihood(model, X, y):
    return model.log_marginal_likelihood(X, y)


def batched_log_marginal_likelihood(model, X, y, *, mesh: Mesh | None = None):
    """``model.log_marginal_likelihood`` on each of ``B`` data sets, split over ``mesh``.

    Args:
        model: a :class:`gpjax_lite.GP` (or any model with ``log_marginal_likelihood``),
            shared by every data set.
        X: inputs ``(B, n, d)`` (or ``(B, n)`` for one column).
        y: targets ``(B, n)``.
        mesh: a mesh to shard the batch axis over; ``B`` must be a multiple of its size.

    Returns:
        ``(B,)`` log marginal likelihoods.

    Raises:
        TypeError: for non-numeric or complex ``X``/``y``.
        ValueError: for mis-shaped ``X``/``y`` or NaN/inf in them.
    """
    X, y = as_real_array("X", X), as_real_array("y", y)
    if X.ndim not in (2, 3):
        raise ValueError(f"`X` must have shape (B, n) or (B, n, d), got {X.shape}.")
    if y.ndim != 2 or y.shape != X.shape[:2]:
        raise ValueError(f"`y` must have shape (B, n) = {X.shape[:2]}, got {y.shape}.")
    # Inside the vmapped call the data are tracers, so the model's own checks
    # cannot see NaN: check the whole batch here, once.
    check_finite("X", X)
    check_finite("y", y)
    return map_batch(_log_marginal_likelihood, model, X, y, mesh=mesh, in_axes=(None, 0, 0))
