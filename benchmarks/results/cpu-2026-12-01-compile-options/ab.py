# ruff: noqa: E402, I001  (a script: sys.path is set before the imports)
"""First and second call of one fit workload, with ``fit``'s default compiler options or XLA's.

python benchmarks/results/cpu-2026-12-01-compile-options/ab.py WORKLOAD MODE

WORKLOAD: gp1000 (the ``fit`` case's default fit, n = 1000), laplace (the
``laplace`` case's fit, n = 1000), co2 (the main job's fit), svgp
(``fit_svgp``, n = 20 000, m = 64, b = 256, 1000 Adam steps), statespace
(``StateSpace`` Matérn-3/2 + Matérn-5/2, n = 20 000), sklearn-laplace
(scikit-learn's GaussianProcessClassifier on the ``laplace`` data, n = 1000)
or sklearn-gp1000 (scikit-learn's L-BFGS-B fit of the ``fit`` case, n = 1000).
MODE: default (``compiler_options=None``: ``gpjax_lite.default_compiler_options()``)
or xla (``compiler_options={}``: XLA's defaults). Run from the repository
root with BLAS and XLA:CPU pinned to one thread (``run.sh``).
"""

import collections
import sys
import time
from pathlib import Path

root = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(root), str(root / "examples")]
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
from jax import monitoring

durations = collections.defaultdict(float)


def _listen(name, seconds, **_):
    durations[name.rsplit("/", 1)[-1]] += seconds


monitoring.register_event_duration_secs_listener(_listen)

import gpjax_lite as gl
from gpjax_lite import kernels, solvers, sparse

workload, mode = sys.argv[1], sys.argv[2]
options = {"default": None, "xla": {}}.get(mode)
rng = np.random.default_rng(0)

if workload == "sklearn-laplace":
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel

    from benchmarks.laplace import make_data

    X, y = make_data(1000, 0)
    start = time.perf_counter()
    gpc = GaussianProcessClassifier(ConstantKernel(1.0) * RBF(1.0)).fit(X, y)
    print(
        f"{workload:16s} {mode:7s} first {time.perf_counter() - start:6.2f} s  "
        f"lml {gpc.log_marginal_likelihood_value_:.10f}"
    )
    sys.exit()
if workload == "sklearn-gp1000":
    from benchmarks import data, peers

    X, y = data.regression(1000, 1)
    run = peers.load_peers(["sklearn"])[0].fit_lbfgs(X, y, data.INIT_HYPERS, 0)
    start = time.perf_counter()
    run()
    print(f"{workload:16s} {mode:7s} first {time.perf_counter() - start:6.2f} s")
    sys.exit()
if workload == "gp1000":
    from benchmarks import data, ours

    X, y = map(jnp.asarray, data.regression(1000, 1))
    model = ours.gp_model(data.INIT_HYPERS, X.dtype)
    go = lambda: gl.fit(model, X, y, compiler_options=options)  # noqa: E731
elif workload == "laplace":
    from benchmarks.laplace import START, make_data, model as laplace_model

    X, y = map(jnp.asarray, make_data(1000, 0))
    go = lambda: gl.fit(laplace_model(*START), X, y, compiler_options=options)  # noqa: E731
elif workload == "co2":
    import mauna_loa
    from gpjax_lite.datasets import load_co2

    X, y = map(jnp.asarray, load_co2())
    model = mauna_loa.build_model(y)
    go = lambda: gl.fit(  # noqa: E731
        model, X, y, num_steps=500, fixed=mauna_loa.fixed, compiler_options=options
    )
elif workload == "svgp":
    import optax

    n = 20_000
    X = rng.uniform(-3.0, 3.0, (n, 2))
    y = np.sin(X[:, 0]) * np.cos(X[:, 1]) + 0.1 * rng.standard_normal(n)
    adam = optax.adam(0.02)
    model = sparse.SVGP(kernels.RBF(lengthscale=0.5), jnp.asarray(X[:64]), noise=0.1)
    go = lambda: sparse.fit_svgp(  # noqa: E731
        model,
        X,
        y,
        batch_size=256,
        num_steps=1000,
        optimizer=adam,
        key=jax.random.key(1),
        compiler_options=options,
    )
elif workload == "statespace":
    n = 20_000
    t = np.sort(rng.uniform(0.0, 1000.0, n))
    y = np.sin(t / 10.0) + 0.3 * rng.standard_normal(n)
    kernel = kernels.Matern32(lengthscale=5.0) + kernels.Matern52(lengthscale=50.0)
    model = gl.GP(kernel, noise=0.1, solver=solvers.StateSpace())
    go = lambda: gl.fit(model, t, y, compiler_options=options)  # noqa: E731
else:
    raise SystemExit(f"unknown workload {workload!r}")

start = time.perf_counter()
result = jax.block_until_ready(go())
first = time.perf_counter() - start
compiling = sum(durations[k] for k in ("jaxpr_trace_duration", "jaxpr_to_mlir_module_duration"))
xla = durations["backend_compile_duration"]
start = time.perf_counter()
result = jax.block_until_ready(go())
second = time.perf_counter() - start
final = result.losses[-1] if workload == "svgp" else result.final_loss
print(
    f"{workload:16s} {mode:7s} first {first:6.2f} s  second {second:6.2f} s  "
    f"trace+lower {compiling:5.2f} s  XLA compile {xla:5.2f} s  final loss {float(final):.12g}"
)
