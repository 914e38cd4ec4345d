#!/usr/bin/env bash
# One accelerator session, start to finish, inside a fixed time budget.
#
#   OUT=/some/dir BUDGET_S=560 bash benchmarks/device_run.sh
#   OUT=/some/dir CASES=batched,gram DTYPES=float64 bash benchmarks/device_run.sh
#
# Run from the repository root on a machine whose JAX sees a GPU. Peers that the
# machine lacks are installed from wheels in .whl/ when that folder exists (the
# device machine has no network). In order, each bounded by `timeout`:
#   1. the accelerator tests (`-m gpu`: the same numbers on GPU and CPU);
#   2. the state-space solver's GPU rows (issue 13): lml + gradient, sequential
#      (n = 1e5, 1e6) and parallel=True (n = 1e6), each in a process of its own;
#   3. `python -m benchmarks` on CASES (default: the default cases) in DTYPES
#      (default float64,float32) with the time that is left (the harness writes
#      its results after every case, so a cut-off run keeps what it measured;
#      `meta.complete` says whether it finished).
# Everything lands in $OUT: log.txt, nvidia-smi.txt, tests.log, ss-*.json, bench/.
# SMOKE=1 runs the same steps at the smallest sizes (a rehearsal on a CPU).
set -u
: "${OUT:?set OUT to the output folder}"
BUDGET_S=${BUDGET_S:-560}
CASES=${CASES:-mll,batched,predict,fit,gram,compile}
DTYPES=${DTYPES:-float64,float32}
start=$(date +%s)
left() { echo $((BUDGET_S - ($(date +%s) - start))); }
export PYTHONUNBUFFERED=1
mkdir -p "$OUT/bench"
exec > >(tee "$OUT/log.txt") 2>&1

if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site:$PWD
else
    export PYTHONPATH=$PWD
fi
(nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv \
    && nvidia-smi) >"$OUT/nvidia-smi.txt" 2>&1
python3 -c "import jax, sys; print(sys.version); print(jax.__version__, jax.devices())"

if [ "${SMOKE:-0}" = 1 ]; then
    SIZES='[100, 300]' BIG='[300]'
    MODE=--smoke
else
    SIZES='[100000, 1000000]' BIG='[1000000]'
    MODE=
fi

echo "== 1. accelerator tests ($(left) s left)"
GPJAX_LITE_TEST_XLA_DEFAULTS=1 timeout 100 python3 -m pytest -q -m gpu -o addopts= -p no:cacheprovider \
    tests/test_accelerator.py tests/kernels/test_transforms.py >"$OUT/tests.log" 2>&1
echo "pytest exit $?"
tail -5 "$OUT/tests.log"

echo "== 2. state space on the accelerator ($(left) s left)"
for impl in "gpjax_lite" "gpjax_lite parallel"; do
    if [ "$impl" = "gpjax_lite" ]; then sizes=$SIZES limit=80; else sizes=$BIG limit=150; fi
    spec="{\"impl\": \"$impl\", \"sizes\": $sizes, \"dtype\": \"float64\", \"repeats\": 3, \"tasks\": [\"lml_grad\"]}"
    name=ss-$(echo "$impl" | tr ' ' '-').json
    timeout "$limit" python3 -m benchmarks.state_space "$spec" >"$OUT/$name"
    echo "$impl: exit $?"
    grep -v '@@rows@@' "$OUT/$name"
done

echo "== 3. benchmarks ($(left) s left)"
remaining=$(($(left) - 5))
timeout "$remaining" python3 -m benchmarks $MODE --dtype "$DTYPES" \
    --cases "$CASES" --out "$OUT/bench" --no-plots \
    --repeats 3 --budget 1 --fit-budget 30 --timeout $((remaining - 5))
echo "benchmarks exit $? ($(left) s left)"
