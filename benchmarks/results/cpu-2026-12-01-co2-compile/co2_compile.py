# ruff: noqa: E402, I001  (a script: sys.path is set before the imports)
"""The CO2 main job's compile, measured as `examples/mauna_loa.py` reports it, for the tree at ROOT.

    python benchmarks/results/cpu-2026-12-01-co2-compile/co2_compile.py ROOT [--run] [--cold]

As the main job does: load the data, evaluate the initial log marginal
likelihood (eagerly), then time ``jax.jit(fit_model, compiler_options=
gl.default_compiler_options()).lower(X, y).compile()``: tracing, lowering and
XLA, with JAX's own ``jax.monitoring`` durations for the three. ``--run`` also
runs the compiled fit and prints its optimum. ``--cold`` skips the initial
likelihood, so the compile also pays what a process's first Cholesky pays
once (jaxlib's LAPACK set-up, which imports SciPy). One
JSON line per call; ROOT is a checkout (a ``git worktree`` of another
commit, for an A/B).
"""

import argparse
import functools
import json
import os
import sys
import time
from collections import defaultdict

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("root", help="a checkout of gpjax_lite (holds gpjax_lite/ and examples/)")
parser.add_argument("--run", action="store_true", help="also run the compiled fit")
parser.add_argument("--cold", action="store_true", help="skip the initial eager likelihood")
args = parser.parse_args()
root = os.path.abspath(args.root)
for part in ("gpjax_lite/__init__.py", "examples/mauna_loa.py"):
    if not os.path.isfile(os.path.join(root, part)):
        parser.error(f"{root} is not a gpjax_lite checkout: no {part}")
sys.path[:0] = [root, root + "/examples"]
import jax

jax.config.update("jax_enable_x64", True)
from jax import monitoring
import jax.numpy as jnp
import gpjax_lite as gl

if os.path.dirname(os.path.abspath(gl.__file__)) != os.path.join(root, "gpjax_lite"):
    sys.exit(f"imported gpjax_lite from {gl.__file__}, not from {root}")
import mauna_loa
from gpjax_lite.datasets import load_co2

durations = defaultdict(float)


def record(name, seconds, **_):
    durations[name.rsplit("/", 1)[-1].removesuffix("_duration")] += seconds


monitoring.register_event_duration_secs_listener(record)
X, y = map(jnp.asarray, load_co2())
cold = args.cold
if not cold:
    float(mauna_loa.build_model(y).log_marginal_likelihood(X, y))  # main() does this first
durations.clear()
start = time.perf_counter()
# A tree from before `default_compiler_options` existed compiled with XLA's defaults.
options = getattr(gl, "default_compiler_options", dict)()
fit_jit = jax.jit(
    functools.partial(mauna_loa.fit_model, num_steps=500), compiler_options=options or None
)
compiled = fit_jit.lower(X, y).compile()
out = {
    "tree": os.path.basename(root) + (" (cold)" if cold else ""),
    "compile_s": round(time.perf_counter() - start, 3),
    "trace_s": round(durations["jaxpr_trace"], 3),
    "lower_s": round(durations["jaxpr_to_mlir_module"], 3),
    "xla_s": round(durations["backend_compile"], 3),
    "load1": os.getloadavg()[0],
}
if args.run:
    start = time.perf_counter()
    result = jax.block_until_ready(compiled(X, y))
    out.update(run_s=round(time.perf_counter() - start, 2), lml=-float(result.final_loss))
    out["steps"] = int(result.steps_taken)
print(json.dumps(out))
