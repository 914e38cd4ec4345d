"""Benchmark case: the state-space solver against tinygp's quasiseparable solver and celerite2.

Problem: ``n`` sorted times with gaps, the kernel ``SHO(ω=2, Q=3) + SHO(ω=0.5, Q=1/√2)``
(four states; exact in all three libraries), per-point noise. Timed for each
``n``:

* ``lml_grad``: log marginal likelihood and its gradient in every
  hyperparameter, one jitted call;
* ``predict``: predictive mean and variance at ``m = n`` test points (for
  tinygp and celerite2, whose predictions at new inputs cost ``O(n m)``, only
  while that is affordable).

Implementations: ``gpjax_lite`` (``solvers.StateSpace()``), ``gpjax_lite
parallel`` (``StateSpace(parallel=True)``), ``tinygp quasisep``
(``tinygp.kernels.quasisep``), ``celerite2 jax`` (``celerite2.jax``) and the
dense ``gpjax_lite cholesky`` up to ``DENSE_MAX_N``. Each row also reports the
log marginal likelihood, so the implementations can be checked to agree.

Run through the harness (``python -m benchmarks --cases state_space``, which
pins threads on CPU); the sizes come from ``Config.state_space_n`` and the
mode (``--smoke``: n = 100; ``--quick``: up to 10⁵; full: up to 10⁶).
tinygp runs when it is among the harness's peers (``--peers``); celerite2,
which is not one of them, runs whenever it is installed, in float64 only
(``celerite2.jax`` computes in float64 and switches on ``jax_enable_x64``
when imported).

``run(cfg)`` returns rows in the format of :mod:`benchmarks.cases` (``case``,
``dtype``, ``params``, ``impl``, ``status``, ``time_s``, …); ``cfg`` needs only
``mode`` (``"quick"`` or ``"full"``), ``dtype`` and ``repeats`` (missing
attributes take defaults). :func:`case_state_space` records them through the
harness's :class:`~benchmarks.cases.Recorder`; the table is written by
:func:`benchmarks.report.state_space_markdown`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CASE = "state_space"
TASKS = ("lml_grad", "predict")
FULL_N = (1_000, 10_000, 100_000, 1_000_000)
QUICK_N = (1_000, 10_000, 100_000)
#: Largest n for the dense solver (an n × n float64 matrix and its factor: 2 · 8 n² bytes).
DENSE_MAX_N = 4_000
#: Largest n · m for tinygp's prediction at new inputs (its (m, n) cross-covariance).
TINYGP_PREDICT_MAX_NM = 2e7
#: Largest n · m for celerite2's prediction at new inputs (measured: 35 s at n = m = 10⁴,
#: growing as n · m, so 10⁵ would take about an hour).
CELERITE_PREDICT_MAX_NM = 2e8

OMEGA, QUALITY = (2.0, 0.5), (3.0, 1 / math.sqrt(2))
VARIANCE = (1.0, 0.5)


def problem(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0.0, n / 10.0, n))
    noise = rng.uniform(0.01, 0.05, n)
    y = np.sin(2.0 * t) + 0.5 * np.sin(0.3 * t) + np.sqrt(noise) * rng.normal(size=n)
    t_test = np.sort(rng.uniform(-1.0, n / 10.0 + 1.0, n))
    return t, y, noise, t_test


# ------------------------------------------------------------------ implementations
def _ours(parallel: bool, dense: bool = False):
    import jax

    from gpjax_lite import GP, kernels, solvers

    kernel = sum(
        kernels.SHO(variance=v, omega=w, quality=q) for v, w, q in zip(VARIANCE, OMEGA, QUALITY)
    )

    def model(noise):
        solver = solvers.Cholesky() if dense else solvers.StateSpace(parallel=parallel)
        return GP(kernel, noise=noise, solver=solver)

    @jax.jit
    def lml_grad(t, y, noise):
        return jax.value_and_grad(lambda g: g.log_marginal_likelihood(t, y))(model(noise))

    @jax.jit
    def predict(t, y, noise, t_test):
        return model(noise).condition(t, y).predict(t_test)

    return lambda t, y, noise: lml_grad(t, y, noise), predict


def _tinygp():
    import jax
    import jax.numpy as jnp
    from tinygp import GaussianProcess
    from tinygp.kernels import quasisep

    def build(params, t, noise):
        kernel = None
        for v, w, q in zip(params["variance"], params["omega"], params["quality"]):
            # tinygp's SHO: k(0) = sigma², the same parameterisation as ours.
            term = quasisep.SHO(omega=w, quality=q, sigma=jnp.sqrt(v))
            kernel = term if kernel is None else kernel + term
        return GaussianProcess(kernel, t, diag=noise)

    params = {k: jnp.asarray(v) for k, v in _param_dict().items()}

    @jax.jit
    def lml_grad(t, y, noise):
        return jax.value_and_grad(lambda p: build(p, t, noise).log_probability(y))(params)

    @jax.jit
    def predict(t, y, noise, t_test):
        return build(params, t, noise).predict(y, t_test, return_var=True)

    return lml_grad, predict


def _celerite2():
    import celerite2.jax
    import jax
    import jax.numpy as jnp
    from celerite2.jax import terms

    def build(params, t, noise):
        kernel = None
        for v, w, q in zip(params["variance"], params["omega"], params["quality"]):
            # celerite2's SHOTerm: k(0) = S0 ω0 Q.
            term = terms.SHOTerm(S0=v / (w * q), w0=w, Q=q)
            kernel = term if kernel is None else kernel + term
        return celerite2.jax.GaussianProcess(kernel, t=t, diag=noise)

    params = {k: jnp.asarray(v) for k, v in _param_dict().items()}

    @jax.jit
    def lml_grad(t, y, noise):
        return jax.value_and_grad(lambda p: build(p, t, noise).log_likelihood(y))(params)

    @jax.jit
    def predict(t, y, noise, t_test):
        return build(params, t, noise).predict(y, t=t_test, return_var=True)

    return lml_grad, predict


def _param_dict():
    return {"variance": list(VARIANCE), "omega": list(OMEGA), "quality": list(QUALITY)}


IMPLEMENTATIONS = {
    "gpjax_lite": lambda: _ours(parallel=False),
    "gpjax_lite parallel": lambda: _ours(parallel=True),
    "tinygp quasisep": _tinygp,
    "celerite2 jax": _celerite2,
    "gpjax_lite cholesky": lambda: _ours(parallel=False, dense=True),
}


# ---------------------------------------------------------------------------- timing
def _block(value):
    import jax

    for leaf in jax.tree_util.tree_leaves(value):
        leaf.block_until_ready()
    return value


def _time(fn, repeats: int, budget_s: float = 20.0):
    start = time.perf_counter()
    out = _block(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        if times and sum(times) > budget_s:
            break
        t0 = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - t0)
    return out, first, float(np.median(times)) if times else first


def run(cfg=None) -> list[dict]:
    """Rows ``{"case", "dtype", "params", "impl", "status", "time_s", "first_call_s", "lml", …}``."""
    import jax

    mode = getattr(cfg, "mode", "quick")
    dtype = getattr(cfg, "dtype", "float64")
    repeats = int(getattr(cfg, "repeats", 3))
    sizes = getattr(cfg, "state_space_n", QUICK_N if mode == "quick" else FULL_N)
    jax.config.update("jax_enable_x64", dtype == "float64")
    rows = []
    built = {}
    chosen = getattr(cfg, "state_space_impls", None) or tuple(IMPLEMENTATIONS)
    isolated = {}
    if getattr(cfg, "isolate", True) and len(chosen) > 1:
        # Every implementation and n in a child process of its own, with a time limit
        # (ISOLATED_NOTE): a hung call becomes an error row, not a stopped run.
        for impl in IMPLEMENTATIONS:
            if impl in chosen:
                isolated[impl] = {}
                for n in sizes:
                    for task in TASKS:
                        isolated[impl].update(
                            _run_isolated(
                                impl, [n], dtype, repeats, ISOLATED_TIMEOUT_S, tasks=(task,)
                            )[impl]
                        )
    for impl, make in IMPLEMENTATIONS.items():
        if impl not in chosen:
            continue
        if impl in isolated:
            built[impl] = None
            continue
        try:
            built[impl] = make()
        except ImportError as error:
            built[impl] = error
    for n in sizes:
        t, y, noise, t_test = (a.astype(dtype) for a in problem(n))
        for task in getattr(cfg, "state_space_tasks", TASKS):
            params = {"n": n, "m": n if task == "predict" else 0, "task": task}
            for impl, fns in built.items():
                row = {"case": CASE, "dtype": dtype, "params": dict(params), "impl": impl}
                if impl in isolated:
                    row = isolated[impl].get(
                        (n, task), {**row, "status": "error", "note": "no row"}
                    )
                elif isinstance(fns, Exception):
                    row.update(status="n/a", note=f"not installed: {fns}")
                elif impl == "gpjax_lite cholesky" and n > DENSE_MAX_N:
                    row.update(status="skipped", note=f"dense n × n above n = {DENSE_MAX_N}")
                elif (
                    impl == "tinygp quasisep"
                    and task == "predict"
                    and n * n > TINYGP_PREDICT_MAX_NM
                ):
                    row.update(
                        status="skipped",
                        note="tinygp forms an (m, n) block to predict at new inputs",
                    )
                elif (
                    impl == "celerite2 jax"
                    and task == "predict"
                    and n * n > CELERITE_PREDICT_MAX_NM
                ):
                    row.update(
                        status="skipped", note="celerite2's prediction at new inputs grows as n · m"
                    )
                elif (
                    impl == "gpjax_lite parallel" and n > 10_000 and jax.default_backend() == "cpu"
                ):
                    row.update(
                        status="skipped",
                        note="associative scans are for accelerators (n = 10⁵ on CPU did not finish in 10 min)",
                    )
                else:
                    lml_grad, predict = fns
                    call = (
                        (lambda: lml_grad(t, y, noise))
                        if task == "lml_grad"
                        else (lambda: predict(t, y, noise, t_test))
                    )
                    try:
                        out, first, median = _time(call, repeats)
                        row.update(status="ok", time_s=median, first_call_s=first)
                        if task == "lml_grad":
                            row["lml"] = float(out[0])
                        else:
                            row["mean_checksum"] = float(np.sum(np.asarray(out[0])))
                    except Exception as error:  # noqa: BLE001 - recorded in the row
                        row.update(status="error", note=f"{type(error).__name__}: {error}"[:300])
                rows.append(row)
                _print(row)
    _add_ratios(rows)
    return rows


#: Why every implementation and n runs in a process of its own: a run that hangs
#: (jaxlib's batched LAPACK kernels deadlocked XLA:CPU's pool in the state-space
#: solver before it stopped calling them, and can in a peer; see
#: benchmarks/results/state-space-cpu-2026-11-30b/hang.md) becomes an error row
#: instead of stopping the benchmark, and no library's threads outlive its rows.
ISOLATED_NOTE = "run in a process of its own, which was killed"
#: Seconds before an isolated run (one implementation, one n) counts as hung.
ISOLATED_TIMEOUT_S = 240


def _run_isolated(impl, sizes, dtype, repeats, timeout=None, tasks=TASKS) -> dict:
    """``{impl: {(n, task): row}}`` from a child process running only ``impl`` and ``tasks``."""
    spec = {
        "impl": impl,
        "sizes": list(sizes),
        "dtype": dtype,
        "repeats": repeats,
        "tasks": list(tasks),
    }
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.state_space", json.dumps(spec)],
            cwd=Path(__file__).resolve().parents[1],
            env=dict(os.environ),  # the parent's thread pinning
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        note = f"hung: no result in {timeout} s ({ISOLATED_NOTE})"
        return {
            impl: {
                (n, task): {
                    "case": CASE,
                    "dtype": dtype,
                    "params": {"n": n, "m": n if task == "predict" else 0, "task": task},
                    "impl": impl,
                    "status": "error",
                    "note": note,
                }
                for n in sizes
                for task in tasks
            }
        }
    print(proc.stdout.rsplit("\n" + _MARK, 1)[0], flush=True)
    if proc.returncode != 0 or _MARK not in proc.stdout:
        print(proc.stderr[-3000:], flush=True)
        return {impl: {}}
    rows = json.loads(proc.stdout.rsplit(_MARK, 1)[1])
    return {impl: {(r["params"]["n"], r["params"]["task"]): r for r in rows}}


_MARK = "@@rows@@"


def _add_ratios(rows):
    reference = {
        (r["params"]["n"], r["params"]["task"]): r.get("time_s")
        for r in rows
        if r["impl"] == "gpjax_lite" and r["status"] == "ok"
    }
    for r in rows:
        ours = reference.get((r["params"]["n"], r["params"]["task"]))
        if r.get("time_s") and ours:
            r["ratio_to_ours"] = r["time_s"] / ours


def _print(row):
    p = row["params"]
    t = f"{row['time_s']:.4g} s" if "time_s" in row else row["status"]
    extra = f"  lml {row['lml']:.10g}" if "lml" in row else ""
    print(f"{p['task']:9s} n={p['n']:>8} {row['impl']:22s} {t}{extra}", flush=True)


def case_state_space(cfg, rec, floors, peers):
    """The harness's ``state_space`` case: :func:`run` with the harness's peers, rows recorded."""
    import jax

    peer_names = {p.name for p in peers}
    chosen = [
        impl
        for impl in (cfg.state_space_impls or IMPLEMENTATIONS)
        if not (impl == "tinygp quasisep" and "tinygp" not in peer_names)
        and not (impl == "celerite2 jax" and cfg.dtype != "float64")
    ]
    if not chosen:
        return
    config = dataclasses.replace(cfg, state_space_impls=tuple(chosen))
    try:
        rows = run(config)
    finally:
        # celerite2.jax switches on float64 when imported: the run's dtype stays the run's.
        jax.config.update("jax_enable_x64", cfg.dtype == "float64")
    for row in rows:
        fields = {k: v for k, v in row.items() if k not in ("case", "dtype", "params", "impl")}
        fields.pop("ratio_to_ours", None)  # filled in again by benchmarks.cases.add_ratios
        rec.add(CASE, row["params"], row["impl"], **fields)
    if (
        "celerite2 jax" in (cfg.state_space_impls or IMPLEMENTATIONS)
        and "celerite2 jax" not in chosen
    ):
        for n in cfg.state_space_n:
            for task in ("lml_grad", "predict"):
                params = {"n": n, "m": n if task == "predict" else 0, "task": task}
                rec.add(
                    CASE,
                    params,
                    "celerite2 jax",
                    status="n/a",
                    note="celerite2.jax computes in float64 only",
                )


if __name__ == "__main__":
    # Child process of _run_isolated: one implementation, rows as JSON after _MARK.
    spec = json.loads(sys.argv[1])
    config = dataclasses.make_dataclass(
        "_Config",
        ["mode", "dtype", "repeats", "state_space_n", "state_space_impls", "state_space_tasks"],
    )(
        "full",
        spec["dtype"],
        spec["repeats"],
        tuple(spec["sizes"]),
        (spec["impl"],),
        tuple(spec["tasks"]),
    )
    print(_MARK + json.dumps(run(config)), flush=True)
