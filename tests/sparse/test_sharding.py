"""Data parallelism on 8 fake CPU devices equals one device (to round-off).

``XLA_FLAGS=--xla_force_host_platform_device_count=8`` only acts before JAX
starts, and this session's JAX already runs with one device, so the sharded
side runs in a subprocess (``sharded_worker.py``) and the single-device side
here; both build the same problems from ``problems.py``.
"""

import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import naming

from gpjax_lite.sparse import sharding

from . import problems

WORKER = Path(__file__).with_name("sharded_worker.py")


@pytest.fixture(scope="module")
def eight_devices(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded") / "out.npz"
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        env.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    ).strip()
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["JAX_PLATFORMS"] = "cpu"
    proc = subprocess.run(
        [sys.executable, str(WORKER), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"worker failed:\n{proc.stdout}\n{proc.stderr}"
    with np.load(out) as data:
        return {name: data[name] for name in data.files}


@pytest.fixture(scope="module")
def one_device(shared_fit):
    assert len(jax.devices()) == 1
    out = problems.sharded_quantities(None, fit_result=shared_fit)
    return {name: np.asarray(value) for name, value in out.items()}


def test_worker_ran_on_eight_devices_and_split_the_work(eight_devices):
    assert int(eight_devices["_device_count"]) == 8 and int(eight_devices["_mesh_size"]) == 8
    # the batch of 16 data sets is cut into 8 shards of 2
    assert tuple(eight_devices["_shard_shape_batched_mll"]) == (2,)
    # the data-sharded ELBO sums partial results across devices
    assert bool(eight_devices["_svgp_elbo_all_reduce"])
    for name in ("batched_mll", "svgp_full_elbo", "fit_svgp_q_mu"):
        assert int(eight_devices["_devices_" + name]) == 8


# name -> (rtol, atol). One-shot computations agree to a few ulps (only the order of the
# cross-device sums differs); 40 Adam steps amplify that round-off a little.
TOLERANCES = {
    "batched_mll": (1e-12, 0),
    "batched_fit_lengthscale": (1e-10, 0),
    "batched_fit_noise": (1e-10, 0),
    "svgp_full_elbo": (1e-12, 0),
    "sgpr_elbo": (1e-12, 0),
    "fit_svgp_losses": (1e-9, 0),
    "fit_svgp_q_mu": (1e-8, 1e-10),
    "fit_svgp_q_sqrt": (1e-8, 1e-10),
    "fit_svgp_Z": (1e-8, 1e-10),
    "fit_svgp_lengthscale": (1e-9, 0),
    "fit_svgp_noise": (1e-9, 0),
}


@pytest.mark.parametrize("name", sorted(TOLERANCES))
def test_eight_devices_equal_one_device(eight_devices, one_device, name):
    rtol, atol = TOLERANCES[name]
    np.testing.assert_allclose(eight_devices[name], one_device[name], rtol=rtol, atol=atol)


def test_batched_marginal_likelihood_equals_a_loop(one_device):
    Xs, ys = problems.batch_of_datasets()
    mll = jax.jit(lambda X, y: problems.exact_gp().log_marginal_likelihood(X, y))
    loop = [float(mll(X, y)) for X, y in zip(Xs, ys)]
    np.testing.assert_allclose(one_device["batched_mll"], loop, rtol=1e-12)


def test_bad_sharding_input_raises_value_error(eight_devices):
    assert "`array`" in str(eight_devices["_error_shard_batch"])
    assert "`batch_size`" in str(eight_devices["_error_batch_size"])
    with pytest.raises(ValueError, match="`y`"):
        sharding.batched_log_marginal_likelihood(
            problems.exact_gp(), np.ones((4, 5)), np.ones((4, 6))
        )
    with pytest.raises(TypeError, match=naming("mesh")):
        sharding.auto_mesh("not a mesh")
