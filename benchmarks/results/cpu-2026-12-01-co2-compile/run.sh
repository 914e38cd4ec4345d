#!/bin/bash
# A/B of the CO2 main job's compile: BEFORE (a worktree of the parent commit) and
# AFTER (this checkout), alternating in fresh processes, ROUNDS rounds; then the
# main job itself three times. Output: run.txt.
#   bash benchmarks/results/cpu-2026-12-01-co2-compile/run.sh BEFORE_DIR [ROUNDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
after=$(cd "$here/../../.." && pwd)
before=$1
rounds=${2:-8}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
{
  echo "# $(date -u +%FT%TZ) $(uname -m) $(getconf _NPROCESSORS_ONLN) cores, load $(cut -d" " -f1-3 /proc/loadavg); before=$(git -C "$before" rev-parse --short HEAD) after=$(git -C "$after" rev-parse --short HEAD)"
  for i in $(seq "$rounds"); do
    for tree in "$before" "$after"; do
      python "$here/co2_compile.py" "$tree" $([ "$i" = 1 ] && echo --run)
    done
  done
  echo "# cold: nothing compiled before in the process (after)"
  for i in 1 2 3; do
    python "$here/co2_compile.py" "$after" --cold
  done
  echo "# the main job (after), as a user runs it"
  for i in 1 2 3; do
    (cd "$after" && python examples/mauna_loa.py --no-plot | grep "wall time")
  done
} | tee "$here/run.txt"
