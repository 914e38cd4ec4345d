"""The ``predict_memory`` case: peak memory of ``Posterior.predict`` at many test points.

``Posterior.predict`` works through the test points in blocks of
:data:`gpjax_lite.solvers.cholesky.PREDICT_CHUNK_SIZE`, so ``m`` test points
from ``n`` training points need ``O(n · block + m)`` memory, where an
unchunked prediction holds several ``n × m`` arrays (the cross-covariance
``K*``, ``V = L⁻¹ K*``, ``V²``). This case measures it.

Each ``(n, m)`` runs in a fresh Python subprocess (the same interpreter, the
thread settings the harness chose), which

1. imports JAX and gpjax_lite, makes the training data and the ``m`` test
   inputs, and runs ``GP(...).condition(X, y).predict`` at a tiny ``m``
   (``Config.predict_memory_baseline_m``), so that imports, compilation and
   the inputs are all counted in the baseline;
2. reads the baseline: the peak resident set size so far (:func:`peak_rss`:
   ``VmHWM`` on Linux, where ``ru_maxrss`` would include the harness's own
   size; ``ru_maxrss`` elsewhere);
3. runs ``GP(...).condition(X, y).predict(Xt)`` at the full ``m`` and reads the
   peak again.

The row's ``peak_bytes`` is the difference: what the prediction added at its
peak. It is shown next to the size of one ``n × m`` array of the run's dtype.
On an accelerator the device allocator's peak (``memory_stats()``) is recorded
as well, the same way (``device_peak_bytes``; the subprocess runs with
``XLA_PYTHON_CLIENT_PREALLOCATE=false`` unless it is set). ``time_s`` is the wall time of
the measured call, compilation for the new shapes included.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .cases import OURS, Config, Recorder

#: The line of the subprocess's output that carries its measurement.
MARKER = "predict_memory: "
ROOT = Path(__file__).resolve().parents[1]


def peak_rss() -> tuple[int, str]:
    """This process's peak resident set size so far, in bytes, and where it was read.

    On Linux, ``VmHWM`` of ``/proc/self/status``: the high-water mark of this
    process's own address space. ``getrusage(RUSAGE_SELF).ru_maxrss`` is not
    used there: Linux carries it over through ``fork`` and ``exec``, so in a
    subprocess it starts at the parent's resident size (the harness's, which
    can exceed anything the prediction adds). Elsewhere ``ru_maxrss`` (bytes
    on macOS, KiB on other systems).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024, "VmHWM"
    except OSError:
        pass
    import resource

    peak = int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    return (peak if sys.platform == "darwin" else peak * 1024), "ru_maxrss"


def _device_peak_bytes():
    import jax

    stats = jax.devices()[0].memory_stats() or {}
    return stats.get("peak_bytes_in_use")


def measure_in_process(n: int, m: int, dtype: str, baseline_m: int) -> dict:
    """Steps 1–3 of the module docstring, in this process (run it in a fresh one)."""
    import jax

    jax.config.update("jax_enable_x64", dtype == "float64")
    import jax.numpy as jnp

    from gpjax_lite.solvers.cholesky import PREDICT_CHUNK_SIZE

    from . import data
    from .ours import gp_model

    X, y = (jnp.asarray(a) for a in data.regression(n, 1, dtype=dtype))
    Xt = data.inputs(m, 1, seed=7, dtype=dtype)
    model = gp_model(data.TRUE_HYPERS, jnp.dtype(dtype))
    jax.block_until_ready(model.condition(X, y).predict(Xt[:baseline_m]))
    baseline, source = peak_rss()
    device_baseline = _device_peak_bytes()

    start = time.perf_counter()
    mean, variance = jax.block_until_ready(model.condition(X, y).predict(Xt))
    wall = time.perf_counter() - start
    peak, _ = peak_rss()
    device_peak = _device_peak_bytes()
    if mean.shape != (m,) or variance.shape != (m,):
        raise RuntimeError(f"predict returned shapes {mean.shape}, {variance.shape} for m = {m}")
    return {
        "time_s": wall,
        "baseline_rss_bytes": baseline,
        "peak_rss_bytes": peak,
        "peak_bytes": peak - baseline,
        "device_peak_bytes": None if device_peak is None else device_peak - (device_baseline or 0),
        "nm_array_bytes": n * m * jnp.dtype(dtype).itemsize,
        "test_inputs_bytes": int(Xt.nbytes),
        "chunk_size": PREDICT_CHUNK_SIZE,
        "baseline_m": baseline_m,
        "rss_source": source,
        "backend": jax.default_backend(),
    }


def _child(argv) -> None:
    """Entry point of the subprocess: ``measure_in_process`` on JSON arguments, one result line."""
    args = json.loads(argv[0])
    print(MARKER + json.dumps(measure_in_process(**args)), flush=True)


def run_subprocess(n: int, m: int, dtype: str, baseline_m: int, timeout_s: float) -> dict:
    """:func:`measure_in_process` in a fresh interpreter (``RuntimeError`` if no result)."""
    args = json.dumps({"n": n, "m": m, "dtype": dtype, "baseline_m": baseline_m})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # On a GPU the harness already holds JAX's preallocated pool (75 % of the device by
    # default): a second one would not fit, so the subprocess allocates as it goes.
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    code = "import sys; from benchmarks.predict_memory import _child; _child(sys.argv[1:])"
    proc = subprocess.run(
        [sys.executable, "-c", code, args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    raise RuntimeError(f"subprocess exited with {proc.returncode}: " + " | ".join(tail))


def case_predict_memory(cfg: Config, rec: Recorder, floors, peers):
    """Peak memory added by ``condition(X, y).predict(Xt)`` at each ``m``, in fresh subprocesses."""
    n = cfg.predict_memory_n
    for m in cfg.predict_memory_m:
        params = {"n": n, "m": m}
        try:
            fields = run_subprocess(
                n, m, cfg.dtype, cfg.predict_memory_baseline_m, cfg.predict_memory_timeout_s
            )
        except subprocess.TimeoutExpired:
            rec.add(
                "predict_memory",
                params,
                OURS,
                status="error",
                note=f"timed out after {cfg.predict_memory_timeout_s:.0f} s",
            )
            continue
        except Exception as exc:  # noqa: BLE001 - e.g. killed for memory: a row, not a crash
            rec.add(
                "predict_memory",
                params,
                OURS,
                status="error",
                note=f"{type(exc).__name__}: {exc}"[:300],
            )
            continue
        fields["first_call_s"] = fields["time_s"]
        fields["repeats"] = 1
        rec.add("predict_memory", params, OURS, **fields)
