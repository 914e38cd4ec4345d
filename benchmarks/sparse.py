"""Sparse-GP benchmarks: SVGP step cost and time to a target ELBO; SGPR vs the exact GP.

Run from the repository root::

    python -m benchmarks.sparse --quick          # a few minutes on one CPU core
    python -m benchmarks.sparse                  # the full grid (n = 1e5, 1e6; m = 256, 1024)
    python -m benchmarks.sparse --exact-20k      # also the exact GP at n = 20 000 (slow on a CPU)

Writes ``results.json`` and ``results.md`` under ``--out`` (default
``benchmarks/results/sparse-<platform>-<date>/``). Self-contained: its own
timing helpers, no other module of ``benchmarks/`` is imported.

What is measured (float64 throughout, synthetic 3-D data
``f(x) = sin(2 x₀) cos(x₁) + ½ tanh(x₂)``, noise std 0.1):

* **SVGP, time per step**: one optax Adam step of :func:`gpjax_lite.sparse.fit_svgp`
  (draw a minibatch on the device, ELBO and gradient, update), measured as the
  second call of a compiled ``num_steps``-step loop divided by ``num_steps``;
  the compile time is the first call minus the second. Reported for each
  ``(n, m)`` and as ratios: ``n = 1e6`` vs ``1e5`` (should be ≈ 1: a step does
  not depend on ``n``), ``m = 1024`` vs ``256``.
* **SVGP, time to a target ELBO**: the first step at which an exponential moving
  average (weight 0.05) of the minibatch ``-ELBO / n`` falls below
  ``--target`` nats per point, times the steady time per step (compile excluded).
* **SGPR vs exact**: test RMSE (against noisy targets), NLPD and wall time for
  fitting (``gpjax_lite.fit`` with L-BFGS on the collapsed bound; the exact GP
  fits its hyperparameters on a random subset of ``--exact-fit-n`` points,
  since every exact evaluation is an ``O(n³)`` Cholesky) and for
  conditioning + prediction on all ``n`` points. The exact GP is also
  evaluated with SGPR's hyperparameters, which isolates the approximation
  error from the hyperparameter fit.
* Peers, only if importable (skipped otherwise): GPJax's whitened SVGP through
  its own compiled ``gpx.fit`` loop (wrapped once in ``eqx.filter_jit`` so the
  second call excludes compiling), and GPyTorch's whitened SVGP (Cholesky
  ``q(u)``, float64, Adam, a Python loop over steps): time per step at the
  largest ``n``, as a ratio to gpjax_lite's.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

import gpjax_lite as gl  # noqa: E402
from gpjax_lite import sparse  # noqa: E402
from gpjax_lite.kernels import RBF  # noqa: E402

NOISE_STD = 0.1
ADAM = optax.adam(0.02)  # one object: compiled loops are reused across calls
LBFGS = optax.lbfgs()


# ------------------------------------------------------------------ helpers
def truth(X):
    return np.sin(2.0 * X[:, 0]) * np.cos(X[:, 1]) + 0.5 * np.tanh(X[:, 2])


def make_data(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2.0, 2.0, (n, 3))
    return X, truth(X) + NOISE_STD * rng.standard_normal(n)


def block(tree):
    return jax.block_until_ready(tree)


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call, waiting for asynchronous dispatch to finish."""
    start = time.perf_counter()
    out = block(fn(*args, **kwargs))
    return out, time.perf_counter() - start


def median_time(fn, repeats, *args, **kwargs):
    times = [timed(fn, *args, **kwargs)[1] for _ in range(repeats)]
    return statistics.median(times)


def nlpd(y, mean, var):
    return float(np.mean(0.5 * np.log(2 * np.pi * var) + 0.5 * (y - mean) ** 2 / var))


def rmse(y, mean):
    return float(np.sqrt(np.mean((y - mean) ** 2)))


def log(msg):
    print(msg, flush=True)


def machine_info():
    try:
        load = os.getloadavg()
    except OSError:  # pragma: no cover - not on every platform
        load = None
    return {
        "date": _dt.datetime.now().isoformat(timespec="seconds"),
        "platform": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "machine": platform.machine(),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "dtype": "float64",
    }


# --------------------------------------------------------------------- SVGP
def svgp_model(X, m, seed):
    Z = sparse.inducing_subset(jax.random.key(seed), X[: min(len(X), 50_000)], m)
    return sparse.SVGP(RBF(variance=1.0, lengthscale=jnp.ones(3)), Z, noise=0.1)


def svgp_step_time(X, y, m, batch_size, steps, seed):
    model = svgp_model(X, m, seed)
    run = lambda: sparse.fit_svgp(  # noqa: E731
        model, X, y, batch_size=batch_size, num_steps=steps, optimizer=ADAM, key=jax.random.key(seed)
    )
    _, first = timed(run)
    second = median_time(run, 1)
    return {"per_step_s": second / steps, "compile_s": max(first - second, 0.0), "timed_steps": steps}


def svgp_time_to_target(X, y, m, batch_size, max_steps, target, per_step_s, seed):
    model = svgp_model(X, m, seed)
    result, seconds = timed(
        lambda: sparse.fit_svgp(
            model, X, y, batch_size=batch_size, num_steps=max_steps, optimizer=ADAM,
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
        "run_wall_s_incl_compile": seconds,
    }


def _importable(name):
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 - missing, or broken by its own dependencies
        return False
    return True


def peers():
    return {name: _importable(name) for name in ("gpjax", "gpytorch")}


def gpjax_step_time(X, y, m, batch_size, steps, seed):
    """GPJax's whitened SVGP with its own compiled ``gpx.fit`` loop (``lax.scan``), Adam."""
    import gpjax as gpx

    data = gpx.Dataset(X=X, y=y[:, None])
    prior = gpx.gps.Prior(
        mean_function=gpx.mean_functions.Zero(),
        kernel=gpx.kernels.RBF(lengthscale=jnp.ones(3), variance=1.0),
    )
    posterior = prior * gpx.likelihoods.Gaussian(obs_stddev=math.sqrt(0.1))
    Z = sparse.inducing_subset(jax.random.key(seed), X[: min(len(X), 50_000)], m)
    q = gpx.variational_families.WhitenedVariationalGaussian(model=posterior, inducing_inputs=Z)
    # gpx.fit is not jitted as a whole (a fresh scan is traced and compiled on every call),
    # so wrap it once: the second call then times GPJax's steps without its compile.
    compiled = eqx.filter_jit(
        lambda q, data, key: gpx.fit(
            model=q, objective=_gpjax_loss, train_data=data, optim=ADAM, num_iters=steps,
            batch_size=batch_size, key=key, verbose=False, safe=False,
        )
    )
    run = lambda: compiled(q, data, jax.random.key(seed))  # noqa: E731
    _, first = timed(run)
    second = median_time(run, 1)
    return {"per_step_s": second / steps, "compile_s": max(first - second, 0.0), "timed_steps": steps}


def _gpjax_loss(model, data):
    import gpjax as gpx

    return -gpx.objectives.elbo(model, data)


def gpytorch_step_time(X, y, m, batch_size, steps, seed):
    """GPyTorch's whitened SVGP (``VariationalStrategy``, Cholesky q(u)), float64, Adam,
    minibatches drawn with ``torch.randint`` from tensors held in memory; a Python loop."""
    import gpytorch
    import torch

    torch.manual_seed(seed)
    Xt = torch.tensor(np.asarray(X), dtype=torch.float64)
    yt = torch.tensor(np.asarray(y), dtype=torch.float64)
    Z = torch.tensor(np.asarray(sparse.inducing_subset(jax.random.key(seed), X[:50_000], m)))

    class Model(gpytorch.models.ApproximateGP):
        def __init__(self, Z):
            dist = gpytorch.variational.CholeskyVariationalDistribution(Z.shape[0])
            strategy = gpytorch.variational.VariationalStrategy(
                self, Z, dist, learn_inducing_locations=True
            )
            super().__init__(strategy)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.RBFKernel(ard_num_dims=3))

        def forward(self, x):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(x), self.covar_module(x))

    model = Model(Z).double()
    likelihood = gpytorch.likelihoods.GaussianLikelihood().double()
    objective = gpytorch.mlls.VariationalELBO(likelihood, model, num_data=len(yt))
    optimizer = torch.optim.Adam(list(model.parameters()) + list(likelihood.parameters()), lr=0.02)
    model.train()
    likelihood.train()

    def run(num):
        for _ in range(num):
            idx = torch.randint(len(yt), (batch_size,))
            optimizer.zero_grad()
            loss = -objective(model(Xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()

    run(2)  # warm up
    start = time.perf_counter()
    run(steps)
    return {"per_step_s": (time.perf_counter() - start) / steps, "compile_s": 0.0,
            "timed_steps": steps, "torch_threads": torch.get_num_threads()}


def bench_svgp(cfg):
    out = {"config": cfg, "runs": [], "ratios": {}, "peers": peers(), "peer_runs": []}
    data = {n: make_data(n, seed=n % 1000 + 1) for n in cfg["ns"]}
    for n in cfg["ns"]:
        X, y = (jax.device_put(a) for a in data[n])
        for m in cfg["ms"]:
            steps = cfg["timed_steps"][str(m)]
            log(f"SVGP n={n:,} m={m}: timing {steps} steps ...")
            row = {"n": n, "m": m, "batch_size": cfg["batch_size"]}
            row.update(svgp_step_time(X, y, m, cfg["batch_size"], steps, seed=0))
            log(f"  {1e3 * row['per_step_s']:.1f} ms/step, compile {row['compile_s']:.1f} s")
            max_steps = cfg["target_steps"].get(str(m), 0)
            if max_steps:
                log(f"  time to -ELBO/n <= {cfg['target']} (at most {max_steps} steps) ...")
                row.update(svgp_time_to_target(
                    X, y, m, cfg["batch_size"], max_steps, cfg["target"], row["per_step_s"], seed=0
                ))
                log(f"  steps to target: {row['steps_to_target']}, "
                    f"final EMA {row['final_ema_neg_elbo_per_point']:.3f}")
            out["runs"].append(row)
            for peer, available in out["peers"].items():
                if not available or n not in cfg["peer_ns"]:
                    continue
                log(f"  peer {peer}: timing {steps} steps ...")
                try:
                    timing = PEER_TIMERS[peer](X, y, m, cfg["batch_size"], steps, seed=0)
                except Exception as error:  # noqa: BLE001 - a peer's failure is reported, not fatal
                    timing = {"error": f"{type(error).__name__}: {error}"}
                    log(f"    failed: {timing['error']}")
                else:
                    timing["ratio_to_gpjax_lite"] = timing["per_step_s"] / row["per_step_s"]
                    log(f"    {1e3 * timing['per_step_s']:.1f} ms/step "
                        f"({timing['ratio_to_gpjax_lite']:.2f}× gpjax_lite)")
                out["peer_runs"].append({"peer": peer, "n": n, "m": m, **timing})
    per_step = {(r["n"], r["m"]): r["per_step_s"] for r in out["runs"]}
    ns, ms = cfg["ns"], cfg["ms"]
    for m in ms:
        if len(ns) > 1:
            out["ratios"][f"per_step n={ns[-1]:g}/n={ns[0]:g}, m={m}"] = per_step[ns[-1], m] / per_step[ns[0], m]
    for n in ns:
        if len(ms) > 1:
            out["ratios"][f"per_step m={ms[-1]}/m={ms[0]}, n={n:g}"] = per_step[n, ms[-1]] / per_step[n, ms[0]]
    return out


PEER_TIMERS = {"gpjax": gpjax_step_time, "gpytorch": gpytorch_step_time}


# ---------------------------------------------------------------- SGPR/exact
def bench_sgpr(cfg):
    out = {"config": cfg, "runs": []}
    X_test, y_test = make_data(cfg["n_test"], seed=999)
    for n in cfg["ns"]:
        X, y = make_data(n, seed=n)
        for m in cfg["ms"]:
            log(f"SGPR n={n:,} m={m}: fit ({cfg['sgpr_steps']} L-BFGS steps) ...")
            Z = sparse.inducing_kmeans(jax.random.key(0), X, m)
            model = sparse.SGPR(RBF(variance=1.0, lengthscale=jnp.ones(3)), Z, noise=0.1)
            fit_run = lambda: gl.fit(  # noqa: E731
                model, X, y, objective=sparse.sgpr_elbo, optimizer=LBFGS, num_steps=cfg["sgpr_steps"]
            )
            result, fit_s = timed(fit_run)
            fitted = result.model
            (mean, var), pred_s = timed(
                lambda: fitted.condition(X, y).predict(X_test, include_noise=True)  # noqa: B023
            )
            mean, var = np.asarray(mean), np.asarray(var)
            row = {
                "model": "SGPR", "n": n, "m": m, "fit_s_incl_compile": fit_s,
                "fit_steps_taken": int(result.steps_taken), "condition_predict_s": pred_s,
                "bound": float(fitted.elbo(X, y)),
                "rmse": rmse(y_test, mean), "nlpd": nlpd(y_test, mean, var),
                "noise_std": float(np.sqrt(fitted.noise)),
            }
            out["runs"].append(row)
            log(f"  fit {fit_s:.1f} s, RMSE {row['rmse']:.4f}, NLPD {row['nlpd']:.3f}")
            sgpr_hypers = fitted

        if n > cfg["exact_max_n"]:
            out["runs"].append({"model": "exact", "n": n, "skipped": cfg["exact_skip_reason"]})
            log(f"exact GP n={n:,}: skipped ({cfg['exact_skip_reason']})")
            continue
        fit_n = min(n, cfg["exact_fit_n"])
        log(f"exact GP n={n:,}: hyperparameters on {fit_n} points, then condition on all ...")
        gp = gl.GP(RBF(variance=1.0, lengthscale=jnp.ones(3)), noise=0.1)
        result, fit_s = timed(lambda: gl.fit(gp, X[:fit_n], y[:fit_n], optimizer=LBFGS, num_steps=100))  # noqa: B023
        for label, hypers in (("exact", result.model),
                              ("exact, SGPR's hyperparameters",
                               gl.GP(sgpr_hypers.kernel, noise=sgpr_hypers.noise))):
            (mean, var), pred_s = timed(
                lambda: hypers.condition(X, y).predict(X_test, include_noise=True)  # noqa: B023
            )
            mean, var = np.asarray(mean), np.asarray(var)
            row = {
                "model": label, "n": n, "condition_predict_s": pred_s,
                "rmse": rmse(y_test, mean), "nlpd": nlpd(y_test, mean, var),
                "noise_std": float(np.sqrt(hypers.noise)),
            }
            if label == "exact":
                row.update({"fit_n": fit_n, "fit_s_incl_compile": fit_s,
                            "fit_steps_taken": int(result.steps_taken)})
            out["runs"].append(row)
            log(f"  {label}: condition+predict {pred_s:.1f} s, RMSE {row['rmse']:.4f}, NLPD {row['nlpd']:.3f}")
    return out


# ------------------------------------------------------------------ report
def markdown(results):
    info = results["machine"]
    lines = [
        f"# Sparse GP benchmarks ({'quick' if results['quick'] else 'full'} run)",
        "",
        f"{info['date']} · {info['platform']} ({info['cpu_count']} cores, load average at start "
        f"{info['load_average_at_start']}) · JAX {info['jax']} · float64 · "
        f"OPENBLAS_NUM_THREADS={info['OPENBLAS_NUM_THREADS']}",
        "",
        "## SVGP: one Adam step (minibatch ELBO + gradient + update)",
        "",
        f"batch size {results['svgp']['config']['batch_size']}; compile excluded from per-step times.",
        "",
        "| n | m | ms / step | compile (s) | steps to target | time to target (s) | final EMA -ELBO/n |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["svgp"]["runs"]:
        if "max_steps" in r:
            hit = r["steps_to_target"]
            steps = f"not in {r['max_steps']}" if hit is None else str(hit)
            seconds = "—" if hit is None else f"{r['time_to_target_s']:.1f}"
            final = f"{r['final_ema_neg_elbo_per_point']:.3f}"
        else:
            steps = seconds = final = "—"
        lines.append(
            f"| {r['n']:,} | {r['m']} | {1e3 * r['per_step_s']:.1f} | {r['compile_s']:.1f} | "
            f"{steps} | {seconds} | {final} |"
        )
    lines += ["", f"Target: EMA of minibatch -ELBO/n ≤ {results['svgp']['config']['target']} nats per point.", ""]
    lines += ["Ratios of time per step:", ""]
    lines += [f"- {k}: **{v:.2f}**" for k, v in results["svgp"]["ratios"].items()]
    found = results["svgp"]["peers"]
    missing = [k for k, v in found.items() if not v]
    lines += ["", "Peers (same n, m, batch size, float64, Adam; time per step, and its ratio to "
              "gpjax_lite's — above 1 means the peer is slower):", ""]
    if results["svgp"].get("peer_runs"):
        lines += ["| peer | n | m | ms / step | × gpjax_lite |", "| --- | ---: | ---: | ---: | ---: |"]
        for r in results["svgp"]["peer_runs"]:
            if "error" in r:
                lines.append(f"| {r['peer']} | {r['n']:,} | {r['m']} | failed: {r['error']} | — |")
            else:
                lines.append(f"| {r['peer']} | {r['n']:,} | {r['m']} | {1e3 * r['per_step_s']:.1f} | "
                             f"{r['ratio_to_gpjax_lite']:.2f} |")
    if missing:
        lines += ["", "Not installed, skipped: " + ", ".join(missing)]
    lines += [""]
    lines += [
        "## SGPR vs exact GP",
        "",
        f"{results['sgpr']['config']['n_test']} test points; RMSE against noisy targets (floor {NOISE_STD}).",
        "",
        "| model | n | m | fit (s) | condition + predict (s) | RMSE | NLPD | noise std |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results["sgpr"]["runs"]:
        if "skipped" in r:
            lines.append(f"| exact | {r['n']:,} | — | — | skipped: {r['skipped']} | — | — | — |")
            continue
        fit = r.get("fit_s_incl_compile")
        fit_text = "—" if fit is None else f"{fit:.1f}" + (f" ({r['fit_n']} pts)" if "fit_n" in r else "")
        lines.append(
            f"| {r['model']} | {r['n']:,} | {r.get('m', '—')} | {fit_text} | {r['condition_predict_s']:.2f} | "
            f"{r['rmse']:.4f} | {r['nlpd']:.3f} | {r['noise_std']:.4f} |"
        )
    lines += ["", f"Total wall time: {results['total_s']:.0f} s.", ""]
    return "\n".join(lines)


def configs(args):
    if args.quick:
        svgp = {"ns": [100_000, 1_000_000], "ms": [64, 256], "batch_size": 512,
                "timed_steps": {"64": 50, "256": 20}, "target_steps": {"64": 600},
                "peer_ns": [1_000_000],
                "target": args.target}
        sgpr = {"ns": [2_000, 5_000], "ms": [128], "sgpr_steps": 50, "n_test": 2_000,
                "exact_fit_n": 1_000, "exact_max_n": 5_000,
                "exact_skip_reason": "not in the quick run"}
    else:
        svgp = {"ns": [100_000, 1_000_000], "ms": [256, 1024], "batch_size": 1024,
                "timed_steps": {"256": 20, "1024": 4}, "target_steps": {"256": 400},
                "peer_ns": [1_000_000],
                "target": args.target}
        sgpr = {"ns": [5_000, 20_000], "ms": [256], "sgpr_steps": 50, "n_test": 5_000,
                "exact_fit_n": 2_000, "exact_max_n": 20_000 if args.exact_20k else 5_000,
                "exact_skip_reason": "a 20 000² Cholesky takes minutes on one CPU core; use --exact-20k"}
    return svgp, sgpr


def main(argv=None):
    parser = argparse.ArgumentParser(description="Sparse GP benchmarks (SVGP, SGPR vs exact).")
    parser.add_argument("--quick", action="store_true", help="small grid, a few minutes on one core")
    parser.add_argument("--exact-20k", action="store_true", help="also run the exact GP at n = 20 000")
    parser.add_argument("--target", type=float, default=0.0,
                        help="target EMA of -ELBO/n (nats per point) for the time-to-target runs")
    parser.add_argument("--only", choices=["svgp", "sgpr"], help="run one part only")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    args = parser.parse_args(argv)

    date = _dt.date.today().isoformat()
    out_dir = args.out or Path(__file__).resolve().parent / "results" / f"sparse-{jax.default_backend()}-{date}"
    out_dir.mkdir(parents=True, exist_ok=True)
    svgp_cfg, sgpr_cfg = configs(args)
    start = time.perf_counter()
    results = {"quick": args.quick, "machine": machine_info()}
    results["svgp"] = bench_svgp(svgp_cfg) if args.only in (None, "svgp") else {"config": svgp_cfg, "runs": [], "ratios": {}, "peers": peers()}
    results["sgpr"] = bench_sgpr(sgpr_cfg) if args.only in (None, "sgpr") else {"config": sgpr_cfg, "runs": []}
    results["total_s"] = time.perf_counter() - start
    name = "results-quick" if args.quick else "results"
    (out_dir / f"{name}.json").write_text(json.dumps(results, indent=2, default=float))
    (out_dir / f"{name}.md").write_text(markdown(results))
    log(markdown(results))
    log(f"wrote {out_dir / (name + '.json')} and .md")


if __name__ == "__main__":
    main()
