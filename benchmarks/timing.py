"""Timing helpers: medians of repeats after a first (compiling) call, and ratios.

Every JAX result is waited for with ``block_until_ready`` (JAX dispatches
asynchronously; without it one would time the dispatch, not the work). The
first call is reported on its own: for a JAX function it traces and compiles,
so ``compile_s = first_s - median_s`` is the compile (and tracing) overhead.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from collections.abc import Callable, Sequence


def median(values: Sequence[float]) -> float:
    """The median of a non-empty sequence of numbers."""
    values = list(values)
    if not values:
        raise ValueError("median of an empty sequence")
    return float(statistics.median(values))


def is_positive_finite(value) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def ratio(numerator, denominator):
    """``numerator / denominator``, or ``None`` unless both are positive finite numbers."""
    if not (is_positive_finite(numerator) and is_positive_finite(denominator)):
        return None
    return float(numerator) / float(denominator)


def block(value):
    """Wait for every JAX array in a pytree (other leaves: returned as they are)."""
    try:
        import jax
    except ImportError:  # pragma: no cover - JAX is a dependency
        return value
    for leaf in jax.tree_util.tree_leaves(value):
        wait = getattr(leaf, "block_until_ready", None)
        if callable(wait):
            wait()
    return value


@dataclasses.dataclass
class Measurement:
    """One timed function: the first call and the repeats after it (seconds)."""

    first_s: float
    times: list[float]

    @property
    def median_s(self) -> float:
        return median(self.times) if self.times else self.first_s

    @property
    def compile_s(self):
        """First call minus the steady-state median (compile + trace for JAX; ~0 otherwise).

        ``None`` when the first call was the only one (too slow to repeat within budget).
        """
        if not self.times:
            return None
        return max(self.first_s - self.median_s, 0.0)

    def as_dict(self) -> dict:
        return {
            "time_s": self.median_s,
            "first_call_s": self.first_s,
            "compile_s": self.compile_s,
            "repeats": len(self.times),
            "min_s": min(self.times) if self.times else self.first_s,
        }


def measure(
    fn: Callable[[], object],
    *,
    repeats: int = 5,
    budget_s: float = 10.0,
    single_above_s: float | None = None,
) -> Measurement:
    """Time ``fn()``: one first call, then up to ``repeats`` calls (at least one).

    Repeats stop early once ``budget_s`` seconds have been spent on them, so
    large sizes get fewer repeats. The reported time is their median. When the
    first call alone took more than ``single_above_s`` seconds, no repeat is
    made and the first call is reported (compile included; ``compile_s`` is
    then ``None``).
    """
    start = time.perf_counter()
    block(fn())
    first = time.perf_counter() - start
    times: list[float] = []
    if single_above_s is not None and first > single_above_s:
        return Measurement(first_s=first, times=times)
    spent = 0.0
    for _ in range(max(int(repeats), 1)):
        if times and spent >= budget_s:
            break
        t0 = time.perf_counter()
        block(fn())
        times.append(time.perf_counter() - t0)
        spent += times[-1]
    return Measurement(first_s=first, times=times)


def measure_once(fn: Callable[[], object]) -> tuple[float, object]:
    """Wall time of a single call (everything included) and its result."""
    start = time.perf_counter()
    out = block(fn())
    return time.perf_counter() - start, out
