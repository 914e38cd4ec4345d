# ruff: noqa: E402, I001  (a script: sys.path is set before the imports)
"""Default fit at n, compile included, against scikit-learn's L-BFGS-B, in a fresh process.

Run from the repository root with the harness's pinning, three times:
OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 \
XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
python benchmarks/results/cpu-2026-11-30-fit-compile/ab_fit.py 1000
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
import jax

jax.config.update("jax_enable_x64", True)
from benchmarks import data, ours, peers

n = int(sys.argv[1])
X, y = data.regression(n, 1)
sk = peers.load_peers(["sklearn"])[0]
run = ours.fit_lbfgs(X, y, data.INIT_HYPERS)
t = time.perf_counter()
h = run()
t_ours = time.perf_counter() - t
skrun = sk.fit_lbfgs(X, y, data.INIT_HYPERS, 0)
t = time.perf_counter()
h2 = skrun()
t_sk = time.perf_counter() - t
print(
    f"n={n} ours first call {t_ours:.2f}s sklearn {t_sk:.2f}s sklearn/ours {t_sk / t_ours:.2f}",
    flush=True,
)
