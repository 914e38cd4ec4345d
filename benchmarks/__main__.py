"""``python -m benchmarks``: pin threads (CPU only), then run the harness."""

import sys

from benchmarks._env import pin_threads

# Decide on thread pinning before anything imports NumPy or JAX.
_PIN = pin_threads(enabled="--no-pin" not in sys.argv[1:])

from benchmarks.runner import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], pin_record=_PIN))
