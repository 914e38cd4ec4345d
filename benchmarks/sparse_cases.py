"""The sparse-model cases: SVGP step cost and time to a target ELBO; SGPR against the exact GP.

Run through the harness (``python -m benchmarks --cases sparse``, or ``svgp`` /
``sgpr`` alone); the sizes come from :class:`benchmarks.cases.Config` and the
mode (``--smoke``, ``--quick``, full). Synthetic 3-D data
``f(x) = sin(2 x₀) cos(x₁) + ½ tanh(x₂)`` with noise standard deviation 0.1.

* **SVGP, time per step** (case ``svgp``): one optax Adam step of
  :func:`gpjax_lite.sparse.fit_svgp` (draw a minibatch on the device, ELBO and
  gradient, update), measured as a compiled ``num_steps``-step loop, after its
  first (compiling) call, divided by ``num_steps``; the compile time is the
  first call minus the median. Reported for each ``(n, m)`` and as ratios:
  the largest ``n`` against the smallest (≈ 1: a step does not depend on
  ``n``), and the largest ``m`` against the smallest.
* **SVGP, time to a target ELBO**: the first step at which an exponential moving
  average (weight 0.05) of the minibatch ``-ELBO / n`` falls below
  ``Config.svgp_target`` nats per point, times the steady time per step
  (compile excluded).
* **SGPR against the exact GP** (case ``sgpr``): test RMSE (against noisy
  targets), NLPD and wall time for fitting (``gpjax_lite.fit`` with L-BFGS on
  the collapsed bound; the exact GP fits its hyperparameters on the first
  ``Config.exact_fit_n`` points, since every exact evaluation is an ``O(n³)``
  Cholesky) and for conditioning + prediction on all ``n`` points. The exact
  GP is also evaluated with SGPR's hyperparameters, which isolates the
  approximation error from the hyperparameter fit.
* Peers (``svgp_step`` in :mod:`benchmarks.peers`; GPJax's and GPyTorch's
  whitened SVGP) at the sizes ``Config.svgp_peer_n``: time per step, as a
  ratio to gpjax_lite's (filled in by :func:`benchmarks.cases.add_ratios`).

Rows: ``svgp`` rows have ``params = {n, m, batch}`` and ``time_s`` per step;
``sgpr`` rows have ``impl`` ``SGPR``, ``exact`` or ``exact (SGPR's
hyperparameters)`` and ``time_s`` = condition + predict. The tables are
written by :func:`benchmarks.report.sparse_markdown`.
"""

from __future__ import annotations

import gc
import traceback

import jax
import jax.numpy as jnp
import numpy as np
import optax

import gpjax_lite as gl
from gpjax_lite import sparse
from gpjax_lite.kernels import RBF

from .cases import OURS, Config, Recorder, short_error
from .timing import Measurement, measure, measure_once

NOISE_STD = 0.1
#: One optimiser object each: compiled loops are reused across calls.
ADAM = optax.adam(0.02)
LBFGS = gl.lbfgs()
#: The sgpr rows' implementations.
SGPR, EXACT, EXACT_SGPR_HYPERS = "SGPR", "exact", "exact (SGPR's hyperparameters)"
#: Inducing points are chosen among at most this many inputs.
INDUCING_POOL = 50_000


# ------------------------------------------------------------------ data
def truth(X):
    return np.sin(2.0 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * np.tanh(X[:, 2])


def make_data(n, seed, dtype="float64"):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 3))
    y = truth(X) + NOISE_STD * rng.standard_normal(n)
    return X.astype(dtype), y.astype(dtype)


def nlpd(y, mean, var):
    """Mean negative log predictive density of ``y`` under ``N(mean, var)`` (nats per point)."""
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y - mean) ** 2 / var))


def rmse(y, mean):
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def _steps(pairs, m) -> int:
    """The entry for ``m`` in a tuple of ``(m, steps)`` pairs (0 when absent)."""
    return dict(pairs).get(m, 0)


# ------------------------------------------------------------------ SVGP
def inducing_inputs(X, m, seed):
    return sparse.inducing_subset(jax.random.key(seed), X[: min(len(X), INDUCING_POOL)], m)


def svgp_model(X, m, seed):
    return sparse.SVGP(
        RBF(variance=1.0, lengthscale=jnp.ones(3, X.dtype)), inducing_inputs(X, m, seed), noise=0.1
    )


def per_step(m: Measurement, steps: int) -> dict:
    """A measurement of a ``steps``-step loop as per-step row fields (``compile_s`` stays per loop)."""
    fields = m.as_dict()
    fields["time_s"] = m.median_s / steps
    fields["min_s"] = fields["min_s"] / steps
    fields["timed_steps"] = steps
    return fields


def svgp_time_to_target(X, y, m, batch_size, max_steps, target, per_step_s, seed):
    model = svgp_model(X, m, seed)
    wall, result = measure_once(
        lambda: sparse.fit_svgp(
            model,
            X,
            y,
            batch_size=batch_size,
            num_steps=max_steps,
            optimizer=ADAM,
            key=jax.random.key(seed + 1),
        )
    )
    per_point = np.asarray(result.losses) / X.shape[0]
    ema, hit = per_point[0], None
    for t, value in enumerate(per_point):
        ema = 0.95 * ema + 0.05 * value
        if ema <= target and hit is None:
            hit = t + 1
    return {
        "target_neg_elbo_per_point": target,
        "max_steps": max_steps,
        "steps_to_target": hit,
        "time_to_target_s": None if hit is None else hit * per_step_s,
        "final_ema_neg_elbo_per_point": float(ema),
        "run_wall_s_incl_compile": wall,
    }


def case_svgp(cfg: Config, rec: Recorder, floors, peers):
    """SVGP: time per Adam step at each ``(n, m)``, time to the target ELBO, and peers' steps."""
    batch = cfg.svgp_batch_size
    for n in cfg.svgp_n:
        X, y = (jax.device_put(a) for a in make_data(n, seed=n % 1000 + 1, dtype=cfg.dtype))
        for m in cfg.svgp_m:
            steps = _steps(cfg.svgp_timed_steps, m)
            params = {"n": n, "m": m, "batch": batch}
            model = svgp_model(X, m, seed=0)

            def run(model=model, steps=steps):
                return sparse.fit_svgp(
                    model,
                    X,
                    y,
                    batch_size=batch,
                    num_steps=steps,
                    optimizer=ADAM,
                    key=jax.random.key(0),
                )

            try:
                fields = per_step(measure(run, repeats=cfg.repeats, budget_s=cfg.budget_s), steps)
                max_steps = _steps(cfg.svgp_target_steps, m)
                if max_steps:
                    fields.update(
                        svgp_time_to_target(
                            X, y, m, batch, max_steps, cfg.svgp_target, fields["time_s"], seed=0
                        )
                    )
            except Exception as exc:  # noqa: BLE001 - keep the other sizes' results
                traceback.print_exc(limit=2)
                rec.add("svgp", params, OURS, status="error", note=short_error(exc))
                continue
            finally:
                gc.collect()
            rec.add("svgp", params, OURS, **fields)
            if n in cfg.svgp_peer_n:
                _svgp_peers(cfg, rec, peers, params, X, y, inducing_inputs(X, m, seed=0), steps)


def _svgp_peers(cfg, rec, peers, params, X, y, Z, steps):
    for peer in peers:
        build = getattr(peer, "svgp_step", None)
        if build is None:
            continue
        try:
            fn = build(np.asarray(X), np.asarray(y), np.asarray(Z), params["batch"], steps, 0)
            fields = per_step(measure(fn, repeats=cfg.repeats, budget_s=cfg.budget_s), steps)
        except Exception as exc:  # noqa: BLE001 - a peer's failure is reported, not fatal
            traceback.print_exc(limit=2)
            rec.add("svgp", params, peer.name, status="error", note=short_error(exc))
            continue
        finally:
            gc.collect()
        rec.add("svgp", params, peer.name, **fields)


# ------------------------------------------------------------------ SGPR
def _predict_row(model, X, y, X_test, y_test):
    """Condition on all of ``(X, y)`` and predict at ``X_test``: wall time and scores."""
    wall, (mean, var) = measure_once(
        lambda: model.condition(X, y).predict(X_test, include_noise=True)
    )
    mean, var = np.asarray(mean, np.float64), np.asarray(var, np.float64)
    return {
        "time_s": wall,
        "condition_predict_s": wall,
        "first_call_s": wall,
        "repeats": 1,
        "rmse": rmse(y_test, mean),
        "nlpd": nlpd(y_test, mean, var),
        "noise_std": float(np.sqrt(model.noise)),
        "n_test": len(y_test),
    }


def case_sgpr(cfg: Config, rec: Recorder, floors, peers):
    """SGPR (fit + predict) at each ``(n, m)``, and the exact GP at the same ``n`` where affordable."""
    X_test, y_test = make_data(cfg.sgpr_n_test, seed=999, dtype=cfg.dtype)
    y_test = y_test.astype(np.float64)
    for n in cfg.sgpr_n:
        X, y = make_data(n, seed=n, dtype=cfg.dtype)
        sgpr_fit = None
        for m in cfg.sgpr_m:
            params = {"n": n, "m": m}
            try:
                Z = sparse.inducing_kmeans(jax.random.key(0), X, m)
                model = sparse.SGPR(
                    RBF(variance=1.0, lengthscale=jnp.ones(3, X.dtype)), Z, noise=0.1
                )
                fit_s, result = measure_once(
                    lambda model=model: gl.fit(
                        model,
                        X,
                        y,
                        objective=sparse.sgpr_elbo,
                        optimizer=LBFGS,
                        num_steps=cfg.sgpr_steps,
                    )
                )
                sgpr_fit = result.model
                row = _predict_row(sgpr_fit, X, y, X_test, y_test)
                row.update(
                    fit_s_incl_compile=fit_s,
                    fit_steps_taken=int(result.steps_taken),
                    bound=float(sgpr_fit.elbo(X, y)),
                )
            except Exception as exc:  # noqa: BLE001
                traceback.print_exc(limit=2)
                rec.add("sgpr", params, SGPR, status="error", note=short_error(exc))
                continue
            rec.add("sgpr", params, SGPR, **row)
        _exact_rows(cfg, rec, n, X, y, X_test, y_test, sgpr_fit)


def _exact_rows(cfg, rec, n, X, y, X_test, y_test, sgpr_fit):
    params = {"n": n}
    if n > cfg.exact_max_n:
        rec.add(
            "sgpr",
            params,
            EXACT,
            status="skipped",
            note=f"n above Config.exact_max_n = {cfg.exact_max_n} (raise it with --exact-max-n)",
        )
        return
    fit_n = min(n, cfg.exact_fit_n)
    try:
        gp = gl.GP(RBF(variance=1.0, lengthscale=jnp.ones(3, X.dtype)), noise=0.1)
        fit_s, result = measure_once(
            lambda: gl.fit(gp, X[:fit_n], y[:fit_n], optimizer=LBFGS, num_steps=100)
        )
        row = _predict_row(result.model, X, y, X_test, y_test)
        row.update(fit_n=fit_n, fit_s_incl_compile=fit_s, fit_steps_taken=int(result.steps_taken))
        rec.add("sgpr", params, EXACT, **row)
        if sgpr_fit is not None:
            with_sgpr = gl.GP(sgpr_fit.kernel, noise=sgpr_fit.noise)
            rec.add(
                "sgpr", params, EXACT_SGPR_HYPERS, **_predict_row(with_sgpr, X, y, X_test, y_test)
            )
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(limit=2)
        rec.add("sgpr", params, EXACT, status="error", note=short_error(exc))
