#!/bin/bash
# The CO2 main job's compile for this checkout, in fresh processes, ROUNDS rounds;
# with OTHER (a worktree of another commit) the two alternate, for an A/B. The
# first round also runs the compiled fit. Then three cold compiles and the main
# job itself three times, all with the thread settings below. Output: $OUT
# (default run.new.txt here; the committed run.txt was made with OUT=run.txt).
# Run it with the environment that has gpjax_lite's dependencies active.
#   bash benchmarks/results/cpu-2026-12-01-co2-compile/run.sh [ROUNDS] [OTHER]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
this=$(cd "$here/../../.." && pwd)
rounds=${1:-8}
trees=("$this")
if [ $# -ge 2 ]; then trees+=("$(cd "$2" && pwd)"); fi
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 XLA_FLAGS=--xla_cpu_multi_thread_eigen=false
{
  echo "# $(date -u +%FT%TZ) $(uname -m) $(getconf _NPROCESSORS_ONLN) cores, load $(cut -d" " -f1-3 /proc/loadavg); XLA_FLAGS=$XLA_FLAGS;" \
    "$(for t in "${trees[@]}"; do echo -n "$(basename "$t")=$(git -C "$t" rev-parse --short HEAD) "; done)"
  for i in $(seq "$rounds"); do
    for tree in "${trees[@]}"; do
      python "$here/co2_compile.py" "$tree" $([ "$i" = 1 ] && echo --run)
    done
  done
  echo "# cold: nothing compiled before in the process ($(basename "$this"))"
  for i in 1 2 3; do
    python "$here/co2_compile.py" "$this" --cold
  done
  echo "# the main job ($(basename "$this")), with the thread settings above"
  for i in 1 2 3; do
    (cd "$this" && python examples/mauna_loa.py --no-plot | grep "wall time")
  done
} | tee "$here/${OUT:-run.new.txt}"
