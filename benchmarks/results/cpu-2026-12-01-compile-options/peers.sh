#!/usr/bin/env bash
# The two cold-fit targets against scikit-learn: fresh processes, alternating, three rounds.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false"
here=benchmarks/results/cpu-2026-12-01-compile-options
for round in 1 2 3; do
  echo "# $(uptime | sed 's/.*load/load/')"
  python "$here/ab.py" laplace default
  python "$here/ab.py" sklearn-laplace -
  python "$here/ab.py" gp1000 default
  python "$here/ab.py" sklearn-gp1000 -
done
