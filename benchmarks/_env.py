"""Thread pinning for CPU runs, decided *before* NumPy or JAX is imported.

On a CPU (or when the platform cannot be told yet) every BLAS and XLA:CPU
runs on one thread, so that numbers are comparable between libraries and
stable on a shared machine::

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
    XLA_FLAGS=--xla_cpu_multi_thread_eigen=false

(Earlier runs also appended ``intra_op_parallelism_threads=1``: not an
``XLA_FLAGS`` flag, and an undashed token there makes XLA ignore the flags
after it.)

On a GPU/TPU nothing is changed. Only the benchmark entry point calls this;
the library never touches these variables.
"""

from __future__ import annotations

import glob
import os

BLAS_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
XLA_CPU_FLAGS = ("--xla_cpu_multi_thread_eigen=false",)


def guess_platform() -> str:
    """``cpu``, ``gpu``, ``tpu`` or ``unknown``, without importing JAX.

    ``JAX_PLATFORMS`` wins when set; otherwise the presence of accelerator
    device files is a strong hint.
    """
    requested = os.environ.get("JAX_PLATFORMS", "").strip().lower()
    if requested:
        first = requested.split(",")[0]
        if first in ("cpu",):
            return "cpu"
        if first in ("cuda", "gpu", "rocm"):
            return "gpu"
        if first == "tpu":
            return "tpu"
        return "unknown"
    if glob.glob("/dev/nvidia[0-9]*") or glob.glob("/dev/kfd"):
        return "gpu"
    if glob.glob("/dev/accel[0-9]*") or glob.glob("/dev/vfio/[0-9]*"):
        return "tpu"
    return "unknown"


def pin_threads(enabled: bool = True) -> dict:
    """Pin BLAS/XLA:CPU to one thread when the platform is CPU or unknown.

    Must run before NumPy, SciPy, PyTorch or JAX is imported. Returns a record
    of what was decided, for the results file.
    """
    platform = guess_platform()
    record = {"platform_guess": platform, "pinned": False, "env": {}}
    if not enabled or platform not in ("cpu", "unknown"):
        record["reason"] = (
            "disabled by --no-pin" if not enabled else f"accelerator ({platform}) expected"
        )
        return record
    for var in BLAS_VARS:
        os.environ[var] = "1"
    flags = os.environ.get("XLA_FLAGS", "").split()
    for flag in XLA_CPU_FLAGS:
        key = flag.split("=")[0]
        flags = [f for f in flags if f.split("=")[0] != key]
        flags.append(flag)
    os.environ["XLA_FLAGS"] = " ".join(flags)
    record["pinned"] = True
    record["env"] = {var: os.environ[var] for var in (*BLAS_VARS, "XLA_FLAGS")}
    return record
