#!/usr/bin/env bash
# Alternate the two modes in fresh processes, twice each, for every workload.
set -euo pipefail
cd "$(dirname "$0")/../../.."
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false"
here=benchmarks/results/cpu-2026-12-01-compile-options
python -c "import jax, jaxlib, platform; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__, platform.processor() or platform.machine())"
for workload in laplace gp1000 co2 svgp statespace; do
  for round in 1 2; do
    echo "# $(uptime | sed 's/.*load/load/')"
    python "$here/ab.py" "$workload" default
    python "$here/ab.py" "$workload" xla
    if [ "$workload" = laplace ]; then python "$here/ab.py" sklearn-laplace -; fi
  done
done
