"""Run the sharded computations of ``problems.sharded_quantities`` on 8 fake CPU devices.

Usage: ``XLA_FLAGS=--xla_force_host_platform_device_count=8 python sharded_worker.py OUT.npz``.
Launched by ``test_sharding.py`` in a subprocess (the flag must be set before JAX starts).
Saves every quantity plus, for each, the number of devices its result lives on.
"""

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import problems  # noqa: E402

from gpjax_lite import sparse  # noqa: E402
from gpjax_lite.sparse import sharding  # noqa: E402


def _error_message(thunk):
    try:
        thunk()
    except ValueError as error:
        return str(error)
    return ""


def main(path):
    mesh = sharding.data_mesh()
    out = problems.sharded_quantities(mesh)
    arrays = {name: np.asarray(value) for name, value in out.items()}
    arrays["_error_shard_batch"] = np.asarray(
        _error_message(lambda: sharding.shard_batch(np.ones(9), mesh))
    )
    X, y = problems.regression_2d()
    arrays["_error_batch_size"] = np.asarray(
        _error_message(
            lambda: sparse.fit_svgp(
                problems.svgp(X[:8]),
                X,
                y,
                batch_size=12,
                num_steps=1,
                key=jax.random.key(0),
                mesh=mesh,
            )
        )
    )
    # Evidence that the work is split, not replicated: the batch axis is cut into
    # 8 pieces, and the data-sharded ELBO's compiled program all-reduces partial sums.
    arrays["_shard_shape_batched_mll"] = np.asarray(
        out["batched_mll"].addressable_shards[0].data.shape
    )
    Xd, yd = sharding.shard_batch((X, y), mesh)
    hlo = jax.jit(sparse.svgp_elbo).lower(problems.svgp(X[:8]), Xd, yd).compile().as_text()
    arrays["_svgp_elbo_all_reduce"] = np.asarray("all-reduce" in hlo)
    arrays["_device_count"] = np.asarray(len(jax.devices()))
    arrays["_mesh_size"] = np.asarray(mesh.size)
    for name, value in out.items():
        arrays["_devices_" + name] = np.asarray(len(value.sharding.device_set))
    np.savez(path, **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
