# ruff: noqa: E402, I001  (a script: sys.path is set before the imports)
"""The CO2 main job's compile for code and compiler variants, alternated in one process.

    python benchmarks/results/cpu-2026-12-02-co2-compile/variants.py ROUNDS VARIANT... [--run]

Each measurement clears JAX's caches and times ``jax.jit(fit_model,
compiler_options=...).lower(X, y).compile()`` as ``examples/mauna_loa.py``
does (after one eager marginal likelihood), with JAX's ``jax.monitoring``
split into tracing, lowering and XLA. The variants take turns, in reversed
order every other round, so that the machine's drifting speed falls on all of
them alike; one warm-up compile per variant comes first. ``--run`` also runs
the first round's compiled fit (steps, optimum, time per step). Prints one
line per variant: medians over the rounds and the fastest compile.

Code variants are applied by replacing a library function for the duration
of the measurement (an experiment, not a way to use the library); compiler
variants add XLA options to :func:`gpjax_lite.default_compiler_options`.
"""

import argparse
import math
import os
import statistics
import sys
import time
from collections import defaultdict

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.abspath(os.path.join(here, "..", "..", ".."))
sys.path[:0] = [root, os.path.join(root, "examples")]

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
from jax import monitoring

import gpjax_lite as gl
import mauna_loa
from gpjax_lite import linalg
from gpjax_lite.datasets import load_co2
from gpjax_lite.kernels import stationary


def reciprocal_square(lengthscale, d):
    """``1/ℓ²`` as a reciprocal of a square, not ``ℓ ** -2.0`` (an XLA ``power``), in the
    stationary kernels (``Periodic`` imports the function under its own name and keeps it)."""
    return jnp.broadcast_to(1.0 / jnp.square(jnp.asarray(lengthscale)), (d,))


def one_product(K, r):
    """``α = K⁻¹ r`` as one product with the inverse and ``log N`` from ``rᵀα``
    (no whitened residual: five fewer matrix-vector products)."""
    L = jax.lax.linalg.cholesky(K, symmetrize_input=False)
    K_inv, _ = linalg._inverse_from_factor(L)
    alpha = K_inv @ r
    n = r.shape[-1]
    log_det = jnp.sum(jnp.log(jnp.diagonal(L)))
    return -0.5 * jnp.dot(r, alpha) - log_det - 0.5 * n * math.log(2 * math.pi), alpha, K_inv


#: name -> (replacements {(module, attribute): function}, extra compiler options)
VARIANTS = {
    "as-is": ({}, {}),
    "reciprocal-square": ({(stationary, "inverse_squares"): reciprocal_square}, {}),
    "one-product": ({(linalg, "_value_and_inverse"): one_product}, {}),
    "isa-avx2": ({}, {"xla_cpu_max_isa": "AVX2"}),
    "no-inline-before-split": ({}, {"xla_llvm_force_inline_before_split": False}),
    "llvm-O2": ({}, {"xla_backend_optimization_level": 2}),
    "llvm-O1": ({}, {"xla_backend_optimization_level": 1}),
    "llvm-O0": ({}, {"xla_backend_optimization_level": 0}),
}

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("rounds", type=int, metavar="ROUNDS", help="measurements per variant")
parser.add_argument("variants", nargs="+", choices=sorted(VARIANTS), metavar="VARIANT")
parser.add_argument("--run", action="store_true", help="also run the first round's fit")
args = parser.parse_args()
if args.rounds < 1:
    parser.error("ROUNDS must be at least 1")
if len(set(args.variants)) != len(args.variants):
    parser.error("name each VARIANT once")
originals = {key: getattr(*key) for replaced, _ in VARIANTS.values() for key in replaced}

durations = defaultdict(float)
monitoring.register_event_duration_secs_listener(
    lambda name, seconds, **_: durations.__setitem__(
        name.rsplit("/", 1)[-1], durations[name.rsplit("/", 1)[-1]] + seconds
    )
)
X, y = map(jnp.asarray, load_co2())
float(mauna_loa.build_model(y).log_marginal_likelihood(X, y))  # as main() does first


def measure(name: str, run: bool) -> dict:
    replaced, options = VARIANTS[name]
    for (module, attribute), original in originals.items():
        setattr(module, attribute, replaced.get((module, attribute), original))
    try:
        jax.clear_caches()
        durations.clear()
        start = time.perf_counter()
        fit_jit = jax.jit(  # the main job's own budget of steps
            mauna_loa.fit_model, compiler_options={**gl.default_compiler_options(), **options}
        )
        compiled = fit_jit.lower(X, y).compile()
        out = {
            "compile": time.perf_counter() - start,
            "trace": durations["jaxpr_trace_duration"],
            "lower": durations["jaxpr_to_mlir_module_duration"],
            "xla": durations["backend_compile_duration"],
        }
        if run:
            start = time.perf_counter()
            result = jax.block_until_ready(compiled(X, y))
            seconds = time.perf_counter() - start
            steps = int(result.steps_taken)
            out["fit"] = (
                f"{steps} steps to lml {-float(result.final_loss):.6f}, "
                f"{seconds:.2f} s ({1e3 * seconds / steps:.1f} ms per step)"
            )
        return out
    finally:
        for (module, attribute), original in originals.items():
            setattr(module, attribute, original)


for name in args.variants:
    measure(name, run=False)  # warm-up: first-call costs of the process
runs = defaultdict(list)
for i in range(args.rounds):
    for name in args.variants if i % 2 == 0 else args.variants[::-1]:
        runs[name].append(measure(name, run=args.run and i == 0))
print(f"# {args.rounds} rounds, load {os.getloadavg()[0]:.2f}, medians in s")
for name in args.variants:
    median = {
        k: statistics.median(o[k] for o in runs[name]) for k in ("compile", "trace", "lower", "xla")
    }
    line = " ".join(f"{k} {v:.3f}" for k, v in median.items())
    fastest = min(o["compile"] for o in runs[name])
    print(f"{name:24s} {line} (fastest {fastest:.3f}) {runs[name][0].get('fit', '')}")
