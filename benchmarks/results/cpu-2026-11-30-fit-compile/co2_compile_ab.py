# ruff: noqa: E402, I001  (a script: sys.path is set before the imports)
"""Trace + lower + XLA compile, and run, of the CO2 main job's fit, for the tree at ROOT.

python benchmarks/results/cpu-2026-11-30-fit-compile/co2_compile_ab.py ROOT
(ROOT: a checkout, e.g. a `git worktree` of the commit before, for an A/B.)
"""

import functools
import os
import sys
import time

root = sys.argv[1]
sys.path.insert(0, root + "/examples")
sys.path.insert(0, root)
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import gpjax_lite as gl

assert gl.__file__.startswith(root), gl.__file__
from gpjax_lite.datasets import load_co2
import mauna_loa as ml

X, y = map(jnp.asarray, load_co2())
t0 = time.perf_counter()
lo = jax.jit(functools.partial(ml.fit_model, num_steps=500)).lower(X, y)
t1 = time.perf_counter()
c = lo.compile()
t2 = time.perf_counter()
r = jax.block_until_ready(c(X, y))
t3 = time.perf_counter()
print(
    f"{os.path.basename(root)}: trace+lower {t1 - t0:.2f}s compile {t2 - t1:.2f}s total {t2 - t0:.2f}s run {t3 - t2:.2f}s lml {-float(r.final_loss):.4f} steps {int(r.steps_taken)}"
)
